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
import { fieldWord } from './kernels.js';
import { recordScaling, recordScalingAdapt } from './record.js';
import { scalingPlan, type ScalingPlan } from './plan.js';
import { Usage, checkSeparateOutput, regionOf, inComputePass, type TensorBuffer } from '../core/gpu.js';
import { acquireScratch } from '../core/scratch.js';
import { arityError, checkArity, checkEncoder, checkLabel, checkNoOverlap, checkObjectArg, checkTensorBuffer, describeValue } from '../core/validate.js';
import { viewSize, type ChannelView, type Layout } from '../core/layout.js';
import {
  SCALING_STATE_BYTES_PER_FEATURE,
  checkScalingTensors,
  resolveScalingOptions,
  scalingOptionsBytes,
  scalingView,
  type FeatureScalerOptions,
  type ScalingMethod,
  type ScalingStats,
} from './options.js';
import { LayerCore, checkBufferUsage, checkLayerDevice, describePass, type CallOutcome, type IoBuffers } from '../core/layer.js';

const STATE_BYTES = SCALING_STATE_BYTES_PER_FEATURE;

export { SCALING_STATE_BYTES_PER_FEATURE };
export type { FeatureScalerOptions, ScalingMethod, ScalingStats };

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
  /** The device every buffer of this scaler lives on. */
  readonly device: GPUDevice;
  /** Number of features (the size of the layout's C axis). */
  readonly numFeatures: number;
  /** 'min-max' or 'standardize'. */
  readonly method: ScalingMethod;
  /** Layout of the data. */
  readonly layout: Layout;
  /** The variance divides by count − correction. */
  readonly correction: 0 | 1;
  /** Prefix of every GPU object's label. */
  readonly label: string;
  private readonly core: LayerCore;
  /** Per-feature accumulated statistics (struct ScaleState), zeroed by {@link reset}. */
  private readonly state: TensorBuffer;
  /** The state is the caller's (options.state): it may hold statistics this object never saw. */
  private readonly callerState: boolean;
  private readonly options: GPUBuffer;
  private adaptedCount = 0;
  /** Whether every adapt() since the last reset() ran: transform, inverse and getStats read what they accumulated. */
  private adapts: CallOutcome | null = null;

  constructor(device: GPUDevice, options: FeatureScalerOptions) {
    checkLayerDevice(device);
    if (!options || typeof options !== 'object') throw new TypeError(`options must be an object with numFeatures and method; got ${describeValue(options)}`);
    const { numFeatures, method, layout, correction } = resolveScalingOptions(options);
    const label = checkLabel('options.label', options.label, 'FeatureScaler');
    if (options.state !== undefined) {
      checkTensorBuffer('options.state', options.state, numFeatures * STATE_BYTES, `${numFeatures} x ${STATE_BYTES} bytes`, device);
      checkBufferUsage('options', { state: options.state }, { state: { COPY_SRC: 'getStats() reads it back', COPY_DST: 'reset() clears it' } });
    }
    this.device = device;
    this.numFeatures = numFeatures;
    this.method = method;
    this.layout = layout;
    this.correction = correction;
    this.label = label;
    this.core = new LayerCore(device, label, 'FeatureScaler');
    this.callerState = options.state !== undefined;
    this.state = options.state ?? this.core.ownBuffer('state', new ArrayBuffer(numFeatures * STATE_BYTES), Usage.STORAGE | Usage.COPY_SRC | Usage.COPY_DST);
    this.options = this.core.ownBuffer('options', scalingOptionsBytes(method, correction), Usage.UNIFORM);
  }

  /** Whether {@link adapt} has seen data since creation or the last {@link reset} (always true on a caller's state). */
  get adapted(): boolean {
    return this.callerState || this.adaptedCount > 0;
  }

  /**
   * Number of GPU buffers this scaler currently holds: its own, and the device's shared plan
   * uniforms and pooled scratch it holds with other layers.
   */
  get bufferCount(): number {
    return this.core.bufferCount;
  }

  /** Records the accumulation of `x`'s per-feature statistics into the scaler's state. */
  encodeAdapt(encoder: GPUCommandEncoder, args: { x: TensorBuffer; shape: readonly number[] }): void {
    this.core.guard.checkUsable();
    checkArity('encodeAdapt', arguments, ['encoder', 'args']);
    checkEncoder('encoder', encoder);
    checkObjectArg('args', args, 'an object { x, shape }', { names: ['x', 'shape'], what: 'an argument of encodeAdapt' });
    const view = this.viewOf(args?.shape, 'args.shape');
    checkScalingTensors(this.device, view, args.shape, { 'args.x': args.x });
    this.checkXOutsideState(args.x);
    this.core.guard.recordChecked('encodeAdapt', () => this.recordAdapt(encoder, view, args.x), describePass('adapt', args.shape, { x: args.x }));
  }

  /** Records y = scaled x. Needs {@link adapt} (or encodeAdapt) first. */
  encodeTransform(encoder: GPUCommandEncoder, args: { x: TensorBuffer; y: TensorBuffer; shape: readonly number[] }): void {
    checkArity('encodeTransform', arguments, ['encoder', 'args']);
    this.encodeScale(encoder, args, 'transform');
  }

  /** Records y = unscaled x: the inverse of {@link encodeTransform}. */
  encodeInverse(encoder: GPUCommandEncoder, args: { x: TensorBuffer; y: TensorBuffer; shape: readonly number[] }): void {
    checkArity('encodeInverse', arguments, ['encoder', 'args']);
    this.encodeScale(encoder, args, 'inverse');
  }

  /** Accumulates the statistics of `data` (float32 values of `shape`; both copied at the call). */
  async adapt(data: Float32Array, shape: readonly number[]): Promise<void> {
    checkArity('adapt', arguments, ['data', 'shape']);
    await this.run('adapt()', data, shape, (encoder, io, view, outcome) => {
      this.recordAdapt(encoder, view, io.x);
      const done = this.adapts ? Promise.all([this.adapts.done, outcome.done]).then(() => undefined) : outcome.done;
      done.catch(() => undefined); // each adapt's own promise reports its failure
      this.adapts = { what: 'an adapt() made since the last reset()', done };
    });
  }

  /**
   * Scales `data` (float32 values of `shape`; both copied at the call) with the statistics that
   * the calls made before adapted. Rejects if an adapt() since the last reset() failed.
   */
  transform(data: Float32Array, shape: readonly number[]): Promise<Float32Array> {
    const error = arityError('transform', arguments, ['data', 'shape']);
    return error ? Promise.reject(error) : this.run('transform()', data, shape, (encoder, io, view) => this.recordScale(encoder, view, io.x, io.y, 'transform'));
  }

  /** Undoes {@link transform}. */
  inverse(data: Float32Array, shape: readonly number[]): Promise<Float32Array> {
    const error = arityError('inverse', arguments, ['data', 'shape']);
    return error ? Promise.reject(error) : this.run('inverse()', data, shape, (encoder, io, view) => this.recordScale(encoder, view, io.x, io.y, 'inverse'));
  }

  /** Reads the accumulated statistics back, as the calls made before left them. Rejects if an adapt() since the last reset() failed. */
  getStats(): Promise<ScalingStats> {
    const error = arityError('getStats', arguments, []);
    if (error) return Promise.reject(error);
    return this.core.call('getStats()', () => ({
      read: [regionOf(this.state, this.numFeatures * STATE_BYTES)],
      after: this.adapts,
      result: ([bytes]) => {
        const s = new Float32Array(bytes);
        const words = STATE_BYTES / 4;
        const at = (c: number, field: 'shift' | 'mean' | 'm2' | 'min' | 'max') => s[c * words + fieldWord('ScaleState', field)];
        const count = new Uint32Array(bytes)[fieldWord('ScaleState', 'count')];
        const C = this.numFeatures;
        return {
          count,
          min: Float32Array.from({ length: C }, (_, c) => at(c, 'min')),
          max: Float32Array.from({ length: C }, (_, c) => at(c, 'max')),
          mean: Float64Array.from({ length: C }, (_, c) => at(c, 'shift') + at(c, 'mean')),
          variance: Float64Array.from({ length: C }, (_, c) => at(c, 'm2') / Math.max(count - this.correction, 1)),
        };
      },
    }));
  }

  /** Forgets every adapted batch (through the queue: calls made and work submitted earlier still see them). */
  reset(): void {
    this.core.guard.checkUsable();
    checkArity('reset', arguments, []);
    this.core.write('reset', [[this.state, new Uint8Array(this.numFeatures * STATE_BYTES)]]);
    this.adaptedCount = 0;
    this.adapts = null;
  }

  /** Destroys every GPU buffer the scaler created and lets go of the shared ones. The scaler cannot be used afterwards; calls made before still finish. */
  destroy(): void {
    checkArity('destroy', arguments, []);
    this.core.destroy();
  }

  /** Every scaling kernel binds the state writable, so x (read) must be in another GPUBuffer. */
  private checkXOutsideState(x: TensorBuffer): void {
    checkSeparateOutput([this.callerState ? 'options.state' : 'the state', this.state], { 'args.x': x });
  }

  private encodeScale(encoder: GPUCommandEncoder, args: { x: TensorBuffer; y: TensorBuffer; shape: readonly number[] }, direction: 'transform' | 'inverse'): void {
    this.core.guard.checkUsable();
    checkEncoder('encoder', encoder);
    checkObjectArg('args', args, 'an object { x, y, shape }', { names: ['x', 'y', 'shape'], what: `an argument of ${direction === 'transform' ? 'encodeTransform' : 'encodeInverse'}` });
    const view = this.viewOf(args?.shape, 'args.shape');
    checkScalingTensors(this.device, view, args.shape, { 'args.x': args.x, 'args.y': args.y });
    checkSeparateOutput(['args.y', args.y], { 'args.x': args.x });
    this.checkXOutsideState(args.x);
    if (this.callerState) checkNoOverlap(['args.y', args.y, viewSize(view) * 4], { 'options.state': [this.state, this.numFeatures * STATE_BYTES] });
    this.core.guard.recordChecked(
      direction === 'transform' ? 'encodeTransform' : 'encodeInverse',
      () => this.recordScale(encoder, view, args.x, args.y, direction),
      describePass(direction, args.shape, { x: args.x, y: args.y }),
    );
  }

  private recordAdapt(encoder: GPUCommandEncoder, view: ChannelView, x: TensorBuffer): void {
    const [plan, partials] = this.plan(view);
    inComputePass(encoder, `${this.label} adapt`, (pass) => {
      recordScalingAdapt(this.device, pass, plan, { x, state: this.state, partials });
    });
    this.adaptedCount += view.outer * view.inner;
  }

  private recordScale(encoder: GPUCommandEncoder, view: ChannelView, x: TensorBuffer, y: TensorBuffer, direction: 'transform' | 'inverse'): void {
    if (!this.adapted) throw new Error(`${this.label}: ${direction} needs adapt() on some data first`);
    const [plan] = this.plan(view);
    inComputePass(encoder, `${this.label} ${direction}`, (pass) => {
      recordScaling(this.device, pass, plan, direction, { x, y, state: this.state, options: this.options });
    });
  }

  /**
   * One array-API call on a copy of `data` (see LayerCore.passCall): records `record` and reads the
   * output back (transform, inverse: after every adapt since the last reset ran).
   */
  private run(
    what: 'adapt()' | 'transform()' | 'inverse()',
    data: Float32Array,
    shape: readonly number[],
    record: (encoder: GPUCommandEncoder, io: IoBuffers, view: ChannelView, outcome: CallOutcome) => void,
  ): Promise<Float32Array> {
    const output = what !== 'adapt()';
    return this.core.passCall(what, {
      input: { name: 'data', data, shape, dtype: 'float32' },
      view: () => {
        const view = this.viewOf(shape, 'shape');
        return [view, viewSize(view)];
      },
      record: (encoder, io, view, _checked, outcome) => {
        const after = this.adapts;
        record(encoder, io, view, outcome);
        return { after };
      },
      output,
    });
  }

  private viewOf(shape: readonly number[], argName: string): ChannelView {
    return scalingView(this.device, this.layout, this.numFeatures, shape, argName);
  }

  /** The plan of a pass over `view`, and scratch for its partials, both held by this scaler. */
  private plan(view: ChannelView): readonly [ScalingPlan, GPUBuffer] {
    const plan = scalingPlan(this.device, view, this.core);
    return [plan, acquireScratch(this.device, plan.partialBytes, this.core)] as const;
  }
}
