/**
 * bench:node's rows and the names the other modules share: the implementations' names (OURS,
 * BASELINE), ε and momentum of every case, one measured row (NodeRow), a case's name, modes and
 * the key of a case and mode among rows.
 */
import type { Layout } from '../../src/core/layout.js';
import { familyModes, type BenchCase, type FamilyNorm, type Mode, type RowMode } from '../cases.js';
import type { Summary } from '../timing.js';

export const EPS = 1e-5;
export const MOMENTUM = 0.1;

export const OURS = 'webgpu-batchnorm';
export const BASELINE = 'two-pass baseline';

/** One measured implementation in one case and mode; times are per call. */
export interface NodeRow {
  layout: Layout;
  shape: number[];
  /** The family's layer of a family row; absent: BatchNorm. */
  norm?: FamilyNorm;
  /** GroupNorm's groups. */
  numGroups?: number;
  mode: RowMode;
  impl: string;
  /** Repetitions per sample (for a CUDA graph: calls, i.e. replays x calls per graph). */
  k: number;
  /** GPU time per call (timestamp queries; CUDA events for PyTorch); null without timestamps. */
  gpu: Summary | null;
  /** Wall time per call, submit to onSubmittedWorkDone / K (not for PyTorch). */
  wall: Summary | null;
  /** Bytes the row moves per call: compulsory bytes of the mode (family: forward x and y; backward x, dy and dx), or a copy's read + written bytes. */
  bytes: number;
  gbPerS: number | null;
  /** Largest |output - reference| (y; dx for forward+backward and backward; a copy: count of differing words). */
  maxError: number | null;
  ok: boolean;
  error?: string;
  /** Times this row's case and mode was re-sampled because its copy ran slow (clock-check.ts); absent: never. */
  resamples?: number;
}

/** A case's name: NCHW [8,32,32,32] (BatchNorm), LayerNorm [8192,4096], GroupNorm/32 NHWC [16,64,64,256], InstanceNorm NCHW [8,64,256,256]. */
export function caseName(c: Pick<BenchCase, 'layout' | 'shape' | 'norm' | 'numGroups'>, separator = ','): string {
  const dims = `[${c.shape.join(separator)}]`;
  if (!c.norm) return `${c.layout} ${dims}`;
  if (c.norm === 'LayerNorm' || c.norm === 'RMSNorm') return `${c.norm} ${dims}`;
  return `${c.norm}${c.norm === 'GroupNorm' ? `/${c.numGroups ?? 32}` : ''} ${c.layout} ${dims}`;
}

/** The modes a case runs in for a selection of modes: BatchNorm's as selected, the family's by familyModes. */
export function caseModes(c: BenchCase, modes: readonly Mode[]): RowMode[] {
  return c.norm ? familyModes(modes) : [...modes];
}

/** What identifies a case and mode among rows (ours, the peer's, a compared run's). */
export function rowKey(r: { layout: string; shape: number[]; mode: string; norm?: string; numGroups?: number }): string {
  return `${r.norm ?? 'BatchNorm'}${r.numGroups ? `/${r.numGroups}` : ''} ${r.layout} ${r.shape.join('x')} ${r.mode}`;
}

/** The modes to select to run a case in one of its row modes again (a family mode: the BatchNorm mode that maps to it). */
export function modesOf(mode: RowMode): Mode[] {
  return mode === 'forward' ? ['training forward'] : mode === 'backward' ? ['forward+backward'] : [mode];
}
