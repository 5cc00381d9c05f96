/**
 * Property tests (fast-check) of the normalization family: random layers (LayerNorm, RMSNorm,
 * GroupNorm, InstanceNorm), shapes, normalized dims, groups, layouts, dtypes, activations, fixed
 * γ/β, eps, and InstanceNorm's running statistics; the GPU's forward (y, running statistics) and
 * backward (dx, dγ, dβ) must match the float64 reference within the tolerances stated in
 * test/helpers/family.ts. Then the equivalences, GPU against GPU: GroupNorm with G = C is
 * InstanceNorm, G = 1 is LayerNorm over (C, spatial) channels first, and channels last is
 * channels first transposed.
 *
 * Each run checks RUNS + 3·EQUIV_RUNS cases (CI: 160 + 3·20 = 220) from a fixed seed; FC_SEED
 * and FC_RUNS explore others. Layers are kept per option set and reused across cases.
 */
import { afterAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import type { InstanceNorm } from '../../../src/normalization/layer.js';
import { referenceInstanceNorm, referenceInstanceNormRunningStats } from '../../../src/normalization/reference.js';
import { referenceBackward, referenceInference } from '../../../src/batchnorm/reference.js';
import { LAYOUTS, channelAxis, channelView, type Layout } from '../../../src/core/layout.js';
import { expectClose, randn, type Tolerance } from '../../helpers/data.js';
import {
  KINDS,
  LAST_OF,
  activate,
  activateGrad,
  describeCase,
  gradTols,
  hasBeta,
  layoutShape,
  makeLayer,
  paramCount,
  referenceBackwardOf,
  referenceForward,
  runningGroupStats,
  runningOf,
  sizeOf,
  stored,
  transposeChannels,
  yTol,
  type Activation,
  type AnyNorm,
  type Case,
  type DType,
} from '../../helpers/family.js';
import { testDevice } from '../../helpers/gpu.js';

const RUNS = Number(process.env.FC_RUNS ?? 160);
const EQUIV_RUNS = Math.max(1, Math.round(RUNS / 8));
const SEED = Number(process.env.FC_SEED ?? 20261126);

const RANK: Record<Layout, number> = { NC: 2, NCL: 3, NLC: 3, NCHW: 4, NHWC: 4, NCDHW: 5, NDHWC: 5 };
const CHANNELS = [1, 2, 3, 4, 6, 8];
const divisors = (C: number) => Array.from({ length: C }, (_, i) => i + 1).filter((d) => C % d === 0);

/** Layers by their options, reused across cases (γ, β and the running statistics are set per case). */
const layers = new Map<string, AnyNorm>();
function layerFor(device: GPUDevice, c: Case, extra: Record<string, unknown> = {}): AnyNorm {
  const key = JSON.stringify({ ...c, shape: c.kind === 'layer' || c.kind === 'rms' ? undefined : channelView(c.layout!, c.shape).channels, ...extra });
  let layer = layers.get(key);
  if (!layer) {
    layer = makeLayer(device, c, extra);
    layers.set(key, layer);
  }
  return layer;
}
afterAll(() => {
  for (const l of layers.values()) l.destroy();
});

const common = {
  dtype: fc.constantFrom<DType>('float32', 'float32', 'float16'),
  activation: fc.constantFrom<Activation>('none', 'relu', 'silu'),
  affine: fc.boolean(),
  bias: fc.boolean(),
  eps: fc.constantFrom(1e-5, 1e-3, 0.1, 2 ** -23),
  offset: fc.constantFrom(0, 1, -20, 300),
  scale: fc.constantFrom(0.05, 1, 10),
  seed: fc.integer({ min: 1, max: 1e9 }),
};

const rowCase = fc.record({
  kind: fc.constantFrom<'layer' | 'rms'>('layer', 'rms'),
  leading: fc.array(fc.integer({ min: 1, max: 5 }), { minLength: 0, maxLength: 2 }),
  normalized: fc.array(fc.integer({ min: 1, max: 9 }), { minLength: 1, maxLength: 2 }),
  ...common,
});

const channelCase = fc
  .record({
    kind: fc.constantFrom<'group' | 'instance'>('group', 'instance'),
    layout: fc.constantFrom(...LAYOUTS),
    N: fc.integer({ min: 1, max: 3 }),
    C: fc.constantFrom(...CHANNELS),
    groupPick: fc.nat(),
    spatial: fc.array(fc.integer({ min: 1, max: 5 }), { minLength: 3, maxLength: 3 }),
    trackRunningStats: fc.boolean(),
    training: fc.boolean(),
    momentum: fc.constantFrom(0, 0.1, 0.5, 1),
    ...common,
  })
  .map((p) => {
    const gs = divisors(p.C);
    return { ...p, G: gs[p.groupPick % gs.length], shape: layoutShape(p.layout, p.N, p.C, p.spatial.slice(0, RANK[p.layout] - 2)) };
  });

type RowP = typeof rowCase extends fc.Arbitrary<infer T> ? T : never;
type ChannelP = typeof channelCase extends fc.Arbitrary<infer T> ? T : never;

function toCase(p: RowP | ChannelP): Case {
  const base = { kind: p.kind, eps: p.eps, activation: p.activation, dtype: p.dtype, affine: p.affine };
  if (p.kind === 'layer' || p.kind === 'rms') {
    const r = p as RowP;
    return { ...base, shape: [...r.leading, ...r.normalized], normalizedShape: r.normalized, bias: r.kind === 'layer' ? r.bias : undefined };
  }
  const q = p as ChannelP;
  return { ...base, shape: q.shape, layout: q.layout, numGroups: q.kind === 'group' ? q.G : undefined };
}

/** The data of a case: normal with the case's offset and scale, rounded to the storage type. */
function caseData(c: Case, p: { offset: number; scale: number; seed: number }) {
  const n = sizeOf(c.shape);
  const P = paramCount(c);
  return {
    x: stored(randn(n, p.seed, p.offset, p.scale), c.dtype),
    dy: stored(randn(n, p.seed + 1), c.dtype),
    gamma: randn(P, p.seed + 2, 1, 0.5),
    beta: randn(P, p.seed + 3),
  };
}

/** Sets the learnable parts of γ and β (a fixed γ or β stays 1 or 0 in a reused layer). */
function setParams(layer: AnyNorm, c: Case, gamma: Float32Array, beta: Float32Array): void {
  if (!c.affine) return;
  const state: Record<string, ArrayLike<number>> = { gamma };
  if (hasBeta(c)) state.beta = beta;
  (layer as { setState(s: object): void }).setState(state);
}

async function checkCase(device: GPUDevice, p: RowP | ChannelP): Promise<void> {
  const c = toCase(p);
  const what = `${describeCase(c)} ${JSON.stringify({ offset: p.offset, scale: p.scale, seed: p.seed, ...('training' in p ? { training: p.training, track: p.trackRunningStats, momentum: p.momentum } : {}) })}`;
  const isTracked = c.kind === 'instance' && (p as ChannelP).trackRunningStats;
  const training = c.kind === 'instance' ? (p as ChannelP).training : true;
  const extra = isTracked ? { trackRunningStats: true, momentum: (p as ChannelP).momentum } : {};
  const layer = layerFor(device, c, extra);
  const { x, dy, gamma, beta } = caseData(c, p);
  setParams(layer, c, gamma, beta);
  const C = paramCount(c);
  const rm0 = randn(C, p.seed + 4, p.offset, p.scale);
  const rv0 = Float32Array.from(randn(C, p.seed + 5), (z) => p.scale * p.scale * (0.5 + Math.abs(z)));
  if (isTracked) (layer as InstanceNorm).setState({ runningMean: rm0, runningVar: rv0 });

  const spatial = c.kind === 'instance' ? sizeOf(c.shape) / (c.shape[0] * C) : 2;
  if (isTracked && training && spatial < 2) {
    await expect(layer.forward(x, c.shape, { training }), `${what}: one spatial element`).rejects.toThrow(/spatial element/);
    return;
  }
  // Normalizing with instance statistics (training, or no running statistics) on one spatial element:
  // the spec requires the refusal only with running statistics in training; PyTorch refuses them all
  // (every output would be β). A layer may refuse or normalize them; it must not fail otherwise.
  let y: Float32Array;
  try {
    y = await layer.forward(x, c.shape, { training });
  } catch (e) {
    if (c.kind === 'instance' && (training || !isTracked) && spatial < 2 && /spatial element/.test(String(e))) return;
    throw e;
  }
  const useRunning = isTracked && !training;
  const ref = referenceForward(c, x, gamma, beta);
  let v = ref.v;
  let stats = ref.stats;
  if (useRunning) {
    const view = channelView(c.layout!, c.shape);
    v = referenceInference(x, view, { runningMean: rm0, runningVar: rv0, gamma: ref.gamma, beta: ref.beta, eps: c.eps });
    stats = runningGroupStats(c, rm0, rv0);
  }
  expectClose(y, v.map((t) => activate(c.activation, t)), yTol(c, x, v, stats, ref.gamma, ref.beta), `y of ${what}`);

  if (isTracked) {
    const state = runningOf(await (layer as InstanceNorm).getState());
    if (training) {
      const expected = referenceInstanceNormRunningStats({ runningMean: rm0, runningVar: rv0 }, referenceInstanceNorm(x, c.shape, { layout: c.layout!, eps: c.eps }), (p as ChannelP).momentum);
      const s2 = p.scale * p.scale;
      expectClose(state.runningMean, expected.runningMean, { rtol: 1e-5, atol: 1e-6 * (Math.abs(p.offset) + p.scale) }, `running mean of ${what}`);
      expectClose(state.runningVar, expected.runningVar, { rtol: 1e-4, atol: 1e-6 * s2 }, `running var of ${what}`);
    } else {
      expect(Array.from(state.runningMean), `inference keeps the running mean of ${what}`).toEqual(Array.from(rm0));
    }
  }

  const g = await layer.backward(dy);
  const tol = gradTols(c, x, dy, v, stats, ref.gamma, ref.beta);
  let refG: { dx: ArrayLike<number>; dgamma: ArrayLike<number>; dbeta: ArrayLike<number> | null };
  if (useRunning) {
    const view = channelView(c.layout!, c.shape);
    const gated = Float64Array.from(dy, (d, e) => d * activateGrad(c.activation, v[e]));
    refG = referenceBackward(x, gated, view, { mean: rm0, variance: rv0, gamma: ref.gamma, eps: c.eps, batchStats: false });
  } else {
    refG = referenceBackwardOf(c, x, dy, v, ref.gamma);
  }
  expectClose(g.dx, refG.dx, tol.dx, `dx of ${what}`);
  if (c.affine) expectClose(g.dgamma!, refG.dgamma, tol.dgamma, `dgamma of ${what}`);
  else expect(g.dgamma, `dgamma of ${what}`).toBeNull();
  if (hasBeta(c)) expectClose(g.dbeta!, refG.dbeta!, tol.dbeta, `dbeta of ${what}`);
  else expect(g.dbeta, `dbeta of ${what}`).toBeNull();
}

/** |a − b| within the sum of both sides' tolerances against the reference `ref`. */
function pairTol(tol: Tolerance, ref: ArrayLike<number>): Tolerance {
  return { rtol: 0, atol: Float64Array.from(ref, (r, i) => 2 * ((typeof tol.atol === 'number' ? tol.atol : tol.atol[i]) + tol.rtol * Math.abs(r))) };
}

describe('properties', () => {
  it(`the family matches the reference on ${RUNS} random cases (seed ${SEED})`, async () => {
    const device = await testDevice();
    let cases = 0;
    const kinds = new Set<string>();
    await fc.assert(
      fc.asyncProperty(fc.oneof(rowCase, channelCase), async (p) => {
        cases++;
        kinds.add(p.kind);
        await checkCase(device, p);
      }),
      { numRuns: RUNS, seed: SEED, endOnFailure: true },
    );
    expect(cases).toBe(RUNS);
    expect([...kinds].sort(), 'every layer was drawn').toEqual([...KINDS].sort());
  }, 600_000);

  // At least 2 spatial elements: InstanceNorm refuses to train on one.
  const equivCase = fc.record({
    layout: fc.constantFrom<Layout>('NCL', 'NCHW', 'NCDHW'),
    N: fc.integer({ min: 1, max: 3 }),
    C: fc.constantFrom(...CHANNELS),
    groupPick: fc.nat(),
    spatial: fc.tuple(fc.integer({ min: 2, max: 5 }), fc.integer({ min: 1, max: 5 }), fc.integer({ min: 1, max: 5 })),
    ...common,
  });
  type EquivP = typeof equivCase extends fc.Arbitrary<infer T> ? T : never;
  const spatialOf = (p: EquivP) => p.spatial.slice(0, RANK[p.layout] - 2);

  /** Forward and backward of layer `c` on the GPU (γ, β set). */
  async function run(device: GPUDevice, c: Case, x: Float32Array, dy: Float32Array, gamma: Float32Array, beta: Float32Array) {
    const layer = layerFor(device, c);
    setParams(layer, c, gamma, beta);
    const y = await layer.forward(x, c.shape);
    const g = await layer.backward(dy);
    return { y, ...g };
  }

  it(`GroupNorm with G = C equals InstanceNorm, on ${EQUIV_RUNS} random cases`, async () => {
    const device = await testDevice();
    await fc.assert(
      fc.asyncProperty(equivCase, fc.constantFrom(...LAYOUTS.filter((l) => l !== 'NC')), async (p, layout) => {
        const shape = layoutShape(layout, p.N, p.C, p.spatial.slice(0, RANK[layout] - 2));
        const base = { shape, layout, eps: p.eps, activation: p.activation, dtype: p.dtype, affine: true };
        const gn: Case = { ...base, kind: 'group', numGroups: p.C };
        const inorm: Case = { ...base, kind: 'instance' };
        const { x, dy, gamma, beta } = caseData(gn, p);
        const a = await run(device, gn, x, dy, gamma, beta);
        const b = await run(device, inorm, x, dy, gamma, beta);
        const ref = referenceForward(inorm, x, gamma, beta);
        const tol = gradTols(inorm, x, dy, ref.v, ref.stats, ref.gamma, ref.beta);
        const refG = referenceBackwardOf(inorm, x, dy, ref.v, ref.gamma);
        const what = describeCase(gn);
        expectClose(a.y, b.y, pairTol(yTol(inorm, x, ref.v, ref.stats, ref.gamma, ref.beta), ref.y), `y of ${what}`);
        expectClose(a.dx, b.dx, pairTol(tol.dx, refG.dx), `dx of ${what}`);
        expectClose(a.dgamma!, b.dgamma!, pairTol(tol.dgamma, refG.dgamma), `dgamma of ${what}`);
        expectClose(a.dbeta!, b.dbeta!, pairTol(tol.dbeta, refG.dbeta!), `dbeta of ${what}`);
      }),
      { numRuns: EQUIV_RUNS, seed: SEED + 1, endOnFailure: true },
    );
  }, 600_000);

  it(`GroupNorm with G = 1 equals LayerNorm over (C, spatial) channels first, on ${EQUIV_RUNS} random cases`, async () => {
    const device = await testDevice();
    await fc.assert(
      fc.asyncProperty(equivCase, async (p) => {
        const spatial = spatialOf(p);
        const S = sizeOf(spatial);
        const shape = layoutShape(p.layout, p.N, p.C, spatial);
        const base = { shape, eps: p.eps, activation: p.activation, dtype: p.dtype, affine: true };
        const gn: Case = { ...base, kind: 'group', numGroups: 1, layout: p.layout };
        const ln: Case = { ...base, kind: 'layer', normalizedShape: shape.slice(1) };
        const { x, dy, gamma, beta } = caseData(gn, p);
        // LayerNorm's elementwise γ and β: channel c's value at each of its S positions.
        const spread = (v: Float32Array) => Float32Array.from({ length: p.C * S }, (_, k) => v[Math.floor(k / S)]);
        const a = await run(device, gn, x, dy, gamma, beta);
        const b = await run(device, ln, x, dy, spread(gamma), spread(beta));
        const sumOver = (v: ArrayLike<number>) => Float64Array.from({ length: p.C }, (_, ch) => {
          let s = 0;
          for (let k = 0; k < S; k++) s += v[ch * S + k];
          return s;
        });
        const ref = referenceForward(gn, x, gamma, beta);
        const tol = gradTols(gn, x, dy, ref.v, ref.stats, ref.gamma, ref.beta);
        const refG = referenceBackwardOf(gn, x, dy, ref.v, ref.gamma);
        const what = describeCase(gn);
        expectClose(a.y, b.y, pairTol(yTol(gn, x, ref.v, ref.stats, ref.gamma, ref.beta), ref.y), `y of ${what}`);
        expectClose(a.dx, b.dx, pairTol(tol.dx, refG.dx), `dx of ${what}`);
        expectClose(a.dgamma!, sumOver(b.dgamma!), pairTol(tol.dgamma, refG.dgamma), `dgamma of ${what} (LayerNorm's summed per channel)`);
        expectClose(a.dbeta!, sumOver(b.dbeta!), pairTol(tol.dbeta, refG.dbeta!), `dbeta of ${what} (LayerNorm's summed per channel)`);
      }),
      { numRuns: EQUIV_RUNS, seed: SEED + 2, endOnFailure: true },
    );
  }, 600_000);

  it(`channels last equals channels first transposed (GroupNorm and InstanceNorm), on ${EQUIV_RUNS} random cases`, async () => {
    const device = await testDevice();
    await fc.assert(
      fc.asyncProperty(equivCase, fc.constantFrom<'group' | 'instance'>('group', 'instance'), async (p, kind) => {
        const spatial = spatialOf(p);
        const S = sizeOf(spatial);
        const gs = divisors(p.C);
        const base = { kind, eps: p.eps, activation: p.activation, dtype: p.dtype, affine: true, numGroups: kind === 'group' ? gs[p.groupPick % gs.length] : undefined };
        const first: Case = { ...base, layout: p.layout, shape: layoutShape(p.layout, p.N, p.C, spatial) };
        const lastLayout = LAST_OF[p.layout]!;
        expect(channelAxis(lastLayout)).toBe(RANK[lastLayout] - 1);
        const last: Case = { ...base, layout: lastLayout, shape: layoutShape(lastLayout, p.N, p.C, spatial) };
        const { x, dy, gamma, beta } = caseData(first, p);
        const a = await run(device, first, x, dy, gamma, beta);
        const toLast = (v: ArrayLike<number>) => transposeChannels(v, p.N, p.C, S, true);
        const b = await run(device, last, toLast(x), toLast(dy), gamma, beta);
        const back = (v: ArrayLike<number>) => transposeChannels(v, p.N, p.C, S, false);
        const ref = referenceForward(first, x, gamma, beta);
        const tol = gradTols(first, x, dy, ref.v, ref.stats, ref.gamma, ref.beta);
        const refG = referenceBackwardOf(first, x, dy, ref.v, ref.gamma);
        const what = `${describeCase(first)} vs ${lastLayout}`;
        expectClose(a.y, back(b.y), pairTol(yTol(first, x, ref.v, ref.stats, ref.gamma, ref.beta), ref.y), `y of ${what}`);
        expectClose(a.dx, back(b.dx), pairTol(tol.dx, refG.dx), `dx of ${what}`);
        expectClose(a.dgamma!, b.dgamma!, pairTol(tol.dgamma, refG.dgamma), `dgamma of ${what}`);
        expectClose(a.dbeta!, b.dbeta!, pairTol(tol.dbeta, refG.dbeta!), `dbeta of ${what}`);
      }),
      { numRuns: EQUIV_RUNS, seed: SEED + 3, endOnFailure: true },
    );
  }, 600_000);
});
