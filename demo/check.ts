/**
 * The demo site's check: runs BatchNorm on this browser's GPU for every layout the library
 * supports (LAYOUTS), then one small case of each of LayerNorm, RMSNorm, GroupNorm and
 * InstanceNorm (forward and backward, float32), and compares against the float64 reference.
 * Publishes its result on window.demoResult for the e2e test.
 */
import {
  BatchNorm,
  channelView,
  GroupNorm,
  InstanceNorm,
  LAYOUTS,
  LayerNorm,
  referenceBackward,
  referenceGroupNorm,
  referenceGroupNormBackward,
  referenceInference,
  referenceInstanceNorm,
  referenceInstanceNormBackward,
  referenceLayerNorm,
  referenceLayerNormBackward,
  referenceRMSNorm,
  referenceRMSNormBackward,
  referenceTrainingForward,
  RMSNorm,
  type Layout,
} from '../src/index.js';
import { normalSamples } from '../support/random.js';
import { browserDevice, NoWebGpu } from './no-webgpu.js';
import { adapterName, escapeHtml } from './page.js';

interface CaseResult {
  layout: Layout;
  shape: number[];
  yError: number;
  dxError: number;
  inferenceError: number;
  ms: number;
}

/** One case of a family layer: forward and backward errors against the reference. */
export interface FamilyCaseResult {
  layer: 'LayerNorm' | 'RMSNorm' | 'GroupNorm' | 'InstanceNorm';
  /** The layer's options that matter, as the row shows them. */
  options: string;
  shape: number[];
  /** max |Δ| / max(1, max |reference|) of y, dx, and of dγ and dβ together. */
  yError: number;
  dxError: number;
  paramGradError: number;
  ms: number;
}

/** What the page reports when it is done. */
export interface DemoResult {
  ok: boolean;
  adapter: string;
  cases: CaseResult[];
  family: FamilyCaseResult[];
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
const familyTable = document.querySelector<HTMLTableElement>('#family-results')!;

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

/** max |a − b| over max(1, max |b|): absolute for O(1) outputs, relative for sums such as dγ. */
function scaledError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let scale = 1;
  for (let i = 0; i < b.length; i++) scale = Math.max(scale, Math.abs(b[i]));
  return maxAbsDiff(a, b) / scale;
}

/** What a family case computes on the GPU and in the reference, on the same x, dy, γ and β. */
interface FamilyCase {
  layer: FamilyCaseResult['layer'];
  options: string;
  shape: number[];
  /** Entries of γ (and β). */
  params: number;
  make(device: GPUDevice): LayerNorm | RMSNorm | GroupNorm | InstanceNorm;
  reference(x: Float32Array, dy: Float32Array, gamma: number[], beta: number[]): { y: ArrayLike<number>; dx: ArrayLike<number>; dgamma: ArrayLike<number>; dbeta?: ArrayLike<number> };
}

const FAMILY_EPS = 1e-5;
const FAMILY_CASES: FamilyCase[] = [
  {
    layer: 'LayerNorm',
    options: 'normalizedShape [6, 8]',
    shape: [4, 6, 8],
    params: 48,
    make: (device) => new LayerNorm(device, { normalizedShape: [6, 8], eps: FAMILY_EPS, label: 'demo LayerNorm' }),
    reference: (x, dy, gamma, beta) => ({
      y: referenceLayerNorm(x, [4, 6, 8], [6, 8], { gamma, beta, eps: FAMILY_EPS }).y,
      ...referenceLayerNormBackward(x, dy, [4, 6, 8], [6, 8], { gamma, eps: FAMILY_EPS }),
    }),
  },
  {
    layer: 'RMSNorm',
    options: 'normalizedShape 32',
    shape: [8, 32],
    params: 32,
    make: (device) => new RMSNorm(device, { normalizedShape: 32, eps: FAMILY_EPS, label: 'demo RMSNorm' }),
    reference: (x, dy, gamma) => ({
      y: referenceRMSNorm(x, [8, 32], [32], { gamma, eps: FAMILY_EPS }).y,
      ...referenceRMSNormBackward(x, dy, [8, 32], [32], { gamma, eps: FAMILY_EPS }),
    }),
  },
  {
    layer: 'GroupNorm',
    options: '4 groups, NCHW',
    shape: [2, 8, 5, 5],
    params: 8,
    make: (device) => new GroupNorm(device, { numGroups: 4, numChannels: 8, layout: 'NCHW', eps: FAMILY_EPS, label: 'demo GroupNorm' }),
    reference: (x, dy, gamma, beta) => ({
      y: referenceGroupNorm(x, [2, 8, 5, 5], { layout: 'NCHW', numGroups: 4, gamma, beta, eps: FAMILY_EPS }).y,
      ...referenceGroupNormBackward(x, dy, [2, 8, 5, 5], { layout: 'NCHW', numGroups: 4, gamma, eps: FAMILY_EPS }),
    }),
  },
  {
    layer: 'InstanceNorm',
    options: 'affine, NHWC',
    shape: [2, 6, 6, 4],
    params: 4,
    make: (device) => new InstanceNorm(device, { numFeatures: 4, affine: true, layout: 'NHWC', eps: FAMILY_EPS, label: 'demo InstanceNorm' }),
    reference: (x, dy, gamma, beta) => ({
      y: referenceInstanceNorm(x, [2, 6, 6, 4], { layout: 'NHWC', gamma, beta, eps: FAMILY_EPS }).y,
      ...referenceInstanceNormBackward(x, dy, [2, 6, 6, 4], { layout: 'NHWC', gamma, eps: FAMILY_EPS }),
    }),
  },
];

async function runFamilyCase(device: GPUDevice, c: FamilyCase): Promise<FamilyCaseResult> {
  const n = c.shape.reduce((a, b) => a * b, 1);
  const gamma = Array.from({ length: c.params }, (_, i) => 1 + 0.05 * i);
  const beta = Array.from({ length: c.params }, (_, i) => 0.02 * i - 0.1);
  const layer = c.make(device);
  try {
    if (layer instanceof RMSNorm) layer.setState({ gamma });
    else layer.setState({ gamma, beta });
    const x = normalSamples(n, 17, 3, 2);
    const dy = normalSamples(n, 18, 0, 1);
    const t0 = performance.now();
    const y = await layer.forward(x, c.shape, { training: true });
    const { dx, dgamma, dbeta } = await layer.backward(dy);
    const ms = performance.now() - t0;
    const ref = c.reference(x, dy, gamma, beta);
    const missing = (what: string) => {
      throw new Error(`${c.layer}.backward returned no ${what}`);
    };
    const paramGradError = Math.max(
      scaledError(dgamma ?? missing('dgamma'), ref.dgamma),
      ref.dbeta ? scaledError(dbeta ?? missing('dbeta'), ref.dbeta) : 0,
    );
    return { layer: c.layer, options: c.options, shape: c.shape, yError: scaledError(y, ref.y), dxError: scaledError(dx, ref.dx), paramGradError, ms };
  } finally {
    layer.destroy();
  }
}

function showFamilyRow(r: FamilyCaseResult): void {
  const row = familyTable.tBodies[0].insertRow();
  const cell = (text: string, ok?: boolean) => {
    const td = row.insertCell();
    td.textContent = text;
    if (ok !== undefined) td.className = ok ? 'ok' : 'fail';
  };
  cell(r.layer);
  cell(r.options);
  cell(`[${r.shape.join(', ')}]`);
  for (const e of [r.yError, r.dxError, r.paramGradError]) cell(e.toExponential(2), e <= TOLERANCE);
  cell(r.ms.toFixed(1));
  familyTable.hidden = false;
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
    return { ok: false, adapter: 'none', cases: [], family: [], error: e.message };
  }
  const adapter = adapterName(device);
  status.textContent = `Running on ${adapter}…`;
  const cases: CaseResult[] = [];
  for (const [layout, shape] of CASES) {
    const r = await runCase(device, layout, shape);
    cases.push(r);
    showRow(r);
  }
  const family: FamilyCaseResult[] = [];
  for (const c of FAMILY_CASES) {
    const r = await runFamilyCase(device, c);
    family.push(r);
    showFamilyRow(r);
  }
  const ok =
    cases.every((r) => Math.max(r.yError, r.dxError, r.inferenceError) <= TOLERANCE) &&
    family.every((r) => Math.max(r.yError, r.dxError, r.paramGradError) <= TOLERANCE);
  status.innerHTML = ok
    ? `<span class="ok">All layouts match the float64 reference within ${TOLERANCE}, and so do LayerNorm, RMSNorm, GroupNorm and InstanceNorm</span> on ${adapter}.`
    : `<span class="fail">Some results differ from the reference by more than ${TOLERANCE}</span> on ${adapter}.`;
  return { ok, adapter, cases, family };
}

main()
  .catch((e: Error): DemoResult => {
    status.innerHTML = `<span class="fail">Error:</span> ${escapeHtml(e.message)}`;
    return { ok: false, adapter: 'unknown', cases: [], family: [], error: e.message };
  })
  .then((result) => (window.demoResult = result));
