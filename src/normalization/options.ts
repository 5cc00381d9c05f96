/**
 * The normalization family's options and argument checks, shared by the four layers and their
 * function forms: options resolved to PyTorch's defaults, the shape checked against them and
 * turned into a NormGeometry (plan.ts), and the tensors of a pass. Each failure
 * names the argument, the expected value and the actual one.
 */
import type { FusedActivation } from '../core/contract.js';
import { tensorBytes } from '../core/shaders.js';
import { NORM_SAVED_BYTES_PER_GROUP, normStorage } from './kernels.js';
import { channelGroupGeometry, geometrySize, groupCount, rowGeometry, type NormGeometry, type FamilyMember, type NormPlanOptions } from './plan.js';
import type { DType } from '../core/plans.js';
import { checkSeparateOutput, type TensorBuffer } from '../core/gpu.js';
import {
  checkDisjoint,
  checkGpuEps,
  checkKnownKeys,
  checkLabel,
  checkNoOverlap,
  checkObjectArg,
  checkTensorBuffer,
  checkTensorFits,
  describeValue,
  isPlainObject,
  type KnownKeys,
  type UsedRange,
  passArgHints,
} from '../core/validate.js';
import { channelView, checkLayout, type Layout } from '../core/layout.js';

/** An activation fused after the normalization's affine transform, forward and backward: 'none', 'relu' or 'silu'. */
export type NormActivation = FusedActivation;

/** Options every family layer takes. */
export interface NormCommonOptions {
  /** Added to the variance (RMSNorm: to mean(x²)) before the square root. */
  eps?: number;
  /** 'relu' or 'silu' (z·sigmoid(z), what UNets put after GroupNorm) fused after γ·x̂ + β; backward takes dL/d(output). Default 'none'. */
  activation?: NormActivation;
  /** Storage of x, y, dy and dx ('float16': IEEE halves; arithmetic is float32). Default 'float32'. */
  dtype?: DType;
  /** Prefix of every GPU object's label. */
  label?: string;
}

/** Caller-owned buffers a layer uses instead of creating its own (float32; sizes as the layer's fields). @inline */
export type NormBufferName = 'gamma' | 'beta' | 'gammaGrad' | 'betaGrad' | 'runningMean' | 'runningVar';

/** Options of {@link LayerNorm}: PyTorch's nn.LayerNorm. */
export interface LayerNormOptions extends NormCommonOptions {
  /** The trailing dimensions normalized over (a number: the last one). */
  normalizedShape: number | readonly number[];
  /** Learnable γ (init 1) and, with `bias`, β (init 0), of normalizedShape's size. Default true. */
  elementwiseAffine?: boolean;
  /** Learnable β (with elementwiseAffine). Default true. */
  bias?: boolean;
  buffers?: Partial<Record<'gamma' | 'beta' | 'gammaGrad' | 'betaGrad', TensorBuffer>>;
}

/** Options of {@link RMSNorm}: PyTorch's nn.RMSNorm; no β. eps defaults to float32's machine epsilon 2⁻²³ for either dtype (the arithmetic is float32). */
export interface RMSNormOptions extends NormCommonOptions {
  normalizedShape: number | readonly number[];
  /** Learnable γ (init 1). Default true. */
  elementwiseAffine?: boolean;
  buffers?: Partial<Record<'gamma' | 'gammaGrad', TensorBuffer>>;
}

/** Options of {@link GroupNorm}: PyTorch's nn.GroupNorm, on any layout. */
export interface GroupNormOptions extends NormCommonOptions {
  /** G: the channels split into G groups of numChannels / G consecutive channels. */
  numGroups: number;
  numChannels: number;
  /** Learnable per-channel γ (init 1) and β (init 0). Default true. */
  affine?: boolean;
  /** Default 'NCHW'; channels-last layouts normalize the same groups. */
  layout?: Layout;
  buffers?: Partial<Record<'gamma' | 'beta' | 'gammaGrad' | 'betaGrad', TensorBuffer>>;
}

/** Options of {@link InstanceNorm}: PyTorch's nn.InstanceNorm1d/2d/3d. */
export interface InstanceNormOptions extends NormCommonOptions {
  numFeatures: number;
  /** Weight of the new batch in the running update (a number in [0, 1]). Default 0.1. */
  momentum?: number;
  /** Learnable per-channel γ and β. Default false (PyTorch's default). */
  affine?: boolean;
  /** Keep running mean and variance (init 0 and 1), updated by training passes, used by inference passes. Default false. */
  trackRunningStats?: boolean;
  /** What a training batch with NaN or ±Inf in some instance does to the running statistics: 'skip' (default) leaves them; 'update' folds the NaN in, as PyTorch does. */
  nonFiniteBatches?: 'skip' | 'update';
  /** Default 'NCHW'. */
  layout?: Layout;
  buffers?: Partial<Record<NormBufferName, TensorBuffer>>;
}

/** The options of any family layer, resolved. */
export interface ResolvedNormOptions extends NormPlanOptions {
  /** Which layer, for messages. */
  className: 'LayerNorm' | 'RMSNorm' | 'GroupNorm' | 'InstanceNorm';
  label: string;
  /** Entries of γ and β. */
  paramSize: number;
  /** LayerNorm/RMSNorm: the trailing dims. */
  normalizedShape: number[];
  /** GroupNorm/InstanceNorm. */
  numGroups: number;
  numChannels: number;
  layout: Layout;
  trackRunningStats: boolean;
}

const COMMON_KEYS = ['eps', 'activation', 'dtype', 'label', 'buffers'] as const;

/** Every option name of each layer, and advice for other frameworks' names. */
export const NORM_OPTION_KEYS = {
  LayerNorm: ['normalizedShape', 'elementwiseAffine', 'bias', ...COMMON_KEYS],
  RMSNorm: ['normalizedShape', 'elementwiseAffine', ...COMMON_KEYS],
  GroupNorm: ['numGroups', 'numChannels', 'affine', 'layout', ...COMMON_KEYS],
  InstanceNorm: ['numFeatures', 'momentum', 'affine', 'trackRunningStats', 'nonFiniteBatches', 'layout', ...COMMON_KEYS],
} as const;

const OPTION_HINTS: Readonly<Record<string, string>> = {
  normalized_shape: 'PyTorch\'s normalized_shape is normalizedShape here',
  elementwise_affine: "PyTorch's elementwise_affine is elementwiseAffine here",
  num_groups: "PyTorch's num_groups is numGroups here",
  num_channels: "PyTorch's num_channels is numChannels here",
  num_features: "PyTorch's num_features is numFeatures here",
  track_running_stats: "PyTorch's track_running_stats is trackRunningStats here",
  epsilon: 'epsilon is eps here (the ONNX presets convert operator attributes)',
  axis: 'an ONNX axis becomes normalizedShape (onnxLayerNormOptions converts it)',
};

function positiveInteger(argName: string, v: unknown): number {
  if (!Number.isSafeInteger(v) || (v as number) < 1) throw new RangeError(`${argName} must be a positive integer; got ${describeValue(v)}`);
  return v as number;
}

function booleanOption(argName: string, v: unknown, fallback: boolean): boolean {
  if (v === undefined) return fallback;
  if (typeof v !== 'boolean') throw new TypeError(`${argName} must be a boolean; got ${describeValue(v)}`);
  return v;
}

/** `value`, or `fallback` where it is undefined: null is not a default here, so it reaches the check and is refused. */
function orDefault<T>(value: T | undefined, fallback: T): T {
  return value === undefined ? fallback : value;
}

function commonOptions(options: NormCommonOptions, defaultEps: number, className: string, at: string) {
  const eps = orDefault(options.eps, defaultEps);
  checkGpuEps(`${at}.eps`, eps);
  const activation = orDefault(options.activation, 'none');
  if (activation !== 'none' && activation !== 'relu' && activation !== 'silu') {
    throw new TypeError(`${at}.activation must be 'none', 'relu' or 'silu'; got ${describeValue(options.activation)}`);
  }
  const dtype = orDefault(options.dtype, 'float32');
  if (dtype !== 'float32' && dtype !== 'float16') throw new TypeError(`${at}.dtype must be 'float32' or 'float16'; got ${describeValue(options.dtype)}`);
  const label = checkLabel(`${at}.label`, options.label, className);
  return { eps, activation, dtype, label };
}

function checkOptionsObject(className: keyof typeof NORM_OPTION_KEYS, options: unknown, required: string, at: string): asserts options is object {
  if (!options || typeof options !== 'object' || Array.isArray(options)) throw new TypeError(`${at} must be an object with ${required}; got ${describeValue(options)}`);
  checkKnownKeys(at, options, { names: NORM_OPTION_KEYS[className], what: `an option of ${className}`, hints: OPTION_HINTS });
  const buffers = (options as { buffers?: unknown }).buffers;
  // A plain object: a Map's entries are no properties, and would be silently taken for none.
  if (buffers !== undefined && !isPlainObject(buffers)) {
    throw new TypeError(`${at}.buffers must be an object of GPUBuffers (or ranges) by name; got ${describeValue(buffers)}`);
  }
}

/** normalizedShape as a list of positive integers. */
function normalizedShapeOf(v: unknown, at: string): number[] {
  const dims = typeof v === 'number' ? [v] : v;
  if (!Array.isArray(dims) || dims.length === 0) {
    throw new TypeError(`${at}.normalizedShape must be a positive integer or a non-empty array of them; got ${describeValue(v)}`);
  }
  // An index loop: map would skip the holes of a sparse array ([, 2]).
  const checked: number[] = [];
  for (let i = 0; i < dims.length; i++) checked.push(positiveInteger(`${at}.normalizedShape[${i}]`, dims[i]));
  return checked;
}

/** LayerNorm's options with their defaults. `at` names them in messages (the function forms: 'args'). */
export function resolveLayerNormOptions(options: LayerNormOptions, at = 'options'): ResolvedNormOptions {
  checkOptionsObject('LayerNorm', options, 'normalizedShape', at);
  const common = commonOptions(options, 1e-5, 'LayerNorm', at);
  const normalizedShape = normalizedShapeOf(options.normalizedShape, at);
  const affine = booleanOption(`${at}.elementwiseAffine`, options.elementwiseAffine, true);
  const bias = booleanOption(`${at}.bias`, options.bias, true);
  const paramSize = normalizedShape.reduce((a, b) => a * b, 1);
  return rowOptions('LayerNorm', 'layer', common, normalizedShape, paramSize, affine, affine && bias);
}

/** RMSNorm's options with their defaults. */
export function resolveRMSNormOptions(options: RMSNormOptions, at = 'options'): ResolvedNormOptions {
  checkOptionsObject('RMSNorm', options, 'normalizedShape', at);
  const common = commonOptions(options, 2 ** -23, 'RMSNorm', at);
  const normalizedShape = normalizedShapeOf(options.normalizedShape, at);
  const affine = booleanOption(`${at}.elementwiseAffine`, options.elementwiseAffine, true);
  const paramSize = normalizedShape.reduce((a, b) => a * b, 1);
  return rowOptions('RMSNorm', 'rms', common, normalizedShape, paramSize, affine, false);
}

function rowOptions(
  className: 'LayerNorm' | 'RMSNorm',
  kind: FamilyMember,
  common: ReturnType<typeof commonOptions>,
  normalizedShape: number[],
  paramSize: number,
  hasGamma: boolean,
  hasBeta: boolean,
): ResolvedNormOptions {
  return {
    ...common,
    className,
    kind,
    momentum: 0,
    nonFiniteBatches: 'skip',
    hasGamma,
    hasBeta,
    paramSize,
    normalizedShape,
    numGroups: 1,
    numChannels: paramSize,
    layout: 'NC',
    trackRunningStats: false,
  };
}

/** GroupNorm's options with their defaults. */
export function resolveGroupNormOptions(options: GroupNormOptions, at = 'options'): ResolvedNormOptions {
  checkOptionsObject('GroupNorm', options, 'numGroups and numChannels', at);
  const common = commonOptions(options, 1e-5, 'GroupNorm', at);
  const numGroups = positiveInteger(`${at}.numGroups`, options.numGroups);
  const numChannels = positiveInteger(`${at}.numChannels`, options.numChannels);
  if (numChannels % numGroups !== 0) {
    throw new RangeError(`${at}.numChannels (${numChannels}) must be divisible by ${at}.numGroups (${numGroups}); got a remainder of ${numChannels % numGroups}`);
  }
  const layout = orDefault(options.layout, 'NCHW');
  checkLayout(layout, `${at}.layout`);
  const affine = booleanOption(`${at}.affine`, options.affine, true);
  return channelOptions('GroupNorm', 'group', common, numGroups, numChannels, layout, affine, { momentum: 0, trackRunningStats: false, nonFiniteBatches: 'skip' });
}

/** InstanceNorm's options with their defaults. */
export function resolveInstanceNormOptions(options: InstanceNormOptions, at = 'options'): ResolvedNormOptions {
  checkOptionsObject('InstanceNorm', options, 'numFeatures', at);
  const common = commonOptions(options, 1e-5, 'InstanceNorm', at);
  const numFeatures = positiveInteger(`${at}.numFeatures`, options.numFeatures);
  const momentum = orDefault(options.momentum, 0.1);
  if (typeof momentum !== 'number' || !(momentum >= 0 && momentum <= 1)) {
    throw new RangeError(`${at}.momentum must be a number in [0, 1] (InstanceNorm has no cumulative average: null is BatchNorm's); got ${describeValue(options.momentum)}`);
  }
  const nonFiniteBatches = orDefault(options.nonFiniteBatches, 'skip');
  if (nonFiniteBatches !== 'skip' && nonFiniteBatches !== 'update') {
    throw new TypeError(`${at}.nonFiniteBatches must be 'skip' or 'update'; got ${describeValue(options.nonFiniteBatches)}`);
  }
  const layout = orDefault(options.layout, 'NCHW');
  checkLayout(layout, `${at}.layout`);
  const affine = booleanOption(`${at}.affine`, options.affine, false);
  const trackRunningStats = booleanOption(`${at}.trackRunningStats`, options.trackRunningStats, false);
  return channelOptions('InstanceNorm', 'instance', common, numFeatures, numFeatures, layout, affine, { momentum, trackRunningStats, nonFiniteBatches });
}

function channelOptions(
  className: 'GroupNorm' | 'InstanceNorm',
  kind: FamilyMember,
  common: ReturnType<typeof commonOptions>,
  numGroups: number,
  numChannels: number,
  layout: Layout,
  affine: boolean,
  running: { momentum: number; trackRunningStats: boolean; nonFiniteBatches: 'skip' | 'update' },
): ResolvedNormOptions {
  return { ...common, ...running, className, kind, hasGamma: affine, hasBeta: affine, paramSize: numChannels, normalizedShape: [], numGroups, numChannels, layout };
}

/** The geometry of a tensor of `shape` for the layer `o`, checked (the shape named `argName`). */
export function normGeometryOf(device: GPUDevice, o: ResolvedNormOptions, shape: readonly number[], argName: string): NormGeometry {
  if (!Array.isArray(shape)) throw new TypeError(`${argName} must be an array of positive integers; got ${describeValue(shape)}`);
  // An index loop: forEach would skip the holes of a sparse array ([, 2]).
  for (let i = 0; i < shape.length; i++) positiveInteger(`${argName}[${i}]`, shape[i]);
  let geometry: NormGeometry;
  if (o.kind === 'layer' || o.kind === 'rms') {
    const k = o.normalizedShape.length;
    const trailing = shape.slice(shape.length - k);
    if (shape.length < k || trailing.some((d, i) => d !== o.normalizedShape[i])) {
      throw new RangeError(
        `${argName} [${shape.join(', ')}] must end with normalizedShape [${o.normalizedShape.join(', ')}] (${o.className} normalizes the trailing dimensions)`,
      );
    }
    const rows = shape.slice(0, shape.length - k).reduce((a, b) => a * b, 1);
    geometry = rowGeometry(rows, o.paramSize);
  } else {
    const view = channelView(o.layout, shape, argName);
    if (view.channels !== o.numChannels) {
      const name = o.kind === 'group' ? 'numChannels' : 'numFeatures';
      throw new RangeError(`${argName} [${shape.join(', ')}] must have ${o.numChannels} channels (${name}) on its channel axis for layout '${o.layout}'; got ${view.channels}`);
    }
    geometry = channelGroupGeometry(view, shape[0], o.numGroups);
  }
  const elements = geometrySize(geometry);
  checkTensorFits(device, argName, shape, elements, tensorBytes(normStorage(device, o.dtype), elements));
  return geometry;
}

/**
 * PyTorch refuses InstanceNorm with batch statistics (training, or inference without running
 * statistics) on one value per instance: its variance is 0 and every output would be β.
 */
export function checkInstanceTrainable(o: ResolvedNormOptions, geometry: NormGeometry, shape: readonly number[], training: boolean): void {
  const batchStats = training || !o.trackRunningStats;
  if (o.kind === 'instance' && batchStats && groupCount(geometry) < 2) {
    throw new RangeError(
      `expected more than 1 spatial element per instance when InstanceNorm normalizes with instance statistics (training, or trackRunningStats false); got shape [${shape.join(', ')}]`,
    );
  }
}

/** Bytes of `saved` a pass over `geometry` needs: one GroupCoef per statistics group. */
export function savedBytes(geometry: NormGeometry): number {
  return geometry.samples * geometry.groups * NORM_SAVED_BYTES_PER_GROUP;
}

/** Each tensor buffer must hold a tensor of `geometry` in the options' dtype and have STORAGE usage. */
export function checkNormTensors(device: GPUDevice, o: ResolvedNormOptions, geometry: NormGeometry, shape: readonly number[], buffers: Record<string, TensorBuffer>): void {
  const bytes = tensorBytes(normStorage(device, o.dtype), geometrySize(geometry));
  for (const [argName, buffer] of Object.entries(buffers)) checkTensorBuffer(argName, buffer, bytes, `${o.dtype} [${shape.join(', ')}]`, device);
}

/** A pass's arguments object. */
export function checkArgsObject(args: unknown, names: string): asserts args is object {
  if (!args || typeof args !== 'object') throw new TypeError(`args must be an object { ${names} }; got ${describeValue(args)}`);
}

/** Advice on names a layer's pass arguments do not take: the layers' options, and near names. */
const PASS_ARG_HINTS = passArgHints([...new Set(Object.values(NORM_OPTION_KEYS).flat())]);

/** The names of a family layer's encodeForward arguments. */
export const NORM_FORWARD_ARG_KEYS: KnownKeys = { names: ['x', 'y', 'shape', 'training'], what: 'an argument of encodeForward', hints: PASS_ARG_HINTS };

/** The names of a family layer's encodeBackward arguments. */
export const NORM_BACKWARD_ARG_KEYS: KnownKeys = {
  names: ['x', 'dy', 'dx', 'shape'],
  what: 'an argument of encodeBackward',
  hints: { ...PASS_ARG_HINTS, training: 'the backward pass follows its forward pass' },
};

/**
 * The forward pass's tensors checked; returns the geometry. Every key of args must be one of
 * `keys` (a layer's: {@link NORM_FORWARD_ARG_KEYS}; null: checked by the caller).
 */
export function checkNormForwardTensors(
  device: GPUDevice,
  o: ResolvedNormOptions,
  args: { x: TensorBuffer; y: TensorBuffer; shape: readonly number[] },
  keys: KnownKeys | null = NORM_FORWARD_ARG_KEYS,
): NormGeometry {
  if (keys) checkObjectArg('args', args, `an object { ${keys.names.join(', ')} }`, keys);
  const geometry = normGeometryOf(device, o, args.shape, 'args.shape');
  checkNormTensors(device, o, geometry, args.shape, { 'args.x': args.x, 'args.y': args.y });
  checkSeparateOutput(['args.y', args.y], { 'args.x': args.x });
  return geometry;
}

/**
 * The backward pass's tensors checked against the forward pass it belongs to; returns the
 * geometry. Every key of args must be one of `keys` ({@link NORM_BACKWARD_ARG_KEYS}; null: checked by the caller).
 */
export function checkNormBackwardTensors(
  device: GPUDevice,
  o: ResolvedNormOptions,
  args: { x: TensorBuffer; dy: TensorBuffer; dx: TensorBuffer; shape: readonly number[] },
  last: { shape: readonly number[] } | null,
  keys: KnownKeys | null = NORM_BACKWARD_ARG_KEYS,
): NormGeometry {
  if (keys) checkObjectArg('args', args, `an object { ${keys.names.join(', ')} }`, keys);
  const geometry = normGeometryOf(device, o, args.shape, 'args.shape');
  if (!last) throw new Error('encodeBackward needs a forward pass first: call encodeForward before it (backward() follows forward())');
  if (last.shape.length !== args.shape.length || last.shape.some((d, i) => d !== args.shape[i])) {
    throw new RangeError(`args.shape must match the last forward pass's shape [${last.shape.join(', ')}]; got [${args.shape.join(', ')}]`);
  }
  checkNormTensors(device, o, geometry, args.shape, { 'args.x': args.x, 'args.dy': args.dy, 'args.dx': args.dx });
  checkSeparateOutput(['args.dx', args.dx], { 'args.x': args.x, 'args.dy': args.dy });
  return geometry;
}

/** The optional `training` flag (default true). */
export function trainingFlag(v: unknown, argName: string): boolean {
  if (v === undefined) return true;
  if (typeof v !== 'boolean') throw new TypeError(`${argName} must be a boolean; got ${describeValue(v)}`);
  return v;
}

/** The buffers besides the tensors that a family pass binds, by role. */
export type NormStateRole = 'saved' | 'gamma' | 'beta' | 'runningMean' | 'runningVar' | 'gammaGrad' | 'betaGrad';

/**
 * A pass's state buffers by role (those it binds; undefined ones are skipped), each named in
 * messages by `names[role]`, else `${prefix}.${role}`: the function forms' 'args' with
 * { gammaGrad: 'args.dgamma', betaGrad: 'args.dbeta' }, a layer's class name ('LayerNorm').
 */
export interface NormState {
  prefix: string;
  buffers: Partial<Record<NormStateRole, TensorBuffer>>;
  names?: Partial<Record<NormStateRole, string>>;
}

/** Bytes a pass uses of a state buffer: one GroupCoef per group of `geometry` for saved, paramSize float32 for the rest. */
function roleBytes(o: ResolvedNormOptions, role: NormStateRole, geometry?: NormGeometry): number {
  return role === 'saved' ? (geometry ? savedBytes(geometry) : 0) : o.paramSize * 4;
}

function named(state: NormState, role: NormStateRole): string {
  return state.names?.[role] ?? `${state.prefix}.${role}`;
}

function separate(state: NormState, written: [string, TensorBuffer], roles: readonly NormStateRole[], extra: Record<string, TensorBuffer> = {}): void {
  const read: Record<string, TensorBuffer> = { ...extra };
  for (const role of roles) {
    const b = state.buffers[role];
    if (b !== undefined) read[named(state, role)] = b;
  }
  checkSeparateOutput(written, read);
}

function used(o: ResolvedNormOptions, state: NormState, roles: readonly NormStateRole[], geometry?: NormGeometry): Record<string, UsedRange> {
  const out: Record<string, UsedRange> = {};
  for (const role of roles) {
    const b = state.buffers[role];
    if (b !== undefined) out[named(state, role)] = [b, roleBytes(o, role, geometry)];
  }
  return out;
}

/**
 * A layer's caller-owned buffers (options.buffers, named `prefix`.name): a buffer a pass writes
 * (the gradients, the running statistics) must overlap no other one, or the pass would
 * overwrite γ, β or another result, and no two of them may overlap at all (setState writes γ
 * and β separately). Ranges of one GPUBuffer may hold them side by side. Call
 * after each has been checked for size and usage.
 */
export function checkNormStateBuffers(
  o: ResolvedNormOptions,
  given: Partial<Record<NormBufferName, TensorBuffer>>,
  prefix: string,
  names?: NormState['names'],
): void {
  const state: NormState = { prefix, buffers: given, names };
  const roles: NormStateRole[] = ['gamma', 'beta', 'runningMean', 'runningVar', 'gammaGrad', 'betaGrad'];
  for (const role of ['gammaGrad', 'betaGrad', 'runningMean', 'runningVar'] as const) {
    const b = given[role];
    if (b !== undefined) checkNoOverlap([named(state, role), b, roleBytes(o, role)], used(o, state, roles.filter((r) => r !== role)));
  }
  // Every other pair too (γ and β): setState writes each, and they must not share bytes.
  checkDisjoint(used(o, state, roles));
}

/**
 * The tensors of a forward pass against the buffers it binds besides them (`state`: saved, γ and
 * β where bound, the running statistics where the layer keeps them). WebGPU refuses a dispatch
 * that writes a GPUBuffer it also reads: y and saved, which norm_forward writes, must be in
 * other GPUBuffers than x, γ, β and the running statistics it reads, and the running
 * statistics, which norm_update_running writes, in others than saved and x. The math refuses
 * overlaps: y with saved, and the running statistics with γ, β, y or each other. Call after
 * {@link checkNormForwardTensors}.
 */
export function checkNormForwardAliasing(
  device: GPUDevice,
  o: ResolvedNormOptions,
  geometry: NormGeometry,
  args: { x: TensorBuffer; y: TensorBuffer },
  state: NormState,
): void {
  const bytes = tensorBytes(normStorage(device, o.dtype), geometrySize(geometry));
  const s = state.buffers;
  separate(state, ['args.y', args.y], ['gamma', 'beta', 'runningMean', 'runningVar']);
  if (s.saved !== undefined) separate(state, [named(state, 'saved'), s.saved], ['gamma', 'beta', 'runningMean', 'runningVar'], { 'args.x': args.x });
  if (s.saved !== undefined) checkNoOverlap(['args.y', args.y, bytes], used(o, state, ['saved'], geometry));
  for (const role of ['runningMean', 'runningVar'] as const) {
    const b = s[role];
    if (b === undefined) continue;
    separate(state, [named(state, role), b], ['saved'], { 'args.x': args.x });
    checkNoOverlap([named(state, role), b, roleBytes(o, role)], { ...used(o, state, ['gamma', 'beta', role === 'runningMean' ? 'runningVar' : 'runningMean']), 'args.y': [args.y, bytes] });
  }
}

/**
 * The tensors of a backward pass against the buffers it binds besides them (`state`: saved, γ
 * and β where bound, and where given the gradients gammaGrad and betaGrad). dx must be in
 * another GPUBuffer than saved, γ and β, which the kernel writing it reads; the gradients in
 * others than x, dy, saved and dx; and a gradient must overlap neither γ, β nor the other
 * gradient. Call after {@link checkNormBackwardTensors}.
 */
export function checkNormBackwardAliasing(o: ResolvedNormOptions, args: { x: TensorBuffer; dy: TensorBuffer; dx: TensorBuffer }, state: NormState): void {
  const s = state.buffers;
  separate(state, ['args.dx', args.dx], ['saved', 'gamma', 'beta']);
  for (const role of ['gammaGrad', 'betaGrad'] as const) {
    const b = s[role];
    if (b === undefined) continue;
    separate(state, [named(state, role), b], ['saved'], { 'args.x': args.x, 'args.dy': args.dy, 'args.dx': args.dx });
    checkNoOverlap([named(state, role), b, roleBytes(o, role)], used(o, state, ['gamma', 'beta', role === 'gammaGrad' ? 'betaGrad' : 'gammaGrad']));
  }
}
