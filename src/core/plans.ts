/**
 * The plan cache every family's plans live in, and what their plans share. A plan is everything
 * about one (shape, options) that does not depend on the buffers — the view, the tensor storage,
 * the dispatch geometry and the uniform parameters — computed once per key and kept in the
 * device's context (at most MAX_PLANS, least recently used evicted).
 *
 * A plan's uniform is immutable: passes recorded into one encoder before a submit never see each
 * other's parameters, and no uniform a recorded pass uses is rewritten before it runs.
 */
import { MAX_PLANS, deviceContext } from './context.js';
import { Usage, createBufferWithData } from './gpu.js';

/** Workgroups a channels-last reduction aims for, and runs of 4 rows each lane takes at least (so that the partials stay small against the data). */
export const REDUCTION_SIZES = { gpu: { workgroups: 1024, minRunsPerLane: 4 }, cpu: { workgroups: 16, minRunsPerLane: 64 } } as const;

/** Whether `device` is a software (CPU) adapter, as SwiftShader is: WebGPU's fallback adapter. */
export function isCpuAdapter(device: GPUDevice): boolean {
  const info = (device as GPUDevice & { adapterInfo?: GPUAdapterInfo & { isFallbackAdapter?: boolean } }).adapterInfo;
  return info?.isFallbackAdapter === true || /swiftshader|llvmpipe|lavapipe/i.test(`${info?.architecture ?? ''} ${info?.description ?? ''}`);
}

/** Element type of the tensors (x, y, dy, dx) in GPU buffers. Statistics are always float32. */
export type DType = 'float32' | 'float16';

/** An immutable uniform buffer holding `params`. */
export function uniform(device: GPUDevice, what: string, params: ArrayBuffer): GPUBuffer {
  return createBufferWithData(device, `webgpu-batchnorm ${what} params`, params, Usage.UNIFORM);
}

/**
 * The plan under `key` (everything it depends on), made by `make` on first use, moved to the most
 * recently used end, and held by `holder`. Beyond MAX_PLANS the least recently used plan leaves
 * the cache, and its holders let go of its uniform without destroying it (a pass recorded with it
 * may not have been submitted yet): WebGPU frees it once nothing references it. So a layer that
 * sees ever new shapes (variable sequence lengths) holds at most MAX_PLANS uniforms, not one per
 * shape it ever saw.
 */
export function cachedPlan<P extends { readonly params: GPUBuffer }>(device: GPUDevice, key: string, holder: object, make: () => P): P {
  const context = deviceContext(device);
  let plan = context.plans.get(key) as P | undefined;
  if (plan) context.plans.delete(key);
  else plan = make();
  context.plans.set(key, plan);
  context.holdings.hold(plan.params, holder);
  for (const [oldKey, old] of context.plans) {
    if (context.plans.size <= MAX_PLANS) break;
    context.plans.delete(oldKey);
    context.holdings.forget(old.params);
  }
  return plan;
}
