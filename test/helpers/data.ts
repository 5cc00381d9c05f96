/** Deterministic test data and a tolerance check that reports where it failed. */
import { expect } from 'vitest';
import { mulberry32, normalSamples } from '../../support/random.js';

/** A seeded PRNG (mulberry32), so every failing case can be reproduced. */
export const rng = mulberry32;

/** `n` normal samples with the given mean and standard deviation. */
export const randn = normalSamples;

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

/** The error classes a check throws. */
export type ErrorClass = typeof TypeError | typeof RangeError;

/** The error `fn` throws, which must be of `type` with the message `message` (a string: exactly). */
export function expectError(fn: () => unknown, type: ErrorClass, message: string | RegExp): void {
  let error: unknown = null;
  try {
    fn();
  } catch (e) {
    error = e;
  }
  expect(error, 'it throws').toBeInstanceOf(type);
  if (typeof message === 'string') expect((error as Error).message).toBe(message);
  else expect((error as Error).message).toMatch(message);
}
