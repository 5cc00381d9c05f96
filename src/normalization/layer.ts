/**
 * The normalization family's layers: LayerNorm, RMSNorm, GroupNorm and InstanceNorm, with
 * PyTorch's semantics and BatchNorm's three APIs (arrays, encode on caller buffers, and the
 * function forms in normalization/functions.ts). Each class resolves its options and passes them
 * to the family's one base class, which owns the buffers and records the ops
 * (normalization/record.ts) into the caller's encoder; the array calls, state writes and device
 * checks are the shared layer skeleton's (core/layer.ts).
 */
import { NORM_SAVED_BYTES_PER_GROUP } from './kernels.js';
import { geometrySize, normPlan, type NormGeometry, type NormMode, type NormPlan } from './plan.js';
import { recordNormBackward, recordNormForward } from './record.js';
import type { DType } from '../core/plans.js';
import { Usage, regionOf, inComputePass, type TensorBuffer } from '../core/gpu.js';
import { acquireScratch, acquireSink } from '../core/scratch.js';
import { arityError, checkArity, checkCallOptions, checkEncoder, checkFixedParams, checkKnownKeys, checkTensorBuffer, describeValue } from '../core/validate.js';
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
import {
  GRADIENT_USAGE,
  LayerCore,
  PYTORCH_STATE_NAMES,
  checkBufferUsage,
  checkLayerDevice,
  checkParamsUnchanged,
  describePass,
  stateHints,
  stateUsage,
  type CallOutcome,
  type RecordedPass,
  type StateSpec,
} from '../core/layer.js';

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

/** Advice for other frameworks' names of the state, in the message that refuses them. */
const STATE_HINTS = stateHints(
  { framework: 'PyTorch', names: PYTORCH_STATE_NAMES, how: 'fromPyTorchState(stateDict, { kind }) converts a whole state_dict' },
  { framework: 'ONNX', names: { scale: 'gamma', B: 'beta' } },
);

/** The most bytes one saved-statistics buffer may have: it is bound whole. */
function savedLimit(device: GPUDevice): number {
  const limit = Math.min(device.limits.maxStorageBufferBindingSize, device.limits.maxBufferSize);
  return limit - (limit % NORM_SAVED_BYTES_PER_GROUP);
}

/** What a recorded forward pass leaves for its backward pass and getStats. */
interface NormForwardRecord extends RecordedPass {
  shape: number[];
  geometry: NormGeometry;
  mode: NormMode;
  saved: GPUBuffer;
}

/**
 * What the four layers share: their buffers, checks and passes. Not exported: the four classes
 * below are the API, and each adds only its own options' fields.
 */
abstract class NormalizationLayer {
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
  /** β (paramSize float32); RMSNorm has no β, and γ stands in for it, never bound. */
  protected readonly beta: TensorBuffer;
  /** dL/dβ of the last backward pass (RMSNorm: stands in, never bound). */
  protected readonly betaGrad: TensorBuffer;
  /** InstanceNorm's running statistics; null without trackRunningStats. */
  protected readonly runningMean: TensorBuffer | null;
  protected readonly runningVar: TensorBuffer | null;

  private readonly o: ResolvedNormOptions;
  private readonly core: LayerCore<NormForwardRecord>;
  /** What setState takes and where it writes it. */
  private readonly stateSpec: StateSpec;
  /**
   * The layer's `saved` statistics, grown geometrically with the batch (a replaced one lives until
   * destroy: a recorded pass may still read it): one for passes recorded into the caller's
   * encoder, and one for the array API, so that a caller's pass submitted later cannot change
   * what the array API's backward differentiates.
   */
  private readonly saved: Record<'encode' | 'array', GPUBuffer | null> = { encode: null, array: null };
  /** Array forward calls that used saved.array so far. */
  private savedUses = 0;

  protected constructor(device: GPUDevice, o: ResolvedNormOptions, given: Partial<Record<NormBufferName, TensorBuffer>> | undefined) {
    checkLayerDevice(device);
    const core = new LayerCore<NormForwardRecord>(device, o.label, o.className);
    const names: NormBufferName[] = ['gamma', 'gammaGrad'];
    if (o.kind !== 'rms') names.push('beta', 'betaGrad');
    if (o.trackRunningStats) names.push('runningMean', 'runningVar');
    const buffers = given ?? {};
    if (typeof buffers !== 'object') throw new TypeError(`options.buffers must be an object of GPUBuffers; got ${describeValue(buffers)}`);
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
    this.device = device;
    this.o = o;
    this.core = core;
    this.label = o.label;
    this.dtype = o.dtype;
    this.eps = o.eps;
    this.activation = o.activation;
    this.paramSize = P;
    this.gamma = core.stateBuffer(buffers.gamma, 'gamma', new Float32Array(P).fill(1));
    this.gammaGrad = core.stateBuffer(buffers.gammaGrad, 'gamma grad', new Float32Array(P));
    this.beta = o.kind === 'rms' ? this.gamma : core.stateBuffer(buffers.beta, 'beta', new Float32Array(P));
    this.betaGrad = o.kind === 'rms' ? this.gammaGrad : core.stateBuffer(buffers.betaGrad, 'beta grad', new Float32Array(P));
    this.runningMean = o.trackRunningStats ? core.stateBuffer(buffers.runningMean, 'running mean', new Float32Array(P)) : null;
    this.runningVar = o.trackRunningStats ? core.stateBuffer(buffers.runningVar, 'running var', new Float32Array(P).fill(1)) : null;
    const arrays: Record<string, TensorBuffer> = { gamma: this.gamma };
    if (o.kind !== 'rms') arrays.beta = this.beta;
    if (this.runningMean && this.runningVar) Object.assign(arrays, { runningMean: this.runningMean, runningVar: this.runningVar });
    this.stateSpec = {
      names: Object.keys(arrays),
      hints: STATE_HINTS,
      arrays,
      length: P,
      // What sets the size of γ, β and the running statistics.
      sizeName: o.kind === 'layer' || o.kind === 'rms' ? `the product of normalizedShape [${o.normalizedShape.join(', ')}]` : o.kind === 'group' ? 'numChannels' : 'numFeatures',
      fixed: { gamma: o.hasGamma ? undefined : 'not affine', beta: o.hasBeta ? undefined : 'not affine' },
      nonFiniteBatches: o.nonFiniteBatches,
    };
  }

  /** GPU buffers this layer holds: its own, and the shared plan uniforms and scratch. */
  get bufferCount(): number {
    return this.core.bufferCount;
  }

  /** Records the forward pass into `encoder` (one compute pass; nothing submitted). */
  encodeForward(encoder: GPUCommandEncoder, args: NormForwardArgs): void {
    checkArity('encodeForward', arguments, ['encoder', 'args']);
    this.core.guard.checkUsable();
    checkEncoder('encoder', encoder);
    checkArgsObject(args, 'x, y, shape, training?');
    const training = trainingFlag(args.training, 'args.training');
    const geometry = checkNormForwardTensors(this.device, this.o, args);
    checkNormForwardAliasing(this.device, this.o, geometry, args, {
      prefix: this.label,
      buffers: { gamma: this.o.hasGamma ? this.gamma : undefined, beta: this.o.hasBeta ? this.beta : undefined, runningMean: this.runningMean ?? undefined, runningVar: this.runningVar ?? undefined },
    });
    checkInstanceTrainable(this.o, geometry, args.shape, training);
    this.checkSavedFits(geometry, args.shape, 'args.shape');
    const recorded = describePass(`${this.o.trackRunningStats ? (training ? 'training ' : 'inference ') : ''}forward`, args.shape, { x: args.x, y: args.y });
    this.core.guard.recordChecked('encodeForward', () => this.recordForwardPass(encoder, geometry, this.mode(training), args.x, args.y, args.shape, null), recorded);
  }

  /** Records the backward pass of the last encodeForward: writes dx and overwrites gammaGrad and betaGrad (nothing accumulates). */
  encodeBackward(encoder: GPUCommandEncoder, args: NormBackwardArgs): void {
    checkArity('encodeBackward', arguments, ['encoder', 'args']);
    this.core.guard.checkUsable();
    checkEncoder('encoder', encoder);
    checkArgsObject(args, 'x, dy, dx, shape');
    const last = this.core.passes.encoded;
    const geometry = checkNormBackwardTensors(this.device, this.o, args, last);
    checkParamsUnchanged(this.label, last, 'encodeBackward');
    checkNormBackwardAliasing(this.o, args, {
      prefix: this.label,
      buffers: {
        gamma: this.o.hasGamma ? this.gamma : undefined,
        beta: this.o.hasBeta ? this.beta : undefined,
        gammaGrad: this.o.hasGamma ? this.gammaGrad : undefined,
        betaGrad: this.o.hasBeta ? this.betaGrad : undefined,
      },
    });
    const recorded = describePass('backward', args.shape, { x: args.x, dy: args.dy, dx: args.dx });
    this.core.guard.recordChecked('encodeBackward', () => this.recordBackwardPass(encoder, last!, geometry, args.x, args.dy, args.dx), recorded);
  }

  /**
   * Normalizes `x` (values of `shape`) and resolves with y. A float16 layer takes a Float32Array
   * (rounded to half) or a Uint16Array of half bits. Everything but the readback happens before
   * this returns: `x` and `shape` are copied at the call, and calls on one layer take effect in
   * the order they were made.
   */
  forward(x: Float32Array | Uint16Array, shape: readonly number[], options?: { training?: boolean }): Promise<Float32Array> {
    const error = arityError('forward', arguments, ['x', 'shape', 'options']);
    if (error) return Promise.reject(error);
    return this.core.passCall('forward()', {
      input: { name: 'x', data: x, shape, dtype: this.dtype },
      view: () => {
        const geometry = normGeometryOf(this.device, this.o, shape, 'shape');
        return [geometry, geometrySize(geometry)];
      },
      check: (geometry) => {
        const training = checkCallOptions('options', options, { what: `an option of ${this.o.className}.forward`, layerOptions: NORM_OPTION_KEYS[this.o.className], trainingDefault: true });
        checkInstanceTrainable(this.o, geometry, shape, training);
        this.checkSavedFits(geometry, shape, 'shape');
        return training;
      },
      record: (encoder, io, geometry, training, outcome) => {
        this.recordForwardPass(encoder, geometry, this.mode(training), io.x, io.y, shape, outcome);
        const saved = this.saved.array;
        const use = ++this.savedUses;
        return {
          discard: () => {
            // The saved buffer may be invalid (made out of memory): unless a later forward used it
            // since, the next forward makes a new one.
            if (!saved || this.saved.array !== saved || this.savedUses !== use) return;
            this.saved.array = null;
            this.core.dropBuffer(saved);
          },
        };
      },
    });
  }

  /**
   * Backward pass of the last {@link forward} (dy copied at the call): dL/dx and, where
   * learnable, dL/dγ and dL/dβ. Rejects if that forward call failed.
   */
  backward(dy: Float32Array | Uint16Array): Promise<NormBackwardResult> {
    const error = arityError('backward', arguments, ['dy']);
    if (error) return Promise.reject(error);
    return this.core.backwardCall({
      dy,
      dtype: this.dtype,
      elements: (last) => geometrySize(last.geometry),
      record: (encoder, last, io) => this.recordBackwardPass(encoder, last, last.geometry, io.x, io.dy, io.dx),
      gammaGrad: this.gammaGrad,
      betaGrad: this.betaGrad,
      paramBytes: this.paramSize * 4,
      learnable: [this.o.hasGamma, this.o.hasBeta],
    });
  }

  /** Reads the state back, as the calls made before left it: γ, β (not RMSNorm) and InstanceNorm's running statistics. */
  getState(): Promise<NormState> {
    const error = arityError('getState', arguments, []);
    if (error) return Promise.reject(error);
    return this.core.call('getState()', () => {
      const P = this.paramSize * 4;
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

  /**
   * Writes any subset of the state, checked at the call (PyTorch's names are refused with a
   * hint): calls made before run with the old state, calls made after with the new.
   */
  setState(state: NormStateInput): void {
    checkArity('setState', arguments, ['state']);
    this.core.guard.checkUsable();
    this.core.writeState(state, this.stateSpec);
  }

  /**
   * The statistics the last forward pass normalized with, per group at n·G + g (a pass recorded
   * by encodeForward: once the caller has submitted it). Rejects if that forward call failed.
   */
  getStats(): Promise<GroupStats> {
    const error = arityError('getStats', arguments, []);
    if (error) return Promise.reject(error);
    const groupsOf = (last: NormForwardRecord) => last.geometry.samples * last.geometry.groups;
    return this.core.statsCall(
      (last) => groupsOf(last) * NORM_SAVED_BYTES_PER_GROUP,
      (bytes, last) => {
        const groups = groupsOf(last);
        const coef = new Float32Array(bytes);
        const first = new Float64Array(groups);
        const variance = new Float64Array(groups);
        for (let r = 0; r < groups; r++) {
          first[r] = coef[4 * r] + coef[4 * r + 1];
          variance[r] = coef[4 * r + 3];
        }
        return this.o.kind === 'rms' ? { meanSquare: variance } : { mean: first, variance };
      },
    );
  }

  /** Destroys every buffer this layer created and lets go of the shared ones; calls made before still finish. */
  destroy(): void {
    checkArity('destroy', arguments, []);
    this.core.destroy();
    this.saved.encode = this.saved.array = null;
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
    inComputePass(encoder, `${this.label} forward`, (pass) => {
      recordNormForward(this.device, pass, plan, {
        x,
        y,
        saved,
        gamma: this.o.hasGamma ? this.gamma : undefined,
        beta: this.o.hasBeta ? this.beta : undefined,
        runningMean: this.runningMean ?? undefined,
        runningVar: this.runningVar ?? undefined,
      });
    });
    this.core.passes.add({ shape: [...shape], geometry, mode, saved, x, outcome });
  }

  /** Records the backward pass of the forward pass `last`. */
  private recordBackwardPass(encoder: GPUCommandEncoder, last: NormForwardRecord, geometry: NormGeometry, x: TensorBuffer, dy: TensorBuffer, dx: TensorBuffer): void {
    const plan = this.plan(geometry, { useRunning: last.mode.useRunning, updateRunning: false });
    const scratch = { partials: acquireScratch(this.device, plan.partialBytes, this.core), sink: acquireSink(this.device, this.core) };
    inComputePass(encoder, `${this.label} backward`, (pass) => {
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
    });
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
  declare readonly beta: TensorBuffer;
  /** dL/dβ of the last backward pass. */
  declare readonly betaGrad: TensorBuffer;

  constructor(device: GPUDevice, options: LayerNormOptions) {
    const o = resolveLayerNormOptions(options);
    super(device, o, options.buffers);
    this.normalizedShape = o.normalizedShape;
    this.elementwiseAffine = o.hasGamma;
    this.bias = o.hasBeta;
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
  /** β (numChannels float32). */
  declare readonly beta: TensorBuffer;
  /** dL/dβ of the last backward pass. */
  declare readonly betaGrad: TensorBuffer;

  constructor(device: GPUDevice, options: GroupNormOptions) {
    const o = resolveGroupNormOptions(options);
    super(device, o, options.buffers);
    this.numGroups = o.numGroups;
    this.numChannels = o.numChannels;
    this.affine = o.hasGamma;
    this.layout = o.layout;
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
  /** β (numFeatures float32). */
  declare readonly beta: TensorBuffer;
  /** dL/dβ of the last backward pass. */
  declare readonly betaGrad: TensorBuffer;
  /** Running mean and variance (numFeatures float32), or null without trackRunningStats. */
  declare readonly runningMean: TensorBuffer | null;
  declare readonly runningVar: TensorBuffer | null;

  constructor(device: GPUDevice, options: InstanceNormOptions) {
    const o = resolveInstanceNormOptions(options);
    super(device, o, options.buffers);
    this.numFeatures = o.numChannels;
    this.momentum = o.momentum;
    this.affine = o.hasGamma;
    this.trackRunningStats = o.trackRunningStats;
    this.nonFiniteBatches = o.nonFiniteBatches;
    this.layout = o.layout;
  }
}
