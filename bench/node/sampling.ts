/**
 * bench:node's timing of one case and mode: K repetitions per sample (chooseK), and the
 * interleaved warm-up and samples of its implementations (timeInterleaved) on bench/timing.ts's
 * GpuTimer.
 */
import type { GpuTimer } from '../timing.js';
import type { Options } from './cli.js';

/** The largest K: a guard against a timer that reads 0. */
const MAX_K = 10_000;
/** K is chosen for this much more than --min-sample-ms, so that a slightly faster sample still holds enough. */
export const K_MARGIN = 1.25;

/** K for a sample of at least `minMs` given one call's time. */
export function chooseK(perCallMs: number, minMs: number): number {
  if (!(perCallMs > 0)) return MAX_K;
  return Math.min(MAX_K, Math.max(1, Math.ceil((K_MARGIN * minMs) / perCallMs)));
}

/** An implementation timed within one case and mode. */
export interface Timed {
  impl: string;
  record: (encoder: GPUCommandEncoder) => void;
  bytes: number;
  maxError: number | null;
  ok: boolean;
  k: number;
  gpu: number[];
  wall: number[];
}

/** Warm-up (at least warmupMs, K settling), then `samples` rounds, each implementation once per round. */
export async function timeInterleaved(timer: GpuTimer, impls: Timed[], o: Options): Promise<void> {
  const started = performance.now();
  for (let round = 0; ; round++) {
    let changed = false;
    for (const t of impls) {
      const s = await timer.sampleRepeated(t.record, t.k);
      const ms = s.gpuMs ?? s.wallMs;
      if (ms < o.minSampleMs && t.k < MAX_K) {
        const k = chooseK(ms / t.k, o.minSampleMs);
        if (k > t.k) {
          t.k = k;
          changed = true;
        }
      }
    }
    const elapsed = performance.now() - started;
    if ((elapsed >= o.warmupMs && !changed && round >= 1) || round >= 100) break;
  }
  for (let round = 0; round < o.samples; round++) {
    for (let j = 0; j < impls.length; j++) {
      const t = impls[(round + j) % impls.length];
      const s = await timer.sampleRepeated(t.record, t.k);
      if (s.gpuMs !== null) t.gpu.push(s.gpuMs / t.k);
      t.wall.push(s.wallMs / t.k);
    }
  }
}
