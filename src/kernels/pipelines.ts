/**
 * Compute pipelines, created once per device and tensor storage and cached in a WeakMap so that
 * they go away with the device.
 */
import { shaderSource, type ShaderName, type TensorStorage } from './shaders.js';

/** Every kernel entry point and the shader module it lives in. */
export const KERNELS = {
  partial_stats: 'stats',
  partial_stats_channels_last: 'stats',
  finalize_stats: 'stats',
  update_running: 'stats',
  count_batch: 'stats',
  coef_from_running: 'normalize',
  normalize: 'normalize',
  partial_grad_sums: 'backward',
  partial_grad_sums_channels_last: 'backward',
  finalize_grads: 'backward',
  input_grad: 'backward',
  scaling_begin: 'scaling',
  scaling_partials: 'scaling',
  scaling_accumulate: 'scaling',
  scaling_coefficients: 'scaling',
} as const satisfies Record<string, ShaderName>;

/** Name of a compute kernel (a WGSL entry point). */
export type KernelName = keyof typeof KERNELS;

interface DeviceCache {
  modules: Map<string, GPUShaderModule>;
  pipelines: Map<string, GPUComputePipeline>;
}

const caches = new WeakMap<GPUDevice, DeviceCache>();

function cacheFor(device: GPUDevice): DeviceCache {
  let cache = caches.get(device);
  if (!cache) {
    cache = { modules: new Map(), pipelines: new Map() };
    caches.set(device, cache);
  }
  return cache;
}

/** An activation fused into the batch-norm kernels (ACTIVATION in common.wgsl). */
export type FusedActivation = 'none' | 'relu';

/** The kernels whose code reads ACTIVATION; only their pipelines are specialized for it. */
const ACTIVATION_KERNELS: ReadonlySet<KernelName> = new Set([
  'normalize',
  'partial_grad_sums',
  'partial_grad_sums_channels_last',
  'input_grad',
]);

/**
 * The compute pipeline for `kernel` with tensors stored as `storage` and, for the kernels that
 * fuse one, `activation` compiled in; created on first use.
 */
export function getPipeline(
  device: GPUDevice,
  kernel: KernelName,
  storage: TensorStorage,
  activation: FusedActivation = 'none',
): GPUComputePipeline {
  const shader = KERNELS[kernel];
  const fused = activation !== 'none' && ACTIVATION_KERNELS.has(kernel);
  return cachedPipeline(
    device,
    `webgpu-batchnorm ${shader}.wgsl (${storage})`,
    () => shaderSource(shader, storage),
    kernel,
    `webgpu-batchnorm ${kernel} (${storage}${fused ? `, ${activation}` : ''})`,
    fused ? { ACTIVATION: 1 } : undefined,
  );
}

/**
 * The compute pipeline for `entryPoint` of the shader module named `moduleLabel` (whose WGSL
 * `code()` returns), with pipeline-overridable `constants`, created on first use and cached for
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
  const cache = cacheFor(device);
  let pipeline = cache.pipelines.get(label);
  if (!pipeline) {
    let module = cache.modules.get(moduleLabel);
    if (!module) {
      module = device.createShaderModule({ label: moduleLabel, code: code() });
      cache.modules.set(moduleLabel, module);
    }
    pipeline = device.createComputePipeline({ label, layout: 'auto', compute: constants ? { module, entryPoint, constants } : { module, entryPoint } });
    cache.pipelines.set(label, pipeline);
  }
  return pipeline;
}
