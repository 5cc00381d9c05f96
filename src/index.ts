// The published .d.ts keeps this line (preserve), so a TypeScript consumer gets the WebGPU types
// (GPUDevice, GPUBuffer, ...) from the @webgpu/types dependency with no set-up of its own.
/// <reference types="@webgpu/types" preserve="true" />
/**
 * webgpu-batchnorm: batch normalization on WebGPU.
 *
 * - {@link BatchNorm}: the layer (training and inference forward, backward, state).
 * - {@link LayerNorm}, {@link RMSNorm}, {@link GroupNorm}, {@link InstanceNorm}: the rest of the
 *   normalization family, trainable, with the same three APIs (arrays, encode, functions).
 * - {@link FeatureScaler}: min-max normalization and standardization of features (adapt, transform, inverse).
 * - {@link getDevice}: a GPUDevice in the browser or in Node (Dawn, SwiftShader fallback).
 * - The float64 CPU reference every GPU result is checked against, and of layer, RMS, group and instance norm.
 * - Layout helpers: every layout is a [outer, C, inner] view.
 *
 * The TF.js adapter is the subpath `webgpu-batchnorm/tfjs`.
 *
 * @module webgpu-batchnorm
 */
export { BatchNorm } from './batchnorm/layer.js';
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
} from './batchnorm/layer.js';
export { encodeBatchNormForward, encodeBatchNormBackward, SAVED_BYTES_PER_FEATURE } from './batchnorm/functions.js';
export { encodeFeatureScalingAdapt, encodeFeatureScalingTransform, encodeFeatureScalingInverse } from './feature-scaling/functions.js';
export { releaseFunctionCaches } from './core/function-forms.js';
export type { BatchNormBuffers, BatchNormFunctionOptions } from './batchnorm/functions.js';
export type { FeatureScalingFunctionOptions } from './feature-scaling/functions.js';
export type { TensorBuffer } from './core/gpu.js';
export {
  pytorchOptions,
  kerasOptions,
  onnxOptions,
  onnxLayerNormOptions,
  onnxRMSNormOptions,
  onnxGroupNormOptions,
  onnxInstanceNormOptions,
  groupNormScaleFromOpset18,
} from './interop/presets.js';
export type {
  PyTorchBatchNormArgs,
  KerasBatchNormArgs,
  OnnxBatchNormArgs,
  OnnxLayerNormAttributes,
  OnnxRMSNormAttributes,
  OnnxGroupNormAttributes,
  OnnxInstanceNormAttributes,
} from './interop/presets.js';
export {
  fromPyTorchState,
  toPyTorchState,
  fromKerasWeights,
  toKerasWeights,
  fromOnnxInputs,
  toOnnxInputs,
  fromOnnxNormInputs,
  toOnnxNormInputs,
} from './interop/state-io.js';
export type {
  TensorInput,
  OnnxBatchNormInputs,
  NormKind,
  NormFamilyKind,
  NormStateEntries,
  PyTorchStateOptions,
  ToPyTorchStateOptions,
  PyTorchModuleFlags,
  PyTorchStateSource,
  OnnxNormOp,
  OnnxNormInputs,
} from './interop/state-io.js';
export { parseNpy, toNpy } from './interop/npy.js';
export type { NpyArray } from './interop/npy.js';
export { foldBatchNorm } from './interop/folding.js';
export type { FoldableBatchNorm, FoldableLayer } from './interop/folding.js';
export { LayerNorm, RMSNorm, GroupNorm, InstanceNorm } from './normalization/layer.js';
export type {
  LayerNormOptions,
  RMSNormOptions,
  GroupNormOptions,
  InstanceNormOptions,
  NormActivation,
  NormForwardArgs,
  NormBackwardArgs,
  NormBackwardResult,
  NormState,
  NormStateInput,
  GroupStats,
} from './normalization/layer.js';
export {
  encodeLayerNormForward,
  encodeLayerNormBackward,
  encodeRMSNormForward,
  encodeRMSNormBackward,
  encodeGroupNormForward,
  encodeGroupNormBackward,
  encodeInstanceNormForward,
  encodeInstanceNormBackward,
  NORM_SAVED_BYTES_PER_GROUP,
} from './normalization/functions.js';
export type { LayerNormFunctionArgs, RMSNormFunctionArgs, GroupNormFunctionArgs, InstanceNormFunctionArgs } from './normalization/functions.js';
export { FeatureScaler, SCALING_STATE_BYTES_PER_FEATURE } from './feature-scaling/layer.js';
export type { FeatureScalerOptions, ScalingMethod, ScalingStats } from './feature-scaling/layer.js';
export { toFloat16Bits, fromFloat16Bits, toHalfBits, fromHalfBits } from './core/float16.js';
export { getDevice } from './core/device.js';
export type { GetDeviceOptions } from './core/device.js';
export { LAYOUTS, channelView, channelAxis, layoutFor, viewSize } from './core/layout.js';
export type { Layout, ChannelView } from './core/layout.js';
export {
  referenceStats,
  referenceNormalize,
  referenceTrainingForward,
  referenceInference,
  referenceUpdateRunningStats,
  referenceBackward,
  referenceActivation,
  referenceActivationGrad,
} from './batchnorm/reference.js';
export type { BatchStats, RunningStats, Gradients, ReferenceActivation } from './batchnorm/reference.js';
export { referenceFeatureScaling, type ScalingReference } from './feature-scaling/reference.js';
export {
  referenceLayerNorm,
  referenceLayerNormBackward,
  referenceRMSNorm,
  referenceRMSNormBackward,
  referenceGroupNorm,
  referenceGroupNormBackward,
  referenceInstanceNorm,
  referenceInstanceNormBackward,
  referenceInstanceNormRunningStats,
} from './normalization/reference.js';
export type { NormalizationForward, RMSNormForward, RMSNormGradients, InstanceNormRunningStats } from './normalization/reference.js';
