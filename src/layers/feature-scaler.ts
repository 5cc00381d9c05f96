/**
 * Feature scaling on the GPU, shaped like Keras's `Normalization` layer: `adapt` accumulates
 * per-feature statistics over any number of batches (so a data set larger than one buffer
 * works), then `transform` scales and `inverse` undoes it. Two methods, as in the lecture notes:
 *
 * - 'min-max':     x' = (x − min) / (max − min), into [0, 1];
 * - 'standardize': x' = (x − μ̂) / σ̂, with the sample variance σ̂² = Σ(x − μ̂)² / (n − 1).
 *
 * Features are the channels of the layout's [outer, C, inner] view (the last axis for 'NC').
 */
import { checkLayout, channelView, viewSize, type ChannelView, type Layout } from '../tensor/layout.js';
import { Usage, align4, checkSeparateOutput, createBufferWithData, dispatchKernel, readBuffers, regionOf, type TensorBuffer } from '../runtime/gpu.js';
import { CHANNEL_COEF_BYTES as COEF_BYTES, REDUCTION_CHUNK, WORKGROUP_SIZE, paramsData, tensorBytes, tensorStorage, SLOT_ELEMENTS } from '../kernels/shaders.js';
import { acquireScratch, releaseScratch } from '../runtime/scratch.js';
import { checkTensorBuffer, checkTensorFits, describe } from '../runtime/validate.js';

/** How {@link FeatureScaler} scales each feature. */
export type ScalingMethod = 'min-max' | 'standardize';

/** Options of a {@link FeatureScaler}. */
export interface FeatureScalerOptions {
  /** Number of features (the size of the layout's C axis). */
  numFeatures: number;
  /** 'min-max' (to [0, 1]) or 'standardize' (zero mean, unit variance). */
  method: ScalingMethod;
  /** Layout of the data; features are its channel axis. Default 'NC' (rows of features). */
  layout?: Layout;
  /**
   * The variance divides by count − correction: 1 (default) is the notes' sample variance,
   * 0 the population variance that numpy.std and Keras's Normalization use.
   */
  correction?: 0 | 1;
  /** Prefix of every GPU object's label. Default 'FeatureScaler'. */
  label?: string;
  /**
   * A caller-owned buffer (or range) for the accumulated statistics, numFeatures ×
   * {@link SCALING_STATE_BYTES_PER_FEATURE} bytes (zeroed: nothing adapted yet). It is used as it
   * is and not destroyed with the scaler; since it may already hold statistics, transforms are
   * not refused before an adapt.
   */
  state?: TensorBuffer;
}

/** Bytes per feature of a scaler's accumulated statistics (FeatureScalerOptions.state; struct ScaleState in feature_scaling.wgsl). */
export const SCALING_STATE_BYTES_PER_FEATURE = 32;

/** Statistics accumulated by {@link FeatureScaler.adapt}. */
export interface ScalingStats {
  /** Values seen per feature. */
  count: number;
  min: Float32Array;
  max: Float32Array;
  mean: Float64Array;
  /** Variance with the scaler's correction. */
  variance: Float64Array;
}

const STATE_BYTES = SCALING_STATE_BYTES_PER_FEATURE;
const PARTIAL_BYTES = 32; // struct ScalePartial

/**
 * Per-feature scaling on one GPUDevice. `encodeAdapt`, `encodeTransform` and `encodeInverse`
 * record into the caller's encoder on caller-owned float32 buffers; `adapt`, `transform` and
 * `inverse` take and return arrays.
 *
 * @example
 * const scaler = new FeatureScaler(device, { numFeatures: 2, method: 'standardize' });
 * await scaler.adapt(people, [n, 2]);
 * const scaled = await scaler.transform(people, [n, 2]);
 */
export class FeatureScaler {
  readonly device: GPUDevice;
  readonly numFeatures: number;
  readonly method: ScalingMethod;
  readonly layout: Layout;
  readonly correction: 0 | 1;
  readonly label: string;
  /** Per-feature accumulated statistics (struct ScaleState), zeroed by {@link reset}. */
  private readonly state: TensorBuffer;
  /** The state is the caller's (options.state): it may hold statistics this object never saw. */
  private readonly callerState: boolean;
  private readonly coef: GPUBuffer;
  private readonly inverseCoef: GPUBuffer;
  private readonly options: GPUBuffer;
  private readonly owned: GPUBuffer[] = [];
  private readonly shapes = new Map<string, { params: GPUBuffer; partials: GPUBuffer; chunks: number }>();
  private adaptedCount = 0;
  private destroyed = false;

  constructor(device: GPUDevice, options: FeatureScalerOptions) {
    if (!device || typeof (device as GPUDevice).createBuffer !== 'function') throw new TypeError(`device must be a GPUDevice; got ${describe(device)}`);
    if (!options || typeof options !== 'object') throw new TypeError('options must be an object with numFeatures and method');
    const { numFeatures, method, layout = 'NC', correction = 1, label = 'FeatureScaler' } = options;
    if (!Number.isSafeInteger(numFeatures) || numFeatures < 1) throw new TypeError(`options.numFeatures must be a positive integer; got ${String(numFeatures)}`);
    if (method !== 'min-max' && method !== 'standardize') throw new TypeError(`options.method must be 'min-max' or 'standardize'; got ${String(method)}`);
    checkLayout(layout, 'options.layout');
    if (correction !== 0 && correction !== 1) throw new TypeError(`options.correction must be 0 or 1; got ${String(correction)}`);
    this.device = device;
    this.numFeatures = numFeatures;
    this.method = method;
    this.layout = layout;
    this.correction = correction;
    this.label = label;
    const own = (name: string, bytes: number, usage: number) => {
      const buffer = createBufferWithData(device, `${label} ${name}`, new ArrayBuffer(bytes), usage);
      this.owned.push(buffer);
      return buffer;
    };
    if (options.state !== undefined) checkTensorBuffer('options.state', options.state, numFeatures * STATE_BYTES, `${numFeatures} x ${STATE_BYTES} bytes`, device);
    this.callerState = options.state !== undefined;
    this.state = options.state ?? own('state', numFeatures * STATE_BYTES, Usage.STORAGE | Usage.COPY_SRC | Usage.COPY_DST);
    this.coef = own('coefficients', numFeatures * COEF_BYTES, Usage.STORAGE);
    this.inverseCoef = own('inverse coefficients', numFeatures * COEF_BYTES, Usage.STORAGE);
    const opts = new ArrayBuffer(16);
    new Uint32Array(opts, 0, 1)[0] = method === 'standardize' ? 1 : 0;
    new Float32Array(opts, 4, 1)[0] = correction;
    this.options = createBufferWithData(device, `${label} options`, opts, Usage.UNIFORM);
    this.owned.push(this.options);
  }

  /** Whether {@link adapt} has seen data since creation or the last {@link reset} (always true on a caller's state). */
  get adapted(): boolean {
    return this.callerState || this.adaptedCount > 0;
  }

  /** Records the accumulation of `x`'s per-feature statistics into the scaler's state. */
  encodeAdapt(encoder: GPUCommandEncoder, args: { x: TensorBuffer; shape: readonly number[] }): void {
    this.checkUsable();
    const view = this.viewOf(args?.shape, 'args.shape');
    this.checkBuffers(view, args.shape, { 'args.x': args.x });
    checkSeparateOutput([this.callerState ? 'options.state' : 'the state', this.state], { 'args.x': args.x });
    const res = this.shapeResources(view);
    const perFeature = Math.ceil(this.numFeatures / WORKGROUP_SIZE);
    const pass = encoder.beginComputePass({ label: `${this.label} adapt` });
    const base = { 0: res.params, 6: this.state };
    dispatchKernel(this.device, pass, 'scaling_begin', 'f32', perFeature, { ...base, 1: args.x });
    dispatchKernel(this.device, pass, 'scaling_partials', 'f32', this.numFeatures * res.chunks, { ...base, 1: args.x, 5: res.partials });
    dispatchKernel(this.device, pass, 'scaling_accumulate', 'f32', perFeature, { ...base, 5: res.partials });
    pass.end();
    this.adaptedCount += view.outer * view.inner;
  }

  /** Records y = scaled x. Needs {@link adapt} (or encodeAdapt) first. */
  encodeTransform(encoder: GPUCommandEncoder, args: { x: TensorBuffer; y: TensorBuffer; shape: readonly number[] }): void {
    this.encodeScale(encoder, args, 'transform');
  }

  /** Records y = unscaled x: the inverse of {@link encodeTransform}. */
  encodeInverse(encoder: GPUCommandEncoder, args: { x: TensorBuffer; y: TensorBuffer; shape: readonly number[] }): void {
    this.encodeScale(encoder, args, 'inverse');
  }

  /** Accumulates the statistics of `data` (float32 values of `shape`). */
  async adapt(data: Float32Array, shape: readonly number[]): Promise<void> {
    await this.run(data, shape, (encoder, x) => this.encodeAdapt(encoder, { x, shape }), false);
  }

  /** Scales `data` (float32 values of `shape`) with the adapted statistics. */
  transform(data: Float32Array, shape: readonly number[]): Promise<Float32Array> {
    return this.run(data, shape, (encoder, x, y) => this.encodeTransform(encoder, { x, y, shape }), true);
  }

  /** Undoes {@link transform}. */
  inverse(data: Float32Array, shape: readonly number[]): Promise<Float32Array> {
    return this.run(data, shape, (encoder, x, y) => this.encodeInverse(encoder, { x, y, shape }), true);
  }

  /** Reads the accumulated statistics back. */
  async getStats(): Promise<ScalingStats> {
    this.checkUsable();
    const [bytes] = await readBuffers(this.device, [regionOf(this.state, this.numFeatures * STATE_BYTES)]);
    const s = new Float32Array(bytes);
    const at = (c: number, field: number) => s[c * (STATE_BYTES / 4) + field];
    const C = this.numFeatures;
    return {
      count: C > 0 ? at(0, 3) : 0,
      min: Float32Array.from({ length: C }, (_, c) => at(c, 4)),
      max: Float32Array.from({ length: C }, (_, c) => at(c, 5)),
      mean: Float64Array.from({ length: C }, (_, c) => at(c, 0) + at(c, 1)),
      variance: Float64Array.from({ length: C }, (_, c) => at(c, 2) / Math.max(at(c, 3) - this.correction, 1)),
    };
  }

  /** Forgets every adapted batch (through the queue: work submitted earlier still sees them). */
  reset(): void {
    this.checkUsable();
    const region = regionOf(this.state, this.numFeatures * STATE_BYTES);
    this.device.queue.writeBuffer(region.buffer, region.offset ?? 0, new Uint8Array(region.size));
    this.adaptedCount = 0;
  }

  /** Destroys every GPU buffer of the scaler. */
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    for (const b of this.owned) b.destroy();
    this.owned.length = 0;
    releaseScratch(this.device, this);
    this.shapes.clear();
  }

  private encodeScale(encoder: GPUCommandEncoder, args: { x: TensorBuffer; y: TensorBuffer; shape: readonly number[] }, what: 'transform' | 'inverse'): void {
    this.checkUsable();
    if (!this.adapted) throw new Error(`${this.label}: ${what} needs adapt() on some data first`);
    const view = this.viewOf(args?.shape, 'args.shape');
    this.checkBuffers(view, args.shape, { 'args.x': args.x, 'args.y': args.y });
    checkSeparateOutput(['args.y', args.y], { 'args.x': args.x });
    const res = this.shapeResources(view);
    const storage = tensorStorage(this.device, 'float32', view.inner);
    const pass = encoder.beginComputePass({ label: `${this.label} ${what}` });
    // Coefficients are refreshed from the state every time: a transform always sees every adapt recorded before it.
    dispatchKernel(this.device, pass, 'scaling_coefficients', 'f32', Math.ceil(this.numFeatures / WORKGROUP_SIZE), {
      0: res.params,
      6: this.state,
      7: this.coef,
      8: this.inverseCoef,
      9: this.options,
    });
    const workgroups = Math.ceil(viewSize(view) / SLOT_ELEMENTS[storage] / WORKGROUP_SIZE);
    dispatchKernel(this.device, pass, 'normalize', storage, workgroups, {
      0: res.params,
      1: args.x,
      2: args.y,
      10: what === 'transform' ? this.coef : this.inverseCoef,
    });
    pass.end();
  }

  /** Uploads `data`, records `record` on it, submits, and reads the output back if asked. */
  private async run(
    data: Float32Array,
    shape: readonly number[],
    record: (encoder: GPUCommandEncoder, x: GPUBuffer, y: GPUBuffer) => void,
    readOutput: boolean,
  ): Promise<Float32Array> {
    this.checkUsable();
    if (!(data instanceof Float32Array)) throw new TypeError(`data must be a Float32Array; got ${describe(data)}`);
    const view = this.viewOf(shape, 'shape');
    if (data.length !== viewSize(view)) throw new RangeError(`data must have ${viewSize(view)} elements for shape [${shape.join(', ')}]; got ${data.length}`);
    const usage = Usage.STORAGE | Usage.COPY_SRC | Usage.COPY_DST;
    const x = createBufferWithData(this.device, `${this.label} input`, data, usage);
    const y = this.device.createBuffer({ label: `${this.label} output`, size: align4(Math.max(4, data.byteLength)), usage });
    try {
      const encoder = this.device.createCommandEncoder({ label: this.label });
      record(encoder, x, y);
      const [bytes] = await readBuffers(this.device, readOutput ? [{ buffer: y, size: data.byteLength }] : [], encoder);
      return readOutput ? new Float32Array(bytes) : new Float32Array(0);
    } finally {
      x.destroy();
      y.destroy();
    }
  }

  private viewOf(shape: readonly number[], argName: string): ChannelView {
    const view = channelView(this.layout, shape, argName);
    if (view.channels !== this.numFeatures) {
      throw new RangeError(`${argName} has ${view.channels} features on the C axis of layout '${this.layout}'; numFeatures is ${this.numFeatures}`);
    }
    checkTensorFits(this.device, argName, shape, viewSize(view), viewSize(view) * 4);
    return view;
  }

  private checkBuffers(view: ChannelView, shape: readonly number[], buffers: Record<string, TensorBuffer>): void {
    const bytes = tensorBytes('f32', viewSize(view));
    for (const [name, buffer] of Object.entries(buffers)) checkTensorBuffer(name, buffer, bytes, `float32 [${shape.join(', ')}]`, this.device);
  }

  private shapeResources(view: ChannelView) {
    const key = `${view.outer}x${view.channels}x${view.inner}`;
    let res = this.shapes.get(key);
    if (!res) {
      const chunks = Math.ceil((view.outer * view.inner) / REDUCTION_CHUNK);
      const label = `${this.label} [${view.outer}, ${view.channels}, ${view.inner}]`;
      res = {
        chunks,
        params: createBufferWithData(this.device, `${label} params`, paramsData(view, chunks), Usage.UNIFORM),
        partials: acquireScratch(this.device, view.channels * chunks * PARTIAL_BYTES, this),
      };
      this.owned.push(res.params);
      this.shapes.set(key, res);
    }
    return res;
  }

  private checkUsable(): void {
    if (this.destroyed) throw new Error(`${this.label} was destroyed; create a new FeatureScaler`);
  }
}
