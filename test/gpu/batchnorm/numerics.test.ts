/**
 * Hostile data: large common offsets, tiny spreads, constant channels, NaN and ±Inf.
 */
import { describe, it, expect } from 'vitest';
import { BatchNorm } from '../../../src/batchnorm/layer.js';
import { channelView, type ChannelView, type Layout } from '../../../src/core/layout.js';
import { referenceBackward, referenceStats, referenceTrainingForward } from '../../../src/batchnorm/reference.js';
import { batchNormPlan } from '../../../src/batchnorm/plan.js';
import { expectClose, randn, rng } from '../../helpers/data.js';
import { testDevice } from '../../helpers/gpu.js';

/** A shape of `layout` with two channels and `count` values per channel. */
function shapeWithCount(layout: Layout, count: number): number[] {
  const half = count / 2; // count is 2 or even
  switch (layout) {
    case 'NC':
      return [count, 2];
    case 'NCL':
      return [2, 2, half];
    case 'NLC':
      return [2, half, 2];
    case 'NCHW':
      return half === 1 ? [2, 2, 1, 1] : [2, 2, 2, half / 2];
    case 'NHWC':
      return half === 1 ? [2, 1, 1, 2] : [2, 2, half / 2, 2];
    case 'NCDHW':
      return half === 1 ? [2, 2, 1, 1, 1] : [2, 2, 2, 1, half / 2];
    case 'NDHWC':
      return half === 1 ? [2, 1, 1, 1, 2] : [2, 2, 1, half / 2, 2];
  }
}

/** Channel 0 ~ N(mean, std²), channel 1 ~ N(-mean / 2, (2 std)²), rounded to float32. */
function offsetData(view: ChannelView, mean: number, std: number, seed: number): Float32Array {
  const z = randn(view.outer * view.channels * view.inner, seed);
  const x = new Float32Array(z.length);
  for (let o = 0; o < view.outer; o++)
    for (let c = 0; c < view.channels; c++)
      for (let i = 0; i < view.inner; i++) {
        const e = (o * view.channels + c) * view.inner + i;
        x[e] = c === 0 ? mean + std * z[e] : -mean / 2 + 2 * std * z[e];
      }
  return x;
}

const LAYOUTS: Layout[] = ['NC', 'NCL', 'NCHW', 'NHWC', 'NCDHW'];
const DATA: [number, number][] = [
  [1e4, 1],
  [1e5, 1],
  [1e6, 1],
  [1, 1e-3],
];
const COUNTS = [2, 1000, 1_000_000];

describe('large offsets: variance relative error <= 1e-3 against float64', () => {
  describe.each(LAYOUTS)('%s', (layout) => {
    it.each(COUNTS)('%i values per channel, every offset', async (count) => {
      const device = await testDevice();
      const shape = shapeWithCount(layout, count);
      const view = channelView(layout, shape);
      const bn = new BatchNorm(device, { numFeatures: 2, layout });
      for (const [k, [mean, std]] of DATA.entries()) {
        const x = offsetData(view, mean, std, 200 + k);
        const y = await bn.forward(x, shape, { training: true });
        const gpu = await bn.getBatchStats();
        const ref = referenceTrainingForward(x, view, { gamma: [1, 1], beta: [0, 0], eps: 1e-5 });
        const what = `mean ${mean}, std ${std}`;
        for (let c = 0; c < 2; c++) {
          if (ref.variance[c] === 0) {
            expect(gpu.variance[c], `${what}: equal values`).toBe(0);
          } else {
            expect(Math.abs(gpu.variance[c] - ref.variance[c]) / ref.variance[c], `${what}: variance of channel ${c}`).toBeLessThanOrEqual(1e-3);
          }
          expect(Math.abs(gpu.mean[c] - ref.mean[c]), `${what}: mean of channel ${c}`).toBeLessThanOrEqual(1e-7 * Math.abs(ref.mean[c]) + 1e-3 * std);
        }
        // The outputs keep the same accuracy: y is O(1), error well below float32's 1e-7 * mean.
        expectClose(y, ref.y, { rtol: 1e-3, atol: 1e-3 }, `${what}: y`);
      }
      bn.destroy();
    });
  });
});

describe('constant channels', () => {
  it.each([0, 3.5, -1e6, 6e4])('value %d: variance exactly 0, x_hat = 0, finite output', async (value) => {
    const device = await testDevice();
    const shape = [3, 2, 5, 7];
    const bn = new BatchNorm(device, { numFeatures: 2, layout: 'NCHW' });
    bn.setState({ gamma: [2, 3], beta: [0.25, -0.5] });
    const x = new Float32Array(3 * 2 * 35).fill(value);
    const y = await bn.forward(x, shape, { training: true });
    const stats = await bn.getBatchStats();
    expect(Array.from(stats.variance)).toEqual([0, 0]);
    expect(Array.from(stats.mean)).toEqual([Math.fround(value), Math.fround(value)]);
    for (let e = 0; e < y.length; e++) expect(y[e]).toBe(Math.floor(e / 35) % 2 === 0 ? 0.25 : -0.5);
    const { dx } = await bn.backward(randn(x.length, 5));
    expect(dx.every(Number.isFinite)).toBe(true);
    bn.destroy();
  });
});

describe('non-finite data', () => {
  // Channel 1 gets a NaN, channel 2 a +Inf, channel 3 a -Inf; channels 0 and 4 stay clean.
  const shape = [4, 5, 6];
  const view = channelView('NCL', shape);
  function poisoned(seed: number): Float32Array {
    const x = randn(4 * 5 * 6, seed, 1, 2);
    x[(2 * 5 + 1) * 6 + 3] = NaN;
    x[(0 * 5 + 2) * 6 + 0] = Infinity;
    x[(3 * 5 + 3) * 6 + 5] = -Infinity;
    return x;
  }
  const channelOf = (e: number) => Math.floor(e / 6) % 5;

  it('makes only the affected channels NaN, forward and backward, and skips the running update', async () => {
    const device = await testDevice();
    const bn = new BatchNorm(device, { numFeatures: 5, layout: 'NCL' });
    await bn.forward(randn(120, 300), shape, { training: true });
    const before = await bn.getState();
    const x = poisoned(301);
    const y = await bn.forward(x, shape, { training: true });
    const stats = await bn.getBatchStats();
    for (const c of [1, 2, 3]) {
      expect(stats.mean[c], `mean of channel ${c}`).toBeNaN();
      expect(stats.variance[c], `variance of channel ${c}`).toBeNaN();
    }
    const clean = referenceStats(x, view);
    for (const c of [0, 4]) expect(stats.variance[c]).toBeCloseTo(clean.variance[c], 4);
    y.forEach((v, e) => expect(Number.isNaN(v), `y[${e}] (channel ${channelOf(e)})`).toBe([1, 2, 3].includes(channelOf(e))));

    const dy = randn(120, 302);
    const { dx } = await bn.backward(dy);
    const refDx = referenceBackward(x, dy, view, { ...clean, gamma: [1, 1, 1, 1, 1], eps: 1e-5, batchStats: true }).dx;
    dx.forEach((v, e) => {
      if ([1, 2, 3].includes(channelOf(e))) expect(v, `dx[${e}]`).toBeNaN();
      else expect(Math.abs(v - refDx[e]), `dx[${e}]`).toBeLessThan(1e-5);
    });

    const after = await bn.getState();
    expect(after, 'the non-finite batch left the running statistics alone').toEqual(before);
    // The next clean batch updates again.
    await bn.forward(randn(120, 303), shape, { training: true });
    expect((await bn.getState()).numBatchesTracked).toBe(2);
    bn.destroy();
  });

  it("nonFiniteBatches: 'update' folds the NaN into the affected channels' running statistics", async () => {
    const device = await testDevice();
    const bn = new BatchNorm(device, { numFeatures: 5, layout: 'NCL', nonFiniteBatches: 'update' });
    const x = poisoned(310);
    await bn.forward(x, shape, { training: true });
    const state = await bn.getState();
    expect(state.numBatchesTracked).toBe(1);
    const clean = referenceStats(x, view);
    for (let c = 0; c < 5; c++) {
      if ([1, 2, 3].includes(c)) {
        expect(state.runningMean[c]).toBeNaN();
        expect(state.runningVar[c]).toBeNaN();
      } else {
        expect(state.runningMean[c]).toBeCloseTo(0.1 * clean.mean[c], 5);
      }
    }
    bn.destroy();
  });

  it('inference with NaN in x affects only those elements of y and dx', async () => {
    const device = await testDevice();
    const bn = new BatchNorm(device, { numFeatures: 5, layout: 'NCL' });
    const x = poisoned(320);
    const y = await bn.forward(x, shape, { training: false });
    y.forEach((v, e) => expect(Number.isFinite(v), `y[${e}]`).toBe(Number.isFinite(x[e])));
    // dx = γ·invstd·dy does not depend on x at inference: finite everywhere, on the reference;
    // dγ sums dy·x̂: not finite in the affected channels only, as the reference's.
    const dy = randn(120, 321);
    const { dx, dgamma } = await bn.backward(dy);
    const ref = referenceBackward(x, dy, view, { mean: [0, 0, 0, 0, 0], variance: [1, 1, 1, 1, 1], gamma: [1, 1, 1, 1, 1], eps: 1e-5, batchStats: false });
    dx.forEach((v, e) => expect(Math.abs(v - ref.dx[e]), `dx[${e}]`).toBeLessThan(1e-5));
    dgamma!.forEach((v, c) => {
      expect(Number.isFinite(v), `dγ[${c}] finite`).toBe(![1, 2, 3].includes(c));
      expect(Number.isFinite(ref.dgamma[c]), `reference dγ[${c}] finite`).toBe(![1, 2, 3].includes(c));
      if (Number.isFinite(v)) expect(Math.abs(v - ref.dgamma[c]), `dγ[${c}]`).toBeLessThan(1e-4);
    });
    bn.destroy();
  });
});

describe('a batch whose partial statistics are finite but overflow when merged', () => {
  // Channel 1 holds +2e19 in its first half and -2e19 in its second: each partial (a chunk of
  // one sign) is finite with M2 = 0, and only their merge overflows (variance 4e38 > float32's
  // 3.4e38). Channels 0 and 2 are clean. Chunked, channels-last scalar and channels-last vec4
  // partials; the whole-batch decision under 'skip' must see the merged statistics.
  const CASES: [Layout, number[]][] = [
    ['NCL', [2, 3, 4096]],
    ['NC', [8192, 3]],
    ['NC', [131072, 4]],
  ];
  function splitData(view: ChannelView, seed: number): Float32Array {
    const x = randn(view.outer * view.channels * view.inner, seed, 1, 2);
    const count = view.outer * view.inner;
    for (let o = 0; o < view.outer; o++)
      for (let i = 0; i < view.inner; i++) x[(o * view.channels + 1) * view.inner + i] = o * view.inner + i < count / 2 ? 2e19 : -2e19;
    return x;
  }

  describe.each(CASES)('%s %j', (layout, shape) => {
    const view = channelView(layout, shape);
    const channelOf = (e: number) => Math.floor(e / view.inner) % view.channels;

    for (const nonFiniteBatches of ['skip', 'update'] as const) {
      it(`nonFiniteBatches '${nonFiniteBatches}': channel 1 is NaN, the others on the reference; the running statistics ${nonFiniteBatches === 'skip' ? 'skip the batch' : 'take it'}`, async () => {
        const device = await testDevice();
        const plan = batchNormPlan(
          device,
          view,
          { dtype: 'float32', activation: 'none', eps: 1e-5, momentum: 0.1, nonFiniteBatches, runningVariance: 'unbiased' },
          { batchStats: true, updateRunning: true },
          {},
        );
        expect(plan.chunks, 'partials per channel: the overflow happens in a merge').toBeGreaterThan(1);
        const C = view.channels;
        const bn = new BatchNorm(device, { numFeatures: C, layout, nonFiniteBatches });
        await bn.forward(randn(view.outer * C * view.inner, 400), shape, { training: true });
        const before = await bn.getState();
        const x = splitData(view, 401);
        const ref = referenceTrainingForward(x, view, { gamma: new Array(C).fill(1), beta: new Array(C).fill(0), eps: 1e-5 });
        expect(ref.variance[1], 'float64 variance of channel 1: beyond float32').toBeGreaterThan(3.4028234663852886e38);
        const y = await bn.forward(x, shape, { training: true });
        const stats = await bn.getBatchStats();
        expect(stats.mean[1]).toBeNaN();
        expect(stats.variance[1]).toBeNaN();
        for (const c of [0, 2]) expect(stats.variance[c], `variance ${c}`).toBeCloseTo(ref.variance[c], 4);
        let finiteInChannel1 = 0;
        let cleanError = 0;
        y.forEach((v, e) => {
          if (channelOf(e) === 1) finiteInChannel1 += Number(!Number.isNaN(v));
          else cleanError = Math.max(cleanError, Math.abs(v - ref.y[e]));
        });
        expect(finiteInChannel1, 'elements of y in channel 1 that are not NaN').toBe(0);
        expect(cleanError, 'largest |y - reference| in channels 0 and 2').toBeLessThan(1e-5);
        const after = await bn.getState();
        if (nonFiniteBatches === 'skip') {
          expect(after, 'the batch left the running statistics and the count alone').toEqual(before);
        } else {
          expect(after.numBatchesTracked).toBe(before.numBatchesTracked + 1);
          expect(after.runningMean[1]).toBeNaN();
          expect(after.runningVar[1]).toBeNaN();
          const n = view.outer * view.inner;
          for (const c of [0, 2]) {
            expect(after.runningMean[c], `running mean ${c}`).toBeCloseTo(0.9 * before.runningMean[c] + 0.1 * ref.mean[c], 5);
            expect(after.runningVar[c], `running variance ${c}`).toBeCloseTo(0.9 * before.runningVar[c] + (0.1 * ref.variance[c] * n) / (n - 1), 5);
          }
        }
        // The next clean batch counts.
        await bn.forward(randn(view.outer * C * view.inner, 402), shape, { training: true });
        expect((await bn.getState()).numBatchesTracked).toBe(after.numBatchesTracked + 1);
        bn.destroy();
      });
    }
  });
});

describe('getBatchStats', () => {
  it('reports the running statistics after an inference pass', async () => {
    const device = await testDevice();
    const bn = new BatchNorm(device, { numFeatures: 3, layout: 'NC' });
    bn.setState({ runningMean: [1, 2, 3], runningVar: [0.5, 1.5, 2.5] });
    const next = rng(5);
    await bn.forward(Float32Array.from({ length: 12 }, next), [4, 3], { training: false });
    const stats = await bn.getBatchStats();
    expect(Array.from(stats.mean)).toEqual([1, 2, 3]);
    expect(Array.from(stats.variance)).toEqual([0.5, 1.5, 2.5]);
    bn.destroy();
  });
});

describe('the statistics carry the sum of squared deviations n·σ², so float32 bounds that, not σ²', () => {
  // Channel 0 alternates ±1e18 (σ² = 1e36, finite in float32); channel 1 is clean. Over 100
  // values n·σ² = 1e38 fits float32; over 1,000 it is 1e39 and overflows: NaN statistics, and
  // under the default 'skip' a batch that does not count.
  it.each([
    [100, true],
    [1000, false],
  ])('%i values per channel: finite %s', async (n, finite) => {
    const device = await testDevice();
    const x = new Float32Array(2 * n);
    for (let i = 0; i < n; i++) [x[2 * i], x[2 * i + 1]] = [i % 2 ? 1e18 : -1e18, i % 2 ? 1 : -1];
    const view = channelView('NC', [n, 2]);
    const ref = referenceTrainingForward(x, view, { gamma: [1, 1], beta: [0, 0], eps: 1e-5 });
    const bn = new BatchNorm(device, { numFeatures: 2, layout: 'NC' });
    const y = await bn.forward(x, [n, 2], { training: true });
    const stats = await bn.getBatchStats();
    const state = await bn.getState();
    expect(stats.variance[1]).toBeCloseTo(ref.variance[1], 6);
    if (finite) {
      expect(stats.variance[0] / ref.variance[0], 'variance of channel 0 / reference').toBeCloseTo(1, 5);
      y.forEach((v, e) => expect(Math.abs(v - ref.y[e]), `y[${e}]`).toBeLessThan(1e-5));
      expect(state.numBatchesTracked).toBe(1);
    } else {
      expect(stats.variance[0]).toBeNaN();
      expect(state.numBatchesTracked, 'the overflowing batch does not count').toBe(0);
      expect(Array.from(state.runningVar)).toEqual([1, 1]);
    }
    bn.destroy();
  });
});
