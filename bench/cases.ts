/** The benchmark's tensors and modes (issue 4). */
import type { Layout } from '../src/core/layout.js';

/** The normalization family; a case without `norm` is a BatchNorm case. */
export const FAMILY_NORMS = ['LayerNorm', 'RMSNorm', 'GroupNorm', 'InstanceNorm'] as const;
export type FamilyNorm = (typeof FAMILY_NORMS)[number];

export interface BenchCase {
  /** For LayerNorm and RMSNorm (normalizedShape = the last dimension) the layout only says which axis is last. */
  layout: Layout;
  shape: number[];
  /** A case of the normalization family; absent: BatchNorm. */
  norm?: FamilyNorm;
  /** GroupNorm's number of groups. */
  numGroups?: number;
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

/**
 * The normalization family's cases (the speed targets): the transformer rows (LayerNorm and RMSNorm
 * over the last dimension), the UNet rows (GroupNorm with 32 groups, channels first and its
 * channels-last twin) and style transfer's InstanceNorm. 67-134 MB per tensor.
 */
export const FAMILY_CASES: BenchCase[] = [
  { norm: 'LayerNorm', layout: 'NC', shape: [8192, 4096] },
  { norm: 'LayerNorm', layout: 'NC', shape: [32768, 1024] },
  { norm: 'RMSNorm', layout: 'NC', shape: [8192, 4096] },
  { norm: 'RMSNorm', layout: 'NC', shape: [32768, 1024] },
  { norm: 'GroupNorm', numGroups: 32, layout: 'NCHW', shape: [16, 256, 64, 64] },
  { norm: 'GroupNorm', numGroups: 32, layout: 'NHWC', shape: [16, 64, 64, 256] },
  { norm: 'InstanceNorm', layout: 'NCHW', shape: [8, 64, 256, 256] },
];

/** Small twins of the family's cases for a quick run (CI on SwiftShader): the same norms, layouts and row lengths. */
export const FAMILY_QUICK_CASES: BenchCase[] = [
  { norm: 'LayerNorm', layout: 'NC', shape: [32, 4096] },
  { norm: 'RMSNorm', layout: 'NC', shape: [128, 1024] },
  { norm: 'GroupNorm', numGroups: 32, layout: 'NCHW', shape: [2, 64, 16, 16] },
  { norm: 'GroupNorm', numGroups: 32, layout: 'NHWC', shape: [2, 16, 16, 64] },
  { norm: 'InstanceNorm', layout: 'NCHW', shape: [2, 16, 32, 32] },
];

/** bench:node's quick cases: BatchNorm's three, then the family's small ones. */
export const NODE_QUICK_CASES: BenchCase[] = [...QUICK_CASES, ...FAMILY_QUICK_CASES];

export const MODES = ['inference', 'training forward', 'forward+backward'] as const;
export type Mode = (typeof MODES)[number];

/** A case of bench:node's TF.js rows (node/cases-tfjs.ts): one BatchNormalization layer, or a conv2d → BN → reLU training step; inputs NHWC. */
export interface TfjsCase {
  kind: 'layer' | 'step';
  shape: number[];
  /** conv2d's filters (a step). */
  filters?: number;
}

/** The TF.js rows' modes: the layer's training forward and forward+backward, the model's training step. */
export type TfjsMode = 'training forward' | 'forward+backward' | 'training step';

/** The TF.js rows' cases (`--cases tfjs`, part of bench:node's default run). */
export const TFJS_CASES: TfjsCase[] = [
  { kind: 'layer', shape: [8, 32, 32, 32] },
  { kind: 'layer', shape: [32, 16, 16, 64] },
  { kind: 'layer', shape: [64, 8, 8, 256] },
  { kind: 'step', shape: [8, 32, 32, 16], filters: 32 },
];

/** Their small set (`--cases tfjs-quick`, part of `--quick`): a few seconds in CI on SwiftShader. */
export const TFJS_QUICK_CASES: TfjsCase[] = [
  { kind: 'layer', shape: [4, 8, 8, 16] },
  { kind: 'step', shape: [4, 8, 8, 4], filters: 8 },
];

/** What --cases selected of the TF.js rows; `required`: named (tfjs, tfjs-quick), so that a missing TF.js fails the run. */
export interface TfjsSelection {
  cases: TfjsCase[];
  required: boolean;
}

/**
 * The family's modes: the forward pass (training and inference are the same computation for
 * these layers), and the backward pass alone (dx, dγ and dβ from x, dy and the statistics saved
 * by a forward pass recorded once before), whose compulsory bytes the issue states.
 */
export const FAMILY_MODES = ['forward', 'backward'] as const;
export type FamilyMode = (typeof FAMILY_MODES)[number];
/** A row's mode: BatchNorm's or the family's. */
export type RowMode = Mode | FamilyMode;

/** The family's modes for a selection of BatchNorm modes: forward for either forward mode, backward for forward+backward. */
export function familyModes(modes: readonly Mode[]): FamilyMode[] {
  const out: FamilyMode[] = [];
  if (modes.includes('inference') || modes.includes('training forward')) out.push('forward');
  if (modes.includes('forward+backward')) out.push('backward');
  return out;
}

/**
 * float32 values a mode must read and write at least: x and y; forward+backward adds x and dy
 * read and dx written (5); the family's backward alone reads x and dy and writes dx (3).
 */
export function compulsoryFloats(mode: RowMode, n: number): number {
  return mode === 'forward+backward' ? 5 * n : mode === 'backward' ? 3 * n : 2 * n;
}

/**
 * The floor for a family row, as a multiple of the copy of its compulsory bytes:
 * LayerNorm and RMSNorm keep a row on chip and read x once (1); GroupNorm and InstanceNorm groups
 * do not fit on chip, so two passes read x twice in forward (3 of 2 floats: 1.5) and x and dy
 * twice in backward (5 of 3: 1.67).
 */
export function twoPassFloor(norm: FamilyNorm, mode: FamilyMode): number {
  if (norm === 'LayerNorm' || norm === 'RMSNorm') return 1;
  return mode === 'forward' ? 1.5 : 5 / 3;
}

/**
 * The target for a family row on an H200 (time / copy time), as last tightened: LayerNorm
 * and RMSNorm forward 1.15, backward 1.3; GroupNorm and InstanceNorm within 10 % of the two-pass floor.
 */
export function familyTarget(norm: FamilyNorm, mode: FamilyMode): number {
  if (norm === 'LayerNorm' || norm === 'RMSNorm') return mode === 'forward' ? 1.15 : 1.3;
  return 1.1 * twoPassFloor(norm, mode);
}
