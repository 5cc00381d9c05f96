/**
 * The family's kernels as a GPU sizes them, run on SwiftShader. Plans size the kernels per adapter:
 * a CPU adapter gets few lanes per group and one cache step, a GPU up to 256 lanes per group and
 * as many cache steps as its workgroup storage allows, so on SwiftShader alone the GPU's paths
 * (lane trees, full caches, dγ/dβ taken by norm_backward_columns over several lanes) would go
 * untested. Here the ops run with forced cache step counts (groups that fit entirely, partly and
 * barely), and the layers run on the test device seen as a GPU; every result is checked against
 * the float64 reference. The last case runs the CPU sizing with several row batches per workgroup.
 */
import { expect, it } from 'vitest';
import { channelGroupGeometry, normPlan, rowGeometry, type NormGeometry, type NormPlanOptions } from '../../../src/normalization/plan.js';
import { recordNormBackward, recordNormForward } from '../../../src/normalization/record.js';
import { GroupNorm, InstanceNorm, LayerNorm, RMSNorm } from '../../../src/normalization/layer.js';
import {
  referenceGroupNorm,
  referenceGroupNormBackward,
  referenceInstanceNorm,
  referenceInstanceNormBackward,
  referenceInstanceNormRunningStats,
  referenceLayerNorm,
  referenceLayerNormBackward,
  referenceRMSNorm,
  referenceRMSNormBackward,
} from '../../../src/normalization/reference.js';
import { createBufferWithData, readBuffers, Usage } from '../../../src/core/gpu.js';
import { acquireScratch, acquireSink } from '../../../src/core/scratch.js';
import { releaseHolder } from '../../../src/core/context.js';
import { expectClose, randn } from '../../helpers/data.js';
import { stored } from '../../helpers/family.js';
import { seenAsGpu, testDevice } from '../../helpers/gpu.js';

// Float32 against float64: y and dx are O(1) (|x̂| < 5), each a few roundings of O(1) terms.
const Y_TOL = { rtol: 1e-5, atol: 2e-5 };
const DX_TOL = { rtol: 1e-4, atol: 1e-4 };
// γ/β gradients sum up to 16,000 products of O(1) (relative error ~1e-7 each, accumulated).
const SUM_TOL = { rtol: 1e-4, atol: 2e-3 };

const OPTIONS: NormPlanOptions = { kind: 'layer', dtype: 'float32', activation: 'none', eps: 1e-5, momentum: 0, nonFiniteBatches: 'skip', hasGamma: true, hasBeta: true };

async function run(device: GPUDevice, geometry: NormGeometry, options: NormPlanOptions, steps: number, x: Float32Array, dy: Float32Array, gamma: Float32Array, beta: Float32Array) {
  const holder = {};
  const usage = Usage.STORAGE | Usage.COPY_SRC | Usage.COPY_DST;
  const make = (data: Float32Array | number) => createBufferWithData(device, 'cache test', typeof data === 'number' ? new Float32Array(data) : data, usage);
  const n = x.length;
  const P = gamma.length;
  const b = { x: make(x), y: make(n), dy: make(dy), dx: make(n), gamma: make(gamma), beta: make(beta), dgamma: make(P), dbeta: make(P), saved: make(4 * geometry.samples * geometry.groups) };
  const plan = { ...normPlan(device, geometry, options, { useRunning: false, updateRunning: false }, holder), forwardCache: steps, backwardCache: steps };
  const encoder = device.createCommandEncoder();
  const pass = encoder.beginComputePass();
  recordNormForward(device, pass, plan, b);
  recordNormBackward(device, pass, plan, b, { partials: acquireScratch(device, plan.partialBytes, holder), sink: acquireSink(device, holder) });
  pass.end();
  const reads = [{ buffer: b.y, size: n * 4 }, { buffer: b.dx, size: n * 4 }, { buffer: b.dgamma, size: P * 4 }, { buffer: b.dbeta, size: P * 4 }];
  const [y, dx, dgamma, dbeta] = (await readBuffers(device, reads, encoder)).map((a) => new Float32Array(a));
  for (const buffer of Object.values(b)) buffer.destroy();
  releaseHolder(device, holder);
  return { y, dx, dgamma, dbeta };
}

it('LayerNorm rows read from the cache, partly or not at all, give the reference results', async () => {
  const device = await testDevice();
  const [rows, L] = [6, 700]; // 700 values: 3 per thread at 256 lanes
  const x = randn(rows * L, 31).map((v) => 3 * v + 50);
  const dy = randn(rows * L, 32);
  const gamma = randn(L, 33).map((v) => 1 + 0.2 * v);
  const beta = randn(L, 34);
  const ref = referenceLayerNorm(x, [rows, L], L, { gamma, beta, eps: 1e-5 });
  const grads = referenceLayerNormBackward(x, dy, [rows, L], L, { gamma, eps: 1e-5 });
  for (const steps of [2, 3]) {
    const out = await run(device, rowGeometry(rows, L), OPTIONS, steps, x, dy, gamma, beta);
    expectClose(out.y, ref.y, Y_TOL, `y with ${steps} cache steps`);
    expectClose(out.dx, grads.dx, DX_TOL, `dx with ${steps} cache steps`);
    expectClose(out.dgamma, grads.dgamma, SUM_TOL, `dgamma with ${steps} cache steps`);
  }
});

it('channels-last GroupNorm (segments of C/G channels) through the cache gives the reference results', async () => {
  const device = await testDevice();
  const shape = [2, 9, 11, 12]; // NHWC, 3 groups of 4 channels, 99 positions
  const n = 2 * 9 * 11 * 12;
  const x = randn(n, 41);
  const dy = randn(n, 42);
  const gamma = randn(12, 43).map((v) => 1 + 0.2 * v);
  const beta = randn(12, 44);
  const geometry = channelGroupGeometry({ outer: 2 * 99, channels: 12, inner: 1 }, 2, 3);
  const ref = referenceGroupNorm(x, shape, { layout: 'NHWC', numGroups: 3, gamma, beta, eps: 1e-5 });
  const grads = referenceGroupNormBackward(x, dy, shape, { layout: 'NHWC', numGroups: 3, gamma, eps: 1e-5 });
  for (const steps of [4]) {
    const out = await run(device, geometry, { ...OPTIONS, kind: 'group' }, steps, x, dy, gamma, beta);
    expectClose(out.y, ref.y, Y_TOL, `y with ${steps} cache steps`);
    expectClose(out.dx, grads.dx, DX_TOL, `dx with ${steps} cache steps`);
    expectClose(out.dgamma, grads.dgamma, SUM_TOL, `dgamma with ${steps} cache steps`);
  }
});

it('LayerNorm and RMSNorm sized for a GPU: lane trees, full and partial caches, dγ in the dx walk and after it', async () => {
  const device = seenAsGpu(await testDevice());
  // [60, 1000]: 128 lanes a row, 8 values a lane (norm_backward_columns); [4, 9000]: 256 lanes,
  // 36 values a lane, beyond MAX_COLUMNS (norm_backward and norm_affine_partials_rows).
  for (const [rows, L] of [[60, 1000], [4, 9000]]) {
    const shape = [rows, L];
    const x = randn(rows * L, 51).map((v) => 2 * v + 7);
    const dy = randn(rows * L, 52);
    const gamma = randn(L, 53).map((v) => 1 + 0.2 * v);
    const beta = randn(L, 54);
    const ln = new LayerNorm(device, { normalizedShape: L });
    ln.setState({ gamma, beta });
    expectClose(await ln.forward(x, shape), referenceLayerNorm(x, shape, L, { gamma, beta, eps: 1e-5 }).y, Y_TOL, `LayerNorm y ${shape}`);
    const g = await ln.backward(dy);
    const ref = referenceLayerNormBackward(x, dy, shape, L, { gamma, eps: 1e-5 });
    expectClose(g.dx, ref.dx, DX_TOL, `LayerNorm dx ${shape}`);
    expectClose(g.dgamma!, ref.dgamma, SUM_TOL, `LayerNorm dgamma ${shape}`);
    expectClose(g.dbeta!, ref.dbeta, SUM_TOL, `LayerNorm dbeta ${shape}`);
    ln.destroy();
    const rms = new RMSNorm(device, { normalizedShape: L });
    rms.setState({ gamma });
    expectClose(await rms.forward(x, shape), referenceRMSNorm(x, shape, L, { gamma, eps: 2 ** -23 }).y, Y_TOL, `RMSNorm y ${shape}`);
    const r = await rms.backward(dy);
    const rref = referenceRMSNormBackward(x, dy, shape, L, { gamma, eps: 2 ** -23 });
    expectClose(r.dx, rref.dx, DX_TOL, `RMSNorm dx ${shape}`);
    expectClose(r.dgamma!, rref.dgamma, SUM_TOL, `RMSNorm dgamma ${shape}`);
    rms.destroy();
  }
});

it('GroupNorm and InstanceNorm sized for a GPU: planes with dγ in the dx walk, channels-last groups, running statistics', async () => {
  const device = seenAsGpu(await testDevice());
  const C = 16;
  const gamma = randn(C, 61).map((v) => 1 + 0.2 * v);
  const beta = randn(C, 62);
  for (const [layout, shape] of [['NCHW', [2, C, 12, 12]], ['NHWC', [2, 12, 12, C]]] as const) {
    const n = 2 * C * 144;
    const x = randn(n, 63);
    const dy = randn(n, 64);
    const gn = new GroupNorm(device, { numGroups: 4, numChannels: C, layout, activation: 'silu' });
    gn.setState({ gamma, beta });
    const y = await gn.forward(x, shape);
    const ref = referenceGroupNorm(x, shape, { layout, numGroups: 4, gamma, beta, eps: 1e-5 });
    const silu = (z: number) => z / (1 + Math.exp(-z));
    expectClose(y, Array.from(ref.y, silu), Y_TOL, `GroupNorm y ${layout}`);
    const dz = Array.from(dy, (d, i) => {
      const z = ref.y[i];
      const s = 1 / (1 + Math.exp(-z));
      return d * s * (1 + z * (1 - s));
    });
    const grads = referenceGroupNormBackward(x, dz, shape, { layout, numGroups: 4, gamma, eps: 1e-5 });
    const g = await gn.backward(dy);
    expectClose(g.dx, grads.dx, DX_TOL, `GroupNorm dx ${layout}`);
    expectClose(g.dgamma!, grads.dgamma, SUM_TOL, `GroupNorm dgamma ${layout}`);
    expectClose(g.dbeta!, grads.dbeta, SUM_TOL, `GroupNorm dbeta ${layout}`);
    gn.destroy();

    const inorm = new InstanceNorm(device, { numFeatures: C, layout, affine: true, trackRunningStats: true, momentum: 0.25 });
    inorm.setState({ gamma, beta });
    const trained = await inorm.forward(x, shape, { training: true });
    const iref = referenceInstanceNorm(x, shape, { layout, gamma, beta, eps: 1e-5 });
    expectClose(trained, iref.y, Y_TOL, `InstanceNorm y ${layout}`);
    const ib = await inorm.backward(dy);
    const igrads = referenceInstanceNormBackward(x, dy, shape, { layout, gamma, eps: 1e-5 });
    expectClose(ib.dx, igrads.dx, DX_TOL, `InstanceNorm dx ${layout}`);
    expectClose(ib.dgamma!, igrads.dgamma, SUM_TOL, `InstanceNorm dgamma ${layout}`);
    const running = referenceInstanceNormRunningStats({ runningMean: new Float64Array(C), runningVar: new Float64Array(C).fill(1) }, iref, 0.25);
    const state = await inorm.getState();
    expectClose(state.runningMean!, running.runningMean, Y_TOL, `InstanceNorm running mean ${layout}`);
    expectClose(state.runningVar!, running.runningVar, Y_TOL, `InstanceNorm running var ${layout}`);
    // Inference with the running statistics: an affine map per channel.
    const inferred = await inorm.forward(x, shape, { training: false });
    const channelOf = (e: number) => (layout === 'NCHW' ? Math.floor(e / 144) % C : e % C);
    const expected = Array.from(x, (v, e) => {
      const c = channelOf(e);
      return ((v - running.runningMean[c]) / Math.sqrt(running.runningVar[c] + 1e-5)) * gamma[c] + beta[c];
    });
    expectClose(inferred, expected, Y_TOL, `InstanceNorm inference ${layout}`);
    inorm.destroy();
  }
});

it('channels-last groups take dγ/dβ in the dx walk: rows of lanes not a power of two, several channels a lane, partial caches, the fallback', async () => {
  const gpu = seenAsGpu(await testDevice());
  const cpu = await testDevice();
  // [shape NHWC, groups, device, the kernel its plan takes, cache steps forced (0: the plan's)]
  const cases: [number[], number, GPUDevice, string, number][] = [
    [[2, 16, 16, 20], 2, gpu, 'norm_backward_channels', 0], // 10 channels a group, 256 lanes: 25 rows of 10 lanes, 6 idle
    [[2, 2, 3, 600], 1, gpu, 'norm_backward_channels', 0], // 600 channels over 256 lanes: 2 rows of 120 lanes, 5 channels a lane
    [[2, 2, 3, 600], 1, gpu, 'norm_backward_channels', 2], // the same, 2 of 8 steps from the cache
    [[1, 4, 4, 129], 1, gpu, 'norm_backward_channels', 0], // 129 channels: 7 rows of 33 lanes, 4 channels a lane (the last lane 1)
    [[3, 4, 4, 64], 1, cpu, 'norm_backward_channels', 0], // CPU sizing: 4 lanes, 16 channels a lane
    [[2, 9, 11, 12], 3, cpu, 'norm_backward_channels', 5], // 4 channels, 4 lanes, 99 positions: 5 of 99 steps cached
    [[1, 2, 2, 200], 1, cpu, 'norm_backward', 0], // 4 lanes, 50 channels a lane: beyond MAX_COLUMNS
  ];
  for (const [shape, G, device, kernel, steps] of cases) {
    const [N, H, W, C] = shape;
    const n = N * H * W * C;
    const what = `NHWC [${shape}] G=${G} ${device === gpu ? 'GPU' : 'CPU'} sizing, cache ${steps || 'planned'}`;
    const x = randn(n, 81).map((v) => 2 * v - 3);
    const dy = randn(n, 82);
    const gamma = randn(C, 83).map((v) => 1 + 0.2 * v);
    const beta = randn(C, 84);
    const geometry = channelGroupGeometry({ outer: N * H * W, channels: C, inner: 1 }, N, G);
    const options = { ...OPTIONS, kind: 'group' as const };
    const plan = normPlan(device, geometry, options, { useRunning: false, updateRunning: false }, {});
    expect(plan.backwardKernel, what).toBe(kernel);
    const out = await run(device, geometry, options, steps || plan.backwardCache, x, dy, gamma, beta);
    const ref = referenceGroupNorm(x, shape, { layout: 'NHWC', numGroups: G, gamma, beta, eps: 1e-5 });
    const grads = referenceGroupNormBackward(x, dy, shape, { layout: 'NHWC', numGroups: G, gamma, eps: 1e-5 });
    expectClose(out.y, ref.y, Y_TOL, `y ${what}`);
    expectClose(out.dx, grads.dx, DX_TOL, `dx ${what}`);
    expectClose(out.dgamma, grads.dgamma, SUM_TOL, `dgamma ${what}`);
    expectClose(out.dbeta, grads.dbeta, SUM_TOL, `dbeta ${what}`);
  }
});

it('channels-last InstanceNorm sized for a GPU: backward through the running statistics in the channels kernel', async () => {
  const device = seenAsGpu(await testDevice());
  const [N, H, W, C] = [2, 10, 10, 24];
  const shape = [N, H, W, C];
  const x = randn(N * H * W * C, 91).map((v) => 1.5 * v + 0.5);
  const dy = randn(x.length, 92);
  const gamma = randn(C, 93).map((v) => 1 + 0.3 * v);
  const beta = randn(C, 94);
  const runningMean = randn(C, 95).map((v) => 0.3 * v);
  const runningVar = randn(C, 96).map((v) => 0.5 + Math.abs(v));
  const geometry = channelGroupGeometry({ outer: N * H * W, channels: C, inner: 1 }, N, C);
  expect(normPlan(device, geometry, { ...OPTIONS, kind: 'instance' }, { useRunning: true, updateRunning: false }, {}).backwardKernel).toBe('norm_backward_channels');
  const inorm = new InstanceNorm(device, { numFeatures: C, layout: 'NHWC', affine: true, trackRunningStats: true });
  inorm.setState({ gamma, beta, runningMean, runningVar });
  await inorm.forward(x, shape, { training: false });
  const g = await inorm.backward(dy);
  // Fixed statistics: x̂ = (x − rm)/sqrt(rv + eps), dx = γ·dy/sqrt(rv + eps), dγ = Σ dy·x̂, dβ = Σ dy.
  const dx = new Float64Array(x.length);
  const dgamma = new Float64Array(C);
  const dbeta = new Float64Array(C);
  for (let e = 0; e < x.length; e++) {
    const c = e % C;
    const invstd = 1 / Math.sqrt(runningVar[c] + 1e-5);
    dx[e] = gamma[c] * dy[e] * invstd;
    dgamma[c] += dy[e] * (x[e] - runningMean[c]) * invstd;
    dbeta[c] += dy[e];
  }
  expectClose(g.dx, dx, DX_TOL, 'dx');
  expectClose(g.dgamma!, dgamma, SUM_TOL, 'dgamma');
  expectClose(g.dbeta!, dbeta, SUM_TOL, 'dbeta');
  inorm.destroy();
});

// Packed halves (no shader-f16: SwiftShader, and the H200 as measured) are stored a whole word at a
// time by pairs of neighbouring threads; only words at an edge (a group or segment starting or
// ending mid-word, a thread row's end) go by halves. GPU sizing gives groups the many lanes that
// pair; odd lengths put every edge mid-word. y and dx hold halves: compared to 2^-10 relative.
it('packed halves sized for a GPU: whole words from thread pairs, halves at odd group, segment and row edges', async () => {
  const device = seenAsGpu(await testDevice());
  const HALF = { rtol: 2e-3, atol: 2e-3 };
  const cases: [string, number[], (d: GPUDevice) => GroupNorm | LayerNorm, (x: Float32Array, dy: Float32Array, gamma: Float32Array, beta: Float32Array) => { y: ArrayLike<number>; dx: ArrayLike<number>; dgamma: ArrayLike<number> }][] = [
    ['LayerNorm rows of 701 (columns kernel)', [6, 701], (d) => new LayerNorm(d, { normalizedShape: 701, dtype: 'float16' }),
      (x, dy, gamma, beta) => ({ ...referenceLayerNorm(x, [6, 701], 701, { gamma, beta, eps: 1e-5 }), ...referenceLayerNormBackward(x, dy, [6, 701], 701, { gamma, eps: 1e-5 }) })],
    ['LayerNorm rows of 8999 (generic walk)', [2, 8999], (d) => new LayerNorm(d, { normalizedShape: 8999, dtype: 'float16' }),
      (x, dy, gamma, beta) => ({ ...referenceLayerNorm(x, [2, 8999], 8999, { gamma, beta, eps: 1e-5 }), ...referenceLayerNormBackward(x, dy, [2, 8999], 8999, { gamma, eps: 1e-5 }) })],
    ['GroupNorm channels first, planes of 63', [2, 6, 7, 9], (d) => new GroupNorm(d, { numGroups: 3, numChannels: 6, layout: 'NCHW', dtype: 'float16' }),
      (x, dy, gamma, beta) => ({ ...referenceGroupNorm(x, [2, 6, 7, 9], { layout: 'NCHW', numGroups: 3, gamma, beta, eps: 1e-5 }), ...referenceGroupNormBackward(x, dy, [2, 6, 7, 9], { layout: 'NCHW', numGroups: 3, gamma, eps: 1e-5 }) })],
    ['GroupNorm channels last, 5 channels a group', [2, 5, 7, 10], (d) => new GroupNorm(d, { numGroups: 2, numChannels: 10, layout: 'NHWC', dtype: 'float16' }),
      (x, dy, gamma, beta) => ({ ...referenceGroupNorm(x, [2, 5, 7, 10], { layout: 'NHWC', numGroups: 2, gamma, beta, eps: 1e-5 }), ...referenceGroupNormBackward(x, dy, [2, 5, 7, 10], { layout: 'NHWC', numGroups: 2, gamma, eps: 1e-5 }) })],
    // 601 channels: 2 rows of 121 lanes, 5 channels a lane; every other position starts at an odd element.
    ['GroupNorm channels last, 5 of 601 channels a lane', [1, 2, 3, 601], (d) => new GroupNorm(d, { numGroups: 1, numChannels: 601, layout: 'NHWC', dtype: 'float16' }),
      (x, dy, gamma, beta) => ({ ...referenceGroupNorm(x, [1, 2, 3, 601], { layout: 'NHWC', numGroups: 1, gamma, beta, eps: 1e-5 }), ...referenceGroupNormBackward(x, dy, [1, 2, 3, 601], { layout: 'NHWC', numGroups: 1, gamma, eps: 1e-5 }) })],
  ];
  for (const [what, shape, make, reference] of cases) {
    const n = shape.reduce((p, d) => p * d, 1);
    const P = what.startsWith('LayerNorm') ? shape[1] : what.includes('first') ? shape[1] : shape[3];
    const x = stored(randn(n, 101).map((v) => 1.5 * v + 2), 'float16');
    const dy = stored(randn(n, 102), 'float16');
    const gamma = randn(P, 103).map((v) => 1 + 0.2 * v);
    const beta = randn(P, 104);
    const layer = make(device);
    layer.setState({ gamma, beta });
    const y = await layer.forward(x, shape);
    const g = await layer.backward(dy);
    const ref = reference(x, dy, gamma, beta);
    expectClose(y, ref.y, HALF, `y ${what}`);
    expectClose(g.dx, ref.dx, HALF, `dx ${what}`);
    expectClose(g.dgamma!, ref.dgamma, SUM_TOL, `dgamma ${what}`);
    layer.destroy();
  }
});

// A case of the chunk tests: rows [rows, L] (LayerNorm, RMSNorm) or GroupNorm over `layout` with
// G groups; its geometry, γ and β, and the float64 reference of forward and backward.
interface ChunkCase {
  shape: number[];
  kind: 'layer' | 'rms' | 'group';
  layout?: 'NCHW' | 'NHWC';
  G?: number;
}

function chunkCaseData(c: ChunkCase, x: Float32Array, dy: Float32Array) {
  const n = x.length;
  if (c.kind === 'group') {
    const [N, layout, G] = [c.shape[0], c.layout!, c.G!];
    const C = layout === 'NCHW' ? c.shape[1] : c.shape[3];
    const spatial = n / (N * C);
    const geometry = channelGroupGeometry(layout === 'NCHW' ? { outer: N, channels: C, inner: spatial } : { outer: N * spatial, channels: C, inner: 1 }, N, G);
    const gamma = randn(C, 113).map((v) => 1 + 0.2 * v);
    const beta = randn(C, 114);
    const ref = { ...referenceGroupNorm(x, c.shape, { layout, numGroups: G, gamma, beta, eps: 1e-5 }), ...referenceGroupNormBackward(x, dy, c.shape, { layout, numGroups: G, gamma, eps: 1e-5 }) };
    return { geometry, gamma, beta, ref };
  }
  const [rows, L] = c.shape;
  const geometry = rowGeometry(rows, L);
  const gamma = randn(L, 113).map((v) => 1 + 0.2 * v);
  if (c.kind === 'rms') {
    const ref = { ...referenceRMSNorm(x, c.shape, L, { gamma, eps: 1e-5 }), ...referenceRMSNormBackward(x, dy, c.shape, L, { gamma, eps: 1e-5 }) };
    return { geometry, gamma, beta: new Float32Array(L), ref };
  }
  const beta = randn(L, 114);
  const ref = { ...referenceLayerNorm(x, c.shape, L, { gamma, beta, eps: 1e-5 }), ...referenceLayerNormBackward(x, dy, c.shape, L, { gamma, eps: 1e-5 }) };
  return { geometry, gamma, beta, ref };
}

// Packed halves whose every segment starts at and holds a multiple of 4 elements are read as
// pairs of words and stored a chunk's two whole words at a time ('f16-packed-x4'): no pairing and
// no atomic read-modify-write in the chunked walks; the channels kernel still pairs threads. Each
// case asserts the storage its plan takes.
it('packed halves in chunks of 4 where every segment allows: rows, planes, channels-last groups, GPU and CPU sizing', async () => {
  const gpu = seenAsGpu(await testDevice());
  const cpu = await testDevice();
  const HALF = { rtol: 2e-3, atol: 2e-3 };
  const cases: (ChunkCase & { what: string; device: GPUDevice; storage: string })[] = [
    { what: 'LayerNorm rows of 1024', shape: [6, 1024], kind: 'layer', device: gpu, storage: 'f16-packed-x4' },
    { what: 'LayerNorm rows of 9004 (generic walk)', shape: [2, 9004], kind: 'layer', device: gpu, storage: 'f16-packed-x4' },
    { what: 'LayerNorm rows of 516, CPU sizing', shape: [5, 516], kind: 'layer', device: cpu, storage: 'f16-packed-x4' },
    { what: 'LayerNorm rows of 1022', shape: [4, 1022], kind: 'layer', device: gpu, storage: 'f16-packed' },
    { what: 'GroupNorm NCHW planes of 64', kind: 'group', shape: [2, 6, 8, 8], layout: 'NCHW', G: 3, device: gpu, storage: 'f16-packed-x4' },
    { what: 'GroupNorm NHWC 8 channels a group (channels kernel)', kind: 'group', shape: [2, 5, 7, 16], layout: 'NHWC', G: 2, device: gpu, storage: 'f16-packed-x4' },
    { what: 'GroupNorm NHWC 200 channels, CPU sizing (generic backward)', kind: 'group', shape: [1, 2, 2, 200], layout: 'NHWC', G: 1, device: cpu, storage: 'f16-packed-x4' },
  ];
  for (const c of cases) {
    const n = c.shape.reduce((p, d) => p * d, 1);
    const x = stored(randn(n, 121).map((v) => 1.5 * v + 2), 'float16');
    const dy = stored(randn(n, 122), 'float16');
    const { geometry, gamma, beta, ref } = chunkCaseData(c, x, dy);
    const layer =
      c.kind === 'group'
        ? new GroupNorm(c.device, { numGroups: c.G!, numChannels: gamma.length, layout: c.layout!, dtype: 'float16' })
        : new LayerNorm(c.device, { normalizedShape: c.shape[1], dtype: 'float16' });
    layer.setState({ gamma, beta });
    const options = { ...OPTIONS, kind: c.kind, dtype: 'float16' as const };
    expect(normPlan(c.device, geometry, options, { useRunning: false, updateRunning: false }, {}).storage, c.what).toBe(c.storage);
    const y = await layer.forward(x, c.shape);
    const g = await layer.backward(dy);
    expectClose(y, ref.y, HALF, `y ${c.what}`);
    expectClose(g.dx, ref.dx, HALF, `dx ${c.what}`);
    expectClose(g.dgamma!, ref.dgamma, SUM_TOL, `dgamma ${c.what}`);
    layer.destroy();
  }
});

it('LayerNorm backward with several row batches per workgroup keeps each column\'s dγ across them (CPU sizing)', async () => {
  const device = await testDevice();
  // 3 values a row: 256 rows a workgroup batch, 20 batches over at most 16 workgroups.
  const [rows, L] = [5000, 3];
  const x = randn(rows * L, 71);
  const dy = randn(rows * L, 72);
  const gamma = [0.5, 1.5, -1];
  const beta = [0.1, 0.2, 0.3];
  const ln = new LayerNorm(device, { normalizedShape: L });
  ln.setState({ gamma, beta });
  await ln.forward(x, [rows, L]);
  const g = await ln.backward(dy);
  const ref = referenceLayerNormBackward(x, dy, [rows, L], L, { gamma, eps: 1e-5 });
  expectClose(g.dx, ref.dx, DX_TOL, 'dx');
  expectClose(g.dgamma!, ref.dgamma, SUM_TOL, 'dgamma');
  expectClose(g.dbeta!, ref.dbeta, SUM_TOL, 'dbeta');
  ln.destroy();
});

// float32 whose every segment starts at a multiple of 4 elements and holds a multiple of 4 is
// bound as vec4s: the walks move a chunk of 4 consecutive elements per load and store, 4 chunks
// (16 steps) a batch, and the kernels that walk channels apart read single components. Each case
// states the storage and the backward kernel its plan takes (misaligned neighbours stay one
// element at a time), and runs with the plan's cache and with a cache that ends inside a chunk.
it('float32 walks in chunks of 4 where every segment allows: rows, planes, channels-last groups, partial caches', async () => {
  const gpu = seenAsGpu(await testDevice());
  const cpu = await testDevice();
  const cases: (ChunkCase & { what: string; device: GPUDevice; storage: string; kernel: string; steps: number[] })[] = [
    // 64 lanes, 4 chunks a lane (one batch), dγ in the dx walk.
    { what: 'LayerNorm rows of 1024', shape: [6, 1024], kind: 'layer', device: gpu, storage: 'f32x4', kernel: 'norm_backward_columns', steps: [0, 1, 6] },
    // 257 chunks over 128 lanes: lane 0 alone takes a third chunk.
    { what: 'RMSNorm rows of 1028', shape: [3, 1028], kind: 'rms', device: gpu, storage: 'f32x4', kernel: 'norm_backward_columns', steps: [0, 5] },
    // 9 chunks a lane (batches of 4, 4 and 1), 36 steps: past MAX_COLUMNS, so the generic walk and
    // the γ/β partials kernel.
    { what: 'LayerNorm rows of 9004', shape: [2, 9004], kind: 'layer', device: gpu, storage: 'f32x4', kernel: 'norm_backward', steps: [0, 6] },
    { what: 'LayerNorm rows of 1022', shape: [4, 1022], kind: 'layer', device: gpu, storage: 'f32', kernel: 'norm_backward_columns', steps: [0] },
    // CPU sizing: 4 lanes, 33 chunks a lane, 9 batches.
    { what: 'RMSNorm rows of 516, CPU sizing', shape: [5, 516], kind: 'rms', device: cpu, storage: 'f32x4', kernel: 'norm_backward', steps: [0, 3] },
    // Planes of 64: 8 lanes, 2 chunks each a plane, 2 planes a group.
    { what: 'GroupNorm NCHW planes of 64', shape: [2, 6, 8, 8], kind: 'group', layout: 'NCHW', G: 3, device: gpu, storage: 'f32x4', kernel: 'norm_backward_planes', steps: [0, 3, 6] },
    { what: 'GroupNorm NCHW planes of 63', shape: [2, 6, 7, 9], kind: 'group', layout: 'NCHW', G: 3, device: gpu, storage: 'f32', kernel: 'norm_backward_planes', steps: [0] },
    // Segments of 8 channels, 16 apart: the forward walk's chunks skip from segment to segment;
    // the channels kernel reads components.
    { what: 'GroupNorm NHWC 8 channels a group', shape: [2, 5, 7, 16], kind: 'group', layout: 'NHWC', G: 2, device: gpu, storage: 'f32x4', kernel: 'norm_backward_channels', steps: [0, 2] },
    { what: 'GroupNorm NHWC 6 channels a group', shape: [2, 5, 7, 12], kind: 'group', layout: 'NHWC', G: 2, device: gpu, storage: 'f32', kernel: 'norm_backward_channels', steps: [0] },
    // 4 lanes over segments of 200 channels: 50 channels a lane, so the generic backward walk, in chunks.
    { what: 'GroupNorm NHWC 200 channels, CPU sizing', shape: [1, 2, 2, 200], kind: 'group', layout: 'NHWC', G: 1, device: cpu, storage: 'f32x4', kernel: 'norm_backward', steps: [0, 7] },
  ];
  for (const c of cases) {
    const n = c.shape.reduce((p, d) => p * d, 1);
    const x = randn(n, 111).map((v) => 2 * v + 5);
    const dy = randn(n, 112);
    const { geometry, gamma, beta, ref } = chunkCaseData(c, x, dy);
    const options = { ...OPTIONS, kind: c.kind };
    const plan = normPlan(c.device, geometry, options, { useRunning: false, updateRunning: false }, {});
    expect(plan.storage, c.what).toBe(c.storage);
    expect(plan.backwardKernel, c.what).toBe(c.kernel);
    for (const steps of c.steps) {
      const what = `${c.what}, cache ${steps || 'planned'}`;
      const out = await run(c.device, geometry, options, steps || plan.backwardCache, x, dy, gamma, beta);
      expectClose(out.y, ref.y, Y_TOL, `y ${what}`);
      expectClose(out.dx, ref.dx, DX_TOL, `dx ${what}`);
      expectClose(out.dgamma, ref.dgamma, SUM_TOL, `dgamma ${what}`);
      if ('dbeta' in ref) expectClose(out.dbeta, ref.dbeta, SUM_TOL, `dbeta ${what}`);
    }
  }
});
