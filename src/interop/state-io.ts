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
 * and a LayerNorm's, RMSNorm's, GroupNorm's or InstanceNorm's state to and from PyTorch's
 * `state_dict` (`kind` says which layer) and the ONNX operators' inputs (`fromOnnxNormInputs`).
 *
 * Values may be arrays of numbers or .npy files (as numpy.save writes them).
 */
import type { BatchNormState, BatchNormStateInput } from '../batchnorm/layer.js';
import { checkBoolean, checkKnownKeys, describeValue, type KnownKeys } from '../core/validate.js';
import { parseNpy, toNpy } from './npy.js';

/** A tensor as an array of numbers (or bigints, as PyTorch's int64), a parsed .npy, or the bytes of a .npy file. */
export type TensorInput = ArrayLike<number> | ArrayLike<bigint> | { data: ArrayLike<number> } | Uint8Array | ArrayBuffer;

const PYTORCH_KEYS = { weight: 'gamma', bias: 'beta', running_mean: 'runningMean', running_var: 'runningVar' } as const;

/** The layers whose state moves through {@link fromPyTorchState} and {@link toPyTorchState}. */
export type NormKind = 'BatchNorm' | 'LayerNorm' | 'RMSNorm' | 'GroupNorm' | 'InstanceNorm';
/** The rest of the normalization family: each keeps γ (and β) and, InstanceNorm, running statistics. */
export type NormFamilyKind = Exclude<NormKind, 'BatchNorm'>;

/** The state fields of each family layer, for {@link NormStateEntries}. */
interface NormFields {
  LayerNorm: 'gamma' | 'beta';
  RMSNorm: 'gamma';
  GroupNorm: 'gamma' | 'beta';
  InstanceNorm: 'gamma' | 'beta' | 'runningMean' | 'runningVar';
}

/**
 * Some of a family layer's state, under the layer's names, for its `setState`: LayerNorm and
 * GroupNorm `gamma`, `beta`; RMSNorm `gamma`; InstanceNorm `gamma`, `beta`, `runningMean`, `runningVar`.
 */
export type NormStateEntries<K extends NormFamilyKind> = Partial<Record<NormFields[K], number[]>>;

/** The PyTorch `state_dict` entries of each family module (besides InstanceNorm's num_batches_tracked), and the field each holds. */
const FAMILY_PYTORCH_KEYS: { readonly [K in NormFamilyKind]: Readonly<Partial<Record<keyof typeof PYTORCH_KEYS, NormFields[K]>>> } = {
  LayerNorm: { weight: 'gamma', bias: 'beta' },
  RMSNorm: { weight: 'gamma' },
  GroupNorm: { weight: 'gamma', bias: 'beta' },
  InstanceNorm: { weight: 'gamma', bias: 'beta', running_mean: 'runningMean', running_var: 'runningVar' },
};

const KINDS: readonly NormKind[] = ['BatchNorm', 'LayerNorm', 'RMSNorm', 'GroupNorm', 'InstanceNorm'];

/** Where the entries are and which layer they are for: `prefix` (such as `'encoder.norm1.'`) and `kind` (default 'BatchNorm'). */
export interface PyTorchStateOptions<K extends NormKind = NormKind> {
  prefix?: string;
  kind?: K;
}

function checkKind(kind: unknown): asserts kind is NormKind {
  if (!KINDS.includes(kind as NormKind)) {
    throw new RangeError(`options.kind must be one of ${KINDS.map((k) => `'${k}'`).join(', ')}; got ${describeValue(kind)}`);
  }
}

/** The prefix and kind from fromPyTorchState's second argument: a prefix string (a BatchNorm) or options. */
function stateOptions(arg: string | PyTorchStateOptions | undefined): { prefix: string; kind: NormKind } {
  if (arg === undefined || typeof arg === 'string') return { prefix: arg ?? '', kind: 'BatchNorm' };
  if (arg === null || typeof arg !== 'object') throw new TypeError(`the second argument must be a prefix string or options { prefix, kind }; got ${describeValue(arg)}`);
  for (const key of Object.keys(arg)) {
    if (key !== 'prefix' && key !== 'kind') throw new TypeError(`options.${key} is not an option of fromPyTorchState; expected one of prefix, kind`);
  }
  const { prefix = '', kind = 'BatchNorm' } = arg;
  if (typeof prefix !== 'string') throw new TypeError(`options.prefix must be a string; got ${describeValue(prefix)}`);
  checkKind(kind);
  return { prefix, kind };
}

/**
 * The state in a PyTorch normalization module's `state_dict` entries (under `prefix`), with
 * missing entries left out, for the layer's `setState`. Which module is given by `kind`:
 *
 * - 'BatchNorm' (the default, and what a bare prefix string means): weight, bias, running_mean,
 *   running_var, num_batches_tracked, as {@link BatchNorm.setState} takes them;
 * - 'LayerNorm' and 'GroupNorm': weight → gamma, bias → beta;
 * - 'RMSNorm': weight → gamma (PyTorch's RMSNorm has no bias);
 * - 'InstanceNorm': weight → gamma, bias → beta, running_mean → runningMean, running_var →
 *   runningVar; its num_batches_tracked (present with track_running_stats, and never incremented
 *   by PyTorch's InstanceNorm) is accepted and ignored, since the layer keeps no batch count.
 *
 * Keys outside the prefix, and keys of submodules under it (a further `.`), are ignored, so a whole
 * model's state_dict can be passed with the module's prefix. A normalization entry the kind does
 * not have (`bias` for RMSNorm, `running_mean` for LayerNorm, …) is refused, naming the key.
 */
export function fromPyTorchState(dict: Record<string, TensorInput | number | bigint>, prefix?: string): BatchNormStateInput;
export function fromPyTorchState(dict: Record<string, TensorInput | number | bigint>, options: PyTorchStateOptions<'BatchNorm'>): BatchNormStateInput;
export function fromPyTorchState<K extends NormFamilyKind>(dict: Record<string, TensorInput | number | bigint>, options: PyTorchStateOptions<K> & { kind: K }): NormStateEntries<K>;
export function fromPyTorchState(
  dict: Record<string, TensorInput | number | bigint>,
  prefixOrOptions?: string | PyTorchStateOptions,
): BatchNormStateInput | NormStateEntries<NormFamilyKind> {
  if (!dict || typeof dict !== 'object') throw new TypeError('dict must be an object of state_dict entries');
  const { prefix, kind } = stateOptions(prefixOrOptions);
  if (kind !== 'BatchNorm') return fromPyTorchFamilyState(dict, prefix, kind);
  const state: BatchNormStateInput = {};
  for (const [key, field] of Object.entries(PYTORCH_KEYS)) {
    const value = dict[prefix + key];
    if (value !== undefined) state[field] = values(value as TensorInput, `dict['${prefix + key}']`);
  }
  const batches = dict[`${prefix}num_batches_tracked`];
  if (batches !== undefined) state.numBatchesTracked = batchCount(batches, prefix);
  if (Object.keys(state).length === 0) throw new RangeError(`dict has none of ${Object.keys(PYTORCH_KEYS).map((k) => `'${prefix + k}'`).join(', ')}`);
  return state;
}

/** num_batches_tracked's one value. */
function batchCount(batches: TensorInput | number | bigint, prefix: string): number {
  const v = typeof batches === 'number' || typeof batches === 'bigint' ? [Number(batches)] : values(batches, `dict['${prefix}num_batches_tracked']`);
  if (v.length !== 1) throw new RangeError(`dict['${prefix}num_batches_tracked'] must hold one value; got ${v.length}`);
  return v[0];
}

function fromPyTorchFamilyState(dict: Record<string, TensorInput | number | bigint>, prefix: string, kind: NormFamilyKind): NormStateEntries<NormFamilyKind> {
  const keys: Readonly<Record<string, string>> = FAMILY_PYTORCH_KEYS[kind];
  const accepted = [...Object.keys(keys), ...(kind === 'InstanceNorm' ? ['num_batches_tracked'] : [])];
  for (const name of [...Object.keys(PYTORCH_KEYS), 'num_batches_tracked']) {
    if (dict[prefix + name] === undefined || accepted.includes(name)) continue;
    const owners = KINDS.filter((k) => k === 'BatchNorm' || k === 'InstanceNorm' || Object.hasOwn(FAMILY_PYTORCH_KEYS[k as NormFamilyKind], name));
    throw new RangeError(
      `dict['${prefix + name}'] is not an entry of a PyTorch ${kind}'s state_dict, which has ${accepted.map((k) => `'${prefix + k}'`).join(', ')}; ` +
        `${name} belongs to ${owners.join(' or ')}: pass that kind (options.kind), or the right prefix`,
    );
  }
  const state: Record<string, number[]> = {};
  for (const [key, field] of Object.entries(keys)) {
    const value = dict[prefix + key];
    if (value !== undefined) state[field] = values(value as TensorInput, `dict['${prefix + key}']`);
  }
  // InstanceNorm's num_batches_tracked: checked to be a count, then dropped (the layer keeps none).
  const batches = dict[`${prefix}num_batches_tracked`];
  if (batches !== undefined) batchCount(batches, prefix);
  if (Object.keys(state).length === 0) {
    throw new RangeError(`dict has none of ${Object.keys(keys).map((k) => `'${prefix + k}'`).join(', ')} (a PyTorch ${kind}'s state_dict entries)`);
  }
  return state;
}

/**
 * What PyTorch's module has in its state_dict, for {@link toPyTorchState}: the family layer's own
 * flags (pass the layer itself) or the module's arguments under the layer's names.
 */
export interface PyTorchModuleFlags {
  /** LayerNorm, RMSNorm: weight (and LayerNorm's bias) exist. */
  elementwiseAffine?: boolean;
  /** LayerNorm: bias exists (with elementwiseAffine). */
  bias?: boolean;
  /** GroupNorm, InstanceNorm: weight and bias exist. */
  affine?: boolean;
  /** InstanceNorm: running_mean, running_var and num_batches_tracked exist. */
  trackRunningStats?: boolean;
}

/** Options of {@link toPyTorchState}. */
export interface ToPyTorchStateOptions {
  prefix?: string;
  /** Write .npy file bytes instead of typed arrays. */
  npy?: boolean;
  /** The layer the state is of; default 'BatchNorm'. */
  kind?: NormKind;
  /**
   * The family layer itself (or its flags), so that the entries are exactly those of PyTorch's
   * module, for `load_state_dict(strict=True)`: no weight/bias without affine (elementwiseAffine,
   * bias), no running statistics without trackRunningStats. Without it every field the state has is written.
   */
  layer?: PyTorchModuleFlags;
}

/** A layer's state as {@link toPyTorchState} reads it: BatchNorm's, or any family layer's getState(). */
export type PyTorchStateSource = BatchNormState | Partial<Record<'gamma' | 'beta' | 'runningMean' | 'runningVar', Float32Array>>;

/**
 * The options object of an export or import function `fn` (undefined: `{}`): an object whose
 * every key is one of `names`, since an unknown key (a misspelling such as `prefx`, another
 * framework's name such as `centre`) would otherwise be ignored.
 */
function checkOptions(fn: string, options: unknown, names: readonly string[], hints?: Readonly<Record<string, string>>): Record<string, unknown> {
  if (options === undefined) return {};
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw new TypeError(`options must be an object { ${names.join(', ')} }; got ${describeValue(options)}`);
  }
  const keys: KnownKeys = { names, what: `an option of ${fn}`, hints };
  checkKnownKeys('options', options, keys);
  return options as Record<string, unknown>;
}

/** A boolean option (`options.name`), `fallback` where left out. */
function flag(options: Record<string, unknown>, name: string, fallback: boolean): boolean {
  return checkBoolean(`options.${name}`, options[name], fallback);
}

const KERAS_HINTS = { centre: 'did you mean center?', epsilon: 'the weights carry no epsilon: it is a layer option (kerasOptions)', axis: 'the weights carry no axis: it is a layer option (kerasOptions)' };

/**
 * `state_dict` entries of the state, as typed arrays or (`npy: true`) as .npy file bytes, under
 * `prefix` (a string alone is the prefix, as for fromPyTorchState). `kind` says which layer's state it is (see {@link fromPyTorchState}); BatchNorm's
 * entries are weight, bias, running_mean, running_var and num_batches_tracked. A family layer's
 * are weight (γ) and bias (β; not for RMSNorm) and, for InstanceNorm, running_mean, running_var
 * and num_batches_tracked, written as 0 as PyTorch's InstanceNorm leaves it; `layer` drops those
 * its PyTorch module would not have.
 */
export function toPyTorchState(state: PyTorchStateSource, options: string | ToPyTorchStateOptions = {}): Record<string, Float32Array | BigInt64Array | Uint8Array> {
  const o = typeof options === 'string' ? { prefix: options } : checkOptions('toPyTorchState', options, ['prefix', 'npy', 'kind', 'layer']);
  const { prefix = '', kind = 'BatchNorm', layer } = o as ToPyTorchStateOptions;
  if (typeof prefix !== 'string') throw new TypeError(`options.prefix must be a string; got ${describeValue(prefix)}`);
  const npy = flag(o, 'npy', false);
  checkKind(kind);
  if (layer !== undefined && (layer === null || typeof layer !== 'object')) {
    throw new TypeError(`options.layer must be the family layer or its flags { elementwiseAffine, bias, affine, trackRunningStats }; got ${describeValue(layer)}`);
  }
  if (!state || typeof state !== 'object') throw new TypeError(`state must be a layer's getState() result; got ${describeValue(state)}`);
  let entries: [string, Float32Array | BigInt64Array][];
  if (kind === 'BatchNorm') {
    const bn = state as BatchNormState;
    if (bn.numBatchesTracked === undefined) {
      throw new TypeError("state.numBatchesTracked is missing: a BatchNorm's getState() has it; for a LayerNorm, RMSNorm, GroupNorm or InstanceNorm state pass options.kind");
    }
    entries = [
      ['weight', bn.gamma],
      ['bias', bn.beta],
      ['running_mean', bn.runningMean],
      ['running_var', bn.runningVar],
      ['num_batches_tracked', BigInt64Array.of(BigInt(bn.numBatchesTracked))],
    ];
  } else {
    const fields = state as Partial<Record<string, Float32Array>>;
    const has = (flag: keyof PyTorchModuleFlags) => layer?.[flag] !== false;
    const learnable = kind === 'LayerNorm' || kind === 'RMSNorm' ? has('elementwiseAffine') : has('affine');
    const wanted: Record<string, boolean> = {
      weight: learnable,
      bias: learnable && (kind !== 'LayerNorm' || has('bias')),
      running_mean: has('trackRunningStats'),
      running_var: has('trackRunningStats'),
    };
    entries = [];
    for (const [key, field] of Object.entries(FAMILY_PYTORCH_KEYS[kind] as Record<string, string>)) {
      const value = fields[field];
      if (value !== undefined && wanted[key]) entries.push([key, value]);
    }
    if (kind === 'InstanceNorm' && entries.some(([key]) => key === 'running_mean')) entries.push(['num_batches_tracked', BigInt64Array.of(0n)]);
  }
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
  const o = checkOptions('fromKerasWeights', options, ['center', 'scale'], KERAS_HINTS);
  const center = flag(o, 'center', true);
  const scale = flag(o, 'scale', true);
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
  const o = checkOptions('toKerasWeights', options, ['center', 'scale', 'npy'], KERAS_HINTS);
  const center = flag(o, 'center', true);
  const scale = flag(o, 'scale', true);
  const npy = flag(o, 'npy', false);
  if (!state || typeof state !== 'object') throw new TypeError(`state must be a BatchNorm's getState() result; got ${describeValue(state)}`);
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
  const npy = flag(checkOptions('toOnnxInputs', options, ['npy']), 'npy', false);
  if (!state || typeof state !== 'object') throw new TypeError(`state must be a BatchNorm's getState() result; got ${describeValue(state)}`);
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
  // An index loop: a hole ([1, , 3]) or a string would otherwise become NaN.
  const list = array as ArrayLike<unknown>;
  // 'weights[0] (gamma)' names its entries 'weights[0][1] (gamma)'.
  const [, base, note = ''] = /^(.*?)( \(.*\))?$/.exec(argName)!;
  const out: number[] = [];
  for (let i = 0; i < list.length; i++) {
    const v = list[i];
    if (typeof v !== 'number' && typeof v !== 'bigint') throw new TypeError(`${base}[${i}]${note} must be a number; got ${describeValue(v)}`);
    out.push(Number(v));
  }
  return out;
}

/** The ONNX operators of the normalization family, and the layer each maps to. */
export type OnnxNormOp = 'LayerNormalization' | 'RMSNormalization' | 'GroupNormalization' | 'InstanceNormalization';
const ONNX_NORM_KINDS = {
  LayerNormalization: 'LayerNorm',
  RMSNormalization: 'RMSNorm',
  GroupNormalization: 'GroupNorm',
  InstanceNormalization: 'InstanceNorm',
} as const satisfies Record<OnnxNormOp, NormFamilyKind>;
type KindOfOp<Op extends OnnxNormOp> = (typeof ONNX_NORM_KINDS)[Op];

/**
 * Each operator's inputs besides X, by their names in its definition, and the field each loads:
 * LayerNormalization-17 `Scale`, `B`; RMSNormalization-23 `scale`; GroupNormalization-21
 * `scale`, `bias` (per channel); InstanceNormalization `scale`, `B`.
 */
const ONNX_NORM_INPUTS = {
  LayerNormalization: { Scale: 'gamma', B: 'beta' },
  RMSNormalization: { scale: 'gamma' },
  GroupNormalization: { scale: 'gamma', bias: 'beta' },
  InstanceNormalization: { scale: 'gamma', B: 'beta' },
} as const satisfies Record<OnnxNormOp, Record<string, 'gamma' | 'beta'>>;

/** The inputs of an ONNX normalization operator, by their names in its definition. */
export type OnnxNormInputs<Op extends OnnxNormOp, T = TensorInput> = Partial<Record<keyof (typeof ONNX_NORM_INPUTS)[Op], T>>;

const ONNX_OPS = Object.keys(ONNX_NORM_INPUTS) as OnnxNormOp[];

function checkOnnxOp(op: unknown): asserts op is OnnxNormOp {
  if (!ONNX_OPS.includes(op as OnnxNormOp)) {
    const hint = op === 'BatchNormalization' ? ' (BatchNormalization: fromOnnxInputs)' : '';
    throw new RangeError(`op must be one of ${ONNX_OPS.map((o) => `'${o}'`).join(', ')}${hint}; got ${describeValue(op)}`);
  }
}

/**
 * The state in an ONNX normalization operator's inputs other than X (for example its
 * initializers, as `onnx.numpy_helper.to_array` gives them), for the `setState` of the layer its
 * preset builds (`onnxLayerNormOptions`, …): `Scale`/`scale` → gamma and `B`/`bias` → beta.
 * Missing inputs are left out. A key the operator does not have is refused, naming it (ONNX's
 * names differ in case between operators: LayerNormalization's `Scale`, the others' `scale`).
 * Opset 18's per-group GroupNormalization scale and bias convert first with `groupNormScaleFromOpset18`.
 */
export function fromOnnxNormInputs<Op extends OnnxNormOp>(op: Op, inputs: OnnxNormInputs<Op>): NormStateEntries<KindOfOp<Op>> {
  checkOnnxOp(op);
  const names: Readonly<Record<string, string>> = ONNX_NORM_INPUTS[op];
  if (!inputs || typeof inputs !== 'object') throw new TypeError(`inputs must be an object of ONNX ${op} inputs (${Object.keys(names).join(', ')}); got ${describeValue(inputs)}`);
  checkKnownKeys('inputs', inputs, {
    names: Object.keys(names),
    what: `an input of ONNX ${op}`,
    hints: {
      X: 'X is the tensor the layer normalizes, not state',
      input_mean: `ONNX ${op} keeps no running statistics`,
      input_var: `ONNX ${op} keeps no running statistics`,
      ...(op === 'LayerNormalization' ? { scale: 'LayerNormalization spells it Scale' } : op === 'RMSNormalization' ? { B: 'RMSNormalization has no bias', bias: 'RMSNormalization has no bias' } : {}),
      ...(op === 'GroupNormalization' ? { B: 'GroupNormalization calls it bias' } : op === 'InstanceNormalization' ? { bias: 'InstanceNormalization calls it B' } : {}),
    },
  });
  const state: Record<string, number[]> = {};
  for (const [key, field] of Object.entries(names)) {
    const value = (inputs as Record<string, TensorInput | undefined>)[key];
    if (value !== undefined) state[field] = values(value, `inputs['${key}']`);
  }
  if (Object.keys(state).length === 0) throw new RangeError(`inputs has none of ${Object.keys(names).map((k) => `'${k}'`).join(', ')} (ONNX ${op}'s inputs)`);
  return state as NormStateEntries<KindOfOp<Op>>;
}

/** A family layer's state as the ONNX operator's inputs (see {@link fromOnnxNormInputs}), as typed arrays or (`npy: true`) as .npy file bytes. */
export function toOnnxNormInputs<Op extends OnnxNormOp>(
  op: Op,
  state: Partial<Record<'gamma' | 'beta', Float32Array>>,
  options: { npy?: boolean } = {},
): OnnxNormInputs<Op, Float32Array | Uint8Array> {
  checkOnnxOp(op);
  const npy = flag(checkOptions('toOnnxNormInputs', options, ['npy']), 'npy', false);
  if (!state || typeof state !== 'object') throw new TypeError(`state must be a family layer's getState() result; got ${describeValue(state)}`);
  const out: Record<string, Float32Array | Uint8Array> = {};
  for (const [key, field] of Object.entries(ONNX_NORM_INPUTS[op] as Record<string, 'gamma' | 'beta'>)) {
    const value = state[field];
    if (value !== undefined) out[key] = npy ? toNpy(value) : value;
  }
  return out as OnnxNormInputs<Op, Float32Array | Uint8Array>;
}
