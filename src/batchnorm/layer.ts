/**
 * The BatchNorm layer: owns γ, β, the running statistics and the gradient buffers on one
 * GPUDevice (or uses the caller's), checks each call, and records the batch-norm ops
 * (record.ts) into the caller's command encoder. The array API (forward, backward,
 * getState, ...) stages arrays through buffers of its own.
 */
import type { FusedActivation } from '../core/contract.js';
import { CHANNEL_COEF_BYTES, COEF_PLANES } from './kernels.js';
import { recordBackward, recordForward, type BatchNormStateBuffers } from './record.js';
import { batchNormPlan, type BatchNormMode } from './plan.js';
import { Usage, regionOf, inComputePass, type TensorBuffer } from '../core/gpu.js';
import { acquireScratch } from '../core/scratch.js';
import { arityError, checkArity, checkCallOptions, checkEncoder, checkFixedParams, describeValue } from '../core/validate.js';
import { viewSize, type ChannelView, type Layout } from '../core/layout.js';
import {
  BATCHNORM_OPTIONS,
  STATE_BUFFERS,
  checkBackwardAliasing,
  checkBackwardArgs,
  checkForwardAliasing,
  checkForwardArgs,
  checkStateBuffers,
  checkTrainable,
  checkedView,
  forwardMode,
  momentumWarning,
  resolveBatchNormOptions,
  type BatchNormOptions,
  type DType,
  type ForwardRecord,
  type ResolvedBatchNormOptions,
  type StateBufferName,
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
  type UsageNeeds,
} from '../core/layer.js';

export { STATE_BUFFERS };
export type { BatchNormOptions, DType, StateBufferName };

/** Arguments of {@link BatchNorm.encodeForward}. */
export interface ForwardArgs {
  /** Input tensor of `shape` in the layer's dtype; a buffer or a range of one, with STORAGE usage. */
  x: TensorBuffer;
  /** Output, same size as x, in a GPUBuffer other than x's. */
  y: TensorBuffer;
  /** Tensor shape in the layer's layout. */
  shape: readonly number[];
  /** Training: normalize with batch statistics and update the running statistics. */
  training: boolean;
}

/** Arguments of {@link BatchNorm.encodeBackward}. */
export interface BackwardArgs {
  /** The input of the forward pass this backward pass belongs to. */
  x: TensorBuffer;
  /** Gradient of the loss with respect to y (with a fused ReLU: with respect to the ReLU's output). */
  dy: TensorBuffer;
  /** Receives the gradient with respect to x, in a GPUBuffer other than x's and dy's. */
  dx: TensorBuffer;
  /** The forward pass's shape. */
  shape: readonly number[];
}

/** Parameters and running statistics of a layer, as plain arrays. */
export interface BatchNormState {
  gamma: Float32Array;
  beta: Float32Array;
  runningMean: Float32Array;
  runningVar: Float32Array;
  numBatchesTracked: number;
}

/**
 * What {@link BatchNorm.setState} accepts: any subset of the state, by these names only
 * (convert a framework's with fromPyTorchState, fromKerasWeights or fromOnnxInputs).
 */
export type BatchNormStateInput = Partial<{
  gamma: ArrayLike<number>;
  beta: ArrayLike<number>;
  runningMean: ArrayLike<number>;
  runningVar: ArrayLike<number>;
  numBatchesTracked: number;
}>;

/** Every name {@link BatchNorm.setState} accepts. */
const STATE_KEYS = ['gamma', 'beta', 'runningMean', 'runningVar', 'numBatchesTracked'] as const;

/** Advice for other frameworks' names of the state, in the message that refuses them. */
const STATE_HINTS = stateHints(
  { framework: 'PyTorch', names: { ...PYTORCH_STATE_NAMES, num_batches_tracked: 'numBatchesTracked' }, how: 'fromPyTorchState converts a whole state_dict' },
  { framework: 'Keras', names: { moving_mean: 'runningMean', moving_variance: 'runningVar' }, how: 'fromKerasWeights converts get_weights()' },
  { framework: 'ONNX', names: { scale: 'gamma', B: 'beta', input_mean: 'runningMean', input_var: 'runningVar' }, how: "fromOnnxInputs converts the operator's inputs" },
);

/** The copy flags a caller's state buffer needs for the array API's readbacks and setState. */
function stateBufferUsage(o: ResolvedBatchNormOptions): Record<StateBufferName, UsageNeeds> {
  return {
    gamma: stateUsage(o.scale),
    beta: stateUsage(o.center),
    runningMean: stateUsage(true),
    runningVar: stateUsage(true),
    numBatchesTracked: stateUsage(true),
    gammaGrad: GRADIENT_USAGE,
    betaGrad: GRADIENT_USAGE,
    saved: { COPY_SRC: 'getStats() reads it back' },
  };
}

/** A recorded forward pass: what its backward pass and getStats read. */
interface BatchNormForwardPass extends ForwardRecord, RecordedPass {}

/** Result of {@link BatchNorm.backward}. `dgamma` is null when γ is fixed (`scale`/`affine` false), `dbeta` when β is. */
export interface BackwardResult {
  dx: Float32Array;
  dgamma: Float32Array | null;
  dbeta: Float32Array | null;
}

/** Statistics the last forward pass normalized with (see {@link BatchNorm.getStats}). */
export interface NormalizationStats {
  /** Per-channel mean (batch mean, or running mean at inference). */
  mean: Float64Array;
  /** Per-channel biased variance (batch variance, or running variance at inference). */
  variance: Float64Array;
}

/**
 * Batch normalization on WebGPU.
 *
 * Low level: {@link encodeForward} and {@link encodeBackward} record into the caller's
 * GPUCommandEncoder on caller-owned buffers; they never submit or read back. High level:
 * {@link forward} and {@link backward} take and return arrays.
 *
 * @example
 * const bn = new BatchNorm(device, { numFeatures: 16, layout: 'NCHW' });
 * const y = await bn.forward(x, [8, 16, 28, 28], { training: true });
 * const { dx, dgamma, dbeta } = await bn.backward(dy);
 */
export class BatchNorm {
  /** The device every buffer of this layer lives on. */
  readonly device: GPUDevice;
  /** Number of channels C. */
  readonly numFeatures: number;
  /** Layout of the tensors this layer normalizes. */
  readonly layout: Layout;
  /** Added to the variance before the square root. */
  readonly eps: number;
  /** Weight of the new batch in the running-statistics update; null: cumulative average. */
  readonly momentum: number | null;
  /** Whether γ or β is learnable (`scale || center`). */
  readonly affine: boolean;
  /** Whether γ is learnable (otherwise fixed at 1). */
  readonly scale: boolean;
  /** Whether β is learnable (otherwise fixed at 0). */
  readonly center: boolean;
  /** What the running variance takes in: the unbiased (PyTorch) or biased (Keras) batch variance. */
  readonly runningVariance: 'unbiased' | 'biased';
  /** The activation fused after the normalization. */
  readonly activation: FusedActivation;
  /** Whether running statistics are kept and used at inference. */
  readonly trackRunningStats: boolean;
  /** Element type of x, y, dy and dx. */
  readonly dtype: DType;
  /** What a training batch with non-finite statistics does to the running statistics. */
  readonly nonFiniteBatches: 'skip' | 'update';
  /** Prefix of every GPU object's label. */
  readonly label: string;

  /** γ, C float32 (STORAGE | COPY_SRC | COPY_DST), or the caller's buffer from options.buffers. */
  readonly gamma: TensorBuffer;
  /** β, C float32. */
  readonly beta: TensorBuffer;
  /** Running mean, C float32. */
  readonly runningMean: TensorBuffer;
  /** Running variance, C float32 (unbiased or biased updates: see runningVariance). */
  readonly runningVar: TensorBuffer;
  /** num_batches_tracked, one u32, counted on the GPU by training passes. */
  readonly numBatchesTracked: TensorBuffer;
  /** dL/dγ of the last backward pass, C float32. */
  readonly gammaGrad: TensorBuffer;
  /** dL/dβ of the last backward pass, C float32. */
  readonly betaGrad: TensorBuffer;

  private readonly options: ResolvedBatchNormOptions;
  private readonly core: LayerCore<BatchNormForwardPass>;
  /** The buffers the ops read and write besides the tensors (partials: acquired per pass). */
  private readonly state: Omit<BatchNormStateBuffers, 'partials'>;
  /** What setState takes and where it writes it. */
  private readonly stateSpec: StateSpec;
  /**
   * The array API's own saved statistics: a pass recorded into the caller's encoder (into
   * state.saved) and submitted later cannot change what the array API's backward differentiates.
   */
  private arraySaved: GPUBuffer | null = null;

  /**
   * @param device the GPUDevice every buffer lives on.
   * @param options the layer's options; an unknown name is refused. A momentum above 0.5 (most
   *   likely Keras's convention, where 0.99 is 0.01 here) draws one console warning, unless
   *   kerasOptions or onnxOptions converted it.
   */
  constructor(device: GPUDevice, options: BatchNormOptions) {
    checkLayerDevice(device);
    if (!options || typeof options !== 'object') throw new TypeError(`options must be an object with numFeatures and layout; got ${describeValue(options)}`);
    const o = resolveBatchNormOptions(device, options);
    const label = options.label ?? 'BatchNorm';
    const given = options.buffers ?? {};
    checkStateBuffers(device, o.numFeatures, given, 'options.buffers');
    checkBufferUsage('options.buffers', given, stateBufferUsage(o));
    checkFixedParams('options.buffers', given, { gamma: o.scale ? null : 'γ is fixed at 1 (scale or affine false)', beta: o.center ? null : 'β is fixed at 0 (center or affine false)' });

    this.device = device;
    this.options = o;
    this.numFeatures = o.numFeatures;
    this.layout = o.layout;
    this.eps = o.eps;
    this.momentum = o.momentum;
    this.scale = o.scale;
    this.center = o.center;
    this.affine = o.scale || o.center;
    this.runningVariance = o.runningVariance;
    this.activation = o.activation;
    this.trackRunningStats = o.trackRunningStats;
    this.dtype = o.dtype;
    this.nonFiniteBatches = o.nonFiniteBatches;
    this.label = label;
    this.core = new LayerCore(device, label, 'BatchNorm');
    // Legal but most likely Keras's convention; the constructor runs once per layer.
    const warning = momentumWarning(o, options, label);
    if (warning) console.warn(warning);

    const C = o.numFeatures;
    const core = this.core;
    this.gamma = core.stateBuffer(given.gamma, 'gamma', new Float32Array(C).fill(1));
    this.beta = core.stateBuffer(given.beta, 'beta', new Float32Array(C));
    this.runningMean = core.stateBuffer(given.runningMean, 'running mean', new Float32Array(C));
    this.runningVar = core.stateBuffer(given.runningVar, 'running var', new Float32Array(C).fill(1));
    this.numBatchesTracked = core.stateBuffer(given.numBatchesTracked, 'num batches tracked', new Uint32Array(1));
    this.gammaGrad = core.stateBuffer(given.gammaGrad, 'gamma grad', new Float32Array(C));
    this.betaGrad = core.stateBuffer(given.betaGrad, 'beta grad', new Float32Array(C));
    this.state = {
      gamma: this.gamma,
      beta: this.beta,
      runningMean: this.runningMean,
      runningVar: this.runningVar,
      numBatchesTracked: this.numBatchesTracked,
      gammaGrad: this.gammaGrad,
      betaGrad: this.betaGrad,
      saved: given.saved ?? this.core.ownBuffer('normalize coefficients', new Float32Array((CHANNEL_COEF_BYTES / 4) * C), Usage.STORAGE | Usage.COPY_SRC),
      nonFinite: this.core.ownBuffer('non-finite flag', new Uint32Array(1), Usage.STORAGE),
    };
    this.stateSpec = {
      names: STATE_KEYS,
      hints: STATE_HINTS,
      arrays: { gamma: this.gamma, beta: this.beta, runningMean: this.runningMean, runningVar: this.runningVar },
      length: C,
      fixed: { gamma: o.scale ? undefined : 'affine: false, or scale: false', beta: o.center ? undefined : 'affine: false, or center: false' },
      nonFiniteBatches: o.nonFiniteBatches,
      scalars: ({ numBatchesTracked: batches }) => {
        if (batches === undefined) return [];
        if (!Number.isSafeInteger(batches) || (batches as number) < 0 || (batches as number) > 0xffffffff) {
          throw new RangeError(`state.numBatchesTracked must be an integer in [0, 2^32 - 1]; got ${describeValue(batches)}`);
        }
        return [[this.numBatchesTracked, new Uint32Array([batches as number])]];
      },
    };
  }

  /**
   * Number of GPU buffers this layer currently holds: its own, and the device's shared plan
   * uniforms and pooled scratch it holds with other layers. {@link destroy} destroys its own and
   * lets go of the shared ones, which are destroyed with their last holder.
   */
  get bufferCount(): number {
    return this.core.bufferCount;
  }

  /**
   * Records the forward pass into `encoder`. Training (or inference without running statistics)
   * normalizes with the batch's statistics; training also updates the running statistics and
   * numBatchesTracked on the GPU. Inference normalizes with the running statistics. Nothing is
   * submitted. Several calls may be recorded into one encoder.
   */
  encodeForward(encoder: GPUCommandEncoder, args: ForwardArgs): void {
    this.core.guard.checkUsable();
    checkArity('encodeForward', arguments, ['encoder', 'args']);
    checkEncoder('encoder', encoder);
    const view = checkForwardArgs(this.device, this.options, args);
    checkForwardAliasing(this.device, this.options, view, args, { prefix: this.label, buffers: this.state });
    const mode = forwardMode(this.options, args.training);
    const recorded = describePass(`${args.training ? 'training' : 'inference'} forward`, args.shape, { x: args.x, y: args.y });
    this.core.guard.recordChecked('encodeForward', () => this.recordForwardPass(encoder, view, mode, args.x, args.y, args.shape, this.state.saved, null), recorded);
  }

  /**
   * Records the backward pass of the last encodeForward into `encoder`: writes dx and
   * overwrites gammaGrad and betaGrad (nothing accumulates). Uses the statistics saved by that
   * forward pass; when it normalized with batch statistics the gradient flows through them.
   */
  encodeBackward(encoder: GPUCommandEncoder, args: BackwardArgs): void {
    this.core.guard.checkUsable();
    checkArity('encodeBackward', arguments, ['encoder', 'args']);
    checkEncoder('encoder', encoder);
    const last = this.core.passes.encoded;
    const view = checkBackwardArgs(this.device, this.options, args, last);
    checkParamsUnchanged(this.label, last, 'encodeBackward');
    checkBackwardAliasing(this.device, this.options, view, args, { prefix: this.label, buffers: this.state });
    const recorded = describePass('backward', args.shape, { x: args.x, dy: args.dy, dx: args.dx });
    this.core.guard.recordChecked('encodeBackward', () => this.recordBackwardPass(encoder, last!, view, args.x, args.dy, args.dx), recorded);
  }

  /**
   * Normalizes `x` (values of `shape`) on the GPU and resolves with y. A float16 layer takes a
   * Float32Array (rounded to half) or a Uint16Array of half bits, and returns the half results as
   * a Float32Array. Everything but the readback happens before this returns: `x` and `shape` are
   * copied at the call (change or reuse them at once), and calls on one layer take effect in the
   * order they were made.
   */
  forward(x: Float32Array | Uint16Array, shape: readonly number[], options: { training: boolean }): Promise<Float32Array> {
    return this.core.passCall('forward()', {
      arity: ['forward', arguments, ['x', 'shape', 'options']],
      input: { name: 'x', data: x, shape, dtype: this.dtype },
      view: () => {
        const view = checkedView(this.device, this.options, shape, 'shape');
        return [view, viewSize(view)];
      },
      check: (view) => {
        const training = checkCallOptions('options', options, { what: 'an option of BatchNorm.forward', layerOptions: BATCHNORM_OPTIONS });
        checkTrainable(view, shape, training);
        return training;
      },
      record: (encoder, io, view, training, outcome) => {
        this.arraySaved ??= this.core.ownBuffer('array API normalize coefficients', new ArrayBuffer(CHANNEL_COEF_BYTES * this.numFeatures), Usage.STORAGE | Usage.COPY_SRC);
        this.recordForwardPass(encoder, view, forwardMode(this.options, training), io.x, io.y, shape, this.arraySaved, outcome);
      },
    });
  }

  /**
   * Backward pass of the last {@link forward} call: takes dL/dy (like x in {@link forward}, copied
   * at the call) and resolves with dL/dx and, where learnable, dL/dγ and dL/dβ (also left in
   * {@link gammaGrad} and {@link betaGrad}).
   */
  backward(dy: Float32Array | Uint16Array): Promise<BackwardResult> {
    return this.core.backwardCall({
      arity: ['backward', arguments, ['dy']],
      dy,
      dtype: this.dtype,
      elements: (last) => viewSize(last.view),
      record: (encoder, last, io) => this.recordBackwardPass(encoder, last, last.view, io.x, io.dy, io.dx),
      gammaGrad: this.gammaGrad,
      betaGrad: this.betaGrad,
      paramBytes: this.numFeatures * 4,
      learnable: [this.scale, this.center],
    });
  }

  /** Reads γ, β, the running statistics and numBatchesTracked back from the GPU, as the calls made before left them. */
  getState(): Promise<BatchNormState> {
    const C = this.numFeatures * 4;
    return this.core.call(
      'getState()',
      () => ({
        read: [regionOf(this.gamma, C), regionOf(this.beta, C), regionOf(this.runningMean, C), regionOf(this.runningVar, C), regionOf(this.numBatchesTracked, 4)],
        result: ([gamma, beta, runningMean, runningVar, batches]) => ({
          gamma: new Float32Array(gamma),
          beta: new Float32Array(beta),
          runningMean: new Float32Array(runningMean),
          runningVar: new Float32Array(runningVar),
          numBatchesTracked: new Uint32Array(batches)[0],
        }),
      }),
      ['getState', arguments, []],
    );
  }

  /**
   * Reads back the mean and biased variance the last forward pass normalized with: the batch
   * statistics of a training pass, the running statistics of an inference pass. The mean is kept
   * as a float32 offset plus a float32 mean relative to it, added here in float64. (The family
   * layers and FeatureScaler call theirs getStats too; {@link getBatchStats} is the same call.)
   */
  getStats(): Promise<NormalizationStats> {
    const C = this.numFeatures;
    return this.core.statsCall(
      () => C * CHANNEL_COEF_BYTES,
      (bytes) => {
        const coef = new Float32Array(bytes);
        // Planes: field f of channel c at f * C + c (common.wgsl).
        const [shift, mean, variance] = (['shift', 'mean', 'variance'] as const).map((field) => COEF_PLANES[field] * C);
        const means = new Float64Array(C);
        const variances = new Float64Array(C);
        for (let c = 0; c < C; c++) {
          means[c] = coef[shift + c] + coef[mean + c];
          variances[c] = coef[variance + c];
        }
        return { mean: means, variance: variances };
      },
      ['getStats', arguments, []],
    );
  }

  /** The same as {@link getStats} (its name before the family layers came). */
  getBatchStats(): Promise<NormalizationStats> {
    const error = arityError('getBatchStats', arguments, []);
    return error ? Promise.reject(error) : this.getStats();
  }

  /**
   * Writes any subset of the state. Everything is checked at the call, before anything is
   * written: only the names of {@link BatchNormStateInput}; γ and β finite; the running variance
   * >= 0; the running statistics finite unless `nonFiniteBatches: 'update'` (whose training can
   * make them NaN). A fixed γ or β (scale or center false) takes only its fixed value (1 or 0, as
   * getState returns it), so `setState(await getState())` works on every layer. The values are
   * copied at the call and written through the device queue: calls made before (awaited or not)
   * run with the old state, and calls made and work submitted afterwards with the new.
   */
  setState(state: BatchNormStateInput): void {
    this.core.guard.checkUsable();
    checkArity('setState', arguments, ['state']);
    this.core.writeState(state, this.stateSpec);
  }

  /**
   * Destroys every GPU buffer this layer created and lets go of the shared ones. The layer cannot
   * be used afterwards; calls made before still finish.
   */
  destroy(): void {
    checkArity('destroy', arguments, []);
    this.core.destroy();
    this.arraySaved = null;
  }

  /** Records a forward pass and remembers it for the backward pass and getStats. */
  private recordForwardPass(
    encoder: GPUCommandEncoder,
    view: ChannelView,
    mode: BatchNormMode,
    x: TensorBuffer,
    y: TensorBuffer,
    shape: readonly number[],
    saved: TensorBuffer,
    outcome: CallOutcome | null,
  ): void {
    const [plan, partials] = this.plan(view, mode);
    inComputePass(encoder, `${this.label} forward`, (pass) => recordForward(this.device, pass, plan, mode, { ...this.state, saved, partials, x, y }));
    this.core.passes.add({ view, x, shape: [...shape], batchStats: mode.batchStats, saved, outcome });
  }

  /** Records the backward pass of the forward pass `last`. */
  private recordBackwardPass(encoder: GPUCommandEncoder, last: BatchNormForwardPass, view: ChannelView, x: TensorBuffer, dy: TensorBuffer, dx: TensorBuffer): void {
    const [plan, partials] = this.plan(view, { batchStats: last.batchStats, updateRunning: false });
    inComputePass(encoder, `${this.label} backward`, (pass) => recordBackward(this.device, pass, plan, { ...this.state, saved: last.saved, partials, x, dy, dx }));
  }

  /** The plan of a pass over `view` in `mode`, and scratch for its partials, both held by this layer. */
  private plan(view: ChannelView, mode: BatchNormMode) {
    const plan = batchNormPlan(this.device, view, this.options, mode, this.core);
    return [plan, acquireScratch(this.device, plan.partialBytes, this.core)] as const;
  }
}
