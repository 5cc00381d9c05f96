/**
 * The normalization family (layer, RMS, group and instance norm) in the GPU tests: one
 * description of a case, the layer it builds, and its float64 reference, fused activation
 * included, with stated tolerances.
 *
 * A case normalizes `shape` in groups of elements sharing a mean and a variance (a row of layer
 * and RMS norm, a (sample, group) of group norm, a (sample, channel) of instance norm), each
 * element taking γ/β entry `param(e)`. The reference is src/normalization/reference.ts; the
 * activation is applied to its y, and dy is chained through the activation's derivative at the
 * reference's pre-activation value before the reference's backward pass.
 *
 * Tolerances (float32 storage and arithmetic), |gpu - reference| <= atol + rtol·|reference|,
 * with u = 2^-24, k the element's group, p its γ/β entry, μ_k and s_k = 1/sqrt(σ²_k + eps) the
 * group's mean (RMS: 0) and inverse deviation, v the pre-activation output:
 *
 * - v = γ_p·(x − μ_k)·s_k + β_p:  atol = 1e-6 + 16u·|γ_p|·s_k·(|x| + |μ_k|) + 16u·|β_p|,  rtol = 1e-5
 *   (the rounding of x − μ_k dominates where the group's spread is small against its offset);
 * - relu(v): the same (max(·, 0) is 1-Lipschitz and exact);
 * - silu(v) = v·σ(v): atol = 1.1·(atol_v + 1e-5·|v|) + 64u·(1 + |v|)·|silu(v)| (silu' ≤ 1.1; WGSL's
 *   exp is accurate to 3 + 2|v| ulp),  rtol = 1e-5;
 * - dx, with d = dy·act'(v) and g = γ·d: atol = s_k·max_k|g|·(1e-5·(1 + |x̂|) + 16u·s_k·(|x| + |μ_k|))
 *   + (silu only) s_k·max_k(|γ|·|dy|·ε)·(2 + |x̂|), ε = 0.5·(atol_v + 1e-5·|v|) + 64u the error of
 *   silu'(v) (|silu''| ≤ 0.5),  rtol = 1e-5;
 * - dγ_p = Σ d·x̂: atol = Σ_p |d|·(1e-5·|x̂| + 16u·s_k·(|x| + |μ_k|)) + (silu) Σ_p |dy|·ε·|x̂|,  rtol = 1e-5;
 * - dβ_p = Σ d: atol = 1e-5·Σ_p |d| + (silu) Σ_p |dy|·ε,  rtol = 1e-5.
 *
 * float16 storage: x and dy are rounded to half before the reference sees them, and y and dx
 * are rounded to half on the way out: their tolerances widen by {@link halfTolerance} (2^-10
 * relative, 2^-24 absolute); dγ and dβ stay float32.
 */
import { GroupNorm, InstanceNorm, LayerNorm, RMSNorm } from '../../src/normalization/layer.js';
import {
  referenceGroupNorm,
  referenceGroupNormBackward,
  referenceInstanceNorm,
  referenceInstanceNormBackward,
  referenceLayerNorm,
  referenceLayerNormBackward,
  referenceRMSNorm,
  referenceRMSNormBackward,
} from '../../src/normalization/reference.js';
import { fromFloat16Bits, toFloat16Bits } from '../../src/core/float16.js';
import { channelAxis, channelView, type Layout } from '../../src/core/layout.js';
import { randn, type Tolerance } from './data.js';
import { halfTolerance } from './tolerances.js';

export type Kind = 'layer' | 'rms' | 'group' | 'instance';
export type Activation = 'none' | 'relu' | 'silu';
export type DType = 'float32' | 'float16';
export type AnyNorm = LayerNorm | RMSNorm | GroupNorm | InstanceNorm;

export const KINDS: readonly Kind[] = ['layer', 'rms', 'group', 'instance'];

/** One family case: the layer's options and the tensor's shape. */
export interface Case {
  kind: Kind;
  shape: number[];
  /** layer, rms: the trailing dims normalized together. */
  normalizedShape?: number[];
  /** group: G. */
  numGroups?: number;
  /** group, instance. Default 'NCHW' as the layers'. */
  layout?: Layout;
  eps: number;
  activation: Activation;
  dtype: DType;
  /** Learnable γ (layer: elementwiseAffine, rms: elementwiseAffine, group/instance: affine). */
  affine: boolean;
  /** layer only: learnable β (PyTorch's bias); ignored elsewhere. Default true. */
  bias?: boolean;
}

const U = 2 ** -24;
const ULPS = 16;

export const describeCase = (c: Case) =>
  `${c.kind} ${c.layout ?? ''} [${c.shape.join(', ')}]${c.normalizedShape ? ` over [${c.normalizedShape.join(', ')}]` : ''}${c.numGroups ? ` G=${c.numGroups}` : ''} ${c.dtype} ${c.activation}${c.affine ? '' : ' no-affine'}${c.bias === false ? ' no-bias' : ''} eps=${c.eps}`;

/** Number of γ entries: prod(normalizedShape) for layer/RMS, C for group/instance. */
export function paramCount(c: Case): number {
  if (c.kind === 'layer' || c.kind === 'rms') return c.normalizedShape!.reduce((a, b) => a * b, 1);
  return channelView(c.layout ?? 'NCHW', c.shape).channels;
}

export const sizeOf = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

/** Which group each element belongs to and which γ/β entry it takes (buffer order), and the group count. */
export function partition(c: Case): { group: Int32Array; param: Int32Array; groups: number } {
  const size = sizeOf(c.shape);
  const group = new Int32Array(size);
  const param = new Int32Array(size);
  if (c.kind === 'layer' || c.kind === 'rms') {
    const K = paramCount(c);
    for (let e = 0; e < size; e++) {
      group[e] = Math.floor(e / K);
      param[e] = e % K;
    }
    return { group, param, groups: size / K };
  }
  const layout = c.layout ?? 'NCHW';
  const C = channelView(layout, c.shape).channels;
  const N = c.shape[0];
  const spatial = size / (N * C);
  const last = channelAxis(layout) === c.shape.length - 1;
  const G = c.kind === 'group' ? c.numGroups! : C;
  for (let e = 0; e < size; e++) {
    const n = Math.floor(e / (C * spatial));
    const ch = last ? e % C : Math.floor(e / spatial) % C;
    group[e] = n * G + Math.floor(ch / (C / G));
    param[e] = ch;
  }
  return { group, param, groups: N * G };
}

/** The layer of a case (options as the spec names them). */
export function makeLayer(device: GPUDevice, c: Case, extra: Record<string, unknown> = {}): AnyNorm {
  const common = { eps: c.eps, activation: c.activation, dtype: c.dtype, ...extra };
  switch (c.kind) {
    case 'layer':
      return new LayerNorm(device, { normalizedShape: c.normalizedShape!, elementwiseAffine: c.affine, bias: c.bias ?? true, ...common } as never);
    case 'rms':
      return new RMSNorm(device, { normalizedShape: c.normalizedShape!, elementwiseAffine: c.affine, ...common } as never);
    case 'group':
      return new GroupNorm(device, { numGroups: c.numGroups!, numChannels: paramCount(c), affine: c.affine, layout: c.layout ?? 'NCHW', ...common } as never);
    case 'instance':
      return new InstanceNorm(device, { numFeatures: paramCount(c), affine: c.affine, layout: c.layout ?? 'NCHW', ...common } as never);
  }
}

/** Whether the case has a learnable β. */
export const hasBeta = (c: Case) => c.kind !== 'rms' && c.affine && (c.kind !== 'layer' || c.bias !== false);

/** Rounds through the storage type, as the GPU reads the data. */
export function stored(values: Float32Array, dtype: DType): Float32Array {
  return dtype === 'float16' ? fromFloat16Bits(toFloat16Bits(values)) : values;
}

export const widen = (tol: Tolerance, dtype: DType): Tolerance => (dtype === 'float16' ? halfTolerance(tol) : tol);

const sigmoid = (v: number) => 1 / (1 + Math.exp(-v));
export function activate(a: Activation, v: number): number {
  if (a === 'relu') return Math.max(v, 0);
  if (a === 'silu') return v * sigmoid(v);
  return v;
}
export function activateGrad(a: Activation, v: number): number {
  if (a === 'relu') return v > 0 ? 1 : 0;
  if (a === 'silu') {
    const s = sigmoid(v);
    return s * (1 + v * (1 - s));
  }
  return 1;
}

/** Statistics per group: mean (RMS: 0) and the variance normalized with (RMS: mean(x²)). */
export interface GroupStats {
  mean: ArrayLike<number>;
  variance: ArrayLike<number>;
}

/** γ and β as the layer holds them: the given ones where learnable, else (or given empty: a fresh layer's) 1 and 0. */
export function effectiveParams(c: Case, gamma: ArrayLike<number>, beta: ArrayLike<number>) {
  const P = paramCount(c);
  return {
    gamma: c.affine && gamma.length > 0 ? Float64Array.from(gamma) : new Float64Array(P).fill(1),
    beta: hasBeta(c) && beta.length > 0 ? Float64Array.from(beta) : new Float64Array(P),
  };
}

/** The reference forward of a case (training statistics): pre-activation v, y, and the group statistics. */
export function referenceForward(c: Case, x: ArrayLike<number>, gamma: ArrayLike<number>, beta: ArrayLike<number>) {
  const p = effectiveParams(c, gamma, beta);
  let v: Float64Array;
  let stats: GroupStats;
  switch (c.kind) {
    case 'layer': {
      const r = referenceLayerNorm(x, c.shape, c.normalizedShape!, { gamma: p.gamma, beta: p.beta, eps: c.eps });
      [v, stats] = [r.y, r];
      break;
    }
    case 'rms': {
      const r = referenceRMSNorm(x, c.shape, c.normalizedShape!, { gamma: p.gamma, eps: c.eps });
      [v, stats] = [r.y, { mean: new Float64Array(r.meanSquare.length), variance: r.meanSquare }];
      break;
    }
    case 'group': {
      const r = referenceGroupNorm(x, c.shape, { layout: c.layout ?? 'NCHW', numGroups: c.numGroups!, gamma: p.gamma, beta: p.beta, eps: c.eps });
      [v, stats] = [r.y, r];
      break;
    }
    case 'instance': {
      const r = referenceInstanceNorm(x, c.shape, { layout: c.layout ?? 'NCHW', gamma: p.gamma, beta: p.beta, eps: c.eps });
      [v, stats] = [r.y, r];
      break;
    }
  }
  return { v, y: v.map((t) => activate(c.activation, t)), stats, ...p };
}

/** The reference backward of a case: dy chained through the activation at v, then the reference's backward. */
export function referenceBackwardOf(c: Case, x: ArrayLike<number>, dy: ArrayLike<number>, v: ArrayLike<number>, gamma: Float64Array) {
  const d = Float64Array.from(dy, (t, i) => t * activateGrad(c.activation, v[i]));
  const layout = c.layout ?? 'NCHW';
  switch (c.kind) {
    case 'layer':
      return { d, ...referenceLayerNormBackward(x, d, c.shape, c.normalizedShape!, { gamma, eps: c.eps }) };
    case 'rms':
      return { d, ...referenceRMSNormBackward(x, d, c.shape, c.normalizedShape!, { gamma, eps: c.eps }), dbeta: null };
    case 'group':
      return { d, ...referenceGroupNormBackward(x, d, c.shape, { layout, numGroups: c.numGroups!, gamma, eps: c.eps }) };
    case 'instance':
      return { d, ...referenceInstanceNormBackward(x, d, c.shape, { layout, gamma, eps: c.eps }) };
  }
}

/** Per-element terms of the tolerances: s_k, μ_k, x̂, atol of v. */
function elementTerms(c: Case, x: ArrayLike<number>, stats: GroupStats, gamma: ArrayLike<number>, beta: ArrayLike<number>) {
  const { group, param, groups } = partition(c);
  const n = x.length;
  const s = new Float64Array(n);
  const mu = new Float64Array(n);
  const xhat = new Float64Array(n);
  const atolV = new Float64Array(n);
  for (let e = 0; e < n; e++) {
    const k = group[e];
    s[e] = 1 / Math.sqrt(stats.variance[k] + c.eps);
    mu[e] = stats.mean[k];
    xhat[e] = Math.abs(x[e] - mu[e]) * s[e];
    atolV[e] = 1e-6 + ULPS * U * Math.abs(gamma[param[e]]) * s[e] * (Math.abs(x[e]) + Math.abs(mu[e])) + ULPS * U * Math.abs(beta[param[e]]);
  }
  return { group, param, groups, s, mu, xhat, atolV };
}

/** Tolerance of y (after the activation) for a forward pass over x with the group statistics `stats`. */
export function yTol(c: Case, x: ArrayLike<number>, v: ArrayLike<number>, stats: GroupStats, gamma: ArrayLike<number>, beta: ArrayLike<number>): Tolerance {
  const t = elementTerms(c, x, stats, gamma, beta);
  const atol =
    c.activation === 'silu'
      ? Float64Array.from(t.atolV, (a, e) => 1.1 * (a + 1e-5 * Math.abs(v[e])) + 64 * U * (1 + Math.abs(v[e])) * Math.abs(activate('silu', v[e])))
      : t.atolV;
  return widen({ rtol: 1e-5, atol }, c.dtype);
}

/** Tolerances of dx, dγ and dβ of a backward pass (batch statistics `stats`, v the pre-activation output). */
export function gradTols(c: Case, x: ArrayLike<number>, dy: ArrayLike<number>, v: ArrayLike<number>, stats: GroupStats, gamma: ArrayLike<number>, beta: ArrayLike<number>) {
  const t = elementTerms(c, x, stats, gamma, beta);
  const n = x.length;
  const P = gamma.length;
  const silu = c.activation === 'silu';
  const d = Float64Array.from(dy, (q, e) => q * activateGrad(c.activation, v[e]));
  const eps = Float64Array.from(t.atolV, (a, e) => (silu ? 0.5 * (a + 1e-5 * Math.abs(v[e])) + 64 * U : 0));
  const maxG = new Float64Array(t.groups);
  const maxEps = new Float64Array(t.groups);
  for (let e = 0; e < n; e++) {
    const k = t.group[e];
    const g = Math.abs(gamma[t.param[e]]);
    maxG[k] = Math.max(maxG[k], g * Math.abs(d[e]));
    maxEps[k] = Math.max(maxEps[k], g * Math.abs(dy[e]) * eps[e]);
  }
  const dxAtol = new Float64Array(n);
  const dgAtol = new Float64Array(P);
  const dbAtol = new Float64Array(P);
  for (let e = 0; e < n; e++) {
    const k = t.group[e];
    const p = t.param[e];
    const round = ULPS * U * t.s[e] * (Math.abs(x[e]) + Math.abs(t.mu[e]));
    dxAtol[e] = t.s[e] * maxG[k] * (1e-5 * (1 + t.xhat[e]) + round) + t.s[e] * maxEps[k] * (2 + t.xhat[e]);
    dgAtol[p] += Math.abs(d[e]) * (1e-5 * t.xhat[e] + round) + Math.abs(dy[e]) * eps[e] * t.xhat[e];
    dbAtol[p] += 1e-5 * Math.abs(d[e]) + Math.abs(dy[e]) * eps[e];
  }
  return {
    dx: widen({ rtol: 1e-5, atol: dxAtol }, c.dtype),
    dgamma: { rtol: 1e-5, atol: dgAtol } as Tolerance,
    dbeta: { rtol: 1e-5, atol: dbAtol } as Tolerance,
  };
}

/** A shape of `layout` from its N, C and spatial dims (as many as the layout's rank needs). */
export function layoutShape(layout: Layout, N: number, C: number, spatial: number[]): number[] {
  return channelAxis(layout) === 1 ? [N, C, ...spatial] : [N, ...spatial, C];
}

/** Channels-first data [N, C, S] as channels-last [N, S, C] (`toLast`), or back. */
export function transposeChannels(data: ArrayLike<number>, N: number, C: number, S: number, toLast: boolean): Float32Array {
  const out = new Float32Array(N * C * S);
  for (let n = 0; n < N; n++)
    for (let ch = 0; ch < C; ch++)
      for (let s = 0; s < S; s++) {
        const first = (n * C + ch) * S + s;
        const last = (n * S + s) * C + ch;
        if (toLast) out[last] = data[first];
        else out[first] = data[last];
      }
  return out;
}

/** The channels-last twin of a channels-first layout. */
export const LAST_OF: Partial<Record<Layout, Layout>> = { NCL: 'NLC', NCHW: 'NHWC', NCDHW: 'NDHWC' };

/** Data whose groups and γ entries differ in mean and spread, so a mix-up of either cannot pass; rounded to the storage type. */
export function familyData(c: Case, seed: number): Float32Array {
  const { group, param } = partition(c);
  const z = randn(group.length, seed);
  return stored(
    z.map((v, e) => v * (0.5 + 0.25 * (param[e] % 5)) + (group[e] % 7) - 3 + 0.5 * (param[e] % 3)),
    c.dtype,
  );
}

/** Random γ (around 1) and β for a case. */
export function params(c: Case, seed: number): { gamma: Float32Array; beta: Float32Array } {
  const P = paramCount(c);
  return { gamma: randn(P, seed, 1, 0.5), beta: randn(P, seed + 1, 0, 1) };
}

/** Instance norm's running statistics as per-group statistics (group n·C + c takes channel c's), for the tolerances of inference. */
export function runningGroupStats(c: Case, runningMean: ArrayLike<number>, runningVar: ArrayLike<number>): GroupStats {
  const C = runningMean.length;
  const N = c.shape[0];
  const mean = new Float64Array(N * C);
  const variance = new Float64Array(N * C);
  for (let n = 0; n < N; n++)
    for (let ch = 0; ch < C; ch++) {
      mean[n * C + ch] = runningMean[ch];
      variance[n * C + ch] = runningVar[ch];
    }
  return { mean, variance };
}

/** InstanceNorm's running statistics out of a getState() result (which has them only with trackRunningStats). */
export function runningOf(state: { runningMean?: Float32Array; runningVar?: Float32Array }): { runningMean: Float32Array; runningVar: Float32Array } {
  if (!state.runningMean || !state.runningVar) throw new Error('getState() returned no running statistics');
  return { runningMean: state.runningMean, runningVar: state.runningVar };
}

/** Mean and variance out of a getStats() result (LayerNorm, GroupNorm, InstanceNorm). */
export function meanVarOf(stats: { mean?: Float64Array; variance?: Float64Array }): { mean: Float64Array; variance: Float64Array } {
  if (!stats.mean || !stats.variance) throw new Error(`getStats() returned no mean and variance: ${Object.keys(stats).join(', ')}`);
  return { mean: stats.mean, variance: stats.variance };
}

/** mean(x²) out of an RMSNorm getStats() result. */
export function meanSquareOf(stats: { meanSquare?: Float64Array }): Float64Array {
  if (!stats.meanSquare) throw new Error(`getStats() returned no meanSquare: ${Object.keys(stats).join(', ')}`);
  return stats.meanSquare;
}
