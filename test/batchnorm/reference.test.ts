/**
 * The float64 CPU reference against the lecture notes' worked example, values derived by hand,
 * and central finite differences for the backward pass.
 */
import { describe, it, expect } from 'vitest';
import { LAYOUTS, channelView, type ChannelView, type Layout } from '../../src/core/layout.js';
import {
  referenceBackward,
  referenceInference,
  referenceStats,
  referenceTrainingForward,
  referenceUpdateRunningStats,
  type RunningStats,
} from '../../src/batchnorm/reference.js';
import { expectClose, randn } from '../helpers/data.js';

describe('worked example x = [4, 7, 5] (one channel, three samples)', () => {
  const view = channelView('NC', [3, 1]);
  const x = [4, 7, 5];
  const out = referenceTrainingForward(x, view, { gamma: [1], beta: [0], eps: 1e-5 });

  it('matches the exact values: mean 16/3, variance 14/9', () => {
    expect(out.mean[0]).toBeCloseTo(16 / 3, 14);
    expect(out.variance[0]).toBeCloseTo(14 / 9, 14);
    const exact = x.map((v) => (v - 16 / 3) / Math.sqrt(14 / 9 + 1e-5));
    expectClose(out.y, exact, { rtol: 1e-14, atol: 0 }, 'x_hat');
  });

  it("reproduces the notes' figures x_hat ≈ [-1.068, 1.341, -0.265]", () => {
    // The notes round the mean to 5.33 and the variance to 1.5555 before dividing, so their
    // figures are off from the exact values (-1.0690, 1.3363, -0.2673) in the third decimal.
    expectClose(out.y, [-1.068, 1.341, -0.265], { rtol: 0, atol: 5e-3 }, "notes' x_hat");
  });

  it('scales and shifts with gamma and beta', () => {
    const scaled = referenceTrainingForward(x, view, { gamma: [2], beta: [0.5], eps: 1e-5 });
    expectClose(scaled.y, Array.from(out.y, (v) => 2 * v + 0.5), { rtol: 1e-14, atol: 1e-15 }, 'y');
  });

  it('updates running statistics as PyTorch does (momentum 0.1, unbiased variance)', () => {
    const state = { runningMean: new Float64Array([0]), runningVar: new Float64Array([1]), numBatchesTracked: 0 };
    const next = referenceUpdateRunningStats(state, out, 0.1);
    // unbiased variance 14/9 * 3/2 = 7/3
    expect(next.runningMean[0]).toBeCloseTo(0.9 * 0 + 0.1 * (16 / 3), 14);
    expect(next.runningVar[0]).toBeCloseTo(0.9 * 1 + 0.1 * (7 / 3), 14);
    expect(next.numBatchesTracked).toBe(1);
  });

  it('normalizes with the running statistics at inference', () => {
    const y = referenceInference([4], channelView('NC', [1, 1]), {
      runningMean: [2],
      runningVar: [3],
      gamma: [2],
      beta: [1],
      eps: 1e-5,
    });
    expect(y[0]).toBeCloseTo((2 * (4 - 2)) / Math.sqrt(3 + 1e-5) + 1, 14);
  });
});

describe('running statistics', () => {
  it('momentum null keeps the cumulative average of the batch statistics', () => {
    const view = channelView('NC', [4, 2]);
    let state: RunningStats = { runningMean: new Float64Array(2), runningVar: new Float64Array([1, 1]), numBatchesTracked: 0 };
    const batches = [0, 1, 2].map((s) => referenceStats(randn(8, 100 + s, s, 1 + s), view));
    for (const b of batches) state = referenceUpdateRunningStats(state, b, null);
    for (let c = 0; c < 2; c++) {
      const meanOfMeans = batches.reduce((a, b) => a + b.mean[c], 0) / 3;
      const meanOfVars = batches.reduce((a, b) => a + (b.variance[c] * 4) / 3, 0) / 3;
      expect(state.runningMean[c]).toBeCloseTo(meanOfMeans, 12);
      expect(state.runningVar[c]).toBeCloseTo(meanOfVars, 12);
    }
    expect(state.numBatchesTracked).toBe(3);
  });
});

describe('layout views', () => {
  it.each([
    ['NC', [5, 3], { outer: 5, channels: 3, inner: 1 }],
    ['NCL', [2, 3, 7], { outer: 2, channels: 3, inner: 7 }],
    ['NCHW', [2, 3, 4, 5], { outer: 2, channels: 3, inner: 20 }],
    ['NHWC', [2, 4, 5, 3], { outer: 40, channels: 3, inner: 1 }],
    ['NCDHW', [2, 3, 4, 5, 6], { outer: 2, channels: 3, inner: 120 }],
  ] as [Layout, number[], ChannelView][])('%s %j is %j', (layout, shape, view) => {
    expect(channelView(layout, shape)).toEqual(view);
  });

  it('NHWC statistics equal the NCHW statistics of the transposed tensor', () => {
    const [N, H, W, C] = [2, 3, 4, 5];
    const nhwc = randn(N * H * W * C, 7, 1, 2);
    const nchw = new Float32Array(nhwc.length);
    for (let n = 0; n < N; n++)
      for (let h = 0; h < H; h++)
        for (let w = 0; w < W; w++)
          for (let c = 0; c < C; c++) nchw[((n * C + c) * H + h) * W + w] = nhwc[((n * H + h) * W + w) * C + c];
    const a = referenceStats(nhwc, channelView('NHWC', [N, H, W, C]));
    const b = referenceStats(nchw, channelView('NCHW', [N, C, H, W]));
    expectClose(a.mean, b.mean, { rtol: 1e-12, atol: 1e-12 }, 'mean');
    expectClose(a.variance, b.variance, { rtol: 1e-12, atol: 1e-12 }, 'variance');
  });

  it('rejects shapes that do not fit the layout, naming the argument', () => {
    expect(() => channelView('NCHW', [2, 3, 4])).toThrow(/shape must have 4 dimensions for layout 'NCHW'; got \[2, 3, 4\]/);
    expect(() => channelView('NC', [2, 0])).toThrow(/shape\[1\] must be a positive integer; got 0/);
    expect(() => channelView('NC', [2, 1.5])).toThrow(/shape\[1\] must be a positive integer; got 1.5/);
    expect(() => channelView('NWC' as Layout, [2, 1])).toThrow(/layout must be one of 'NC', 'NCL', 'NLC', 'NCHW', 'NHWC', 'NCDHW', 'NDHWC'; got the string 'NWC'/);
  });
});

describe('backward against central finite differences', () => {
  // L = sum(w * y) for fixed random w, so dL/dy = w.
  function loss(x: ArrayLike<number>, w: ArrayLike<number>, view: ChannelView, p: LossParams): number {
    const y = p.batchStats
      ? referenceTrainingForward(x, view, p).y
      : referenceInference(x, view, { ...p, runningMean: p.mean, runningVar: p.variance });
    let s = 0;
    for (let i = 0; i < y.length; i++) s += w[i] * y[i];
    return s;
  }
  interface LossParams {
    gamma: number[];
    beta: number[];
    eps: number;
    batchStats: boolean;
    mean: ArrayLike<number>;
    variance: ArrayLike<number>;
  }

  const cases: [Layout, number[], boolean][] = LAYOUTS.flatMap((layout) => {
    const shape = { NC: [5, 3], NCL: [2, 3, 4], NLC: [2, 4, 3], NCHW: [2, 3, 2, 3], NHWC: [2, 2, 3, 3], NCDHW: [2, 3, 2, 1, 2], NDHWC: [2, 2, 1, 2, 3] }[layout];
    return [true, false].map((batchStats) => [layout, shape, batchStats] as [Layout, number[], boolean]);
  });

  it.each(cases)('%s %j (batch statistics: %s)', (layout, shape, batchStats) => {
    const view = channelView(layout, shape);
    const n = view.outer * view.channels * view.inner;
    const x = Float64Array.from(randn(n, 11, 0.5, 2));
    const w = Float64Array.from(randn(n, 12));
    const gamma = [1.5, -0.7, 0.9];
    const beta = [0.1, 0.2, -0.3];
    const stats = referenceStats(x, view);
    // Eval-mode gradients use fixed statistics that do not depend on x.
    const fixed = { mean: [0.3, -0.2, 0.1], variance: [1.7, 0.6, 2.2] };
    const p: LossParams = { gamma, beta, eps: 1e-3, batchStats, ...(batchStats ? stats : fixed) };
    const analytic = referenceBackward(x, w, view, p);

    const h = 1e-5;
    const central = (f: (delta: number) => number) => (f(h) - f(-h)) / (2 * h);
    const numericDx = x.map((_, i) =>
      central((d) => {
        const xs = Float64Array.from(x);
        xs[i] += d;
        return loss(xs, w, view, p);
      }),
    );
    const numericDgamma = gamma.map((_, c) => central((d) => loss(x, w, view, { ...p, gamma: gamma.map((g, k) => (k === c ? g + d : g)) })));
    const numericDbeta = beta.map((_, c) => central((d) => loss(x, w, view, { ...p, beta: beta.map((b, k) => (k === c ? b + d : b)) })));
    const tol = { rtol: 1e-6, atol: 1e-7 };
    expectClose(analytic.dx, numericDx, tol, 'dx');
    expectClose(analytic.dgamma, numericDgamma, tol, 'dgamma');
    expectClose(analytic.dbeta, numericDbeta, tol, 'dbeta');
  });

  it('batch-statistics dx sums to zero and, with eps = 0, is orthogonal to x_hat per channel', () => {
    // sum(dx * x_hat) = gamma * invstd * sum(dy * x_hat) * (1 - var / (var + eps)): zero only for eps = 0.
    const view = channelView('NCHW', [3, 2, 2, 2]);
    const x = randn(24, 21, 3, 2);
    const dy = randn(24, 22);
    const stats = referenceStats(x, view);
    const { dx } = referenceBackward(x, dy, view, { ...stats, gamma: [1, 2], eps: 0, batchStats: true });
    for (let c = 0; c < 2; c++) {
      let sum = 0;
      let dot = 0;
      for (let o = 0; o < 3; o++)
        for (let i = 0; i < 4; i++) {
          const e = (o * 2 + c) * 4 + i;
          sum += dx[e];
          dot += dx[e] * (x[e] - stats.mean[c]);
        }
      expect(Math.abs(sum)).toBeLessThan(1e-12);
      expect(Math.abs(dot)).toBeLessThan(1e-11);
    }
  });
});
