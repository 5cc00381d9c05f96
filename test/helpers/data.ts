/** Deterministic test data and a tolerance check that reports where it failed. */
import { expect } from 'vitest';

/** mulberry32: a small seeded PRNG, so every failing case can be reproduced. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `n` normal samples with the given mean and standard deviation (Box-Muller). */
export function randn(n: number, seed: number, mean = 0, std = 1): Float32Array {
  const next = rng(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const u = 1 - next();
    const v = next();
    out[i] = mean + std * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }
  return out;
}

/** Data whose channels differ in mean and spread, so a channel mix-up cannot pass. */
export function channelData(view: { outer: number; channels: number; inner: number }, seed: number): Float32Array {
  const x = randn(view.outer * view.channels * view.inner, seed);
  for (let o = 0; o < view.outer; o++)
    for (let c = 0; c < view.channels; c++)
      for (let i = 0; i < view.inner; i++) {
        const e = (o * view.channels + c) * view.inner + i;
        x[e] = x[e] * (0.5 + (c % 5)) + (c % 7) - 3;
      }
  return x;
}

/** Tolerance: |actual - expected| <= atol + rtol * |expected| elementwise. */
export interface Tolerance {
  rtol: number;
  /** One bound for all elements, or one per element. */
  atol: number | ArrayLike<number>;
}

/** Largest error relative to the tolerance; > 1 means a failure. */
export function worstError(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: Tolerance) {
  expect(actual.length, 'length').toBe(expected.length);
  let worst = { ratio: 0, index: -1, actual: 0, expected: 0 };
  for (let i = 0; i < expected.length; i++) {
    const atol = typeof tol.atol === 'number' ? tol.atol : tol.atol[i];
    const bound = atol + tol.rtol * Math.abs(expected[i]);
    const err = Math.abs(actual[i] - expected[i]);
    const ratio = Number.isNaN(err) ? Infinity : err / bound;
    if (ratio > worst.ratio) worst = { ratio, index: i, actual: actual[i], expected: expected[i] };
  }
  return worst;
}

/** Asserts every element is within tolerance, naming the worst element on failure. */
export function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: Tolerance, what: string): void {
  const w = worstError(actual, expected, tol);
  expect(
    w.ratio,
    `${what}: element ${w.index} is ${w.actual}, expected ${w.expected} (error ${w.ratio.toPrecision(3)}x the tolerance: atol ${typeof tol.atol === 'number' ? tol.atol : tol.atol[w.index]} + rtol ${tol.rtol}·|expected|)`,
  ).toBeLessThanOrEqual(1);
}
