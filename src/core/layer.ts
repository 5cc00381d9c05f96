/**
 * The skeleton every layer shares (BatchNorm, the family, FeatureScaler): the buffers it owns, the
 * shared buffers it holds (plans, scratch), the usage checks of a caller's buffers, device-loss and
 * validation reporting, the array API's calls and state writes, and destroy().
 *
 * An array-API call does all its work before it returns: it checks its arguments, records into a
 * fresh encoder, copies the caller's arrays into the queue (queue.writeBuffer copies them at the
 * call) and submits; only the readback is awaited. So calls on one layer take effect in the order
 * they were made (the GPU queue runs submissions and writes in order), a caller may change or reuse
 * its arrays as soon as a call returns, and a state write (setState) lands exactly between the
 * calls made before and after it, and before anything the caller submits afterwards.
 */
import { heldBuffers, releaseHolder } from './context.js';
import { DeviceGuard } from './guard.js';
import { Usage, align4, bufferOf, createBufferWithData, submitWithReadback, writeTensor, type BufferRegion, type TensorBuffer } from './gpu.js';

import { fromFloat16Bits, toFloat16Bits } from './float16.js';
import { describe, usageText } from './validate.js';
import type { DType } from './plans.js';

/** The array API's staging buffers, grown to fit: an input and an output, and their gradients. */
export interface IoBuffers {
  bytes: number;
  x: GPUBuffer;
  y: GPUBuffer;
  dy: GPUBuffer;
  dx: GPUBuffer;
  /** The last call that used them (its number). */
  lastCall: number;
}

/** Bytes written through the queue: a target and the data (copied when written). */
export type StateWrite = [TensorBuffer, ArrayBufferView<ArrayBuffer>];

/**
 * Whether an array-API call ran: `done` resolves once its work ran, and rejects if it failed. A
 * later call that reads what it wrote (backward the forward's statistics, transform the adapted
 * statistics) names it as `after`, and rejects too if it failed.
 */
export interface CallOutcome {
  /** The call, as a message names it: 'the forward() made before it'. */
  what: string;
  done: Promise<void>;
}

/** What an array-API call recorded into its encoder, and what it reads back. */
export interface ArrayCall<T> {
  /** The caller's data, written before the recorded passes run. */
  uploads?: StateWrite[];
  /** Regions read back after the recorded passes. */
  read: BufferRegion[];
  /** The call's result, from the bytes of `read`. */
  result(bytes: ArrayBuffer[]): T;
  /** An earlier call whose output this one reads: if that failed, this one rejects. */
  after?: CallOutcome | null;
  /**
   * Called if the call failed: lets go of what it used for later calls (a buffer that may be
   * invalid) unless a later call used it since (which tells by its own outcome).
   */
  discard?: () => void;
}

/**
 * The copy flags a caller's buffer needs, each with the call that needs it: `{ COPY_SRC:
 * 'getState() reads it back' }`.
 */
export type UsageNeeds = Partial<Record<'COPY_SRC' | 'COPY_DST', string>>;

/** What a caller's state buffer needs: getState() reads it back, and setState() writes it where `writable`. */
export function stateUsage(writable: boolean): UsageNeeds {
  return { COPY_SRC: 'getState() reads it back', ...(writable ? { COPY_DST: 'setState() writes it' } : {}) };
}

/** What a caller's gradient buffer needs: backward() reads it back. */
export const GRADIENT_USAGE: UsageNeeds = { COPY_SRC: 'backward() reads it back' };

/**
 * Throws unless each caller's buffer in `given` has the copy flags `needs` names for it: without
 * COPY_SRC a readback of it would fail, without COPY_DST a write to it would; WebGPU reports
 * neither at the call. `prefix` names the buffers ('options.buffers').
 */
export function checkBufferUsage(prefix: string, given: Readonly<Record<string, TensorBuffer | undefined>>, needs: Readonly<Record<string, UsageNeeds>>): void {
  for (const [name, arg] of Object.entries(given)) {
    if (arg === undefined || !needs[name]) continue;
    const buffer = bufferOf(arg);
    for (const [flag, why] of Object.entries(needs[name]) as [keyof typeof Usage, string][]) {
      if ((buffer.usage & Usage[flag]) === 0) {
        throw new TypeError(`${prefix}.${name} must have GPUBufferUsage.${flag} in its usage (${why}); got usage ${usageText(buffer.usage)}`);
      }
    }
  }
}

/**
 * Throws if setState wrote γ or β after the forward pass a backward pass differentiates: the
 * backward pass would mix the new parameters with the old pass (PyTorch refuses the same, an
 * in-place change of a tensor its graph saved).
 */
export function checkParamsUnchanged(label: string, last: { paramsSet?: boolean } | null, method: string): void {
  if (last?.paramsSet) {
    throw new Error(
      `${label}: ${method}() differentiates the last forward pass, and setState has changed γ or β since: the gradient would mix the old pass with the new parameters; run the forward pass again first`,
    );
  }
}

export class LayerCore {
  readonly guard: DeviceGuard;
  private readonly owned = new Set<GPUBuffer>();
  private io: IoBuffers | null = null;
  private destroyed = false;
  /** Array-API calls made so far; the one running its work now. */
  private calls = 0;

  /**
   * @param device the layer's device.
   * @param label  prefix of every GPU object's label and of error messages.
   * @param kind   the class name, for messages ('BatchNorm').
   */
  constructor(
    readonly device: GPUDevice,
    readonly label: string,
    kind: string,
  ) {
    this.guard = new DeviceGuard(device, label, `a new ${kind}`);
  }

  /** A buffer of the layer's own holding `data`, destroyed with the layer. */
  ownBuffer(name: string, data: Float32Array | Uint32Array | ArrayBuffer, usage: number): GPUBuffer {
    const buffer = createBufferWithData(this.device, `${this.label} ${name}`, data, usage);
    this.owned.add(buffer);
    return buffer;
  }

  /** Destroys one of the layer's own buffers now (work submitted with it still finishes). */
  dropBuffer(buffer: GPUBuffer): void {
    if (this.owned.delete(buffer)) buffer.destroy();
  }

  /**
   * Number of GPU buffers the layer holds: its own, and the shared plan uniforms and scratch it
   * holds with other layers (destroyed with their last holder).
   */
  get bufferCount(): number {
    return this.owned.size + heldBuffers(this.device, this);
  }

  /**
   * Runs one array-API call now: `work` checks the arguments and records into a fresh encoder
   * (a throw rejects the call, before anything is written); then its uploads are written and the
   * encoder submitted with the readback copies. All of it happens inside WebGPU validation and
   * out-of-memory error scopes, pushed and popped with no await in between: scopes are per device,
   * so no other call's error can land in them, and an error in them rejects this call instead of
   * resolving with what the failed copies left (zeros).
   */
  call<T>(what: string, work: (encoder: GPUCommandEncoder, outcome: CallOutcome) => ArrayCall<T>): Promise<T> {
    try {
      this.guard.checkUsable();
    } catch (error) {
      return Promise.reject(error);
    }
    let settled!: { ran(): void; failed(error: unknown): void };
    const outcome: CallOutcome = { what: `the ${what} made before it`, done: new Promise<void>((ran, failed) => (settled = { ran, failed })) };
    outcome.done.catch(() => undefined); // the call's own promise reports the failure
    const device = this.device;
    const id = ++this.calls;
    device.pushErrorScope('out-of-memory');
    device.pushErrorScope('validation');
    let started: { call: ArrayCall<T>; readback: Promise<ArrayBuffer[]> } | { error: unknown };
    try {
      const encoder = device.createCommandEncoder({ label: `${this.label} ${what}` });
      const call = work(encoder, outcome);
      for (const [target, data] of call.uploads ?? []) writeTensor(device, target, data);
      started = { call, readback: submitWithReadback(device, call.read, encoder) };
    } catch (error) {
      started = { error };
    }
    const scopes = [device.popErrorScope(), device.popErrorScope()];
    return this.settle(what, id, scopes, started).then(
      (value) => {
        settled.ran();
        return value;
      },
      (error: unknown) => {
        settled.failed(error);
        throw error;
      },
    );
  }

  private async settle<T>(
    what: string,
    id: number,
    scopes: Promise<GPUError | null>[],
    started: { call: ArrayCall<T>; readback: Promise<ArrayBuffer[]> } | { error: unknown },
  ): Promise<T> {
    // Handled from the start: while this waits for its scopes or an earlier call, a lost device
    // rejects the readback, and that must not be an unhandled rejection (it is awaited below).
    if (!('error' in started)) started.readback.catch(() => undefined);
    const [validation, memory] = await Promise.all(scopes.map((scope) => scope.catch(() => null)));
    const error = validation ?? memory;
    if (error || 'error' in started) {
      // Buffers this call used may be invalid (made out of memory, over a limit): unless a later
      // call used them since, the next call makes new ones instead of failing on these for good.
      if (this.io?.lastCall === id) this.dropIo();
      if (!('error' in started)) started.call.discard?.();
    }
    if ('error' in started) throw started.error;
    if (error) {
      throw new Error(`${this.label}: ${what} failed (WebGPU ${validation ? 'validation' : 'out-of-memory'} error), so it returns nothing: ${error.message}`);
    }
    const after = started.call.after;
    const failure = after ? await after.done.then(() => null, (cause: unknown) => cause ?? new Error('unknown failure')) : null;
    if (after && failure !== null) {
      await this.guard.settle(started.readback); // a lost device is named as such
      const message = (failure as Error)?.message ?? String(failure);
      throw new Error(`${this.label}: ${what} reads what ${after.what} wrote, and that call failed, so this one returns nothing (${message})`, { cause: failure });
    }
    return started.call.result(await this.guard.settle(started.readback));
  }

  /**
   * Writes already checked state through the queue (setState, reset): after every call made
   * before, before every call and submit made after. A WebGPU error (a caller's buffer destroyed
   * meanwhile) is thrown by the first call made after WebGPU reports it.
   */
  write(what: string, writes: StateWrite[]): void {
    this.guard.recordChecked(what, () => {
      for (const [target, data] of writes) writeTensor(this.device, target, data);
    });
  }

  /** The array API's input and output buffers, of at least `bytes` each. */
  ioBuffers(bytes: number): IoBuffers {
    if (this.io && this.io.bytes >= bytes) {
      this.io.lastCall = this.calls;
      return this.io;
    }
    this.dropIo();
    const make = (name: string) => {
      const buffer = this.device.createBuffer({ label: `${this.label} ${name}`, size: bytes, usage: Usage.STORAGE | Usage.COPY_SRC | Usage.COPY_DST });
      this.owned.add(buffer);
      return buffer;
    };
    this.io = { bytes, x: make('x'), y: make('y'), dy: make('dy'), dx: make('dx'), lastCall: this.calls };
    return this.io;
  }

  /**
   * Destroys the array API's buffers. Submitted calls that still use them keep them alive until
   * they finish (WebGPU frees a destroyed buffer only after the work using it).
   */
  private dropIo(): void {
    if (!this.io) return;
    for (const b of [this.io.x, this.io.y, this.io.dy, this.io.dx]) this.dropBuffer(b);
    this.io = null;
  }

  /** The array API's current buffers, if any call made them. */
  get currentIo(): IoBuffers | null {
    return this.io;
  }

  /**
   * Destroys every buffer the layer owns and lets go of the shared ones; later calls throw.
   * Calls made before still finish: WebGPU destroys a buffer only after submitted work using it.
   */
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.guard.markDestroyed();
    for (const buffer of this.owned) buffer.destroy();
    this.owned.clear();
    releaseHolder(this.device, this);
    this.io = null;
  }
}

/**
 * The bytes to upload for a tensor argument of the array API, after checking its type and
 * length: a Float32Array, or for float16 also a Uint16Array of half bits (Float32Array values are
 * rounded to halves).
 */
export function tensorUpload(argName: string, data: unknown, dtype: DType, elements: number, what: string): Uint8Array<ArrayBuffer> {
  const accepted = dtype === 'float16' ? 'a Float32Array or a Uint16Array of half bits' : 'a Float32Array';
  const ok = data instanceof Float32Array || (dtype === 'float16' && data instanceof Uint16Array);
  if (!ok) throw new TypeError(`${argName} must be ${accepted} for a ${dtype} layer; got ${describe(data)}`);
  const array = data as Float32Array | Uint16Array;
  if (array.length !== elements) throw new RangeError(`${argName} must have ${elements} elements for ${what}; got ${array.length}`);
  const typed = dtype === 'float16' && array instanceof Float32Array ? toFloat16Bits(array) : array;
  if (typed !== array) {
    // A finite value beyond ±65504 would be stored as ±Infinity and make its whole group NaN.
    const halves = typed as Uint16Array;
    for (let i = 0; i < halves.length; i++) {
      if ((halves[i] & 0x7fff) === 0x7c00 && Number.isFinite(array[i])) {
        throw new RangeError(`${argName}[${i}] must fit float16 (|value| <= 65504) for a float16 layer; got ${array[i]}, which would be stored as ±Infinity: scale the data, or use a float32 layer`);
      }
    }
  }
  const bytes = new Uint8Array(align4(typed.byteLength));
  bytes.set(new Uint8Array(typed.buffer, typed.byteOffset, typed.byteLength));
  return bytes;
}

/** A tensor read back by the array API, as float32 values. */
export function tensorDownload(bytes: ArrayBuffer, dtype: DType, elements: number): Float32Array {
  return dtype === 'float16' ? fromFloat16Bits(new Uint16Array(bytes, 0, elements)) : new Float32Array(bytes, 0, elements);
}
