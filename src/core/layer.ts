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
 *
 * A layer keeps one LayerCore and calls it (composition): `passCall` runs forward/adapt/transform
 * on an array, `backwardCall` differentiates the last forward() call, `statsCall` reads what the
 * last forward pass saved, `writeState` checks and writes setState's state, and `passes` remembers
 * the forward passes recorded through each way in. A layer class adds only what is its own: its
 * options, buffers, checks of its arguments and the passes it records.
 */
import { heldBuffers, releaseHolder } from './context.js';
import { DeviceGuard } from './guard.js';
import { Usage, align4, bufferName, bufferOf, createBufferWithData, regionOf, submitWithReadback, writeTensor, type BufferRegion, type TensorBuffer } from './gpu.js';
import { fromFloat16Bits, toFloat16Bits } from './float16.js';
import { checkArity, checkKnownKeys, checkStateArray, checkStateValues, describeValue, usageText } from './validate.js';
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

/**
 * Throws unless `device` is a GPUDevice (has createBuffer): the device check of every layer's
 * constructor.
 */
export function checkLayerDevice(device: unknown): asserts device is GPUDevice {
  if (!device || typeof (device as GPUDevice).createBuffer !== 'function') throw new TypeError(`device must be a GPUDevice; got ${describeValue(device)}`);
}

/** A method's name, the arguments it got and the names it takes: checked by checkArity. */
export type Arity = readonly [method: string, given: ArrayLike<unknown>, names: readonly string[]];

/** What a recorded pass did, for a message: `training forward of shape [2, 3], x 'x', y 'y'`. */
export function describePass(pass: string, shape: readonly number[], buffers: Readonly<Record<string, TensorBuffer>>): string {
  const named = Object.entries(buffers).map(([name, buffer]) => `, ${name} ${bufferName(buffer)}`);
  return `${pass} of shape [${shape.join(', ')}]${named.join('')}`;
}

/** PyTorch's names of a normalization layer's state, and the names here. */
export const PYTORCH_STATE_NAMES: Readonly<Record<string, string>> = { weight: 'gamma', bias: 'beta', running_mean: 'runningMean', running_var: 'runningVar' };

/** Other names of a layer's state, in one framework: `names` maps each to the name here; `how` converts a whole state. */
export interface StateNames {
  framework: string;
  names: Readonly<Record<string, string>>;
  how?: string;
}

/**
 * Advice for other frameworks' names of the state, in the message that refuses them:
 * "PyTorch's weight is gamma here; fromPyTorchState converts a whole state_dict".
 */
export function stateHints(...sources: StateNames[]): Readonly<Record<string, string>> {
  const hints: Record<string, string> = {};
  for (const { framework, names, how } of sources) {
    for (const [theirs, ours] of Object.entries(names)) hints[theirs] = `${framework}'s ${theirs} is ${ours} here${how ? `; ${how}` : ''}`;
  }
  return hints;
}

/** What a layer's setState takes and where it writes it (see {@link LayerCore.writeState}). */
export interface StateSpec {
  /** Every name setState takes, as its messages list them. */
  names: readonly string[];
  /** Advice for other frameworks' names (stateHints). */
  hints: Readonly<Record<string, string>>;
  /** The buffer of each array entry, in the order they are checked: γ, β, then the running statistics. */
  arrays: Readonly<Record<string, TensorBuffer>>;
  /** Entries of each array, and what sets that number (for messages; default 'numFeatures'). */
  length: number;
  sizeName?: string;
  /**
   * Why γ or β is fixed, for the message that refuses any value but its fixed one (1 for γ, 0
   * for β); absent: learnable.
   */
  fixed: Readonly<Partial<Record<'gamma' | 'beta', string>>>;
  /** Only 'update' lets the running statistics be non-finite (its training can make them NaN). */
  nonFiniteBatches: 'skip' | 'update';
  /** Checks the entries that are not arrays (BatchNorm's numBatchesTracked): their writes. */
  scalars?(state: Readonly<Record<string, unknown>>): StateWrite[];
}

/** A recorded forward pass, as the skeleton tracks it for the backward pass and getStats. */
export interface RecordedPass {
  /** The input it read, which the array API's backward reads again. */
  x: TensorBuffer;
  /** Its shape, for messages. */
  shape: readonly number[];
  /** Where it saved its statistics. */
  saved: TensorBuffer;
  /** For an array call, whether it ran; null: recorded into the caller's encoder. */
  outcome: CallOutcome | null;
  /** setState wrote γ or β since. */
  paramsSet?: boolean;
}

/**
 * The forward passes a layer recorded: the last of either way in, which getStats reads, and the
 * last of each way in: encodeBackward differentiates the last encodeForward, backward() the last
 * forward(), whatever the other way recorded in between.
 */
export class PassHistory<P extends RecordedPass> {
  /** The last pass of either way in. */
  last: P | null = null;
  private readonly of: Record<'encode' | 'array', P | null> = { encode: null, array: null };

  /** Remembers a pass just recorded (an array call's when it has an outcome). */
  add(pass: P): void {
    this.last = this.of[pass.outcome ? 'array' : 'encode'] = pass;
  }

  /** The last pass encodeForward recorded. */
  get encoded(): P | null {
    return this.of.encode;
  }

  /** The last pass forward() recorded. */
  get called(): P | null {
    return this.of.array;
  }

  /** setState wrote γ or β: the backward pass of a pass so far would mix old and new parameters. */
  paramsWritten(): void {
    for (const pass of [this.of.encode, this.of.array]) if (pass) pass.paramsSet = true;
  }

  clear(): void {
    this.last = this.of.encode = this.of.array = null;
  }
}

/**
 * An array call that runs one pass on the caller's array (forward, adapt, transform, inverse):
 * see {@link LayerCore.passCall}.
 */
export interface ArrayPass<V, C> {
  /** Checked first (inside the call, after the device check). */
  arity?: Arity;
  /** The argument's name in messages ('x', 'data'), what the caller passed, its shape and element type. */
  input: { name: string; data: unknown; shape: readonly number[]; dtype: DType };
  /** Checks the shape: its view and its number of elements. */
  view(): readonly [view: V, elements: number];
  /** Checks the rest, before the array API's buffers may be replaced (so a refused call loses no state). */
  check?(view: V): C;
  /** Records the pass from io.x into io.y; may name the call it reads after, and what to let go of if it fails. */
  record(encoder: GPUCommandEncoder, io: IoBuffers, view: V, checked: C, outcome: CallOutcome): Pick<ArrayCall<unknown>, 'after' | 'discard'> | void;
  /** Whether the call resolves with y (default); adapt() reads nothing back. */
  output?: boolean;
}

/** A backward() call: see {@link LayerCore.backwardCall}. */
export interface ArrayBackward<P extends RecordedPass> {
  /** Checked first (inside the call, after the device check). */
  arity?: Arity;
  /** dL/dy as the caller passed it, and the layer's element type. */
  dy: unknown;
  dtype: DType;
  /** Elements of the forward pass's input. */
  elements(last: P): number;
  /** Records the backward pass of `last` from io.x and io.dy into io.dx. */
  record(encoder: GPUCommandEncoder, last: P, io: IoBuffers): void;
  /** Where the pass leaves dL/dγ and dL/dβ, and their bytes. */
  gammaGrad: TensorBuffer;
  betaGrad: TensorBuffer;
  paramBytes: number;
  /** Whether γ and β are learnable: a fixed one's gradient resolves as null. */
  learnable: readonly [gamma: boolean, beta: boolean];
}

/** What backward() resolves with: dL/dx, and dL/dγ and dL/dβ where learnable. */
export interface BackwardArrays {
  dx: Float32Array;
  dgamma: Float32Array | null;
  dbeta: Float32Array | null;
}

export class LayerCore<P extends RecordedPass = RecordedPass> {
  readonly guard: DeviceGuard;
  /** The forward passes recorded so far (layers with a backward pass). */
  readonly passes = new PassHistory<P>();
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
    readonly kind: string,
  ) {
    this.guard = new DeviceGuard(device, label, `a new ${kind}`);
  }

  /** A buffer of the layer's own holding `data`, destroyed with the layer. */
  ownBuffer(name: string, data: Float32Array | Uint32Array | ArrayBuffer, usage: number): GPUBuffer {
    const buffer = createBufferWithData(this.device, `${this.label} ${name}`, data, usage);
    this.owned.add(buffer);
    return buffer;
  }

  /** A state buffer: the caller's `given`, or one of the layer's own holding `init`. */
  stateBuffer(given: TensorBuffer | undefined, name: string, init: Float32Array | Uint32Array): TensorBuffer {
    return given ?? this.ownBuffer(name, init, Usage.STORAGE | Usage.COPY_SRC | Usage.COPY_DST);
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
   * resolving with what the failed copies left (zeros). `arity`, if given, is checked first in it.
   */
  call<T>(what: string, work: (encoder: GPUCommandEncoder, outcome: CallOutcome) => ArrayCall<T>, arity?: Arity): Promise<T> {
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
      if (arity) checkArity(...arity);
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
   * An array call running one pass on the caller's array: checks the shape (`pass.view`), then the
   * array (copied at the call: float32, or half bits for float16), then the rest (`pass.check`);
   * uploads it into the array API's x buffer, records the pass into y, and resolves with y as
   * float32 values (an empty array where `pass.output` is false).
   */
  passCall<V, C>(what: string, pass: ArrayPass<V, C>): Promise<Float32Array> {
    const { name, data, shape, dtype } = pass.input;
    const output = pass.output ?? true;
    return this.call(
      what,
      (encoder, outcome) => {
        const [view, elements] = pass.view();
        const upload = tensorUpload(name, data, dtype, elements, `shape [${shape.join(', ')}]`);
        const checked = pass.check?.(view) as C;
        const io = this.ioBuffers(upload.byteLength);
        const recorded = pass.record(encoder, io, view, checked, outcome) ?? {};
        return {
          uploads: [[io.x, upload]],
          read: output ? [{ buffer: io.y, size: upload.byteLength }] : [],
          after: output ? recorded.after : null,
          discard: recorded.discard,
          result: ([y]) => (output ? tensorDownload(y, dtype, elements) : new Float32Array(0)),
        };
      },
      pass.arity,
    );
  }

  /**
   * backward(): the backward pass of the last forward() call (whatever encodeForward recorded
   * since) on dy (copied at the call). Resolves with dL/dx and, where learnable, dL/dγ and dL/dβ;
   * rejects if that forward call failed, or if setState changed γ or β since it.
   */
  backwardCall(spec: ArrayBackward<P>): Promise<BackwardArrays> {
    return this.call(
      'backward()',
      (encoder) => {
        const last = this.passes.called;
        const io = this.io;
        if (!io || !last || last.x !== io.x) throw new Error('backward() needs forward() first (after encodeForward, use encodeBackward)');
        checkParamsUnchanged(this.label, last, 'backward');
        const elements = spec.elements(last);
        const upload = tensorUpload('dy', spec.dy, spec.dtype, elements, `the last forward pass's shape [${last.shape.join(', ')}]`);
        spec.record(encoder, last, io);
        const [gamma, beta] = spec.learnable;
        return {
          uploads: [[io.dy, upload]],
          read: [{ buffer: io.dx, size: upload.byteLength }, regionOf(spec.gammaGrad, spec.paramBytes), regionOf(spec.betaGrad, spec.paramBytes)],
          after: last.outcome,
          result: ([dx, dgamma, dbeta]) => ({
            dx: tensorDownload(dx, spec.dtype, elements),
            dgamma: gamma ? new Float32Array(dgamma) : null,
            dbeta: beta ? new Float32Array(dbeta) : null,
          }),
        };
      },
      spec.arity,
    );
  }

  /**
   * getStats(): reads back `bytes` of what the last forward pass (of either way in) saved, and
   * resolves with `parse` of them; rejects if that was a forward() call and it failed.
   */
  statsCall<T>(bytes: (last: P) => number, parse: (saved: ArrayBuffer, last: P) => T, arity?: Arity): Promise<T> {
    return this.call(
      'getStats()',
      () => {
        const last = this.passes.last;
        if (!last) throw new Error('getStats() needs a forward pass first');
        return { read: [regionOf(last.saved, bytes(last))], after: last.outcome, result: ([saved]) => parse(saved, last) };
      },
      arity,
    );
  }

  /**
   * setState(): checks every entry of `state` before writing any (only the names of `spec`; each
   * array of `spec.length` numbers; γ and β finite, a fixed one only its fixed value; the running
   * variance >= 0; the running statistics finite unless nonFiniteBatches is 'update'), then
   * writes them through the queue (see {@link write}). Writing γ or β makes a backward pass of an
   * earlier forward pass throw.
   */
  writeState(state: unknown, spec: StateSpec): void {
    if (!state || typeof state !== 'object') throw new TypeError(`state must be an object of ${spec.names.join(', ')}; got ${describeValue(state)}`);
    checkKnownKeys('state', state, { names: spec.names, what: `a state entry of ${this.kind}`, hints: spec.hints });
    const entries = state as Readonly<Record<string, unknown>>;
    // Training folds NaN into the running statistics only with nonFiniteBatches: 'update'.
    const runningRule =
      spec.nonFiniteBatches === 'update' ? { finite: false } : { finite: true, nonFiniteHint: "a layer holds non-finite running statistics only with nonFiniteBatches: 'update'" };
    const writes: StateWrite[] = [];
    for (const [key, target] of Object.entries(spec.arrays)) {
      const value = entries[key];
      if (value === undefined) continue;
      checkStateArray(`state.${key}`, value, spec.length, spec.sizeName);
      const fixedBy = key === 'gamma' || key === 'beta' ? spec.fixed[key] : undefined;
      if (fixedBy !== undefined) {
        const fixedValue = key === 'gamma' ? 1 : 0;
        const i = Array.prototype.findIndex.call(value, (v) => v !== fixedValue);
        if (i >= 0) {
          throw new TypeError(
            `state.${key} cannot be set: it is fixed in this layer (${fixedBy}) and takes only its fixed value ${fixedValue}; got ${describeValue(value[i])} at state.${key}[${i}]`,
          );
        }
        continue; // the buffer already holds it
      }
      const rule = key === 'gamma' || key === 'beta' ? { finite: true } : { ...runningRule, nonNegative: key === 'runningVar' };
      writes.push([target, checkStateValues(`state.${key}`, value, rule)]);
    }
    writes.push(...(spec.scalars?.(entries) ?? []));
    this.write('setState', writes);
    const { gamma, beta } = spec.arrays;
    if (writes.some(([target]) => target === gamma || target === beta)) this.passes.paramsWritten();
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
    this.passes.clear();
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
  if (!ok) throw new TypeError(`${argName} must be ${accepted} for a ${dtype} layer; got ${describeValue(data)}`);
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
