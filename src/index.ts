/**
 * webgpu-batchnorm: batch normalization on WebGPU.
 *
 * - {@link BatchNorm}: the layer (training and inference forward, backward, state).
 * - {@link FeatureScaler}: min-max normalization and standardization of features (adapt, transform, inverse).
 * - {@link getDevice}: a GPUDevice in the browser or in Node (Dawn, SwiftShader fallback).
 * - The float64 CPU reference every GPU result is checked against.
 * - Layout helpers: every layout is a [outer, C, inner] view.
 */
export { BatchNorm } from './batchnorm.js';
export type {
  BatchNormOptions,
  ForwardArgs,
  BackwardArgs,
  BatchNormState,
  BatchNormStateInput,
  BackwardResult,
  NormalizationStats,
  DType,
  StateBufferName,
} from './batchnorm.js';
export {
  encodeBatchNormForward,
  encodeBatchNormBackward,
  encodeFeatureScalingAdapt,
  encodeFeatureScalingTransform,
  encodeFeatureScalingInverse,
  releaseFunctionCaches,
  SAVED_BYTES_PER_FEATURE,
} from './functional.js';
export type { BatchNormBuffers, BatchNormFunctionOptions, FeatureScalingFunctionOptions } from './functional.js';
export type { TensorBuffer } from './gpu.js';
export { pytorchOptions, kerasOptions } from './presets.js';
export type { PyTorchBatchNormArgs, KerasBatchNormArgs } from './presets.js';
export { fromPyTorchState, toPyTorchState, fromKerasWeights, toKerasWeights } from './state-io.js';
export type { TensorInput } from './state-io.js';
export { parseNpy, toNpy } from './npy.js';
export type { NpyArray } from './npy.js';
export { foldBatchNorm } from './folding.js';
export type { FoldableBatchNorm, FoldableLayer } from './folding.js';
export { FeatureScaler, SCALING_STATE_BYTES_PER_FEATURE } from './feature-scaling.js';
export type { FeatureScalerOptions, ScalingMethod, ScalingStats } from './feature-scaling.js';
export { toFloat16Bits, fromFloat16Bits, toHalfBits, fromHalfBits } from './float16.js';
export { getDevice } from './device.js';
export type { GetDeviceOptions } from './device.js';
export { LAYOUTS, channelView, channelAxis, layoutFor, viewSize } from './layout.js';
export type { Layout, ChannelView } from './layout.js';
export {
  referenceStats,
  referenceNormalize,
  referenceTrainingForward,
  referenceInference,
  referenceUpdateRunningStats,
  referenceBackward,
  referenceFeatureScaling,
} from './reference.js';
export type { BatchStats, RunningStats, Gradients, ScalingReference } from './reference.js';
