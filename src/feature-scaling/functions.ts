/**
 * Feature scaling as plain functions of (device, encoder, args): x, y and the accumulated `state`
 * are the caller's. Nothing is submitted or read back. Between calls they keep the uniforms of
 * the scaling options (released by releaseFunctionCaches).
 */
import {
  SCALER_OPTIONS,
  SCALING_STATE_BYTES_PER_FEATURE,
  checkScalingTensors,
  resolveScalingOptions,
  scalingOptionsBytes,
  scalingView,
  type FeatureScalerOptions,
} from './options.js';
import { recordScaling, recordScalingAdapt } from './record.js';
import { scalingPlan } from './plan.js';
import {
  FUNCTION_LABEL,
  FUNCTION_OPTION_HINTS,
  argsKeys,
  checkCall,
  familyRecords,
  functionsState,
  ownBuffer,
  shapeFeatures,
  type FunctionsState,
} from '../core/function-forms.js';
import { Usage, bufferName, checkSeparateOutput, createBufferWithData, inComputePass, type TensorBuffer } from '../core/gpu.js';
import { acquireScratch } from '../core/scratch.js';
import { checkArity, checkNoOverlap, checkTensorBuffer, describeValue } from '../core/validate.js';
import { viewSize } from '../core/layout.js';

/**
 * Options of the feature-scaling functions: the scaler options without numFeatures (taken from
 * the shape), state and label; any other name is refused (numFeatures: as for batch norm).
 */
export type FeatureScalingFunctionOptions = Omit<FeatureScalerOptions, 'numFeatures' | 'state' | 'label'>;

/** What the feature-scaling functions keep between calls. */
interface ScalingRecords {
  /** ScalingOptions uniforms by `method:correction` (immutable). */
  readonly scalingOptions: Map<string, GPUBuffer>;
}

/** The feature-scaling functions' records in the function forms' state. */
function scalingRecords(state: FunctionsState): ScalingRecords {
  return familyRecords(state, 'feature-scaling', () => ({ scalingOptions: new Map() }));
}

const SCALING_FUNCTION_KEYS = {
  names: SCALER_OPTIONS.filter((n) => n !== 'state' && n !== 'label'),
  what: 'an option of the feature-scaling functions',
  hints: FUNCTION_OPTION_HINTS,
};
const SCALING_OPTION_NAMES = SCALING_FUNCTION_KEYS.names;
const ADAPT_ARGS = { ...argsKeys('encodeFeatureScalingAdapt', ['x', 'shape', 'state', 'options'], SCALING_OPTION_NAMES, []), hints: { y: 'adapt writes only the state' } };
const SCALE_ARGS = (fn: string) => argsKeys(fn, ['x', 'y', 'shape', 'state', 'options'], SCALING_OPTION_NAMES, []);
const TRANSFORM_ARGS = SCALE_ARGS('encodeFeatureScalingTransform');
const INVERSE_ARGS = SCALE_ARGS('encodeFeatureScalingInverse');

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
    inComputePass(encoder, `${FUNCTION_LABEL} adapt`, (pass) => {
      recordScalingAdapt(device, pass, plan, { x: args.x, state: args.state, partials });
    });
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
  // The state is bound writable, as in adapt (WebGPU refuses a GPUBuffer bound read-only and
  // writable in one dispatch), so x stays out of its GPUBuffer; y may share it, but must not
  // overwrite the state the transform reads.
  checkSeparateOutput(['args.state', args.state], { 'args.x': args.x });
  checkNoOverlap(['args.y', args.y, viewSize(view) * 4], { 'args.state': [args.state, view.channels * SCALING_STATE_BYTES_PER_FEATURE] });
  const optionsKey = `${options.method}:${options.correction}`;
  const { scalingOptions } = scalingRecords(functions);
  let uniform = scalingOptions.get(optionsKey);
  if (!uniform) {
    uniform = ownBuffer(device, functions, createBufferWithData(device, `${FUNCTION_LABEL} scaling options ${optionsKey}`, scalingOptionsBytes(options.method, options.correction), Usage.UNIFORM));
    scalingOptions.set(optionsKey, uniform);
  }
  functions.guard.recordChecked(direction === 'transform' ? 'encodeFeatureScalingTransform' : 'encodeFeatureScalingInverse', () => {
    const plan = scalingPlan(device, view, functions.holder);
    acquireScratch(device, plan.partialBytes, functions.holder);
    inComputePass(encoder, `${FUNCTION_LABEL} ${direction}`, (pass) => {
      recordScaling(device, pass, plan, direction, { x: args.x, y: args.y, state: args.state, options: uniform });
    });
  }, `${direction} of shape [${args.shape.join(', ')}], x ${bufferName(args.x)}, y ${bufferName(args.y)}, state ${bufferName(args.state)}`);
}

/** The options and view of a scaling call, checked, and its tensors. */
function checkScalingCall(
  device: GPUDevice,
  args: { shape: readonly number[]; state: TensorBuffer; options: FeatureScalingFunctionOptions },
  tensors: Record<string, TensorBuffer>,
) {
  if (!args || typeof args !== 'object') throw new TypeError(`args must be an object; got ${describeValue(args)}`);
  if (!args.options || typeof args.options !== 'object') throw new TypeError(`args.options must be an object with at least method; got ${describeValue(args.options)}`);
  if (!args.state) throw new TypeError(`args.state is required: a GPUBuffer (or range) of numFeatures × ${SCALING_STATE_BYTES_PER_FEATURE} bytes; got ${describeValue(args.state)}`);
  const numFeatures = shapeFeatures(args.options, args.options.layout ?? 'NC', args.shape, 'features');
  const options = resolveScalingOptions({ ...args.options, numFeatures }, 'args.options', SCALING_FUNCTION_KEYS);
  const view = scalingView(device, options.layout, numFeatures, args.shape, 'args.shape');
  checkScalingTensors(device, view, args.shape, tensors);
  checkTensorBuffer('args.state', args.state, numFeatures * SCALING_STATE_BYTES_PER_FEATURE, `${numFeatures} x ${SCALING_STATE_BYTES_PER_FEATURE} bytes`, device);
  return { view, options };
}
