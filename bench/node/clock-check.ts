/**
 * bench:node's check of the clock state, which WebGPU cannot read: every case and mode times the
 * copies beside the implementations, and a copy that ran well below what the run's other copies
 * reached says the GPU was in a slower clock state for that row. After all cases ran, such rows
 * are re-sampled (their case and mode timed again, a bounded number of times), and a re-sample is
 * kept where its copy ran faster; the report marks rows that stayed slow (report.ts).
 *
 * A copy is compared with the fastest copy of at most its bytes: a small copy is bound by the
 * cost of its dispatch, not by memory, and cannot reach a large one's bandwidth at any clock (on
 * the H200, 0.7–0.95 TB/s for 2 MB against 4.2 TB/s for 400 MB).
 */
import { caseName, rowKey, type NodeRow } from './rows.js';

/** A copy below this share of the fastest comparable copy marks its row (re-sampled; "slow clock?" if it stays there). */
export const SLOW_COPY_SHARE = 0.8;

/** The fastest copy of one case and mode: its bytes (read + written) and bandwidth. */
export interface CopyBandwidth {
  key: string;
  bytes: number;
  gbPerS: number;
}

/** Each case and mode's fastest copy among rows (those with a timed copy). */
export function copyBandwidths(rows: NodeRow[]): CopyBandwidth[] {
  const best = new Map<string, CopyBandwidth>();
  for (const r of rows) {
    if (!r.impl.startsWith('copy') || !r.gbPerS) continue;
    const key = rowKey(r);
    const known = best.get(key);
    if (!known || r.gbPerS > known.gbPerS) best.set(key, { key, bytes: r.bytes, gbPerS: r.gbPerS });
  }
  return [...best.values()];
}

/** Each copy's bandwidth as a share of the fastest copy of at most its bytes (1: it is the fastest). */
export function copyShares(copies: CopyBandwidth[]): Map<string, number> {
  return new Map(copies.map((c) => [c.key, c.gbPerS / Math.max(...copies.filter((o) => o.bytes <= c.bytes).map((o) => o.gbPerS))]));
}

/** The cases and modes (row keys) whose copy ran below `share` of the fastest copy of at most its bytes. */
export function rowsToResample(copies: CopyBandwidth[], share = SLOW_COPY_SHARE): string[] {
  return [...copyShares(copies)].filter(([, s]) => s < share).map(([key]) => key);
}

/** One re-sampled case and mode in the results JSON. */
export interface Resample {
  /** The case and mode: NCHW [8,32,32,32] · inference. */
  row: string;
  attempts: number;
  /** The copy's bandwidth before, and of each attempt (GB/s). */
  copyGBs: number[];
  kept: boolean;
}

/** The results JSON's clock check: the re-samples and the rows that stayed slow with their copy's share. */
export interface ClockCheck {
  share: number;
  maxAttempts: number;
  resampled: Resample[];
  slow: Array<{ row: string; copyShare: number }>;
  /** How long the re-sampling took. */
  ms?: number;
}

/** The report's lines on the re-samples (the table marks the rows that stayed slow). */
export function resampleLines(c: ClockCheck): string[] {
  const gbs = (v: number) => v.toPrecision(3);
  return c.resampled.map((r) => `${r.row}: copy ${r.copyGBs.map(gbs).join(' → ')} GB/s, ${r.kept ? 'a faster re-sample kept' : 'the first sample kept'}${c.slow.some((s) => s.row === r.row) ? '; still slow' : ''}`);
}

/** A copy's share as the table shows it, rounded down (0.799 is 0.79, below 0.8), with "slow clock?" below SLOW_COPY_SHARE. */
export function fmtCopyShare(share: number): string {
  return `${(Math.floor(share * 100) / 100).toFixed(2)}${share < SLOW_COPY_SHARE ? ' slow clock?' : ''}`;
}

/**
 * Re-samples the slow rows up to `maxAttempts` times each, in place: `rerun` times a case and
 * mode again (given one of its rows) and returns its new rows, which replace the old ones where
 * their copy ran faster. Each round re-decides against the rows as they then are.
 */
export async function resampleSlowRows(
  rows: NodeRow[],
  maxAttempts: number,
  rerun: (row: NodeRow, attempt: number) => Promise<NodeRow[]>,
): Promise<ClockCheck> {
  const resampled = new Map<string, Resample>();
  const name = (key: string) => {
    const r = rows.find((r) => rowKey(r) === key)!;
    return `${caseName(r)} · ${r.mode}`;
  };
  const copyOf = (key: string) => copyBandwidths(rows).find((c) => c.key === key)?.gbPerS ?? 0;
  for (let attempt = 1; attempt <= maxAttempts; attempt++) {
    const slow = rowsToResample(copyBandwidths(rows));
    if (!slow.length) break;
    for (const key of slow) {
      const at = rows.findIndex((r) => rowKey(r) === key);
      const count = rows.filter((r) => rowKey(r) === key).length;
      const before = copyOf(key);
      const fresh = await rerun(rows[at], attempt);
      const after = copyBandwidths(fresh)[0]?.gbPerS ?? 0;
      const entry = resampled.get(key) ?? { row: name(key), attempts: 0, copyGBs: [before], kept: false };
      entry.attempts++;
      entry.copyGBs.push(after);
      if (after > before && fresh.every((r) => rowKey(r) === key)) {
        rows.splice(at, count, ...fresh);
        entry.kept = true;
      }
      for (const r of rows.filter((r) => rowKey(r) === key)) r.resamples = entry.attempts;
      resampled.set(key, entry);
    }
  }
  const shares = copyShares(copyBandwidths(rows));
  return {
    share: SLOW_COPY_SHARE,
    maxAttempts,
    resampled: [...resampled.values()],
    slow: [...shares].filter(([, s]) => s < SLOW_COPY_SHARE).map(([key, copyShare]) => ({ row: name(key), copyShare })),
  };
}
