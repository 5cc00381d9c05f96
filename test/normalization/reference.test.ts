/**
 * The float64 CPU reference of layer, RMS, group and instance norm: small examples computed by
 * hand, backward against central finite differences, identities between the four, large offsets,
 * and errors on bad input.
 */
import { describe, it, expect } from 'vitest';
import type { Layout } from '../../src/core/layout.js';
import type { Gradients } from '../../src/batchnorm/reference.js';
import {
  referenceGroupNorm,
  referenceGroupNormBackward,
  referenceInstanceNorm,
  referenceInstanceNormBackward,
  referenceInstanceNormRunningStats,
  referenceLayerNorm,
  referenceLayerNormBackward,
  referenceRMSNorm,
  referenceRMSNormBackward,
} from '../../src/normalization/reference.js';
import { expectClose, randn, rng } from '../helpers/data.js';
import { gaussian } from '../../support/random.js';

const exact = { rtol: 1e-14, atol: 1e-15 };

describe('examples computed by hand (eps = 0)', () => {
  it('layer norm of a 2×3 tensor over its rows', () => {
    // Row 0 [1, 2, 3]: mean 2, variance (1 + 0 + 1)/3 = 2/3, x̂ = [-1, 0, 1]/sqrt(2/3) = [-1.2247448713915890, 0, 1.2247448713915890].
    // Row 1 [0, 0, 6]: mean 2, variance (4 + 4 + 16)/3 = 8, x̂ = [-2, -2, 4]/(2·sqrt 2) = [-0.7071067811865476, -0.7071067811865476, 1.4142135623730951].
    // γ = [1, 2, -1], β = [0, 1, 0.5]: y = γ·x̂ + β.
    const out = referenceLayerNorm([1, 2, 3, 0, 0, 6], [2, 3], [3], { gamma: [1, 2, -1], beta: [0, 1, 0.5], eps: 0 });
    expectClose(out.mean, [2, 2], exact, 'mean');
    expectClose(out.variance, [2 / 3, 8], exact, 'variance');
    expect(out.count).toBe(3);
    expectClose(out.y, [-1.224744871391589, 1, -0.724744871391589, -0.7071067811865476, -0.4142135623730951, -0.9142135623730951], exact, 'y');
  });

  it('RMS norm of two rows of two', () => {
    // Row 0 [3, 4]: mean(x²) = (9 + 16)/2 = 12.5, r = sqrt(12.5) = 3.5355339059327378, x/r = [0.8485281374238570, 1.1313708498984760].
    // Row 1 [1, -1]: mean(x²) = 1, r = 1. γ = [1, 2]: y = [0.848528137423857, 2.262741699796952, 1, -2].
    const out = referenceRMSNorm([3, 4, 1, -1], [2, 2], 2, { gamma: [1, 2], eps: 0 });
    expectClose(out.meanSquare, [12.5, 1], exact, 'meanSquare');
    expectClose(out.y, [0.848528137423857, 2.262741699796952, 1, -2], exact, 'y');
  });

  it('group norm with 2 groups of 2 channels, NCL [1, 4, 2]', () => {
    // Channels c0 [1, 3], c1 [5, 7] | c2 [0, 0], c3 [2, -2].
    // Group 0 {1, 3, 5, 7}: mean 4, variance (9 + 1 + 1 + 9)/4 = 5, x̂ = [-3, -1, 1, 3]/sqrt 5 = ±1.3416407864998738, ±0.4472135954999579.
    // Group 1 {0, 0, 2, -2}: mean 0, variance (4 + 4)/4 = 2, x̂ = [0, 0, sqrt 2, -sqrt 2].
    // γ = [1, 1, 2, -1], β = [0, 0, 0, 1] per channel: c2 gives [0, 0], c3 gives [1 - sqrt 2, 1 + sqrt 2].
    const x = [1, 3, 5, 7, 0, 0, 2, -2];
    const out = referenceGroupNorm(x, [1, 4, 2], { layout: 'NCL', numGroups: 2, gamma: [1, 1, 2, -1], beta: [0, 0, 0, 1], eps: 0 });
    expectClose(out.mean, [4, 0], exact, 'mean');
    expectClose(out.variance, [5, 2], exact, 'variance');
    expect(out.count).toBe(4);
    expectClose(out.y, [-1.3416407864998738, -0.4472135954999579, 0.4472135954999579, 1.3416407864998738, 0, 0, -0.4142135623730951, 2.414213562373095], exact, 'y');
    // The same tensor channels last (NLC [1, 2, 4]): position 0 holds [1, 5, 0, 2], position 1 [3, 7, 0, -2].
    const last = referenceGroupNorm([1, 5, 0, 2, 3, 7, 0, -2], [1, 2, 4], { layout: 'NLC', numGroups: 2, gamma: [1, 1, 2, -1], beta: [0, 0, 0, 1], eps: 0 });
    expectClose(last.y, [-1.3416407864998738, 0.4472135954999579, 0, -0.4142135623730951, -0.4472135954999579, 1.3416407864998738, 0, 2.414213562373095], exact, 'y (NLC)');
  });

  it('instance norm running statistics: the mean over samples of the per-instance updates, unbiased over space', () => {
    // NCL [2, 1, 3]: sample 0 [4, 7, 5] has mean 16/3, squared deviations 16/9 + 25/9 + 1/9 = 14/3, so biased
    // variance 14/9 and unbiased 7/3; sample 1 [1, 1, 4] has mean 2, squared deviations 1 + 1 + 4 = 6, biased 2, unbiased 3.
    // Momentum 0.1 from (0, 1): mean 0.9·0 + 0.1·(16/3 + 2)/2 = 11/30, var 0.9·1 + 0.1·(7/3 + 3)/2 = 0.9 + 4/15 = 7/6.
    // (Batch norm's statistics pooled over all six values give the same mean, but var 0.9 + 0.1·(246/9)/5 = 1.4467;
    // the biased per-instance variances would give 0.9 + 0.1·(14/9 + 2)/2 = 1.0778.)
    const batch = referenceInstanceNorm([4, 7, 5, 1, 1, 4], [2, 1, 3], { layout: 'NCL', eps: 1e-5 });
    expectClose(batch.mean, [16 / 3, 2], exact, 'mean');
    expectClose(batch.variance, [14 / 9, 2], exact, 'variance');
    const next = referenceInstanceNormRunningStats({ runningMean: [0], runningVar: [1] }, batch, 0.1);
    expectClose(next.runningMean, [11 / 30], exact, 'runningMean');
    expectClose(next.runningVar, [7 / 6], exact, 'runningVar');
  });

  it('instance norm running statistics equal the mean over n of batch-norm updates of each (n, c), as PyTorch computes them', () => {
    const [N, C, L] = [3, 2, 5];
    const x = Float64Array.from(randn(N * C * L, 31, 1, 2));
    const batch = referenceInstanceNorm(x, [N, C, L], { layout: 'NCL', eps: 1e-5 });
    const state = { runningMean: [0.5, -0.5], runningVar: [2, 0.5] };
    const m = 0.3;
    const next = referenceInstanceNormRunningStats(state, batch, m);
    for (let c = 0; c < C; c++) {
      // PyTorch: running_mean_ = running_mean.repeat(N); batch_norm updates copy n·C + c; then view(N, C).mean(0).
      let mean = 0;
      let variance = 0;
      for (let n = 0; n < N; n++) {
        const values = Array.from(x.subarray((n * C + c) * L, (n * C + c + 1) * L));
        const mu = values.reduce((a, b) => a + b, 0) / L;
        const unbiased = values.reduce((a, b) => a + (b - mu) ** 2, 0) / (L - 1);
        mean += ((1 - m) * state.runningMean[c] + m * mu) / N;
        variance += ((1 - m) * state.runningVar[c] + m * unbiased) / N;
      }
      expect(next.runningMean[c]).toBeCloseTo(mean, 13);
      expect(next.runningVar[c]).toBeCloseTo(variance, 13);
    }
  });
});

/** L = Σ w·y; its gradient is dL/dy = w. */
function dot(w: ArrayLike<number>, y: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < y.length; i++) s += w[i] * y[i];
  return s;
}

/** Central difference of `f` at 0 in each of the `n` coordinates of a perturbation. */
function numericGradient(n: number, f: (i: number, delta: number) => number): Float64Array {
  const h = 1e-5;
  return Float64Array.from({ length: n }, (_, i) => (f(i, h) - f(i, -h)) / (2 * h));
}

/** `values` with `delta` added to element i. */
function bump(values: ArrayLike<number>, i: number, delta: number): Float64Array {
  const out = Float64Array.from(values);
  out[i] += delta;
  return out;
}

/** Checks analytic dx, dγ and (when given) dβ of `forward` against central differences of L = Σ w·y. */
function checkGradients(
  forward: (x: Float64Array, gamma: Float64Array, beta: Float64Array) => ArrayLike<number>,
  analytic: (x: Float64Array, w: Float64Array, gamma: Float64Array) => Partial<Gradients>,
  size: number,
  params: number,
  seed: number,
): void {
  const x = Float64Array.from(randn(size, seed, 0.5, 2));
  const w = Float64Array.from(randn(size, seed + 1));
  const gamma = Float64Array.from(randn(params, seed + 2, 1, 0.5));
  const beta = Float64Array.from(randn(params, seed + 3));
  const grads = analytic(x, w, gamma);
  const tol = { rtol: 1e-6, atol: 1e-8 };
  expectClose(grads.dx!, numericGradient(size, (i, d) => dot(w, forward(bump(x, i, d), gamma, beta))), tol, 'dx');
  expectClose(grads.dgamma!, numericGradient(params, (i, d) => dot(w, forward(x, bump(gamma, i, d), beta))), tol, 'dgamma');
  if (grads.dbeta) expectClose(grads.dbeta, numericGradient(params, (i, d) => dot(w, forward(x, gamma, bump(beta, i, d)))), tol, 'dbeta');
}

const product = (dims: number[]) => dims.reduce((a, b) => a * b, 1);

describe('backward against central finite differences of L = Σ w·y', () => {
  const rowCases: [number[], number[]][] = [
    [[3, 4], [4]],
    [[2, 3, 2], [3, 2]],
    [[2, 3, 2], [2]],
    [[5], [5]],
  ];

  it.each(rowCases)('layer norm %j over %j', (shape, norm) => {
    checkGradients(
      (x, gamma, beta) => referenceLayerNorm(x, shape, norm, { gamma, beta, eps: 1e-3 }).y,
      (x, w, gamma) => referenceLayerNormBackward(x, w, shape, norm, { gamma, eps: 1e-3 }),
      product(shape),
      product(norm),
      40,
    );
  });

  it.each(rowCases)('RMS norm %j over %j', (shape, norm) => {
    checkGradients(
      (x, gamma) => referenceRMSNorm(x, shape, norm, { gamma, eps: 1e-3 }).y,
      (x, w, gamma) => referenceRMSNormBackward(x, w, shape, norm, { gamma, eps: 1e-3 }),
      product(shape),
      product(norm),
      50,
    );
  });

  const groupCases: [Layout, number[], number][] = [
    ['NCHW', [2, 6, 2, 2], 3],
    ['NHWC', [2, 2, 2, 6], 2],
    ['NC', [3, 4], 2],
    ['NLC', [2, 3, 4], 4],
    ['NCL', [2, 4, 3], 1],
    ['NDHWC', [2, 1, 2, 2, 4], 2],
  ];

  it.each(groupCases)('group norm %s %j, %d groups', (layout, shape, numGroups) => {
    const C = shape[layout.indexOf('C')];
    checkGradients(
      (x, gamma, beta) => referenceGroupNorm(x, shape, { layout, numGroups, gamma, beta, eps: 1e-3 }).y,
      (x, w, gamma) => referenceGroupNormBackward(x, w, shape, { layout, numGroups, gamma, eps: 1e-3 }),
      product(shape),
      C,
      60,
    );
  });

  const instanceCases: [Layout, number[]][] = [
    ['NCL', [2, 3, 4]],
    ['NHWC', [2, 2, 3, 3]],
    ['NCDHW', [2, 3, 2, 1, 2]],
    ['NDHWC', [1, 2, 1, 2, 3]],
  ];

  it.each(instanceCases)('instance norm %s %j', (layout, shape) => {
    const C = shape[layout.indexOf('C')];
    checkGradients(
      (x, gamma, beta) => referenceInstanceNorm(x, shape, { layout, gamma, beta, eps: 1e-3 }).y,
      (x, w, gamma) => referenceInstanceNormBackward(x, w, shape, { layout, gamma, eps: 1e-3 }),
      product(shape),
      C,
      70,
    );
  });
});

/** NHWC-style [N, S, C] data as NCHW-style [N, C, S]. */
function toChannelsFirst(x: ArrayLike<number>, N: number, S: number, C: number): Float64Array {
  const out = new Float64Array(x.length);
  for (let n = 0; n < N; n++) for (let s = 0; s < S; s++) for (let c = 0; c < C; c++) out[(n * C + c) * S + s] = x[(n * S + s) * C + c];
  return out;
}

describe('identities', () => {
  const [N, C, H, W] = [2, 6, 3, 2];
  const shape = [N, C, H, W];
  const x = Float64Array.from(randn(N * C * H * W, 81, 0.3, 1.7));
  const dy = Float64Array.from(randn(x.length, 82));
  const gamma = Float64Array.from(randn(C, 83, 1, 0.5));
  const beta = Float64Array.from(randn(C, 84));
  const eps = 1e-5;
  const tight = { rtol: 1e-12, atol: 1e-13 };

  it('group norm with G = C is instance norm', () => {
    for (const [layout, s] of [['NCHW', shape], ['NHWC', [N, H, W, C]]] as [Layout, number[]][]) {
      const g = referenceGroupNorm(x, s, { layout, numGroups: C, gamma, beta, eps });
      const i = referenceInstanceNorm(x, s, { layout, gamma, beta, eps });
      expectClose(g.y, i.y, tight, `${layout} y`);
      expectClose(g.mean, i.mean, tight, `${layout} mean`);
      expectClose(g.variance, i.variance, tight, `${layout} variance`);
      const gb = referenceGroupNormBackward(x, dy, s, { layout, numGroups: C, gamma, eps });
      const ib = referenceInstanceNormBackward(x, dy, s, { layout, gamma, eps });
      expectClose(gb.dx, ib.dx, tight, `${layout} dx`);
      expectClose(gb.dgamma, ib.dgamma, tight, `${layout} dgamma`);
      expectClose(gb.dbeta, ib.dbeta, tight, `${layout} dbeta`);
    }
  });

  it('group norm with G = 1 is layer norm over (C, spatial) with γ and β broadcast per channel', () => {
    const S = H * W;
    // Channels first: row element c·S + s takes channel c's γ; channels last: s·C + c.
    const first = { g: Float64Array.from({ length: C * S }, (_, k) => gamma[Math.floor(k / S)]), b: Float64Array.from({ length: C * S }, (_, k) => beta[Math.floor(k / S)]) };
    const last = { g: Float64Array.from({ length: C * S }, (_, k) => gamma[k % C]), b: Float64Array.from({ length: C * S }, (_, k) => beta[k % C]) };
    for (const [layout, s, p] of [['NCHW', shape, first], ['NHWC', [N, H, W, C], last]] as [Layout, number[], typeof first][]) {
      const g = referenceGroupNorm(x, s, { layout, numGroups: 1, gamma, beta, eps });
      const l = referenceLayerNorm(x, s, s.slice(1), { gamma: p.g, beta: p.b, eps });
      expectClose(g.y, l.y, tight, `${layout} y`);
      const gb = referenceGroupNormBackward(x, dy, s, { layout, numGroups: 1, gamma, eps });
      const lb = referenceLayerNormBackward(x, dy, s, s.slice(1), { gamma: p.g, eps });
      expectClose(gb.dx, lb.dx, tight, `${layout} dx`);
      // Layer norm's dγ per element, summed over each channel's positions, is group norm's per channel.
      const perChannel = new Float64Array(C);
      lb.dgamma.forEach((v, k) => (perChannel[layout === 'NCHW' ? Math.floor(k / S) : k % C] += v));
      expectClose(gb.dgamma, perChannel, tight, `${layout} dgamma`);
    }
  });

  it('channels last equals channels first after transposing (group and instance norm, forward and backward)', () => {
    const S = H * W;
    const xLast = Float64Array.from(randn(x.length, 91, -0.4, 1.3));
    const dyLast = Float64Array.from(randn(x.length, 92));
    const xFirst = toChannelsFirst(xLast, N, S, C);
    const dyFirst = toChannelsFirst(dyLast, N, S, C);
    for (const numGroups of [1, 2, 3, 6]) {
      const a = referenceGroupNorm(xLast, [N, H, W, C], { layout: 'NHWC', numGroups, gamma, beta, eps });
      const b = referenceGroupNorm(xFirst, shape, { layout: 'NCHW', numGroups, gamma, beta, eps });
      expectClose(toChannelsFirst(a.y, N, S, C), b.y, tight, `G = ${numGroups} y`);
      expectClose(a.variance, b.variance, tight, `G = ${numGroups} variance`);
      const ga = referenceGroupNormBackward(xLast, dyLast, [N, H, W, C], { layout: 'NHWC', numGroups, gamma, eps });
      const gb = referenceGroupNormBackward(xFirst, dyFirst, shape, { layout: 'NCHW', numGroups, gamma, eps });
      expectClose(toChannelsFirst(ga.dx, N, S, C), gb.dx, tight, `G = ${numGroups} dx`);
      expectClose(ga.dgamma, gb.dgamma, tight, `G = ${numGroups} dgamma`);
      expectClose(ga.dbeta, gb.dbeta, tight, `G = ${numGroups} dbeta`);
    }
    const a = referenceInstanceNorm(xLast, [N, S, C], { layout: 'NLC', gamma, beta, eps });
    const b = referenceInstanceNorm(xFirst, [N, C, S], { layout: 'NCL', gamma, beta, eps });
    expectClose(toChannelsFirst(a.y, N, S, C), b.y, tight, 'instance y');
    expectClose(a.mean, b.mean, tight, 'instance mean');
    const ia = referenceInstanceNormBackward(xLast, dyLast, [N, S, C], { layout: 'NLC', gamma, eps });
    const ib = referenceInstanceNormBackward(xFirst, dyFirst, [N, C, S], { layout: 'NCL', gamma, eps });
    expectClose(toChannelsFirst(ia.dx, N, S, C), ib.dx, tight, 'instance dx');
    expectClose(ia.dgamma, ib.dgamma, tight, 'instance dgamma');
  });

  it('RMS norm equals layer norm (β = 0) on rows whose mean is exactly zero, forward only', () => {
    // Rows [a, -a, b, -b, …] sum to exactly 0 in order, so layer norm's variance is mean(x²).
    // The gradients differ: layer norm's dx has the −mean(γ·dy) term of the centering.
    const half = randn(12, 95);
    const rowsData = Float64Array.from({ length: 24 }, (_, k) => (k % 2 ? -half[k >> 1] : half[k >> 1]));
    const g = Float64Array.from(randn(8, 96, 1, 0.5));
    const l = referenceLayerNorm(rowsData, [3, 8], [8], { gamma: g, eps });
    const r = referenceRMSNorm(rowsData, [3, 8], [8], { gamma: g, eps });
    expect(Array.from(l.mean)).toEqual([0, 0, 0]);
    expectClose(r.y, l.y, { rtol: 1e-15, atol: 1e-15 }, 'y');
    expectClose(r.meanSquare, l.variance, { rtol: 1e-15, atol: 0 }, 'meanSquare');
  });
});

describe('large offsets', () => {
  it('layer norm of rows with mean 1e6 and std 1 gives x̂ with mean 0 and unit variance to 1e-9', () => {
    // One-pass E[x²] − E[x]² would lose about 1e12 · 2^-52 ≈ 2e-4 of the variance here.
    const [rowsCount, K] = [4, 1000];
    const random = rng(101);
    const x = Float64Array.from({ length: rowsCount * K }, () => 1e6 + gaussian(random));
    const out = referenceLayerNorm(x, [rowsCount, K], [K], { eps: 0 });
    for (let r = 0; r < rowsCount; r++) {
      const row = out.y.subarray(r * K, (r + 1) * K);
      const mean = row.reduce((a, b) => a + b, 0) / K;
      const variance = row.reduce((a, b) => a + (b - mean) ** 2, 0) / K;
      expect(Math.abs(mean), `row ${r} mean of x̂`).toBeLessThan(1e-9);
      expect(Math.abs(variance - 1), `row ${r} variance of x̂`).toBeLessThan(1e-9);
    }
  });
});

describe('bad input throws, naming the argument and the expected value', () => {
  const x = new Float64Array(24);

  it('a normalizedShape that is not the trailing dimensions', () => {
    expect(() => referenceLayerNorm(x, [2, 3, 4], [3], { eps: 1e-5 })).toThrow(/normalizedShape must be the last 1 dimension of shape \[2, 3, 4\], \[4\]; got \[3\]/);
    expect(() => referenceRMSNorm(x, [2, 3, 4], [4, 3], { eps: 1e-5 })).toThrow(/normalizedShape must be the last 2 dimensions of shape \[2, 3, 4\], \[3, 4\]; got \[4, 3\]/);
    expect(() => referenceLayerNormBackward(x, x, [2, 3, 4], [1, 2, 3, 4], { eps: 1e-5 })).toThrow(
      /normalizedShape must have 1 to 3 dimensions, the trailing dimensions of shape \[2, 3, 4\]; got \[1, 2, 3, 4\]/,
    );
  });

  it('C not divisible by numGroups', () => {
    expect(() => referenceGroupNorm(new Float64Array(12), [2, 6], { layout: 'NC', numGroups: 4, eps: 1e-5 })).toThrow(
      /numGroups must divide the number of channels C = 6 \(one of 1, 2, 3, 6\); got 4/,
    );
    expect(() => referenceGroupNormBackward(x, x, [2, 2, 6], { layout: 'NLC', numGroups: 0, eps: 1e-5 })).toThrow(/numGroups must divide the number of channels C = 6 .*; got 0/);
  });

  it('arrays of the wrong length and shapes that do not fit the layout', () => {
    expect(() => referenceLayerNorm(new Float64Array(23), [2, 3, 4], [4], { eps: 1e-5 })).toThrow(/x must have 24 elements; got 23/);
    expect(() => referenceLayerNorm(x, [2, 3, 4], [3, 4], { gamma: [1, 1, 1], eps: 1e-5 })).toThrow(/gamma must have 12 elements; got 3/);
    expect(() => referenceGroupNormBackward(x, new Float64Array(12), [2, 6, 2], { layout: 'NCL', numGroups: 3, eps: 1e-5 })).toThrow(/dy must have 24 elements; got 12/);
    expect(() => referenceInstanceNorm(x, [2, 6, 2], { layout: 'NCL', beta: [0, 0], eps: 1e-5 })).toThrow(/beta must have 6 elements; got 2/);
    expect(() => referenceInstanceNorm(x, [2, 12], { layout: 'NCL', eps: 1e-5 })).toThrow(/shape must have 3 dimensions for layout 'NCL'; got \[2, 12\]/);
  });

  it('running statistics of instances with one element each', () => {
    const batch = referenceInstanceNorm(new Float64Array(6), [2, 3], { layout: 'NC', eps: 1e-5 });
    expect(() => referenceInstanceNormRunningStats({ runningMean: [0, 0, 0], runningVar: [1, 1, 1] }, batch, 0.1)).toThrow(/batch.count must be more than 1 spatial element .*; got 1/);
    const wide = referenceInstanceNorm(new Float64Array(12), [2, 3, 2], { layout: 'NCL', eps: 1e-5 });
    expect(() => referenceInstanceNormRunningStats({ runningMean: [0, 0, 0, 0], runningVar: [1, 1, 1, 1] }, wide, 0.1)).toThrow(/batch.mean must have a multiple of the 4 running channels .*; got 6/);
  });
});
