/**
 * The BatchNorm layer: owns γ, β, the running statistics and the gradient buffers on one
 * GPUDevice, and records its kernels into the caller's command encoder.
 */
import { checkLayout, channelView, viewSize, type ChannelView, type Layout } from './layout.js';
import { Usage, align4, createBufferWithData, dispatchKernel, readBuffers } from './gpu.js';
import { REDUCTION_CHUNK, WORKGROUP_SIZE } from './shaders.js';

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
  /**
   * Keep running mean and variance (init 0 and 1), updated by training passes and used by
   * inference passes. When false, inference also normalizes with batch statistics. Default true.
   */
  trackRunningStats?: boolean;
  /** Prefix of every GPU object's label. Default 'BatchNorm'. */
  label?: string;
}

/** Arguments of {@link BatchNorm.encodeForward}. */
export interface ForwardArgs {
  /** Input, `shape` float32 values; needs STORAGE usage. */
  x: GPUBuffer;
  /** Output, same size as x, a different buffer; needs STORAGE usage. */
  y: GPUBuffer;
  /** Tensor shape in the layer's layout. */
  shape: readonly number[];
  /** Training: normalize with batch statistics and update the running statistics. */
  training: boolean;
}

/** Arguments of {@link BatchNorm.encodeBackward}. */
export interface BackwardArgs {
  /** The input of the forward pass this backward pass belongs to. */
  x: GPUBuffer;
  /** Gradient of the loss with respect to y. */
  dy: GPUBuffer;
  /** Receives the gradient with respect to x; a buffer other than x and dy. */
  dx: GPUBuffer;
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

/** Result of {@link BatchNorm.backward}. `dgamma` and `dbeta` are null when the layer is not affine. */
export interface BackwardResult {
  dx: Float32Array;
  dgamma: Float32Array | null;
  dbeta: Float32Array | null;
}

/** Uniform parameters and scratch memory for one tensor shape and normalization mode. */
interface ShapeResources {
  view: ChannelView;
  /** Partial-reduction workgroups per channel. */
  chunks: number;
  params: GPUBuffer;
  /** One vec4 per (channel, chunk), shared by the statistics and gradient reductions. */
  partials: GPUBuffer;
}

/** How the last recorded forward pass normalized; the backward pass must match it. */
interface ForwardRecord {
  view: ChannelView;
  /** The input buffer it read, which the backward pass reads again. */
  x: GPUBuffer;
  shape: readonly number[];
  batchStats: boolean;
}

const PARAMS_BYTES = 48; // struct Params in common.wgsl

/**
 * Batch normalization on WebGPU.
 *
 * Low level: {@link encodeForward} and {@link encodeBackward} record into the caller's
 * GPUCommandEncoder on caller-owned buffers; they never submit or read back. High level:
 * {@link forward} and {@link backward} take and return Float32Arrays.
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
  /** Whether γ and β are learnable (otherwise fixed at 1 and 0). */
  readonly affine: boolean;
  /** Whether running statistics are kept and used at inference. */
  readonly trackRunningStats: boolean;
  /** Prefix of every GPU object's label. */
  readonly label: string;

  /** γ, C float32 (STORAGE | COPY_SRC | COPY_DST). */
  readonly gamma: GPUBuffer;
  /** β, C float32. */
  readonly beta: GPUBuffer;
  /** Running mean, C float32. */
  readonly runningMean: GPUBuffer;
  /** Running (unbiased) variance, C float32. */
  readonly runningVar: GPUBuffer;
  /** num_batches_tracked, one u32, counted on the GPU by training passes. */
  readonly numBatchesTracked: GPUBuffer;
  /** dL/dγ of the last backward pass, C float32. */
  readonly gammaGrad: GPUBuffer;
  /** dL/dβ of the last backward pass, C float32. */
  readonly betaGrad: GPUBuffer;

  /** Per channel (mean, γ·invstd, β, invstd) of the last forward pass. */
  private readonly coef: GPUBuffer;
  /** Per channel (mean, k, q, p) of the last backward pass: dx = k·dy − (x − mean)·q − p. */
  private readonly gradCoef: GPUBuffer;
  private readonly owned = new Set<GPUBuffer>();
  private readonly shapes = new Map<string, ShapeResources>();
  private lastForward: ForwardRecord | null = null;
  private io: { bytes: number; x: GPUBuffer; y: GPUBuffer; dy: GPUBuffer; dx: GPUBuffer } | null = null;
  /** Tail of the queue of high-level calls, which run one at a time. */
  private pending: Promise<unknown> = Promise.resolve();
  private destroyed = false;

  constructor(device: GPUDevice, options: BatchNormOptions) {
    if (!device || typeof (device as GPUDevice).createBuffer !== 'function') {
      throw new TypeError(`device must be a GPUDevice; got ${String(device)}`);
    }
    if (!options || typeof options !== 'object') throw new TypeError('options must be an object with numFeatures and layout');
    const {
      numFeatures,
      layout,
      eps = 1e-5,
      momentum = 0.1,
      affine = true,
      trackRunningStats = true,
      label = 'BatchNorm',
    } = options;
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
    this.device = device;
    this.numFeatures = numFeatures;
    this.layout = layout;
    this.eps = eps;
    this.momentum = momentum;
    this.affine = Boolean(affine);
    this.trackRunningStats = Boolean(trackRunningStats);
    this.label = label;

    const C = numFeatures;
    const state = Usage.STORAGE | Usage.COPY_SRC | Usage.COPY_DST;
    this.gamma = this.ownBuffer('gamma', new Float32Array(C).fill(1), state);
    this.beta = this.ownBuffer('beta', new Float32Array(C), state);
    this.runningMean = this.ownBuffer('running mean', new Float32Array(C), state);
    this.runningVar = this.ownBuffer('running var', new Float32Array(C).fill(1), state);
    this.numBatchesTracked = this.ownBuffer('num batches tracked', new Uint32Array(1), state);
    this.gammaGrad = this.ownBuffer('gamma grad', new Float32Array(C), state);
    this.betaGrad = this.ownBuffer('beta grad', new Float32Array(C), state);
    this.coef = this.ownBuffer('normalize coefficients', new Float32Array(4 * C), Usage.STORAGE);
    this.gradCoef = this.ownBuffer('gradient coefficients', new Float32Array(4 * C), Usage.STORAGE);
  }

  /** Number of GPU buffers this layer currently owns (all are destroyed by {@link destroy}). */
  get bufferCount(): number {
    return this.owned.size;
  }

  /**
   * Records the forward pass into `encoder`. Training (or inference without running statistics)
   * normalizes with the batch's statistics; training also updates the running statistics and
   * numBatchesTracked on the GPU. Inference normalizes with the running statistics. Nothing is
   * submitted. Several calls may be recorded into one encoder.
   */
  encodeForward(encoder: GPUCommandEncoder, args: ForwardArgs): void {
    this.checkAlive();
    if (!args || typeof args !== 'object') throw new TypeError('args must be an object { x, y, shape, training }');
    const view = this.viewOf(args.shape, 'args.shape');
    if (typeof args.training !== 'boolean') throw new TypeError(`args.training must be a boolean; got ${String(args.training)}`);
    const bytes = viewSize(view) * 4;
    this.checkBuffer('args.x', args.x, bytes, args.shape);
    this.checkBuffer('args.y', args.y, bytes, args.shape);
    if (args.x === args.y) throw new TypeError('args.y must be a different buffer from args.x (in-place normalization is not supported)');
    checkTrainable(view, args.shape, args.training);

    const batchStats = args.training || !this.trackRunningStats;
    const updateRunning = args.training && this.trackRunningStats;
    const res = this.shapeResources(view, { batchStats, updateRunning });
    const { device } = this;
    const C = view.channels;
    const pass = encoder.beginComputePass({ label: `${this.label} forward` });
    if (batchStats) {
      dispatchKernel(device, pass, 'partial_stats', C * res.chunks, { 0: res.params, 1: args.x, 2: res.partials });
      dispatchKernel(device, pass, 'finalize_stats', C, {
        0: res.params,
        2: res.partials,
        3: this.gamma,
        4: this.beta,
        5: this.runningMean,
        6: this.runningVar,
        7: this.numBatchesTracked,
        8: this.coef,
      });
      if (updateRunning) dispatchKernel(device, pass, 'count_batch', 1, { 7: this.numBatchesTracked });
    } else {
      dispatchKernel(device, pass, 'coef_from_running', Math.ceil(C / WORKGROUP_SIZE), {
        0: res.params,
        1: this.runningMean,
        2: this.runningVar,
        3: this.gamma,
        4: this.beta,
        5: this.coef,
      });
    }
    dispatchKernel(device, pass, 'normalize', Math.ceil(viewSize(view) / WORKGROUP_SIZE), {
      0: res.params,
      6: args.x,
      7: args.y,
      8: this.coef,
    });
    pass.end();
    this.lastForward = { view, x: args.x, shape: [...args.shape], batchStats };
  }

  /**
   * Records the backward pass of the last recorded forward pass into `encoder`: writes dx and
   * accumulates nothing (gammaGrad and betaGrad are overwritten). Uses the mean and 1/σ saved by
   * that forward pass; when it normalized with batch statistics the gradient flows through them.
   */
  encodeBackward(encoder: GPUCommandEncoder, args: BackwardArgs): void {
    this.checkAlive();
    if (!args || typeof args !== 'object') throw new TypeError('args must be an object { x, dy, dx, shape }');
    const view = this.viewOf(args.shape, 'args.shape');
    const last = this.lastForward;
    if (!last) throw new Error('encodeBackward needs a forward pass first: call encodeForward (or forward) before it');
    if (last.view.outer !== view.outer || last.view.inner !== view.inner) {
      throw new RangeError(
        `args.shape must match the last forward pass's shape [${last.shape.join(', ')}]; got [${args.shape.join(', ')}]`,
      );
    }
    const bytes = viewSize(view) * 4;
    this.checkBuffer('args.x', args.x, bytes, args.shape);
    this.checkBuffer('args.dy', args.dy, bytes, args.shape);
    this.checkBuffer('args.dx', args.dx, bytes, args.shape);
    if (args.dx === args.x || args.dx === args.dy) throw new TypeError('args.dx must be a buffer other than args.x and args.dy');

    const res = this.shapeResources(view, { batchStats: last.batchStats, updateRunning: false });
    const { device } = this;
    const C = view.channels;
    const pass = encoder.beginComputePass({ label: `${this.label} backward` });
    dispatchKernel(device, pass, 'partial_grad_sums', C * res.chunks, {
      0: res.params,
      1: args.x,
      2: args.dy,
      3: this.coef,
      4: res.partials,
    });
    dispatchKernel(device, pass, 'finalize_grads', C, {
      0: res.params,
      3: this.coef,
      4: res.partials,
      5: this.gamma,
      6: this.gammaGrad,
      7: this.betaGrad,
      8: this.gradCoef,
    });
    dispatchKernel(device, pass, 'input_grad', Math.ceil(viewSize(view) / WORKGROUP_SIZE), {
      0: res.params,
      1: args.x,
      2: args.dy,
      9: this.gradCoef,
      10: args.dx,
    });
    pass.end();
  }

  /**
   * Normalizes `x` (float32 values of `shape`) on the GPU and resolves with y. Calls on one layer
   * run in order, one at a time.
   */
  forward(x: Float32Array, shape: readonly number[], options: { training: boolean }): Promise<Float32Array> {
    return this.serialized(async () => {
      this.checkAlive();
      if (!(x instanceof Float32Array)) throw new TypeError(`x must be a Float32Array; got ${describe(x)}`);
      const view = this.viewOf(shape, 'shape');
      if (x.length !== viewSize(view)) {
        throw new RangeError(`x must have ${viewSize(view)} elements for shape [${shape.join(', ')}]; got ${x.length}`);
      }
      if (!options || typeof options.training !== 'boolean') {
        throw new TypeError(`options.training must be a boolean; got ${String(options?.training)}`);
      }
      // Checked before the I/O buffers may be replaced, so a refused call loses no state.
      checkTrainable(view, shape, options.training);
      const io = this.ioBuffers(x.byteLength);
      const encoder = this.device.createCommandEncoder({ label: `${this.label} forward` });
      this.encodeForward(encoder, { x: io.x, y: io.y, shape, training: options.training });
      this.device.queue.writeBuffer(io.x, 0, x as Float32Array<ArrayBuffer>);
      const [y] = await readBuffers(this.device, [{ buffer: io.y, size: x.byteLength }], encoder);
      return new Float32Array(y);
    });
  }

  /**
   * Backward pass of the last {@link forward} call: takes dL/dy and resolves with dL/dx and,
   * for an affine layer, dL/dγ and dL/dβ (also left in {@link gammaGrad} and {@link betaGrad}).
   */
  backward(dy: Float32Array): Promise<BackwardResult> {
    return this.serialized(async () => {
      this.checkAlive();
      const last = this.lastForward;
      if (!this.io || !last || last.x !== this.io.x) {
        throw new Error('backward() needs forward() first (after encodeForward, use encodeBackward)');
      }
      if (!(dy instanceof Float32Array)) throw new TypeError(`dy must be a Float32Array; got ${describe(dy)}`);
      const n = viewSize(last.view);
      if (dy.length !== n) {
        throw new RangeError(`dy must have ${n} elements, like the last forward pass's shape [${last.shape.join(', ')}]; got ${dy.length}`);
      }
      const io = this.io;
      const encoder = this.device.createCommandEncoder({ label: `${this.label} backward` });
      this.encodeBackward(encoder, { x: io.x, dy: io.dy, dx: io.dx, shape: last.shape });
      this.device.queue.writeBuffer(io.dy, 0, dy as Float32Array<ArrayBuffer>);
      const C = this.numFeatures * 4;
      const [dx, dgamma, dbeta] = await readBuffers(
        this.device,
        [
          { buffer: io.dx, size: dy.byteLength },
          { buffer: this.gammaGrad, size: C },
          { buffer: this.betaGrad, size: C },
        ],
        encoder,
      );
      return {
        dx: new Float32Array(dx),
        dgamma: this.affine ? new Float32Array(dgamma) : null,
        dbeta: this.affine ? new Float32Array(dbeta) : null,
      };
    });
  }

  /** Reads γ, β, the running statistics and numBatchesTracked back from the GPU. */
  getState(): Promise<BatchNormState> {
    return this.serialized(async () => {
      this.checkAlive();
      const C = this.numFeatures * 4;
      const [gamma, beta, runningMean, runningVar, batches] = await readBuffers(this.device, [
        { buffer: this.gamma, size: C },
        { buffer: this.beta, size: C },
        { buffer: this.runningMean, size: C },
        { buffer: this.runningVar, size: C },
        { buffer: this.numBatchesTracked, size: 4 },
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
   * Writes any subset of the state through the device queue, so it takes effect before work
   * submitted afterwards. Everything is checked before anything is written.
   */
  setState(state: BatchNormStateInput): void {
    this.checkAlive();
    if (!state || typeof state !== 'object') throw new TypeError('state must be an object');
    const writes: [GPUBuffer, BufferSource][] = [];
    const arrays = { gamma: this.gamma, beta: this.beta, runningMean: this.runningMean, runningVar: this.runningVar } as const;
    for (const key of Object.keys(arrays) as (keyof typeof arrays)[]) {
      const value = state[key];
      if (value === undefined) continue;
      if (!this.affine && (key === 'gamma' || key === 'beta')) {
        throw new TypeError(`state.${key} cannot be set: this layer was created with affine: false`);
      }
      if (value === null || typeof value !== 'object' || typeof value.length !== 'number') {
        throw new TypeError(`state.${key} must be an array of ${this.numFeatures} numbers; got ${describe(value)}`);
      }
      if (value.length !== this.numFeatures) {
        throw new RangeError(`state.${key} must have ${this.numFeatures} elements (numFeatures); got ${value.length}`);
      }
      writes.push([arrays[key], Float32Array.from(value)]);
    }
    const batches = state.numBatchesTracked;
    if (batches !== undefined) {
      if (!Number.isSafeInteger(batches) || batches < 0 || batches > 0xffffffff) {
        throw new RangeError(`state.numBatchesTracked must be an integer in [0, 2^32 - 1]; got ${String(batches)}`);
      }
      writes.push([this.numBatchesTracked, new Uint32Array([batches])]);
    }
    for (const [buffer, data] of writes) this.device.queue.writeBuffer(buffer, 0, data);
  }

  /** Destroys every GPU buffer this layer created. The layer cannot be used afterwards. */
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    for (const buffer of this.owned) buffer.destroy();
    this.owned.clear();
    this.shapes.clear();
    this.io = null;
    this.lastForward = null;
  }

  private checkAlive(): void {
    if (this.destroyed) throw new Error(`${this.label} was destroyed; create a new BatchNorm`);
  }

  /** Runs high-level calls one after another, so they never interleave their buffer use. */
  private serialized<T>(fn: () => Promise<T>): Promise<T> {
    const result = this.pending.then(fn);
    this.pending = result.catch(() => undefined);
    return result;
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
    if (viewSize(view) * 4 > 0xffffffff) {
      throw new RangeError(`${argName} [${shape.join(', ')}] has more than 2^30 elements, the most one buffer can index`);
    }
    return view;
  }

  private checkBuffer(argName: string, buffer: GPUBuffer, bytes: number, shape: readonly number[]): void {
    if (!buffer || typeof buffer !== 'object' || typeof buffer.size !== 'number') {
      throw new TypeError(`${argName} must be a GPUBuffer; got ${describe(buffer)}`);
    }
    if (buffer.size < bytes) {
      throw new RangeError(`${argName} must hold at least ${bytes} bytes (float32 [${shape.join(', ')}]); got ${buffer.size}`);
    }
    if ((buffer.usage & Usage.STORAGE) === 0) {
      throw new TypeError(`${argName} must have GPUBufferUsage.STORAGE in its usage; got usage 0x${buffer.usage.toString(16)}`);
    }
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
    const chunks = Math.ceil(count / REDUCTION_CHUNK);
    const params = new ArrayBuffer(PARAMS_BYTES);
    new Uint32Array(params, 0, 6).set([view.outer, view.channels, view.inner, count, chunks, viewSize(view)]);
    new Float32Array(params, 24, 2).set([this.eps, this.momentum ?? -1]);
    new Uint32Array(params, 32, 2).set([Number(mode.updateRunning), Number(mode.batchStats)]);
    const label = `${this.label} [${view.outer}, ${view.channels}, ${view.inner}]`;
    res = {
      view,
      chunks,
      params: createBufferWithData(this.device, `${label} params`, params, Usage.UNIFORM),
      partials: this.device.createBuffer({ label: `${label} partials`, size: align4(view.channels * chunks * 16), usage: Usage.STORAGE }),
    };
    this.owned.add(res.params);
    this.owned.add(res.partials);
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

/** Training needs two or more values per channel: the unbiased variance divides by n - 1. */
function checkTrainable(view: ChannelView, shape: readonly number[], training: boolean): void {
  const count = view.outer * view.inner;
  if (training && count < 2) {
    throw new RangeError(`expected more than 1 value per channel when training; got shape [${shape.join(', ')}] (${count} value per channel)`);
  }
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value !== 'object') return `${typeof value} ${String(value)}`;
  return (value as object).constructor?.name ?? 'object';
}
