/**
 * Property tests (fast-check): random layouts, shapes, eps, momentum, training flag, dtype and
 * data scales; the GPU's forward (y, running statistics) and backward (dx, dgamma, dbeta) must
 * match the float64 reference within the stated tolerances (test/helpers/tolerances.ts).
 *
 * CI runs 240 cases from a fixed seed; FC_SEED and FC_RUNS explore others.
 */
import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { BatchNorm, type DType } from '../../../src/batchnorm/layer.js';
import { fromFloat16Bits, toFloat16Bits } from '../../../src/core/float16.js';
import { LAYOUTS, channelAxis, channelView, viewSize, type Layout } from '../../../src/core/layout.js';
import {
  referenceBackward,
  referenceInference,
  referenceStats,
  referenceTrainingForward,
  referenceUpdateRunningStats,
} from '../../../src/batchnorm/reference.js';
import { expectClose, randn, type Tolerance } from '../../helpers/data.js';
import { testDevice } from '../../helpers/gpu.js';
import { STATS_TOL, dgammaTolerance, dxTolerance, halfTolerance, sumTolerance, yTolerance } from '../../helpers/tolerances.js';

const RUNS = Number(process.env.FC_RUNS ?? 240);
const SEED = Number(process.env.FC_SEED ?? 20261123);

const RANK: Record<Layout, number> = { NC: 2, NCL: 3, NLC: 3, NCHW: 4, NHWC: 4, NCDHW: 5, NDHWC: 5 };

const caseArb = fc
  .record({
    layout: fc.constantFrom(...LAYOUTS),
    dims: fc.array(fc.integer({ min: 1, max: 9 }), { minLength: 5, maxLength: 5 }),
    channels: fc.integer({ min: 1, max: 6 }),
    eps: fc.double({ min: 1e-6, max: 0.1, noNaN: true }),
    momentum: fc.option(fc.double({ min: 0, max: 1, noNaN: true }), { nil: null }),
    training: fc.boolean(),
    trackRunningStats: fc.boolean(),
    dtype: fc.constantFrom<DType>('float32', 'float32', 'float16'),
    offset: fc.constantFrom(0, 1, -50, 1e3, -1e4),
    scale: fc.constantFrom(1e-2, 1, 30),
    seed: fc.integer({ min: 1, max: 1e9 }),
  })
  .map((p) => {
    const shape = p.dims.slice(0, RANK[p.layout]);
    shape[channelAxis(p.layout)] = p.channels;
    return { ...p, shape };
  });

type Case = typeof caseArb extends fc.Arbitrary<infer T> ? T : never;

/** Rounds through the layer's storage type, as the GPU sees the data. */
function stored(values: Float32Array, dtype: DType): Float32Array {
  return dtype === 'float16' ? fromFloat16Bits(toFloat16Bits(values)) : values;
}

function widen(tol: Tolerance, dtype: DType): Tolerance {
  return dtype === 'float16' ? halfTolerance(tol) : tol;
}

async function checkCase(device: GPUDevice, p: Case): Promise<void> {
  const view = channelView(p.layout, p.shape);
  const C = view.channels;
  const n = viewSize(view);
  const count = view.outer * view.inner;
  const bn = new BatchNorm(device, {
    numFeatures: C,
    layout: p.layout,
    eps: p.eps,
    momentum: p.momentum,
    trackRunningStats: p.trackRunningStats,
    dtype: p.dtype,
  });
  try {
    const gamma = Array.from(randn(C, p.seed + 1, 1, 0.5));
    const beta = Array.from(randn(C, p.seed + 2));
    const runningMean = Float64Array.from(randn(C, p.seed + 3, p.offset, p.scale));
    const runningVar = Float64Array.from(randn(C, p.seed + 4), (z) => p.scale * p.scale * (0.5 + Math.abs(z)));
    bn.setState({ gamma, beta, runningMean, runningVar, numBatchesTracked: 2 });
    const x = stored(randn(n, p.seed, p.offset, p.scale), p.dtype);
    const dy = stored(randn(n, p.seed + 5), p.dtype);
    const what = JSON.stringify({ ...p, dims: undefined });

    if (p.training && count < 2) {
      await expect(bn.forward(x, p.shape, { training: true }), what).rejects.toThrow(/expected more than 1 value per channel when training/);
      return;
    }
    const y = await bn.forward(x, p.shape, { training: p.training });
    const batchStats = p.training || !p.trackRunningStats;
    const f32Running = { mean: Float32Array.from(runningMean), variance: Float32Array.from(runningVar) };
    const used = batchStats ? referenceStats(x, view) : f32Running;
    const refY = batchStats
      ? referenceTrainingForward(x, view, { gamma, beta, eps: p.eps }).y
      : referenceInference(x, view, { runningMean: used.mean, runningVar: used.variance, gamma, beta, eps: p.eps });
    const stats = { mean: used.mean, variance: used.variance, gamma, eps: p.eps };
    expectClose(y, refY, widen(yTolerance(x, view, stats), p.dtype), `y of ${what}`);

    const state = await bn.getState();
    if (p.training && p.trackRunningStats) {
      const expected = referenceUpdateRunningStats(
        { runningMean: Float64Array.from(f32Running.mean), runningVar: Float64Array.from(f32Running.variance), numBatchesTracked: 2 },
        referenceStats(x, view),
        p.momentum,
      );
      expect(state.numBatchesTracked, what).toBe(3);
      // The running mean mixes values of size |offset| + scale; its error scales with them.
      const meanTol = { rtol: STATS_TOL.rtol, atol: 1e-6 * (Math.abs(p.offset) + p.scale) };
      expectClose(state.runningMean, expected.runningMean, meanTol, `running mean of ${what}`);
      expectClose(state.runningVar, expected.runningVar, { rtol: 1e-4, atol: 1e-6 * p.scale * p.scale }, `running var of ${what}`);
    } else {
      expect(state.numBatchesTracked, what).toBe(2);
      expect(state.runningMean, what).toEqual(f32Running.mean);
    }

    const g = await bn.backward(dy);
    const refG = referenceBackward(x, dy, view, { ...stats, batchStats });
    expectClose(g.dx, refG.dx, widen(dxTolerance(x, dy, view, stats), p.dtype), `dx of ${what}`);
    expectClose(g.dbeta!, refG.dbeta, sumTolerance(dy, view), `dbeta of ${what}`);
    expectClose(g.dgamma!, refG.dgamma, dgammaTolerance(x, dy, view, stats), `dgamma of ${what}`);
  } finally {
    bn.destroy();
  }
}

describe('properties', () => {
  it(`GPU matches the reference on ${RUNS} random cases (seed ${SEED})`, async () => {
    const device = await testDevice();
    let cases = 0;
    await fc.assert(
      fc.asyncProperty(caseArb, async (p) => {
        cases++;
        await checkCase(device, p);
      }),
      { numRuns: RUNS, seed: SEED, endOnFailure: true },
    );
    expect(cases).toBe(RUNS);
  }, 600_000);
});
