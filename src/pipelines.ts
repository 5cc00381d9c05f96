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

/** The compute pipeline for `kernel` with tensors stored as `storage`, created on first use. */
export function getPipeline(device: GPUDevice, kernel: KernelName, storage: TensorStorage): GPUComputePipeline {
  const shader = KERNELS[kernel];
  return cachedPipeline(device, `webgpu-batchnorm ${shader}.wgsl (${storage})`, () => shaderSource(shader, storage), kernel, `webgpu-batchnorm ${kernel} (${storage})`);
}

/**
 * The compute pipeline for `entryPoint` of the shader module named `moduleLabel` (whose WGSL
 * `code()` returns), created on first use and cached for the device's lifetime.
 */
export function cachedPipeline(
  device: GPUDevice,
  moduleLabel: string,
  code: () => string,
  entryPoint: string,
  label: string,
): GPUComputePipeline {
  const cache = cacheFor(device);
  let pipeline = cache.pipelines.get(label);
  if (!pipeline) {
    let module = cache.modules.get(moduleLabel);
    if (!module) {
      module = device.createShaderModule({ label: moduleLabel, code: code() });
      cache.modules.set(moduleLabel, module);
    }
    pipeline = device.createComputePipeline({ label, layout: 'auto', compute: { module, entryPoint } });
    cache.pipelines.set(label, pipeline);
  }
  return pipeline;
}
