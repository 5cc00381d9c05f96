/**
 * Seeded pseudo-random numbers for reproducible data and weights (tests, demo, benchmark):
 * the same seed gives the same values on every machine.
 */

/** mulberry32: a small seeded PRNG returning uniform numbers in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A standard normal sample from two uniforms of `random` (Box-Muller). */
export function gaussian(random: () => number): number {
  const u = 1 - random(); // in (0, 1]: log(u) is finite
  const v = random();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}

/** `n` normal samples with the given mean and standard deviation, from `seed`. */
export function normalSamples(n: number, seed: number, mean = 0, std = 1): Float32Array<ArrayBuffer> {
  const random = mulberry32(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = mean + std * gaussian(random);
  return out;
}
