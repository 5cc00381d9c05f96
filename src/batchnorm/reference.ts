/**
 * CPU reference for batch normalization, accumulating in float64. It is the truth every GPU
 * result is tested against, so it favours clarity over speed: two-pass mean and variance, the
 * formulas written as in the lecture notes.
 *
 * All functions take data in a [outer, C, inner] view (see {@link channelView}).
 */
import type { ChannelView } from '../core/layout.js';
import type { Gradients } from '../core/reference.js';
import { checkView, viewSize } from '../core/layout.js';
import { checkBoolean, checkInteger, checkMomentum, checkNonNegativeEps, checkNumbers, checkObject, checkOneOf, checkParamKeys } from '../core/validate.js';

/** @inline */
type Numbers = ArrayLike<number>;

/** Per-channel batch statistics. */
export interface BatchStats {
  /** Batch mean per channel. */
  mean: Float64Array;
  /** Biased batch variance per channel (divides by the count), as used to normalize. */
  variance: Float64Array;
  /** Elements per channel (outer * inner). */
  count: number;
}

/** Running (population) statistics, as PyTorch keeps them. */
export interface RunningStats {
  runningMean: Float64Array;
  runningVar: Float64Array;
  numBatchesTracked: number;
}

/**
 * Fields of the objects the library hands out that a parameters object `p` may carry along
 * unread: referenceStats' and referenceTrainingForward's results (mean, variance, count, y) and
 * a BatchNorm layer's getState() (gamma, beta, runningMean, runningVar, numBatchesTracked), as in
 * `{ ...referenceStats(x, view), gamma, eps }` or `{ ...await bn.getState(), eps }`, and the
 * other functions' parameters.
 */
const CARRIED = ['mean', 'variance', 'count', 'y', 'gamma', 'beta', 'runningMean', 'runningVar', 'numBatchesTracked', 'eps', 'batchStats'];

/** Advice on other frameworks' names for the parameters. */
const PARAM_HINTS: Readonly<Record<string, string>> = {
  epsilon: 'eps here',
  weight: "PyTorch's weight is gamma here",
  bias: "PyTorch's bias is beta here",
  running_mean: "PyTorch's running_mean is runningMean here",
  running_var: "PyTorch's running_var is runningVar here",
  momentum: 'referenceUpdateRunningStats takes the momentum',
  training: 'batchStats: true for a training forward pass (referenceBackward)',
};

/** `p`'s keys: each one `fn` reads (`own`) or one the library's results carry along. */
function checkKeys(p: Record<string, unknown>, fn: string, own: readonly string[]): void {
  checkParamKeys('p', p, fn, own, CARRIED.filter((k) => !own.includes(k)), PARAM_HINTS);
}

/** Calls `fn(c, index)` for every element of channel `c`, in buffer order. */
export function forEachInChannel(view: ChannelView, c: number, fn: (index: number) => void): void {
  const { outer, channels, inner } = view;
  for (let o = 0; o < outer; o++) {
    const base = (o * channels + c) * inner;
    for (let i = 0; i < inner; i++) fn(base + i);
  }
}

/** `x` (`argName`) must hold a tensor of `view`. */
function checkTensor(argName: string, x: unknown, view: unknown): asserts x is Numbers {
  checkView(view);
  checkNumbers(argName, x, viewSize(view));
}

/** Two-pass float64 mean and biased variance per channel. */
export function referenceStats(x: Numbers, view: ChannelView): BatchStats {
  checkTensor('x', x, view);
  const count = view.outer * view.inner;
  const mean = new Float64Array(view.channels);
  const variance = new Float64Array(view.channels);
  for (let c = 0; c < view.channels; c++) {
    let sum = 0;
    forEachInChannel(view, c, (e) => (sum += x[e]));
    const m = sum / count;
    let m2 = 0;
    forEachInChannel(view, c, (e) => (m2 += (x[e] - m) ** 2));
    mean[c] = m;
    variance[c] = m2 / count;
  }
  return { mean, variance, count };
}

/** y = gamma * (x - mean) / sqrt(variance + eps) + beta, per channel. */
export function referenceNormalize(
  x: Numbers,
  view: ChannelView,
  p: { mean: Numbers; variance: Numbers; gamma: Numbers; beta: Numbers; eps: number },
): Float64Array {
  checkTensor('x', x, view);
  checkObject('p', p, 'an object { mean, variance, gamma, beta, eps }');
  checkKeys(p, 'referenceNormalize', ['mean', 'variance', 'gamma', 'beta', 'eps']);
  for (const name of ['mean', 'variance', 'gamma', 'beta'] as const) checkNumbers(`p.${name}`, p[name], view.channels);
  checkNonNegativeEps('p.eps', p.eps);
  const y = new Float64Array(x.length);
  for (let c = 0; c < view.channels; c++) {
    const invstd = 1 / Math.sqrt(p.variance[c] + p.eps);
    forEachInChannel(view, c, (e) => (y[e] = p.gamma[c] * (x[e] - p.mean[c]) * invstd + p.beta[c]));
  }
  return y;
}

/** Training forward: normalize with the batch's own statistics. Returns y and the statistics. */
export function referenceTrainingForward(
  x: Numbers,
  view: ChannelView,
  p: { gamma: Numbers; beta: Numbers; eps: number },
): BatchStats & { y: Float64Array } {
  checkObject('p', p, 'an object { gamma, beta, eps }');
  checkKeys(p, 'referenceTrainingForward', ['gamma', 'beta', 'eps']);
  const stats = referenceStats(x, view);
  const y = referenceNormalize(x, view, { mean: stats.mean, variance: stats.variance, gamma: p.gamma, beta: p.beta, eps: p.eps });
  return { ...stats, y };
}

/** Inference forward: normalize with the running (population) statistics. */
export function referenceInference(
  x: Numbers,
  view: ChannelView,
  p: { runningMean: Numbers; runningVar: Numbers; gamma: Numbers; beta: Numbers; eps: number },
): Float64Array {
  checkView(view);
  checkObject('p', p, 'an object { runningMean, runningVar, gamma, beta, eps }');
  checkKeys(p, 'referenceInference', ['runningMean', 'runningVar', 'gamma', 'beta', 'eps']);
  checkNumbers('p.runningMean', p.runningMean, view.channels);
  checkNumbers('p.runningVar', p.runningVar, view.channels);
  return referenceNormalize(x, view, { mean: p.runningMean, variance: p.runningVar, gamma: p.gamma, beta: p.beta, eps: p.eps });
}

/**
 * One running-statistics update with PyTorch semantics: running = (1 - f) * running + f * batch,
 * where f = momentum, or 1 / numBatchesTracked after the increment when momentum is null
 * (cumulative moving average). The running variance takes the unbiased batch variance n / (n - 1),
 * or with 'biased' the batch variance itself, as Keras does.
 */
export function referenceUpdateRunningStats(
  state: RunningStats,
  batch: BatchStats,
  momentum: number | null,
  runningVariance: 'unbiased' | 'biased' = 'unbiased',
): RunningStats {
  checkObject('batch', batch, 'an object { mean, variance, count } (referenceStats returns one)');
  checkNumbers('batch.mean', batch.mean);
  const C = batch.mean.length;
  checkNumbers('batch.variance', batch.variance, C);
  checkMomentum('momentum', momentum, 'the cumulative moving average');
  checkOneOf('runningVariance', runningVariance, ['unbiased', 'biased'] as const);
  checkInteger('batch.count', batch.count, runningVariance === 'unbiased' ? 2 : 1, runningVariance === 'unbiased' ? 'the unbiased variance divides by count - 1' : '');
  checkObject('state', state, 'an object { runningMean, runningVar, numBatchesTracked }');
  checkNumbers('state.runningMean', state.runningMean, C);
  checkNumbers('state.runningVar', state.runningVar, C);
  checkInteger('state.numBatchesTracked', state.numBatchesTracked, 0);
  const numBatchesTracked = state.numBatchesTracked + 1;
  const f = momentum === null ? 1 / numBatchesTracked : momentum;
  const unbias = runningVariance === 'unbiased' ? batch.count / (batch.count - 1) : 1;
  return {
    runningMean: Float64Array.from(state.runningMean, (r, c) => (1 - f) * r + f * batch.mean[c]),
    runningVar: Float64Array.from(state.runningVar, (r, c) => (1 - f) * r + f * batch.variance[c] * unbias),
    numBatchesTracked,
  };
}

export type { Gradients };

/**
 * Backward pass. With `batchStats` (a training forward), dx flows through the batch mean and
 * variance: dx = gamma * invstd * (dy - mean(dy) - x_hat * mean(dy * x_hat)). Without (a forward
 * that used fixed running statistics), dx = gamma * invstd * dy. Always dgamma = sum(dy * x_hat) and
 * dbeta = sum(dy). `mean` and `variance` are the statistics the forward pass normalized with.
 */
export function referenceBackward(
  x: Numbers,
  dy: Numbers,
  view: ChannelView,
  p: { mean: Numbers; variance: Numbers; gamma: Numbers; eps: number; batchStats: boolean },
): Gradients {
  checkTensor('x', x, view);
  checkTensor('dy', dy, view);
  checkObject('p', p, 'an object { mean, variance, gamma, eps, batchStats }');
  checkKeys(p, 'referenceBackward', ['mean', 'variance', 'gamma', 'eps', 'batchStats']);
  for (const name of ['mean', 'variance', 'gamma'] as const) checkNumbers(`p.${name}`, p[name], view.channels);
  checkNonNegativeEps('p.eps', p.eps);
  checkBoolean('p.batchStats', p.batchStats);
  const n = view.outer * view.inner;
  const dx = new Float64Array(x.length);
  const dgamma = new Float64Array(view.channels);
  const dbeta = new Float64Array(view.channels);
  for (let c = 0; c < view.channels; c++) {
    const invstd = 1 / Math.sqrt(p.variance[c] + p.eps);
    const xhat = (e: number) => (x[e] - p.mean[c]) * invstd;
    let sumDy = 0;
    let sumDyXhat = 0;
    forEachInChannel(view, c, (e) => {
      sumDy += dy[e];
      sumDyXhat += dy[e] * xhat(e);
    });
    dbeta[c] = sumDy;
    dgamma[c] = sumDyXhat;
    const k = p.gamma[c] * invstd;
    forEachInChannel(view, c, (e) => {
      dx[e] = p.batchStats ? k * (dy[e] - sumDy / n - (xhat(e) * sumDyXhat) / n) : k * dy[e];
    });
  }
  return { dx, dgamma, dbeta };
}

export { referenceActivation, referenceActivationGrad, type ReferenceActivation } from '../core/reference.js';
