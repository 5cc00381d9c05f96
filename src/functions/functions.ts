/**
 * Batch norm and feature scaling as plain functions of (device, encoder, buffers, shape): every
 * buffer is the caller's -- for batch norm the parameters, running statistics, gradients, and
 * `saved`, where a forward pass leaves the statistics its backward pass needs; for feature
 * scaling the accumulated `state`. Nothing is submitted or read back.
 *
 * Behind the functions, each distinct set of buffers and options gets a BatchNorm or
 * FeatureScaler bound to them, cached per device: it holds only a few small buffers of its own
 * (uniforms, a flag, coefficients; scratch is pooled per device), which
 * {@link releaseFunctionCaches} frees.
 */
import { BatchNorm, STATE_BUFFERS, type BatchNormOptions } from '../layers/batchnorm.js';
import { FeatureScaler, type FeatureScalerOptions } from '../layers/feature-scaler.js';
import { bufferOf, isBufferRange, type TensorBuffer } from '../runtime/gpu.js';
import { channelView } from '../tensor/layout.js';
import { CHANNEL_COEF_BYTES } from '../kernels/shaders.js';

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

/** Bytes per feature of the `saved` buffer (one ChannelCoef). */
export const SAVED_BYTES_PER_FEATURE = CHANNEL_COEF_BYTES;

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

/** Options of the feature-scaling functions: the scaler options without numFeatures (taken from the shape), state and label. */
export type FeatureScalingFunctionOptions = Omit<FeatureScalerOptions, 'numFeatures' | 'state' | 'label'>;

/**
 * Records the accumulation of `x`'s per-feature statistics into `state` (numFeatures ×
 * SCALING_STATE_BYTES_PER_FEATURE bytes, zeroed before the first batch), as FeatureScaler.adapt.
 */
export function encodeFeatureScalingAdapt(
  device: GPUDevice,
  encoder: GPUCommandEncoder,
  args: { x: TensorBuffer; shape: readonly number[]; state: TensorBuffer; options: FeatureScalingFunctionOptions },
): void {
  scalerFor(device, args.shape, args.state, args.options).encodeAdapt(encoder, { x: args.x, shape: args.shape });
}

/** Records y = x scaled with the statistics in `state`. */
export function encodeFeatureScalingTransform(
  device: GPUDevice,
  encoder: GPUCommandEncoder,
  args: { x: TensorBuffer; y: TensorBuffer; shape: readonly number[]; state: TensorBuffer; options: FeatureScalingFunctionOptions },
): void {
  scalerFor(device, args.shape, args.state, args.options).encodeTransform(encoder, { x: args.x, y: args.y, shape: args.shape });
}

/** Records y = x unscaled: the inverse of {@link encodeFeatureScalingTransform}. */
export function encodeFeatureScalingInverse(
  device: GPUDevice,
  encoder: GPUCommandEncoder,
  args: { x: TensorBuffer; y: TensorBuffer; shape: readonly number[]; state: TensorBuffer; options: FeatureScalingFunctionOptions },
): void {
  scalerFor(device, args.shape, args.state, args.options).encodeInverse(encoder, { x: args.x, y: args.y, shape: args.shape });
}

/** Frees the small buffers the functions keep for `device` (call when done with it). */
export function releaseFunctionCaches(device: GPUDevice): void {
  const cache = layers.get(device);
  if (!cache) return;
  for (const layer of cache.values()) layer.destroy();
  layers.delete(device);
}

/** Objects bound to the caller's buffers, per device and key. */
const layers = new WeakMap<GPUDevice, Map<string, BatchNorm | FeatureScaler>>();
const ids = new WeakMap<GPUBuffer, number>();
let nextId = 1;

function layerFor(device: GPUDevice, shape: readonly number[], buffers: BatchNormBuffers, options: BatchNormFunctionOptions): BatchNorm {
  if (!options || typeof options !== 'object') throw new TypeError('args.options must be an object with at least layout');
  if (!buffers || typeof buffers !== 'object') throw new TypeError(`args.buffers must be an object with ${STATE_BUFFERS.join(', ')}`);
  for (const name of STATE_BUFFERS) if (!buffers[name]) throw new TypeError(`args.buffers.${name} is required`);
  const numFeatures = channelView(options.layout, shape, 'args.shape').channels;
  const key = JSON.stringify(['bn', numFeatures, options, STATE_BUFFERS.map((n) => describeBuffer(buffers[n]))]);
  return cached(device, key, () => {
    const picked = Object.fromEntries(STATE_BUFFERS.map((n) => [n, buffers[n]]));
    return new BatchNorm(device, { ...options, numFeatures, buffers: picked, label: 'webgpu-batchnorm function' });
  }) as BatchNorm;
}

function scalerFor(device: GPUDevice, shape: readonly number[], state: TensorBuffer, options: FeatureScalingFunctionOptions): FeatureScaler {
  if (!options || typeof options !== 'object') throw new TypeError('args.options must be an object with at least method');
  if (!state) throw new TypeError('args.state is required');
  const numFeatures = channelView(options.layout ?? 'NC', shape, 'args.shape').channels;
  const key = JSON.stringify(['scaler', numFeatures, options, describeBuffer(state)]);
  return cached(device, key, () => new FeatureScaler(device, { ...options, numFeatures, state, label: 'webgpu-batchnorm function' })) as FeatureScaler;
}

function cached(device: GPUDevice, key: string, make: () => BatchNorm | FeatureScaler): BatchNorm | FeatureScaler {
  let cache = layers.get(device);
  if (!cache) layers.set(device, (cache = new Map()));
  let made = cache.get(key);
  if (!made) cache.set(key, (made = make()));
  return made;
}

/** A buffer's identity and range, for the cache key. */
function describeBuffer(t: TensorBuffer): string {
  const buffer = bufferOf(t);
  if (!buffer || typeof buffer !== 'object') return String(buffer);
  let id = ids.get(buffer);
  if (id === undefined) ids.set(buffer, (id = nextId++));
  return isBufferRange(t) ? `${id}@${t.offset ?? 0}+${t.size ?? ''}` : `${id}`;
}
