/**
 * webgpu-batchnorm/tfjs at kernel level, on TF.js's webgpu backend (Dawn on SwiftShader):
 * - FusedBatchNorm (tf.batchNorm) on our inference pass where its parameters are per-channel
 *   (ranks 2–4, [C] and [1, C, 1, 1]): on the float64 reference within the stated tolerances and
 *   on TF.js's original kernel; every fallback case (broadcast parameters, a scalar, epsilon 0)
 *   runs the original kernel (no pass of ours, bit-identical output);
 * - the BatchNorm training kernel and its registered gradient (NHWC, C not a multiple of 4, a
 *   large M, axis 1 of NCHW): y, the new moving statistics, dx, dγ, dβ on the float64 reference
 *   within the stated tolerances, and on TF.js's own autodiff of moments + batchNorm; the
 *   inference kernel's gradient (running statistics), that of the moving statistics included;
 * - tensors created on the CPU right before each call and disposed right after it (uploads
 *   recorded in TF.js's encoder before our pass; buffers handed back to TF.js's pool before the
 *   submit): every result on its own reference;
 * - the LayerNorm kernel and its gradient (one and two normalized axes, without β) on the
 *   float64 reference and on TF.js's autodiff.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  referenceBackward,
  referenceInference,
  referenceLayerNorm,
  referenceLayerNormBackward,
  referenceTrainingForward,
  referenceUpdateRunningStats,
  type ChannelView,
} from '../../src/index.js';
import { registerTfjsKernels } from '../../src/tfjs/index.js';
import { channelData, expectClose, randn, type Tolerance } from '../helpers/data.js';
import { dgammaTolerance, dxTolerance, STATS_TOL, sumTolerance, yTolerance } from '../helpers/tolerances.js';
import { ourPasses, tf, tfjsOnDevice, values } from './setup.js';

let gpuErrors: string[];

beforeAll(async () => {
  ({ gpuErrors } = await tfjsOnDevice());
});

afterAll(() => {
  expect(gpuErrors, 'uncaptured GPU errors').toEqual([]);
});

/** The [outer, C, inner] view of `shape` around `axis`. */
function viewOf(shape: number[], axis: number): ChannelView {
  const prod = (a: number[]) => a.reduce((p, d) => p * d, 1);
  return { outer: prod(shape.slice(0, axis)), channels: shape[axis], inner: prod(shape.slice(axis + 1)) };
}

/** The shape of a per-channel parameter of `shape` along `axis`: [C] for the last axis, else [1, …, C, …, 1]. */
function paramShape(shape: number[], axis: number, style: 'vector' | 'broadcast'): number[] {
  return style === 'vector' ? [shape[axis]] : shape.map((d, i) => (i === axis ? d : 1));
}

/** `fn`'s result and how many passes of ours it recorded. */
function counted<T>(fn: () => T): { result: T; passes: number } {
  const before = ourPasses();
  const result = fn();
  return { result, passes: ourPasses() - before };
}

/** Twice a tolerance: TF.js's own float32 result carries rounding of its own. */
function doubled(t: Tolerance): Tolerance {
  return { rtol: 2 * t.rtol, atol: typeof t.atol === 'number' ? 2 * t.atol : Array.from(t.atol, (a) => 2 * a) };
}

describe('FusedBatchNorm (tf.batchNorm) override', () => {
  const cases: { shape: number[]; axis: number; style: 'vector' | 'broadcast' }[] = [
    { shape: [37, 5], axis: 1, style: 'vector' },
    { shape: [4, 9, 6], axis: 2, style: 'vector' },
    { shape: [2, 5, 6, 7], axis: 3, style: 'vector' },
    { shape: [2, 5, 6, 7], axis: 1, style: 'broadcast' },
    { shape: [3, 6, 7], axis: 1, style: 'broadcast' },
  ];
  for (const c of cases) {
    it(`per-channel inference of [${c.shape}] along axis ${c.axis} (${c.style}) runs our pass, on the reference and on the original kernel`, async () => {
      const view = viewOf(c.shape, c.axis);
      const C = view.channels;
      const x = channelData(view, 11);
      const mean = randn(C, 12);
      const variance = randn(C, 13).map((v) => 0.5 + v * v);
      const gamma = randn(C, 14);
      const beta = randn(C, 15);
      const ps = paramShape(c.shape, c.axis, c.style);
      const run = () =>
        tf.tidy(() => tf.batchNorm(tf.tensor(x, c.shape), tf.tensor(mean, ps), tf.tensor(variance, ps), tf.tensor(beta, ps), tf.tensor(gamma, ps), 1e-3));
      const original = counted(run);
      const uninstall = registerTfjsKernels(tf);
      const ours = counted(run);
      uninstall();
      expect(original.passes).toBe(0);
      expect(ours.passes).toBeGreaterThan(0);
      const expected = referenceInference(x, view, { runningMean: mean, runningVar: variance, gamma, beta, eps: 1e-3 });
      const tol = yTolerance(x, view, { mean, variance, gamma, eps: 1e-3 });
      expectClose(await values(ours.result), expected, tol, 'y (adapter) vs float64');
      expectClose(await values(ours.result), await values(original.result), doubled(tol), 'y (adapter) vs TF.js');
      tf.dispose([ours.result, original.result]);
    });
  }

  const fallbacks: { what: string; run: () => tf.Tensor }[] = [
    {
      what: 'mean and variance of x’s full shape (LayerNormalization’s tiled tensors)',
      run: () => tf.tidy(() => tf.batchNorm(tf.tensor(randn(24, 1), [4, 6]), tf.tensor(randn(24, 2), [4, 6]), tf.tensor(randn(24, 3).map((v) => 1 + v * v), [4, 6]))),
    },
    {
      what: 'a scalar mean',
      run: () => tf.tidy(() => tf.batchNorm(tf.tensor(randn(24, 1), [4, 6]), tf.scalar(0.5), tf.scalar(2))),
    },
    {
      what: 'parameters along two different axes',
      run: () => tf.tidy(() => tf.batchNorm(tf.tensor(randn(36, 1), [6, 6]), tf.tensor(randn(6, 2), [6, 1]), tf.tensor(randn(6, 3).map((v) => 1 + v * v), [1, 6]))),
    },
    {
      what: 'one tensor as mean, variance, scale and offset (one buffer bound four times)',
      run: () =>
        tf.tidy(() => {
          const s = tf.tensor(randn(6, 2).map((v) => 1 + v * v), [6]);
          return tf.batchNorm(tf.tensor(randn(24, 1), [4, 6]), s, s, s, s);
        }),
    },
    {
      what: 'varianceEpsilon 0',
      run: () => tf.tidy(() => tf.batchNorm(tf.tensor(randn(24, 1), [4, 6]), tf.tensor(randn(6, 2), [6]), tf.tensor(randn(6, 3).map((v) => 1 + v * v), [6]), undefined, undefined, 0)),
    },
  ];
  for (const f of fallbacks) {
    it(`falls back to TF.js's kernel for ${f.what}`, async () => {
      const original = f.run();
      const uninstall = registerTfjsKernels(tf);
      const ours = counted(f.run);
      uninstall();
      expect(ours.passes, 'passes of ours').toBe(0);
      expect(Array.from(await values(ours.result))).toEqual(Array.from(await values(original)));
      tf.dispose([ours.result, original]);
    });
  }
});

/** The BatchNorm kernel's attributes for a case. */
function bnAttrs(axis: number, training: boolean, o: { scale?: boolean; center?: boolean } = {}) {
  return { axis, epsilon: 1e-3, momentum: 0.9, scale: o.scale ?? true, center: o.center ?? true, training, nonFiniteBatches: 'update' };
}

/** y of the BatchNorm kernel on (x, γ, β), with the moving statistics held, for tf.grads. */
function kernelForward(axis: number, training: boolean, moving: [tf.Tensor, tf.Tensor], keep: tf.Tensor[]) {
  return (x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor) => {
    const out = tf.engine().runKernel('webgpu-batchnorm/BatchNorm', [x, moving[0], moving[1], gamma, beta] as never, bnAttrs(axis, training)) as tf.Tensor[];
    keep.push(...out.slice(2).map((t) => tf.keep(t)));
    return out[0];
  };
}

/** TF.js's own training forward (moments + batchNorm, channels moved last where needed), for its autodiff. */
function tfjsTrainingForward(axis: number) {
  return (x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor) => {
    const rank = x.shape.length;
    const perm = [...Array(rank).keys()].filter((i) => i !== axis).concat(axis);
    const back = [...Array(rank).keys()].map((i) => perm.indexOf(i));
    const xl = tf.transpose(x, perm);
    const { mean, variance } = tf.moments(xl, [...Array(rank - 1).keys()]);
    return tf.transpose(tf.batchNorm(xl, mean, variance, beta, gamma, 1e-3), back);
  };
}

describe('BatchNorm kernel and its gradient', () => {
  const cases: { name: string; shape: number[]; axis: number }[] = [
    { name: 'NHWC, C = 3', shape: [3, 5, 6, 3], axis: 3 },
    { name: 'NLC, C = 5', shape: [4, 7, 5], axis: 2 },
    { name: 'NC, large M', shape: [40000, 6], axis: 1 },
    { name: 'NCHW, axis 1', shape: [4, 5, 6, 7], axis: 1 },
  ];
  for (const c of cases) {
    it(`training forward and gradients, ${c.name} [${c.shape}]: on the float64 reference and on TF.js's autodiff`, async () => {
      const view = viewOf(c.shape, c.axis);
      const C = view.channels;
      const xv = channelData(view, 21);
      const dyv = randn(xv.length, 22);
      const gv = randn(C, 23).map((v) => 1 + 0.5 * v);
      const bv = randn(C, 24);
      const mm = randn(C, 25);
      const mv = randn(C, 26).map((v) => 1 + v * v);
      const inputs = () => [tf.tensor(xv, c.shape), tf.tensor(gv), tf.tensor(bv)] as [tf.Tensor, tf.Tensor, tf.Tensor];
      // TF.js's autodiff, before the adapter replaces anything.
      const plain = tf.tidy(() => {
        const [x, g, b] = inputs();
        const f = tfjsTrainingForward(c.axis);
        return [f(x, g, b), ...tf.grads(f)([x, g, b], tf.tensor(dyv, c.shape))];
      });
      const uninstall = registerTfjsKernels(tf);
      const moving: tf.Tensor[] = [];
      const ours = counted(() =>
        tf.tidy(() => {
          const [x, g, b] = inputs();
          const held = [tf.tensor(mm), tf.tensor(mv)] as [tf.Tensor, tf.Tensor];
          const f = kernelForward(c.axis, true, held, moving);
          const { value, grads } = tf.valueAndGrads(f)([x, g, b], tf.tensor(dyv, c.shape));
          return [value, ...grads];
        }),
      );
      uninstall();
      expect(ours.passes, 'passes of ours (forward, backward)').toBe(2);
      const [y, dx, dgamma, dbeta] = await Promise.all(ours.result.map(values));
      const [py, pdx, pdgamma, pdbeta] = await Promise.all(plain.map(values));

      const ref = referenceTrainingForward(xv, view, { gamma: gv, beta: bv, eps: 1e-3 });
      const grads = referenceBackward(xv, dyv, view, { mean: ref.mean, variance: ref.variance, gamma: gv, eps: 1e-3, batchStats: true });
      const stats = { mean: ref.mean, variance: ref.variance, gamma: gv, eps: 1e-3 };
      const tols = {
        y: yTolerance(xv, view, stats),
        dx: dxTolerance(xv, dyv, view, stats),
        dgamma: dgammaTolerance(xv, dyv, view, stats),
        dbeta: sumTolerance(dyv, view),
      };
      expectClose(y, ref.y, tols.y, 'y vs float64');
      expectClose(dx, grads.dx, tols.dx, 'dx vs float64');
      expectClose(dgamma, grads.dgamma, tols.dgamma, 'dγ vs float64');
      expectClose(dbeta, grads.dbeta, tols.dbeta, 'dβ vs float64');
      expectClose(y, py, doubled(tols.y), 'y vs TF.js');
      expectClose(dx, pdx, doubled(tols.dx), 'dx vs TF.js autodiff');
      expectClose(dgamma, pdgamma, doubled(tols.dgamma), 'dγ vs TF.js autodiff');
      expectClose(dbeta, pdbeta, doubled(tols.dbeta), 'dβ vs TF.js autodiff');

      // The moving statistics, Keras's way: momentum 0.9 weighs the old value, biased variance.
      const running = referenceUpdateRunningStats({ runningMean: Float64Array.from(mm), runningVar: Float64Array.from(mv), numBatchesTracked: 0 }, ref, 0.1, 'biased');
      expectClose(await values(moving[0]), running.runningMean, STATS_TOL, 'new moving mean');
      expectClose(await values(moving[1]), running.runningVar, STATS_TOL, 'new moving variance');
      tf.dispose([...ours.result, ...plain, ...moving]);
    });
  }

  it('inference kernel: y and its gradients (x, γ, β and the moving statistics) with the moving statistics, on the float64 reference', async () => {
    const shape = [3, 4, 5, 6];
    const axis = 1;
    const view = viewOf(shape, axis);
    const C = view.channels;
    const xv = channelData(view, 31);
    const dyv = randn(xv.length, 32);
    const gv = randn(C, 33);
    const bv = randn(C, 34);
    const mm = randn(C, 35);
    const mv = randn(C, 36).map((v) => 0.5 + v * v);
    const uninstall = registerTfjsKernels(tf);
    const ours = tf.tidy(() => {
      const f = (x: tf.Tensor, g: tf.Tensor, b: tf.Tensor, m: tf.Tensor, v: tf.Tensor) =>
        (tf.engine().runKernel('webgpu-batchnorm/BatchNorm', [x, m, v, g, b] as never, bnAttrs(axis, false)) as tf.Tensor[])[0];
      const args = [tf.tensor(xv, shape), tf.tensor(gv), tf.tensor(bv), tf.tensor(mm), tf.tensor(mv)];
      const { value, grads } = tf.valueAndGrads(f as (...t: tf.Tensor[]) => tf.Tensor)(args, tf.tensor(dyv, shape));
      return [value, ...grads];
    });
    uninstall();
    const [y, dx, dgamma, dbeta, dmean, dvariance] = await Promise.all(ours.map(values));
    const stats = { mean: mm, variance: mv, gamma: gv, eps: 1e-3 };
    const grads = referenceBackward(xv, dyv, view, { ...stats, batchStats: false });
    expectClose(y, referenceInference(xv, view, { runningMean: mm, runningVar: mv, gamma: gv, beta: bv, eps: 1e-3 }), yTolerance(xv, view, stats), 'y');
    expectClose(dx, grads.dx, dxTolerance(xv, dyv, view, stats), 'dx');
    expectClose(dgamma, grads.dgamma, dgammaTolerance(xv, dyv, view, stats), 'dγ');
    expectClose(dbeta, grads.dbeta, sumTolerance(dyv, view), 'dβ');
    // y = γ·(x − μ)·s + β, s = 1/sqrt(σ² + ε): dL/dμ = −γ·s·Σdy, dL/dσ² = −½·γ·s³·Σdy·(x − μ).
    const s = Array.from(mv, (v) => 1 / Math.sqrt(v + 1e-3));
    const scaled = (t: { rtol: number; atol: number | ArrayLike<number> }, k: (c: number) => number): Tolerance => ({
      rtol: t.rtol,
      atol: Array.from({ length: C }, (_, c) => (typeof t.atol === 'number' ? t.atol : t.atol[c]) * Math.abs(k(c))),
    });
    expectClose(dmean, Array.from({ length: C }, (_, c) => -gv[c] * s[c] * grads.dbeta[c]), scaled(sumTolerance(dyv, view), (c) => 2 * gv[c] * s[c]), 'dL/dμ');
    expectClose(
      dvariance,
      Array.from({ length: C }, (_, c) => -0.5 * gv[c] * s[c] * s[c] * grads.dgamma[c]),
      scaled(dgammaTolerance(xv, dyv, view, stats), (c) => gv[c] * s[c] * s[c]),
      'dL/dσ²',
    );
    tf.dispose(ours);
  });

  it('tensors created on the CPU right before each call and disposed right after: every result on its own reference', async () => {
    const shape = [6, 5, 7];
    const axis = 2;
    const view = viewOf(shape, axis);
    const C = view.channels;
    const uninstall = registerTfjsKernels(tf);
    const results: { y: tf.Tensor; x: Float32Array; gamma: Float32Array; beta: Float32Array }[] = [];
    // Nothing is read back until every call is recorded: each upload, pass and disposal sits in
    // TF.js's one pending command buffer, and a disposed input's buffer goes back to its pool.
    for (let i = 0; i < 8; i++) {
      const xv = channelData(view, 40 + i);
      const gv = randn(C, 50 + i);
      const bv = randn(C, 60 + i);
      const x = tf.tensor(xv, shape);
      const g = tf.tensor(gv);
      const b = tf.tensor(bv);
      const m = [tf.zeros([C]), tf.ones([C])];
      const out = tf.engine().runKernel('webgpu-batchnorm/BatchNorm', [x, m[0], m[1], g, b] as never, bnAttrs(axis, true)) as tf.Tensor[];
      tf.dispose([x, g, b, ...m, ...out.slice(1)]);
      results.push({ y: out[0], x: xv, gamma: gv, beta: bv });
    }
    uninstall();
    for (const [i, r] of results.entries()) {
      const ref = referenceTrainingForward(r.x, view, { gamma: r.gamma, beta: r.beta, eps: 1e-3 });
      expectClose(await values(r.y), ref.y, yTolerance(r.x, view, { mean: ref.mean, variance: ref.variance, gamma: r.gamma, eps: 1e-3 }), `call ${i}: y`);
      r.y.dispose();
    }
  });
});

describe('LayerNorm kernel and its gradient', () => {
  const cases: { shape: number[]; dims: number; center: boolean }[] = [
    { shape: [12, 10], dims: 1, center: true },
    { shape: [3, 4, 5], dims: 2, center: true },
    { shape: [5, 3, 6], dims: 1, center: false },
  ];
  for (const c of cases) {
    it(`[${c.shape}] over the last ${c.dims} axes${c.center ? '' : ', no β'}: on the float64 reference and on TF.js's autodiff`, async () => {
      const normalizedShape = c.shape.slice(c.shape.length - c.dims);
      const K = normalizedShape.reduce((p, d) => p * d, 1);
      const size = c.shape.reduce((p, d) => p * d, 1);
      const xv = randn(size, 71).map((v, i) => 3 * v + (i % 7));
      const dyv = randn(size, 72);
      const gv = randn(K, 73).map((v) => 1 + 0.5 * v);
      const bv = randn(K, 74);
      const axes = [...Array(c.dims).keys()].map((i) => c.shape.length - c.dims + i);
      const params = () => [tf.tensor(gv, normalizedShape), ...(c.center ? [tf.tensor(bv, normalizedShape)] : [])];
      const plain = tf.tidy(() => {
        // TF.js's own LayerNormalization math: moments over the axes, then the normalization.
        const f = (x: tf.Tensor, g: tf.Tensor, b?: tf.Tensor) => {
          const { mean, variance } = tf.moments(x, axes, true);
          const z = tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, 1e-3)));
          return b ? tf.add(tf.mul(z, g), b) : tf.mul(z, g);
        };
        const x = tf.tensor(xv, c.shape);
        return [f(x, ...(params() as [tf.Tensor, tf.Tensor?])), ...tf.grads(f as (...t: tf.Tensor[]) => tf.Tensor)([x, ...params()], tf.tensor(dyv, c.shape))];
      });
      const uninstall = registerTfjsKernels(tf);
      const attrs = { normalizedDims: c.dims, epsilon: 1e-3, scale: true, center: c.center };
      const ours = counted(() =>
        tf.tidy(() => {
          const f = (...t: tf.Tensor[]) => (tf.engine().runKernel('webgpu-batchnorm/LayerNorm', t as never, attrs) as tf.Tensor[])[0];
          const { value, grads } = tf.valueAndGrads(f)([tf.tensor(xv, c.shape), ...params()], tf.tensor(dyv, c.shape));
          return [value, ...grads];
        }),
      );
      uninstall();
      expect(ours.passes).toBe(2);
      const got = await Promise.all(ours.result.map(values));
      const want = await Promise.all(plain.map(values));
      const fwd = referenceLayerNorm(xv, c.shape, normalizedShape, { gamma: gv, ...(c.center && { beta: bv }), eps: 1e-3 });
      const bwd = referenceLayerNormBackward(xv, dyv, c.shape, normalizedShape, { gamma: gv, eps: 1e-3 });
      // Rows of O(1) normalized values: 1e-5 of the terms each output sums (K of them for dx, rows for dγ/dβ).
      const rows = size / K;
      const tol = (terms: number): Tolerance => ({ rtol: 1e-5, atol: 1e-5 * Math.sqrt(terms) });
      const expected = [fwd.y, bwd.dx, bwd.dgamma, ...(c.center ? [bwd.dbeta] : [])];
      const tols = [tol(1), tol(K), tol(rows), tol(rows)];
      const names = ['y', 'dx', 'dγ', 'dβ'];
      expect(got).toHaveLength(expected.length);
      for (let i = 0; i < expected.length; i++) {
        expectClose(got[i], expected[i], tols[i], `${names[i]} vs float64`);
        expectClose(got[i], want[i], doubled(tols[i]), `${names[i]} vs TF.js autodiff`);
      }
      tf.dispose([...ours.result, ...plain]);
    });
  }
});
