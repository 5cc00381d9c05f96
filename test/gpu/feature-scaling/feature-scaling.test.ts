/**
 * FeatureScaler (min-max and standardization, adapted over several batches) against the float64
 * reference, on the notes' income/height data and on other layouts.
 *
 * Tolerances: statistics in float32 by Welford/Chan relative to a shift: rtol 1e-5. Scaled
 * values: |error| ≤ 1e-5·(1 + |y|) plus the float32 rounding of x − offset relative to the
 * spread, 4u·(|x| + |offset|)/spread.
 */
import { describe, expect, it } from 'vitest';
import { FeatureScaler } from '../../../src/feature-scaling/layer.js';
import { channelView, type Layout } from '../../../src/core/layout.js';
import { referenceFeatureScaling } from '../../../src/feature-scaling/reference.js';
import { expectClose, randn } from '../../helpers/data.js';
import { testDevice } from '../../helpers/gpu.js';

const U = 2 ** -24;

/** The notes' people: income ~ N(3000, 400²) dollars, height ~ N(69, 3²) inches, rows of [income, height]. */
function people(n: number, seed: number): Float32Array {
  const income = randn(n, seed, 3000, 400);
  const height = randn(n, seed + 1, 69, 3);
  return Float32Array.from({ length: 2 * n }, (_, i) => (i % 2 === 0 ? income[i >> 1] : height[i >> 1]));
}

function scaledTol(x: ArrayLike<number>, ref: ReturnType<typeof referenceFeatureScaling>, view: ReturnType<typeof channelView>, method: string) {
  const atol = new Float64Array(x.length);
  for (let e = 0; e < x.length; e++) {
    const c = Math.floor(e / view.inner) % view.channels;
    const offset = method === 'min-max' ? ref.min[c] : ref.mean[c];
    const spread = (method === 'min-max' ? ref.max[c] - ref.min[c] : Math.sqrt(ref.variance[c])) || 1;
    atol[e] = 1e-5 * (1 + Math.abs(ref.y[e])) + (4 * U * (Math.abs(x[e]) + Math.abs(offset))) / spread;
  }
  return { rtol: 0, atol };
}

describe.each(['min-max', 'standardize'] as const)('%s', (method) => {
  it("adapts over three batches of the notes' people and scales like the reference", async () => {
    const device = await testDevice();
    const batches = [people(3000, 1), people(1700, 3), people(5, 5)];
    const all = Float32Array.from(batches.flatMap((b) => Array.from(b)));
    const n = all.length / 2;
    const scaler = new FeatureScaler(device, { numFeatures: 2, method });
    expect(scaler.adapted).toBe(false);
    for (const b of batches) await scaler.adapt(b, [b.length / 2, 2]);
    const view = channelView('NC', [n, 2]);
    const ref = referenceFeatureScaling(all, view, method, 1);

    const stats = await scaler.getStats();
    expect(stats.count).toBe(n);
    expectClose(stats.min, ref.min, { rtol: 0, atol: 0 }, 'min');
    expectClose(stats.max, ref.max, { rtol: 0, atol: 0 }, 'max');
    expectClose(stats.mean, ref.mean, { rtol: 1e-6, atol: 0 }, 'mean');
    expectClose(stats.variance, ref.variance, { rtol: 1e-5, atol: 0 }, 'variance');

    const y = await scaler.transform(all, [n, 2]);
    expectClose(y, ref.y, scaledTol(all, ref, view, method), 'scaled');
    if (method === 'min-max') {
      expect(Math.min(...y)).toBe(0);
      expect(Math.max(...y)).toBeCloseTo(1, 6);
    }
    const back = await scaler.inverse(y, [n, 2]);
    // Inverse: x = y·spread + offset, rounding relative to |x|.
    expectClose(back, all, { rtol: 8 * U, atol: 2e-4 }, 'inverse(transform(x))');
    scaler.destroy();
  });
});

describe('layouts, options and edge cases', () => {
  const cases: [Layout, number[]][] = [
    ['NHWC', [3, 5, 7, 6]],
    ['NCHW', [4, 3, 9, 8]], // inner % 4 == 0: the vectorized normalize path
    ['NCL', [5, 4, 3]],
  ];
  for (const [layout, shape] of cases) {
    it(`features are the C axis of ${layout} [${shape.join(', ')}], population variance with correction 0`, async () => {
      const device = await testDevice();
      const view = channelView(layout, shape);
      const x = randn(view.outer * view.channels * view.inner, 7, 1e4, 3); // a large common offset
      const scaler = new FeatureScaler(device, { numFeatures: view.channels, method: 'standardize', layout, correction: 0 });
      await scaler.adapt(x, shape);
      const ref = referenceFeatureScaling(x, view, 'standardize', 0);
      expectClose((await scaler.getStats()).variance, ref.variance, { rtol: 1e-4, atol: 0 }, 'variance');
      expectClose(await scaler.transform(x, shape), ref.y, scaledTol(x, ref, view, 'standardize'), 'scaled');
      scaler.destroy();
    });
  }

  it('a constant feature is shifted, not divided by zero; reset() forgets every batch', async () => {
    const device = await testDevice();
    const x = Float32Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? 5 : i));
    for (const method of ['min-max', 'standardize'] as const) {
      const scaler = new FeatureScaler(device, { numFeatures: 2, method });
      await scaler.adapt(x, [10, 2]);
      const y = await scaler.transform(x, [10, 2]);
      for (let i = 0; i < 20; i += 2) expect(y[i]).toBe(0);
      expect(y.every(Number.isFinite)).toBe(true);
      scaler.reset();
      expect(scaler.adapted).toBe(false);
      await scaler.adapt(Float32Array.from({ length: 4 }, (_, i) => i), [2, 2]);
      expect((await scaler.getStats()).count).toBe(2);
      scaler.destroy();
    }
  });

  it('min-max over a feature whose max − min exceeds 2^126 or overflows float32 (both ends finite): NaN both ways, the other features on the reference', async () => {
    const device = await testDevice();
    // Feature 0 spans [-3e38, 3e38] (range 6e38 > 3.4e38: the slope 1 / 6e38 is not a normal
    // float32); the others are ordinary. NC, and NHWC with C = 4 (the vec4 walk).
    for (const [layout, C] of [['NC', 2], ['NHWC', 4]] as const) {
      const n = 6;
      const shape = layout === 'NC' ? [n, C] : [1, 2, 3, C];
      const view = channelView(layout, shape);
      // Feature 0's range overflows in NC; in NHWC it is 1.2e38 (finite, but 1 / 1.2e38 is subnormal).
      const wide = layout === 'NC' ? [-3e38, 3e38, 0, 1.5e38, -1e38, 2.5e38] : [-6e37, 6e37, 0, 1.5e37, -1e37, 2.5e37];
      const x = Float32Array.from({ length: n * C }, (_, e) => (e % C === 0 ? wide[Math.floor(e / C)] : (e % 7) - 3));
      const scaler = new FeatureScaler(device, { numFeatures: C, method: 'min-max', layout });
      await scaler.adapt(x, shape);
      const ref = referenceFeatureScaling(x, view, 'min-max');
      const y = await scaler.transform(x, shape);
      const back = await scaler.inverse(y, shape);
      y.forEach((v, e) => {
        if (e % C === 0) expect(v, `transform of the wide feature, element ${e}`).toBeNaN();
        else expect(Math.abs(v - ref.y[e]), `transform, element ${e}`).toBeLessThan(4 * U);
      });
      back.forEach((v, e) => {
        if (e % C === 0) expect(v, `inverse of the wide feature, element ${e}`).toBeNaN();
        else expect(Math.abs(v - x[e]), `inverse, element ${e}`).toBeLessThan(1e-5);
      });
      scaler.destroy();
    }
  });

  it.each(['min-max', 'standardize'] as const)('%s: a NaN in a feature makes its statistics and outputs NaN, as in the reference; the other feature is untouched', async (method) => {
    const device = await testDevice();
    const scaler = new FeatureScaler(device, { numFeatures: 2, method });
    // Feature 0 holds a NaN (in the first batch, in the middle, and alone in the second batch); feature 1 does not.
    const batches = [Float32Array.of(1, 10, NaN, 20, 5, 30), Float32Array.of(NaN, 40)];
    for (const b of batches) await scaler.adapt(b, [b.length / 2, 2]);
    const all = Float32Array.of(1, 10, NaN, 20, 5, 30, NaN, 40);
    const view = channelView('NC', [4, 2]);
    const ref = referenceFeatureScaling(all, view, method);
    const stats = await scaler.getStats();
    expect([stats.min[0], stats.max[0], stats.mean[0]].map(Number.isNaN), 'feature 0').toEqual([true, true, true]);
    expect([ref.min[0], ref.max[0]].map(Number.isNaN), 'the reference agrees').toEqual([true, true]);
    expect([stats.min[1], stats.max[1]]).toEqual([10, 40]);
    const x = Float32Array.of(0, 15, 3, 25);
    const y = await scaler.transform(x, [2, 2]);
    expect([y[0], y[2]].every(Number.isNaN), 'feature 0 scaled').toBe(true);
    const spread = method === 'min-max' ? 30 : Math.sqrt(ref.variance[1]);
    const offset = method === 'min-max' ? 10 : ref.mean[1];
    expectClose([y[1], y[3]], [(15 - offset) / spread, (25 - offset) / spread], { rtol: 1e-5, atol: 1e-6 }, 'feature 1 scaled');
    scaler.destroy();
  });

  it('refuses bad arguments, naming them', async () => {
    const device = await testDevice();
    expect(() => new FeatureScaler(device, { numFeatures: 2, method: 'zscore' as never })).toThrow(/options.method must be 'min-max' or 'standardize'; got the string 'zscore'/);
    expect(() => new FeatureScaler(device, { numFeatures: 2, method: 'min-max', correction: 2 as never })).toThrow(/options.correction must be 0 or 1; got 2/);
    expect(() => new FeatureScaler(device, { numFeatures: '2' as never, method: 'min-max' })).toThrow(/options.numFeatures must be a positive integer; got the string '2'$/);
    expect(() => new FeatureScaler(device, { numFeatures: 2, method: 'min-max', ddof: 0 } as never)).toThrow(
      /^options.ddof is not an option of FeatureScaler \(numpy's ddof is correction here\); expected one of numFeatures, method, layout, correction, label, state$/,
    );
    expect(() => new FeatureScaler(device, { numFeatures: 2, method: 'min-max', clip: true } as never)).toThrow(/^options.clip is not an option of FeatureScaler; expected one of/);
    const scaler = new FeatureScaler(device, { numFeatures: 2, method: 'min-max' });
    await expect(scaler.transform(new Float32Array(4), [2, 2])).rejects.toThrow(/transform needs adapt\(\) on some data first/);
    await expect(scaler.adapt(new Float32Array(6), [2, 3])).rejects.toThrow(/shape has 3 features on the C axis of layout 'NC'; numFeatures is 2/);
    await expect(scaler.adapt(new Float32Array(5), [2, 2])).rejects.toThrow(/data must have 4 elements for shape \[2, 2\]; got 5/);
    scaler.destroy();
  });
});

describe('more than 2^24 samples', () => {
  it('are counted exactly and weighted by their exact count', async () => {
    const device = await testDevice();
    const scaler = new FeatureScaler(device, { numFeatures: 1, method: 'standardize', correction: 0 });
    // Four batches of 2^22 constant values 1, 2, 3, 4, then 5 of 100: N = 2^24 + 5, which a
    // float32 count cannot hold (it rounds to 2^24 + 4), and a float32 count stuck at 2^24 would
    // take in the last batch with the wrong weight.
    const sizes = [2 ** 22, 2 ** 22, 2 ** 22, 2 ** 22, 5];
    const values = [1, 2, 3, 4, 100];
    for (let b = 0; b < sizes.length; b++) await scaler.adapt(new Float32Array(sizes[b]).fill(values[b]), [sizes[b], 1]);
    const N = sizes.reduce((a, b) => a + b, 0);
    const mean = sizes.reduce((s, n, b) => s + n * values[b], 0) / N;
    const variance = sizes.reduce((s, n, b) => s + n * (values[b] - mean) ** 2, 0) / N;
    const stats = await scaler.getStats();
    expect(stats.count).toBe(2 ** 24 + 5);
    expectClose(stats.mean, [mean], { rtol: 1e-6, atol: 0 }, 'mean');
    expectClose(stats.variance, [variance], { rtol: 1e-5, atol: 0 }, 'variance');
    // One more sample moves the count by exactly one.
    await scaler.adapt(Float32Array.of(mean), [1, 1]);
    expect((await scaler.getStats()).count).toBe(2 ** 24 + 6);
    scaler.destroy();
  });
});
