/**
 * bench:node's report: the number formats, the markdown table(s) (BatchNorm's, the family's;
 * medians and minima, each row's copy against the run's, clock-check.ts), the roofline check
 * against PyTorch's copy, and reading a run to --compare with.
 */
import { readFileSync } from 'node:fs';
import { familyTarget, twoPassFloor, type FamilyMode } from '../cases.js';
import { TFJS, TFJS_ADAPTER, type TfjsRow } from './cases-tfjs.js';
import { copyBandwidths, copyShares, fmtCopyShare } from './clock-check.js';
import type { PeerResult } from './peer-pytorch.js';
import { BASELINE, OURS, caseName, rowKey, type NodeRow } from './rows.js';

/** A time in ms with 4 significant digits or so (empty when missing). */
export function fmtMs(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return '';
  return ms >= 100 ? ms.toFixed(1) : ms >= 1 ? ms.toFixed(3) : ms.toFixed(4);
}
const fmt = (v: number | null | undefined, digits = 2) => (v === null || v === undefined || !Number.isFinite(v) ? '' : v.toFixed(digits));
export const fmtGBs = (v: number | null | undefined) => (v === null || v === undefined || !Number.isFinite(v) ? '' : v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2));
export const fmtErr = (v: number | null) => (v === null ? '' : v.toExponential(1));
const time = (r: NodeRow | undefined) => (r ? (r.gpu ?? r.wall)?.medianMs ?? null : null);
const minTime = (r: NodeRow | undefined) => (r ? (r.gpu ?? r.wall)?.minMs ?? null : null);
const ratio = (a: number | null, b: number | null) => (a !== null && b !== null && b > 0 ? a / b : null);

export interface ComparedRun {
  label: string;
  rows: NodeRow[];
}

type RowKey = Parameters<typeof rowKey>[0];

/**
 * The markdown table: one line per case and mode, medians with their minima; the family's rows
 * (if any) in a second table after BatchNorm's, with the two-pass floor and target as
 * multiples of the copy. *copy / best copy* compares each row's copy with the fastest copy of at
 * most its bytes in all the rows (clock-check.ts), "slow clock?" below 0.8.
 */
export function makeTable(rows: NodeRow[], peer: PeerResult | null, compare: ComparedRun | null): string {
  const bn = rows.filter((r) => !r.norm);
  const family = rows.filter((r) => r.norm);
  const shares = copyShares(copyBandwidths(rows));
  const tables: string[] = [];
  if (bn.length || !family.length) tables.push(makeOneTable(bn, peer, compare, false, shares));
  if (family.length) tables.push(`${bn.length ? 'Normalization family:\n\n' : ''}${makeOneTable(family, peer, compare, true, shares)}`);
  return tables.join('\n\n');
}

function makeOneTable(rows: NodeRow[], peer: PeerResult | null, compare: ComparedRun | null, family: boolean, shares: Map<string, number>): string {
  const key = rowKey;
  const groups = new Map<string, NodeRow[]>();
  for (const r of rows) groups.set(key(r), [...(groups.get(key(r)) ?? []), r]);
  const peerRows = peer?.available ? (peer.rows ?? []).filter((p) => !p.norm === !family) : [];
  const peerBy = (r: NodeRow, impl: string) => peerRows.find((p) => key(p) === key(r) && p.impl === impl) as NodeRow | undefined;
  const hasCompile = peerRows.some((p) => p.impl === 'torch.compile' && p.gpu);
  const times = ['ours ms', 'ours min ms', 'two-pass ms', 'two-pass min ms', 'copy ms', 'copy min ms', 'copy GB/s', 'copy / best copy', 'fastest copy', 'ours GB/s', 'ours roofline ×'];
  const header = family
    ? ['norm [shape]', 'mode', ...times, 'two-pass floor ×', 'target ×', 'ours / floor', 'ours vs two-pass', 'max error ours / two-pass']
    : ['layout [shape]', 'mode', ...times, 'ours vs two-pass', 'max error ours / two-pass'];
  if (peerRows.length) {
    header.push('torch eager ms', 'torch eager min ms', 'torch graph ms', 'torch graph min ms', 'vs torch eager', 'vs torch graph', 'torch roofline ×', 'torch copy GB/s', 'copy / torch copy');
    if (hasCompile) header.push('torch.compile ms', 'torch.compile min ms', 'vs torch.compile');
  }
  if (compare) header.push(`vs ${compare.label}`);
  const lines: string[][] = [];
  for (const group of groups.values()) {
    const r0 = group[0];
    const ours = group.find((r) => r.impl === OURS)!;
    const name = caseName(r0, ', ');
    if (ours.error?.startsWith('skipped')) {
      lines.push([name, r0.mode, ours.error, ...header.slice(3).map(() => '')]);
      continue;
    }
    const base = group.find((r) => r.impl === BASELINE);
    const copy = group.filter((r) => r.impl.startsWith('copy') && time(r) !== null).sort((a, b) => time(a)! - time(b)!)[0];
    const roofline = ratio(time(ours), time(copy));
    const share = shares.get(key(ours));
    const line = [name, r0.mode, fmtMs(time(ours)), fmtMs(minTime(ours)), fmtMs(time(base)), fmtMs(minTime(base)), fmtMs(time(copy)), fmtMs(minTime(copy))];
    line.push(fmtGBs(copy?.gbPerS), share === undefined ? '' : fmtCopyShare(share), copy?.impl.replace(/^copy /, '') ?? '', fmtGBs(ours.gbPerS), fmt(roofline));
    if (family) {
      const floor = twoPassFloor(r0.norm!, r0.mode as FamilyMode);
      line.push(fmt(floor), fmt(familyTarget(r0.norm!, r0.mode as FamilyMode)), fmt(roofline === null ? null : roofline / floor));
    }
    line.push(fmt(ratio(time(base), time(ours))), `${fmtErr(ours.maxError)} / ${fmtErr(base?.maxError ?? null)}`);
    if (peerRows.length) {
      const eager = peerBy(ours, 'eager');
      const graph = peerBy(ours, 'cuda graph');
      const torchCopy = peerRows
        .filter((p) => key(p) === key(ours) && p.impl.startsWith('copy') && p.gbPerS !== null)
        .sort((a, b) => b.gbPerS! - a.gbPerS!)[0];
      const bestTorch = [eager, graph].filter((r) => r && time(r) !== null).sort((a, b) => time(a!)! - time(b!)!)[0];
      line.push(
        fmtMs(time(eager)),
        fmtMs(minTime(eager)),
        fmtMs(time(graph)),
        fmtMs(minTime(graph)),
        fmt(ratio(time(eager), time(ours))),
        fmt(ratio(time(graph), time(ours))),
        fmt(ratio(time(bestTorch), time(copy))),
        fmtGBs(torchCopy?.gbPerS),
        fmt(ratio(copy?.gbPerS ?? null, torchCopy?.gbPerS ?? null)),
      );
      if (hasCompile) {
        const compiled = peerBy(ours, 'torch.compile');
        line.push(fmtMs(time(compiled)), fmtMs(minTime(compiled)), fmt(ratio(time(compiled), time(ours))));
      }
    }
    if (compare) {
      const theirs = compare.rows.find((r) => key(r) === key(ours) && r.impl === OURS);
      line.push(fmt(ratio(time(theirs), time(ours))));
    }
    lines.push(line);
  }
  return [header, header.map(() => '---'), ...lines].map((cols) => `| ${cols.join(' | ')} |`).join('\n');
}

/**
 * The TF.js rows' table: per case and mode, plain TF.js and TF.js + adapter, their wall times,
 * the adapter's speed-up (plain median / adapter median) and its largest relative difference
 * from plain TF.js.
 */
export function makeTfjsTable(rows: TfjsRow[]): string {
  const header = ['TF.js case', 'mode', 'implementation', 'median ms', 'min ms', 'vs TF.js', 'max rel. diff vs TF.js', 'check'];
  const lines = rows.map((r) => {
    const plain = r.impl === TFJS_ADAPTER ? rows.find((p) => p.impl === TFJS && p.case === r.case && p.mode === r.mode) : undefined;
    const speedup = ratio(plain?.wall?.medianMs ?? null, r.wall?.medianMs ?? null);
    return [r.case, r.mode, r.impl, fmtMs(r.wall?.medianMs), fmtMs(r.wall?.minMs), speedup === null ? '' : `${speedup.toFixed(2)}×`, fmtErr(r.maxRelDiff), r.ok ? 'ok' : `FAILED: ${r.error}`];
  });
  return [header, header.map(() => '---'), ...lines].map((cols) => `| ${cols.join(' | ')} |`).join('\n');
}

/** Item 2's check: our fastest copy against PyTorch's copy where the tensor is at least 25 MB. */
export function rooflineCheck(rows: NodeRow[], peer: PeerResult | null): string[] {
  if (!peer?.available) return [];
  const lines: string[] = [];
  for (const r of rows.filter((r) => r.impl === OURS && r.shape.reduce((a, b) => a * b, 1) * 4 >= 25e6)) {
    const same = (p: RowKey) => rowKey(p) === rowKey(r);
    const ours = rows.filter((p) => same(p) && p.impl.startsWith('copy') && p.gbPerS).sort((a, b) => b.gbPerS! - a.gbPerS!)[0];
    const torch = (peer.rows ?? []).filter((p) => same(p) && p.impl.startsWith('copy') && p.gbPerS).sort((a, b) => b.gbPerS! - a.gbPerS!)[0];
    if (!ours || !torch) continue;
    const share = ours.gbPerS! / torch.gbPerS!;
    lines.push(`${caseName(r)} ${r.mode}: ${ours.impl} ${ours.gbPerS!.toFixed(0)} GB/s = ${(100 * share).toFixed(0)} % of PyTorch's ${torch.impl} ${torch.gbPerS!.toFixed(0)} GB/s ${share >= 0.9 ? 'ok' : 'BELOW 90 %'}`);
  }
  return lines;
}

/** A results JSON of another run, for --compare. */
export function readCompare(path: string): ComparedRun {
  const data = JSON.parse(readFileSync(path, 'utf8')) as { commit?: string; rows: NodeRow[] };
  return { label: data.commit ? data.commit.split(' ')[0] : path, rows: data.rows };
}
