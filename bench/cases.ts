/** The benchmark's tensors and modes (issue 4). */
import type { Layout } from '../src/tensor/layout.js';

export interface BenchCase {
  layout: Layout;
  shape: number[];
}

export const CASES: BenchCase[] = [
  { layout: 'NCHW', shape: [8, 32, 32, 32] },
  { layout: 'NCHW', shape: [32, 64, 56, 56] },
  { layout: 'NCHW', shape: [64, 256, 14, 14] },
  { layout: 'NC', shape: [4096, 1024] },
  { layout: 'NHWC', shape: [8, 32, 32, 32] },
  { layout: 'NHWC', shape: [32, 56, 56, 64] },
  { layout: 'NHWC', shape: [64, 14, 14, 256] },
];

/** Large tensors (hundreds of MB) that only bench:node runs: where the roofline is HBM's. */
export const LARGE_CASES: BenchCase[] = [
  { layout: 'NCHW', shape: [64, 64, 112, 112] },
  { layout: 'NHWC', shape: [64, 112, 112, 64] },
  { layout: 'NC', shape: [65536, 1024] },
];

/** bench:node's default cases: the browser benchmark's seven, then the large ones. */
export const NODE_CASES: BenchCase[] = [...CASES, ...LARGE_CASES];

/** A smaller set for a quick look: `npm run bench -- --quick`. */
export const QUICK_CASES: BenchCase[] = [CASES[0], CASES[4], { layout: 'NC', shape: [512, 256] }];

export const MODES = ['inference', 'training forward', 'forward+backward'] as const;
export type Mode = (typeof MODES)[number];

/** float32 values a mode must read and write at least: x and y; plus x and dy read, dx written. */
export function compulsoryFloats(mode: Mode, n: number): number {
  return mode === 'forward+backward' ? 5 * n : 2 * n;
}
