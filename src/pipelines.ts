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
  const cache = cacheFor(device);
  const key = `${kernel} ${storage}`;
  let pipeline = cache.pipelines.get(key);
  if (!pipeline) {
    const shader = KERNELS[kernel];
    const moduleKey = `${shader} ${storage}`;
    let module = cache.modules.get(moduleKey);
    if (!module) {
      module = device.createShaderModule({ label: `webgpu-batchnorm ${shader}.wgsl (${storage})`, code: shaderSource(shader, storage) });
      cache.modules.set(moduleKey, module);
    }
    pipeline = device.createComputePipeline({
      label: `webgpu-batchnorm ${kernel} (${storage})`,
      layout: 'auto',
      compute: { module, entryPoint: kernel },
    });
    cache.pipelines.set(key, pipeline);
  }
  return pipeline;
}
