/**
 * bench:node's pieces that need no GPU: the command line, K, the adapter's file name, the table,
 * and the PyTorch peer's answer where torch (or CUDA) is missing. The benchmark itself runs in CI
 * as `npm run bench:node -- --quick`, which exits non-zero on an output off the reference.
 */
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { LARGE_CASES, MODES, NODE_CASES, QUICK_CASES } from '../bench/cases.js';
import { BASELINE, OURS, adapterSlug, chooseK, makeTable, parseOptions, type NodeRow, type PeerResult } from '../bench/node-bench.js';

describe('parseOptions', () => {
  it('defaults to every case and mode, and --quick to the quick cases', () => {
    const o = parseOptions([]);
    expect(o.cases).toEqual(NODE_CASES);
    expect(o.cases.length).toBe(10);
    expect(o.modes).toEqual([...MODES]);
    expect(o.samples).toBe(7);
    expect(o.minSampleMs).toBe(4);
    expect(o.warmupMs).toBe(300);
    expect(parseOptions(['--quick']).cases).toEqual(QUICK_CASES);
  });

  it('reads cases, modes, the peer and the output path', () => {
    const o = parseOptions(['--cases', 'NCHW:2x3x4x5,large', '--modes=backward,inference', '--peer', 'pytorch', '--out', 'x.json', '--samples', '9']);
    expect(o.cases).toEqual([{ layout: 'NCHW', shape: [2, 3, 4, 5] }, ...LARGE_CASES]);
    expect(o.modes).toEqual(['inference', 'forward+backward']);
    expect(o.peer).toBe('pytorch');
    expect(o.out).toBe('x.json');
    expect(o.samples).toBe(9);
  });

  it('rejects what it cannot run, naming the option', () => {
    expect(() => parseOptions(['--cases', 'NCHW:2x3'])).toThrow(/--cases NCHW:2x3/);
    expect(() => parseOptions(['--cases', 'XYZ:2x3'])).toThrow(/layout/);
    expect(() => parseOptions(['--modes', 'sideways'])).toThrow(/--modes/);
    expect(() => parseOptions(['--samples', '3'])).toThrow(/--samples/);
    expect(() => parseOptions(['--peer', 'jax'])).toThrow(/--peer/);
    expect(() => parseOptions(['--torch-compile'])).toThrow(/--peer pytorch/);
    expect(() => parseOptions(['--fast'])).toThrow(/unknown option/);
  });
});

it('chooses K so that a sample holds at least the minimum GPU time', () => {
  expect(chooseK(10, 4)).toBe(1);
  expect(chooseK(0.005, 4) * 0.005).toBeGreaterThanOrEqual(4);
  expect(chooseK(1, 4)).toBeGreaterThanOrEqual(4);
  expect(chooseK(0, 4)).toBe(10_000);
});

it('names results files after the adapter', () => {
  expect(adapterSlug({ vendor: 'google', architecture: 'swiftshader', description: 'SwiftShader driver 5.0.0' })).toBe('google-swiftshader');
  expect(adapterSlug({ vendor: 'nvidia', architecture: 'hopper' })).toBe('nvidia-hopper');
  expect(adapterSlug({ vendor: '', architecture: '', description: 'Some GPU (x)' })).toBe('some-gpu-x');
});

it('makes one table line per case and mode, with the PyTorch columns when the peer ran', () => {
  const row = (impl: string, ms: number, bytes = 800): NodeRow => ({
    layout: 'NC',
    shape: [10, 10],
    mode: 'inference',
    impl,
    k: 1,
    gpu: { medianMs: ms, minMs: ms, iterations: 7 },
    wall: { medianMs: ms, minMs: ms, iterations: 7 },
    bytes,
    gbPerS: bytes / (ms * 1e6),
    maxError: impl.startsWith('copy') ? 0 : 1e-7,
    ok: true,
  });
  const rows = [row(OURS, 2), row(BASELINE, 4), row('copy vec4', 1), row('copy vec4x4', 0.5)];
  const table = makeTable(rows, null, null).split('\n');
  expect(table.length).toBe(3);
  expect(table[2]).toContain('| NC [10, 10] | inference | 2.000 | 4.000 | 0.5000 |');
  expect(table[2]).toContain('| vec4x4 |');
  const peer: PeerResult = { available: true, rows: [{ ...row('eager', 8), k: 1 }, { ...row('cuda graph', 3), k: 1 }, { ...row('copy_ eager', 0.4), k: 1 }] };
  const withPeer = makeTable(rows, peer, { label: 'abc123', rows: [row(OURS, 4)] }).split('\n');
  expect(withPeer[0]).toContain('vs torch eager');
  expect(withPeer[0]).toContain('vs abc123');
  expect(withPeer[2]).toMatch(/\| 8\.000 \| 3\.000 \| 4\.00 \| 1\.50 \|/);
  expect(withPeer[2]).toMatch(/\| 2\.00 \|$/);
});

it('the PyTorch peer answers with JSON, saying why when torch or CUDA is missing', () => {
  let out: string;
  try {
    out = execFileSync('python3', ['bench/pytorch_peer.py', '{"cases": []}'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    // No python3 at all: bench:node says so itself (see runPeer).
    expect((e as NodeJS.ErrnoException).code).toBe('ENOENT');
    return;
  }
  const result = JSON.parse(out.trim().split('\n').pop()!) as PeerResult;
  if (result.available) expect(result.rows).toEqual([]);
  else expect(result.reason).toMatch(/PyTorch|CUDA/);
});
