/**
 * Compute pipelines, created once per device, tensor storage and fused activation, kept in the
 * device's context; and dispatches of a kernel with its buffers bound by name.
 */
import { deviceContext } from './context.js';
import { dispatchPipeline, type TensorBuffer } from './gpu.js';
import { ACTIVATIONS, BINDINGS, type BindingName, type FusedActivation, type ShaderName } from './contract.js';
import { shaderSource, type TensorStorage } from './shaders.js';

/** Every kernel entry point and the shader module it lives in. */
export const KERNELS = {
  partial_stats: 'stats',
  partial_stats_channels_last: 'stats',
  partial_stats_channels_last_vec4: 'stats',
  finalize_stats: 'stats',
  update_running: 'stats',
  coef_from_running: 'normalize',
  normalize: 'normalize',
  normalize_channels_last_vec4: 'normalize',
  partial_grad_sums: 'backward',
  partial_grad_sums_channels_last: 'backward',
  partial_grad_sums_channels_last_vec4: 'backward',
  finalize_grads: 'backward',
  input_grad: 'backward',
  input_grad_channels_last_vec4: 'backward',
  scaling_begin: 'scaling',
  scaling_partials: 'scaling',
  scaling_accumulate: 'scaling',
  scaling_coefficients: 'scaling',
  norm_forward: 'norm_forward',
  norm_update_running: 'norm_running',
  norm_backward: 'norm_backward',
  norm_affine_partials_rows: 'norm_backward',
  norm_backward_planes: 'norm_backward',
  norm_backward_columns: 'norm_backward',
  norm_affine_finalize: 'norm_backward',
} as const satisfies Record<string, ShaderName>;

/** Name of a compute kernel (a WGSL entry point). */
export type KernelName = keyof typeof KERNELS;

/** The buffers of one dispatch of `kernel`, by the WGSL names of its module's bindings. */
export type KernelBuffers<K extends KernelName> = Partial<Record<BindingName<(typeof KERNELS)[K]>, TensorBuffer>>;

/** The kernels whose code reads ACTIVATION; only their pipelines are specialized for it. */
const ACTIVATION_KERNELS: ReadonlySet<KernelName> = new Set([
  'normalize',
  'normalize_channels_last_vec4',
  'partial_grad_sums',
  'partial_grad_sums_channels_last',
  'partial_grad_sums_channels_last_vec4',
  'input_grad',
  'input_grad_channels_last_vec4',
  'norm_forward',
  'norm_backward',
  'norm_affine_partials_rows',
  'norm_backward_planes',
  'norm_backward_columns',
]);

/** The family's kernels that keep values on chip, CACHE_STEPS per thread (normalization/forward.wgsl). */
const CACHE_KERNELS: ReadonlySet<KernelName> = new Set(['norm_forward', 'norm_backward', 'norm_backward_planes', 'norm_backward_columns']);

/** The family's kernels whose code reads RMS (normalization/common.wgsl). */
const RMS_KERNELS: ReadonlySet<KernelName> = new Set([
  'norm_forward',
  'norm_backward',
  'norm_affine_partials_rows',
  'norm_backward_planes',
  'norm_backward_columns',
]);

/**
 * The kernels that merge across a workgroup (workgroup_reduce); on a device with `subgroups`
 * their pipelines come from the module's subgroups variant (reduce_subgroups.wgsl).
 */
export const SUBGROUP_KERNELS: ReadonlySet<KernelName> = new Set(['partial_stats', 'finalize_stats', 'partial_grad_sums', 'finalize_grads', 'scaling_partials']);

/** Whether `kernel`'s pipeline on `device` is the subgroups variant: the device has the feature and the kernel merges across its workgroup. */
export function usesSubgroups(device: GPUDevice, kernel: KernelName): boolean {
  return SUBGROUP_KERNELS.has(kernel) && device.features.has('subgroups');
}

/**
 * The compute pipeline for `kernel` with tensors stored as `storage` and, for the kernels that
 * fuse one, `activation` compiled in; the subgroups variant where {@link usesSubgroups}; created
 * on first use. Its label names the storage and each variant.
 */
export function getPipeline(
  device: GPUDevice,
  kernel: KernelName,
  storage: TensorStorage,
  activation: FusedActivation = 'none',
  rms = false,
  cacheSteps = 0,
): GPUComputePipeline {
  const shader = KERNELS[kernel];
  const subgroups = usesSubgroups(device, kernel);
  const constants: Record<string, number> = {};
  const variant: string[] = [storage];
  if (activation !== 'none' && ACTIVATION_KERNELS.has(kernel)) {
    constants.ACTIVATION = ACTIVATIONS[activation];
    variant.push(activation);
  }
  if (subgroups) variant.push('subgroups');
  if (rms && RMS_KERNELS.has(kernel)) {
    constants.RMS = 1;
    variant.push('rms');
  }
  if (cacheSteps > 0 && CACHE_KERNELS.has(kernel)) {
    constants.CACHE_STEPS = cacheSteps;
    variant.push(`cache ${cacheSteps}`);
  }
  return cachedPipeline(
    device,
    `webgpu-batchnorm ${shader}.wgsl (${storage}${subgroups ? ', subgroups' : ''})`,
    () => shaderSource(shader, storage, subgroups),
    kernel,
    `webgpu-batchnorm ${kernel} (${variant.join(', ')})`,
    Object.keys(constants).length > 0 ? constants : undefined,
  );
}

/**
 * Records one dispatch of `kernel` (built for tensors stored as `storage`, with `activation`
 * fused where the kernel has one) over `workgroups` workgroups, its buffers bound by name.
 */
export function dispatchKernel<K extends KernelName>(
  device: GPUDevice,
  pass: GPUComputePassEncoder,
  kernel: K,
  target: { storage: TensorStorage; activation?: FusedActivation; rms?: boolean; cacheSteps?: number },
  workgroups: number,
  buffers: KernelBuffers<K>,
): void {
  const numbers: Record<string, number> = BINDINGS[KERNELS[kernel]];
  const bound: Record<number, TensorBuffer> = {};
  for (const [name, buffer] of Object.entries(buffers) as [string, TensorBuffer | undefined][]) {
    if (buffer !== undefined) bound[numbers[name]] = buffer;
  }
  dispatchPipeline(device, pass, getPipeline(device, kernel, target.storage, target.activation, target.rms, target.cacheSteps), workgroups, bound);
}

/**
 * The compute pipeline for `entryPoint` of the shader module named `moduleLabel` (whose WGSL
 * `code()` returns), with pipeline-overridable `constants`, created on first use and kept for
 * the device's lifetime under `label` (which must therefore name the constants).
 */
export function cachedPipeline(
  device: GPUDevice,
  moduleLabel: string,
  code: () => string,
  entryPoint: string,
  label: string,
  constants?: Record<string, number>,
): GPUComputePipeline {
  const context = deviceContext(device);
  let pipeline = context.pipelines.get(label);
  if (!pipeline) {
    let module = context.modules.get(moduleLabel);
    if (!module) {
      module = device.createShaderModule({ label: moduleLabel, code: code() });
      context.modules.set(moduleLabel, module);
    }
    pipeline = device.createComputePipeline({ label, layout: 'auto', compute: constants ? { module, entryPoint, constants } : { module, entryPoint } });
    context.pipelines.set(label, pipeline);
  }
  return pipeline;
}
