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
import { CHANNEL_COEF_BYTES, fieldWord, packStruct, structBytes } from './kernels.js';
import { recordScaling, recordScalingAdapt } from './record.js';
import { scalingPlan, type ScalingPlan } from '../core/plan.js';
import { Usage, bufferName, checkSeparateOutput, regionOf, type TensorBuffer } from '../core/gpu.js';
import { acquireScratch } from '../core/scratch.js';
import { arityError, checkArity, checkEncoder, checkKnownKeys, checkLabel, checkNoOverlap, checkObjectArg, checkTensorBuffer, checkTensorFits, describe, type KnownKeys } from '../core/validate.js';
import { channelView, checkLayout, viewSize, type ChannelView, type Layout } from '../core/layout.js';
import { LayerCore, checkBufferUsage, tensorDownload, tensorUpload, type CallOutcome } from '../core/layer.js';

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

/** Bytes per feature of a scaler's accumulated statistics (FeatureScalerOptions.state; struct ScaleState in feature-scaling/scaling.wgsl). */
export const SCALING_STATE_BYTES_PER_FEATURE = structBytes('ScaleState');

const STATE_BYTES = SCALING_STATE_BYTES_PER_FEATURE;

/** Every name of {@link FeatureScalerOptions}, which the scaler accepts. */
export const SCALER_OPTIONS: readonly (keyof FeatureScalerOptions)[] = ['numFeatures', 'method', 'layout', 'correction', 'label', 'state'];

/** Advice on option names of other libraries, in the message that refuses them. */
const SCALER_OPTION_HINTS: Readonly<Record<string, string>> = { ddof: "numpy's ddof is correction here", axis: 'the feature axis comes from layout' };

/**
 * The scaler's options checked and completed with the defaults; `prefix` names them in
 * messages. Every key must be one of `keys` (default: the scaler's options).
 */
export function resolveScalingOptions(
  options: Omit<FeatureScalerOptions, 'state' | 'label'>,
  prefix = 'options',
  keys: KnownKeys = { names: SCALER_OPTIONS, what: 'an option of FeatureScaler' },
): Required<Omit<FeatureScalerOptions, 'state' | 'label'>> {
  checkKnownKeys(prefix, options, { ...keys, hints: { ...SCALER_OPTION_HINTS, ...keys.hints } });
  const { numFeatures, method, layout = 'NC', correction = 1 } = options;
  if (!Number.isSafeInteger(numFeatures) || numFeatures < 1) throw new TypeError(`${prefix}.numFeatures must be a positive integer; got ${describe(numFeatures)}`);
  if (method !== 'min-max' && method !== 'standardize') throw new TypeError(`${prefix}.method must be 'min-max' or 'standardize'; got ${describe(method)}`);
  checkLayout(layout, `${prefix}.layout`);
  if (correction !== 0 && correction !== 1) throw new TypeError(`${prefix}.correction must be 0 or 1; got ${describe(correction)}`);
  return { numFeatures, method, layout, correction };
}

/** The uniform ScalingOptions of a method and correction. */
export function scalingOptionsBytes(method: ScalingMethod, correction: 0 | 1): ArrayBuffer {
  return packStruct('ScalingOptions', { method: method === 'standardize' ? 1 : 0, correction });
}

/** The [outer, C, inner] view of `shape`, which must have `numFeatures` features and fit the device. */
export function scalingView(device: GPUDevice, layout: Layout, numFeatures: number, shape: readonly number[], argName: string): ChannelView {
  const view = channelView(layout, shape, argName);
  if (view.channels !== numFeatures) {
    throw new RangeError(`${argName} has ${view.channels} features on the C axis of layout '${layout}'; numFeatures is ${numFeatures}`);
  }
  checkTensorFits(device, argName, shape, viewSize(view), viewSize(view) * 4);
  return view;
}

/** Each float32 tensor buffer must hold a tensor of `view` and have STORAGE usage. */
export function checkScalingTensors(device: GPUDevice, view: ChannelView, shape: readonly number[], buffers: Record<string, TensorBuffer>): void {
  const bytes = viewSize(view) * 4;
  for (const [name, buffer] of Object.entries(buffers)) checkTensorBuffer(name, buffer, bytes, `float32 [${shape.join(', ')}]`, device);
}

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
  private readonly coef: GPUBuffer;
  private readonly inverseCoef: GPUBuffer;
  private readonly options: GPUBuffer;
  private adaptedCount = 0;
  /** Whether every adapt() since the last reset() ran: transform, inverse and getStats read what they accumulated. */
  private adapts: CallOutcome | null = null;

  constructor(device: GPUDevice, options: FeatureScalerOptions) {
    if (!device || typeof (device as GPUDevice).createBuffer !== 'function') throw new TypeError(`device must be a GPUDevice; got ${describe(device)}`);
    if (!options || typeof options !== 'object') throw new TypeError(`options must be an object with numFeatures and method; got ${describe(options)}`);
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
    this.coef = this.core.ownBuffer('coefficients', new ArrayBuffer(numFeatures * CHANNEL_COEF_BYTES), Usage.STORAGE);
    this.inverseCoef = this.core.ownBuffer('inverse coefficients', new ArrayBuffer(numFeatures * CHANNEL_COEF_BYTES), Usage.STORAGE);
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
    checkSeparateOutput([this.callerState ? 'options.state' : 'the state', this.state], { 'args.x': args.x });
    this.core.guard.recordChecked('encodeAdapt', () => this.recordAdapt(encoder, view, args.x), `adapt of shape [${args.shape.join(', ')}], x ${bufferName(args.x)}`);
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
    await this.run('adapt()', data, shape, (encoder, x, view, _y, outcome) => {
      this.recordAdapt(encoder, view, x);
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
    return error ? Promise.reject(error) : this.run('transform()', data, shape, (encoder, x, view, y) => this.recordScale(encoder, view, x, y, 'transform'));
  }

  /** Undoes {@link transform}. */
  inverse(data: Float32Array, shape: readonly number[]): Promise<Float32Array> {
    const error = arityError('inverse', arguments, ['data', 'shape']);
    return error ? Promise.reject(error) : this.run('inverse()', data, shape, (encoder, x, view, y) => this.recordScale(encoder, view, x, y, 'inverse'));
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

  private encodeScale(encoder: GPUCommandEncoder, args: { x: TensorBuffer; y: TensorBuffer; shape: readonly number[] }, direction: 'transform' | 'inverse'): void {
    this.core.guard.checkUsable();
    checkEncoder('encoder', encoder);
    checkObjectArg('args', args, 'an object { x, y, shape }', { names: ['x', 'y', 'shape'], what: `an argument of ${direction === 'transform' ? 'encodeTransform' : 'encodeInverse'}` });
    const view = this.viewOf(args?.shape, 'args.shape');
    checkScalingTensors(this.device, view, args.shape, { 'args.x': args.x, 'args.y': args.y });
    checkSeparateOutput(['args.y', args.y], { 'args.x': args.x });
    if (this.callerState) checkNoOverlap(['args.y', args.y, viewSize(view) * 4], { 'options.state': [this.state, this.numFeatures * STATE_BYTES] });
    this.core.guard.recordChecked(
      direction === 'transform' ? 'encodeTransform' : 'encodeInverse',
      () => this.recordScale(encoder, view, args.x, args.y, direction),
      `${direction} of shape [${args.shape.join(', ')}], x ${bufferName(args.x)}, y ${bufferName(args.y)}`,
    );
  }

  private recordAdapt(encoder: GPUCommandEncoder, view: ChannelView, x: TensorBuffer): void {
    const [plan, partials] = this.plan(view);
    const pass = encoder.beginComputePass({ label: `${this.label} adapt` });
    recordScalingAdapt(this.device, pass, plan, { x, state: this.state, partials });
    pass.end();
    this.adaptedCount += view.outer * view.inner;
  }

  private recordScale(encoder: GPUCommandEncoder, view: ChannelView, x: TensorBuffer, y: TensorBuffer, direction: 'transform' | 'inverse'): void {
    if (!this.adapted) throw new Error(`${this.label}: ${direction} needs adapt() on some data first`);
    const [plan] = this.plan(view);
    const pass = encoder.beginComputePass({ label: `${this.label} ${direction}` });
    recordScaling(this.device, pass, plan, direction, { x, y, state: this.state, coef: this.coef, inverseCoef: this.inverseCoef, options: this.options });
    pass.end();
  }

  /**
   * One array-API call: checks `data` and `shape`, records `record` on a copy of `data`, submits,
   * and reads the output back (transform, inverse: after every adapt since the last reset ran).
   */
  private run(
    what: 'adapt()' | 'transform()' | 'inverse()',
    data: Float32Array,
    shape: readonly number[],
    record: (encoder: GPUCommandEncoder, x: GPUBuffer, view: ChannelView, y: GPUBuffer, outcome: CallOutcome) => void,
  ): Promise<Float32Array> {
    const readOutput = what !== 'adapt()';
    return this.core.call(what, (encoder, outcome) => {
      const view = this.viewOf(shape, 'shape');
      const upload = tensorUpload('data', data, 'float32', viewSize(view), `shape [${shape.join(', ')}]`);
      const after = this.adapts;
      const io = this.core.ioBuffers(upload.byteLength);
      record(encoder, io.x, view, io.y, outcome);
      return {
        uploads: [[io.x, upload]],
        read: readOutput ? [{ buffer: io.y, size: upload.byteLength }] : [],
        after: readOutput ? after : null,
        result: ([bytes]) => (readOutput ? tensorDownload(bytes, 'float32', viewSize(view)) : new Float32Array(0)),
      };
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
