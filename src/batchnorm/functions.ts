/**
 * Batch norm and feature scaling as plain functions of (device, encoder, buffers, shape): every
 * buffer is the caller's -- for batch norm the parameters, running statistics, gradients, and
 * `saved`, where a forward pass leaves the statistics its backward pass needs; for feature
 * scaling the accumulated `state`. Nothing is submitted or read back.
 *
 * The functions check their arguments and record the ops (ops/) directly. Between calls they
 * keep, in the device's context, only what a pass cannot get from its arguments: per `saved`
 * range, how its last forward pass normalized and two small buffers of intermediate
 * coefficients; per scaling `state` range, the coefficients of the transform; per family
 * `saved` range (normalization-functions.ts), its last forward pass; and the plans and scratch
 * they use. {@link releaseFunctionCaches} frees them.
 */
import { CHANNEL_COEF_BYTES, GRAD_COEF_BYTES } from './kernels.js';
import {
  BATCHNORM_OPTIONS,
  STATE_BUFFERS,
  checkBackwardAliasing,
  checkBackwardArgs,
  checkForwardAliasing,
  checkForwardArgs,
  checkStateBuffers,
  forwardMode,
  momentumWarning,
  resolveBatchNormOptions,
  type BatchNormOptions,
  type ForwardRecord,
  type ResolvedBatchNormOptions,
} from './options.js';
import {
  SCALER_OPTIONS,
  SCALING_STATE_BYTES_PER_FEATURE,
  checkScalingTensors,
  resolveScalingOptions,
  scalingOptionsBytes,
  scalingView,
  type FeatureScalerOptions,
} from '../feature-scaling/layer.js';
import { recordBackward, recordForward, type BatchNormBuffers } from './record.js';
import { recordScaling, recordScalingAdapt } from '../feature-scaling/record.js';
import { batchNormPlan, scalingPlan } from '../core/plan.js';
import { deviceContext, releaseDeviceContext } from '../core/context.js';
import { DeviceGuard } from '../core/guard.js';
import { Usage, bufferName, bufferOf, checkSeparateOutput, createBufferWithData, isBufferRange, type TensorBuffer } from '../core/gpu.js';
import { acquireScratch } from '../core/scratch.js';
import { checkArity, checkDevice, checkEncoder, checkFixedParams, checkKnownKeys, checkNoOverlap, checkObjectArg, checkTensorBuffer, describe, isPlainObject, type KnownKeys } from '../core/validate.js';
import { channelView, viewSize, type Layout } from '../core/layout.js';

/** Bytes per feature of the `saved` buffer (one ChannelCoef). */
export const SAVED_BYTES_PER_FEATURE = CHANNEL_COEF_BYTES;

/**
 * Options of the functions: the layer options without numFeatures (taken from the shape), buffers
 * and label; any other name is refused. A numFeatures equal to the shape's channel count is let
 * through, so a preset's options (kerasOptions, …) serve as they are.
 */
export type BatchNormFunctionOptions = Omit<BatchNormOptions, 'numFeatures' | 'buffers' | 'label'>;

/**
 * Options of the feature-scaling functions: the scaler options without numFeatures (taken from
 * the shape), state and label; any other name is refused (numFeatures: as for batch norm).
 */
export type FeatureScalingFunctionOptions = Omit<FeatureScalerOptions, 'numFeatures' | 'state' | 'label'>;

/** A batch-norm forward pass recorded on a `saved` range: how it normalized, and the options its backward pass must repeat. */
interface BatchNormForwardRecord extends ForwardRecord {
  /** The options the backward pass's math depends on: the fused activation (recomputed from x), the tensor storage, the layout. */
  activation: ResolvedBatchNormOptions['activation'];
  dtype: ResolvedBatchNormOptions['dtype'];
  layout: Layout;
  /** γ and β the pass normalized with: the caller's buffer, or null where fixed (1 and 0). */
  gamma: TensorBuffer | null;
  beta: TensorBuffer | null;
}

/** What a batch-norm pass on a `saved` range keeps for the next pass on it. */
interface SavedRecord {
  /** The last forward pass recorded with this `saved`, which its backward pass must match. */
  forward: BatchNormForwardRecord | null;
  /** C vec4f: the backward pass's coefficients of dx. */
  gradCoef: GPUBuffer;
  /** One u32: the training pass's non-finite flag. */
  nonFinite: GPUBuffer;
  /** Whether the momentum warning was shown for this `saved`, the functions' stand-in for a layer. */
  momentumWarned?: boolean;
}

/** What a scaling pass on a `state` range uses besides it: the transform's and the inverse's coefficients. */
interface StateRecord {
  coef: GPUBuffer;
  inverseCoef: GPUBuffer;
}

/**
 * A family forward pass recorded on a `saved` range (normalization-functions.ts): which layer,
 * the shape, and the arguments its backward pass's math depends on, as messages show them.
 */
export interface NormForwardRecord {
  /** 'LayerNorm', 'RMSNorm', 'GroupNorm' or 'InstanceNorm'. */
  kind: string;
  shape: readonly number[];
  /** By argument name ('args.activation'): the forward pass's value as a message shows it ("'relu'", '[4]', 'given'). */
  args: Readonly<Record<string, string>>;
}

/** The function forms' part of a device's context. */
export interface FunctionsState {
  /** Holds their plans, scratch and buffers until releaseFunctionCaches. */
  readonly holder: object;
  readonly guard: DeviceGuard;
  /** Per `saved` buffer, per `offset:C` (weak: a caller's buffer is not kept alive). */
  readonly saved: WeakMap<GPUBuffer, Map<string, SavedRecord>>;
  /** Per scaling `state` buffer, per `offset:C`. */
  readonly states: WeakMap<GPUBuffer, Map<string, StateRecord>>;
  /** Per family `saved` buffer, per offset: the last forward pass recorded on it. */
  readonly normSaved: WeakMap<GPUBuffer, Map<number, NormForwardRecord>>;
  /** ScalingOptions uniforms by `method:correction` (immutable). */
  readonly scalingOptions: Map<string, GPUBuffer>;
  /** The fixed γ (ones) and β (zeros) of calls with scale or center false, by `value:C` (immutable). */
  readonly fixedParams: Map<string, GPUBuffer>;
}

/**
 * The caller's buffers of the batch-norm functions: every state buffer, but γ where it is fixed
 * at 1 (`scale` or `affine` false) and β where it is fixed at 0 (`center` or `affine` false),
 * which must be left out (the functions keep the fixed values themselves).
 */
export type BatchNormFunctionBuffers = Omit<BatchNormBuffers, 'gamma' | 'beta'> & { gamma?: TensorBuffer; beta?: TensorBuffer };
export type { BatchNormFunctionBuffers as BatchNormBuffers };

const LABEL = 'webgpu-batchnorm function';

/** The names the functions' options take (the layers' but buffers, state and label), and why they refuse those. */
const FUNCTION_OPTION_HINTS: Readonly<Record<string, string>> = {
  buffers: 'the function forms take their buffers as args.buffers',
  state: 'the function forms take the state as args.state',
  label: `the function forms label their GPU objects '${LABEL}'`,
};
const BATCHNORM_FUNCTION_KEYS = {
  names: BATCHNORM_OPTIONS.filter((n) => n !== 'buffers' && n !== 'label'),
  what: 'an option of the batch-norm functions',
  hints: FUNCTION_OPTION_HINTS,
};
const SCALING_FUNCTION_KEYS = {
  names: SCALER_OPTIONS.filter((n) => n !== 'state' && n !== 'label'),
  what: 'an option of the feature-scaling functions',
  hints: FUNCTION_OPTION_HINTS,
};

/** The args object of a function (`fn`): its names, with advice for an option or buffer put beside them rather than in args.options or args.buffers. */
function argsKeys(fn: string, names: string[], options: readonly string[], buffers: readonly string[]): KnownKeys {
  const hints: Record<string, string> = {
    train: 'did you mean training?',
    ...Object.fromEntries(options.map((n) => [n, `an option: args.options.${n}`])),
    ...Object.fromEntries(buffers.map((n) => [n, `a state buffer: args.buffers.${n}`])),
  };
  if (!names.includes('training')) hints.training = 'the backward pass follows the training flag of its forward pass';
  return { names, what: `an argument of ${fn}`, hints };
}
const BN_OPTION_NAMES = BATCHNORM_FUNCTION_KEYS.names;
const BN_FORWARD_ARGS = argsKeys('encodeBatchNormForward', ['x', 'y', 'shape', 'training', 'buffers', 'options'], BN_OPTION_NAMES, STATE_BUFFERS);
const BN_BACKWARD_ARGS = argsKeys('encodeBatchNormBackward', ['x', 'dy', 'dx', 'shape', 'buffers', 'options'], BN_OPTION_NAMES, STATE_BUFFERS);
const SCALING_OPTION_NAMES = SCALING_FUNCTION_KEYS.names;
const ADAPT_ARGS = { ...argsKeys('encodeFeatureScalingAdapt', ['x', 'shape', 'state', 'options'], SCALING_OPTION_NAMES, []), hints: { y: 'adapt writes only the state' } };
const SCALE_ARGS = (fn: string) => argsKeys(fn, ['x', 'y', 'shape', 'state', 'options'], SCALING_OPTION_NAMES, []);
const TRANSFORM_ARGS = SCALE_ARGS('encodeFeatureScalingTransform');
const INVERSE_ARGS = SCALE_ARGS('encodeFeatureScalingInverse');

/** The device and encoder of a function call, and its args object with only the names of `keys`. */
function checkCall(device: unknown, encoder: unknown, args: unknown, keys: KnownKeys): asserts args is Record<string, unknown> {
  checkDevice('device', device);
  checkEncoder('encoder', encoder);
  checkObjectArg('args', args, `an object { ${keys.names.join(', ')} }`, keys);
}

/** Records a forward pass (see {@link BatchNorm.encodeForward}) on the caller's buffers. */
export function encodeBatchNormForward(
  device: GPUDevice,
  encoder: GPUCommandEncoder,
  args: { x: TensorBuffer; y: TensorBuffer; shape: readonly number[]; training: boolean; buffers: BatchNormFunctionBuffers; options: BatchNormFunctionOptions },
): void {
  checkArity('encodeBatchNormForward', arguments, ['device', 'encoder', 'args']);
  checkCall(device, encoder, args, BN_FORWARD_ARGS);
  const state = functionsState(device);
  state.guard.checkUsable();
  const { o, buffers } = checkBatchNormCall(device, args);
  const view = checkForwardArgs(device, o, args, null);
  checkForwardAliasing(device, o, view, args, { prefix: 'args.buffers', buffers });
  const mode = forwardMode(o, args.training);
  const record = savedRecord(device, state, buffers.saved, o.numFeatures);
  warnMomentumOnce(record, o, args.options);
  state.guard.recordChecked('encodeBatchNormForward', () => {
    const plan = batchNormPlan(device, view, o, mode, state.holder);
    const partials = acquireScratch(device, plan.partialBytes, state.holder);
    recordForward(device, encoder, plan, mode, { ...buffers, ...record, partials, x: args.x, y: args.y }, `${LABEL} forward`);
  }, `${args.training ? 'training' : 'inference'} forward of shape [${args.shape.join(', ')}], x ${bufferName(args.x)}, y ${bufferName(args.y)}, saved ${bufferName(buffers.saved)}`);
  record.forward = {
    view,
    shape: [...args.shape],
    batchStats: mode.batchStats,
    activation: o.activation,
    dtype: o.dtype,
    layout: o.layout,
    gamma: o.scale ? buffers.gamma : null,
    beta: o.center ? buffers.beta : null,
  };
}

/**
 * Records the backward pass of the last forward pass recorded with the same `saved` buffer
 * (see {@link BatchNorm.encodeBackward}): dx, and dL/dγ, dL/dβ into buffers.gammaGrad/betaGrad.
 * Its options must repeat the forward pass's activation, dtype and layout, which its math depends on.
 */
export function encodeBatchNormBackward(
  device: GPUDevice,
  encoder: GPUCommandEncoder,
  args: { x: TensorBuffer; dy: TensorBuffer; dx: TensorBuffer; shape: readonly number[]; buffers: BatchNormFunctionBuffers; options: BatchNormFunctionOptions },
): void {
  checkArity('encodeBatchNormBackward', arguments, ['device', 'encoder', 'args']);
  checkCall(device, encoder, args, BN_BACKWARD_ARGS);
  const state = functionsState(device);
  state.guard.checkUsable();
  const { o, buffers } = checkBatchNormCall(device, args);
  const record = savedRecord(device, state, buffers.saved, o.numFeatures);
  const last = record.forward;
  // The options first: a backward in another layout has another view of the same shape.
  if (last) checkSameOptions(o, args.options, buffers, last);
  const view = checkBackwardArgs(device, o, args, last, null);
  checkBackwardAliasing(device, o, view, args, { prefix: 'args.buffers', buffers });
  state.guard.recordChecked('encodeBatchNormBackward', () => {
    const plan = batchNormPlan(device, view, o, { batchStats: last!.batchStats, updateRunning: false }, state.holder);
    const partials = acquireScratch(device, plan.partialBytes, state.holder);
    recordBackward(device, encoder, plan, { ...buffers, ...record, partials, x: args.x, dy: args.dy, dx: args.dx }, `${LABEL} backward`);
  }, `backward of shape [${args.shape.join(', ')}], x ${bufferName(args.x)}, dy ${bufferName(args.dy)}, dx ${bufferName(args.dx)}, saved ${bufferName(buffers.saved)}`);
}

/**
 * Records the accumulation of `x`'s per-feature statistics into `state` (numFeatures ×
 * SCALING_STATE_BYTES_PER_FEATURE bytes, zeroed before the first batch), as FeatureScaler.adapt.
 */
export function encodeFeatureScalingAdapt(
  device: GPUDevice,
  encoder: GPUCommandEncoder,
  args: { x: TensorBuffer; shape: readonly number[]; state: TensorBuffer; options: FeatureScalingFunctionOptions },
): void {
  checkArity('encodeFeatureScalingAdapt', arguments, ['device', 'encoder', 'args']);
  checkCall(device, encoder, args, ADAPT_ARGS);
  const functions = functionsState(device);
  functions.guard.checkUsable();
  const { view } = checkScalingCall(device, args, { 'args.x': args.x });
  checkSeparateOutput(['args.state', args.state], { 'args.x': args.x });
  functions.guard.recordChecked('encodeFeatureScalingAdapt', () => {
    const plan = scalingPlan(device, view, functions.holder);
    const partials = acquireScratch(device, plan.partialBytes, functions.holder);
    const pass = encoder.beginComputePass({ label: `${LABEL} adapt` });
    recordScalingAdapt(device, pass, plan, { x: args.x, state: args.state, partials });
    pass.end();
  }, `adapt of shape [${args.shape.join(', ')}], x ${bufferName(args.x)}, state ${bufferName(args.state)}`);
}

/** Records y = x scaled with the statistics in `state`. */
export function encodeFeatureScalingTransform(
  device: GPUDevice,
  encoder: GPUCommandEncoder,
  args: { x: TensorBuffer; y: TensorBuffer; shape: readonly number[]; state: TensorBuffer; options: FeatureScalingFunctionOptions },
): void {
  checkArity('encodeFeatureScalingTransform', arguments, ['device', 'encoder', 'args']);
  encodeScaling(device, encoder, args, 'transform');
}

/** Records y = x unscaled: the inverse of {@link encodeFeatureScalingTransform}. */
export function encodeFeatureScalingInverse(
  device: GPUDevice,
  encoder: GPUCommandEncoder,
  args: { x: TensorBuffer; y: TensorBuffer; shape: readonly number[]; state: TensorBuffer; options: FeatureScalingFunctionOptions },
): void {
  checkArity('encodeFeatureScalingInverse', arguments, ['device', 'encoder', 'args']);
  encodeScaling(device, encoder, args, 'inverse');
}

/**
 * Frees what the library keeps for `device` outside its layers: the functions' small buffers,
 * and the plans and scratch only they held; once no layer holds anything on the device, its
 * pipelines too (see releaseDeviceContext). A later call starts afresh; a backward pass then
 * needs its forward pass recorded again.
 */
export function releaseFunctionCaches(device: GPUDevice): void {
  checkArity('releaseFunctionCaches', arguments, ['device']);
  checkDevice('device', device);
  releaseDeviceContext(device);
}

function encodeScaling(
  device: GPUDevice,
  encoder: GPUCommandEncoder,
  args: { x: TensorBuffer; y: TensorBuffer; shape: readonly number[]; state: TensorBuffer; options: FeatureScalingFunctionOptions },
  direction: 'transform' | 'inverse',
): void {
  checkCall(device, encoder, args, direction === 'transform' ? TRANSFORM_ARGS : INVERSE_ARGS);
  const functions = functionsState(device);
  functions.guard.checkUsable();
  const { view, options } = checkScalingCall(device, args, { 'args.x': args.x, 'args.y': args.y });
  checkSeparateOutput(['args.y', args.y], { 'args.x': args.x });
  // The transform reads the state (through its coefficients) and must not overwrite it.
  checkNoOverlap(['args.y', args.y, viewSize(view) * 4], { 'args.state': [args.state, view.channels * SCALING_STATE_BYTES_PER_FEATURE] });
  const record = stateRecord(device, functions, args.state, view.channels);
  const optionsKey = `${options.method}:${options.correction}`;
  let uniform = functions.scalingOptions.get(optionsKey);
  if (!uniform) {
    uniform = own(device, functions, createBufferWithData(device, `${LABEL} scaling options ${optionsKey}`, scalingOptionsBytes(options.method, options.correction), Usage.UNIFORM));
    functions.scalingOptions.set(optionsKey, uniform);
  }
  functions.guard.recordChecked(direction === 'transform' ? 'encodeFeatureScalingTransform' : 'encodeFeatureScalingInverse', () => {
    const plan = scalingPlan(device, view, functions.holder);
    acquireScratch(device, plan.partialBytes, functions.holder);
    const pass = encoder.beginComputePass({ label: `${LABEL} ${direction}` });
    recordScaling(device, pass, plan, direction, { x: args.x, y: args.y, state: args.state, ...record, options: uniform });
    pass.end();
  }, `${direction} of shape [${args.shape.join(', ')}], x ${bufferName(args.x)}, y ${bufferName(args.y)}, state ${bufferName(args.state)}`);
}

/** The function forms' state on `device`, created on first use. */
export function functionsState(device: GPUDevice): FunctionsState {
  const context = deviceContext(device);
  context.functions ??= {
    holder: {},
    guard: new DeviceGuard(device, LABEL, 'your buffers'),
    saved: new WeakMap(),
    states: new WeakMap(),
    normSaved: new WeakMap(),
    scalingOptions: new Map(),
    fixedParams: new Map(),
  };
  return context.functions;
}

/** A buffer of the function forms, destroyed by releaseFunctionCaches. */
function own(device: GPUDevice, state: FunctionsState, buffer: GPUBuffer): GPUBuffer {
  deviceContext(device).holdings.hold(buffer, state.holder);
  return buffer;
}

/** A buffer of `C` float32 `value`s, kept per device for calls whose γ (1) or β (0) is fixed. */
function fixedParam(device: GPUDevice, state: FunctionsState, value: 0 | 1, C: number): GPUBuffer {
  const key = `${value}:${C}`;
  let buffer = state.fixedParams.get(key);
  if (!buffer) {
    buffer = own(device, state, createBufferWithData(device, `${LABEL} fixed ${value === 1 ? 'γ' : 'β'} ×${C}`, new Float32Array(C).fill(value), Usage.STORAGE));
    state.fixedParams.set(key, buffer);
  }
  return buffer;
}

/** The options and buffers of a batch-norm call, checked; numFeatures comes from the shape. */
function checkBatchNormCall(device: GPUDevice, args: { shape: readonly number[]; buffers: BatchNormFunctionBuffers; options: BatchNormFunctionOptions }) {
  if (!args || typeof args !== 'object') throw new TypeError(`args must be an object; got ${describe(args)}`);
  const { options, buffers } = args;
  // Plain objects: a Map's entries are no properties, and would be silently taken for none.
  if (!isPlainObject(options)) throw new TypeError(`args.options must be an object with at least layout; got ${describe(options)}`);
  if (!isPlainObject(buffers)) throw new TypeError(`args.buffers must be an object with ${STATE_BUFFERS.join(', ')}; got ${describe(buffers)}`);
  checkKnownKeys('args.buffers', buffers, { names: STATE_BUFFERS, what: 'a state buffer of the batch-norm functions', hints: { gradCoef: 'kept by the functions per args.buffers.saved' } });
  const numFeatures = shapeFeatures(options, options.layout, args.shape, 'channels');
  const o = resolveBatchNormOptions(device, { ...options, numFeatures }, 'args.options', BATCHNORM_FUNCTION_KEYS);
  const fixed: Partial<Record<string, string | null>> = {
    gamma: o.scale ? null : 'γ is fixed at 1 (args.options.scale or affine false)',
    beta: o.center ? null : 'β is fixed at 0 (args.options.center or affine false)',
  };
  checkFixedParams('args.buffers', buffers as Record<string, TensorBuffer | undefined>, fixed as Record<string, string | null>, 'function');
  for (const name of STATE_BUFFERS) {
    if (!buffers[name] && !fixed[name]) {
      throw new TypeError(`args.buffers.${name} is required: the function forms take every state buffer (${STATE_BUFFERS.join(', ')}; γ and β only where learnable); got ${describe(buffers[name])}`);
    }
  }
  const state = functionsState(device);
  const picked = Object.fromEntries(STATE_BUFFERS.map((n) => [n, buffers[n]])) as unknown as BatchNormBuffers;
  picked.gamma ??= fixedParam(device, state, 1, numFeatures);
  picked.beta ??= fixedParam(device, state, 0, numFeatures);
  checkStateBuffers(device, numFeatures, picked as unknown as Record<string, TensorBuffer>, 'args.buffers');
  return { o, buffers: picked };
}

/** The options and view of a scaling call, checked, and its tensors. */
function checkScalingCall(
  device: GPUDevice,
  args: { shape: readonly number[]; state: TensorBuffer; options: FeatureScalingFunctionOptions },
  tensors: Record<string, TensorBuffer>,
) {
  if (!args || typeof args !== 'object') throw new TypeError(`args must be an object; got ${describe(args)}`);
  if (!args.options || typeof args.options !== 'object') throw new TypeError(`args.options must be an object with at least method; got ${describe(args.options)}`);
  if (!args.state) throw new TypeError(`args.state is required: a GPUBuffer (or range) of numFeatures × ${SCALING_STATE_BYTES_PER_FEATURE} bytes; got ${describe(args.state)}`);
  const numFeatures = shapeFeatures(args.options, args.options.layout ?? 'NC', args.shape, 'features');
  const options = resolveScalingOptions({ ...args.options, numFeatures }, 'args.options', SCALING_FUNCTION_KEYS);
  const view = scalingView(device, options.layout, numFeatures, args.shape, 'args.shape');
  checkScalingTensors(device, view, args.shape, tensors);
  checkTensorBuffer('args.state', args.state, numFeatures * SCALING_STATE_BYTES_PER_FEATURE, `${numFeatures} x ${SCALING_STATE_BYTES_PER_FEATURE} bytes`, device);
  return { view, options };
}

/**
 * The channel count of `shape` in `layout`. The functions take it from the shape; a numFeatures
 * in their options (a preset's) must agree with it.
 */
function shapeFeatures(options: object, layout: BatchNormOptions['layout'], shape: readonly number[], what: string): number {
  const C = channelView(layout, shape, 'args.shape').channels;
  const given = (options as { numFeatures?: unknown }).numFeatures;
  if (given !== undefined && given !== C) {
    throw new RangeError(`args.options.numFeatures must match the ${C} ${what} of args.shape [${shape.join(', ')}] (or be left out: the shape gives it); got ${describe(given)}`);
  }
  return C;
}

/**
 * A backward pass repeats the options of the forward pass recorded on its `saved` that its math
 * depends on: the fused activation (whose derivative it applies, recomputing z from x and
 * saved), the dtype (how x, dy and dx are stored) and the layout (where the channels are).
 */
function checkSameOptions(o: ResolvedBatchNormOptions, options: BatchNormFunctionOptions, buffers: BatchNormBuffers, forward: BatchNormForwardRecord): void {
  const defaults = { activation: 'none', dtype: 'float32' } as const;
  for (const name of ['activation', 'dtype', 'layout'] as const) {
    if (o[name] === forward[name]) continue;
    const given = options[name];
    const got = given === undefined ? `undefined (the default, '${o[name]}')` : describe(given);
    const fallback = name !== 'layout' && forward[name] === defaults[name] ? ' or left out' : '';
    throw new TypeError(
      `args.options.${name} must be '${forward[name]}'${fallback}, as in the forward pass recorded on this args.buffers.saved (a backward pass takes the options of its forward pass); got ${got}`,
    );
  }
  // dx scales by γ, and a fused activation recomputes its input with γ and β: the backward pass
  // takes the forward's, fixed or the same buffers.
  const why = 'as in the forward pass recorded on this args.buffers.saved (the backward pass takes the γ and β its forward pass normalized with)';
  for (const [name, flag, fixedValue] of [
    ['gamma', 'scale', 1],
    ['beta', 'center', 0],
  ] as const) {
    const before = forward[name];
    const learnable = flag === 'scale' ? o.scale : o.center;
    if ((before === null) !== !learnable) {
      throw new TypeError(
        before === null
          ? `args.options.${flag} (or affine) must be false, ${why}: it held ${name === 'gamma' ? 'γ' : 'β'} fixed at ${fixedValue}; got ${flag} ${describe(options[flag])}, affine ${describe(options.affine)}`
          : `args.options.${flag} and affine must be true or left out, ${why}: it took args.buffers.${name}; got ${flag} ${describe(options[flag])}, affine ${describe(options.affine)}`,
      );
    }
    if (before !== null && !sameRange(before, buffers[name])) {
      throw new TypeError(`args.buffers.${name} must be the buffer (and range) its forward pass took, ${why}; got ${bufferName(buffers[name])}, not ${bufferName(before)}`);
    }
  }
}

/** Whether two tensor arguments are the same buffer at the same offset. */
function sameRange(a: TensorBuffer, b: TensorBuffer): boolean {
  const offset = (t: TensorBuffer) => (isBufferRange(t) ? (t.offset ?? 0) : 0);
  return bufferOf(a) === bufferOf(b) && offset(a) === offset(b);
}

/** Shows the momentum warning once per `saved` buffer range, the functions' stand-in for a layer. */
function warnMomentumOnce(record: SavedRecord, o: ResolvedBatchNormOptions, options: BatchNormFunctionOptions): void {
  if (record.momentumWarned) return;
  record.momentumWarned = true;
  const warning = momentumWarning(o, options as BatchNormOptions, `${LABEL} (this args.buffers.saved)`);
  if (warning) console.warn(warning);
}

/** The record of a `saved` range for C channels, created on first use. */
function savedRecord(device: GPUDevice, state: FunctionsState, saved: TensorBuffer, C: number): SavedRecord {
  return keyed(state.saved, saved, C, () => ({
    forward: null,
    gradCoef: own(device, state, createBufferWithData(device, `${LABEL} gradient coefficients`, new ArrayBuffer(GRAD_COEF_BYTES * C), Usage.STORAGE)),
    nonFinite: own(device, state, createBufferWithData(device, `${LABEL} non-finite flag`, new Uint32Array(1), Usage.STORAGE)),
  }));
}

/** The record of a scaling `state` range for C features, created on first use. */
function stateRecord(device: GPUDevice, state: FunctionsState, scalingState: TensorBuffer, C: number): StateRecord {
  return keyed(state.states, scalingState, C, () => ({
    coef: own(device, state, createBufferWithData(device, `${LABEL} coefficients`, new ArrayBuffer(C * CHANNEL_COEF_BYTES), Usage.STORAGE)),
    inverseCoef: own(device, state, createBufferWithData(device, `${LABEL} inverse coefficients`, new ArrayBuffer(C * CHANNEL_COEF_BYTES), Usage.STORAGE)),
  }));
}

/** The entry of `map` for a buffer range and channel count, made by `make` on first use. */
function keyed<T>(map: WeakMap<GPUBuffer, Map<string, T>>, range: TensorBuffer, C: number, make: () => T): T {
  const buffer = bufferOf(range);
  let perBuffer = map.get(buffer);
  if (!perBuffer) map.set(buffer, (perBuffer = new Map()));
  const key = `${isBufferRange(range) ? (range.offset ?? 0) : 0}:${C}`;
  let entry = perBuffer.get(key);
  if (!entry) perBuffer.set(key, (entry = make()));
  return entry;
}
