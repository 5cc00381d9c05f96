/**
 * One context per GPUDevice, in one WeakMap, so that everything the library keeps for a device
 * goes away with it: shader modules and pipelines, the plans of the ops layer, the pooled scratch
 * buffer, and what other modules keep per device (the function forms' records), each in a slot
 * of its own.
 *
 * Shared GPU buffers (plan uniforms, scratch, the function forms' buffers) are held by holders —
 * a layer, or the function forms — and destroyed when their last holder lets go
 * ({@link releaseHolder}).
 */

/** Shared buffers and who holds them. */
class Holdings {
  private readonly holders = new Map<GPUBuffer, Set<object>>();

  /** `holder` holds `buffer` until it is released. */
  hold(buffer: GPUBuffer, holder: object): void {
    let set = this.holders.get(buffer);
    if (!set) this.holders.set(buffer, (set = new Set()));
    set.add(holder);
  }

  /** Whether anyone holds `buffer`. */
  isHeld(buffer: GPUBuffer): boolean {
    return (this.holders.get(buffer)?.size ?? 0) > 0;
  }

  /** Lets go of everything `holder` holds; returns the buffers no one holds any more, destroyed. */
  release(holder: object): GPUBuffer[] {
    const freed: GPUBuffer[] = [];
    for (const [buffer, set] of this.holders) {
      if (!set.delete(holder) || set.size > 0) continue;
      this.holders.delete(buffer);
      buffer.destroy();
      freed.push(buffer);
    }
    return freed;
  }

  /**
   * Lets every holder go of `buffer` without destroying it: a pass recorded with it may not have
   * been submitted yet, and WebGPU keeps a buffer alive while recorded work uses it; it is freed
   * once nothing references it (garbage collection).
   */
  forget(buffer: GPUBuffer): void {
    this.holders.delete(buffer);
  }

  /** Also destroys buffers no one holds (a pool's replaced buffer). */
  destroyIfUnheld(buffer: GPUBuffer): void {
    if (this.isHeld(buffer)) return;
    this.holders.delete(buffer);
    buffer.destroy();
  }

  /** Whether any buffer is held. */
  anyHeld(): boolean {
    return this.holders.size > 0;
  }

  /** How many buffers `holder` holds. */
  count(holder: object): number {
    let n = 0;
    for (const set of this.holders.values()) if (set.has(holder)) n++;
    return n;
  }
}

/** Everything the library keeps for one device. */
export interface DeviceContext {
  /** Shader modules by label. */
  readonly modules: Map<string, GPUShaderModule>;
  /** Compute pipelines by label (the label names the module, entry point and constants). */
  readonly pipelines: Map<string, GPUComputePipeline>;
  /** Plan uniforms and scratch, and their holders. */
  readonly holdings: Holdings;
  /** Plans of the ops layer by key, least recently used first (core/plan.ts); at most MAX_PLANS. */
  readonly plans: Map<string, { readonly params: GPUBuffer }>;
  /** The pooled scratch buffer handed out for the reductions' partials (core/scratch.ts). */
  scratch: GPUBuffer | null;
  /** A small buffer bound where a kernel's writable binding has nothing to write (core/scratch.ts). */
  sink: GPUBuffer | null;
  /**
   * What other modules keep per device, by their name (the function forms: core/function-forms.ts),
   * each with the holder of its shared buffers; released with the context.
   */
  readonly slots: Map<string, { readonly holder: object }>;
}

/** Plans kept per device: enough for every shape and mode of a network, bounded for a long run over changing shapes. */
export const MAX_PLANS = 256;

const contexts = new WeakMap<GPUDevice, DeviceContext>();

/** The context of `device`, created on first use. */
export function deviceContext(device: GPUDevice): DeviceContext {
  let context = contexts.get(device);
  if (!context) {
    context = { modules: new Map(), pipelines: new Map(), holdings: new Holdings(), plans: new Map(), scratch: null, sink: null, slots: new Map() };
    contexts.set(device, context);
  }
  return context;
}

/**
 * Lets `holder` go of every shared buffer it holds on `device`; buffers no one holds any more
 * are destroyed and leave the plan cache and the scratch pool.
 */
export function releaseHolder(device: GPUDevice, holder: object): void {
  const context = contexts.get(device);
  if (!context) return;
  const freed = new Set(context.holdings.release(holder));
  if (freed.size === 0) return;
  for (const [key, plan] of context.plans) if (freed.has(plan.params)) context.plans.delete(key);
  if (context.scratch && freed.has(context.scratch)) context.scratch = null;
  if (context.sink && freed.has(context.sink)) context.sink = null;
}

/**
 * Releases the device's context: every slot's state (the function forms') and every buffer only they held;
 * when no layer holds anything on the device any more, the whole context (pipelines and shader
 * modules included) is forgotten.
 */
export function releaseDeviceContext(device: GPUDevice): void {
  const context = contexts.get(device);
  if (!context) return;
  for (const slot of context.slots.values()) releaseHolder(device, slot.holder);
  context.slots.clear();
  if (!context.holdings.anyHeld()) contexts.delete(device);
}

/** Whether the library keeps a context for `device` (after use, until releaseDeviceContext). */
export function hasDeviceContext(device: GPUDevice): boolean {
  return contexts.has(device);
}

/** How many shared buffers `holder` holds on `device`. */
export function heldBuffers(device: GPUDevice, holder: object): number {
  return contexts.get(device)?.holdings.count(holder) ?? 0;
}
