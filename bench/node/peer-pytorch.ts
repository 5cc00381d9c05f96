/**
 * bench:node's PyTorch peer: runs python3 bench/pytorch_peer.py as a subprocess, writes it the
 * cases and method as one JSON object on stdin and reads its result (PeerResult) from the last
 * line of its stdout; its progress lines pass through to stderr.
 */
import { spawn } from 'node:child_process';
import { resolve } from 'node:path';
import type { Layout } from '../../src/core/layout.js';
import { familyModes, type FamilyNorm, type RowMode } from '../cases.js';
import type { Summary } from '../timing.js';
import type { Options } from './cli.js';
import { EPS, MOMENTUM } from './rows.js';

/** What bench/pytorch_peer.py prints. */
export interface PeerResult {
  available: boolean;
  reason?: string;
  torch?: string;
  cuda?: string;
  cudnn?: number | null;
  device?: string;
  /** Set when the peer stopped early; rows holds what it measured before. */
  error?: string;
  rows?: Array<{ layout: Layout; shape: number[]; norm?: FamilyNorm; numGroups?: number; mode: RowMode; impl: string; k: number; inner?: number; gpu: Summary | null; bytes: number; gbPerS: number | null; maxError: number | null; ok: boolean; error?: string }>;
}

const PEER_SCRIPT = resolve(process.cwd(), 'bench/pytorch_peer.py');

/** Runs bench/pytorch_peer.py on the cases; its progress lines pass through to stderr. */
export async function runPeer(o: Options): Promise<PeerResult> {
  const input = JSON.stringify({
    cases: o.cases,
    modes: o.modes,
    familyModes: familyModes(o.modes),
    samples: o.samples,
    minSampleMs: o.minSampleMs,
    warmupMs: o.warmupMs,
    tolerance: o.tolerance,
    eps: EPS,
    momentum: MOMENTUM,
    compile: o.torchCompile,
  });
  return new Promise((done) => {
    let stdout = '';
    let child;
    try {
      child = spawn(o.python, [PEER_SCRIPT], { stdio: ['pipe', 'pipe', 'inherit'] });
    } catch (e) {
      done({ available: false, reason: `could not start ${o.python}: ${(e as Error).message}` });
      return;
    }
    child.on('error', (e) => done({ available: false, reason: `could not start ${o.python}: ${e.message}` }));
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.on('close', (code) => {
      const last = stdout.trim().split('\n').pop() ?? '';
      try {
        done(JSON.parse(last) as PeerResult);
      } catch {
        done({ available: false, reason: `${o.python} ${PEER_SCRIPT} exited with ${code} without a result${last ? `: ${last.slice(0, 300)}` : ''}` });
      }
    });
    child.stdin.on('error', () => {});
    child.stdin.end(input);
  });
}
