/**
 * Hostile data for the normalization family, float32: large common offsets (up to 1e6 with
 * std 1: the variance within 1e-3 relative of float64's, RMSNorm's mean(x²) likewise), and
 * NaN/±Inf in one (sample, group): that group's outputs NaN, every other group's bit for bit
 * those of the clean data, and InstanceNorm's running statistics skipped or updated as
 * `nonFiniteBatches` says.
 */
import { describe, expect, it } from 'vitest';
import { InstanceNorm, RMSNorm } from '../../../src/normalization/layer.js';
import { referenceInstanceNorm, referenceInstanceNormRunningStats } from '../../../src/normalization/reference.js';
import { gaussian } from '../../../support/random.js';
import { expectClose, randn, rng } from '../../helpers/data.js';
import { makeLayer, meanSquareOf, meanVarOf, paramCount, partition, referenceForward, runningOf, type AnyNorm, type Case, type Kind } from '../../helpers/family.js';
import { testDevice } from '../../helpers/gpu.js';

const f32 = { eps: 1e-5, activation: 'none', dtype: 'float32', affine: true } as const;

/** A case of `kind` with two groups of `count` elements each (N = 1 or 2 samples). */
function twoGroups(kind: Kind, count: number): Case {
  switch (kind) {
    case 'layer':
      return { ...f32, kind, shape: [2, count], normalizedShape: [count] };
    case 'rms':
      return { ...f32, kind, shape: [2, count], normalizedShape: [count], eps: 2 ** -23 };
    case 'group':
      // Channels first, 4 channels in 2 groups: count / 2 positions per channel.
      return { ...f32, kind, shape: [1, 4, count / 2], numGroups: 2, layout: 'NCL' };
    case 'instance':
      return { ...f32, kind, shape: [1, 2, count], layout: 'NCL' };
  }
}

/** Group 0 ~ N(mean, std²), group 1 ~ N(−mean/2, (2·std)²), rounded to float32. */
function offsetData(c: Case, mean: number, std: number, seed: number): Float32Array {
  const { group } = partition(c);
  const next = rng(seed);
  return Float32Array.from(group, (k) => (k % 2 === 0 ? mean + std * gaussian(next) : -mean / 2 + 2 * std * gaussian(next)));
}

const KINDS: Kind[] = ['layer', 'rms', 'group', 'instance'];
const OFFSETS = [1e4, 1e5, 1e6];
const COUNTS = [2, 1000, 65536];

describe('large offsets, std 1: relative error of the variance (RMSNorm: mean(x²)) <= 1e-3 against float64', () => {
  it.each(KINDS.flatMap((kind) => COUNTS.map((count) => [kind, count] as const)))('%s, %i values per group, offsets 1e4, 1e5, 1e6', async (kind, count) => {
    const device = await testDevice();
    const c = twoGroups(kind, count);
    const layer = makeLayer(device, c);
    for (const [k, offset] of OFFSETS.entries()) {
      const x = offsetData(c, offset, 1, 2000 + k);
      const y = await layer.forward(x, c.shape);
      const ref = referenceForward(c, x, [], []);
      const what = `${kind} offset ${offset}, ${count} per group`;
      if (kind === 'rms') {
        const meanSquare = meanSquareOf(await (layer as RMSNorm).getStats());
        for (let g = 0; g < 2; g++) {
          expect(Math.abs(meanSquare[g] - ref.stats.variance[g]) / ref.stats.variance[g], `${what}: mean(x²) of row ${g}`).toBeLessThanOrEqual(1e-3);
        }
        // y = x/sqrt(mean(x²) + eps): a relative error e of mean(x²) is e/2 in y.
        expectClose(y, ref.y, { rtol: 5e-4, atol: 1e-6 }, `${what}: y`);
        continue;
      }
      const stats = meanVarOf(await layer.getStats());
      for (let g = 0; g < 2; g++) {
        const v = ref.stats.variance[g];
        if (v === 0) expect(stats.variance[g], `${what}: equal values`).toBe(0);
        else expect(Math.abs(stats.variance[g] - v) / v, `${what}: variance of group ${g} (${v})`).toBeLessThanOrEqual(1e-3);
        expect(Math.abs(stats.mean[g] - ref.stats.mean[g]), `${what}: mean of group ${g}`).toBeLessThanOrEqual(1e-7 * Math.abs(ref.stats.mean[g]) + 1e-3);
      }
      // y is O(1): its error stays far below float32's spacing at the offset (0.0625 at 1e6).
      expectClose(y, ref.y, { rtol: 1e-3, atol: 1e-3 }, `${what}: y`);
    }
    layer.destroy();
  });
});

/** A case of `kind` with six groups (float32, γ and β learnable). */
function sixGroups(kind: Kind): Case {
  switch (kind) {
    case 'layer':
      return { ...f32, kind, shape: [6, 3, 5], normalizedShape: [3, 5] };
    case 'rms':
      return { ...f32, kind, shape: [6, 15], normalizedShape: [15], eps: 2 ** -23 };
    case 'group':
      return { ...f32, kind, shape: [2, 3, 4, 6], numGroups: 3, layout: 'NHWC' }; // 6 = 2 samples × 3 groups of 2 channels
    case 'instance':
      return { ...f32, kind, shape: [2, 3, 7], layout: 'NCL' };
  }
}

/** NaN in group 1, +Inf in group 3, −Inf in group 4 (first element of each that `partition` lists), clean elsewhere. */
function poisonedPair(c: Case, seed: number) {
  const { group } = partition(c);
  const clean = randn(group.length, seed, 1, 2);
  const x = clean.slice();
  const bad = new Map<number, number>([
    [1, NaN],
    [3, Infinity],
    [4, -Infinity],
  ]);
  for (const [k, value] of bad) {
    // A position in the middle of the group, not its first element (which a shifted reduction may single out).
    const members = Array.from(group.keys()).filter((e) => group[e] === k);
    x[members[Math.floor(members.length / 2)]] = value;
  }
  return { clean, x, group, bad: new Set(bad.keys()) };
}

function setRandomAffine(layer: AnyNorm, c: Case, seed: number): void {
  const P = paramCount(c);
  const state: Record<string, Float32Array> = { gamma: randn(P, seed, 1, 0.5) };
  if (c.kind !== 'rms') state.beta = randn(P, seed + 1);
  (layer as { setState(s: object): void }).setState(state);
}

describe('NaN and ±Inf in one (sample, group)', () => {
  it.each(KINDS)("%s: that group's y and dx are NaN; every other group's are those of the clean data, bit for bit", async (kind) => {
    const device = await testDevice();
    const c = sixGroups(kind);
    const layer = makeLayer(device, c);
    setRandomAffine(layer, c, 2100);
    const { clean, x, group, bad } = poisonedPair(c, 2101);
    const dy = randn(x.length, 2102);
    const yClean = await layer.forward(clean, c.shape);
    const dxClean = (await layer.backward(dy)).dx;
    const y = await layer.forward(x, c.shape);
    const { dx } = await layer.backward(dy);
    const wrong: string[] = [];
    for (let e = 0; e < x.length; e++) {
      const k = group[e];
      if (bad.has(k)) {
        if (!Number.isNaN(y[e])) wrong.push(`y[${e}] of poisoned group ${k} is ${y[e]}, expected NaN`);
        if (!Number.isNaN(dx[e])) wrong.push(`dx[${e}] of poisoned group ${k} is ${dx[e]}, expected NaN`);
      } else {
        if (!Object.is(y[e], yClean[e])) wrong.push(`y[${e}] of clean group ${k} is ${y[e]}, ${yClean[e]} without the poison`);
        if (!Object.is(dx[e], dxClean[e])) wrong.push(`dx[${e}] of clean group ${k} is ${dx[e]}, ${dxClean[e]} without the poison`);
      }
    }
    expect(wrong.slice(0, 10), `${wrong.length} wrong elements`).toEqual([]);
    // The next clean batch is normalized as before: nothing non-finite stays behind.
    expect(Array.from(await layer.forward(clean, c.shape))).toEqual(Array.from(yClean));
    layer.destroy();
  });
});

describe("InstanceNorm's running statistics and a non-finite training batch", () => {
  const shape = [2, 4, 6];
  const layout = 'NCL' as const;
  /** NaN in (sample 1, channel 1), +Inf in (sample 0, channel 2); channels 0 and 3 clean. */
  function poisoned(seed: number): Float32Array {
    const x = randn(2 * 4 * 6, seed, 1, 2);
    x[(1 * 4 + 1) * 6 + 2] = NaN;
    x[(0 * 4 + 2) * 6 + 4] = Infinity;
    return x;
  }

  it("'skip' (the default): the running statistics are left as they were, bit for bit; the next clean batch updates them", async () => {
    const device = await testDevice();
    const inorm = new InstanceNorm(device, { numFeatures: 4, layout, trackRunningStats: true, momentum: 0.3 });
    expect(inorm.nonFiniteBatches).toBe('skip');
    await inorm.forward(randn(48, 2200, 2, 1.5), shape, { training: true });
    const before = runningOf(await inorm.getState());
    const y = await inorm.forward(poisoned(2201), shape, { training: true });
    expect(y.some(Number.isNaN), 'the batch itself normalizes to NaN where poisoned').toBe(true);
    expect(runningOf(await inorm.getState()), 'the non-finite batch left the running statistics alone').toEqual(before);
    const next = randn(48, 2202, -1, 0.5);
    await inorm.forward(next, shape, { training: true });
    const expected = referenceInstanceNormRunningStats(before, referenceInstanceNorm(next, shape, { layout, eps: 1e-5 }), 0.3);
    const after = runningOf(await inorm.getState());
    expectClose(after.runningMean, expected.runningMean, { rtol: 1e-5, atol: 1e-6 }, 'running mean after the next clean batch');
    expectClose(after.runningVar, expected.runningVar, { rtol: 1e-5, atol: 1e-6 }, 'running var after the next clean batch');
    inorm.destroy();
  });

  it("'update': the NaN is folded into the affected channels; the clean channels update as the reference", async () => {
    const device = await testDevice();
    const inorm = new InstanceNorm(device, { numFeatures: 4, layout, trackRunningStats: true, momentum: 0.3, nonFiniteBatches: 'update' });
    await inorm.forward(randn(48, 2210, 2, 1.5), shape, { training: true });
    const before = runningOf(await inorm.getState());
    const x = poisoned(2211);
    await inorm.forward(x, shape, { training: true });
    const state = runningOf(await inorm.getState());
    const expected = referenceInstanceNormRunningStats(before, referenceInstanceNorm(x, shape, { layout, eps: 1e-5 }), 0.3);
    for (const ch of [1, 2]) {
      expect(Number.isFinite(state.runningMean[ch]), `running mean of channel ${ch} (${state.runningMean[ch]})`).toBe(false);
      expect(state.runningVar[ch], `running var of channel ${ch}`).toBeNaN();
    }
    for (const ch of [0, 3]) {
      expect(Math.abs(state.runningMean[ch] - expected.runningMean[ch]), `running mean of channel ${ch}`).toBeLessThanOrEqual(1e-5 * Math.abs(expected.runningMean[ch]) + 1e-6);
      expect(Math.abs(state.runningVar[ch] - expected.runningVar[ch]), `running var of channel ${ch}`).toBeLessThanOrEqual(1e-5 * expected.runningVar[ch] + 1e-6);
    }
    inorm.destroy();
  });
});
