/**
 * `npm run bench:node`: the benchmark in Node through Dawn (the `webgpu` package) on whatever
 * adapter getDevice finds: a GPU driver where there is one, SwiftShader otherwise. The same
 * implementations as the browser benchmark (webgpu-batchnorm, the two-pass baseline, the copy
 * roofline: here the fastest of several copy kernels), each output checked against the float64
 * reference, and optionally PyTorch on the same cases (bench/pytorch_peer.py).
 *
 * The normalization family has cases of its own (FAMILY_CASES in cases.ts): LayerNorm,
 * RMSNorm, GroupNorm and InstanceNorm of this library against a two-pass family baseline
 * (family-baseline.wgsl) and the same copies, in two modes, forward and backward alone (bench/family.ts).
 *
 * Method: Dawn's timestamp quantization off; per case and mode, a warm-up of at least
 * --warmup-ms with the implementations interleaved; then --samples rounds, each timing every
 * implementation once (order rotated each round): K repetitions recorded into one encoder between
 * two timestamp writes, K chosen per implementation so that one sample holds at least
 * --min-sample-ms of GPU work. Times are per call (sample / K); medians; ratios on GPU time.
 *
 * bench/node.mjs builds this file with vite and calls main(); run `npm run bench:node -- --help`.
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { BatchNorm } from '../src/batchnorm/layer.js';
import { getDevice } from '../src/core/device.js';
import { readBuffers } from '../src/core/gpu.js';
import { channelAxis, checkLayout, channelView, viewSize, type Layout } from '../src/core/layout.js';
import { referenceBackward, referenceNormalize, referenceStats } from '../src/batchnorm/reference.js';
import { normalSamples } from '../support/random.js';
import { COPY_VARIANTS, CopyKernels, TwoPassBaseline, type CopyVariant } from './baseline.js';
import {
  CASES,
  FAMILY_CASES,
  FAMILY_NORMS,
  FAMILY_QUICK_CASES,
  LARGE_CASES,
  MODES,
  NODE_CASES,
  NODE_QUICK_CASES,
  compulsoryFloats,
  familyModes,
  familyTarget,
  twoPassFloor,
  type BenchCase,
  type FamilyMode,
  type FamilyNorm,
  type Mode,
  type RowMode,
} from './cases.js';
import { FamilyTwoPassBaseline, familyGeometry, familyReference, makeFamilyLayer, rowLayout } from './family.js';
import { GpuTimer, summarize, type Summary } from './timing.js';
import { maxAbsDiff } from './compare.js';

const EPS = 1e-5;
const MOMENTUM = 0.1;
const DAWN_FLAGS = ['disable-dawn-features=timestamp_quantization'];
/** The largest K: a guard against a timer that reads 0. */
const MAX_K = 10_000;
/** K is chosen for this much more than --min-sample-ms, so that a slightly faster sample still holds enough. */
const K_MARGIN = 1.25;

export const OURS = 'webgpu-batchnorm';
export const BASELINE = 'two-pass baseline';

/** Every case bench:node knows: BatchNorm's ten, then the family's seven. */
export const ALL_NODE_CASES: BenchCase[] = [...NODE_CASES, ...FAMILY_CASES];

const USAGE = `npm run bench:node -- [options]

  --quick              the quick cases (${NODE_QUICK_CASES.map((c) => caseName(c)).join(', ')})
  --cases LIST         comma-separated: LAYOUT:DIMS (a BatchNorm case, e.g. NCHW:8x32x32x32, NC:4096x1024),
                       LayerNorm:DIMS, RMSNorm:DIMS (normalizedShape = the last dimension, e.g.
                       LayerNorm:8192x4096), GroupNorm/G:LAYOUT:DIMS (e.g. GroupNorm/32:NHWC:16x64x64x256),
                       InstanceNorm:LAYOUT:DIMS, or a set: default (the browser bench's 7), large (3 of
                       several hundred MB), batchnorm (the 10 BatchNorm cases), family (the family's 7),
                       family-quick (their 5 small twins), quick, all (17); default: all (quick with --quick)
  --modes LIST         comma-separated: inference, training, backward (= forward+backward), forward
                       (= training); default: all 3. Family cases run forward when inference or training
                       is selected, and backward (alone) when backward is
  --samples N          samples per implementation, median reported (>= 7; default 7)
  --min-sample-ms MS   GPU work per sample; K repetitions per sample are chosen to reach it (default 4)
  --warmup-ms MS       warm-up per case and mode, implementations interleaved (default 300)
  --tolerance T        largest |output - float64 reference| accepted (default 1e-4)
  --peer pytorch       also run torch.nn.functional.batch_norm (bench/pytorch_peer.py) when python3
                       has torch with CUDA: eager and CUDA-graph replay, plus PyTorch's copy
  --torch-compile      with --peer pytorch, also torch.compile (slow to compile: best with few --cases)
  --check-only         check every output against the reference and time nothing (large cases on a
                       slow adapter such as SwiftShader); no PyTorch peer
  --python PATH        the Python to run the peer with (default python3)
  --compare FILE       a results JSON of another run (another commit): adds a "vs" column
  --out FILE           results JSON path (default: $OUT/results-node-<adapter>.json when OUT is set,
                       else bench/results-node-<adapter>.json); the table goes beside it as .md

Exits 1 if any output of webgpu-batchnorm, the baseline or a copy is off the reference (or a GPU
error occurred); timings are never asserted.`;

/** Command-line options. */
export interface Options {
  cases: BenchCase[];
  modes: Mode[];
  quick: boolean;
  samples: number;
  minSampleMs: number;
  warmupMs: number;
  tolerance: number;
  peer: 'pytorch' | null;
  torchCompile: boolean;
  /** Check every output, time nothing. */
  checkOnly: boolean;
  python: string;
  compare: string | null;
  out: string | null;
  help: boolean;
}

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

const MODE_ALIASES: Record<string, Mode> = {
  inference: 'inference',
  training: 'training forward',
  'training-forward': 'training forward',
  'training forward': 'training forward',
  backward: 'forward+backward',
  'forward+backward': 'forward+backward',
  'fwd+bwd': 'forward+backward',
  forward: 'training forward',
};

/** Parses a family case: LayerNorm:DIMS, RMSNorm:DIMS, GroupNorm[/G]:LAYOUT:DIMS, InstanceNorm:LAYOUT:DIMS (also with [d,d,...]). */
function parseFamilyCase(item: string): BenchCase | null {
  const m = /^([A-Za-z]+Norm)(?:\/([0-9]+))?(?:[: ]([A-Z]+))?\s*[:[]\s*([0-9x, ]+)]?$/i.exec(item);
  if (!m) return null;
  const norm = FAMILY_NORMS.find((n) => n.toLowerCase() === m[1].toLowerCase());
  if (!norm) throw new Error(`--cases: '${m[1]}' in '${item}' is not one of ${FAMILY_NORMS.join(', ')}`);
  const shape = m[4].split(/[x, ]+/).filter(Boolean).map(Number);
  if (m[2] !== undefined && norm !== 'GroupNorm') throw new Error(`--cases ${item}: only GroupNorm takes /GROUPS`);
  const rows = norm === 'LayerNorm' || norm === 'RMSNorm';
  if (rows && m[3] !== undefined) throw new Error(`--cases ${item}: ${norm} takes no layout (it normalizes the last dimension): ${norm}:DIMS`);
  if (!rows && m[3] === undefined) throw new Error(`--cases ${item}: ${norm} needs a layout: ${norm}${norm === 'GroupNorm' ? '/G' : ''}:LAYOUT:DIMS`);
  let layout: Layout;
  if (rows) {
    if (shape.length < 2 || shape.length > 5) throw new Error(`--cases ${item}: ${norm} needs 2 to 5 dimensions; got ${shape.length}`);
    layout = rowLayout(shape.length);
  } else {
    const given: string = m[3];
    checkLayout(given, '--cases layout');
    layout = given;
  }
  channelView(layout, shape, `--cases ${item}`);
  const c: BenchCase = { norm, layout, shape };
  if (norm === 'GroupNorm') {
    const G = m[2] === undefined ? 32 : Number(m[2]);
    const C = shape[channelAxis(layout)];
    if (!(G >= 1 && C % G === 0)) throw new Error(`--cases ${item}: GroupNorm's groups (${G}) must divide the ${C} channels`);
    c.numGroups = G;
  }
  return c;
}

function parseCases(list: string): BenchCase[] {
  const out: BenchCase[] = [];
  // Commas separate cases, except inside a name's brackets (NCHW [8,32,32,32]).
  for (const item of list.split(/,(?![^[]*])/).map((s) => s.trim()).filter(Boolean)) {
    const named: Record<string, BenchCase[]> = {
      default: CASES,
      large: LARGE_CASES,
      batchnorm: NODE_CASES,
      family: FAMILY_CASES,
      'family-quick': FAMILY_QUICK_CASES,
      all: ALL_NODE_CASES,
      quick: NODE_QUICK_CASES,
    };
    if (item in named) {
      out.push(...named[item]);
      continue;
    }
    const family = parseFamilyCase(item);
    if (family) {
      out.push(family);
      continue;
    }
    const m = /^([A-Z]+)\s*[:[]([0-9x, ]+)]?$/.exec(item);
    if (!m) {
      throw new Error(
        `--cases: '${item}' is not LAYOUT:DIMS (e.g. NCHW:8x32x32x32), LayerNorm:DIMS, RMSNorm:DIMS, GroupNorm/G:LAYOUT:DIMS, InstanceNorm:LAYOUT:DIMS or default, large, batchnorm, family, family-quick, quick, all`,
      );
    }
    const layout = m[1];
    checkLayout(layout, '--cases layout');
    const shape = m[2].split(/[x, ]+/).filter(Boolean).map(Number);
    channelView(layout, shape, `--cases ${item}`);
    out.push({ layout, shape });
  }
  const seen = new Set<string>();
  return out.filter((c) => !seen.has(caseName(c)) && (seen.add(caseName(c)), true));
}

/** Parses the command line (throws an Error naming the bad option). */
export function parseOptions(argv: string[]): Options {
  const o: Options = {
    cases: ALL_NODE_CASES,
    modes: [...MODES],
    quick: false,
    samples: 7,
    minSampleMs: 4,
    warmupMs: 300,
    tolerance: 1e-4,
    peer: null,
    torchCompile: false,
    checkOnly: false,
    python: 'python3',
    compare: null,
    out: null,
    help: false,
  };
  let cases: string | null = null;
  const number = (name: string, v: string, min: number) => {
    const x = Number(v);
    if (!(Number.isFinite(x) && x >= min)) throw new Error(`${name} must be a number >= ${min}; got '${v}'`);
    return x;
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const [flag, inline] = arg.startsWith('--') && arg.includes('=') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg, undefined];
    const value = () => {
      const v = inline ?? argv[++i];
      if (v === undefined) throw new Error(`${flag} needs a value`);
      return v;
    };
    switch (flag) {
      case '--quick':
        o.quick = true;
        break;
      case '--cases':
        cases = value();
        break;
      case '--modes':
        o.modes = value()
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean)
          .map((s) => {
            const mode = MODE_ALIASES[s];
            if (!mode) throw new Error(`--modes: '${s}' is not inference, training, forward or backward`);
            return mode;
          });
        o.modes = MODES.filter((m) => o.modes.includes(m));
        break;
      case '--samples':
        o.samples = number(flag, value(), 7);
        if (!Number.isInteger(o.samples)) throw new Error(`--samples must be an integer; got ${o.samples}`);
        break;
      case '--min-sample-ms':
        o.minSampleMs = number(flag, value(), 0);
        break;
      case '--warmup-ms':
        o.warmupMs = number(flag, value(), 0);
        break;
      case '--tolerance':
        o.tolerance = number(flag, value(), 0);
        break;
      case '--peer': {
        const v = value();
        if (v !== 'pytorch') throw new Error(`--peer: only 'pytorch' is supported; got '${v}'`);
        o.peer = 'pytorch';
        break;
      }
      case '--check-only':
        o.checkOnly = true;
        break;
      case '--torch-compile':
        o.torchCompile = true;
        break;
      case '--python':
        o.python = value();
        break;
      case '--compare':
        o.compare = value();
        break;
      case '--out':
        o.out = value();
        break;
      case '--help':
      case '-h':
        o.help = true;
        break;
      default:
        throw new Error(`unknown option '${arg}'`);
    }
  }
  o.cases = cases !== null ? parseCases(cases) : o.quick ? NODE_QUICK_CASES : ALL_NODE_CASES;
  if (o.cases.length === 0) throw new Error('--cases selects no case');
  if (o.modes.length === 0) throw new Error('--modes selects no mode');
  if (o.torchCompile && !o.peer) throw new Error('--torch-compile needs --peer pytorch');
  if (o.checkOnly && o.peer) throw new Error('--check-only times nothing: it takes no --peer');
  return o;
}

/** A file-name-safe name of the adapter, e.g. google-swiftshader or nvidia-hopper. */
export function adapterSlug(info: { vendor?: string; architecture?: string; description?: string }): string {
  const parts = [info.vendor, info.architecture].filter((s) => s && s.length > 0) as string[];
  const raw = parts.length ? parts.join('-') : info.description || 'unknown';
  return raw.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '') || 'unknown';
}

/** K for a sample of at least `minMs` given one call's time. */
export function chooseK(perCallMs: number, minMs: number): number {
  if (!(perCallMs > 0)) return MAX_K;
  return Math.min(MAX_K, Math.max(1, Math.ceil((K_MARGIN * minMs) / perCallMs)));
}

function countDiffering(a: Uint32Array, b: Uint32Array): number {
  let bad = 0;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) bad++;
  return bad;
}

async function readFloats(device: GPUDevice, buffer: GPUBuffer, n: number): Promise<Float32Array> {
  const [bytes] = await readBuffers(device, [{ buffer, size: n * 4 }]);
  return new Float32Array(bytes);
}

/** An implementation timed within one case and mode. */
interface Timed {
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
async function timeInterleaved(timer: GpuTimer, impls: Timed[], o: Options): Promise<void> {
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

interface CaseContext {
  device: GPUDevice;
  timer: GpuTimer;
  copies: CopyKernels;
  o: Options;
  progress: (row: NodeRow) => void;
  gpuErrors: string[];
}

async function benchCase(ctx: CaseContext, c: BenchCase): Promise<NodeRow[]> {
  const { device, timer, copies, o } = ctx;
  const view = channelView(c.layout, c.shape);
  const n = viewSize(view);
  const C = view.channels;
  const vec4Bytes = (floats: number) => Math.ceil(floats / 4) * 16;
  const largest = vec4Bytes(2.5 * n);
  const limit = Math.min(device.limits.maxStorageBufferBindingSize, device.limits.maxBufferSize);
  const skipped = (error: string): NodeRow[] =>
    o.modes.map((mode) => ({ layout: c.layout, shape: c.shape, mode, impl: OURS, k: 0, gpu: null, wall: null, bytes: 0, gbPerS: null, maxError: null, ok: true, error }));
  if (largest > limit) return skipped(`skipped: a ${(largest / 2 ** 20).toFixed(0)} MiB buffer exceeds this device's ${(limit / 2 ** 20).toFixed(0)} MiB binding limit`);

  const x = normalSamples(n, 1, 1, 2);
  const dy = normalSamples(n, 2, 0, 1);
  // The running statistics are set to the batch statistics, so inference and training give the same y.
  const stats = referenceStats(x, view);
  const ones = new Float64Array(C).fill(1);
  const refY = referenceNormalize(x, view, { mean: stats.mean, variance: stats.variance, gamma: ones, beta: new Float64Array(C), eps: EPS });
  const refDx = o.modes.includes('forward+backward')
    ? referenceBackward(x, dy, view, { mean: stats.mean, variance: stats.variance, gamma: ones, eps: EPS, batchStats: true }).dx
    : null;

  const { buffers, buffer, xBuf, yBuf, dyBuf, dxBuf, copySrc, copyData } = caseBuffers(device, x, dy, largest);
  const copyDst = { forward: buffer('copy dst forward', vec4Bytes(n)), full: buffer('copy dst forward+backward', largest) };

  const bn = new BatchNorm(device, { numFeatures: C, layout: c.layout, eps: EPS, momentum: MOMENTUM, label: 'bench' });
  const baseline = new TwoPassBaseline(device, view, EPS, MOMENTUM);
  const runningPairs = new Float32Array(2 * C);
  for (let k = 0; k < C; k++) runningPairs.set([stats.mean[k], stats.variance[k]], 2 * k);
  const resetRunning = () => {
    bn.setState({ runningMean: stats.mean, runningVar: stats.variance });
    device.queue.writeBuffer(baseline.running, 0, runningPairs);
  };

  const rows: NodeRow[] = [];
  try {
    for (const mode of o.modes) {
      const bytes = compulsoryFloats(mode, n) * 4;
      const training = mode !== 'inference';
      const backward = mode === 'forward+backward';
      const out = backward ? dxBuf : yBuf;
      const ref = backward ? refDx! : refY;
      const timed: Timed[] = [];
      const add = (impl: string, record: (e: GPUCommandEncoder) => void, implBytes: number) => {
        const t: Timed = { impl, record, bytes: implBytes, maxError: null, ok: true, k: 1, gpu: [], wall: [] };
        timed.push(t);
        return t;
      };
      const clear = (b: GPUBuffer) => {
        const e = device.createCommandEncoder({ label: 'bench clear' });
        e.clearBuffer(b);
        device.queue.submit([e.finish()]);
      };
      const checkAgainstReference = async (t: Timed) => {
        resetRunning();
        clear(out);
        await timer.sampleRepeated(t.record, 1);
        t.maxError = maxAbsDiff(await readFloats(device, out, n), ref);
        t.ok = t.maxError <= o.tolerance;
      };

      await checkAgainstReference(
        add(
          OURS,
          (e) => {
            bn.encodeForward(e, { x: xBuf, y: yBuf, shape: c.shape, training });
            if (backward) bn.encodeBackward(e, { x: xBuf, dy: dyBuf, dx: dxBuf, shape: c.shape });
          },
          bytes,
        ),
      );
      await checkAgainstReference(
        add(
          BASELINE,
          (e) => {
            baseline.encodeForward(e, xBuf, yBuf, training);
            if (backward) baseline.encodeBackward(e, xBuf, dyBuf, dxBuf);
          },
          bytes,
        ),
      );
      const dst = backward ? copyDst.full : copyDst.forward;
      const expected = new Uint32Array(copyData.buffer, 0, dst.size / 4);
      for (const variant of Object.keys(COPY_VARIANTS) as CopyVariant[]) {
        const t = add(variant, (e) => copies.encode(e, variant, copySrc, dst), 2 * dst.size);
        clear(dst);
        await timer.sampleRepeated(t.record, 1);
        const [got] = await readBuffers(device, [{ buffer: dst, size: dst.size }]);
        t.maxError = countDiffering(new Uint32Array(got), expected);
        t.ok = t.maxError === 0;
      }
      resetRunning();
      if (!o.checkOnly) await timeInterleaved(timer, timed, o);
      await device.queue.onSubmittedWorkDone();

      rows.push(...finishRows(ctx, { layout: c.layout, shape: c.shape }, mode, timed));
    }
  } finally {
    bn.destroy();
    baseline.destroy();
    for (const b of buffers) b.destroy();
  }
  return rows;
}

/**
 * A family case: the library's layer, the two-pass family baseline and the copies,
 * in forward (x read, y written) and backward alone (x and dy read, dx written; the statistics
 * come from one forward pass recorded before, as a training step has them), each output checked
 * against the float64 reference (γ = 1, β = 0).
 */
async function benchFamilyCase(ctx: CaseContext, c: BenchCase): Promise<NodeRow[]> {
  const { device, timer, copies, o } = ctx;
  const modes = familyModes(o.modes);
  const geometry = familyGeometry(c);
  const n = geometry.total;
  const vec4Bytes = (floats: number) => Math.ceil(floats / 4) * 16;
  const largest = vec4Bytes((modes.includes('backward') ? 1.5 : 1) * n);
  const limit = Math.min(device.limits.maxStorageBufferBindingSize, device.limits.maxBufferSize);
  const base = { layout: c.layout, shape: c.shape, norm: c.norm, ...(c.numGroups !== undefined ? { numGroups: c.numGroups } : {}) };
  const skipped = (error: string): NodeRow[] =>
    modes.map((mode) => ({ ...base, mode, impl: OURS, k: 0, gpu: null, wall: null, bytes: 0, gbPerS: null, maxError: null, ok: true, error }));
  const biggest = Math.max(largest, n * 4);
  if (biggest > limit) return skipped(`skipped: a ${(biggest / 2 ** 20).toFixed(0)} MiB buffer exceeds this device's ${(limit / 2 ** 20).toFixed(0)} MiB binding limit`);

  const x = normalSamples(n, 1, 1, 2);
  const dy = normalSamples(n, 2, 0, 1);

  const { buffers, buffer, xBuf, yBuf, dyBuf, dxBuf, copySrc, copyData } = caseBuffers(device, x, dy, largest);
  const copyDst = { forward: buffer('copy dst forward', vec4Bytes(n)), backward: buffer('copy dst backward', largest) };

  const layer = makeFamilyLayer(device, c, EPS);
  const baseline = new FamilyTwoPassBaseline(device, geometry, EPS);
  const submit = (record: (e: GPUCommandEncoder) => void) => {
    const e = device.createCommandEncoder({ label: 'bench setup' });
    record(e);
    device.queue.submit([e.finish()]);
  };

  const rows: NodeRow[] = [];
  try {
    for (const mode of modes) {
      const bytes = compulsoryFloats(mode, n) * 4;
      const backward = mode === 'backward';
      const out = backward ? dxBuf : yBuf;
      const ref = familyReference(c, mode, x, dy, EPS);
      const timed: Timed[] = [];
      const add = (impl: string, record: (e: GPUCommandEncoder) => void, implBytes: number) => {
        const t: Timed = { impl, record, bytes: implBytes, maxError: null, ok: true, k: 1, gpu: [], wall: [] };
        timed.push(t);
        return t;
      };
      const checkAgainstReference = async (t: Timed) => {
        submit((e) => e.clearBuffer(out));
        await timer.sampleRepeated(t.record, 1);
        t.maxError = maxAbsDiff(await readFloats(device, out, n), ref);
        t.ok = t.maxError <= o.tolerance;
      };
      if (backward) {
        // The statistics backward reads: one forward pass of each, recorded once.
        submit((e) => {
          layer.encodeForward(e, { x: xBuf, y: yBuf, shape: c.shape });
          baseline.encodeForward(e, xBuf, yBuf);
        });
      }
      await checkAgainstReference(
        add(OURS, backward ? (e) => layer.encodeBackward(e, { x: xBuf, dy: dyBuf, dx: dxBuf, shape: c.shape }) : (e) => layer.encodeForward(e, { x: xBuf, y: yBuf, shape: c.shape }), bytes),
      );
      await checkAgainstReference(add(BASELINE, backward ? (e) => baseline.encodeBackward(e, xBuf, dyBuf, dxBuf) : (e) => baseline.encodeForward(e, xBuf, yBuf), bytes));
      const dst = backward ? copyDst.backward : copyDst.forward;
      const expected = new Uint32Array(copyData.buffer, 0, dst.size / 4);
      for (const variant of Object.keys(COPY_VARIANTS) as CopyVariant[]) {
        const t = add(variant, (e) => copies.encode(e, variant, copySrc, dst), 2 * dst.size);
        submit((e) => e.clearBuffer(dst));
        await timer.sampleRepeated(t.record, 1);
        const [got] = await readBuffers(device, [{ buffer: dst, size: dst.size }]);
        t.maxError = countDiffering(new Uint32Array(got), expected);
        t.ok = t.maxError === 0;
      }
      if (!o.checkOnly) await timeInterleaved(timer, timed, o);
      await device.queue.onSubmittedWorkDone();
      rows.push(...finishRows(ctx, base, mode, timed));
    }
  } finally {
    layer.destroy();
    baseline.destroy();
    for (const b of buffers) b.destroy();
  }
  return rows;
}

/** The rows of one case and mode from its timed implementations (GPU errors since the last mode mark them all). */
function finishRows(ctx: CaseContext, base: Pick<NodeRow, 'layout' | 'shape' | 'norm' | 'numGroups'>, mode: RowMode, timed: Timed[]): NodeRow[] {
  const rows: NodeRow[] = [];
  for (const t of timed) {
    const gpu = t.gpu.length ? summarize(t.gpu) : null;
    const wall = t.wall.length ? summarize(t.wall) : null;
    const time = gpu ?? wall;
    const row: NodeRow = {
      ...base,
      mode,
      impl: t.impl,
      k: t.k,
      gpu,
      wall,
      bytes: t.bytes,
      gbPerS: time ? t.bytes / (time.medianMs * 1e6) : null,
      maxError: t.maxError,
      ok: t.ok,
    };
    if (ctx.gpuErrors.length) {
      row.ok = false;
      row.error = ctx.gpuErrors.join('; ');
    }
    rows.push(row);
    ctx.progress(row);
  }
  ctx.gpuErrors.length = 0;
  return rows;
}

// ---- PyTorch peer ----------------------------------------------------------------------------

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
async function runPeer(o: Options): Promise<PeerResult> {
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

// ---- The report ------------------------------------------------------------------------------

function fmtMs(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return '';
  return ms >= 100 ? ms.toFixed(1) : ms >= 1 ? ms.toFixed(3) : ms.toFixed(4);
}
const fmt = (v: number | null | undefined, digits = 2) => (v === null || v === undefined || !Number.isFinite(v) ? '' : v.toFixed(digits));
const fmtGBs = (v: number | null | undefined) => (v === null || v === undefined || !Number.isFinite(v) ? '' : v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2));
const fmtErr = (v: number | null) => (v === null ? '' : v.toExponential(1));
const time = (r: NodeRow | undefined) => (r ? (r.gpu ?? r.wall)?.medianMs ?? null : null);
const ratio = (a: number | null, b: number | null) => (a !== null && b !== null && b > 0 ? a / b : null);

interface ComparedRun {
  label: string;
  rows: NodeRow[];
}

type RowKey = { layout: string; shape: number[]; mode: string; norm?: string; numGroups?: number };
/** What identifies a case and mode among rows (ours, the peer's, a compared run's). */
const rowKey = (r: RowKey) => `${r.norm ?? 'BatchNorm'}${r.numGroups ? `/${r.numGroups}` : ''} ${r.layout} ${r.shape.join('x')} ${r.mode}`;

/**
 * The markdown table: one line per case and mode; the family's rows (if any) in a second table
 * after BatchNorm's, with the issue's two-pass floor and target as multiples of the copy.
 */
export function makeTable(rows: NodeRow[], peer: PeerResult | null, compare: ComparedRun | null): string {
  const bn = rows.filter((r) => !r.norm);
  const family = rows.filter((r) => r.norm);
  const tables: string[] = [];
  if (bn.length || !family.length) tables.push(makeOneTable(bn, peer, compare, false));
  if (family.length) tables.push(`${bn.length ? 'Normalization family:\n\n' : ''}${makeOneTable(family, peer, compare, true)}`);
  return tables.join('\n\n');
}

function makeOneTable(rows: NodeRow[], peer: PeerResult | null, compare: ComparedRun | null, family: boolean): string {
  const key = rowKey;
  const groups = new Map<string, NodeRow[]>();
  for (const r of rows) groups.set(key(r), [...(groups.get(key(r)) ?? []), r]);
  const peerRows = peer?.available ? (peer.rows ?? []).filter((p) => !p.norm === !family) : [];
  const peerBy = (r: NodeRow, impl: string) => peerRows.find((p) => key(p) === key(r) && p.impl === impl) as NodeRow | undefined;
  const hasCompile = peerRows.some((p) => p.impl === 'torch.compile' && p.gpu);
  const header = family
    ? ['norm [shape]', 'mode', 'ours ms', 'two-pass ms', 'copy ms', 'copy GB/s', 'fastest copy', 'ours GB/s', 'ours roofline ×', 'two-pass floor ×', 'target ×', 'ours / floor', 'ours vs two-pass', 'max error ours / two-pass']
    : ['layout [shape]', 'mode', 'ours ms', 'two-pass ms', 'copy ms', 'copy GB/s', 'fastest copy', 'ours GB/s', 'ours roofline ×', 'ours vs two-pass', 'max error ours / two-pass'];
  if (peerRows.length) {
    header.push('torch eager ms', 'torch graph ms', 'vs torch eager', 'vs torch graph', 'torch roofline ×', 'torch copy GB/s', 'copy / torch copy');
    if (hasCompile) header.push('torch.compile ms', 'vs torch.compile');
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
    const line = [name, r0.mode, fmtMs(time(ours)), fmtMs(time(base)), fmtMs(time(copy)), fmtGBs(copy?.gbPerS), copy?.impl.replace(/^copy /, '') ?? '', fmtGBs(ours.gbPerS), fmt(roofline)];
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
        fmtMs(time(graph)),
        fmt(ratio(time(eager), time(ours))),
        fmt(ratio(time(graph), time(ours))),
        fmt(ratio(time(bestTorch), time(copy))),
        fmtGBs(torchCopy?.gbPerS),
        fmt(ratio(copy?.gbPerS ?? null, torchCopy?.gbPerS ?? null)),
      );
      if (hasCompile) {
        const compiled = peerBy(ours, 'torch.compile');
        line.push(fmtMs(time(compiled)), fmt(ratio(time(compiled), time(ours))));
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

/** Item 2's check: our fastest copy against PyTorch's copy where the tensor is at least 25 MB. */
function rooflineCheck(rows: NodeRow[], peer: PeerResult | null): string[] {
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

function gitCommit(): string {
  if (process.env.BENCH_COMMIT) return process.env.BENCH_COMMIT;
  try {
    const run = (args: string[]) => execFileSync('git', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    const head = run(['rev-parse', '--short', 'HEAD']);
    return run(['status', '--porcelain', '--untracked-files=no']) ? `${head} + uncommitted changes` : head;
  } catch {
    return 'unknown (set BENCH_COMMIT)';
  }
}

function nvidiaDriver(): string | null {
  try {
    return execFileSync('nvidia-smi', ['--query-gpu=name,driver_version', '--format=csv,noheader'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 10_000 })
      .trim()
      .split('\n')[0];
  } catch {
    return null;
  }
}

function readCompare(path: string): ComparedRun {
  const data = JSON.parse(readFileSync(path, 'utf8')) as { commit?: string; rows: NodeRow[] };
  return { label: data.commit ? data.commit.split(' ')[0] : path, rows: data.rows };
}

/** Runs the benchmark; resolves with the process exit code. */
export async function main(argv: string[]): Promise<number> {
  let o: Options;
  try {
    o = parseOptions(argv);
  } catch (e) {
    console.error(`bench:node: ${(e as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (o.help) {
    console.log(USAGE);
    return 0;
  }
  const compare = o.compare ? readCompare(o.compare) : null;
  const started = Date.now();
  const log = (line: string) => console.log(`${((Date.now() - started) / 1000).toFixed(0).padStart(5)} s  ${line}`);

  const device = await getDevice({ dawnFlags: DAWN_FLAGS, label: 'bench:node device' });
  const gpuErrors: string[] = [];
  device.addEventListener('uncapturederror', (e) => gpuErrors.push((e as GPUUncapturedErrorEvent).error.message));
  const info = device.adapterInfo;
  const adapter = { vendor: info.vendor, architecture: info.architecture, device: info.device, description: info.description };
  const adapterName = [info.vendor, info.architecture, info.description].filter(Boolean).join(' ') || 'unknown adapter';
  const driver = nvidiaDriver() ?? info.description ?? null;
  const slug = adapterSlug(info);
  const timer = new GpuTimer(device);
  const copies = new CopyKernels(device);
  const commit = gitCommit();
  const copyNames = Object.keys(COPY_VARIANTS);
  const total = o.cases.reduce((sum, c) => sum + caseModes(c, o.modes).length, 0) * (2 + copyNames.length);
  log(`adapter: ${adapterName}${driver && driver !== info.description ? ` (${driver})` : ''}; timing: ${timer.method}; Dawn flags: ${DAWN_FLAGS.join(' ')}; commit ${commit}`);
  log(`${o.cases.length} cases x their modes (${o.modes.join(', ')}; family: ${familyModes(o.modes).join(', ') || 'none'}); ${o.checkOnly ? 'outputs checked, nothing timed (--check-only)' : `${o.samples} samples of >= ${o.minSampleMs} ms each, ${o.warmupMs} ms warm-up`}; implementations: ${OURS}, ${BASELINE}, ${copyNames.join(', ')}`);

  let step = 0;
  const progress = (r: NodeRow) => {
    const t = r.gpu ?? r.wall;
    const check = r.impl.startsWith('copy') ? (r.maxError === 0 ? 'exact' : `${r.maxError} words differ`) : `max error ${fmtErr(r.maxError)}`;
    log(
      `[${++step}/${total}] ${caseName(r)} · ${r.mode} · ${r.impl}: ` +
        (t ? `${fmtMs(t.medianMs)} ms (min ${fmtMs(t.minMs)}, K=${r.k}${r.gpu ? '' : ', wall'}), ${fmtGBs(r.gbPerS)} GB/s, ` : 'not timed, ') +
        `${check}${r.ok ? '' : ' OFF THE REFERENCE'}${r.error ? ` (${r.error})` : ''}`,
    );
  };
  const rows: NodeRow[] = [];
  let failure: string | null = null;
  for (const c of o.cases) {
    try {
      const caseRows = await (c.norm ? benchFamilyCase : benchCase)({ device, timer, copies, o, progress, gpuErrors }, c);
      for (const r of caseRows.filter((r) => r.error?.startsWith('skipped'))) log(`${caseName(c)} · ${r.mode}: ${r.error}`);
      step += caseRows.filter((r) => r.error?.startsWith('skipped')).length * (2 + copyNames.length);
      rows.push(...caseRows);
    } catch (e) {
      failure = `${caseName(c)}: ${(e as Error).stack ?? e}`;
      log(`error in ${failure}`);
      break;
    }
  }
  timer.destroy();

  let peer: PeerResult | null = null;
  if (o.peer === 'pytorch' && !failure) {
    log(`PyTorch peer: ${o.python} bench/pytorch_peer.py${o.torchCompile ? ' (with torch.compile)' : ''}`);
    peer = await runPeer(o);
    log(peer.available ? `PyTorch peer: torch ${peer.torch}, CUDA ${peer.cuda}, cuDNN ${peer.cudnn}, ${peer.device}` : `PyTorch peer: not run: ${peer.reason}`);
    if (peer.error) log(`PyTorch peer stopped early: ${peer.error}`);
  }

  const table = makeTable(rows, peer, compare);
  const peerNote = !peer ? '' : peer.available ? `PyTorch ${peer.torch} (CUDA ${peer.cuda}, cuDNN ${peer.cudnn}) on ${peer.device}.${peer.error ? ` It stopped early: ${peer.error}.` : ''}` : `PyTorch peer not run: ${peer.reason}.`;
  const roofline = rooflineCheck(rows, peer);
  // The peer's rows that failed or missed its float64 check (not a failure of this run).
  const peerProblems = (peer?.available ? (peer.rows ?? []) : [])
    .filter((p) => p.error || !p.ok)
    .map((p) => `${caseName(p)} ${p.mode} ${p.impl}: ${p.error ?? `off its reference, max error ${p.maxError}`}`);
  const bad = rows.filter((r) => !r.ok);
  const result = {
    adapter: { ...adapter, name: adapterName, driver, features: [...device.features].sort(), slug },
    timing: timer.method,
    dawnFlags: DAWN_FLAGS,
    commit,
    date: new Date().toISOString(),
    node: process.version,
    webgpu: packageVersion('webgpu'),
    machine: { cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model, memoryGiB: Math.round(os.totalmem() / 2 ** 30), platform: `${os.platform()} ${os.release()}` },
    method: {
      samples: o.samples,
      minSampleMs: o.minSampleMs,
      warmupMs: o.warmupMs,
      tolerance: o.tolerance,
      eps: EPS,
      momentum: MOMENTUM,
      kMargin: K_MARGIN,
      note: 'times per call (sample / K), medians of interleaved samples; GPU time from timestamp queries',
    },
    options: { cases: o.cases.map((c) => caseName(c)), modes: o.modes, familyModes: familyModes(o.modes), quick: o.quick, peer: o.peer, torchCompile: o.torchCompile, checkOnly: o.checkOnly },
    rows,
    peer,
    rooflineCheck: roofline,
    peerProblems,
    failure,
    offReference: bad.map((r) => `${caseName(r)} ${r.mode} ${r.impl}: ${r.error ?? `max error ${r.maxError}`}`),
    table,
  };

  console.log(`\n${adapterName}; ${result.machine.cpus} CPUs, ${result.machine.cpuModel}; commit ${commit}; ${result.date}`);
  console.log(`GPU time per call (${timer.method}), median of ${o.samples}; roofline × = time / fastest copy's time; "vs" columns: other time / ours (> 1: ours faster).\n`);
  console.log(table);
  if (peerNote) console.log(`\n${peerNote}`);
  if (roofline.length) console.log(`\nRoofline check against PyTorch's copy (tensors >= 25 MB):\n${roofline.map((l) => `  ${l}`).join('\n')}`);
  if (peerProblems.length) console.log(`\nPyTorch rows not timed or off their reference:\n${peerProblems.map((l) => `  ${l}`).join('\n')}`);

  const outPath = o.out ? resolve(o.out) : process.env.OUT ? join(process.env.OUT, `results-node-${slug}.json`) : resolve(`bench/results-node-${slug}.json`);
  mkdirSync(dirname(outPath), { recursive: true });
  writeFileSync(outPath, `${JSON.stringify(result, null, 2)}\n`);
  const mdPath = outPath.replace(/\.json$/, '') + '.md';
  writeFileSync(mdPath, `# bench:node on ${adapterName}\n\n${driver ? `Driver: ${driver}. ` : ''}Commit ${commit}, ${result.date}, Node ${process.version}, webgpu ${result.webgpu}.${peerNote ? ` ${peerNote}` : ''}\n\n${table}\n${roofline.length ? `\nRoofline check against PyTorch's copy (tensors >= 25 MB):\n\n${roofline.map((l) => `- ${l}`).join('\n')}\n` : ''}${peerProblems.length ? `\nPyTorch rows not timed or off their reference:\n\n${peerProblems.map((l) => `- ${l}`).join('\n')}\n` : ''}`);
  console.log(`\nwrote ${outPath} and ${mdPath}`);

  if (failure) {
    console.error(`bench:node: FAILED: ${failure}`);
    return 1;
  }
  if (bad.length) {
    console.error(`bench:node: FAILED: ${bad.length} output(s) off the reference (tolerance ${o.tolerance}):\n  ${result.offReference.join('\n  ')}`);
    return 1;
  }
  log(`all ${rows.filter((r) => r.maxError !== null).length} outputs match the reference`);
  return 0;
}

function packageVersion(name: string): string | null {
  const path = resolve('node_modules', name, 'package.json');
  return existsSync(path) ? (JSON.parse(readFileSync(path, 'utf8')) as { version: string }).version : null;
}

/**
 * A case's buffers: x and dy written, y and dx, and the copies' source of `largest` bytes filled
 * with real data (x, dy, x, ...: zeros could be compressed by the GPU). `buffer` makes more;
 * all of them are in `buffers`, for the case to destroy.
 */
function caseBuffers(device: GPUDevice, x: Float32Array<ArrayBuffer>, dy: Float32Array<ArrayBuffer>, largest: number) {
  const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
  const buffers: GPUBuffer[] = [];
  const buffer = (label: string, size: number) => {
    const b = device.createBuffer({ label, size, usage });
    buffers.push(b);
    return b;
  };
  const [xBuf, yBuf, dyBuf, dxBuf] = ['x', 'y', 'dy', 'dx'].map((label) => buffer(label, x.length * 4));
  device.queue.writeBuffer(xBuf, 0, x);
  device.queue.writeBuffer(dyBuf, 0, dy);
  const copySrc = buffer('copy src', largest);
  const copyData = new Float32Array(largest / 4);
  for (let at = 0, part = 0; at < copyData.length; part++) {
    const from = part % 2 ? dy : x;
    const len = Math.min(from.length, copyData.length - at);
    copyData.set(from.subarray(0, len), at);
    at += len;
  }
  device.queue.writeBuffer(copySrc, 0, copyData);
  return { buffers, buffer, xBuf, yBuf, dyBuf, dxBuf, copySrc, copyData };
}
