/**
 * The normalization family's layers: LayerNorm, RMSNorm, GroupNorm and InstanceNorm, with
 * PyTorch's semantics and BatchNorm's three APIs (arrays, encode on caller buffers, and the
 * function forms in functions/normalization-functions.ts). Each class resolves its options and
 * hands them to one shared NormLayer, which owns the buffers and records the ops
 * (ops/normalization.ts) into the caller's encoder.
 */
import { NORM_SAVED_BYTES_PER_GROUP } from './kernels.js';
import { geometrySize, normPlan, recordNormBackward, recordNormForward, type NormGeometry, type NormMode, type NormPlan } from './record.js';
import type { DType } from '../core/plan.js';
import { Usage, bufferName, regionOf, type TensorBuffer } from '../core/gpu.js';
import { acquireScratch, acquireSink } from '../core/scratch.js';
import { arityError, checkArity, checkCallOptions, checkEncoder, checkFixedParams, checkKnownKeys, checkStateArray, checkStateValues, checkTensorBuffer, describe } from '../core/validate.js';
import type { Layout } from '../core/layout.js';
import {
  NORM_OPTION_KEYS,
  checkArgsObject,
  checkInstanceTrainable,
  checkNormBackwardAliasing,
  checkNormBackwardTensors,
  checkNormForwardAliasing,
  checkNormForwardTensors,
  checkNormStateBuffers,
  normGeometryOf,
  resolveGroupNormOptions,
  resolveInstanceNormOptions,
  resolveLayerNormOptions,
  resolveRMSNormOptions,
  savedBytes,
  trainingFlag,
  type GroupNormOptions,
  type InstanceNormOptions,
  type LayerNormOptions,
  type NormActivation,
  type NormBufferName,
  type RMSNormOptions,
  type ResolvedNormOptions,
} from './options.js';
import { GRADIENT_USAGE, LayerCore, checkParamsUnchanged, checkBufferUsage, stateUsage, tensorDownload, tensorUpload, type CallOutcome, type StateWrite } from '../core/layer.js';

export type { GroupNormOptions, InstanceNormOptions, LayerNormOptions, NormActivation, RMSNormOptions };

/** Arguments of a family layer's encodeForward. */
export interface NormForwardArgs {
  /** Input tensor of `shape` in the layer's dtype; a buffer or a range of one, with STORAGE usage. */
  x: TensorBuffer;
  /** Output, same size as x, in a GPUBuffer other than x's. */
  y: TensorBuffer;
  shape: readonly number[];
  /** Only InstanceNorm with trackRunningStats tells training (batch statistics, running update) from inference (running statistics). Default true. */
  training?: boolean;
}

/** Arguments of a family layer's encodeBackward. */
export interface NormBackwardArgs {
  x: TensorBuffer;
  /** dL/dy (with a fused activation: with respect to its output). */
  dy: TensorBuffer;
  /** Receives dL/dx, in a GPUBuffer other than x's and dy's. */
  dx: TensorBuffer;
  shape: readonly number[];
}

/** Result of a family layer's backward(): dgamma/dbeta are null where not learnable (RMSNorm's dbeta always). */
export interface NormBackwardResult {
  dx: Float32Array;
  dgamma: Float32Array | null;
  dbeta: Float32Array | null;
}

/** γ, β and (InstanceNorm with running statistics) the running statistics, as plain arrays. */
export interface NormState {
  gamma: Float32Array;
  beta?: Float32Array;
  runningMean?: Float32Array;
  runningVar?: Float32Array;
}

/** What setState accepts: any subset of the layer's state, by these names only. */
export type NormStateInput = Partial<Record<'gamma' | 'beta' | 'runningMean' | 'runningVar', ArrayLike<number>>>;

/** Statistics of the last forward pass, per group at n·G + g (per row; per (sample, channel) for InstanceNorm). */
export interface GroupStats {
  /** LayerNorm, GroupNorm, InstanceNorm: the mean (float32 shift + float32 mean relative to it, added in float64). */
  mean?: Float64Array;
  /** The biased variance normalized with (running variance for InstanceNorm inference). */
  variance?: Float64Array;
  /** RMSNorm: mean(x²). */
  meanSquare?: Float64Array;
}

const STATE_HINTS: Readonly<Record<string, string>> = {
  weight: "PyTorch's weight is gamma here; fromPyTorchState(stateDict, { kind }) converts a whole state_dict",
  bias: "PyTorch's bias is beta here; fromPyTorchState(stateDict, { kind }) converts a whole state_dict",
  running_mean: "PyTorch's running_mean is runningMean here; fromPyTorchState(stateDict, { kind }) converts a whole state_dict",
  running_var: "PyTorch's running_var is runningVar here; fromPyTorchState(stateDict, { kind }) converts a whole state_dict",
  scale: "ONNX's scale is gamma here",
  B: "ONNX's B is beta here",
};

/** The most bytes one saved-statistics buffer may have: it is bound whole. */
function savedLimit(device: GPUDevice): number {
  const limit = Math.min(device.limits.maxStorageBufferBindingSize, device.limits.maxBufferSize);
  return limit - (limit % NORM_SAVED_BYTES_PER_GROUP);
}

/** What a recorded forward pass leaves for its backward pass and getStats. */
interface NormForwardRecord {
  shape: number[];
  geometry: NormGeometry;
  mode: NormMode;
  saved: GPUBuffer;
  x: TensorBuffer;
  /** Whether an array call's pass ran (null: recorded into the caller's encoder). */
  outcome: CallOutcome | null;
  /** setState wrote γ or β since. */
  paramsSet?: boolean;
}

/**
 * The state and passes every family layer shares. Not exported: the four classes below are the
 * API; each keeps one of these.
 */
class NormLayer {
  readonly core: LayerCore;
  readonly gamma: TensorBuffer;
  readonly beta: TensorBuffer;
  readonly gammaGrad: TensorBuffer;
  readonly betaGrad: TensorBuffer;
  readonly runningMean: TensorBuffer | null;
  readonly runningVar: TensorBuffer | null;
  /**
   * The layer's `saved` statistics, grown geometrically with the batch (a replaced one lives until
   * destroy: a recorded pass may still read it): one for passes recorded into the caller's
   * encoder, and one for the array API, so that a caller's pass submitted later cannot change
   * what the array API's backward differentiates.
   */
  private readonly saved: Record<'encode' | 'array', GPUBuffer | null> = { encode: null, array: null };
  /** Array forward calls that used saved.array so far. */
  private savedUses = 0;
  private last: NormForwardRecord | null = null;
  /**
   * The last forward pass of each way in: encodeBackward differentiates the last encodeForward,
   * backward() the last forward(), whatever the other way recorded in between.
   */
  private readonly lastOf: Record<'encode' | 'array', NormForwardRecord | null> = { encode: null, array: null };

  constructor(
    readonly device: GPUDevice,
    readonly o: ResolvedNormOptions,
    given: Partial<Record<NormBufferName, TensorBuffer>> | undefined,
  ) {
    if (!device || typeof (device as GPUDevice).createBuffer !== 'function') throw new TypeError(`device must be a GPUDevice; got ${describe(device)}`);
    this.core = new LayerCore(device, o.label, o.className);
    const names: NormBufferName[] = ['gamma', 'gammaGrad'];
    if (o.kind !== 'rms') names.push('beta', 'betaGrad');
    if (o.trackRunningStats) names.push('runningMean', 'runningVar');
    const buffers = given ?? {};
    if (typeof buffers !== 'object') throw new TypeError(`options.buffers must be an object of GPUBuffers; got ${describe(buffers)}`);
    checkKnownKeys('options.buffers', buffers, { names, what: `a buffer of ${o.className}${o.kind === 'rms' ? ' (RMSNorm has no β)' : ''}` });
    const P = o.paramSize;
    for (const [name, b] of Object.entries(buffers) as [NormBufferName, TensorBuffer][]) {
      checkTensorBuffer(`options.buffers.${name}`, b, P * 4, `${P} float32`, device);
    }
    checkNormStateBuffers(o, buffers, 'options.buffers');
    const fixedBy = o.kind === 'layer' || o.kind === 'rms' ? 'elementwiseAffine false' : 'affine false';
    checkFixedParams('options.buffers', buffers, {
      gamma: o.hasGamma ? null : `γ is fixed at 1 (${fixedBy})`,
      beta: o.hasBeta || o.kind === 'rms' ? null : `β is fixed at 0 (${o.kind === 'layer' && o.hasGamma ? 'bias false' : fixedBy})`,
    });
    checkBufferUsage('options.buffers', buffers, {
      gamma: stateUsage(o.hasGamma),
      beta: stateUsage(o.hasBeta),
      runningMean: stateUsage(true),
      runningVar: stateUsage(true),
      gammaGrad: GRADIENT_USAGE,
      betaGrad: GRADIENT_USAGE,
    });
    const usage = Usage.STORAGE | Usage.COPY_SRC | Usage.COPY_DST;
    const make = (name: NormBufferName, label: string, init: Float32Array) => buffers[name] ?? this.core.ownBuffer(label, init, usage);
    this.gamma = make('gamma', 'gamma', new Float32Array(P).fill(1));
    this.gammaGrad = make('gammaGrad', 'gamma grad', new Float32Array(P));
    // RMSNorm has no β: these stand in for it and are never bound (hasBeta is false).
    this.beta = o.kind === 'rms' ? this.gamma : make('beta', 'beta', new Float32Array(P));
    this.betaGrad = o.kind === 'rms' ? this.gammaGrad : make('betaGrad', 'beta grad', new Float32Array(P));
    this.runningMean = o.trackRunningStats ? make('runningMean', 'running mean', new Float32Array(P)) : null;
    this.runningVar = o.trackRunningStats ? make('runningVar', 'running var', new Float32Array(P).fill(1)) : null;
  }

  /** What sets the size of γ, β and the running statistics, for messages. */
  private get sizeName(): string {
    const o = this.o;
    if (o.kind === 'layer' || o.kind === 'rms') return `the product of normalizedShape [${o.normalizedShape.join(', ')}]`;
    return o.kind === 'group' ? 'numChannels' : 'numFeatures';
  }

  private mode(training: boolean): NormMode {
    const running = this.o.trackRunningStats;
    return { useRunning: running && !training, updateRunning: running && training };
  }

  private savedFor(geometry: NormGeometry, path: 'encode' | 'array'): GPUBuffer {
    const bytes = savedBytes(geometry);
    const current = this.saved[path];
    if (!current || current.size < bytes) {
      // Grown geometrically, but never past what one binding (and one buffer) may hold.
      const size = Math.max(bytes, Math.min(2 * (current?.size ?? 0), savedLimit(this.device)));
      this.saved[path] = this.core.ownBuffer(`saved statistics${path === 'array' ? ' (array API)' : ''}`, new ArrayBuffer(size), Usage.STORAGE | Usage.COPY_SRC);
    }
    return this.saved[path]!;
  }

  /** Refuses a pass whose saved statistics (16 bytes per group) would not fit one binding. */
  private checkSavedFits(geometry: NormGeometry, shape: readonly number[], argName: string): void {
    const bytes = savedBytes(geometry);
    const limit = savedLimit(this.device);
    if (bytes > limit) {
      throw new RangeError(
        `${argName} [${shape.join(', ')}] needs ${bytes} bytes of saved statistics (${NORM_SAVED_BYTES_PER_GROUP} per statistics group), ` +
          `more than this device's ${limit} bytes per binding (maxStorageBufferBindingSize, maxBufferSize); split the batch`,
      );
    }
  }

  private plan(geometry: NormGeometry, mode: NormMode): NormPlan {
    return normPlan(this.device, geometry, this.o, mode, this.core);
  }

  encodeForward(encoder: GPUCommandEncoder, args: NormForwardArgs): void {
    this.core.guard.checkUsable();
    checkEncoder('encoder', encoder);
    checkArgsObject(args, 'x, y, shape, training?');
    const training = trainingFlag(args.training, 'args.training');
    const geometry = checkNormForwardTensors(this.device, this.o, args);
    checkNormForwardAliasing(this.device, this.o, geometry, args, {
      prefix: this.o.label,
      buffers: { gamma: this.o.hasGamma ? this.gamma : undefined, beta: this.o.hasBeta ? this.beta : undefined, runningMean: this.runningMean ?? undefined, runningVar: this.runningVar ?? undefined },
    });
    checkInstanceTrainable(this.o, geometry, args.shape, training);
    this.checkSavedFits(geometry, args.shape, 'args.shape');
    const recorded = `${this.o.trackRunningStats ? (training ? 'training ' : 'inference ') : ''}forward of shape [${args.shape.join(', ')}], x ${bufferName(args.x)}, y ${bufferName(args.y)}`;
    this.core.guard.recordChecked('encodeForward', () => this.recordForwardPass(encoder, geometry, this.mode(training), args.x, args.y, args.shape, null), recorded);
  }

  encodeBackward(encoder: GPUCommandEncoder, args: NormBackwardArgs): void {
    this.core.guard.checkUsable();
    checkEncoder('encoder', encoder);
    checkArgsObject(args, 'x, dy, dx, shape');
    const last = this.lastOf.encode;
    const geometry = checkNormBackwardTensors(this.device, this.o, args, last);
    checkParamsUnchanged(this.o.label, last, 'encodeBackward');
    checkNormBackwardAliasing(this.o, args, {
      prefix: this.o.label,
      buffers: {
        gamma: this.o.hasGamma ? this.gamma : undefined,
        beta: this.o.hasBeta ? this.beta : undefined,
        gammaGrad: this.o.hasGamma ? this.gammaGrad : undefined,
        betaGrad: this.o.hasBeta ? this.betaGrad : undefined,
      },
    });
    const recorded = `backward of shape [${args.shape.join(', ')}], x ${bufferName(args.x)}, dy ${bufferName(args.dy)}, dx ${bufferName(args.dx)}`;
    this.core.guard.recordChecked('encodeBackward', () => this.recordBackwardPass(encoder, last!, geometry, args.x, args.dy, args.dx), recorded);
  }

  forward(x: Float32Array | Uint16Array, shape: readonly number[], options?: { training?: boolean }): Promise<Float32Array> {
    return this.core.call('forward()', (encoder, outcome) => {
      const geometry = normGeometryOf(this.device, this.o, shape, 'shape');
      const elements = geometrySize(geometry);
      const upload = tensorUpload('x', x, this.o.dtype, elements, `shape [${shape.join(', ')}]`);
      const training = checkCallOptions('options', options, { what: `an option of ${this.o.className}.forward`, layerOptions: NORM_OPTION_KEYS[this.o.className], trainingDefault: true });
      // Checked before the I/O buffers may be replaced, so a refused call loses no state.
      checkInstanceTrainable(this.o, geometry, shape, training);
      this.checkSavedFits(geometry, shape, 'shape');
      const io = this.core.ioBuffers(upload.byteLength);
      this.recordForwardPass(encoder, geometry, this.mode(training), io.x, io.y, shape, outcome);
      const saved = this.saved.array;
      const use = ++this.savedUses;
      return {
        uploads: [[io.x, upload]],
        read: [{ buffer: io.y, size: upload.byteLength }],
        discard: () => {
          // The saved buffer may be invalid (made out of memory): unless a later forward used it
          // since, the next forward makes a new one.
          if (!saved || this.saved.array !== saved || this.savedUses !== use) return;
          this.saved.array = null;
          this.core.dropBuffer(saved);
        },
        result: ([y]) => tensorDownload(y, this.o.dtype, elements),
      };
    });
  }

  backward(dy: Float32Array | Uint16Array): Promise<NormBackwardResult> {
    return this.core.call('backward()', (encoder) => {
      const last = this.lastOf.array;
      const io = this.core.currentIo;
      if (!io || !last || last.x !== io.x) throw new Error('backward() needs forward() first (after encodeForward, use encodeBackward)');
      checkParamsUnchanged(this.o.label, last, 'backward');
      const elements = geometrySize(last.geometry);
      const upload = tensorUpload('dy', dy, this.o.dtype, elements, `the last forward pass's shape [${last.shape.join(', ')}]`);
      this.recordBackwardPass(encoder, last, last.geometry, io.x, io.dy, io.dx);
      const P = this.o.paramSize * 4;
      return {
        uploads: [[io.dy, upload]],
        read: [{ buffer: io.dx, size: upload.byteLength }, regionOf(this.gammaGrad, P), regionOf(this.betaGrad, P)],
        after: last.outcome,
        result: ([dx, dgamma, dbeta]) => ({
          dx: tensorDownload(dx, this.o.dtype, elements),
          dgamma: this.o.hasGamma ? new Float32Array(dgamma) : null,
          dbeta: this.o.hasBeta ? new Float32Array(dbeta) : null,
        }),
      };
    });
  }

  getState(): Promise<NormState> {
    return this.core.call('getState()', () => {
      const P = this.o.paramSize * 4;
      const read = [regionOf(this.gamma, P)];
      if (this.o.kind !== 'rms') read.push(regionOf(this.beta, P));
      if (this.runningMean && this.runningVar) read.push(regionOf(this.runningMean, P), regionOf(this.runningVar, P));
      return {
        read,
        result: (bytes) => {
          const [gamma, ...rest] = bytes.map((b) => new Float32Array(b));
          const state: NormState = { gamma };
          if (this.o.kind !== 'rms') state.beta = rest.shift();
          if (this.runningMean) {
            state.runningMean = rest.shift();
            state.runningVar = rest.shift();
          }
          return state;
        },
      };
    });
  }

  setState(state: NormStateInput): void {
    this.core.guard.checkUsable();
    const names = ['gamma', ...(this.o.kind === 'rms' ? [] : ['beta']), ...(this.runningMean ? ['runningMean', 'runningVar'] : [])];
    if (!state || typeof state !== 'object') throw new TypeError(`state must be an object of ${names.join(', ')}; got ${describe(state)}`);
    checkKnownKeys('state', state, { names, what: `a state entry of ${this.o.className}`, hints: STATE_HINTS });
    const targets: Record<string, TensorBuffer> = { gamma: this.gamma, beta: this.beta };
    if (this.runningMean && this.runningVar) Object.assign(targets, { runningMean: this.runningMean, runningVar: this.runningVar });
    const runningRule =
      this.o.nonFiniteBatches === 'update' ? { finite: false } : { finite: true, nonFiniteHint: "a layer holds non-finite running statistics only with nonFiniteBatches: 'update'" };
    const writes: StateWrite[] = [];
    for (const key of names) {
      const value = (state as Record<string, ArrayLike<number> | undefined>)[key];
      if (value === undefined) continue;
      checkStateArray(`state.${key}`, value, this.o.paramSize, this.sizeName);
      const fixed = (key === 'gamma' && !this.o.hasGamma) || (key === 'beta' && !this.o.hasBeta);
      if (fixed) {
        const fixedValue = key === 'gamma' ? 1 : 0;
        const i = Array.prototype.findIndex.call(value, (v) => v !== fixedValue);
        if (i >= 0) {
          throw new TypeError(`state.${key} cannot be set: it is fixed in this layer (not affine) and takes only its fixed value ${fixedValue}; got ${describe(value[i])} at state.${key}[${i}]`);
        }
        continue;
      }
      const rule = key === 'gamma' || key === 'beta' ? { finite: true } : { ...runningRule, nonNegative: key === 'runningVar' };
      writes.push([targets[key], checkStateValues(`state.${key}`, value, rule)]);
    }
    this.core.write('setState', writes);
    if (writes.some(([target]) => target === this.gamma || target === this.beta)) {
      for (const last of [this.lastOf.encode, this.lastOf.array]) if (last) last.paramsSet = true;
    }
  }

  getStats(): Promise<GroupStats> {
    return this.core.call('getStats()', () => {
      const last = this.last;
      if (!last) throw new Error('getStats() needs a forward pass first');
      const groups = last.geometry.samples * last.geometry.groups;
      return {
        read: [regionOf(last.saved, groups * NORM_SAVED_BYTES_PER_GROUP)],
        after: last.outcome,
        result: ([bytes]) => {
          const coef = new Float32Array(bytes);
          const first = new Float64Array(groups);
          const variance = new Float64Array(groups);
          for (let r = 0; r < groups; r++) {
            first[r] = coef[4 * r] + coef[4 * r + 1];
            variance[r] = coef[4 * r + 3];
          }
          return this.o.kind === 'rms' ? { meanSquare: variance } : { mean: first, variance };
        },
      };
    });
  }

  /** Records a forward pass and remembers it for the backward pass and getStats. */
  private recordForwardPass(
    encoder: GPUCommandEncoder,
    geometry: NormGeometry,
    mode: NormMode,
    x: TensorBuffer,
    y: TensorBuffer,
    shape: readonly number[],
    outcome: CallOutcome | null,
  ): void {
    const saved = this.savedFor(geometry, outcome ? 'array' : 'encode');
    const plan = this.plan(geometry, mode);
    const pass = encoder.beginComputePass({ label: `${this.o.label} forward` });
    recordNormForward(this.device, pass, plan, {
      x,
      y,
      saved,
      gamma: this.o.hasGamma ? this.gamma : undefined,
      beta: this.o.hasBeta ? this.beta : undefined,
      runningMean: this.runningMean ?? undefined,
      runningVar: this.runningVar ?? undefined,
    });
    pass.end();
    this.last = this.lastOf[outcome ? 'array' : 'encode'] = { shape: [...shape], geometry, mode, saved, x, outcome };
  }

  /** Records the backward pass of the forward pass `last`. */
  private recordBackwardPass(encoder: GPUCommandEncoder, last: NormForwardRecord, geometry: NormGeometry, x: TensorBuffer, dy: TensorBuffer, dx: TensorBuffer): void {
    const plan = this.plan(geometry, { useRunning: last.mode.useRunning, updateRunning: false });
    const scratch = { partials: acquireScratch(this.device, plan.partialBytes, this.core), sink: acquireSink(this.device, this.core) };
    const pass = encoder.beginComputePass({ label: `${this.o.label} backward` });
    recordNormBackward(
      this.device,
      pass,
      plan,
      {
        x,
        dy,
        dx,
        saved: last.saved,
        gamma: this.o.hasGamma ? this.gamma : undefined,
        beta: this.o.hasBeta ? this.beta : undefined,
        dgamma: this.o.hasGamma ? this.gammaGrad : undefined,
        dbeta: this.o.hasBeta ? this.betaGrad : undefined,
      },
      scratch,
    );
    pass.end();
  }

  destroy(): void {
    this.core.destroy();
    this.last = this.lastOf.encode = this.lastOf.array = null;
    this.saved.encode = this.saved.array = null;
  }
}

/** The fields and methods the four layers share, delegated to their NormLayer. */
abstract class NormalizationLayer {
  /** @internal */
  protected readonly layer: NormLayer;
  /** The device every buffer of this layer lives on. */
  readonly device: GPUDevice;
  /** Prefix of every GPU object's label. */
  readonly label: string;
  /** Storage of x, y, dy and dx. */
  readonly dtype: DType;
  /** Added to the variance (RMSNorm: mean(x²)) before the square root. */
  readonly eps: number;
  /** The activation fused after the affine transform. */
  readonly activation: NormActivation;
  /** Entries of γ (and β). */
  readonly paramSize: number;
  /** γ (paramSize float32; holds 1 where not learnable), or the caller's buffer from options.buffers. */
  readonly gamma: TensorBuffer;
  /** dL/dγ of the last backward pass. */
  readonly gammaGrad: TensorBuffer;

  protected constructor(device: GPUDevice, o: ResolvedNormOptions, buffers: Partial<Record<NormBufferName, TensorBuffer>> | undefined) {
    this.layer = new NormLayer(device, o, buffers);
    this.device = device;
    this.label = o.label;
    this.dtype = o.dtype;
    this.eps = o.eps;
    this.activation = o.activation;
    this.paramSize = o.paramSize;
    this.gamma = this.layer.gamma;
    this.gammaGrad = this.layer.gammaGrad;
  }

  /** GPU buffers this layer holds: its own, and the shared plan uniforms and scratch. */
  get bufferCount(): number {
    return this.layer.core.bufferCount;
  }

  /** Records the forward pass into `encoder` (one compute pass; nothing submitted). */
  encodeForward(encoder: GPUCommandEncoder, args: NormForwardArgs): void {
    checkArity('encodeForward', arguments, ['encoder', 'args']);
    this.layer.encodeForward(encoder, args);
  }

  /** Records the backward pass of the last encodeForward: writes dx and overwrites gammaGrad and betaGrad (nothing accumulates). */
  encodeBackward(encoder: GPUCommandEncoder, args: NormBackwardArgs): void {
    checkArity('encodeBackward', arguments, ['encoder', 'args']);
    this.layer.encodeBackward(encoder, args);
  }

  /**
   * Normalizes `x` (values of `shape`) and resolves with y. A float16 layer takes a Float32Array
   * (rounded to half) or a Uint16Array of half bits. Everything but the readback happens before
   * this returns: `x` and `shape` are copied at the call, and calls on one layer take effect in
   * the order they were made.
   */
  forward(x: Float32Array | Uint16Array, shape: readonly number[], options?: { training?: boolean }): Promise<Float32Array> {
    const error = arityError('forward', arguments, ['x', 'shape', 'options']);
    return error ? Promise.reject(error) : this.layer.forward(x, shape, options);
  }

  /**
   * Backward pass of the last {@link forward} (dy copied at the call): dL/dx and, where
   * learnable, dL/dγ and dL/dβ. Rejects if that forward call failed.
   */
  backward(dy: Float32Array | Uint16Array): Promise<NormBackwardResult> {
    const error = arityError('backward', arguments, ['dy']);
    return error ? Promise.reject(error) : this.layer.backward(dy);
  }

  /** Reads the state back, as the calls made before left it: γ, β (not RMSNorm) and InstanceNorm's running statistics. */
  getState(): Promise<NormState> {
    const error = arityError('getState', arguments, []);
    return error ? Promise.reject(error) : this.layer.getState();
  }

  /**
   * Writes any subset of the state, checked at the call (PyTorch's names are refused with a
   * hint): calls made before run with the old state, calls made after with the new.
   */
  setState(state: NormStateInput): void {
    checkArity('setState', arguments, ['state']);
    this.layer.setState(state);
  }

  /**
   * The statistics the last forward pass normalized with, per group at n·G + g (a pass recorded
   * by encodeForward: once the caller has submitted it). Rejects if that forward call failed.
   */
  getStats(): Promise<GroupStats> {
    const error = arityError('getStats', arguments, []);
    return error ? Promise.reject(error) : this.layer.getStats();
  }

  /** Destroys every buffer this layer created and lets go of the shared ones; calls made before still finish. */
  destroy(): void {
    checkArity('destroy', arguments, []);
    this.layer.destroy();
  }
}

/**
 * Layer normalization (PyTorch's nn.LayerNorm): each sample's trailing `normalizedShape` values
 * share a mean and variance; γ and β have one entry per normalized position.
 *
 * @example
 * const ln = new LayerNorm(device, { normalizedShape: 768 });
 * const y = await ln.forward(x, [batch, tokens, 768]);
 * const { dx, dgamma, dbeta } = await ln.backward(dy);
 */
export class LayerNorm extends NormalizationLayer {
  /** The trailing dimensions normalized over. */
  readonly normalizedShape: readonly number[];
  /** Whether γ (and with bias, β) is learnable. */
  readonly elementwiseAffine: boolean;
  /** Whether β is learnable. */
  readonly bias: boolean;
  /** β (paramSize float32). */
  readonly beta: TensorBuffer;
  /** dL/dβ of the last backward pass. */
  readonly betaGrad: TensorBuffer;

  constructor(device: GPUDevice, options: LayerNormOptions) {
    const o = resolveLayerNormOptions(options);
    super(device, o, options.buffers);
    this.normalizedShape = o.normalizedShape;
    this.elementwiseAffine = o.hasGamma;
    this.bias = o.hasBeta;
    this.beta = this.layer.beta;
    this.betaGrad = this.layer.betaGrad;
  }
}

/**
 * Root-mean-square normalization (PyTorch's nn.RMSNorm): y = x / sqrt(mean(x²) + eps) · γ over
 * the trailing `normalizedShape`; no β, no mean subtracted.
 *
 * @example
 * const rms = new RMSNorm(device, { normalizedShape: 4096 });
 * const y = await rms.forward(x, [tokens, 4096]);
 */
export class RMSNorm extends NormalizationLayer {
  readonly normalizedShape: readonly number[];
  readonly elementwiseAffine: boolean;

  constructor(device: GPUDevice, options: RMSNormOptions) {
    const o = resolveRMSNormOptions(options);
    super(device, o, options.buffers);
    this.normalizedShape = o.normalizedShape;
    this.elementwiseAffine = o.hasGamma;
  }
}

/**
 * Group normalization (PyTorch's nn.GroupNorm): per sample, each group of numChannels / numGroups
 * consecutive channels shares a mean and variance; γ and β are per channel. Any layout of rank
 * 2–5, channels-first or channels-last.
 *
 * @example
 * const gn = new GroupNorm(device, { numGroups: 32, numChannels: 256, activation: 'silu' });
 * const y = await gn.forward(x, [16, 256, 64, 64]);
 */
export class GroupNorm extends NormalizationLayer {
  readonly numGroups: number;
  readonly numChannels: number;
  readonly affine: boolean;
  readonly layout: Layout;
  readonly beta: TensorBuffer;
  readonly betaGrad: TensorBuffer;

  constructor(device: GPUDevice, options: GroupNormOptions) {
    const o = resolveGroupNormOptions(options);
    super(device, o, options.buffers);
    this.numGroups = o.numGroups;
    this.numChannels = o.numChannels;
    this.affine = o.hasGamma;
    this.layout = o.layout;
    this.beta = this.layer.beta;
    this.betaGrad = this.layer.betaGrad;
  }
}

/**
 * Instance normalization (PyTorch's nn.InstanceNorm1d/2d/3d): each (sample, channel) is
 * normalized over its spatial positions. With trackRunningStats, training passes update running
 * statistics as PyTorch does and inference passes (`training: false`) normalize with them.
 *
 * @example
 * const inorm = new InstanceNorm(device, { numFeatures: 64, affine: true });
 * const y = await inorm.forward(x, [8, 64, 256, 256]);
 */
export class InstanceNorm extends NormalizationLayer {
  readonly numFeatures: number;
  readonly momentum: number;
  readonly affine: boolean;
  readonly trackRunningStats: boolean;
  readonly nonFiniteBatches: 'skip' | 'update';
  readonly layout: Layout;
  readonly beta: TensorBuffer;
  readonly betaGrad: TensorBuffer;
  /** Running mean and variance (numFeatures float32), or null without trackRunningStats. */
  readonly runningMean: TensorBuffer | null;
  readonly runningVar: TensorBuffer | null;

  constructor(device: GPUDevice, options: InstanceNormOptions) {
    const o = resolveInstanceNormOptions(options);
    super(device, o, options.buffers);
    this.numFeatures = o.numChannels;
    this.momentum = o.momentum;
    this.affine = o.hasGamma;
    this.trackRunningStats = o.trackRunningStats;
    this.nonFiniteBatches = o.nonFiniteBatches;
    this.layout = o.layout;
    this.beta = this.layer.beta;
    this.betaGrad = this.layer.betaGrad;
    this.runningMean = this.layer.runningMean;
    this.runningVar = this.layer.runningVar;
  }
}
