/**
 * The family's rows kernels keep the first CACHE_STEPS values of each thread's walk on chip. On a
 * CPU adapter the plans use 1 step (the arrays only cost there); a GPU gets as many as its
 * workgroup storage allows. This runs the ops with several step counts on SwiftShader -- groups
 * that fit entirely, partly and barely -- and checks each result against the float64 reference.
 */
import { it } from 'vitest';
import { channelGroupGeometry, normPlan, recordNormBackward, recordNormForward, rowGeometry, type NormGeometry, type NormPlanOptions } from '../../src/ops/normalization.js';
import { referenceGroupNorm, referenceGroupNormBackward, referenceLayerNorm, referenceLayerNormBackward } from '../../src/reference/normalization.js';
import { createBufferWithData, readBuffers, Usage } from '../../src/runtime/gpu.js';
import { acquireScratch, acquireSink } from '../../src/runtime/scratch.js';
import { releaseHolder } from '../../src/runtime/context.js';
import { expectClose, randn } from '../helpers/data.js';
import { testDevice } from '../helpers/gpu.js';

// Float32 against float64: y and dx are O(1) (|x̂| < 5), each a few roundings of O(1) terms; dγ
// sums about 200 such products.
const Y_TOL = { rtol: 1e-5, atol: 2e-5 };
const DX_TOL = { rtol: 1e-4, atol: 1e-4 };

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
  const [y, dx, dgamma] = (await readBuffers(device, [{ buffer: b.y, size: n * 4 }, { buffer: b.dx, size: n * 4 }, { buffer: b.dgamma, size: P * 4 }], encoder)).map((a) => new Float32Array(a));
  for (const buffer of Object.values(b)) buffer.destroy();
  releaseHolder(device, holder);
  return { y, dx, dgamma };
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
    expectClose(out.dgamma, grads.dgamma, DX_TOL, `dgamma with ${steps} cache steps`);
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
    expectClose(out.dgamma, grads.dgamma, DX_TOL, `dgamma with ${steps} cache steps`);
  }
});
