/**
 * Batch norm's options and argument checks, shared by the BatchNorm layer and the function forms:
 * options resolved to their defaults, state buffers, and the tensors of a forward or backward
 * pass. Each failure names the argument, the expected value and the actual one.
 */
import { ACTIVATIONS, type FusedActivation } from '../core/contract.js';
import { tensorBytes } from '../core/shaders.js';
import { CHANNEL_COEF_BYTES, tensorStorage } from './kernels.js';
import type { BatchNormMode, BatchNormPlanOptions, DType } from './plan.js';
import { checkSeparateOutput, type TensorBuffer } from '../core/gpu.js';
import {
  checkBoolean,
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
import { channelView, checkLayout, viewSize, type ChannelView, type Layout } from '../core/layout.js';

export type { DType, FusedActivation };

/** Training needs two or more values per channel: the unbiased variance divides by n - 1. */
export function checkTrainable(view: ChannelView, shape: readonly number[], training: boolean): void {
  const count = view.outer * view.inner;
  if (training && count < 2) {
    throw new RangeError(`expected more than 1 value per channel when training; got shape [${shape.join(', ')}] (${count} value per channel)`);
  }
}

/** The accepted activations as a message lists them: 'none', 'relu' or 'silu'. */
const ACTIVATION_NAMES = Object.keys(ACTIVATIONS)
  .map((name) => `'${name}'`)
  .join(', ')
  .replace(/, ([^,]*)$/, ' or $1');

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
   * before the activation). 'silu' fuses SiLU (swish): y = z·σ(z) with z = BN(x), and the
   * backward pass multiplies dL/d(output) by σ(z)·(1 + z·(1 − σ(z))), recomputing z from x.
   * Default 'none'.
   */
  activation?: FusedActivation;
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

/** Every name of {@link StateBufferName}. */
export const STATE_BUFFERS: readonly StateBufferName[] = ['gamma', 'beta', 'runningMean', 'runningVar', 'numBatchesTracked', 'gammaGrad', 'betaGrad', 'saved'];

/** Every name of {@link BatchNormOptions}, which the layer accepts. */
export const BATCHNORM_OPTIONS: readonly (keyof BatchNormOptions)[] = [
  'numFeatures',
  'layout',
  'eps',
  'momentum',
  'affine',
  'scale',
  'center',
  'runningVariance',
  'activation',
  'trackRunningStats',
  'dtype',
  'nonFiniteBatches',
  'label',
  'buffers',
];

/** Advice on option names of other frameworks, in the message that refuses them. */
const BATCHNORM_OPTION_HINTS: Readonly<Record<string, string>> = {
  epsilon: 'eps here; kerasOptions and onnxOptions convert Keras and ONNX arguments',
  axis: 'the channel axis comes from layout; kerasOptions maps an axis and rank to one',
  trainable: "Keras's trainable: to freeze the layer, do not apply its gradients, and call it with training: false",
  weight: 'γ is state, not an option: setState({ gamma })',
  bias: 'β is state, not an option: setState({ beta })',
};

const LAYER_KEYS: KnownKeys = { names: BATCHNORM_OPTIONS, what: 'an option of BatchNorm' };

/**
 * Marks options whose momentum a preset converted from a framework that counts it from the old
 * value (kerasOptions, onnxOptions): its value is the momentum it vouches for, so a momentum
 * above 0.5 from them is not taken for a Keras habit (see {@link momentumWarning}). Enumerable,
 * so it survives `{ ...kerasOptions(…), label }`; a symbol, so the options check ignores it.
 */
export const CONVERTED_MOMENTUM: unique symbol = Symbol.for('webgpu-batchnorm.convertedMomentum') as never;

/** `options`, marked with {@link CONVERTED_MOMENTUM} where its converted momentum would otherwise draw the warning. */
export function markConvertedMomentum<T extends BatchNormOptions>(options: T): T {
  if (typeof options.momentum === 'number' && options.momentum > 0.5) (options as Record<symbol, unknown>)[CONVERTED_MOMENTUM] = options.momentum;
  return options;
}

/**
 * The warning for a momentum above 0.5 that no preset converted, or null. Momentum here is the
 * weight of the new batch (PyTorch's convention), so Keras's 0.99 makes the running statistics
 * follow the last batch almost entirely. Legal, so only a warning, shown once per layer.
 */
export function momentumWarning(o: ResolvedBatchNormOptions, options: BatchNormOptions, who: string): string | null {
  const m = o.momentum;
  if (m === null || m <= 0.5 || (options as unknown as Record<symbol, unknown>)[CONVERTED_MOMENTUM] === m) return null;
  const keras = +(1 - m).toPrecision(12);
  return (
    `${who}: momentum ${m} is the weight of the new batch here (PyTorch's convention), so the running statistics ` +
    `follow the last batches almost entirely. If it is Keras's momentum (the weight of the old value), use ` +
    `kerasOptions({ momentum: ${m}, … }) or momentum: ${keras}. (Shown once per layer.)`
  );
}

/** Options with every default filled in and every value checked. */
export interface ResolvedBatchNormOptions extends BatchNormPlanOptions {
  numFeatures: number;
  layout: Layout;
  scale: boolean;
  center: boolean;
  trackRunningStats: boolean;
}

/**
 * `options` checked and completed with the defaults; `prefix` names them in messages
 * ('options' for the layer). Every key must be one of `keys` (default: the layer's options).
 * `numFeatures` must fit the device's per-channel buffers.
 */
export function resolveBatchNormOptions(device: GPUDevice, options: BatchNormOptions, prefix = 'options', keys: KnownKeys = LAYER_KEYS): ResolvedBatchNormOptions {
  checkKnownKeys(prefix, options, { ...keys, hints: { ...BATCHNORM_OPTION_HINTS, ...keys.hints } });
  const {
    numFeatures,
    layout,
    eps = 1e-5,
    momentum = 0.1,
    affine = true,
    trackRunningStats = true,
    dtype = 'float32',
    nonFiniteBatches = 'skip',
  } = options;
  const { runningVariance = 'unbiased', activation = 'none' } = options;
  if (!Number.isSafeInteger(numFeatures) || numFeatures < 1) {
    throw new TypeError(`${prefix}.numFeatures must be a positive integer; got ${describeValue(numFeatures)}`);
  }
  checkLayout(layout, `${prefix}.layout`);
  checkGpuEps(`${prefix}.eps`, eps);
  if (momentum !== null && (typeof momentum !== 'number' || !(momentum >= 0 && momentum <= 1))) {
    throw new RangeError(`${prefix}.momentum must be a number in [0, 1] or null; got ${describeValue(momentum)}`);
  }
  if (dtype !== 'float32' && dtype !== 'float16') {
    throw new TypeError(`${prefix}.dtype must be 'float32' or 'float16'; got ${describeValue(dtype)}`);
  }
  if (typeof activation !== 'string' || !Object.hasOwn(ACTIVATIONS, activation)) {
    throw new TypeError(`${prefix}.activation must be ${ACTIVATION_NAMES}; got ${describeValue(activation)}`);
  }
  if (runningVariance !== 'unbiased' && runningVariance !== 'biased') {
    throw new TypeError(`${prefix}.runningVariance must be 'unbiased' or 'biased'; got ${describeValue(runningVariance)}`);
  }
  if (nonFiniteBatches !== 'skip' && nonFiniteBatches !== 'update') {
    throw new TypeError(`${prefix}.nonFiniteBatches must be 'skip' or 'update'; got ${describeValue(nonFiniteBatches)}`);
  }
  // Booleans are booleans: 'false' and 0 would otherwise read as their truthiness.
  checkBoolean(`${prefix}.affine`, affine);
  const scale = checkBoolean(`${prefix}.scale`, options.scale, affine);
  const center = checkBoolean(`${prefix}.center`, options.center, affine);
  checkBoolean(`${prefix}.trackRunningStats`, trackRunningStats);
  checkLabel(`${prefix}.label`, options.label, 'BatchNorm');
  const buffers = (options as { buffers?: unknown }).buffers;
  // A plain object: a Map's entries are no properties, and would be silently taken for none.
  if (buffers !== undefined && !isPlainObject(buffers)) {
    throw new TypeError(`${prefix}.buffers must be an object of GPUBuffers (or ranges) by state name; got ${describeValue(buffers)}`);
  }
  const coefBytes = numFeatures * CHANNEL_COEF_BYTES;
  if (coefBytes > device.limits.maxStorageBufferBindingSize) {
    throw new RangeError(
      `${prefix}.numFeatures ${numFeatures} needs ${coefBytes} bytes of per-channel coefficients, more than this device's maxStorageBufferBindingSize of ${device.limits.maxStorageBufferBindingSize}`,
    );
  }
  return {
    numFeatures,
    layout,
    eps,
    momentum,
    scale,
    center,
    runningVariance,
    activation,
    trackRunningStats,
    dtype,
    nonFiniteBatches,
  };
}

/** Bytes each state buffer must hold for C channels, and how to say it. */
/** Bytes a pass uses of state buffer `name` for C channels, and how messages describe them. */
export function stateBufferBytes(name: StateBufferName, C: number): [number, string] {
  if (name === 'numBatchesTracked') return [4, 'one u32'];
  if (name === 'saved') return [C * CHANNEL_COEF_BYTES, `${C} x ${CHANNEL_COEF_BYTES} bytes`];
  return [C * 4, `${C} float32`];
}

/** The state buffers a pass writes: running statistics and the batch count (training), gradients (backward), saved (forward). */
const WRITTEN_STATE: readonly StateBufferName[] = ['runningMean', 'runningVar', 'numBatchesTracked', 'gammaGrad', 'betaGrad', 'saved'];

/**
 * Checks caller-owned state buffers (`prefix`.name): known names, sizes, STORAGE usage; that
 * the outputs among them are in other GPUBuffers than what the same dispatch reads (gradients
 * apart from γ and saved; saved apart from the parameters and statistics; numBatchesTracked
 * apart from γ and β, which the batch statistics read beside it); and that no buffer a pass
 * writes overlaps another state buffer, nor any two state buffers each other (runningMean and
 * runningVar, or γ and β, may share a GPUBuffer, in disjoint ranges). `given` must be a plain
 * object (not a Map). Entries set to undefined are skipped.
 */
export function checkStateBuffers(device: GPUDevice, C: number, given: Partial<Record<string, TensorBuffer>>, prefix: string): void {
  if (!isPlainObject(given)) throw new TypeError(`${prefix} must be an object of buffers by state name; got ${describeValue(given)}`);
  for (const [name, buffer] of Object.entries(given)) {
    if (buffer === undefined) continue;
    if (!STATE_BUFFERS.includes(name as StateBufferName)) throw new TypeError(`${prefix}.${name} is not a state buffer; expected one of ${STATE_BUFFERS.join(', ')}`);
    const [bytes, what] = stateBufferBytes(name as StateBufferName, C);
    checkTensorBuffer(`${prefix}.${name}`, buffer, bytes, what, device);
  }
  const named = (names: StateBufferName[]) => Object.fromEntries(names.filter((n) => given[n]).map((n) => [`${prefix}.${n}`, given[n]!]));
  for (const grad of ['gammaGrad', 'betaGrad'] as const) {
    if (given[grad]) checkSeparateOutput([`${prefix}.${grad}`, given[grad]], named(['gamma', 'saved']));
  }
  if (given.saved) checkSeparateOutput([`${prefix}.saved`, given.saved], named(['gamma', 'beta', 'runningMean', 'runningVar', 'numBatchesTracked']));
  if (given.numBatchesTracked) checkSeparateOutput([`${prefix}.numBatchesTracked`, given.numBatchesTracked], named(['gamma', 'beta']));
  const used = (names: readonly StateBufferName[]): Record<string, UsedRange> =>
    Object.fromEntries(names.filter((n) => given[n]).map((n) => [`${prefix}.${n}`, [given[n], stateBufferBytes(n, C)[0]] as const]));
  for (const name of WRITTEN_STATE) {
    const buffer = given[name];
    if (buffer) checkNoOverlap([`${prefix}.${name}`, buffer, stateBufferBytes(name, C)[0]], used(STATE_BUFFERS.filter((n) => n !== name)));
  }
  // Every other pair too (γ and β): setState writes each, and they must not share bytes.
  checkDisjoint(used(STATE_BUFFERS));
}

/**
 * A layer's or function call's state buffers, named `prefix`.name in messages ('args.buffers'
 * for the function forms, 'BatchNorm' for a layer's own fields).
 */
export interface NamedState {
  prefix: string;
  buffers: Partial<Record<StateBufferName, TensorBuffer>>;
}

function stateUse(o: ResolvedBatchNormOptions, state: NamedState, names: readonly StateBufferName[]): Record<string, UsedRange> {
  return Object.fromEntries(
    names.filter((n) => state.buffers[n] !== undefined).map((n) => [`${state.prefix}.${n}`, [state.buffers[n], stateBufferBytes(n, o.numFeatures)[0]] as const]),
  );
}

/** The buffers of `state` among `names` that it has, by their names in messages. */
function stateBuffersByName(state: NamedState, names: readonly StateBufferName[]): Record<string, TensorBuffer> {
  return Object.fromEntries(names.filter((n) => state.buffers[n] !== undefined).map((n) => [`${state.prefix}.${n}`, state.buffers[n]!]));
}

/**
 * The tensors of a forward pass against the state it reads and writes: y must be in another
 * GPUBuffer than saved, γ, β and the running statistics (inference writes y in the dispatch that
 * reads them; one rule for both modes), x in another than saved, numBatchesTracked and the
 * running statistics (a training pass writes them in the dispatches that read x); y must overlap
 * no state buffer. Call after {@link checkForwardArgs}.
 */
export function checkForwardAliasing(
  device: GPUDevice,
  o: ResolvedBatchNormOptions,
  view: ChannelView,
  args: { x: TensorBuffer; y: TensorBuffer },
  state: NamedState,
): void {
  checkSeparateOutput(['args.y', args.y], stateBuffersByName(state, ['saved', 'gamma', 'beta', 'runningMean', 'runningVar']));
  for (const [name, b] of Object.entries(stateBuffersByName(state, ['saved', 'numBatchesTracked', 'runningMean', 'runningVar']))) {
    checkSeparateOutput([name, b], { 'args.x': args.x });
  }
  checkNoOverlap(['args.y', args.y, tensorBytesOf(device, o, view)], stateUse(o, state, STATE_BUFFERS));
}

/**
 * The tensors of a backward pass against the state: dx must be in another GPUBuffer than saved
 * and γ (the input-gradient kernel reads them while it writes dx) and overlap no state buffer; the
 * gradients of γ and β must be in other GPUBuffers than x and dy (the input-gradient kernel
 * writes them while it reads x and dy). Call after {@link checkBackwardArgs}.
 */
export function checkBackwardAliasing(
  device: GPUDevice,
  o: ResolvedBatchNormOptions,
  view: ChannelView,
  args: { x: TensorBuffer; dy: TensorBuffer; dx: TensorBuffer },
  state: NamedState,
): void {
  checkSeparateOutput(['args.dx', args.dx], stateBuffersByName(state, ['saved', 'gamma']));
  checkNoOverlap(['args.dx', args.dx, tensorBytesOf(device, o, view)], stateUse(o, state, STATE_BUFFERS));
  for (const [name, b] of Object.entries(stateBuffersByName(state, ['gammaGrad', 'betaGrad']))) {
    checkSeparateOutput([name, b], { 'args.x': args.x, 'args.dy': args.dy });
  }
}

/** The [outer, C, inner] view of `shape` (`argName`), which must have `numFeatures` channels and fit the device. */
export function checkedView(device: GPUDevice, o: ResolvedBatchNormOptions, shape: readonly number[], argName: string): ChannelView {
  const view = channelView(o.layout, shape, argName);
  if (view.channels !== o.numFeatures) {
    throw new RangeError(`${argName} has ${view.channels} channels on the C axis of layout '${o.layout}'; numFeatures is ${o.numFeatures}`);
  }
  checkTensorFits(device, argName, shape, viewSize(view), tensorBytesOf(device, o, view));
  return view;
}

/** Bytes of a tensor of `view` in the options' dtype. */
export function tensorBytesOf(device: GPUDevice, o: ResolvedBatchNormOptions, view: ChannelView): number {
  return tensorBytes(tensorStorage(device, o.dtype, view), viewSize(view));
}

/** What a forward pass normalizes with and updates, from the training flag and the options. */
export function forwardMode(o: ResolvedBatchNormOptions, training: boolean): BatchNormMode {
  return { batchStats: training || !o.trackRunningStats, updateRunning: training && o.trackRunningStats };
}

/** How a recorded forward pass normalized; its backward pass must match it. */
export interface ForwardRecord {
  view: ChannelView;
  shape: readonly number[];
  batchStats: boolean;
}

/** Advice on names a pass's arguments object does not take: the layer's options and the array API's. */
const PASS_ARG_HINTS = passArgHints(BATCHNORM_OPTIONS);

/** The names of {@link BatchNorm.encodeForward}'s arguments. */
export const FORWARD_ARG_KEYS: KnownKeys = { names: ['x', 'y', 'shape', 'training'], what: 'an argument of encodeForward', hints: PASS_ARG_HINTS };

/** The names of {@link BatchNorm.encodeBackward}'s arguments. */
export const BACKWARD_ARG_KEYS: KnownKeys = {
  names: ['x', 'dy', 'dx', 'shape'],
  what: 'an argument of encodeBackward',
  hints: { ...PASS_ARG_HINTS, training: 'the backward pass follows the training flag of its forward pass' },
};

/**
 * Checks the arguments of a forward pass and returns its view. Every key must be one of `keys`
 * (the layer's: {@link FORWARD_ARG_KEYS}; null: checked by the caller).
 */
export function checkForwardArgs(
  device: GPUDevice,
  o: ResolvedBatchNormOptions,
  args: { x: TensorBuffer; y: TensorBuffer; shape: readonly number[]; training: boolean },
  keys: KnownKeys | null = FORWARD_ARG_KEYS,
): ChannelView {
  checkObjectArg('args', args, 'an object { x, y, shape, training }', keys ?? undefined);
  const view = checkedView(device, o, args.shape, 'args.shape');
  if (typeof args.training !== 'boolean') throw new TypeError(`args.training must be a boolean; got ${describeValue(args.training)}`);
  checkTensors(device, o, view, args.shape, { 'args.x': args.x, 'args.y': args.y });
  checkSeparateOutput(['args.y', args.y], { 'args.x': args.x });
  checkTrainable(view, args.shape, args.training);
  return view;
}

/**
 * Checks the arguments of a backward pass against the forward pass `last` it belongs to, and
 * returns its view. Every key must be one of `keys` ({@link BACKWARD_ARG_KEYS}; null: checked by the caller).
 */
export function checkBackwardArgs(
  device: GPUDevice,
  o: ResolvedBatchNormOptions,
  args: { x: TensorBuffer; dy: TensorBuffer; dx: TensorBuffer; shape: readonly number[] },
  last: ForwardRecord | null,
  keys: KnownKeys | null = BACKWARD_ARG_KEYS,
): ChannelView {
  checkObjectArg('args', args, 'an object { x, dy, dx, shape }', keys ?? undefined);
  const view = checkedView(device, o, args.shape, 'args.shape');
  if (!last) throw new Error('encodeBackward needs a forward pass first: call encodeForward before it (backward() follows forward())');
  if (last.view.outer !== view.outer || last.view.inner !== view.inner) {
    throw new RangeError(`args.shape must match the last forward pass's shape [${last.shape.join(', ')}]; got [${args.shape.join(', ')}]`);
  }
  checkTensors(device, o, view, args.shape, { 'args.x': args.x, 'args.dy': args.dy, 'args.dx': args.dx });
  checkSeparateOutput(['args.dx', args.dx], { 'args.x': args.x, 'args.dy': args.dy });
  return view;
}

/** Each tensor buffer must hold a tensor of `view` in the options' dtype and have STORAGE usage. */
function checkTensors(device: GPUDevice, o: ResolvedBatchNormOptions, view: ChannelView, shape: readonly number[], buffers: Record<string, TensorBuffer>): void {
  const bytes = tensorBytesOf(device, o, view);
  const what = `${o.dtype} [${shape.join(', ')}]`;
  for (const [argName, buffer] of Object.entries(buffers)) checkTensorBuffer(argName, buffer, bytes, what, device);
}
