/**
 * The BatchNorm layer: owns γ, β, the running statistics and the gradient buffers on one
 * GPUDevice, and records its kernels into the caller's command encoder.
 */
import { checkLayout, channelView, viewSize, type ChannelView, type Layout } from '../tensor/layout.js';
import { Usage, align4, checkSeparateOutput, createBufferWithData, dispatchKernel, readBuffers, regionOf, type TensorBuffer } from '../runtime/gpu.js';
import { fromFloat16Bits, toFloat16Bits } from '../tensor/float16.js';
import {
  REDUCTION_CHUNK,
  REDUCTION_ROWS,
  REDUCTION_WORKGROUP_SIZE,
  SLOT_ELEMENTS,
  WORKGROUP_SIZE,
  CHANNEL_COEF_BYTES as COEF_BYTES,
  paramsData,
  tensorBytes,
  tensorStorage,
  type TensorStorage,
} from '../kernels/shaders.js';
import { acquireScratch, releaseScratch, scratchHeld } from '../runtime/scratch.js';
import { checkStateArray, checkTensorBuffer, checkTensorFits, checkTrainable, describe } from '../runtime/validate.js';

/** Element type of the tensors (x, y, dy, dx) in GPU buffers. Statistics are always float32. */
export type DType = 'float32' | 'float16';

/** Options of a {@link BatchNorm} layer; defaults follow PyTorch. */
export interface BatchNormOptions {
  /** Number of channels C (features for a dense layer, feature maps for a convolution). */
  numFeatures: number;
  /** Layout of the tensors this layer normalizes. */
  layout: Layout;
  /** Added to the variance before the square root. Default 1e-5. */
  eps?: number;
  /**
   * Weight of the new batch in the running-statistics update: running = (1 - m) * running + m * batch.
   * `null` keeps a cumulative moving average (m = 1 / numBatchesTracked). Default 0.1.
   */
  momentum?: number | null;
  /** Learnable γ (init 1) and β (init 0). When false, γ = 1 and β = 0 are fixed. Default true. */
  affine?: boolean;
  /** Learnable γ (Keras's `scale`); when false γ = 1 is fixed. Default: `affine`. */
  scale?: boolean;
  /** Learnable β (Keras's `center`); when false β = 0 is fixed. Default: `affine`. */
  center?: boolean;
  /**
   * The batch variance the running variance takes in: 'unbiased' (× n/(n−1), PyTorch, default)
   * or 'biased' (Keras's moving_variance).
   */
  runningVariance?: 'unbiased' | 'biased';
  /**
   * 'relu' fuses a ReLU after the normalization: y = max(BN(x), 0) in the same pass, and the
   * backward pass takes dL/d(output) and applies the ReLU's mask itself (the notes put BN right
   * before the activation). Default 'none'.
   */
  activation?: 'none' | 'relu';
  /**
   * Keep running mean and variance (init 0 and 1), updated by training passes and used by
   * inference passes. When false, inference also normalizes with batch statistics. Default true.
   */
  trackRunningStats?: boolean;
  /**
   * Tensor storage. 'float16' stores x, y, dy and dx as IEEE halves (the bytes of an
   * array<f16>): native f16 in the shaders where the device has 'shader-f16', else two halves
   * per u32 unpacked in float32. Arithmetic is float32 either way. Default 'float32'.
   */
  dtype?: DType;
  /**
   * What a training batch whose statistics are not finite (NaN or ±Inf in some channel) does to
   * the running statistics: 'skip' (default) leaves them and numBatchesTracked unchanged for every
   * channel; 'update' folds the NaN in, as PyTorch does.
   */
  nonFiniteBatches?: 'skip' | 'update';
  /** Prefix of every GPU object's label. Default 'BatchNorm'. */
  label?: string;
  /**
   * Caller-owned buffers (or ranges of them) for any of the layer's parameters, statistics and
   * gradients, for example every layer's γ and β in one parameter arena for the caller's own
   * optimizer. They are used as they are (not initialized), need STORAGE usage (and COPY_SRC /
   * COPY_DST for getState / setState), and are not destroyed by {@link BatchNorm.destroy}. The
   * gradients must be in other GPUBuffers than γ and `saved`, and `saved` in another GPUBuffer
   * than the parameters and statistics (WebGPU does not let a pass write a buffer it reads).
   */
  buffers?: Partial<Record<StateBufferName, TensorBuffer>>;
}

/**
 * The layer's state and gradient buffers, which {@link BatchNormOptions.buffers} may supply.
 * `saved` (numFeatures × 32 bytes) receives the statistics a forward pass normalized with, which
 * its backward pass reads.
 */
export type StateBufferName = 'gamma' | 'beta' | 'runningMean' | 'runningVar' | 'numBatchesTracked' | 'gammaGrad' | 'betaGrad' | 'saved';

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

/** What {@link BatchNorm.setState} accepts: any subset of the state. */
export type BatchNormStateInput = Partial<{
  gamma: ArrayLike<number>;
  beta: ArrayLike<number>;
  runningMean: ArrayLike<number>;
  runningVar: ArrayLike<number>;
  numBatchesTracked: number;
}>;

/** Result of {@link BatchNorm.backward}. `dgamma` is null when γ is fixed (`scale`/`affine` false), `dbeta` when β is. */
export interface BackwardResult {
  dx: Float32Array;
  dgamma: Float32Array | null;
  dbeta: Float32Array | null;
}

/** Statistics the last forward pass normalized with (see {@link BatchNorm.getBatchStats}). */
export interface NormalizationStats {
  /** Per-channel mean (batch mean, or running mean at inference). */
  mean: Float64Array;
  /** Per-channel biased variance (batch variance, or running variance at inference). */
  variance: Float64Array;
}

/** Uniform parameters and scratch memory for one tensor shape and normalization mode. */
interface ShapeResources {
  /** Partials per channel: chunks of REDUCTION_CHUNK elements, or blocks of REDUCTION_ROWS rows channels-last. */
  chunks: number;
  /** inner == 1: the partial reductions walk contiguous channels (the *_channels_last kernels). */
  channelsLast: boolean;
  /** Workgroups of one partial-reduction dispatch. */
  partialWorkgroups: number;
  params: GPUBuffer;
  /** One vec4 per (channel, chunk), shared by the statistics and gradient reductions: the device's pooled scratch. */
  partials: GPUBuffer;
}

/** How the last recorded forward pass normalized; the backward pass must match it. */
interface ForwardRecord {
  view: ChannelView;
  /** The input it read, which the backward pass reads again. */
  x: TensorBuffer;
  shape: readonly number[];
  batchStats: boolean;
}

/** Every name of {@link StateBufferName}. */
export const STATE_BUFFERS: readonly StateBufferName[] = ['gamma', 'beta', 'runningMean', 'runningVar', 'numBatchesTracked', 'gammaGrad', 'betaGrad', 'saved'];

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
  readonly activation: 'none' | 'relu';
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

  /** Per channel ChannelCoef (common.wgsl) of the last forward pass. */
  private readonly coef: TensorBuffer;
  /** Per channel (k, q, p', shift) of the last backward pass: dx = k·dy − (x − shift)·q − p'. */
  private readonly gradCoef: GPUBuffer;
  /** Non-zero while the current training pass has seen non-finite statistics. */
  private readonly nonFiniteFlag: GPUBuffer;
  private readonly owned = new Set<GPUBuffer>();
  private readonly shapes = new Map<string, ShapeResources>();
  private lastForward: ForwardRecord | null = null;
  private io: { bytes: number; x: GPUBuffer; y: GPUBuffer; dy: GPUBuffer; dx: GPUBuffer } | null = null;
  /** Tail of the queue of high-level calls, which run one at a time. */
  private pending: Promise<unknown> = Promise.resolve();
  private destroyed = false;
  private lost: GPUDeviceLostInfo | null = null;
  /** A WebGPU validation error of an earlier recorded pass, reported by the next call. */
  private validationError: Error | null = null;

  constructor(device: GPUDevice, options: BatchNormOptions) {
    if (!device || typeof (device as GPUDevice).createBuffer !== 'function') {
      throw new TypeError(`device must be a GPUDevice; got ${describe(device)}`);
    }
    if (!options || typeof options !== 'object') throw new TypeError('options must be an object with numFeatures and layout');
    const {
      numFeatures,
      layout,
      eps = 1e-5,
      momentum = 0.1,
      affine = true,
      trackRunningStats = true,
      dtype = 'float32',
      nonFiniteBatches = 'skip',
      label = 'BatchNorm',
    } = options;
    const { scale = affine, center = affine, runningVariance = 'unbiased', activation = 'none' } = options;
    if (!Number.isSafeInteger(numFeatures) || numFeatures < 1) {
      throw new TypeError(`options.numFeatures must be a positive integer; got ${String(numFeatures)}`);
    }
    checkLayout(layout, 'options.layout');
    if (typeof eps !== 'number' || !(eps > 0) || !Number.isFinite(eps)) {
      throw new RangeError(`options.eps must be a finite number > 0; got ${String(eps)}`);
    }
    if (momentum !== null && (typeof momentum !== 'number' || !(momentum >= 0 && momentum <= 1))) {
      throw new RangeError(`options.momentum must be a number in [0, 1] or null; got ${String(momentum)}`);
    }
    if (dtype !== 'float32' && dtype !== 'float16') {
      throw new TypeError(`options.dtype must be 'float32' or 'float16'; got ${String(dtype)}`);
    }
    if (activation !== 'none' && activation !== 'relu') {
      throw new TypeError(`options.activation must be 'none' or 'relu'; got ${String(activation)}`);
    }
    if (runningVariance !== 'unbiased' && runningVariance !== 'biased') {
      throw new TypeError(`options.runningVariance must be 'unbiased' or 'biased'; got ${String(runningVariance)}`);
    }
    if (nonFiniteBatches !== 'skip' && nonFiniteBatches !== 'update') {
      throw new TypeError(`options.nonFiniteBatches must be 'skip' or 'update'; got ${String(nonFiniteBatches)}`);
    }
    const C = numFeatures;
    if (C * COEF_BYTES > device.limits.maxStorageBufferBindingSize) {
      throw new RangeError(
        `options.numFeatures ${C} needs ${C * COEF_BYTES} bytes of per-channel coefficients, more than this device's maxStorageBufferBindingSize of ${device.limits.maxStorageBufferBindingSize}`,
      );
    }
    this.device = device;
    this.numFeatures = numFeatures;
    this.layout = layout;
    this.eps = eps;
    this.momentum = momentum;
    this.scale = Boolean(scale);
    this.center = Boolean(center);
    this.affine = this.scale || this.center;
    this.runningVariance = runningVariance;
    this.activation = activation;
    this.trackRunningStats = Boolean(trackRunningStats);
    this.dtype = dtype;
    this.nonFiniteBatches = nonFiniteBatches;
    this.label = label;

    const state = Usage.STORAGE | Usage.COPY_SRC | Usage.COPY_DST;
    const given = options.buffers ?? {};
    if (typeof given !== 'object') throw new TypeError(`options.buffers must be an object of buffers; got ${describe(given)}`);
    const bytesOf = { numBatchesTracked: [4, 'one u32'], saved: [C * COEF_BYTES, `${C} x ${COEF_BYTES} bytes`] } as Record<string, [number, string]>;
    for (const [name, buffer] of Object.entries(given)) {
      if (!STATE_BUFFERS.includes(name as StateBufferName)) throw new TypeError(`options.buffers.${name} is not a state buffer; expected one of ${STATE_BUFFERS.join(', ')}`);
      const [bytes, what] = bytesOf[name] ?? [C * 4, `${C} float32`];
      checkTensorBuffer(`options.buffers.${name}`, buffer, bytes, what, device);
    }
    const named = (names: StateBufferName[]) => Object.fromEntries(names.filter((n) => given[n]).map((n) => [`options.buffers.${n}`, given[n]!]));
    for (const grad of ['gammaGrad', 'betaGrad'] as const) {
      if (given[grad]) checkSeparateOutput([`options.buffers.${grad}`, given[grad]], named(['gamma', 'saved']));
    }
    if (given.saved) checkSeparateOutput(['options.buffers.saved', given.saved], named(['gamma', 'beta', 'runningMean', 'runningVar', 'numBatchesTracked']));
    const buffer = (name: StateBufferName, label: string, init: Float32Array | Uint32Array) => given[name] ?? this.ownBuffer(label, init, state);
    this.gamma = buffer('gamma', 'gamma', new Float32Array(C).fill(1));
    this.beta = buffer('beta', 'beta', new Float32Array(C));
    this.runningMean = buffer('runningMean', 'running mean', new Float32Array(C));
    this.runningVar = buffer('runningVar', 'running var', new Float32Array(C).fill(1));
    this.numBatchesTracked = buffer('numBatchesTracked', 'num batches tracked', new Uint32Array(1));
    this.gammaGrad = buffer('gammaGrad', 'gamma grad', new Float32Array(C));
    this.betaGrad = buffer('betaGrad', 'beta grad', new Float32Array(C));
    this.coef = given.saved ?? this.ownBuffer('normalize coefficients', new Float32Array((COEF_BYTES / 4) * C), Usage.STORAGE | Usage.COPY_SRC);
    this.gradCoef = this.ownBuffer('gradient coefficients', new Float32Array(4 * C), Usage.STORAGE);
    this.nonFiniteFlag = this.ownBuffer('non-finite flag', new Uint32Array(1), Usage.STORAGE);
    // A lost device fails every later call with the reason, instead of WebGPU's silent no-ops.
    device.lost?.then((info) => (this.lost = info)).catch(() => undefined);
  }

  /**
   * Number of GPU buffers this layer currently holds: its own, and the device's pooled scratch it
   * shares with other layers. {@link destroy} destroys its own and lets go of the scratch, which
   * is destroyed with its last holder.
   */
  get bufferCount(): number {
    return this.owned.size + scratchHeld(this.device, this);
  }

  /**
   * Records the forward pass into `encoder`. Training (or inference without running statistics)
   * normalizes with the batch's statistics; training also updates the running statistics and
   * numBatchesTracked on the GPU. Inference normalizes with the running statistics. Nothing is
   * submitted. Several calls may be recorded into one encoder.
   */
  encodeForward(encoder: GPUCommandEncoder, args: ForwardArgs): void {
    this.checkUsable();
    if (!args || typeof args !== 'object') throw new TypeError('args must be an object { x, y, shape, training }');
    const view = this.viewOf(args.shape, 'args.shape');
    if (typeof args.training !== 'boolean') throw new TypeError(`args.training must be a boolean; got ${String(args.training)}`);
    this.checkTensorBuffers(view, args.shape, { 'args.x': args.x, 'args.y': args.y });
    checkSeparateOutput(['args.y', args.y], { 'args.x': args.x });
    checkTrainable(view, args.shape, args.training);

    const batchStats = args.training || !this.trackRunningStats;
    const updateRunning = args.training && this.trackRunningStats;
    const res = this.shapeResources(view, { batchStats, updateRunning });
    this.recordChecked('encodeForward', () => this.recordForward(encoder, args, view, res, { batchStats, updateRunning }));
    this.lastForward = { view, x: args.x, shape: [...args.shape], batchStats };
  }

  private recordForward(
    encoder: GPUCommandEncoder,
    args: ForwardArgs,
    view: ChannelView,
    res: ShapeResources,
    mode: { batchStats: boolean; updateRunning: boolean },
  ): void {
    const C = view.channels;
    const perChannel = Math.ceil(C / WORKGROUP_SIZE);
    const pass = encoder.beginComputePass({ label: `${this.label} forward` });
    const dispatch = this.dispatcher(pass, view);
    if (mode.batchStats) {
      dispatch(res.channelsLast ? 'partial_stats_channels_last' : 'partial_stats', res.partialWorkgroups, {
        0: res.params,
        1: args.x,
        5: res.partials,
      });
      dispatch('finalize_stats', C, {
        0: res.params,
        1: args.x,
        5: res.partials,
        6: this.gamma,
        7: this.beta,
        11: this.coef,
        12: this.nonFiniteFlag,
      });
      if (mode.updateRunning) {
        dispatch('update_running', perChannel, {
          0: res.params,
          8: this.runningMean,
          9: this.runningVar,
          10: this.numBatchesTracked,
          11: this.coef,
          12: this.nonFiniteFlag,
        });
        dispatch('count_batch', 1, { 0: res.params, 10: this.numBatchesTracked, 12: this.nonFiniteFlag });
      }
    } else {
      dispatch('coef_from_running', perChannel, {
        0: res.params,
        5: this.runningMean,
        6: this.runningVar,
        7: this.gamma,
        8: this.beta,
        9: this.coef,
      });
    }
    dispatch('normalize', this.elementwiseWorkgroups(view), { 0: res.params, 1: args.x, 2: args.y, 10: this.coef });
    pass.end();
  }

  /**
   * Records the backward pass of the last recorded forward pass into `encoder`: writes dx and
   * overwrites gammaGrad and betaGrad (nothing accumulates). Uses the statistics saved by that
   * forward pass; when it normalized with batch statistics the gradient flows through them.
   */
  encodeBackward(encoder: GPUCommandEncoder, args: BackwardArgs): void {
    this.checkUsable();
    if (!args || typeof args !== 'object') throw new TypeError('args must be an object { x, dy, dx, shape }');
    const view = this.viewOf(args.shape, 'args.shape');
    const last = this.lastForward;
    if (!last) throw new Error('encodeBackward needs a forward pass first: call encodeForward (or forward) before it');
    if (last.view.outer !== view.outer || last.view.inner !== view.inner) {
      throw new RangeError(
        `args.shape must match the last forward pass's shape [${last.shape.join(', ')}]; got [${args.shape.join(', ')}]`,
      );
    }
    this.checkTensorBuffers(view, args.shape, { 'args.x': args.x, 'args.dy': args.dy, 'args.dx': args.dx });
    checkSeparateOutput(['args.dx', args.dx], { 'args.x': args.x, 'args.dy': args.dy });

    const res = this.shapeResources(view, { batchStats: last.batchStats, updateRunning: false });
    this.recordChecked('encodeBackward', () => this.recordBackward(encoder, args, view, res));
  }

  private recordBackward(encoder: GPUCommandEncoder, args: BackwardArgs, view: ChannelView, res: ShapeResources): void {
    const pass = encoder.beginComputePass({ label: `${this.label} backward` });
    const dispatch = this.dispatcher(pass, view);
    dispatch(res.channelsLast ? 'partial_grad_sums_channels_last' : 'partial_grad_sums', res.partialWorkgroups, {
      0: res.params,
      1: args.x,
      3: args.dy,
      5: this.coef,
      6: res.partials,
    });
    dispatch('finalize_grads', view.channels, {
      0: res.params,
      5: this.coef,
      6: res.partials,
      7: this.gamma,
      8: this.gammaGrad,
      9: this.betaGrad,
      10: this.gradCoef,
    });
    dispatch('input_grad', this.elementwiseWorkgroups(view), { 0: res.params, 1: args.x, 3: args.dy, 4: args.dx, 5: this.coef, 11: this.gradCoef });
    pass.end();
  }

  /**
   * Normalizes `x` (values of `shape`) on the GPU and resolves with y. A float16 layer takes a
   * Float32Array (rounded to half) or a Uint16Array of half bits, and returns the half results as
   * a Float32Array. Calls on one layer run in order, one at a time.
   */
  forward(x: Float32Array | Uint16Array, shape: readonly number[], options: { training: boolean }): Promise<Float32Array> {
    return this.serialized(async () => {
      this.checkUsable();
      const view = this.viewOf(shape, 'shape');
      const upload = this.tensorUpload('x', x, viewSize(view), `shape [${shape.join(', ')}]`);
      if (!options || typeof options.training !== 'boolean') {
        throw new TypeError(`options.training must be a boolean; got ${String(options?.training)}`);
      }
      // Checked before the I/O buffers may be replaced, so a refused call loses no state.
      checkTrainable(view, shape, options.training);
      const io = this.ioBuffers(upload.byteLength);
      const encoder = this.device.createCommandEncoder({ label: `${this.label} forward` });
      this.encodeForward(encoder, { x: io.x, y: io.y, shape, training: options.training });
      this.device.queue.writeBuffer(io.x, 0, upload);
      const [y] = await this.read([{ buffer: io.y, size: upload.byteLength }], encoder);
      return this.tensorDownload(y, viewSize(view));
    });
  }

  /**
   * Backward pass of the last {@link forward} call: takes dL/dy (like x in {@link forward}) and
   * resolves with dL/dx and, where learnable, dL/dγ and dL/dβ (also left in
   * {@link gammaGrad} and {@link betaGrad}).
   */
  backward(dy: Float32Array | Uint16Array): Promise<BackwardResult> {
    return this.serialized(async () => {
      this.checkUsable();
      const last = this.lastForward;
      if (!this.io || !last || last.x !== this.io.x) {
        throw new Error('backward() needs forward() first (after encodeForward, use encodeBackward)');
      }
      const n = viewSize(last.view);
      const upload = this.tensorUpload('dy', dy, n, `the last forward pass's shape [${last.shape.join(', ')}]`);
      const io = this.io;
      const encoder = this.device.createCommandEncoder({ label: `${this.label} backward` });
      this.encodeBackward(encoder, { x: io.x, dy: io.dy, dx: io.dx, shape: last.shape });
      this.device.queue.writeBuffer(io.dy, 0, upload);
      const C = this.numFeatures * 4;
      const [dx, dgamma, dbeta] = await this.read(
        [
          { buffer: io.dx, size: upload.byteLength },
          regionOf(this.gammaGrad, C),
          regionOf(this.betaGrad, C),
        ],
        encoder,
      );
      return {
        dx: this.tensorDownload(dx, n),
        dgamma: this.scale ? new Float32Array(dgamma) : null,
        dbeta: this.center ? new Float32Array(dbeta) : null,
      };
    });
  }

  /** Reads γ, β, the running statistics and numBatchesTracked back from the GPU. */
  getState(): Promise<BatchNormState> {
    return this.serialized(async () => {
      this.checkUsable();
      const C = this.numFeatures * 4;
      const [gamma, beta, runningMean, runningVar, batches] = await this.read([
        regionOf(this.gamma, C),
        regionOf(this.beta, C),
        regionOf(this.runningMean, C),
        regionOf(this.runningVar, C),
        regionOf(this.numBatchesTracked, 4),
      ]);
      return {
        gamma: new Float32Array(gamma),
        beta: new Float32Array(beta),
        runningMean: new Float32Array(runningMean),
        runningVar: new Float32Array(runningVar),
        numBatchesTracked: new Uint32Array(batches)[0],
      };
    });
  }

  /**
   * Reads back the mean and biased variance the last submitted forward pass normalized with:
   * the batch statistics of a training pass, the running statistics of an inference pass. The
   * mean is kept as a float32 offset plus a float32 mean relative to it, added here in float64.
   */
  getBatchStats(): Promise<NormalizationStats> {
    return this.serialized(async () => {
      this.checkUsable();
      if (!this.lastForward) throw new Error('getBatchStats() needs a forward pass first');
      const [bytes] = await this.read([regionOf(this.coef, this.numFeatures * COEF_BYTES)]);
      const coef = new Float32Array(bytes);
      const stride = COEF_BYTES / 4;
      const mean = new Float64Array(this.numFeatures);
      const variance = new Float64Array(this.numFeatures);
      for (let c = 0; c < this.numFeatures; c++) {
        mean[c] = coef[c * stride] + coef[c * stride + 1];
        variance[c] = coef[c * stride + 2];
      }
      return { mean, variance };
    });
  }

  /**
   * Writes any subset of the state through the device queue, so it takes effect before work
   * submitted afterwards. Everything is checked before anything is written.
   */
  setState(state: BatchNormStateInput): void {
    this.checkUsable();
    if (!state || typeof state !== 'object') throw new TypeError('state must be an object');
    const writes: [TensorBuffer, Float32Array<ArrayBuffer> | Uint32Array<ArrayBuffer>][] = [];
    const arrays = { gamma: this.gamma, beta: this.beta, runningMean: this.runningMean, runningVar: this.runningVar } as const;
    for (const key of Object.keys(arrays) as (keyof typeof arrays)[]) {
      const value = state[key];
      if (value === undefined) continue;
      if ((key === 'gamma' && !this.scale) || (key === 'beta' && !this.center)) {
        throw new TypeError(`state.${key} cannot be set: it is fixed in this layer (affine: false, or ${key === 'gamma' ? 'scale' : 'center'}: false)`);
      }
      checkStateArray(`state.${key}`, value, this.numFeatures);
      writes.push([arrays[key], Float32Array.from(value)]);
    }
    const batches = state.numBatchesTracked;
    if (batches !== undefined) {
      if (!Number.isSafeInteger(batches) || batches < 0 || batches > 0xffffffff) {
        throw new RangeError(`state.numBatchesTracked must be an integer in [0, 2^32 - 1]; got ${String(batches)}`);
      }
      writes.push([this.numBatchesTracked, new Uint32Array([batches])]);
    }
    for (const [target, data] of writes) {
      const region = regionOf(target, data.byteLength);
      this.device.queue.writeBuffer(region.buffer, region.offset ?? 0, data);
    }
  }

  /** Destroys every GPU buffer this layer created. The layer cannot be used afterwards. */
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    for (const buffer of this.owned) buffer.destroy();
    this.owned.clear();
    releaseScratch(this.device, this);
    this.shapes.clear();
    this.io = null;
    this.lastForward = null;
  }

  /**
   * Records passes inside a validation error scope. WebGPU cannot tell synchronously whether a
   * caller's buffer belongs to this device (or is destroyed); such errors arrive asynchronously
   * and are thrown by this layer's next call, while the caller's encoder fails on finish().
   */
  private recordChecked(what: string, record: () => void): void {
    this.device.pushErrorScope('validation');
    try {
      record();
    } finally {
      this.device.popErrorScope().then(
        (error) => {
          if (error && !this.validationError) {
            this.validationError = new Error(
              `${this.label}: an earlier ${what} failed WebGPU validation (are all its buffers from this layer's device, and alive?): ${error.message}`,
            );
          }
        },
        () => undefined, // a lost device is reported by checkUsable
      );
    }
  }

  private checkUsable(): void {
    if (this.destroyed) throw new Error(`${this.label} was destroyed; create a new BatchNorm`);
    if (this.validationError) {
      const error = this.validationError;
      this.validationError = null;
      throw error;
    }
    if (this.lost) {
      throw new Error(
        `${this.label}: the GPU device was lost (${this.lost.reason}: ${this.lost.message || 'no message'}); ` +
          'get a new device (getDevice) and create a new BatchNorm on it',
      );
    }
  }

  /** Reads buffers back; a failure caused by device loss is reported as such. */
  private async read(regions: Parameters<typeof readBuffers>[1], encoder?: GPUCommandEncoder): Promise<ArrayBuffer[]> {
    try {
      return await readBuffers(this.device, regions, encoder);
    } catch (error) {
      // The lost promise settles on its own schedule; give it a chance before deciding.
      await new Promise((resolve) => setTimeout(resolve, 0));
      this.checkUsable();
      throw error;
    }
  }

  /** Runs high-level calls one after another, so they never interleave their buffer use. */
  private serialized<T>(fn: () => Promise<T>): Promise<T> {
    const result = this.pending.then(fn);
    this.pending = result.catch(() => undefined);
    return result;
  }

  /** How a tensor of this view is stored and accessed (see tensorStorage). */
  private storageFor(view: ChannelView): TensorStorage {
    return tensorStorage(this.device, this.dtype, view.inner);
  }

  /** Records dispatches of kernels built for the storage of `view`'s tensors. */
  private dispatcher(pass: GPUComputePassEncoder, view: ChannelView) {
    const storage = this.storageFor(view);
    return (kernel: Parameters<typeof dispatchKernel>[2], workgroups: number, buffers: Record<number, TensorBuffer>) =>
      dispatchKernel(this.device, pass, kernel, storage, workgroups, buffers, this.activation);
  }

  /** Each caller tensor buffer must hold a tensor of `view` in this layer's dtype and have STORAGE usage. */
  private checkTensorBuffers(view: ChannelView, shape: readonly number[], buffers: Record<string, TensorBuffer>): void {
    const bytes = this.tensorBytes(view);
    const what = `${this.dtype} [${shape.join(', ')}]`;
    for (const [argName, buffer] of Object.entries(buffers)) checkTensorBuffer(argName, buffer, bytes, what, this.device);
  }

  private tensorBytes(view: ChannelView): number {
    return tensorBytes(this.storageFor(view), viewSize(view));
  }

  private elementwiseWorkgroups(view: ChannelView): number {
    return Math.ceil(viewSize(view) / SLOT_ELEMENTS[this.storageFor(view)] / WORKGROUP_SIZE);
  }

  /** The bytes to upload for a tensor argument of the high-level calls, after checking it. */
  private tensorUpload(argName: string, data: unknown, elements: number, what: string): Uint8Array<ArrayBuffer> {
    const accepted = this.dtype === 'float16' ? 'a Float32Array or a Uint16Array of half bits' : 'a Float32Array';
    const ok = data instanceof Float32Array || (this.dtype === 'float16' && data instanceof Uint16Array);
    if (!ok) throw new TypeError(`${argName} must be ${accepted} for a ${this.dtype} layer; got ${describe(data)}`);
    const array = data as Float32Array | Uint16Array;
    if (array.length !== elements) throw new RangeError(`${argName} must have ${elements} elements for ${what}; got ${array.length}`);
    const typed = this.dtype === 'float16' && array instanceof Float32Array ? toFloat16Bits(array) : array;
    const bytes = new Uint8Array(align4(typed.byteLength));
    bytes.set(new Uint8Array(typed.buffer, typed.byteOffset, typed.byteLength));
    return bytes;
  }

  private tensorDownload(bytes: ArrayBuffer, elements: number): Float32Array {
    return this.dtype === 'float16' ? fromFloat16Bits(new Uint16Array(bytes, 0, elements)) : new Float32Array(bytes, 0, elements);
  }

  private ownBuffer(name: string, data: Float32Array | Uint32Array, usage: number): GPUBuffer {
    const buffer = createBufferWithData(this.device, `${this.label} ${name}`, data, usage);
    this.owned.add(buffer);
    return buffer;
  }

  private viewOf(shape: readonly number[], argName: string): ChannelView {
    const view = channelView(this.layout, shape, argName);
    if (view.channels !== this.numFeatures) {
      throw new RangeError(
        `${argName} has ${view.channels} channels on the C axis of layout '${this.layout}'; numFeatures is ${this.numFeatures}`,
      );
    }
    checkTensorFits(this.device, argName, shape, viewSize(view), this.tensorBytes(view));
    return view;
  }

  /**
   * Uniform parameters and scratch for a shape and mode, made once and then reused: every
   * recorded pass keeps its own immutable uniform, so passes recorded into one encoder before a
   * submit never see each other's parameters.
   */
  private shapeResources(view: ChannelView, mode: { batchStats: boolean; updateRunning: boolean }): ShapeResources {
    const key = `${view.outer}x${view.channels}x${view.inner}:${Number(mode.batchStats)}${Number(mode.updateRunning)}`;
    let res = this.shapes.get(key);
    if (res) return res;
    const count = view.outer * view.inner;
    const channelsLast = view.inner === 1;
    const chunks = channelsLast ? Math.ceil(view.outer / REDUCTION_ROWS) : Math.ceil(count / REDUCTION_CHUNK);
    const partialWorkgroups = channelsLast ? Math.ceil(view.channels / REDUCTION_WORKGROUP_SIZE) * chunks : view.channels * chunks;
    const params = paramsData(view, chunks, {
      eps: this.eps,
      momentum: this.momentum,
      updateRunning: mode.updateRunning,
      batchStats: mode.batchStats,
      updateNonFinite: this.nonFiniteBatches === 'update',
      unbiasedRunning: this.runningVariance === 'unbiased',
    });
    const label = `${this.label} [${view.outer}, ${view.channels}, ${view.inner}]`;
    res = {
      chunks,
      channelsLast,
      partialWorkgroups,
      params: createBufferWithData(this.device, `${label} params`, params, Usage.UNIFORM),
      partials: acquireScratch(this.device, align4(view.channels * chunks * 16), this),
    };
    this.owned.add(res.params);
    this.shapes.set(key, res);
    return res;
  }

  /** Input and output buffers of the high-level calls, grown to fit. */
  private ioBuffers(bytes: number) {
    if (this.io && this.io.bytes >= bytes) return this.io;
    if (this.io) for (const b of [this.io.x, this.io.y, this.io.dy, this.io.dx]) this.disown(b);
    const make = (name: string) => {
      const buffer = this.device.createBuffer({
        label: `${this.label} ${name}`,
        size: bytes,
        usage: Usage.STORAGE | Usage.COPY_SRC | Usage.COPY_DST,
      });
      this.owned.add(buffer);
      return buffer;
    };
    this.io = { bytes, x: make('x'), y: make('y'), dy: make('dy'), dx: make('dx') };
    return this.io;
  }

  private disown(buffer: GPUBuffer): void {
    this.owned.delete(buffer);
    buffer.destroy();
  }
}
