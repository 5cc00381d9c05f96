/**
 * Feature scaling's options and argument checks, shared by the FeatureScaler layer and the
 * function forms: options resolved to their defaults, the state's size, the view of a batch and
 * its tensors.
 */
import { packStruct, structBytes } from './kernels.js';
import type { TensorBuffer } from '../core/gpu.js';
import { checkKnownKeys, checkTensorBuffer, checkTensorFits, describeValue, type KnownKeys } from '../core/validate.js';
import { channelView, checkLayout, viewSize, type ChannelView, type Layout } from '../core/layout.js';

/** How {@link FeatureScaler} scales each feature. */
export type ScalingMethod = 'min-max' | 'standardize';

/** Options of a {@link FeatureScaler}. */
export interface FeatureScalerOptions {
  /** Number of features (the size of the layout's C axis). */
  numFeatures: number;
  /** 'min-max' (to [0, 1]) or 'standardize' (zero mean, unit variance). */
  method: ScalingMethod;
  /** Layout of the data; features are its channel axis. Default 'NC' (rows of features). */
  layout?: Layout;
  /**
   * The variance divides by count − correction: 1 (default) is the notes' sample variance,
   * 0 the population variance that numpy.std and Keras's Normalization use.
   */
  correction?: 0 | 1;
  /** Prefix of every GPU object's label. Default 'FeatureScaler'. */
  label?: string;
  /**
   * A caller-owned buffer (or range) for the accumulated statistics, numFeatures ×
   * {@link SCALING_STATE_BYTES_PER_FEATURE} bytes (zeroed: nothing adapted yet). It is used as it
   * is and not destroyed with the scaler; since it may already hold statistics, transforms are
   * not refused before an adapt.
   */
  state?: TensorBuffer;
}

/** Statistics accumulated by {@link FeatureScaler.adapt}. */
export interface ScalingStats {
  /** Values seen per feature. */
  count: number;
  min: Float32Array;
  max: Float32Array;
  mean: Float64Array;
  /** Variance with the scaler's correction. */
  variance: Float64Array;
}

/** Bytes per feature of a scaler's accumulated statistics (FeatureScalerOptions.state; struct ScaleState in feature-scaling/scaling.wgsl). */
export const SCALING_STATE_BYTES_PER_FEATURE = structBytes('ScaleState');


/** Every name of {@link FeatureScalerOptions}, which the scaler accepts. */
export const SCALER_OPTIONS: readonly (keyof FeatureScalerOptions)[] = ['numFeatures', 'method', 'layout', 'correction', 'label', 'state'];

/** Advice on option names of other libraries, in the message that refuses them. */
const SCALER_OPTION_HINTS: Readonly<Record<string, string>> = { ddof: "numpy's ddof is correction here", axis: 'the feature axis comes from layout' };

/**
 * The scaler's options checked and completed with the defaults; `prefix` names them in
 * messages. Every key must be one of `keys` (default: the scaler's options).
 */
export function resolveScalingOptions(
  options: Omit<FeatureScalerOptions, 'state' | 'label'>,
  prefix = 'options',
  keys: KnownKeys = { names: SCALER_OPTIONS, what: 'an option of FeatureScaler' },
): Required<Omit<FeatureScalerOptions, 'state' | 'label'>> {
  checkKnownKeys(prefix, options, { ...keys, hints: { ...SCALER_OPTION_HINTS, ...keys.hints } });
  const { numFeatures, method, layout = 'NC', correction = 1 } = options;
  if (!Number.isSafeInteger(numFeatures) || numFeatures < 1) throw new TypeError(`${prefix}.numFeatures must be a positive integer; got ${describeValue(numFeatures)}`);
  if (method !== 'min-max' && method !== 'standardize') throw new TypeError(`${prefix}.method must be 'min-max' or 'standardize'; got ${describeValue(method)}`);
  checkLayout(layout, `${prefix}.layout`);
  if (correction !== 0 && correction !== 1) throw new TypeError(`${prefix}.correction must be 0 or 1; got ${describeValue(correction)}`);
  return { numFeatures, method, layout, correction };
}

/** The uniform ScalingOptions of a method and correction. */
export function scalingOptionsBytes(method: ScalingMethod, correction: 0 | 1): ArrayBuffer {
  return packStruct('ScalingOptions', { method: method === 'standardize' ? 1 : 0, correction });
}

/** The [outer, C, inner] view of `shape`, which must have `numFeatures` features and fit the device. */
export function scalingView(device: GPUDevice, layout: Layout, numFeatures: number, shape: readonly number[], argName: string): ChannelView {
  const view = channelView(layout, shape, argName);
  if (view.channels !== numFeatures) {
    throw new RangeError(`${argName} has ${view.channels} features on the C axis of layout '${layout}'; numFeatures is ${numFeatures}`);
  }
  checkTensorFits(device, argName, shape, viewSize(view), viewSize(view) * 4);
  return view;
}

/** Each float32 tensor buffer must hold a tensor of `view` and have STORAGE usage. */
export function checkScalingTensors(device: GPUDevice, view: ChannelView, shape: readonly number[], buffers: Record<string, TensorBuffer>): void {
  const bytes = viewSize(view) * 4;
  for (const [name, buffer] of Object.entries(buffers)) checkTensorBuffer(name, buffer, bytes, `float32 [${shape.join(', ')}]`, device);
}
