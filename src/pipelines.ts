/**
 * Compute pipelines, created once per device and cached in a WeakMap so that they go away with
 * the device.
 */
import { SHADERS, type ShaderName } from './shaders.js';

/** Every kernel entry point and the shader module it lives in. */
const KERNELS = {
  partial_stats: 'stats',
  finalize_stats: 'stats',
  count_batch: 'stats',
  coef_from_running: 'normalize',
  normalize: 'normalize',
  partial_grad_sums: 'backward',
  finalize_grads: 'backward',
  input_grad: 'backward',
} as const satisfies Record<string, ShaderName>;

/** Name of a compute kernel (a WGSL entry point). */
export type KernelName = keyof typeof KERNELS;

interface DeviceCache {
  modules: Map<ShaderName, GPUShaderModule>;
  pipelines: Map<KernelName, GPUComputePipeline>;
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

/** The compute pipeline for `kernel` on `device`, created on first use. */
export function getPipeline(device: GPUDevice, kernel: KernelName): GPUComputePipeline {
  const cache = cacheFor(device);
  let pipeline = cache.pipelines.get(kernel);
  if (!pipeline) {
    const shader = KERNELS[kernel];
    let module = cache.modules.get(shader);
    if (!module) {
      module = device.createShaderModule({ label: `webgpu-batchnorm ${shader}.wgsl`, code: SHADERS[shader] });
      cache.modules.set(shader, module);
    }
    pipeline = device.createComputePipeline({
      label: `webgpu-batchnorm ${kernel}`,
      layout: 'auto',
      compute: { module, entryPoint: kernel },
    });
    cache.pipelines.set(kernel, pipeline);
  }
  return pipeline;
}
