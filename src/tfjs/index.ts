/**
 * webgpu-batchnorm/tfjs: the library's kernels inside TF.js models, on TF.js's own `webgpu`
 * backend (its device, buffers and command encoder). It takes the caller's `tf` as an argument
 * and never imports TF.js itself.
 *
 * - {@link registerTfjsKernels}: BatchNorm (training and inference) and LayerNorm kernels with
 *   their gradients, tf.batchNorm's FusedBatchNorm, and tf.layers' BatchNormalization and
 *   LayerNormalization on them; returns `uninstall()`.
 * - {@link useDeviceForTfjs}: TF.js's webgpu backend on a device of yours (getDevice()'s, with subgroups).
 *
 * @module webgpu-batchnorm/tfjs
 */
export { registerTfjsKernels } from './register.js';
export type { TfjsKernelOptions } from './register.js';
export { useDeviceForTfjs } from './device.js';
export type { UseDeviceOptions, WebGPUBackendClass } from './device.js';
export type { TfjsNamespace } from './tfjs-types.js';
