/**
 * The training demo's layer kernels (demo/nn/nn_*.wgsl) as functions that record one dispatch
 * each into the caller's compute pass: 2-D convolution (which also serves as the dense layer),
 * max pooling, ReLU, softmax cross-entropy and SGD. Tensors are float32 NCHW in caller-owned
 * buffers or ranges of them ({ buffer, offset, size }); nothing is submitted or read back.
 */
import nnCommon from './nn_common.wgsl?raw';
import conv2d from './nn_conv2d.wgsl?raw';
import pool from './nn_pool.wgsl?raw';
import relu from './nn_relu.wgsl?raw';
import loss from './nn_loss.wgsl?raw';
import sgd from './nn_sgd.wgsl?raw';
import { Usage, checkSeparateOutput, createBufferWithData, dispatchPipeline, type TensorBuffer } from '../../src/core/gpu.js';
import { cachedPipeline } from '../../src/core/pipelines.js';
import { checkTensorBuffer } from '../../src/core/validate.js';

const FILES = { conv2d, pool, relu, loss, sgd } as const;
/** Threads per workgroup (WG in nn_common.wgsl). */
const WG = 256;

/** Shape of a 2-D convolution: NCHW input, valid padding, stride 1. */
export interface Conv2dShape {
  batch: number;
  inChannels: number;
  height: number;
  width: number;
  outChannels: number;
  kernelHeight: number;
  kernelWidth: number;
}

/** Shape of a max pooling over `size` x `size` windows with stride `size`. */
export interface PoolShape {
  batch: number;
  channels: number;
  height: number;
  width: number;
  size: number;
}

/** [outH, outW] of a convolution (valid padding, stride 1), after checking its shape. */
export function conv2dOutputSize(shape: Conv2dShape, argName = 'shape'): [number, number] {
  checkDims(shape, ['batch', 'inChannels', 'height', 'width', 'outChannels', 'kernelHeight', 'kernelWidth'], argName);
  if (shape.kernelHeight > shape.height || shape.kernelWidth > shape.width) {
    throw new RangeError(
      `${argName}: the ${shape.kernelHeight}x${shape.kernelWidth} kernel must fit the ${shape.height}x${shape.width} input (valid padding)`,
    );
  }
  return [shape.height - shape.kernelHeight + 1, shape.width - shape.kernelWidth + 1];
}

/** [outH, outW] of a max pooling, after checking its shape. */
export function poolOutputSize(shape: PoolShape, argName = 'shape'): [number, number] {
  checkDims(shape, ['batch', 'channels', 'height', 'width', 'size'], argName);
  if (shape.size > shape.height || shape.size > shape.width) {
    throw new RangeError(`${argName}.size ${shape.size} must fit the ${shape.height}x${shape.width} input`);
  }
  return [Math.floor(shape.height / shape.size), Math.floor(shape.width / shape.size)];
}

/** Records y = conv2d(x, weight) + bias. Buffers: x [N,Ci,H,W], weight [Co,Ci,KH,KW], bias [Co], y [N,Co,OH,OW]. */
export function encodeConv2dForward(
  device: GPUDevice,
  pass: GPUComputePassEncoder,
  shape: Conv2dShape,
  buffers: { x: TensorBuffer; weight: TensorBuffer; bias: TensorBuffer; y: TensorBuffer },
): void {
  const sizes = conv2dSizes(shape);
  checkBuffers(device, buffers, { x: sizes.input, weight: sizes.weight, bias: shape.outChannels, y: sizes.output });
  const { x, weight, bias, y } = buffers;
  run(device, pass, 'conv2d', 'conv2d_forward', sizes.output, { 0: convUniform(device, shape), 1: x, 2: weight, 3: bias, 4: y }, { y }, { x, weight, bias });
}

/**
 * Records the convolution's gradients: dweight and dbias (overwritten, summed over the batch)
 * and, when `dx` is given, the gradient with respect to the input.
 */
export function encodeConv2dBackward(
  device: GPUDevice,
  pass: GPUComputePassEncoder,
  shape: Conv2dShape,
  buffers: { x: TensorBuffer; weight: TensorBuffer; dy: TensorBuffer; dweight: TensorBuffer; dbias: TensorBuffer; dx?: TensorBuffer },
): void {
  const sizes = conv2dSizes(shape);
  const { dx, ...required } = buffers;
  checkBuffers(device, required, { x: sizes.input, weight: sizes.weight, dy: sizes.output, dweight: sizes.weight, dbias: shape.outChannels });
  const uniform = convUniform(device, shape);
  const { x, dy, dweight, dbias } = buffers;
  run(device, pass, 'conv2d', 'conv2d_param_grad', sizes.weight + shape.outChannels, { 0: uniform, 1: x, 5: dy, 6: dweight, 7: dbias }, { dweight, dbias }, { x, dy });
  if (dx) {
    checkBuffers(device, { dx }, { dx: sizes.input });
    run(device, pass, 'conv2d', 'conv2d_input_grad', sizes.input, { 0: uniform, 2: buffers.weight, 5: dy, 8: dx }, { dx }, { weight: buffers.weight, dy });
  }
}

/** Records y = max over each window of x, and the position of each maximum (u32 per output) in `argmax`. */
export function encodeMaxPoolForward(
  device: GPUDevice,
  pass: GPUComputePassEncoder,
  shape: PoolShape,
  buffers: { x: TensorBuffer; y: TensorBuffer; argmax: TensorBuffer },
): void {
  const sizes = poolSizes(shape);
  checkBuffers(device, buffers, { x: sizes.input, y: sizes.output, argmax: sizes.output });
  const { x, y, argmax } = buffers;
  run(device, pass, 'pool', 'max_pool_forward', sizes.output, { 0: poolUniform(device, shape), 1: x, 2: y, 3: argmax }, { y, argmax }, { x });
}

/** Records dx: dy routed to each window's maximum (from the forward pass's `argmax`), 0 elsewhere. */
export function encodeMaxPoolBackward(
  device: GPUDevice,
  pass: GPUComputePassEncoder,
  shape: PoolShape,
  buffers: { argmax: TensorBuffer; dy: TensorBuffer; dx: TensorBuffer },
): void {
  const sizes = poolSizes(shape);
  checkBuffers(device, buffers, { argmax: sizes.output, dy: sizes.output, dx: sizes.input });
  const { argmax, dy, dx } = buffers;
  run(device, pass, 'pool', 'max_pool_backward', sizes.input, { 0: poolUniform(device, shape), 4: argmax, 5: dy, 6: dx }, { dx }, { argmax, dy });
}

/** Records y = max(x, 0) over `count` elements. */
export function encodeReluForward(device: GPUDevice, pass: GPUComputePassEncoder, count: number, buffers: { x: TensorBuffer; y: TensorBuffer }): void {
  checkCount(count);
  checkBuffers(device, buffers, { x: count, y: count });
  run(device, pass, 'relu', 'relu_forward', count, { 0: countUniform(device, 'relu', count), 1: buffers.x, 2: buffers.y }, { y: buffers.y }, { x: buffers.x });
}

/** Records dx = dy where x > 0, else 0 (x is the ReLU's input). */
export function encodeReluBackward(
  device: GPUDevice,
  pass: GPUComputePassEncoder,
  count: number,
  buffers: { x: TensorBuffer; dy: TensorBuffer; dx: TensorBuffer },
): void {
  checkCount(count);
  checkBuffers(device, buffers, { x: count, dy: count, dx: count });
  const { x, dy, dx } = buffers;
  run(device, pass, 'relu', 'relu_backward', count, { 0: countUniform(device, 'relu', count), 1: x, 3: dy, 4: dx }, { dx }, { x, dy });
}

/**
 * Records softmax cross-entropy of logits [batch, classes] against u32 labels: each sample's
 * loss, whether its argmax is its label (u32 0/1), and dlogits = (softmax − onehot) / batch,
 * the gradient of the batch's mean loss.
 */
export function encodeSoftmaxCrossEntropy(
  device: GPUDevice,
  pass: GPUComputePassEncoder,
  shape: { batch: number; classes: number },
  buffers: { logits: TensorBuffer; labels: TensorBuffer; dlogits: TensorBuffer; losses: TensorBuffer; correct: TensorBuffer },
): void {
  checkDims(shape, ['batch', 'classes'], 'shape');
  const { batch, classes } = shape;
  checkBuffers(device, buffers, { logits: batch * classes, labels: batch, dlogits: batch * classes, losses: batch, correct: batch });
  const uniform = shapeUniform(device, 'loss', [batch, classes]);
  const { logits, labels, dlogits, losses, correct } = buffers;
  const read = { logits, labels };
  run(device, pass, 'loss', 'softmax_cross_entropy', batch, { 0: uniform, 1: logits, 2: labels, 3: dlogits, 4: losses, 5: correct }, { dlogits, losses, correct }, read);
}

/**
 * Records one SGD step on `count` parameters: velocity = momentum·velocity + grad, then
 * param −= lr·velocity. `hyper` is a uniform buffer from {@link createSgdHyperparams}.
 */
export function encodeSgdStep(
  device: GPUDevice,
  pass: GPUComputePassEncoder,
  count: number,
  buffers: { hyper: TensorBuffer; param: TensorBuffer; grad: TensorBuffer; velocity: TensorBuffer },
): void {
  checkCount(count);
  const { hyper, param, grad, velocity } = buffers;
  checkBuffers(device, { param, grad, velocity }, { param: count, grad: count, velocity: count });
  run(device, pass, 'sgd', 'sgd_step', count, { 0: countUniform(device, 'sgd', count), 1: hyper, 2: param, 3: grad, 4: velocity }, { param, velocity }, { grad });
}

/** SGD hyperparameters the host may change between steps. */
export interface SgdHyperparams {
  /** Learning rate, > 0. */
  lr: number;
  /** Momentum in [0, 1); 0 is plain SGD. */
  momentum: number;
}

/** A uniform buffer holding SGD hyperparameters, for {@link encodeSgdStep}. */
export function createSgdHyperparams(device: GPUDevice, hyper: SgdHyperparams, label = 'SGD hyperparameters'): GPUBuffer {
  return createBufferWithData(device, label, sgdHyperData(hyper), Usage.UNIFORM | Usage.COPY_DST);
}

/** Writes new hyperparameters through the queue: steps submitted afterwards use them. */
export function writeSgdHyperparams(device: GPUDevice, buffer: GPUBuffer, hyper: SgdHyperparams): void {
  device.queue.writeBuffer(buffer, 0, sgdHyperData(hyper));
}

function sgdHyperData({ lr, momentum }: SgdHyperparams): Float32Array<ArrayBuffer> {
  if (typeof lr !== 'number' || !(lr > 0) || !Number.isFinite(lr)) throw new RangeError(`lr must be a finite number > 0; got ${String(lr)}`);
  if (typeof momentum !== 'number' || !(momentum >= 0 && momentum < 1)) {
    throw new RangeError(`momentum must be a number in [0, 1); got ${String(momentum)}`);
  }
  return new Float32Array([lr, momentum, 0, 0]);
}

function conv2dSizes(shape: Conv2dShape) {
  const [outH, outW] = conv2dOutputSize(shape);
  const { batch, inChannels, height, width, outChannels, kernelHeight, kernelWidth } = shape;
  return {
    input: batch * inChannels * height * width,
    weight: outChannels * inChannels * kernelHeight * kernelWidth,
    output: batch * outChannels * outH * outW,
  };
}

function poolSizes(shape: PoolShape) {
  const [outH, outW] = poolOutputSize(shape);
  const planes = shape.batch * shape.channels;
  return { input: planes * shape.height * shape.width, output: planes * outH * outW };
}

function convUniform(device: GPUDevice, shape: Conv2dShape): GPUBuffer {
  const [outH, outW] = conv2dOutputSize(shape);
  const s = shape;
  return shapeUniform(device, 'conv2d', [s.batch, s.inChannels, s.height, s.width, s.outChannels, s.kernelHeight, s.kernelWidth, outH, outW]);
}

function poolUniform(device: GPUDevice, shape: PoolShape): GPUBuffer {
  const [outH, outW] = poolOutputSize(shape);
  return shapeUniform(device, 'pool', [shape.batch * shape.channels, shape.height, shape.width, shape.size, outH, outW]);
}

function countUniform(device: GPUDevice, kernel: string, count: number): GPUBuffer {
  return shapeUniform(device, kernel, [count]);
}

const uniforms = new WeakMap<GPUDevice, Map<string, GPUBuffer>>();

/**
 * An immutable uniform of u32 shape values, one per device and content: passes recorded into
 * one encoder never share a mutable uniform, and a model's few shapes make only a few of these
 * 16- to 48-byte buffers, which live as long as the device.
 */
function shapeUniform(device: GPUDevice, kernel: string, values: number[]): GPUBuffer {
  let cache = uniforms.get(device);
  if (!cache) uniforms.set(device, (cache = new Map()));
  const key = `${kernel} [${values.join(', ')}]`;
  let buffer = cache.get(key);
  if (!buffer) {
    const words = new Uint32Array(Math.ceil(values.length / 4) * 4);
    words.set(values);
    buffer = createBufferWithData(device, `webgpu-batchnorm ${key}`, words, Usage.UNIFORM);
    cache.set(key, buffer);
  }
  return buffer;
}

function run(
  device: GPUDevice,
  pass: GPUComputePassEncoder,
  shader: keyof typeof FILES,
  entryPoint: string,
  threads: number,
  buffers: Record<number, TensorBuffer>,
  written: Record<string, TensorBuffer> = {},
  read: Record<string, TensorBuffer> = {},
): void {
  for (const output of Object.entries(written)) checkSeparateOutput([`buffers.${output[0]}`, output[1]], prefixed(read));
  const pipeline = cachedPipeline(
    device,
    `webgpu-batchnorm nn_${shader}.wgsl`,
    () => `${nnCommon}\n${FILES[shader]}`,
    entryPoint,
    `webgpu-batchnorm ${entryPoint}`,
  );
  dispatchPipeline(device, pass, pipeline, Math.ceil(threads / WG), buffers);
}

function prefixed(read: Record<string, TensorBuffer>): Record<string, TensorBuffer> {
  return Object.fromEntries(Object.entries(read).map(([k, v]) => [`buffers.${k}`, v]));
}

function checkDims<T extends object>(shape: T, keys: (keyof T & string)[], argName: string): void {
  if (!shape || typeof shape !== 'object') throw new TypeError(`${argName} must be an object with ${keys.join(', ')}`);
  for (const key of keys) {
    const v = shape[key] as unknown;
    if (!Number.isSafeInteger(v) || (v as number) < 1) throw new RangeError(`${argName}.${key} must be a positive integer; got ${String(v)}`);
  }
}

function checkCount(count: number): void {
  if (!Number.isSafeInteger(count) || count < 1) throw new RangeError(`count must be a positive integer; got ${String(count)}`);
}

/** Each buffer (or range) must hold at least its element count of 4-byte values and have STORAGE usage. */
function checkBuffers(device: GPUDevice, buffers: Record<string, TensorBuffer>, elements: Record<string, number>): void {
  for (const [name, count] of Object.entries(elements)) {
    checkTensorBuffer(`buffers.${name}`, buffers[name], count * 4, `${count} 4-byte values`, device);
  }
}
