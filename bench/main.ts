/**
 * The benchmark page: for each case and mode, times webgpu-batchnorm, the two-pass baseline,
 * a vectorized copy of the compulsory bytes (the roofline) and TF.js WebGPU on this browser's
 * adapter, and checks each one's output against the float64 reference.
 *
 * Query parameters: iterations (default 10), quick=1 (small cases), tfjs=0 (leave TF.js out).
 */
import { BatchNorm } from '../src/batchnorm/layer.js';
import { getDevice } from '../src/core/device.js';
import { readBuffers } from '../src/core/gpu.js';
import { channelView, viewSize } from '../src/core/layout.js';
import { referenceBackward, referenceNormalize, referenceStats } from '../src/batchnorm/reference.js';
import { normalSamples } from '../support/random.js';
import { CopyKernel, TwoPassBaseline } from './baseline.js';
import { CASES, MODES, QUICK_CASES, compulsoryFloats, type BenchCase, type Mode } from './cases.js';
import { GpuTimer, type Summary } from './timing.js';
import { TfjsCase, initTfjs } from './tfjs-peer.js';
import { maxAbsDiff } from './compare.js';

/** One measured implementation in one case and mode. */
export interface BenchRow {
  layout: string;
  shape: number[];
  mode: Mode;
  impl: 'webgpu-batchnorm' | 'two-pass baseline' | 'copy (roofline)' | 'TF.js WebGPU';
  /** GPU time from timestamp queries; null where not measured that way (TF.js). */
  gpu: Summary | null;
  /** Wall time from submit (or the TF.js call) to onSubmittedWorkDone. */
  wall: Summary;
  /** Compulsory bytes of the mode. */
  bytes: number;
  /** Largest |output - float64 reference| (y, or dx for forward+backward); null for the copy. */
  maxError: number | null;
}

export interface BenchResult {
  adapter: string;
  timing: string;
  iterations: number;
  rows: BenchRow[];
  error?: string;
}

declare global {
  interface Window {
    benchProgress?: (line: string) => void;
    benchResult?: BenchResult;
  }
}

const query = new URLSearchParams(location.search);
const ITERATIONS = Number(query.get('iterations') ?? 10);
const CASE_LIST = query.get('quick') === '1' ? QUICK_CASES : CASES;
const WITH_TFJS = query.get('tfjs') !== '0';
const EPS = 1e-5;
const MOMENTUM = 0.1;
const IMPLS_PER_MODE = WITH_TFJS ? 4 : 3;
const TOTAL_STEPS = CASE_LIST.length * MODES.length * IMPLS_PER_MODE;
let step = 0;

function progress(line: string): void {
  document.querySelector('#log')!.textContent += `${line}\n`;
  window.benchProgress?.(line);
}

async function readFloats(device: GPUDevice, buffer: GPUBuffer, n: number): Promise<Float32Array> {
  const [bytes] = await readBuffers(device, [{ buffer, size: n * 4 }]);
  return new Float32Array(bytes);
}

async function benchCase(device: GPUDevice, timer: GpuTimer, copy: CopyKernel, c: BenchCase, tfBackend: Awaited<ReturnType<typeof initTfjs>> | null): Promise<BenchRow[]> {
  const view = channelView(c.layout, c.shape);
  const n = viewSize(view);
  const C = view.channels;
  const x = normalSamples(n, 1, 1, 2);
  const dy = normalSamples(n, 2, 0, 1);
  // The running statistics are set to the batch statistics, so inference and training give the same y.
  const stats = referenceStats(x, view);
  const ones = new Float64Array(C).fill(1);
  const zeros = new Float64Array(C);
  const refY = referenceNormalize(x, view, { mean: stats.mean, variance: stats.variance, gamma: ones, beta: zeros, eps: EPS });
  const refDx = referenceBackward(x, dy, view, { mean: stats.mean, variance: stats.variance, gamma: ones, eps: EPS, batchStats: true }).dx;

  const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
  const tensor = (label: string, data?: Float32Array<ArrayBuffer>) => {
    const b = device.createBuffer({ label, size: n * 4, usage });
    if (data) device.queue.writeBuffer(b, 0, data);
    return b;
  };
  const [xBuf, yBuf, dyBuf, dxBuf] = [tensor('x', x), tensor('y'), tensor('dy', dy), tensor('dx')];
  const vec4Bytes = (floats: number) => Math.ceil(floats / 4) * 16;
  const copySrc = device.createBuffer({ label: 'copy src', size: vec4Bytes(2.5 * n), usage });
  const copyDst = { forward: device.createBuffer({ label: 'copy dst', size: vec4Bytes(n), usage }), full: device.createBuffer({ label: 'copy dst', size: vec4Bytes(2.5 * n), usage }) };

  const bn = new BatchNorm(device, { numFeatures: C, layout: c.layout, eps: EPS, momentum: MOMENTUM, label: 'bench' });
  const baseline = new TwoPassBaseline(device, view, EPS, MOMENTUM);
  const runningPairs = new Float32Array(2 * C);
  for (let k = 0; k < C; k++) runningPairs.set([stats.mean[k], stats.variance[k]], 2 * k);
  const resetRunning = () => {
    bn.setState({ runningMean: stats.mean, runningVar: stats.variance });
    device.queue.writeBuffer(baseline.running, 0, runningPairs);
  };
  const tfCase = tfBackend ? new TfjsCase(tfBackend, c.layout, c.shape, x, dy, stats, EPS, MOMENTUM) : null;

  const rows: BenchRow[] = [];
  const name = `${c.layout} [${c.shape.join(',')}]`;
  const record = (row: Omit<BenchRow, 'layout' | 'shape'>) => {
    rows.push({ layout: c.layout, shape: c.shape, ...row });
    const gpu = row.gpu ? `gpu ${row.gpu.medianMs.toFixed(2)} ms, ` : '';
    const err = row.maxError === null ? '' : `, max error ${row.maxError.toExponential(1)}`;
    progress(`[${++step}/${TOTAL_STEPS}] ${name} · ${row.mode} · ${row.impl}: ${gpu}wall ${row.wall.medianMs.toFixed(2)} ms${err}`);
  };

  for (const mode of MODES) {
    const bytes = compulsoryFloats(mode, n) * 4;
    const training = mode !== 'inference';
    const check = mode === 'forward+backward' ? { buffer: dxBuf, ref: refDx } : { buffer: yBuf, ref: refY };

    resetRunning();
    const ours = await timer.measure((e) => {
      bn.encodeForward(e, { x: xBuf, y: yBuf, shape: c.shape, training });
      if (mode === 'forward+backward') bn.encodeBackward(e, { x: xBuf, dy: dyBuf, dx: dxBuf, shape: c.shape });
    }, ITERATIONS);
    record({ mode, impl: 'webgpu-batchnorm', ...ours, bytes, maxError: maxAbsDiff(await readFloats(device, check.buffer, n), check.ref) });

    resetRunning();
    device.queue.writeBuffer(yBuf, 0, new Float32Array(n));
    device.queue.writeBuffer(dxBuf, 0, new Float32Array(n));
    const base = await timer.measure((e) => {
      baseline.encodeForward(e, xBuf, yBuf, training);
      if (mode === 'forward+backward') baseline.encodeBackward(e, xBuf, dyBuf, dxBuf);
    }, ITERATIONS);
    record({ mode, impl: 'two-pass baseline', ...base, bytes, maxError: maxAbsDiff(await readFloats(device, check.buffer, n), check.ref) });

    const dst = mode === 'forward+backward' ? copyDst.full : copyDst.forward;
    const roof = await timer.measure((e) => copy.encode(e, copySrc, dst), ITERATIONS);
    record({ mode, impl: 'copy (roofline)', ...roof, bytes, maxError: null });

    if (tfCase) {
      const wall = await tfCase.time(mode, ITERATIONS);
      const out = await tfCase.output(mode);
      record({ mode, impl: 'TF.js WebGPU', gpu: null, wall, bytes, maxError: maxAbsDiff(out, check.ref) });
    }
  }

  bn.destroy();
  baseline.destroy();
  tfCase?.dispose();
  for (const b of [xBuf, yBuf, dyBuf, dxBuf, copySrc, copyDst.forward, copyDst.full]) b.destroy();
  return rows;
}

async function main(): Promise<BenchResult> {
  const probe = await navigator.gpu?.requestAdapter();
  const features: GPUFeatureName[] = probe?.features.has('timestamp-query') ? ['timestamp-query'] : [];
  const device = await getDevice({ requiredFeatures: features, label: 'bench device' });
  const info = device.adapterInfo;
  const adapter = [info?.vendor, info?.architecture, info?.description].filter(Boolean).join(' ') || 'unknown adapter';
  const timer = new GpuTimer(device);
  const copy = new CopyKernel(device);
  const tfBackend = WITH_TFJS ? await initTfjs() : null;
  progress(`adapter: ${adapter}; GPU timing: ${timer.method}; ${ITERATIONS} iterations per measurement`);
  const rows: BenchRow[] = [];
  for (const c of CASE_LIST) rows.push(...(await benchCase(device, timer, copy, c, tfBackend)));
  timer.destroy();
  return { adapter, timing: timer.method, iterations: ITERATIONS, rows };
}

main()
  .catch((e: Error): BenchResult => {
    progress(`error: ${e.message}`);
    return { adapter: 'unknown', timing: 'none', iterations: ITERATIONS, rows: [], error: e.stack ?? e.message };
  })
  .then((result) => (window.benchResult = result));
