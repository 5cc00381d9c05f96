/**
 * Stated tolerances of the GPU kernels (float32 storage and arithmetic) against the float64
 * reference: |gpu - reference| <= atol + rtol * |reference| elementwise.
 *
 * Outputs are bounded by float32 rounding of the terms they are computed from, so the bounds
 * stay tight where a problem is well conditioned and widen only where it is not (two close
 * values in a channel make invstd large and x - mean lose bits to the rounding of the mean):
 *
 * - y = (x - mean) * gamma * invstd + beta:
 *     atol = 1e-6 + 16 u |gamma| invstd (|x| + |mean|),                       rtol = 1e-5
 * - dx = gamma * invstd * (dy - mean(dy) - x_hat * mean(dy * x_hat)):
 *     atol = |gamma| invstd max|dy| (1e-5 (1 + |x_hat|) + 16 u invstd (|x| + |mean|)),  rtol = 1e-5
 * - dbeta = sum(dy): rtol 1e-5, atol 1e-5 sum|dy|
 * - dgamma = invstd sum(dy (x - mean)):
 *     atol = 1e-5 sum|dy x_hat| + 16 u invstd sum(|dy| (|x| + |mean|)),          rtol = 1e-5
 *
 * u = 2^-24 is float32's unit roundoff.
 */
import { referenceBackward } from '../../src/batchnorm/reference.js';
import type { ChannelView } from '../../src/core/layout.js';
import { expectClose, type Tolerance } from './data.js';

const U = 2 ** -24;
const ULPS = 16;

/** Per-channel statistics a pass normalized with. */
export interface NormalizeStats {
  mean: ArrayLike<number>;
  variance: ArrayLike<number>;
  gamma: ArrayLike<number>;
  eps: number;
}

/** Running statistics after a few float32 updates. */
export const STATS_TOL: Tolerance = { rtol: 1e-5, atol: 1e-6 };

function perElement(view: ChannelView, fn: (e: number, c: number) => number): Float64Array {
  const out = new Float64Array(view.outer * view.channels * view.inner);
  for (let o = 0; o < view.outer; o++)
    for (let c = 0; c < view.channels; c++)
      for (let i = 0; i < view.inner; i++) {
        const e = (o * view.channels + c) * view.inner + i;
        out[e] = fn(e, c);
      }
  return out;
}

const invstd = (s: NormalizeStats, c: number) => 1 / Math.sqrt(s.variance[c] + s.eps);

/** Tolerance for y of a pass that normalized `x` with `s`. */
export function yTolerance(x: ArrayLike<number>, view: ChannelView, s: NormalizeStats): Tolerance {
  const atol = perElement(view, (e, c) => 1e-6 + ULPS * U * Math.abs(s.gamma[c]) * invstd(s, c) * (Math.abs(x[e]) + Math.abs(s.mean[c])));
  return { rtol: 1e-5, atol };
}

/** Tolerance for dx of a backward pass over `x` and `dy` with the forward's statistics `s`. */
export function dxTolerance(x: ArrayLike<number>, dy: ArrayLike<number>, view: ChannelView, s: NormalizeStats): Tolerance {
  const maxDy = new Float64Array(view.channels);
  perElement(view, (e, c) => (maxDy[c] = Math.max(maxDy[c], Math.abs(dy[e]))));
  const atol = perElement(view, (e, c) => {
    const is = invstd(s, c);
    const xhat = Math.abs(x[e] - s.mean[c]) * is;
    return Math.abs(s.gamma[c]) * is * maxDy[c] * (1e-5 * (1 + xhat) + ULPS * U * is * (Math.abs(x[e]) + Math.abs(s.mean[c])));
  });
  return { rtol: 1e-5, atol };
}

/** Tolerance for per-channel sums of `terms` (each channel's values in `view`). */
export function sumTolerance(terms: ArrayLike<number>, view: ChannelView): Tolerance {
  const absSum = new Float64Array(view.channels);
  perElement(view, (e, c) => (absSum[c] += Math.abs(terms[e])));
  return { rtol: 1e-5, atol: absSum.map((v) => 1e-5 * v) };
}

/** Tolerance for dgamma of a backward pass over `x` and `dy` with the forward's statistics `s`. */
export function dgammaTolerance(x: ArrayLike<number>, dy: ArrayLike<number>, view: ChannelView, s: NormalizeStats): Tolerance {
  const atol = new Float64Array(view.channels);
  perElement(view, (e, c) => {
    const is = invstd(s, c);
    const xmu = Math.abs(x[e] - s.mean[c]);
    return (atol[c] += Math.abs(dy[e]) * (1e-5 * xmu * is + ULPS * U * is * (Math.abs(x[e]) + Math.abs(s.mean[c]))));
  });
  return { rtol: 1e-5, atol };
}

/**
 * A float32 tolerance widened by one rounding of the output to half precision (WGSL's
 * pack2x16float may round either way): 2^-10 relative for normal halves, plus 2^-24 absolute,
 * the spacing of subnormal halves (below 2^-14).
 */
export function halfTolerance(tol: Tolerance): Tolerance {
  const HALF_SUBNORMAL = 2 ** -24;
  const atol = typeof tol.atol === 'number' ? tol.atol + HALF_SUBNORMAL : Float64Array.from(tol.atol, (a) => a + HALF_SUBNORMAL);
  return { rtol: tol.rtol + 2 ** -10, atol };
}

const sigmoid = (z: number) => 1 / (1 + Math.exp(-z));
const siluGrad = (z: number) => sigmoid(z) * (1 + z * (1 - sigmoid(z)));
/** SiLU's second derivative: σ(1 − σ)(2 + z(1 − 2σ)). */
const siluSecond = (z: number) => sigmoid(z) * (1 - sigmoid(z)) * (2 + z * (1 - 2 * sigmoid(z)));

/** The per-element absolute bound atol + rtol·|ref| of `tol`. */
function bounds(tol: Tolerance, ref: ArrayLike<number>): Float64Array {
  return Float64Array.from(ref, (r, e) => (typeof tol.atol === 'number' ? tol.atol : tol.atol[e]) + tol.rtol * Math.abs(r));
}

/**
 * Tolerance for a fused SiLU's output y = z·σ(z), given the reference z and the tolerance of z
 * (yTolerance): z's error carried through |silu'(z)| (at most 1.1), plus the rounding of exp (WGSL
 * bounds f32 exp by 3 + 2|z| ulps), of the division and of the product: 16 (1 + |z|) u relative.
 */
export function siluTolerance(z: ArrayLike<number>, zTol: Tolerance): Tolerance {
  const dz = bounds(zTol, z);
  const atol = Float64Array.from(z, (v, e) => Math.abs(siluGrad(v)) * dz[e] + ULPS * U * (1 + Math.abs(v)) * Math.abs(v * sigmoid(v)));
  return { rtol: 1e-5, atol };
}

/**
 * The error bound of the gradient g = dy·silu'(z) that a fused SiLU hands to the batch-norm
 * backward: z's error (zTol) through |dy·silu''(z)| (at most 0.5|dy|), plus 32 (1 + |z|) u·|dy|
 * for the rounding of exp, σ and the products.
 */
export function siluGateError(z: ArrayLike<number>, dy: ArrayLike<number>, zTol: Tolerance): Float64Array {
  const dz = bounds(zTol, z);
  return Float64Array.from(z, (v, e) => Math.abs(dy[e]) * (Math.abs(siluSecond(v)) * dz[e] + 2 * ULPS * U * (1 + Math.abs(v))));
}

/**
 * The tolerances of dx, dβ and dγ widened by an error `dg` in the gradient g the backward reduces
 * (a fused activation's): dx = k (g − mean(g) − x̂·mean(g·x̂)) moves by at most
 * |γ| invstd (dg + mean(dg) + |x̂| mean(dg |x̂|)); dβ = Σg by Σdg; dγ = Σ g x̂ by Σ dg |x̂|.
 */
export function widenForGradError(
  tols: { dx: Tolerance; dbeta: Tolerance; dgamma: Tolerance },
  dg: ArrayLike<number>,
  x: ArrayLike<number>,
  view: ChannelView,
  s: NormalizeStats,
): { dx: Tolerance; dbeta: Tolerance; dgamma: Tolerance } {
  const n = view.outer * view.inner;
  const xhat = perElement(view, (e, c) => Math.abs(x[e] - s.mean[c]) * invstd(s, c));
  const sum = new Float64Array(view.channels);
  const sumXhat = new Float64Array(view.channels);
  perElement(view, (e, c) => {
    sum[c] += dg[e];
    return (sumXhat[c] += dg[e] * xhat[e]);
  });
  const plus = (tol: Tolerance, extra: Float64Array): Tolerance => ({
    rtol: tol.rtol,
    atol: Float64Array.from(extra, (v, i) => v + (typeof tol.atol === 'number' ? tol.atol : tol.atol[i])),
  });
  const dxExtra = perElement(view, (e, c) => Math.abs(s.gamma[c]) * invstd(s, c) * (dg[e] + sum[c] / n + (xhat[e] * sumXhat[c]) / n));
  return { dx: plus(tols.dx, dxExtra), dbeta: plus(tols.dbeta, sum), dgamma: plus(tols.dgamma, sumXhat) };
}

/**
 * Asserts that the gradients of a training backward pass over `x` and `dy` (the forward normalized
 * with the batch statistics `s`) match the float64 reference: dx, dβ and dγ within the tolerances
 * above, dx's widened by `widenDx` (halfTolerance for float16 storage).
 */
export function expectTrainingGradients(
  g: { dx: ArrayLike<number>; dgamma?: ArrayLike<number> | null; dbeta?: ArrayLike<number> | null },
  x: ArrayLike<number>,
  dy: ArrayLike<number>,
  view: ChannelView,
  s: NormalizeStats,
  widenDx: (tol: Tolerance) => Tolerance = (tol) => tol,
): void {
  const ref = referenceBackward(x, dy, view, { ...s, batchStats: true });
  expectClose(g.dx, ref.dx, widenDx(dxTolerance(x, dy, view, s)), 'dx');
  expectClose(g.dbeta!, ref.dbeta, sumTolerance(dy, view), 'dbeta');
  expectClose(g.dgamma!, ref.dgamma, dgammaTolerance(x, dy, view, s), 'dgamma');
}
