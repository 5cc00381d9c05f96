/**
 * Batch norm as plain functions of (device, encoder, args): every buffer is the caller's -- the
 * parameters, running statistics, gradients, and `saved`, where a forward pass leaves the
 * statistics its backward pass needs. Nothing is submitted or read back.
 *
 * The functions check their arguments and record the passes (record.ts) directly. Between calls
 * they keep, in the function forms' state (core/function-forms.ts), only what a pass cannot get
 * from its arguments: per `saved` range, how its last forward pass normalized and two small
 * buffers of intermediate coefficients; and the plans and scratch they use.
 * releaseFunctionCaches frees them.
 */
import { CHANNEL_COEF_BYTES } from './kernels.js';
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
import { recordBackward, recordForward, type BatchNormRecordBuffers } from './record.js';
import { batchNormPlan } from './plan.js';
import {
  FUNCTION_LABEL,
  FUNCTION_OPTION_HINTS,
  argsKeys,
  checkCall,
  familyRecords,
  functionsState,
  keyedByRange,
  ownBuffer,
  shapeFeatures,
  type FunctionsState,
} from '../core/function-forms.js';
import { Usage, bufferName, bufferOf, createBufferWithData, isBufferRange, inComputePass, type TensorBuffer } from '../core/gpu.js';
import { acquireScratch } from '../core/scratch.js';
import { checkArity, checkFixedParams, checkKnownKeys, describeValue, isPlainObject } from '../core/validate.js';
import type { Layout } from '../core/layout.js';

/** Bytes per feature of the `saved` buffer (one ChannelCoef). */
export const SAVED_BYTES_PER_FEATURE = CHANNEL_COEF_BYTES;

/**
 * Options of the functions: the layer options without numFeatures (taken from the shape), buffers
 * and label; any other name is refused. A numFeatures equal to the shape's channel count is let
 * through, so a preset's options (kerasOptions, …) serve as they are.
 */
export type BatchNormFunctionOptions = Omit<BatchNormOptions, 'numFeatures' | 'buffers' | 'label'>;

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
  /** One u32: the training pass's non-finite flag. */
  nonFinite: GPUBuffer;
  /** Whether the momentum warning was shown for this `saved`, the functions' stand-in for a layer. */
  momentumWarned?: boolean;
}

/**
 * The caller's buffers of the batch-norm functions: every state buffer, but γ where it is fixed
 * at 1 (`scale` or `affine` false) and β where it is fixed at 0 (`center` or `affine` false),
 * which must be left out (the functions keep the fixed values themselves).
 */
export type BatchNormFunctionBuffers = Omit<BatchNormRecordBuffers, 'gamma' | 'beta'> & { gamma?: TensorBuffer; beta?: TensorBuffer };
export type { BatchNormFunctionBuffers as BatchNormBuffers };

const BATCHNORM_FUNCTION_KEYS = {
  names: BATCHNORM_OPTIONS.filter((n) => n !== 'buffers' && n !== 'label'),
  what: 'an option of the batch-norm functions',
  hints: FUNCTION_OPTION_HINTS,
};
const BN_OPTION_NAMES = BATCHNORM_FUNCTION_KEYS.names;
const BN_FORWARD_ARGS = argsKeys('encodeBatchNormForward', ['x', 'y', 'shape', 'training', 'buffers', 'options'], BN_OPTION_NAMES, STATE_BUFFERS);
const BN_BACKWARD_ARGS = argsKeys('encodeBatchNormBackward', ['x', 'dy', 'dx', 'shape', 'buffers', 'options'], BN_OPTION_NAMES, STATE_BUFFERS);

/** What the batch-norm functions keep between calls: per `saved` range (weak: a caller's buffer is not kept alive), and the fixed γ/β. */
interface BatchNormRecords {
  /** Per `saved` buffer, per `offset:C`. */
  readonly saved: WeakMap<GPUBuffer, Map<string, SavedRecord>>;
  /** The fixed γ (ones) and β (zeros) of calls with scale or center false, by `value:C` (immutable). */
  readonly fixedParams: Map<string, GPUBuffer>;
}

/** The batch-norm functions' records in the function forms' state. */
function batchNormRecords(state: FunctionsState): BatchNormRecords {
  return familyRecords(state, 'batchnorm', () => ({ saved: new WeakMap(), fixedParams: new Map() }));
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
    inComputePass(encoder, `${FUNCTION_LABEL} forward`, (pass) => recordForward(device, pass, plan, mode, { ...buffers, ...record, partials, x: args.x, y: args.y }));
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
    inComputePass(encoder, `${FUNCTION_LABEL} backward`, (pass) => recordBackward(device, pass, plan, { ...buffers, ...record, partials, x: args.x, dy: args.dy, dx: args.dx }));
  }, `backward of shape [${args.shape.join(', ')}], x ${bufferName(args.x)}, dy ${bufferName(args.dy)}, dx ${bufferName(args.dx)}, saved ${bufferName(buffers.saved)}`);
}

/** A buffer of `C` float32 `value`s, kept per device for calls whose γ (1) or β (0) is fixed. */
function fixedParam(device: GPUDevice, state: FunctionsState, value: 0 | 1, C: number): GPUBuffer {
  const key = `${value}:${C}`;
  const { fixedParams } = batchNormRecords(state);
  let buffer = fixedParams.get(key);
  if (!buffer) {
    buffer = ownBuffer(device, state, createBufferWithData(device, `${FUNCTION_LABEL} fixed ${value === 1 ? 'γ' : 'β'} ×${C}`, new Float32Array(C).fill(value), Usage.STORAGE));
    fixedParams.set(key, buffer);
  }
  return buffer;
}

/** The options and buffers of a batch-norm call, checked; numFeatures comes from the shape. */
function checkBatchNormCall(device: GPUDevice, args: { shape: readonly number[]; buffers: BatchNormFunctionBuffers; options: BatchNormFunctionOptions }) {
  if (!args || typeof args !== 'object') throw new TypeError(`args must be an object; got ${describeValue(args)}`);
  const { options, buffers } = args;
  // Plain objects: a Map's entries are no properties, and would be silently taken for none.
  if (!isPlainObject(options)) throw new TypeError(`args.options must be an object with at least layout; got ${describeValue(options)}`);
  if (!isPlainObject(buffers)) throw new TypeError(`args.buffers must be an object with ${STATE_BUFFERS.join(', ')}; got ${describeValue(buffers)}`);
  checkKnownKeys('args.buffers', buffers, { names: STATE_BUFFERS, what: 'a state buffer of the batch-norm functions', hints: { nonFinite: 'kept by the functions per args.buffers.saved' } });
  const numFeatures = shapeFeatures(options, options.layout, args.shape, 'channels');
  const o = resolveBatchNormOptions(device, { ...options, numFeatures }, 'args.options', BATCHNORM_FUNCTION_KEYS);
  const fixed: Partial<Record<string, string | null>> = {
    gamma: o.scale ? null : 'γ is fixed at 1 (args.options.scale or affine false)',
    beta: o.center ? null : 'β is fixed at 0 (args.options.center or affine false)',
  };
  checkFixedParams('args.buffers', buffers as Record<string, TensorBuffer | undefined>, fixed as Record<string, string | null>, 'function');
  for (const name of STATE_BUFFERS) {
    if (!buffers[name] && !fixed[name]) {
      throw new TypeError(`args.buffers.${name} is required: the function forms take every state buffer (${STATE_BUFFERS.join(', ')}; γ and β only where learnable); got ${describeValue(buffers[name])}`);
    }
  }
  const state = functionsState(device);
  const picked = Object.fromEntries(STATE_BUFFERS.map((n) => [n, buffers[n]])) as unknown as BatchNormRecordBuffers;
  picked.gamma ??= fixedParam(device, state, 1, numFeatures);
  picked.beta ??= fixedParam(device, state, 0, numFeatures);
  checkStateBuffers(device, numFeatures, picked as unknown as Record<string, TensorBuffer>, 'args.buffers');
  return { o, buffers: picked };
}

/**
 * A backward pass repeats the options of the forward pass recorded on its `saved` that its math
 * depends on: the fused activation (whose derivative it applies, recomputing z from x and
 * saved), the dtype (how x, dy and dx are stored) and the layout (where the channels are).
 */
function checkSameOptions(o: ResolvedBatchNormOptions, options: BatchNormFunctionOptions, buffers: BatchNormRecordBuffers, forward: BatchNormForwardRecord): void {
  const defaults = { activation: 'none', dtype: 'float32' } as const;
  for (const name of ['activation', 'dtype', 'layout'] as const) {
    if (o[name] === forward[name]) continue;
    const given = options[name];
    const got = given === undefined ? `undefined (the default, '${o[name]}')` : describeValue(given);
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
          ? `args.options.${flag} (or affine) must be false, ${why}: it held ${name === 'gamma' ? 'γ' : 'β'} fixed at ${fixedValue}; got ${flag} ${describeValue(options[flag])}, affine ${describeValue(options.affine)}`
          : `args.options.${flag} and affine must be true or left out, ${why}: it took args.buffers.${name}; got ${flag} ${describeValue(options[flag])}, affine ${describeValue(options.affine)}`,
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
  const warning = momentumWarning(o, options as BatchNormOptions, `${FUNCTION_LABEL} (this args.buffers.saved)`);
  if (warning) console.warn(warning);
}

/** The record of a `saved` range for C channels, created on first use. */
function savedRecord(device: GPUDevice, state: FunctionsState, saved: TensorBuffer, C: number): SavedRecord {
  return keyedByRange(batchNormRecords(state).saved, saved, C, () => ({
    forward: null,
    nonFinite: ownBuffer(device, state, createBufferWithData(device, `${FUNCTION_LABEL} non-finite flag`, new Uint32Array(1), Usage.STORAGE)),
  }));
}
