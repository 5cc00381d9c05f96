/**
 * Batch norm as plain functions of (device, encoder, buffers, shape): every buffer is the
 * caller's -- parameters, running statistics, gradients, and `saved`, where a forward pass
 * leaves the statistics its backward pass needs. Nothing is submitted or read back.
 *
 * Behind the functions, each distinct set of buffers and options gets a BatchNorm bound to them
 * (options.buffers), cached per device: it holds only a few small buffers of its own (uniforms
 * and a flag; scratch is pooled per device), which {@link releaseBatchNormFunctions} frees.
 */
import { BatchNorm, type BatchNormOptions } from './batchnorm.js';
import { bufferOf, isBufferRange, type TensorBuffer } from './gpu.js';
import { channelView } from './layout.js';

/** Every buffer of one batch-norm layer, all the caller's (whole buffers or ranges). */
export interface BatchNormBuffers {
  /** γ, β, running mean and running variance: numFeatures float32 each. */
  gamma: TensorBuffer;
  beta: TensorBuffer;
  runningMean: TensorBuffer;
  runningVar: TensorBuffer;
  /** One u32. */
  numBatchesTracked: TensorBuffer;
  /** Receive dL/dγ and dL/dβ (numFeatures float32 each). */
  gammaGrad: TensorBuffer;
  betaGrad: TensorBuffer;
  /** numFeatures × {@link SAVED_BYTES_PER_FEATURE} bytes: written by the forward pass, read by its backward pass. */
  saved: TensorBuffer;
}

/** Bytes per feature of the `saved` buffer. */
export const SAVED_BYTES_PER_FEATURE = 32;

/** Options of the functions: the layer options without numFeatures (taken from the shape), buffers and label. */
export type BatchNormFunctionOptions = Omit<BatchNormOptions, 'numFeatures' | 'buffers' | 'label'>;

/** Records a forward pass (see {@link BatchNorm.encodeForward}) on the caller's buffers. */
export function encodeBatchNormForward(
  device: GPUDevice,
  encoder: GPUCommandEncoder,
  args: { x: TensorBuffer; y: TensorBuffer; shape: readonly number[]; training: boolean; buffers: BatchNormBuffers; options: BatchNormFunctionOptions },
): void {
  layerFor(device, args.shape, args.buffers, args.options).encodeForward(encoder, { x: args.x, y: args.y, shape: args.shape, training: args.training });
}

/**
 * Records the backward pass of the last forward pass recorded with the same buffers and options
 * (see {@link BatchNorm.encodeBackward}): dx, and dL/dγ, dL/dβ into buffers.gammaGrad/betaGrad.
 */
export function encodeBatchNormBackward(
  device: GPUDevice,
  encoder: GPUCommandEncoder,
  args: { x: TensorBuffer; dy: TensorBuffer; dx: TensorBuffer; shape: readonly number[]; buffers: BatchNormBuffers; options: BatchNormFunctionOptions },
): void {
  layerFor(device, args.shape, args.buffers, args.options).encodeBackward(encoder, { x: args.x, dy: args.dy, dx: args.dx, shape: args.shape });
}

/** Frees the small buffers the functions keep for `device` (call when done with it). */
export function releaseBatchNormFunctions(device: GPUDevice): void {
  const cache = layers.get(device);
  if (!cache) return;
  for (const layer of cache.values()) layer.destroy();
  layers.delete(device);
}

const layers = new WeakMap<GPUDevice, Map<string, BatchNorm>>();
const ids = new WeakMap<GPUBuffer, number>();
let nextId = 1;

const BUFFER_NAMES: (keyof BatchNormBuffers)[] = ['gamma', 'beta', 'runningMean', 'runningVar', 'numBatchesTracked', 'gammaGrad', 'betaGrad', 'saved'];

function layerFor(device: GPUDevice, shape: readonly number[], buffers: BatchNormBuffers, options: BatchNormFunctionOptions): BatchNorm {
  if (!options || typeof options !== 'object') throw new TypeError('args.options must be an object with at least layout');
  if (!buffers || typeof buffers !== 'object') throw new TypeError(`args.buffers must be an object with ${BUFFER_NAMES.join(', ')}`);
  for (const name of BUFFER_NAMES) if (!buffers[name]) throw new TypeError(`args.buffers.${name} is required`);
  const numFeatures = channelView(options.layout, shape, 'args.shape').channels;
  const key = JSON.stringify([numFeatures, options, BUFFER_NAMES.map((n) => describeBuffer(buffers[n]))]);
  let cache = layers.get(device);
  if (!cache) layers.set(device, (cache = new Map()));
  let layer = cache.get(key);
  if (!layer) {
    const picked = Object.fromEntries(BUFFER_NAMES.map((n) => [n, buffers[n]]));
    layer = new BatchNorm(device, { ...options, numFeatures, buffers: picked, label: 'webgpu-batchnorm function' });
    cache.set(key, layer);
  }
  return layer;
}

/** A buffer's identity and range, for the cache key. */
function describeBuffer(t: TensorBuffer): string {
  const buffer = bufferOf(t);
  if (!buffer || typeof buffer !== 'object') return String(buffer);
  let id = ids.get(buffer);
  if (id === undefined) ids.set(buffer, (id = nextId++));
  return isBufferRange(t) ? `${id}@${t.offset ?? 0}+${t.size ?? ''}` : `${id}`;
}
