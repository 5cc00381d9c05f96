/**
 * The running-statistics update, running = (1 − f)·running + f·batch, is exact to float32
 * rounding of its own terms: replayed in float64 from the GPU's previous running values and the
 * batch statistics the GPU itself computed, after every step, over batches whose variances span
 * 16 decades and whose means span ±1e4, for every momentum (and the cumulative average).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BatchNorm } from '../../../src/batchnorm/layer.js';
import { randn } from '../../helpers/data.js';
import { testDevice } from '../../helpers/gpu.js';

const STEPS = 100;
const seed = Number(process.env.FC_SEED ?? 20261126);
const runs = Number(process.env.FC_RUNS ?? 6);

/** A [rows, C] batch whose channel c has mean means[c] and standard deviation stds[c]. */
function batch(rows: number, means: number[], stds: number[], seed: number): Float32Array {
  const C = means.length;
  const z = randn(rows * C, seed);
  return Float32Array.from(z, (v, e) => means[e % C] + stds[e % C] * v);
}

describe('running statistics', () => {
  it('a large drop keeps full precision: N(1, 0.001²) at momentum 1 (and the first step of the cumulative average)', async () => {
    const device = await testDevice();
    for (const momentum of [1, null]) {
      for (const mean of [1, 0]) {
        const bn = new BatchNorm(device, { numFeatures: 4, layout: 'NC', momentum });
        const rows = 65536;
        const x = batch(rows, [mean, mean, mean, mean], [1e-3, 1e-3, 1e-3, 1e-3], 11);
        await bn.forward(x, [rows, 4], { training: true });
        const { variance } = await bn.getBatchStats();
        const { runningVar } = await bn.getState();
        for (let c = 0; c < 4; c++) {
          const unbiased = (variance[c] * rows) / (rows - 1);
          expect(Math.abs(runningVar[c] - unbiased) / unbiased, `momentum ${momentum}, mean ${mean}, channel ${c}: ${runningVar[c]} vs ${unbiased}`).toBeLessThan(1e-6);
        }
        bn.destroy();
      }
    }
  });

  it(`property: ${STEPS} steps of random batches (momentum in [1e-7, 1] or null), every step replayed in float64 (seed ${seed}, ${runs} runs)`, async () => {
    const device = await testDevice();
    const C = 3;
    const rows = 16;
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(fc.double({ min: 1e-7, max: 1, noNaN: true }), fc.constant(1), fc.constant(null)),
        fc.constantFrom<'unbiased' | 'biased'>('unbiased', 'biased'),
        fc.integer({ min: 1, max: 2 ** 30 }),
        async (momentum, runningVariance, dataSeed) => {
          const bn = new BatchNorm(device, { numFeatures: C, layout: 'NC', momentum, runningVariance });
          const random = fc.sample(fc.tuple(fc.double({ min: -8, max: 8, noNaN: true }), fc.double({ min: -1e4, max: 1e4, noNaN: true })), {
            seed: dataSeed,
            numRuns: STEPS * C,
          });
          let before = await bn.getState();
          try {
            for (let step = 0; step < STEPS; step++) {
              const spec = random.slice(step * C, step * C + C);
              // Variance log-uniform in [1e-8, 1e8]: std = 10^(u / 2), u in [-8, 8].
              const x = batch(rows, spec.map(([, m]) => m), spec.map(([u]) => 10 ** (u / 2)), dataSeed + step);
              await bn.forward(x, [rows, C], { training: true });
              const stats = await bn.getBatchStats();
              const after = await bn.getState();
              const f = momentum ?? 1 / (before.numBatchesTracked + 1);
              for (let c = 0; c < C; c++) {
                const batchVar = runningVariance === 'unbiased' ? (stats.variance[c] * rows) / (rows - 1) : stats.variance[c];
                const meanReplay = (1 - f) * before.runningMean[c] + f * stats.mean[c];
                const varReplay = (1 - f) * before.runningVar[c] + f * batchVar;
                const where = `step ${step}, channel ${c}, momentum ${momentum}`;
                expect(Math.abs(after.runningVar[c] - varReplay), `${where}: running variance ${after.runningVar[c]} vs ${varReplay}`).toBeLessThanOrEqual(1e-5 * Math.abs(varReplay));
                expect(Math.abs(after.runningMean[c] - meanReplay), `${where}: running mean ${after.runningMean[c]} vs ${meanReplay}`).toBeLessThanOrEqual(
                  1e-6 * (Math.abs(before.runningMean[c]) + Math.abs(stats.mean[c])),
                );
              }
              expect(after.numBatchesTracked).toBe(before.numBatchesTracked + 1);
              before = after;
            }
          } finally {
            bn.destroy();
          }
        },
      ),
      { seed, numRuns: runs },
    );
  });
});
