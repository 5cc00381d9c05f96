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
import type { BatchNormOptions } from '../layers/batchnorm.js';
import { BATCHNORM_OPTIONS, markConvertedMomentum } from '../layers/batchnorm-args.js';
import { checkKnownKeys, describe, type KnownKeys } from '../runtime/validate.js';
import { layoutFor, type Layout } from '../tensor/layout.js';

/** Throws a TypeError unless `args` is an object whose every key the preset knows. */
function checkArgs(args: object, keys: KnownKeys): void {
  if (args === null || typeof args !== 'object' || Array.isArray(args)) {
    throw new TypeError(`args must be an object; got ${describe(args)}`);
  }
  checkKnownKeys('args', args, keys);
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
  const layout = layoutFor(rank, axis);
  if (!layout) {
    throw new RangeError(`axis ${axis} of a rank-${rank} input has no supported layout: use axis 1 or -1 on inputs of rank 2 to 5`);
  }
  if (typeof momentum !== 'number' || !(momentum >= 0 && momentum <= 1)) {
    throw new RangeError(`momentum must be a number in [0, 1] (Keras's weight of the old value); got ${describe(momentum)}`);
  }
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
  const layout = Number.isInteger(rank) ? layoutFor(rank, 1) : undefined;
  if (!layout) {
    throw new RangeError(`args.rank must be 2, 3, 4 or 5 (X is (N, C, D1, …, Dn), channels first: 'NC', 'NCL', 'NCHW', 'NCDHW'); got ${describe(rank)}`);
  }
  if (typeof momentum !== 'number' || !(momentum >= 0 && momentum <= 1)) {
    throw new RangeError(`args.momentum must be a number in [0, 1] (ONNX's weight of the old value); got ${describe(momentum)}`);
  }
  if (typeof epsilon !== 'number' || !(epsilon > 0) || !Number.isFinite(epsilon)) {
    throw new RangeError(`args.epsilon must be a finite number > 0; got ${describe(epsilon)}`);
  }
  return markConvertedMomentum({ numFeatures, layout, eps: epsilon, momentum: 1 - momentum, affine: true, trackRunningStats: true, runningVariance: 'biased' });
}
