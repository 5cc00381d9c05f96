/**
 * CPU reference for the rest of the normalization family, with PyTorch's semantics: layer norm,
 * RMS norm, group norm and instance norm, forward and backward, accumulating in float64. Like
 * the batch-norm reference it favours clarity over speed: two-pass mean and variance, the
 * formulas written out.
 *
 * Each of the four maps its semantics onto one partition of the tensor's elements into groups
 * (which elements share a mean and a variance) and an index into γ and β per element; the
 * statistics, the normalization and the backward pass are then written once, per group:
 *
 * - forward: x̂ = (x − μ) / sqrt(σ² + eps), y = γ·x̂ + β, with μ and σ² the group's mean and
 *   biased variance; RMS norm is the same with μ fixed at 0 (σ² is then mean(x²)) and no β;
 * - backward, with g = γ·dy elementwise and s = sqrt(σ² + eps):
 *   dx = (g − mean(g) − x̂·mean(g·x̂)) / s, the mean(g) term only where μ was subtracted;
 *   dγ = Σ dy·x̂ and dβ = Σ dy over the elements sharing that γ and β entry.
 *
 * Layer and RMS norm take the tensor's shape and the trailing `normalizedShape`; group and
 * instance norm take the shape and a {@link Layout}, seen as [N, C, spatial] (channels first)
 * or [N, spatial, C] (channels last), N being the first axis.
 */
import type { Layout } from '../core/layout.js';
import { channelAxis, channelView, checkLayout } from '../core/layout.js';
import { checkInteger, checkMomentum, checkNonNegativeEps, checkNumbers, checkObject, checkParamKeys, describeValue } from '../core/validate.js';
import type { Gradients } from '../core/reference.js';

/** @inline */
type Numbers = ArrayLike<number>;

/** Forward result of layer, group or instance norm: y and the statistics of every group. */
export interface NormalizationForward {
  y: Float64Array;
  /** Mean per group: per row (layer norm), per (sample, group) at n·G + g, or per (sample, channel) at n·C + c. */
  mean: Float64Array;
  /** Biased variance per group (divides by the count), as used to normalize. */
  variance: Float64Array;
  /** Elements per group. */
  count: number;
}

/** Forward result of RMS norm: y and mean(x²) per row. */
export interface RMSNormForward {
  y: Float64Array;
  /** mean(x²) per row; y = x / sqrt(meanSquare + eps) · γ. */
  meanSquare: Float64Array;
  /** Elements per row (the product of normalizedShape). */
  count: number;
}

/** Gradients of RMS norm, which has no β. */
export interface RMSNormGradients {
  dx: Float64Array;
  dgamma: Float64Array;
}

/** Running statistics of instance norm with `track_running_stats`: one entry per channel. */
export interface InstanceNormRunningStats {
  runningMean: Float64Array;
  runningVar: Float64Array;
}

/**
 * Which elements are normalized together, and which γ/β entry each element takes.
 * `groups[k]` lists group k's element indices in buffer order.
 */
interface Partition {
  groups: number[][];
  param: Int32Array;
  numParams: number;
}

/**
 * The partition of `size` elements by `groupOf(e)` (in [0, numGroups)), each element taking the
 * γ/β entry `paramOf(e)` (in [0, numParams)).
 */
function partitionBy(size: number, numGroups: number, groupOf: (e: number) => number, paramOf: (e: number) => number, numParams: number): Partition {
  const groups: number[][] = Array.from({ length: numGroups }, () => []);
  const param = new Int32Array(size);
  for (let e = 0; e < size; e++) {
    groups[groupOf(e)].push(e);
    param[e] = paramOf(e);
  }
  return { groups, param, numParams };
}

/** Per-group statistics: two-pass mean and biased variance, or with `center` false mean 0 and mean(x²). */
function groupStats(x: Numbers, part: Partition, center: boolean): { mean: Float64Array; variance: Float64Array } {
  const mean = new Float64Array(part.groups.length);
  const variance = new Float64Array(part.groups.length);
  part.groups.forEach((group, k) => {
    let sum = 0;
    if (center) for (const e of group) sum += x[e];
    const m = sum / group.length;
    let m2 = 0;
    for (const e of group) m2 += (x[e] - m) ** 2;
    mean[k] = m;
    variance[k] = m2 / group.length;
  });
  return { mean, variance };
}

/** y = γ·(x − mean)/sqrt(variance + eps) + β per group, with the statistics it used. */
function groupForward(x: Numbers, part: Partition, p: { gamma: Numbers; beta: Numbers; eps: number; center: boolean }) {
  const { mean, variance } = groupStats(x, part, p.center);
  const y = new Float64Array(x.length);
  part.groups.forEach((group, k) => {
    const invstd = 1 / Math.sqrt(variance[k] + p.eps);
    for (const e of group) y[e] = p.gamma[part.param[e]] * (x[e] - mean[k]) * invstd + p.beta[part.param[e]];
  });
  return { y, mean, variance };
}

/**
 * Backward per group, through the group's statistics: with g = γ·dy and x̂ the normalized x,
 * dx = invstd · (g − mean(g) − x̂ · mean(g·x̂)) (no mean(g) term without centering);
 * dγ = Σ dy·x̂ and dβ = Σ dy per γ/β entry.
 */
function groupBackward(x: Numbers, dy: Numbers, part: Partition, p: { gamma: Numbers; eps: number; center: boolean }): Gradients {
  const { mean, variance } = groupStats(x, part, p.center);
  const dx = new Float64Array(x.length);
  const dgamma = new Float64Array(part.numParams);
  const dbeta = new Float64Array(part.numParams);
  part.groups.forEach((group, k) => {
    const invstd = 1 / Math.sqrt(variance[k] + p.eps);
    const xhat = (e: number) => (x[e] - mean[k]) * invstd;
    const g = (e: number) => p.gamma[part.param[e]] * dy[e];
    let sumG = 0;
    let sumGXhat = 0;
    for (const e of group) {
      sumG += g(e);
      sumGXhat += g(e) * xhat(e);
      dgamma[part.param[e]] += dy[e] * xhat(e);
      dbeta[part.param[e]] += dy[e];
    }
    const n = group.length;
    const meanG = p.center ? sumG / n : 0;
    for (const e of group) dx[e] = invstd * (g(e) - meanG - (xhat(e) * sumGXhat) / n);
  });
  return { dx, dgamma, dbeta };
}

/** γ or β (`p.name`) as given (checked: numbers, `length` of them), or filled with `fill` when omitted. */
function param(name: string, data: Numbers | undefined, length: number, fill: number): Numbers {
  if (data === undefined) return new Float64Array(length).fill(fill);
  checkNumbers(`p.${name}`, data, length);
  return data;
}

/** Advice on names the family's parameters objects do not take. */
const PARAM_HINTS: Readonly<Record<string, string>> = {
  epsilon: 'eps here',
  weight: "PyTorch's weight is gamma here",
  bias: "PyTorch's bias is beta here",
  num_groups: "PyTorch's num_groups is numGroups here",
  runningMean: 'with running statistics at inference, instance norm is referenceInference on the same layout',
  runningVar: 'with running statistics at inference, instance norm is referenceInference on the same layout',
  momentum: 'referenceInstanceNormRunningStats takes the momentum',
};

/**
 * The parameters object `p` of the family reference function `fn` and its eps: an object
 * { `expected` } whose every key `fn` reads (a backward pass also lets β come along, as in the
 * forward pass's parameters, though it does not depend on it).
 */
function checkParams(p: unknown, expected: string, fn: string): asserts p is Record<string, unknown> {
  checkObject('p', p, `an object { ${expected} }`);
  const own = expected.split(', ').map((name) => name.replace(/\?$/, ''));
  const backward = fn.endsWith('Backward') && fn !== 'referenceRMSNormBackward';
  const hints = fn.startsWith('referenceRMSNorm') ? { ...PARAM_HINTS, beta: 'RMSNorm has no β', bias: 'RMSNorm has no β' } : PARAM_HINTS;
  checkParamKeys('p', p, fn, own, backward ? ['beta'] : [], hints);
  checkNonNegativeEps('p.eps', p.eps);
}

const showShape = (shape: readonly number[]) => `[${shape.join(', ')}]`;

/**
 * Rows of layer and RMS norm: checks `shape` (positive integers, x.length elements) and that
 * `normalizedShape` is its trailing dimensions; returns the row count N and the row length K.
 */
function rows(x: Numbers, shape: readonly number[], normalizedShape: number | readonly number[]): { rows: number; rowLength: number } {
  if (!Array.isArray(shape) || shape.length === 0) throw new TypeError(`shape must be an array of at least one dimension; got ${describeValue(shape)}`);
  // Index loops: forEach and some would skip the holes of a sparse array ([2, , 3]).
  for (let i = 0; i < shape.length; i++) {
    const d = shape[i];
    if (!Number.isSafeInteger(d) || d < 1) throw new TypeError(`shape[${i}] must be a positive integer; got ${describeValue(d)} in ${showShape(shape)}`);
  }
  const size = shape.reduce((a, b) => a * b, 1);
  checkNumbers('x', x, size);
  const norm: readonly number[] = typeof normalizedShape === 'number' ? [normalizedShape] : normalizedShape;
  if (!Array.isArray(norm) || norm.length < 1 || norm.length > shape.length) {
    throw new TypeError(
      `normalizedShape must have 1 to ${shape.length} dimensions, the trailing dimensions of shape ${showShape(shape)}; got ${Array.isArray(norm) ? showShape(norm) : describeValue(normalizedShape)}`,
    );
  }
  const trailing = shape.slice(shape.length - norm.length);
  let matches = true;
  for (let i = 0; i < norm.length; i++) matches &&= norm[i] === trailing[i];
  if (!matches) {
    throw new RangeError(`normalizedShape must be the last ${norm.length} dimension${norm.length > 1 ? 's' : ''} of shape ${showShape(shape)}, ${showShape(trailing)}; got ${showShape(norm)}`);
  }
  const rowLength = trailing.reduce((a, b) => a * b, 1);
  return { rows: size / rowLength, rowLength };
}

/** The partition of layer and RMS norm: one group per row, γ and β indexed by the position in the row. */
function rowPartition(r: { rows: number; rowLength: number }): Partition {
  const K = r.rowLength;
  return partitionBy(r.rows * K, r.rows, (e) => Math.floor(e / K), (e) => e % K, K);
}

/**
 * The [N, C, spatial] or [N, spatial, C] view of `shape` in `layout` (N the first axis), and the
 * sample and channel of element e.
 */
function sampleChannels(x: Numbers, layout: Layout, shape: readonly number[]) {
  checkLayout(layout, 'p.layout');
  const view = channelView(layout, shape);
  const N = shape[0];
  const C = view.channels;
  const size = view.outer * view.channels * view.inner;
  const spatial = size / (N * C);
  checkNumbers('x', x, size);
  const channelsLast = channelAxis(layout) === shape.length - 1;
  const sample = (e: number) => Math.floor(e / (C * spatial));
  const channel = (e: number) => (channelsLast ? e % C : Math.floor(e / spatial) % C);
  return { N, C, spatial, size, sample, channel };
}

/** The partition of group norm: group n·G + g holds sample n's channels g·C/G to (g+1)·C/G − 1; γ and β per channel. */
function groupNormPartition(x: Numbers, shape: readonly number[], p: { layout: Layout; numGroups: number }): Partition {
  const t = sampleChannels(x, p.layout, shape);
  const G = p.numGroups;
  if (!Number.isSafeInteger(G) || G < 1 || t.C % G !== 0) {
    const divisors = Array.from({ length: t.C }, (_, i) => i + 1).filter((d) => t.C % d === 0);
    throw new RangeError(`numGroups must divide the number of channels C = ${t.C} (one of ${divisors.join(', ')}); got ${describeValue(G)}`);
  }
  const perGroup = t.C / G;
  return partitionBy(t.size, t.N * G, (e) => t.sample(e) * G + Math.floor(t.channel(e) / perGroup), t.channel, t.C);
}

/** The partition of instance norm: group n·C + c holds sample n's channel c; γ and β per channel. */
function instancePartition(x: Numbers, shape: readonly number[], layout: Layout): Partition {
  const t = sampleChannels(x, layout, shape);
  return partitionBy(t.size, t.N * t.C, (e) => t.sample(e) * t.C + t.channel(e), t.channel, t.C);
}

/**
 * Layer norm (PyTorch's `layer_norm`): each of the N = size / K rows of the trailing
 * `normalizedShape` (K elements) is normalized by its own mean and biased variance;
 * y = (x − mean) / sqrt(variance + eps) · γ + β with γ and β of K elements, elementwise
 * (omitted: 1 and 0). Throws, naming the argument, when `normalizedShape` is not the trailing
 * dimensions of `shape` or an array has the wrong length.
 */
export function referenceLayerNorm(
  x: Numbers,
  shape: readonly number[],
  normalizedShape: number | readonly number[],
  p: { gamma?: Numbers; beta?: Numbers; eps: number },
): NormalizationForward {
  checkParams(p, 'gamma?, beta?, eps', 'referenceLayerNorm');
  const r = rows(x, shape, normalizedShape);
  const gamma = param('gamma', p.gamma, r.rowLength, 1);
  const beta = param('beta', p.beta, r.rowLength, 0);
  return { ...groupForward(x, rowPartition(r), { gamma, beta, eps: p.eps, center: true }), count: r.rowLength };
}

/**
 * Backward of {@link referenceLayerNorm} (the statistics recomputed from x): per row, with
 * g = γ·dy, dx = (g − mean(g) − x̂·mean(g·x̂)) / sqrt(variance + eps); dγ = Σ dy·x̂ and dβ = Σ dy
 * over the rows, K elements each.
 */
export function referenceLayerNormBackward(
  x: Numbers,
  dy: Numbers,
  shape: readonly number[],
  normalizedShape: number | readonly number[],
  p: { gamma?: Numbers; eps: number },
): Gradients {
  checkParams(p, 'gamma?, eps', 'referenceLayerNormBackward');
  const r = rows(x, shape, normalizedShape);
  checkNumbers('dy', dy, x.length);
  const gamma = param('gamma', p.gamma, r.rowLength, 1);
  return groupBackward(x, dy, rowPartition(r), { gamma, eps: p.eps, center: true });
}

/**
 * RMS norm (PyTorch's `rms_norm`): each row of the trailing `normalizedShape` (K elements) is
 * divided by its root mean square, y = x / sqrt(mean(x²) + eps) · γ, with no mean subtracted and
 * no β. `eps` is taken as given (PyTorch's default, None, means the dtype's epsilon).
 */
export function referenceRMSNorm(
  x: Numbers,
  shape: readonly number[],
  normalizedShape: number | readonly number[],
  p: { gamma?: Numbers; eps: number },
): RMSNormForward {
  checkParams(p, 'gamma?, eps', 'referenceRMSNorm');
  const r = rows(x, shape, normalizedShape);
  const gamma = param('gamma', p.gamma, r.rowLength, 1);
  const beta = new Float64Array(r.rowLength);
  const { y, variance } = groupForward(x, rowPartition(r), { gamma, beta, eps: p.eps, center: false });
  return { y, meanSquare: variance, count: r.rowLength };
}

/**
 * Backward of {@link referenceRMSNorm}: per row, with r = sqrt(mean(x²) + eps),
 * dx = γ·dy / r − x · Σ(γ·dy·x) / (K·r³); dγ = Σ dy·x / r over the rows.
 */
export function referenceRMSNormBackward(
  x: Numbers,
  dy: Numbers,
  shape: readonly number[],
  normalizedShape: number | readonly number[],
  p: { gamma?: Numbers; eps: number },
): RMSNormGradients {
  checkParams(p, 'gamma?, eps', 'referenceRMSNormBackward');
  const r = rows(x, shape, normalizedShape);
  checkNumbers('dy', dy, x.length);
  const gamma = param('gamma', p.gamma, r.rowLength, 1);
  const { dx, dgamma } = groupBackward(x, dy, rowPartition(r), { gamma, eps: p.eps, center: false });
  return { dx, dgamma };
}

/**
 * Group norm (PyTorch's `group_norm`, in either channel position): per sample n (the first
 * axis), the C channels split into `numGroups` groups of C / numGroups consecutive channels, each
 * normalized over its channels and all spatial positions by its mean and biased variance; γ and
 * β per channel (omitted: 1 and 0). Statistics are indexed n·G + g. Throws, naming `numGroups`
 * and the channel count, when the groups do not divide C.
 */
export function referenceGroupNorm(
  x: Numbers,
  shape: readonly number[],
  p: { layout: Layout; numGroups: number; gamma?: Numbers; beta?: Numbers; eps: number },
): NormalizationForward {
  checkParams(p, 'layout, numGroups, gamma?, beta?, eps', 'referenceGroupNorm');
  const part = groupNormPartition(x, shape, p);
  const gamma = param('gamma', p.gamma, part.numParams, 1);
  const beta = param('beta', p.beta, part.numParams, 0);
  return { ...groupForward(x, part, { gamma, beta, eps: p.eps, center: true }), count: part.groups[0].length };
}

/**
 * Backward of {@link referenceGroupNorm}: per (sample, group), with g = γ·dy (γ per channel),
 * dx = (g − mean(g) − x̂·mean(g·x̂)) / sqrt(variance + eps); dγ = Σ dy·x̂ and dβ = Σ dy per channel.
 */
export function referenceGroupNormBackward(
  x: Numbers,
  dy: Numbers,
  shape: readonly number[],
  p: { layout: Layout; numGroups: number; gamma?: Numbers; eps: number },
): Gradients {
  checkParams(p, 'layout, numGroups, gamma?, eps', 'referenceGroupNormBackward');
  const part = groupNormPartition(x, shape, p);
  checkNumbers('dy', dy, x.length);
  const gamma = param('gamma', p.gamma, part.numParams, 1);
  return groupBackward(x, dy, part, { gamma, eps: p.eps, center: true });
}

/**
 * Instance norm (PyTorch's `instance_norm` with `use_input_stats`): each (sample, channel) is
 * normalized over its spatial positions by its own mean and biased variance (group norm with
 * one channel per group); γ and β per channel (omitted: 1 and 0). Statistics are indexed n·C + c.
 * At evaluation with tracked running statistics, PyTorch normalizes with those instead, which is
 * `referenceInference` on the same layout.
 */
export function referenceInstanceNorm(
  x: Numbers,
  shape: readonly number[],
  p: { layout: Layout; gamma?: Numbers; beta?: Numbers; eps: number },
): NormalizationForward {
  checkParams(p, 'layout, gamma?, beta?, eps', 'referenceInstanceNorm');
  const part = instancePartition(x, shape, p.layout);
  const gamma = param('gamma', p.gamma, part.numParams, 1);
  const beta = param('beta', p.beta, part.numParams, 0);
  return { ...groupForward(x, part, { gamma, beta, eps: p.eps, center: true }), count: part.groups[0].length };
}

/**
 * Backward of {@link referenceInstanceNorm}: per (sample, channel), dx = γ / sqrt(variance + eps) ·
 * (dy − mean(dy) − x̂·mean(dy·x̂)); dγ = Σ dy·x̂ and dβ = Σ dy per channel, over samples and positions.
 */
export function referenceInstanceNormBackward(
  x: Numbers,
  dy: Numbers,
  shape: readonly number[],
  p: { layout: Layout; gamma?: Numbers; eps: number },
): Gradients {
  checkParams(p, 'layout, gamma?, eps', 'referenceInstanceNormBackward');
  const part = instancePartition(x, shape, p.layout);
  checkNumbers('dy', dy, x.length);
  const gamma = param('gamma', p.gamma, part.numParams, 1);
  return groupBackward(x, dy, part, { gamma, eps: p.eps, center: true });
}

/**
 * One running-statistics update of instance norm with `track_running_stats`, as PyTorch does it.
 * `batch` is {@link referenceInstanceNorm}'s result; C is the length of the running arrays.
 *
 * PyTorch's `instance_norm` (aten/src/ATen/native/Normalization.cpp) repeats the running mean and
 * variance N times, reshapes x to (1, N·C, spatial…) and calls `batch_norm`, which updates each
 * (n, c) copy as (1 − m)·running + m·batch with the unbiased variance of that instance
 * (count = spatial size, so var · count / (count − 1)); it then writes back the mean over n of the
 * N updated copies. The update being linear, that is
 *   runningMean[c] = (1 − m)·runningMean[c] + m · mean over n of mean[n, c],
 *   runningVar[c]  = (1 − m)·runningVar[c]  + m · mean over n of unbiased variance[n, c].
 * There is no cumulative average (momentum is a number) and no batch counter. Throws when an
 * instance has a single element (PyTorch refuses to train with one spatial element).
 */
export function referenceInstanceNormRunningStats(
  state: { runningMean: Numbers; runningVar: Numbers },
  batch: { mean: Numbers; variance: Numbers; count: number },
  momentum: number,
): InstanceNormRunningStats {
  checkObject('state', state, 'an object { runningMean, runningVar }');
  checkNumbers('state.runningMean', state.runningMean);
  const C = state.runningMean.length;
  checkNumbers('state.runningVar', state.runningVar, C);
  checkObject('batch', batch, 'an object { mean, variance, count } (referenceInstanceNorm returns one)');
  checkNumbers('batch.mean', batch.mean);
  if (C === 0 || batch.mean.length % C !== 0) {
    throw new RangeError(`batch.mean must have a multiple of the ${C} running channels (N·C elements); got ${batch.mean.length}`);
  }
  checkNumbers('batch.variance', batch.variance, batch.mean.length);
  if (typeof batch.count !== 'number' || !(batch.count >= 2)) {
    throw new RangeError(`batch.count must be more than 1 spatial element per instance to update running statistics; got ${describeValue(batch.count)}`);
  }
  checkInteger('batch.count', batch.count, 2);
  checkMomentum('momentum', momentum);
  const N = batch.mean.length / C;
  const unbias = batch.count / (batch.count - 1);
  const runningMean = new Float64Array(C);
  const runningVar = new Float64Array(C);
  for (let c = 0; c < C; c++) {
    let sumOfMeans = 0;
    let sumOfVars = 0;
    for (let n = 0; n < N; n++) {
      sumOfMeans += batch.mean[n * C + c];
      sumOfVars += batch.variance[n * C + c] * unbias;
    }
    const meanOfMeans = sumOfMeans / N;
    const meanOfVars = sumOfVars / N;
    runningMean[c] = (1 - momentum) * state.runningMean[c] + momentum * meanOfMeans;
    runningVar[c] = (1 - momentum) * state.runningVar[c] + momentum * meanOfVars;
  }
  return { runningMean, runningVar };
}
