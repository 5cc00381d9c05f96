/**
 * The demo site's layout check: runs BatchNorm on this browser's GPU for every layout the library
 * supports (LAYOUTS) and compares against the float64 reference. Publishes its result on
 * window.demoResult for the e2e test.
 */
import {
  BatchNorm,
  channelView,
  LAYOUTS,
  referenceBackward,
  referenceInference,
  referenceTrainingForward,
  type Layout,
} from '../src/index.js';
import { normalSamples } from '../support/random.js';
import { browserDevice, NoWebGpu } from './no-webgpu.js';

interface CaseResult {
  layout: Layout;
  shape: number[];
  yError: number;
  dxError: number;
  inferenceError: number;
  ms: number;
}

/** What the page reports when it is done. */
export interface DemoResult {
  ok: boolean;
  adapter: string;
  cases: CaseResult[];
  error?: string;
}

declare global {
  interface Window {
    demoResult?: DemoResult;
  }
}

/** A shape per layout: channels first and channels last of each rank, with different channel counts. */
const SHAPES: Record<Layout, number[]> = {
  NC: [64, 10],
  NCL: [8, 6, 50],
  NLC: [8, 50, 6],
  NCHW: [8, 10, 24, 24],
  NHWC: [8, 12, 12, 20],
  NCDHW: [2, 4, 6, 8, 10],
  NDHWC: [2, 6, 8, 10, 4],
};
const CASES: [Layout, number[]][] = LAYOUTS.map((layout) => [layout, SHAPES[layout]]);
const TOLERANCE = 1e-4;

const status = document.querySelector('#status')!;
const table = document.querySelector<HTMLTableElement>('#results')!;

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
  return worst;
}

async function runCase(device: GPUDevice, layout: Layout, shape: number[]): Promise<CaseResult> {
  const view = channelView(layout, shape);
  const n = view.outer * view.channels * view.inner;
  const C = view.channels;
  const eps = 1e-5;
  const gamma = Array.from({ length: C }, (_, c) => 1 + 0.1 * c);
  const beta = Array.from({ length: C }, (_, c) => 0.05 * c);
  const bn = new BatchNorm(device, { numFeatures: C, layout, eps, label: `demo ${layout}` });
  try {
    bn.setState({ gamma, beta });
    const x = normalSamples(n, 7, 3, 2);
    const dy = normalSamples(n, 8, 0, 1);
    const t0 = performance.now();
    const y = await bn.forward(x, shape, { training: true });
    const { dx } = await bn.backward(dy);
    const state = await bn.getState();
    const xTest = normalSamples(n, 9, 3, 2);
    const yTest = await bn.forward(xTest, shape, { training: false });
    const ms = performance.now() - t0;

    const ref = referenceTrainingForward(x, view, { gamma, beta, eps });
    const refDx = referenceBackward(x, dy, view, { mean: ref.mean, variance: ref.variance, gamma, eps, batchStats: true }).dx;
    const refTest = referenceInference(xTest, view, { runningMean: state.runningMean, runningVar: state.runningVar, gamma, beta, eps });
    return {
      layout,
      shape,
      yError: maxAbsDiff(y, ref.y),
      dxError: maxAbsDiff(dx, refDx),
      inferenceError: maxAbsDiff(yTest, refTest),
      ms,
    };
  } finally {
    bn.destroy();
  }
}

function showRow(r: CaseResult): void {
  const row = table.tBodies[0].insertRow();
  const cell = (text: string, ok?: boolean) => {
    const td = row.insertCell();
    td.textContent = text;
    if (ok !== undefined) td.className = ok ? 'ok' : 'fail';
  };
  cell(r.layout);
  cell(`[${r.shape.join(', ')}]`);
  for (const e of [r.yError, r.dxError, r.inferenceError]) cell(e.toExponential(2), e <= TOLERANCE);
  cell(r.ms.toFixed(1));
  table.hidden = false;
}

async function main(): Promise<DemoResult> {
  let device: GPUDevice;
  try {
    device = await browserDevice('layout check');
  } catch (e) {
    if (!(e instanceof NoWebGpu)) throw e;
    status.innerHTML = e.html;
    status.className = 'fail-box';
    return { ok: false, adapter: 'none', cases: [], error: e.message };
  }
  const info = device.adapterInfo;
  const adapter = [info?.vendor, info?.architecture, info?.description].filter(Boolean).join(' ') || 'unknown adapter';
  status.textContent = `Running on ${adapter}…`;
  const cases: CaseResult[] = [];
  for (const [layout, shape] of CASES) {
    const r = await runCase(device, layout, shape);
    cases.push(r);
    showRow(r);
  }
  const ok = cases.every((r) => Math.max(r.yError, r.dxError, r.inferenceError) <= TOLERANCE);
  status.innerHTML = ok
    ? `<span class="ok">All layouts match the float64 reference within ${TOLERANCE}</span> on ${adapter}.`
    : `<span class="fail">Some results differ from the reference by more than ${TOLERANCE}</span> on ${adapter}.`;
  return { ok, adapter, cases };
}

function escape(text: string): string {
  return text.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);
}

main()
  .catch((e: Error): DemoResult => {
    status.innerHTML = `<span class="fail">Error:</span> ${escape(e.message)}`;
    return { ok: false, adapter: 'unknown', cases: [], error: e.message };
  })
  .then((result) => (window.demoResult = result));
