/**
 * BatchNorm options in PyTorch's, Keras's and ONNX's terms. The layer follows PyTorch's
 * semantics; the Keras and ONNX mappings convert:
 *
 * | | PyTorch `nn.BatchNorm*d` | Keras `BatchNormalization` | ONNX `BatchNormalization` (opset 15) | BatchNorm option |
 * | --- | --- | --- | --- | --- |
 * | ε | `eps=1e-5` | `epsilon=1e-3` | `epsilon=1e-5` | `eps` |
 * | momentum | `0.1`, weight of the new batch | `0.99`, weight of the old value | `0.9`, weight of the old value | `momentum` = PyTorch's = 1 − Keras's = 1 − ONNX's |
 * | channel axis | 1 (channels first) | `axis=-1` (channels last) | 1 (channels first) | `layout` |
 * | learnable γ, β | `affine` (both) | `scale` (γ), `center` (β) | inputs `scale` (γ), `B` (β) | `scale`, `center` (`affine` sets both) |
 * | running statistics | `running_mean`, `running_var` | `moving_mean`, `moving_variance` | inputs `input_mean`, `input_var` | `runningMean`, `runningVar` |
 * | running variance takes | unbiased batch variance | biased batch variance | biased batch variance | `runningVariance` |
 * | batch count | `num_batches_tracked` | none | none | `numBatchesTracked` |
 * | training or inference | `module.train()` / `eval()` | `training` call argument | `training_mode` attribute | `training` of each call |
 */
import type { BatchNormOptions } from '../batchnorm/layer.js';
import type { GroupNormOptions, InstanceNormOptions, LayerNormOptions, RMSNormOptions } from '../normalization/layer.js';
import { BATCHNORM_OPTIONS, markConvertedMomentum } from '../batchnorm/options.js';
import { NORM_OPTION_KEYS } from '../normalization/options.js';
import { checkBoolean, checkGpuEps, checkKnownKeys, checkStateValues, describeValue, type KnownKeys } from '../core/validate.js';
import { checkLayout, findLayout, type Layout } from '../core/layout.js';

/** Throws a TypeError unless `args` is an object whose every key the preset knows. */
function checkArgs(args: object, keys: KnownKeys, argName = 'args'): void {
  if (args === null || typeof args !== 'object' || Array.isArray(args)) {
    throw new TypeError(`${argName} must be an object; got ${describeValue(args)}`);
  }
  checkKnownKeys(argName, args, keys);
}

/** PyTorch's `nn.BatchNorm1d/2d/3d(num_features, eps, momentum, affine, track_running_stats)`. */
export interface PyTorchBatchNormArgs {
  /** num_features. */
  numFeatures: number;
  /** The input's layout: 'NC' or 'NCL' (BatchNorm1d), 'NCHW' (2d), 'NCDHW' (3d). */
  layout: Layout;
  eps?: number;
  /** Weight of the new batch; null: cumulative moving average. Default 0.1. */
  momentum?: number | null;
  affine?: boolean;
  trackRunningStats?: boolean;
}

/**
 * The names a preset's arguments may have, its `names` (checked complete against its interface),
 * with advice for each BatchNorm option it does not take (add it to the result) and `hints` for
 * other frameworks' names. A key the preset does not know is refused, since it would otherwise be
 * silently ignored: `track_running_stats: false` would keep the default.
 */
function presetKeys(preset: string, names: readonly string[], hints: Readonly<Record<string, string>>): KnownKeys {
  const layerOptions = Object.fromEntries(
    BATCHNORM_OPTIONS.filter((name) => !names.includes(name)).map((name) => [
      name,
      `an option of BatchNorm, which ${preset} does not take: add it to the result, { ...${preset}(…), ${name} }`,
    ]),
  );
  return { names, what: `an argument of ${preset}`, hints: { ...layerOptions, ...hints } };
}

/** Advice on state names, which no preset takes. */
const STATE_HINT = 'state, not an argument: load it with setState';
const TRAINING_HINT = 'the `training` flag of each call';

const PYTORCH_KEYS = presetKeys(
  'pytorchOptions',
  Object.keys({ numFeatures: 0, layout: 0, eps: 0, momentum: 0, affine: 0, trackRunningStats: 0 } satisfies Record<keyof PyTorchBatchNormArgs, 0>),
  {
    axis: "the channel axis comes from layout: 'NC' or 'NCL' (BatchNorm1d), 'NCHW' (2d), 'NCDHW' (3d)",
    epsilon: "PyTorch's eps",
    training: `${TRAINING_HINT} (PyTorch's module.train() / eval())`,
    device: "the device is the layer's first argument: new BatchNorm(device, options)",
    weight: `γ is ${STATE_HINT}; fromPyTorchState converts a state_dict`,
    bias: `β is ${STATE_HINT}; fromPyTorchState converts a state_dict`,
    running_mean: `${STATE_HINT}; fromPyTorchState converts a state_dict`,
    running_var: `${STATE_HINT}; fromPyTorchState converts a state_dict`,
  },
);

/** Options for a layer that behaves as PyTorch's BatchNorm with these arguments. */
export function pytorchOptions(args: PyTorchBatchNormArgs): BatchNormOptions {
  checkArgs(args, PYTORCH_KEYS);
  const { numFeatures, layout, eps = 1e-5, momentum = 0.1, affine = true, trackRunningStats = true } = args;
  checkCount('args.numFeatures', numFeatures);
  checkLayout(layout, 'args.layout');
  checkPositiveEps('args.eps', eps);
  if (momentum !== null && (typeof momentum !== 'number' || !(momentum >= 0 && momentum <= 1))) {
    throw new RangeError(`args.momentum must be a number in [0, 1] (PyTorch's weight of the new batch) or null (a cumulative moving average); got ${describeValue(momentum)}`);
  }
  checkBoolean('args.affine', affine);
  checkBoolean('args.trackRunningStats', trackRunningStats);
  return { numFeatures, layout, eps, momentum, affine, trackRunningStats, runningVariance: 'unbiased' };
}

/** Keras's `BatchNormalization(axis, momentum, epsilon, center, scale)` and the input it is built on. */
export interface KerasBatchNormArgs {
  /** Size of the normalized axis (the input's shape at `axis`). */
  numFeatures: number;
  /** Rank of the input, batch axis included (2 for Dense outputs, 4 for Conv2D). */
  rank: number;
  /** The normalized axis; negative counts from the end. Default -1 (channels last). */
  axis?: number;
  /** Weight of the old moving value. Default 0.99. */
  momentum?: number;
  epsilon?: number;
  center?: boolean;
  scale?: boolean;
}

const KERAS_KEYS = presetKeys(
  'kerasOptions',
  Object.keys({ numFeatures: 0, rank: 0, axis: 0, momentum: 0, epsilon: 0, center: 0, scale: 0 } satisfies Record<keyof KerasBatchNormArgs, 0>),
  {
    layout: 'the layout comes from rank and axis',
    eps: "Keras's epsilon",
    affine: "Keras's center (β) and scale (γ)",
    training: TRAINING_HINT,
    trainable: "Keras's trainable: to freeze the layer, do not apply its gradients, and call it with training: false",
    moving_mean: `${STATE_HINT}; fromKerasWeights converts get_weights()`,
    moving_variance: `${STATE_HINT}; fromKerasWeights converts get_weights()`,
  },
);

/**
 * Options for a layer that behaves as Keras's BatchNormalization with these arguments. A
 * converted momentum above 0.5 (Keras's below 0.5) is marked as deliberate, so the layer does not
 * warn about it (see BatchNorm's constructor); the mark survives spreading the result.
 */
export function kerasOptions(args: KerasBatchNormArgs): BatchNormOptions {
  checkArgs(args, KERAS_KEYS);
  const { numFeatures, rank, axis = -1, momentum = 0.99, epsilon = 1e-3, center = true, scale = true } = args;
  checkCount('args.numFeatures', numFeatures);
  if (typeof rank !== 'number' || !Number.isInteger(rank) || rank < 2 || rank > 5) {
    throw new RangeError(`args.rank must be 2, 3, 4 or 5 (the input's rank, batch axis included); got ${describeValue(rank)}`);
  }
  if (typeof axis !== 'number' || !Number.isInteger(axis)) throw new TypeError(`args.axis must be an integer (negative counts from the end); got ${describeValue(axis)}`);
  const layout = findLayout(rank, axis);
  if (!layout) {
    throw new RangeError(`axis ${axis} of a rank-${rank} input has no supported layout: use axis 1 or -1 on inputs of rank 2 to 5`);
  }
  if (typeof momentum !== 'number' || !(momentum >= 0 && momentum <= 1)) {
    throw new RangeError(`args.momentum must be a number in [0, 1] (Keras's weight of the old value); got ${describeValue(momentum)}`);
  }
  checkPositiveEps('args.epsilon', epsilon);
  checkBoolean('args.center', center);
  checkBoolean('args.scale', scale);
  // Marked where the result exceeds 0.5, so the layer does not take it for a Keras habit and warn.
  return markConvertedMomentum({ numFeatures, layout, eps: epsilon, momentum: 1 - momentum, center, scale, runningVariance: 'biased' });
}

/**
 * ONNX's `BatchNormalization` attributes (opset 15) and the input X they apply to. Its
 * `training_mode` is not an option here: it is the `training` flag of each forward call.
 */
export interface OnnxBatchNormArgs {
  /** Size of X's channel axis (axis 1), the length of `scale`, `B`, `input_mean` and `input_var`. */
  numFeatures: number;
  /** Rank of X, (N, C, D1, …, Dn): 2 to 5, channels first ('NC', 'NCL', 'NCHW', 'NCDHW'). */
  rank: number;
  /** Added to the variance before the square root. Default 1e-5. */
  epsilon?: number;
  /** Weight of the old running value, in [0, 1]. Default 0.9. */
  momentum?: number;
}

const ONNX_INPUT_HINT = 'an input of the operator, not an attribute: fromOnnxInputs converts the inputs for setState';
const ONNX_KEYS = presetKeys(
  'onnxOptions',
  Object.keys({ numFeatures: 0, rank: 0, epsilon: 0, momentum: 0 } satisfies Record<keyof OnnxBatchNormArgs, 0>),
  {
    training_mode: TRAINING_HINT,
    spatial: 'the layer normalizes per channel, as spatial=1 did before opset 9',
    layout: 'the layout comes from rank, channels first',
    eps: "ONNX's epsilon",
    scale: ONNX_INPUT_HINT,
    B: ONNX_INPUT_HINT,
    input_mean: ONNX_INPUT_HINT,
    input_var: ONNX_INPUT_HINT,
  },
);

/**
 * Options for a layer that behaves as ONNX's `BatchNormalization` with these attributes. The
 * operator's definition (onnx/onnx docs/Operators.md, BatchNormalization-15, and its reference
 * implementation, onnx/reference/ops/op_batch_normalization.py `_batchnorm_training_mode`) reads,
 * for training_mode=1:
 *
 *     running_mean = input_mean * momentum + current_mean * (1 - momentum)
 *     running_var  = input_var * momentum + current_var * (1 - momentum)
 *     Y = (X - current_mean) / sqrt(current_var + epsilon) * scale + B
 *
 * where current_var is ReduceVar over every axis but 1, "the population variance" (numpy's
 * `x.var(axis)`, ddof 0); and for training_mode=0, Y = scale * (X - input_mean) /
 * sqrt(input_var + epsilon) + B. So the layer's momentum (weight of the new batch) is
 * 1 − ONNX's, and its running variance takes the biased batch variance. Load the inputs with
 * {@link fromOnnxInputs}. As with kerasOptions, a converted momentum above 0.5 is marked as
 * deliberate, so the layer does not warn about it.
 */
export function onnxOptions(args: OnnxBatchNormArgs): BatchNormOptions {
  checkArgs(args, ONNX_KEYS);
  const { numFeatures, rank, epsilon = 1e-5, momentum = 0.9 } = args;
  checkCount('args.numFeatures', numFeatures);
  const layout = Number.isInteger(rank) ? findLayout(rank, 1) : undefined;
  if (!layout) {
    throw new RangeError(`args.rank must be 2, 3, 4 or 5 (X is (N, C, D1, …, Dn), channels first: 'NC', 'NCL', 'NCHW', 'NCDHW'); got ${describeValue(rank)}`);
  }
  if (typeof momentum !== 'number' || !(momentum >= 0 && momentum <= 1)) {
    throw new RangeError(`args.momentum must be a number in [0, 1] (ONNX's weight of the old value); got ${describeValue(momentum)}`);
  }
  checkPositiveEps('args.epsilon', epsilon);
  return markConvertedMomentum({ numFeatures, layout, eps: epsilon, momentum: 1 - momentum, affine: true, trackRunningStats: true, runningVariance: 'biased' });
}

/*
 * The rest of the normalization family in ONNX's terms. Each preset takes the operator's
 * attributes under their ONNX names and what the layer needs from the input X, and returns the
 * options of the layer that computes the same function (in float32: `stash_type` 1).
 *
 * | ONNX operator | attributes (defaults) | inputs besides X | layer |
 * | --- | --- | --- | --- |
 * | `LayerNormalization` (opset 17) | `axis=-1`, `epsilon=1e-5`, `stash_type=1` | `Scale`, `B` (optional) | `LayerNorm`, normalizedShape = X.shape[axis:] |
 * | `RMSNormalization` (opset 23) | `axis=-1`, `epsilon=1e-5`, `stash_type=1` | `scale` | `RMSNorm`, normalizedShape = X.shape[axis:] |
 * | `GroupNormalization` (opset 21; 18) | `num_groups` (required), `epsilon=1e-5`, `stash_type=1` (21) | `scale`, `bias`: per channel (21), per group (18) | `GroupNorm`, channels first |
 * | `InstanceNormalization` | `epsilon=1e-5` | `scale`, `B` | `InstanceNorm`, affine, no running statistics, channels first |
 *
 * The inputs load with `fromOnnxNormInputs`; opset 18's per-group scale and bias become
 * per-channel arrays with `groupNormScaleFromOpset18`.
 */

/** TensorProto data types a `stash_type` may name, for messages. */
const TENSOR_TYPES: Readonly<Record<number, string>> = { 1: 'FLOAT', 10: 'FLOAT16', 11: 'DOUBLE', 16: 'BFLOAT16' };

/** ONNX's `stash_type`: only 1 (float32 statistics), the precision the kernels compute in. */
function checkStashType(op: string, stashType: unknown): void {
  if (stashType === 1) return;
  const name = typeof stashType === 'number' && TENSOR_TYPES[stashType] ? ` (${TENSOR_TYPES[stashType]})` : '';
  throw new RangeError(
    `attributes.stash_type must be 1 (FLOAT): ${op}'s statistics are computed in float32 here, the only precision the kernels have; got ${describeValue(stashType)}${name}`,
  );
}

function checkEpsilon(epsilon: unknown): asserts epsilon is number {
  checkPositiveEps('attributes.epsilon', epsilon);
}

/** An eps the layer will add in float32 (see checkGpuEps: > 0, not subnormal, within float32's range). */
function checkPositiveEps(argName: string, epsilon: unknown): asserts epsilon is number {
  checkGpuEps(argName, epsilon);
}

/** A positive integer count (`numChannels`, `numFeatures`), named `argName` in the message. */
function checkCount(argName: string, value: unknown): asserts value is number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) {
    throw new RangeError(`${argName} must be a positive integer; got ${describeValue(value)}`);
  }
}

/** ONNX's channels-first layout of an X of this rank: 'NC', 'NCL', 'NCHW' or 'NCDHW'. */
function channelsFirst(rank: unknown): Layout {
  const layout = typeof rank === 'number' && Number.isInteger(rank) ? findLayout(rank, 1) : undefined;
  if (!layout) {
    throw new RangeError(`rank must be 2, 3, 4 or 5 (X is (N, C, D1, …, Dn), channels first: 'NC', 'NCL', 'NCHW', 'NCDHW'); got ${describeValue(rank)}`);
  }
  return layout;
}

/**
 * The keys an ONNX family preset's `attributes` may have, with advice for the layer's own options
 * (NORM_OPTION_KEYS: add them to the result), the operator's inputs (state, not attributes) and
 * names of other frameworks; `hints` override the default advice.
 */
function onnxAttributeKeys(preset: string, op: string, layer: keyof typeof NORM_OPTION_KEYS, names: readonly string[], hints: Readonly<Record<string, string>>): KnownKeys {
  const options = Object.fromEntries(
    NORM_OPTION_KEYS[layer].map((name) => [name, `an option of ${layer}, not an attribute of the operator: add it to the result, { ...${preset}(…), ${name} }`]),
  );
  return { names, what: `an attribute of ONNX ${op} (${preset})`, hints: { ...options, eps: "ONNX's epsilon", ...hints } };
}

const NORM_INPUT_HINT = 'an input of the operator, not an attribute: fromOnnxNormInputs converts the inputs for setState';

/** ONNX `LayerNormalization` attributes (opset 17). */
export interface OnnxLayerNormAttributes {
  /** The first normalized axis of X; negative counts from the end. Default -1 (the last axis). */
  axis?: number;
  /** Added to the variance before the square root. Default 1e-5. */
  epsilon?: number;
  /** Precision of the statistics, a TensorProto data type: only 1 (FLOAT) is supported. Default 1. */
  stash_type?: number;
}

const ONNX_LAYER_NORM_KEYS = onnxAttributeKeys(
  'onnxLayerNormOptions',
  'LayerNormalization',
  'LayerNorm',
  Object.keys({ axis: 0, epsilon: 0, stash_type: 0 } satisfies Record<keyof OnnxLayerNormAttributes, 0>),
  {
    normalizedShape: 'it comes from the input shape and axis: X.shape[axis:]',
    Scale: NORM_INPUT_HINT,
    B: NORM_INPUT_HINT,
  },
);

/** normalizedShape = inputShape[axis:] for an ONNX `axis` in [-r, r) (r the rank of X). */
function normalizedShapeFrom(inputShape: readonly number[], axis: unknown): number[] {
  if (!Array.isArray(inputShape) || inputShape.length === 0) {
    throw new TypeError(`inputShape must be the shape of X, an array of at least one dimension; got ${describeValue(inputShape)}`);
  }
  // An index loop: forEach would skip the holes of a sparse array.
  for (let i = 0; i < inputShape.length; i++) {
    const d: unknown = inputShape[i];
    if (!Number.isSafeInteger(d) || (d as number) < 1) throw new TypeError(`inputShape[${i}] must be a positive integer; got ${describeValue(d)}`);
  }
  const r = inputShape.length;
  if (typeof axis !== 'number' || !Number.isInteger(axis) || axis < -r || axis >= r) {
    throw new RangeError(`attributes.axis must be an integer in [${-r}, ${r - 1}] for X of rank ${r} (shape [${inputShape.join(', ')}]); got ${describeValue(axis)}`);
  }
  return inputShape.slice(axis);
}

/**
 * Options for a {@link LayerNorm} that computes ONNX's `LayerNormalization` (opset 17) with these
 * attributes on an X of shape `inputShape`: the statistics over X.shape[axis:] of each leading
 * index, y = (x − mean)/√(var + epsilon)·Scale + B. A node without its optional input B computes
 * the same as a zero β; `{ ...onnxLayerNormOptions(…), bias: false }` leaves β out altogether.
 * `stash_type` must be 1 (float32 statistics).
 */
export function onnxLayerNormOptions(attributes: OnnxLayerNormAttributes, inputShape: readonly number[]): LayerNormOptions {
  checkArgs(attributes, ONNX_LAYER_NORM_KEYS, 'attributes');
  const { axis = -1, epsilon = 1e-5, stash_type: stashType = 1 } = attributes;
  checkStashType('LayerNormalization', stashType);
  checkEpsilon(epsilon);
  return { normalizedShape: normalizedShapeFrom(inputShape, axis), eps: epsilon, elementwiseAffine: true, bias: true };
}

/** ONNX `RMSNormalization` attributes (opset 23). */
export interface OnnxRMSNormAttributes {
  /** The first normalized axis of X; negative counts from the end. Default -1 (the last axis). */
  axis?: number;
  /** Added to mean(x²) before the square root. Default 1e-5 (the layer's own default is 2⁻²³). */
  epsilon?: number;
  /** Precision of the statistics, a TensorProto data type: only 1 (FLOAT) is supported. Default 1. */
  stash_type?: number;
}

const ONNX_RMS_NORM_KEYS = onnxAttributeKeys(
  'onnxRMSNormOptions',
  'RMSNormalization',
  'RMSNorm',
  Object.keys({ axis: 0, epsilon: 0, stash_type: 0 } satisfies Record<keyof OnnxRMSNormAttributes, 0>),
  {
    normalizedShape: 'it comes from the input shape and axis: X.shape[axis:]',
    scale: NORM_INPUT_HINT,
  },
);

/**
 * Options for an {@link RMSNorm} that computes ONNX's `RMSNormalization` (opset 23) with these
 * attributes on an X of shape `inputShape`: y = x/√(mean(x²) + epsilon)·scale over X.shape[axis:].
 * ONNX's epsilon defaults to 1e-5, which is what the result carries (RMSNorm's own default is 2⁻²³).
 */
export function onnxRMSNormOptions(attributes: OnnxRMSNormAttributes, inputShape: readonly number[]): RMSNormOptions {
  checkArgs(attributes, ONNX_RMS_NORM_KEYS, 'attributes');
  const { axis = -1, epsilon = 1e-5, stash_type: stashType = 1 } = attributes;
  checkStashType('RMSNormalization', stashType);
  checkEpsilon(epsilon);
  return { normalizedShape: normalizedShapeFrom(inputShape, axis), eps: epsilon, elementwiseAffine: true };
}

/** ONNX `InstanceNormalization` attributes. */
export interface OnnxInstanceNormAttributes {
  /** Added to the variance before the square root. Default 1e-5. */
  epsilon?: number;
}

const ONNX_INSTANCE_NORM_KEYS = onnxAttributeKeys(
  'onnxInstanceNormOptions',
  'InstanceNormalization',
  'InstanceNorm',
  Object.keys({ epsilon: 0 } satisfies Record<keyof OnnxInstanceNormAttributes, 0>),
  {
    affine: 'ONNX InstanceNormalization always has the inputs scale and B: the preset sets affine',
    momentum: 'ONNX InstanceNormalization keeps no running statistics',
    trackRunningStats: 'ONNX InstanceNormalization keeps no running statistics',
    layout: 'the layout comes from rank, channels first',
    numFeatures: 'the second argument: onnxInstanceNormOptions(attributes, numFeatures, rank)',
    scale: NORM_INPUT_HINT,
    B: NORM_INPUT_HINT,
  },
);

/**
 * Options for an {@link InstanceNorm} that computes ONNX's `InstanceNormalization` with this
 * epsilon on an X of shape (N, C, D1, …) with C = `numFeatures` and rank `rank` (default 4):
 * each (sample, channel) normalized by its own statistics, then scaled and shifted per channel by
 * the inputs `scale` and `B` (so `affine: true`). ONNX keeps no running statistics
 * (`trackRunningStats: false`), so inference normalizes with the instance's statistics too.
 */
export function onnxInstanceNormOptions(attributes: OnnxInstanceNormAttributes, numFeatures: number, rank = 4): InstanceNormOptions {
  checkArgs(attributes, ONNX_INSTANCE_NORM_KEYS, 'attributes');
  const { epsilon = 1e-5 } = attributes;
  checkEpsilon(epsilon);
  checkCount('numFeatures', numFeatures);
  return { numFeatures, eps: epsilon, affine: true, trackRunningStats: false, layout: channelsFirst(rank) };
}

/** ONNX `GroupNormalization` attributes (opset 21; opset 18 has no stash_type). */
export interface OnnxGroupNormAttributes {
  /** The number of groups of channels; it must divide C. Required. */
  num_groups: number;
  /** Added to the variance before the square root. Default 1e-5. */
  epsilon?: number;
  /** Precision of the statistics (opset 21), a TensorProto data type: only 1 (FLOAT) is supported. Default 1. */
  stash_type?: number;
}

const ONNX_GROUP_NORM_KEYS = onnxAttributeKeys(
  'onnxGroupNormOptions',
  'GroupNormalization',
  'GroupNorm',
  Object.keys({ num_groups: 0, epsilon: 0, stash_type: 0 } satisfies Record<keyof OnnxGroupNormAttributes, 0>),
  {
    numGroups: "ONNX's num_groups",
    groups: "ONNX's num_groups",
    affine: 'ONNX GroupNormalization always has the inputs scale and bias: the preset sets affine',
    layout: 'the layout comes from rank, channels first',
    numChannels: 'the second argument: onnxGroupNormOptions(attributes, numChannels, rank)',
    scale: NORM_INPUT_HINT,
    bias: NORM_INPUT_HINT,
  },
);

/**
 * Options for a {@link GroupNorm} that computes ONNX's `GroupNormalization` with these attributes
 * on an X of shape (N, C, D1, …) with C = `numChannels` and rank `rank` (default 4): statistics
 * per (sample, group of C/num_groups consecutive channels), then scale and bias per channel, as
 * opset 21 defines them. Opset 18 gives scale and bias per group: convert them with
 * {@link groupNormScaleFromOpset18}. `stash_type` must be 1 (float32 statistics).
 */
export function onnxGroupNormOptions(attributes: OnnxGroupNormAttributes, numChannels: number, rank = 4): GroupNormOptions {
  checkArgs(attributes, ONNX_GROUP_NORM_KEYS, 'attributes');
  const { num_groups: numGroups, epsilon = 1e-5, stash_type: stashType = 1 } = attributes;
  checkStashType('GroupNormalization', stashType);
  checkEpsilon(epsilon);
  checkCount('numChannels', numChannels);
  checkNumGroups(numGroups, numChannels, 'attributes.num_groups');
  return { numGroups, numChannels, eps: epsilon, affine: true, layout: channelsFirst(rank) };
}

function checkNumGroups(numGroups: unknown, numChannels: number, argName: string): asserts numGroups is number {
  if (typeof numGroups !== 'number' || !Number.isSafeInteger(numGroups) || numGroups < 1 || numChannels % numGroups !== 0) {
    const divisors = Array.from({ length: numChannels }, (_, i) => i + 1).filter((d) => numChannels % d === 0);
    throw new RangeError(`${argName} must divide the number of channels C = ${numChannels} (one of ${divisors.join(', ')}); got ${describeValue(numGroups)}`);
  }
}

/**
 * Opset 18 `GroupNormalization`'s per-group `scale` and `bias` (num_groups entries each) as the
 * per-channel arrays of opset 21 and of {@link GroupNorm} (numChannels entries): channel c takes
 * group ⌊c / (C / num_groups)⌋'s value, which computes the same function. The result feeds
 * `fromOnnxNormInputs('GroupNormalization', …)`.
 */
export function groupNormScaleFromOpset18(
  scale: ArrayLike<number>,
  bias: ArrayLike<number>,
  numGroups: number,
  numChannels: number,
): { scale: Float32Array; bias: Float32Array } {
  checkCount('numChannels', numChannels);
  checkNumGroups(numGroups, numChannels, 'numGroups');
  const perGroup = numChannels / numGroups;
  const expand = (name: string, values: ArrayLike<number>) => {
    if (values === null || typeof values !== 'object' || typeof values.length !== 'number') {
      throw new TypeError(`${name} must be an array of ${numGroups} numbers (one per group, opset 18); got ${describeValue(values)}`);
    }
    if (values.length !== numGroups) {
      const hint = values.length === numChannels ? ': one per channel is already opset 21\'s form, use it as is' : '';
      throw new RangeError(`${name} must have ${numGroups} elements (one per group, opset 18); got ${values.length}${hint}`);
    }
    const checked = checkStateValues(name, values, { finite: true });
    return Float32Array.from({ length: numChannels }, (_, c) => checked[Math.floor(c / perGroup)]);
  };
  return { scale: expand('scale', scale), bias: expand('bias', bias) };
}
