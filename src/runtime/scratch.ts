/**
 * Scratch memory pooled per device: every layer on a device shares one scratch buffer for its
 * per-chunk partial reductions, grown as needed. A pass writes its partials and consumes them
 * before it ends, and the queue runs passes in order, so layers never see each other's partials.
 * A buffer is destroyed once no layer holds it (a layer lets go in destroy()).
 */
import { Usage } from './gpu.js';

interface Pool {
  /** The buffer handed out for requests it can hold. */
  current: GPUBuffer | null;
  /** The layers holding each buffer (a replaced buffer lives on while a layer recorded with it). */
  holders: Map<GPUBuffer, Set<object>>;
}

const pools = new WeakMap<GPUDevice, Pool>();

/** A STORAGE buffer of at least `bytes` bytes from `device`'s pool, held by `holder` until {@link releaseScratch}. */
export function acquireScratch(device: GPUDevice, bytes: number, holder: object): GPUBuffer {
  let pool = pools.get(device);
  if (!pool) pools.set(device, (pool = { current: null, holders: new Map() }));
  if (!pool.current || pool.current.size < bytes) {
    // Grow geometrically so that a few shapes settle on one buffer.
    const size = Math.max(256, 2 ** Math.ceil(Math.log2(Math.max(bytes, 2 * (pool.current?.size ?? 0)))));
    const limit = device.limits.maxStorageBufferBindingSize;
    // Capped at the binding limit, but never below the request.
    const next = device.createBuffer({ label: 'webgpu-batchnorm scratch', size: Math.max(bytes, Math.min(size, limit)), usage: Usage.STORAGE });
    const old = pool.current;
    pool.current = next;
    pool.holders.set(next, new Set());
    if (old && pool.holders.get(old)!.size === 0) {
      pool.holders.delete(old);
      old.destroy();
    }
  }
  pool.holders.get(pool.current)!.add(holder);
  return pool.current;
}

/** Lets go of every scratch buffer `holder` acquired; buffers no one holds any more are destroyed. */
export function releaseScratch(device: GPUDevice, holder: object): void {
  const pool = pools.get(device);
  if (!pool) return;
  for (const [buffer, holders] of pool.holders) {
    holders.delete(holder);
    if (holders.size === 0) {
      pool.holders.delete(buffer);
      buffer.destroy();
      if (pool.current === buffer) pool.current = null;
    }
  }
}

/** How many pooled buffers `holder` holds on `device`. */
export function scratchHeld(device: GPUDevice, holder: object): number {
  let n = 0;
  for (const holders of pools.get(device)?.holders.values() ?? []) if (holders.has(holder)) n++;
  return n;
}
