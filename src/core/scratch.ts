/**
 * Scratch memory pooled per device: every layer and function on a device shares one scratch
 * buffer for its per-chunk partial reductions, grown as needed. A pass writes its partials and
 * consumes them before it ends, and the queue runs passes in order, so users never see each
 * other's partials. A buffer is destroyed once no holder holds it (context.ts).
 */
import { deviceContext } from './context.js';
import { Usage } from './gpu.js';

/** A STORAGE buffer of at least `bytes` bytes from `device`'s pool, held by `holder` until it is released (releaseHolder). */
export function acquireScratch(device: GPUDevice, bytes: number, holder: object): GPUBuffer {
  const context = deviceContext(device);
  const current = context.scratch;
  if (!current || current.size < bytes) {
    // Grow geometrically so that a few shapes settle on one buffer.
    const size = Math.max(256, 2 ** Math.ceil(Math.log2(Math.max(bytes, 2 * (current?.size ?? 0)))));
    const limit = device.limits.maxStorageBufferBindingSize;
    // Capped at the binding limit, but never below the request.
    context.scratch = device.createBuffer({ label: 'webgpu-batchnorm scratch', size: Math.max(bytes, Math.min(size, limit)), usage: Usage.STORAGE });
    // A replaced buffer lives on while a holder recorded with it.
    if (current) context.holdings.destroyIfUnheld(current);
  }
  context.holdings.hold(context.scratch!, holder);
  return context.scratch!;
}

/**
 * A 16-byte STORAGE buffer of `device`'s, held by `holder`: bound to a writable binding a
 * dispatch does not write (WebGPU refuses two writable bindings of one buffer, so an absent
 * output cannot borrow another's buffer). Its contents mean nothing.
 */
export function acquireSink(device: GPUDevice, holder: object): GPUBuffer {
  const context = deviceContext(device);
  context.sink ??= device.createBuffer({ label: 'webgpu-batchnorm unused output', size: 16, usage: Usage.STORAGE });
  context.holdings.hold(context.sink, holder);
  return context.sink;
}
