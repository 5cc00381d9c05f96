/** How far a benchmark's output is from the float64 reference. */

/** Largest |a[i] − b[i]|; a NaN anywhere counts as Infinity, so it cannot hide behind a max. */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let worst = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (!(d <= worst)) worst = Number.isNaN(d) ? Infinity : d;
  }
  return worst;
}
