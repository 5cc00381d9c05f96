/**
 * A BatchNorm layer's state to and from the forms PyTorch, Keras and ONNX keep it in:
 *
 * - PyTorch `state_dict`: `weight` (γ), `bias` (β), `running_mean`, `running_var` (unbiased) and
 *   `num_batches_tracked` (int64), each optionally under a prefix such as `bn1.`;
 * - Keras `layer.get_weights()`: [gamma, beta, moving_mean, moving_variance], without gamma when
 *   `scale=False` and without beta when `center=False`;
 * - ONNX `BatchNormalization`'s inputs other than X: `scale` (γ), `B` (β), `input_mean` and
 *   `input_var` (biased), typically the graph's initializers.
 *
 * Values may be arrays of numbers or .npy files (as numpy.save writes them).
 */
import type { BatchNormState, BatchNormStateInput } from '../layers/batchnorm.js';
import { parseNpy, toNpy } from './npy.js';

/** A tensor as an array of numbers (or bigints, as PyTorch's int64), a parsed .npy, or the bytes of a .npy file. */
export type TensorInput = ArrayLike<number> | ArrayLike<bigint> | { data: ArrayLike<number> } | Uint8Array | ArrayBuffer;

const PYTORCH_KEYS = { weight: 'gamma', bias: 'beta', running_mean: 'runningMean', running_var: 'runningVar' } as const;

/**
 * The state in a PyTorch BatchNorm's `state_dict` entries (`prefix` + weight, bias,
 * running_mean, running_var, num_batches_tracked); missing entries are left out, for
 * {@link BatchNorm.setState}.
 */
export function fromPyTorchState(dict: Record<string, TensorInput | number | bigint>, prefix = ''): BatchNormStateInput {
  if (!dict || typeof dict !== 'object') throw new TypeError('dict must be an object of state_dict entries');
  const state: BatchNormStateInput = {};
  for (const [key, field] of Object.entries(PYTORCH_KEYS)) {
    const value = dict[prefix + key];
    if (value !== undefined) state[field] = values(value as TensorInput, `dict['${prefix + key}']`);
  }
  const batches = dict[`${prefix}num_batches_tracked`];
  if (batches !== undefined) {
    const v = typeof batches === 'number' || typeof batches === 'bigint' ? [Number(batches)] : values(batches, `dict['${prefix}num_batches_tracked']`);
    if (v.length !== 1) throw new RangeError(`dict['${prefix}num_batches_tracked'] must hold one value; got ${v.length}`);
    state.numBatchesTracked = v[0];
  }
  if (Object.keys(state).length === 0) throw new RangeError(`dict has none of ${Object.keys(PYTORCH_KEYS).map((k) => `'${prefix + k}'`).join(', ')}`);
  return state;
}

/** `state_dict` entries of the state, as typed arrays or (`npy: true`) as .npy file bytes. */
export function toPyTorchState(state: BatchNormState, options: { prefix?: string; npy?: boolean } = {}): Record<string, Float32Array | BigInt64Array | Uint8Array> {
  const { prefix = '', npy = false } = options;
  const entries: [string, Float32Array | BigInt64Array][] = [
    ['weight', state.gamma],
    ['bias', state.beta],
    ['running_mean', state.runningMean],
    ['running_var', state.runningVar],
    ['num_batches_tracked', BigInt64Array.of(BigInt(state.numBatchesTracked))],
  ];
  // PyTorch stores num_batches_tracked as a 0-d int64 tensor.
  return Object.fromEntries(entries.map(([k, v]) => [prefix + k, npy ? toNpy(v, k === 'num_batches_tracked' ? [] : [v.length]) : v]));
}

/**
 * The state in a Keras BatchNormalization's weights, in its order: [gamma, beta, moving_mean,
 * moving_variance], leaving out gamma when `scale` is false and beta when `center` is false.
 * Keras keeps no batch count. Its moving_variance is, like PyTorch's running_var, an estimate
 * of the population variance, and is taken as is.
 */
export function fromKerasWeights(weights: readonly TensorInput[], options: { center?: boolean; scale?: boolean } = {}): BatchNormStateInput {
  const { center = true, scale = true } = options;
  const names = [...(scale ? ['gamma'] : []), ...(center ? ['beta'] : []), 'moving_mean', 'moving_variance'];
  if (!Array.isArray(weights) || weights.length !== names.length) {
    throw new RangeError(`weights must be the ${names.length} arrays [${names.join(', ')}]; got ${Array.isArray(weights) ? weights.length : typeof weights}`);
  }
  const byName = Object.fromEntries(names.map((n, i) => [n, values(weights[i], `weights[${i}] (${n})`)]));
  return {
    ...(scale ? { gamma: byName.gamma } : {}),
    ...(center ? { beta: byName.beta } : {}),
    runningMean: byName.moving_mean,
    runningVar: byName.moving_variance,
  };
}

/** The state as Keras's weight list [gamma, beta, moving_mean, moving_variance] (see {@link fromKerasWeights}). */
export function toKerasWeights(state: BatchNormState, options: { center?: boolean; scale?: boolean; npy?: boolean } = {}): (Float32Array | Uint8Array)[] {
  const { center = true, scale = true, npy = false } = options;
  const list = [...(scale ? [state.gamma] : []), ...(center ? [state.beta] : []), state.runningMean, state.runningVar];
  return npy ? list.map((a) => toNpy(a)) : list;
}

/** ONNX `BatchNormalization`'s inputs other than X, by their names in the operator's definition. */
export interface OnnxBatchNormInputs<T = TensorInput> {
  /** γ, shape (C). */
  scale: T;
  /** β, shape (C). */
  B: T;
  /** The running (in inference, the estimated) mean, shape (C). */
  input_mean: T;
  /** The running (in inference, the estimated) variance, shape (C); ONNX updates it with the biased batch variance. */
  input_var: T;
}

const ONNX_KEYS = { scale: 'gamma', B: 'beta', input_mean: 'runningMean', input_var: 'runningVar' } as const;

/**
 * The state in ONNX `BatchNormalization`'s inputs `scale`, `B`, `input_mean` and `input_var`
 * (for example its initializers, as `onnx.numpy_helper.to_array` gives them); missing inputs are
 * left out, for {@link BatchNorm.setState}. ONNX keeps no batch count. Any other key, such as
 * a framework's name for an input, is refused. Use it with a layer built from `onnxOptions`.
 */
export function fromOnnxInputs(inputs: Partial<OnnxBatchNormInputs>): BatchNormStateInput {
  if (!inputs || typeof inputs !== 'object') throw new TypeError('inputs must be an object of ONNX BatchNormalization inputs (scale, B, input_mean, input_var)');
  const names = Object.keys(ONNX_KEYS).map((k) => `'${k}'`).join(', ');
  for (const key of Object.keys(inputs)) {
    if (!(key in ONNX_KEYS)) throw new RangeError(`inputs['${key}'] is not an input of ONNX BatchNormalization: use ${names}`);
  }
  const state: BatchNormStateInput = {};
  for (const [key, field] of Object.entries(ONNX_KEYS)) {
    const value = inputs[key as keyof OnnxBatchNormInputs];
    if (value !== undefined) state[field] = values(value, `inputs['${key}']`);
  }
  if (Object.keys(state).length === 0) throw new RangeError(`inputs has none of ${names}`);
  return state;
}

/** The state as ONNX `BatchNormalization`'s inputs (see {@link fromOnnxInputs}), as typed arrays or (`npy: true`) as .npy file bytes. */
export function toOnnxInputs(state: BatchNormState, options: { npy?: boolean } = {}): OnnxBatchNormInputs<Float32Array | Uint8Array> {
  const { npy = false } = options;
  const out = (a: Float32Array) => (npy ? toNpy(a) : a);
  return { scale: out(state.gamma), B: out(state.beta), input_mean: out(state.runningMean), input_var: out(state.runningVar) };
}

function values(input: TensorInput, argName: string): number[] {
  if (input instanceof Uint8Array || input instanceof ArrayBuffer) {
    try {
      return Array.from(parseNpy(input).data);
    } catch (e) {
      throw new TypeError(`${argName}: ${(e as Error).message}`);
    }
  }
  const array = input && typeof input === 'object' && 'data' in input ? input.data : input;
  if (!array || typeof (array as ArrayLike<number>).length !== 'number') throw new TypeError(`${argName} must be an array of numbers or a .npy file`);
  return Array.from(array as ArrayLike<number | bigint>, Number);
}
