/**
 * bench:node's pieces that need no GPU: the command line, K, the adapter's file name, the table
 * (medians and minima, the copy's share of the fastest), which rows a slow copy re-samples,
 * nvidia-smi's clocks, and the PyTorch peer's answer where torch (or CUDA) is missing; and the
 * dispatch-cost micro-benchmark on the test GPU. The benchmark itself runs in CI
 * as `npm run bench:node -- --quick`, which exits non-zero on an output off the reference; the
 * normalization family's quick rows also run here, on the test GPU (SwiftShader in CI), their
 * outputs checked against the float64 reference (no timing asserted), and so do the TF.js rows'
 * quick cases, plain TF.js against TF.js + adapter (registerTfjsKernels), their outputs checked
 * against each other.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CopyKernels } from '../../bench/baseline.js';
import {
  FAMILY_CASES,
  FAMILY_QUICK_CASES,
  LARGE_CASES,
  MODES,
  NODE_CASES,
  NODE_QUICK_CASES,
  QUICK_CASES,
  TFJS_CASES,
  TFJS_QUICK_CASES,
  compulsoryFloats,
  familyModes,
  familyTarget,
  twoPassFloor,
} from '../../bench/cases.js';
import { familyGeometry } from '../../bench/family.js';
import { main, rerunRow } from '../../bench/node-bench.js';
import { TFJS, TFJS_ADAPTER, TFJS_MISSING, isMissingPackage, maxRelDiff, tfjsCaseName, tfjsModes, type TfjsResult } from '../../bench/node/cases-tfjs.js';
import { ALL_NODE_CASES, parseOptions } from '../../bench/node/cli.js';
import { SLOW_COPY_SHARE, copyBandwidths, copyShares, fmtCopyShare, resampleSlowRows, rowsToResample, type ClockCheck } from '../../bench/node/clock-check.js';
import { dispatchCostLine, measureDispatchCost, type DispatchCost } from '../../bench/node/dispatch-cost.js';
import { adapterSlug, fmtClocks, parseNvidiaClocks } from '../../bench/node/metadata.js';
import type { PeerResult } from '../../bench/node/peer-pytorch.js';
import { makeTable } from '../../bench/node/report.js';
import { BASELINE, OURS, caseName, modesOf, rowKey, type NodeRow } from '../../bench/node/rows.js';
import { chooseK } from '../../bench/node/sampling.js';
import { GpuTimer } from '../../bench/timing.js';
import { getDevice } from '../../src/core/device.js';

describe('parseOptions', () => {
  it('defaults to every case and mode, and --quick to the quick cases', () => {
    const o = parseOptions([]);
    expect(o.cases).toEqual(ALL_NODE_CASES);
    expect(o.cases.length).toBe(17);
    expect(o.modes).toEqual([...MODES]);
    expect(o.samples).toBe(7);
    expect(o.minSampleMs).toBe(4);
    expect(o.warmupMs).toBe(300);
    expect(parseOptions(['--quick']).cases).toEqual(NODE_QUICK_CASES);
    expect(NODE_QUICK_CASES).toEqual([...QUICK_CASES, ...FAMILY_QUICK_CASES]);
    expect(parseOptions(['--cases', 'batchnorm']).cases).toEqual(NODE_CASES);
    expect(parseOptions(['--cases', 'family']).cases).toEqual(FAMILY_CASES);
  });

  it('selects the TF.js rows: required where named, skippable within quick and all', () => {
    expect(parseOptions([]).tfjs).toEqual({ cases: TFJS_CASES, required: false });
    expect(parseOptions(['--quick']).tfjs).toEqual({ cases: TFJS_QUICK_CASES, required: false });
    expect(parseOptions(['--cases', 'family']).tfjs).toBeNull();
    const only = parseOptions(['--cases', 'tfjs']);
    expect(only.cases).toEqual([]);
    expect(only.tfjs).toEqual({ cases: TFJS_CASES, required: true });
    const both = parseOptions(['--cases', 'quick,tfjs-quick']);
    expect(both.cases).toEqual(NODE_QUICK_CASES);
    expect(both.tfjs).toEqual({ cases: TFJS_QUICK_CASES, required: true });
    expect(TFJS_CASES.map((c) => tfjsCaseName(c))).toContain('conv2d 3x3 → BN → reLU step NHWC [8,32,32,16] → 32');
    expect(tfjsModes(TFJS_CASES[0], MODES)).toEqual(['training forward', 'forward+backward']);
    expect(tfjsModes(TFJS_QUICK_CASES[1], ['inference', 'training forward'])).toEqual([]);
    // Where TF.js is missing: the import's error is told from others.
    const missing = Object.assign(new Error("Cannot find package '@tensorflow/tfjs' imported from /x/bench-node.mjs"), { code: 'ERR_MODULE_NOT_FOUND' });
    expect(isMissingPackage(missing, '@tensorflow/')).toBe(true);
    expect(isMissingPackage(new Error('Cannot find package \'webgpu\''), '@tensorflow/')).toBe(false);
    expect(isMissingPackage(new TypeError('x is not a function'), '@tensorflow/')).toBe(false);
    expect(TFJS_MISSING).toBe('TF.js rows skipped: @tensorflow/tfjs not installed');
  });

  it('reads the family cases, by set, by the syntax of --help and by their names', () => {
    expect(FAMILY_CASES.map((c) => caseName(c))).toEqual([
      'LayerNorm [8192,4096]',
      'LayerNorm [32768,1024]',
      'RMSNorm [8192,4096]',
      'RMSNorm [32768,1024]',
      'GroupNorm/32 NCHW [16,256,64,64]',
      'GroupNorm/32 NHWC [16,64,64,256]',
      'InstanceNorm NCHW [8,64,256,256]',
    ]);
    const o = parseOptions(['--cases', 'LayerNorm:8192x4096,rmsnorm:4x8x16,GroupNorm/8:NHWC:2x4x4x16,GroupNorm:NCHW:1x64x2x2,InstanceNorm:NCL:2x3x5']);
    expect(o.cases).toEqual([
      FAMILY_CASES[0],
      { norm: 'RMSNorm', layout: 'NLC', shape: [4, 8, 16] },
      { norm: 'GroupNorm', numGroups: 8, layout: 'NHWC', shape: [2, 4, 4, 16] },
      { norm: 'GroupNorm', numGroups: 32, layout: 'NCHW', shape: [1, 64, 2, 2] },
      { norm: 'InstanceNorm', layout: 'NCL', shape: [2, 3, 5] },
    ]);
    // A case's name reads back as the case.
    expect(parseOptions(['--cases', FAMILY_CASES.map((c) => caseName(c)).join(',')]).cases).toEqual(FAMILY_CASES);
    // And as the table prints them, beside a BatchNorm case's name.
    expect(parseOptions(['--cases', 'GroupNorm/32 NHWC [16, 64, 64, 256], NCHW [8, 32, 32, 32]']).cases).toEqual([FAMILY_CASES[5], { layout: 'NCHW', shape: [8, 32, 32, 32] }]);
    // A BatchNorm case of the same shape stays a BatchNorm case.
    expect(parseOptions(['--cases', 'NC:8192x4096,LayerNorm:8192x4096']).cases.map((c) => c.norm)).toEqual([undefined, 'LayerNorm']);
  });

  it('rejects a family case it cannot run, naming the option', () => {
    expect(() => parseOptions(['--cases', 'GroupNorm/5:NCHW:2x64x4x4'])).toThrow(/--cases GroupNorm\/5.*divide the 64 channels/);
    expect(() => parseOptions(['--cases', 'GroupNorm:2x64x4x4'])).toThrow(/needs a layout/);
    expect(() => parseOptions(['--cases', 'LayerNorm:NCHW:2x3x4x5'])).toThrow(/takes no layout/);
    expect(() => parseOptions(['--cases', 'LayerNorm/2:4x8'])).toThrow(/only GroupNorm/);
    expect(() => parseOptions(['--cases', 'LayerNorm:8'])).toThrow(/2 to 5 dimensions/);
    expect(() => parseOptions(['--cases', 'BatchNorm:NCHW:2x3x4x5'])).toThrow(/not one of LayerNorm/);
    expect(() => parseOptions(['--cases', 'InstanceNorm:NCHW:2x3x4'])).toThrow(/--cases InstanceNorm/);
  });

  it("maps the modes onto the family's forward and backward", () => {
    expect(familyModes([...MODES])).toEqual(['forward', 'backward']);
    expect(familyModes(['inference'])).toEqual(['forward']);
    expect(familyModes(['forward+backward'])).toEqual(['backward']);
    expect(parseOptions(['--modes', 'forward']).modes).toEqual(['training forward']);
    expect(compulsoryFloats('forward', 10)).toBe(20);
    expect(compulsoryFloats('backward', 10)).toBe(30);
    expect(compulsoryFloats('forward+backward', 10)).toBe(50);
    // The floors and targets.
    expect(twoPassFloor('LayerNorm', 'forward')).toBe(1);
    expect(twoPassFloor('GroupNorm', 'forward')).toBe(1.5);
    expect(twoPassFloor('InstanceNorm', 'backward')).toBeCloseTo(1.667, 3);
    expect(familyTarget('RMSNorm', 'forward')).toBe(1.15);
    expect(familyTarget('LayerNorm', 'backward')).toBe(1.3);
    expect(familyTarget('GroupNorm', 'forward')).toBeCloseTo(1.65, 10);
  });

  it("groups the family's elements as the layers do", () => {
    expect(familyGeometry(FAMILY_CASES[0])).toMatchObject({ groups: 8192, size: 4096, contiguous: true, center: true });
    expect(familyGeometry(FAMILY_CASES[3])).toMatchObject({ groups: 32768, size: 1024, contiguous: true, center: false });
    expect(familyGeometry(FAMILY_CASES[4])).toMatchObject({ groups: 16 * 32, size: 8 * 64 * 64, contiguous: true });
    expect(familyGeometry(FAMILY_CASES[5])).toMatchObject({ groups: 16 * 32, size: 8 * 64 * 64, contiguous: false, spatial: 4096, channels: 256, perGroup: 8 });
    expect(familyGeometry(FAMILY_CASES[6])).toMatchObject({ groups: 8 * 64, size: 256 * 256, contiguous: true });
  });

  it('reads cases, modes, the peer and the output path', () => {
    const o = parseOptions(['--cases', 'NCHW:2x3x4x5,large', '--modes=backward,inference', '--peer', 'pytorch', '--out', 'x.json', '--samples', '9']);
    expect(o.cases).toEqual([{ layout: 'NCHW', shape: [2, 3, 4, 5] }, ...LARGE_CASES]);
    expect(o.modes).toEqual(['inference', 'forward+backward']);
    expect(o.peer).toBe('pytorch');
    expect(o.out).toBe('x.json');
    expect(o.samples).toBe(9);
    expect(o.checkOnly).toBe(false);
    expect(o.resample).toBeNull();
    expect(parseOptions(['--resample', '0']).resample).toBe(0);
    expect(parseOptions(['--check-only', '--cases', 'family']).checkOnly).toBe(true);
  });

  it('rejects what it cannot run, naming the option', () => {
    expect(() => parseOptions(['--cases', 'NCHW:2x3'])).toThrow(/--cases NCHW:2x3/);
    expect(() => parseOptions(['--cases', 'XYZ:2x3'])).toThrow(/layout/);
    expect(() => parseOptions(['--modes', 'sideways'])).toThrow(/--modes/);
    expect(() => parseOptions(['--samples', '3'])).toThrow(/--samples/);
    expect(() => parseOptions(['--resample', '1.5'])).toThrow(/--resample/);
    expect(() => parseOptions(['--peer', 'jax'])).toThrow(/--peer/);
    expect(() => parseOptions(['--torch-compile'])).toThrow(/--peer pytorch/);
    expect(() => parseOptions(['--check-only', '--peer', 'pytorch'])).toThrow(/--check-only/);
    expect(() => parseOptions(['--fast'])).toThrow(/unknown option/);
  });
});

it("measures the TF.js rows' agreement relative to each output's size", () => {
  // Small gradients (of a mean-squared-error loss): a difference of 1e-6 on 1e-5 is 10 %, not 1e-6.
  expect(maxRelDiff([2e-5, 1.1e-5], [2e-5, 1e-5])).toBeCloseTo(0.05, 10);
  expect(maxRelDiff([300.03, -2], [300, -2])).toBeCloseTo(1e-4, 10);
  expect(maxRelDiff([0, 1e-9], [0, 0])).toBe(1e-9);
  expect(maxRelDiff([NaN, 1], [1, 1])).toBe(Infinity);
  expect(maxRelDiff([1], [1, 1])).toBe(Infinity);
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

it('makes one table line per case and mode, medians beside minima, with the PyTorch columns when the peer ran', () => {
  const row = (impl: string, ms: number, bytes = 800): NodeRow => ({
    layout: 'NC',
    shape: [10, 10],
    mode: 'inference',
    impl,
    k: 1,
    gpu: { medianMs: ms, minMs: 0.9 * ms, iterations: 7 },
    wall: { medianMs: ms, minMs: ms, iterations: 7 },
    bytes,
    gbPerS: bytes / (ms * 1e6),
    maxError: impl.startsWith('copy') ? 0 : 1e-7,
    ok: true,
  });
  const rows = [row(OURS, 2), row(BASELINE, 4), row('copy vec4', 1), row('copy vec4x4', 0.5)];
  const table = makeTable(rows, null, null).split('\n');
  expect(table.length).toBe(3);
  expect(table[0]).toMatch(/^\| layout \[shape\] \| mode \| ours ms \| ours min ms \| two-pass ms \| two-pass min ms \| copy ms \| copy min ms \| copy GB\/s \| copy \/ best copy \|/);
  // Each median, then its min; the fastest copy (by median), its min, bandwidth and share of the fastest copy (itself).
  expect(table[2]).toContain('| NC [10, 10] | inference | 2.000 | 1.800 | 4.000 | 3.600 | 0.5000 | 0.4500 | 0.00 | 1.00 | vec4x4 |');
  const peer: PeerResult = { available: true, rows: [{ ...row('eager', 8), k: 1 }, { ...row('cuda graph', 3), k: 1 }, { ...row('copy_ eager', 0.4), k: 1 }] };
  const withPeer = makeTable(rows, peer, { label: 'abc123', rows: [row(OURS, 4)] }).split('\n');
  expect(withPeer[0]).toContain('| torch eager ms | torch eager min ms | torch graph ms | torch graph min ms | vs torch eager |');
  expect(withPeer[0]).toContain('vs abc123');
  expect(withPeer[2]).toMatch(/\| 8\.000 \| 7\.200 \| 3\.000 \| 2\.700 \| 4\.00 \| 1\.50 \|/);
  expect(withPeer[2]).toMatch(/\| 2\.00 \|$/);
});

it('puts the family rows in a table of their own, with the two-pass floor and the target', () => {
  const row = (impl: string, ms: number, mode: NodeRow['mode'] = 'backward'): NodeRow => ({
    layout: 'NHWC',
    shape: [2, 4, 4, 64],
    norm: 'GroupNorm',
    numGroups: 32,
    mode,
    impl,
    k: 1,
    gpu: { medianMs: ms, minMs: ms, iterations: 7 },
    wall: null,
    bytes: 3 * 2048 * 4,
    gbPerS: 1,
    maxError: impl.startsWith('copy') ? 0 : 1e-7,
    ok: true,
  });
  const bn: NodeRow = { ...row(OURS, 1, 'inference'), norm: undefined, numGroups: undefined, layout: 'NC', shape: [10, 10] };
  const rows = [bn, row(OURS, 2), row(BASELINE, 4), row('copy vec4', 1)];
  const peer: PeerResult = { available: true, rows: [{ ...row('eager', 8), k: 1 }, { ...row('cuda graph', 3), k: 1 }, { ...row('copy_ eager', 0.5), k: 1 }] };
  const table = makeTable(rows, peer, null).split('\n');
  expect(table[0]).toMatch(/^\| layout \[shape\]/);
  const at = table.indexOf('Normalization family:');
  expect(at).toBeGreaterThan(2);
  expect(table[at + 2]).toMatch(/^\| norm \[shape\] \| mode \| ours ms \| ours min ms \| two-pass ms \| two-pass min ms .*\| two-pass floor × \| target × \| ours \/ floor \|.*\| vs torch eager \|/);
  // ours 2 ms against the copy's 1: roofline 2.00, floor 1.67, target 1.83, 1.20 of the floor, 2× the two-pass; torch 8 and 3 ms.
  expect(table[at + 4]).toMatch(/^\| GroupNorm\/32 NHWC \[2, 4, 4, 64\] \| backward \| 2\.000 \| 2\.000 \| 4\.000 \| 4\.000 \| 1\.000 \| 1\.000 \|.*\| 2\.00 \| 1\.67 \| 1\.83 \| 1\.20 \| 2\.00 \| 1\.0e-7 \/ 1\.0e-7 \| 8\.000 \| 8\.000 \| 3\.000 \| 3\.000 \| 4\.00 \| 1\.50 \|/);
  // The BatchNorm table does not take the family's peer rows.
  expect(table[2]).toMatch(/^\| NC \[10, 10\] \| inference \| 1\.000 \| 1\.000 \|  \|/);
  expect(table[0]).not.toContain('torch');
  // Only family rows: only the family table.
  expect(makeTable(rows.slice(1), null, null).split('\n')[0]).toMatch(/^\| norm \[shape\]/);
});

describe('the clock check', () => {
  // One case and mode of BatchNorm NC [n, 4]: ours, and a copy of `bytes` at `gbPerS`.
  const caseRows = (n: number, gbPerS: number, bytes = 32 * n): NodeRow[] =>
    [OURS, 'copy vec4'].map((impl) => ({
      layout: 'NC',
      shape: [n, 4],
      mode: 'inference',
      impl,
      k: 1,
      gpu: { medianMs: 1, minMs: 1, iterations: 7 },
      wall: null,
      bytes,
      gbPerS: impl === OURS ? 1 : gbPerS,
      maxError: 0,
      ok: true,
    }));
  const key = (n: number) => rowKey(caseRows(n, 1)[0]);

  it('re-samples a row whose copy ran below 80 % of the fastest copy of at most its bytes', () => {
    const copies = [
      { key: 'small', bytes: 1e6, gbPerS: 900 },
      { key: 'small slow', bytes: 1e6, gbPerS: 700 }, // 78 % of the other small one
      { key: 'medium slow', bytes: 25e6, gbPerS: 1500 }, // 48 % of the 12 MB one
      { key: 'medium', bytes: 12e6, gbPerS: 3100 },
      { key: 'large', bytes: 400e6, gbPerS: 4200 },
      { key: 'large, a bit slower', bytes: 500e6, gbPerS: 3400 }, // 81 %
    ];
    expect(SLOW_COPY_SHARE).toBe(0.8);
    // A small copy is not held to a large one's bandwidth: 900 GB/s at 1 MB is no slow clock.
    expect(rowsToResample(copies).sort()).toEqual(['medium slow', 'small slow']);
    const shares = copyShares(copies);
    expect(shares.get('small')).toBe(1);
    expect(shares.get('large')).toBe(1);
    expect(shares.get('medium slow')).toBeCloseTo(1500 / 3100, 10);
    expect(shares.get('large, a bit slower')).toBeCloseTo(3400 / 4200, 10);
    expect(rowsToResample(copies, 0.9).sort()).toEqual(['large, a bit slower', 'medium slow', 'small slow']);
    expect(rowsToResample([])).toEqual([]);
    // The table's flag: rounded down, so that a share just below 0.8 does not read 0.80.
    expect(fmtCopyShare(0.7999)).toBe('0.79 slow clock?');
    expect(fmtCopyShare(0.8)).toBe('0.80');
    // From rows: each case and mode's fastest copy.
    const rows = [...caseRows(8, 2), ...caseRows(8, 3).slice(1).map((r) => ({ ...r, impl: 'copy vec4x4' }))];
    expect(copyBandwidths(rows)).toEqual([{ key: key(8), bytes: 256, gbPerS: 3 }]);
    expect(modesOf('forward')).toEqual(['training forward']);
    expect(modesOf('backward')).toEqual(['forward+backward']);
    expect(modesOf('inference')).toEqual(['inference']);
  });

  it('keeps a re-sample where its copy ran faster, at most the given times, and marks what stayed slow', async () => {
    const rows = [...caseRows(8, 1), ...caseRows(16, 0.5), ...caseRows(32, 0.2)];
    const reruns: string[] = [];
    // The 16-row case's copy runs at full speed when timed again; the 32-row case's stays slow.
    const check = await resampleSlowRows(rows, 2, async (r, attempt) => {
      reruns.push(`${r.shape[0]}:${attempt}`);
      return caseRows(r.shape[0], r.shape[0] === 16 ? 1.5 : 0.3);
    });
    expect(reruns).toEqual(['16:1', '32:1', '32:2']);
    expect(rows.length).toBe(6);
    expect(rows.map((r) => r.shape[0])).toEqual([8, 8, 16, 16, 32, 32]);
    expect(rows[3].gbPerS).toBe(1.5);
    expect(rows[5].gbPerS).toBe(0.3);
    expect(rows.map((r) => r.resamples)).toEqual([undefined, undefined, 1, 1, 2, 2]);
    expect(check.resampled).toEqual([
      { row: 'NC [16,4] · inference', attempts: 1, copyGBs: [0.5, 1.5], kept: true },
      { row: 'NC [32,4] · inference', attempts: 2, copyGBs: [0.2, 0.3, 0.3], kept: true },
    ]);
    expect(check.slow).toEqual([{ row: 'NC [32,4] · inference', copyShare: 0.3 / 1.5 }]);
    // With no attempts, the slow rows are only marked.
    const none = await resampleSlowRows([...caseRows(8, 1), ...caseRows(16, 0.5)], 0, () => Promise.reject(new Error('not called')));
    expect(none.resampled).toEqual([]);
    expect(none.slow.map((s) => s.row)).toEqual(['NC [16,4] · inference']);
    // The table marks it.
    const table = makeTable([...caseRows(8, 1), ...caseRows(16, 0.5)], null, null).split('\n');
    expect(table[2]).toContain('| 1.00 | vec4 |');
    expect(table[3]).toContain('| 0.50 slow clock? | vec4 |');
  });
});

it("reads nvidia-smi's clocks", () => {
  const clocks = parseNvidiaClocks('1980 MHz, 3201 MHz, 1980 MHz, 3201 MHz, P0, 34');
  expect(clocks).toEqual({ sm: '1980 MHz', mem: '3201 MHz', maxSm: '1980 MHz', maxMem: '3201 MHz', pstate: 'P0', temperatureC: '34' });
  expect(fmtClocks(clocks!)).toBe('SM 1980 of 1980 MHz, memory 3201 of 3201 MHz, P0, 34 °C');
  expect(parseNvidiaClocks('No devices were found')).toBeNull();
});

// What a re-sample runs: a row's case in its mode alone, checked and timed again (a family row and a BatchNorm row).
it("times a row's case and mode again", async () => {
  // Without the flag Dawn rounds timestamps to 65,536 ns, and a tiny case on a fast CPU then times 0.
  const device = await getDevice({ dawnFlags: ['disable-dawn-features=timestamp_quantization'], label: 're-sample test' });
  const timer = new GpuTimer(device);
  const gpuErrors: string[] = [];
  try {
    const o = parseOptions(['--cases', 'InstanceNorm:NCHW:2x16x32x32,NC:64x8', '--warmup-ms', '0', '--min-sample-ms', '0']);
    const ctx = { device, timer, copies: new CopyKernels(device), o, progress: () => {}, gpuErrors };
    const row: NodeRow = { ...o.cases[0], mode: 'backward', impl: OURS, k: 1, gpu: null, wall: null, bytes: 0, gbPerS: null, maxError: null, ok: true };
    const again = await rerunRow(ctx, row);
    expect(again.map((r) => [r.mode, r.impl, r.ok])).toEqual([OURS, BASELINE, 'copy vec4', 'copy vec4x4', 'copy vec4x8', 'copy grid-stride'].map((impl) => ['backward', impl, true]));
    const bn = await rerunRow(ctx, { ...row, ...o.cases[1], norm: undefined, mode: 'training forward' });
    expect(bn.map((r) => r.mode)).toEqual(Array(6).fill('training forward'));
    for (const r of [...again, ...bn]) expect(r.gpu!.medianMs).toBeGreaterThan(0);
    expect(gpuErrors).toEqual([]);
  } finally {
    timer.destroy();
  }
}, 120_000);

// The micro-benchmark on the test GPU (SwiftShader in CI): a cost per dispatch, whatever it is.
it('measures the cost of one dependent dispatch on the test GPU', async () => {
  const device = await getDevice({ dawnFlags: ['disable-dawn-features=timestamp_quantization'], label: 'dispatch cost test' });
  const timer = new GpuTimer(device);
  try {
    const cost = await measureDispatchCost(device, timer, { n: 16, samples: 5, warmupMs: 0 });
    expect(cost).toMatchObject({ n: 16, samples: 5, timing: timer.method });
    for (const us of [cost.onePassUs, cost.perPassUs]) expect(Number.isFinite(us) && us > 0, `${us} µs`).toBe(true);
    expect(dispatchCostLine(cost)).toMatch(/^dispatch cost: [0-9.]+ µs per dependent dispatch in one pass, [0-9.]+ µs per pass \(N = 16, medians of 5, /);
  } finally {
    timer.destroy();
    device.destroy();
  }
}, 60_000);

// The family's quick rows on the test GPU: every output against the float64 reference (as CI's
// `npm run bench:node -- --quick` does for all quick cases); no timing is asserted.
it("runs the family's quick cases with every output on the reference", async () => {
  const dir = mkdtempSync(join(tmpdir(), 'bench-node-test-'));
  try {
    const out = join(dir, 'results.json');
    const code = await main(['--cases', 'family-quick', '--warmup-ms', '0', '--min-sample-ms', '0', '--out', out]);
    const result = JSON.parse(readFileSync(out, 'utf8')) as { rows: NodeRow[]; offReference: string[]; failure: string | null; table: string; clockCheck: ClockCheck; dispatchCost: DispatchCost };
    expect(result.failure).toBeNull();
    expect(result.offReference).toEqual([]);
    expect(code).toBe(0);
    const measured = result.rows.filter((r) => !r.error?.startsWith('skipped'));
    expect(measured.length).toBe(FAMILY_QUICK_CASES.length * 2 * 6);
    for (const c of FAMILY_QUICK_CASES) {
      for (const mode of ['forward', 'backward'] as const) {
        const rows = measured.filter((r) => r.norm === c.norm && r.layout === c.layout && r.shape.join() === c.shape.join() && r.mode === mode);
        expect(rows.map((r) => r.impl).slice(0, 2)).toEqual([OURS, BASELINE]);
        for (const r of rows) {
          expect(r.ok, `${caseName(c)} ${mode} ${r.impl}`).toBe(true);
          expect(r.maxError).not.toBeNull();
          if (r.impl.startsWith('copy')) expect(r.maxError).toBe(0);
          else expect(r.maxError!).toBeLessThanOrEqual(1e-4);
          expect(r.bytes).toBeGreaterThan(0);
        }
        expect(rows[0].bytes).toBe(compulsoryFloats(mode, c.shape.reduce((a, b) => a * b, 1)) * 4);
      }
    }
    expect(result.table).toContain('| LayerNorm [32, 4096] | forward |');
    // On SwiftShader (a CPU adapter) slow copies are marked, not re-sampled, unless --resample says so.
    expect(result.clockCheck.maxAttempts).toBe(0);
    expect(result.clockCheck.resampled).toEqual([]);
    expect(result.dispatchCost.onePassUs).toBeGreaterThan(0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}, 300_000);

// TF.js's quick rows on the test GPU: plain TF.js against TF.js + adapter in one process, both
// timed, their outputs checked against each other; no timing is asserted beyond being a time.
it('runs the TF.js quick rows, plain against the adapter, with their outputs agreeing', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'bench-node-test-'));
  try {
    const out = join(dir, 'results.json');
    const code = await main(['--cases', 'tfjs-quick', '--warmup-ms', '0', '--out', out]);
    const result = JSON.parse(readFileSync(out, 'utf8')) as { rows: NodeRow[]; failure: string | null; tfjs: TfjsResult; table: string };
    expect(result.failure).toBeNull();
    expect(result.rows).toEqual([]);
    expect(result.tfjs.available).toBe(true);
    expect(result.tfjs.problems).toEqual([]);
    expect(code).toBe(0);
    const expected = TFJS_QUICK_CASES.flatMap((c) => tfjsModes(c, MODES).map((mode) => ({ name: tfjsCaseName(c), mode })));
    expect(expected.length).toBe(3);
    expect(result.tfjs.rows.map((r) => [r.case, r.mode, r.impl])).toEqual(expected.flatMap(({ name, mode }) => [[name, mode, TFJS], [name, mode, TFJS_ADAPTER]]));
    expect(TFJS).toBe('TF.js');
    expect(TFJS_ADAPTER).toBe('TF.js + adapter');
    for (const r of result.tfjs.rows) {
      const what = `${r.case} ${r.mode} ${r.impl}`;
      expect(r.ok, what).toBe(true);
      expect(r.error, what).toBeUndefined();
      expect(r.leakedTensors, what).toBe(0);
      expect(r.wall!.iterations, what).toBe(7);
      for (const ms of [r.wall!.medianMs, r.wall!.minMs]) {
        expect(Number.isFinite(ms) && ms > 0, `${what}: ${ms} ms`).toBe(true);
      }
      if (r.impl === TFJS) {
        expect(r.maxRelDiff).toBeNull();
        continue;
      }
      // The agreement check: every output of the adapter against plain TF.js.
      expect(r.maxRelDiff!, what).toBeLessThanOrEqual(1e-4);
      const outputs = r.mode === 'training forward' ? ['y', 'movingMean', 'movingVariance'] : r.mode === 'forward+backward' ? ['dx', 'dgamma', 'dbeta', 'movingMean', 'movingVariance'] : ['loss', 'dkernel', 'dgamma', 'dbeta', 'movingMean', 'movingVariance'];
      for (const name of outputs) expect(r.diffs![name], `${what}: ${name}`).toBeLessThanOrEqual(1e-4);
    }
    expect(result.table).toContain('| BatchNormalization NHWC [4,8,8,16] | forward+backward | TF.js + adapter |');
    expect(result.table).not.toContain('| layout [shape] |');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}, 300_000);

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
