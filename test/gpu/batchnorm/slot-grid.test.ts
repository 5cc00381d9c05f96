/**
 * The slot kernels (normalize and input_grad outside channels-last C % 4 == 0) run a fixed grid:
 * each thread keeps one slot's channels and walks row after row (slot_period in batchnorm/common.wgsl), so
 * no element pays an integer division. These tensors have more slots than the grid has threads,
 * so threads take several rows: channels-first scalar float32, channels-last float32 with
 * C % 4 ≠ 0, packed halves whose rows are an odd number of halves (slots straddling channels
 * and rows, a period of two rows, the padding half), and vec4 float32; with and without a fused
 * SiLU. The recorded dispatch shows the grid is smaller than the slot count.
 *
 * Every walk takes four of a thread's rows (or slots) per iteration, loads first, then the
 * rest one at a time: the last cases give each thread 5 or 6 rows of a channels-last vec4
 * tensor, or 5 or 6 slots, so both loops run in normalize, partial_grad_sums and input_grad.
 *
 * Tolerances: batch norm's (test/helpers/tolerances.ts), SiLU's (siluTolerance), one half
 * rounding for float16.
 */
import { describe, expect, it } from 'vitest';
import { BatchNorm } from '../../../src/batchnorm/layer.js';
import { channelView, viewSize, type Layout } from '../../../src/core/layout.js';
import { referenceActivation, referenceInference, referenceTrainingForward } from '../../../src/batchnorm/reference.js';
import { fromFloat16Bits, toFloat16Bits } from '../../../src/core/float16.js';
import { WORKGROUP_SIZE } from '../../../src/core/contract.js';
import { channelData, expectClose, randn, type Tolerance } from '../../helpers/data.js';
import { recordingDevice } from '../../helpers/dispatch-recorder.js';
import { testDevice } from '../../helpers/gpu.js';
import { expectTrainingGradients, halfTolerance, siluTolerance, yTolerance } from '../../helpers/tolerances.js';

const CASES: [Layout, number[], 'float32' | 'float16', 'none' | 'silu', number][] = [
  ['NCL', [1100, 3, 161], 'float32', 'none', 1], // scalar storage, channels-first
  ['NC', [200000, 3], 'float32', 'silu', 1], // scalar storage, channels-last C % 4 != 0
  ['NCL', [4300, 3, 83], 'float16', 'none', 2], // rows of 249 halves: slots straddle channels and rows
  ['NCHW', [4400, 3, 4, 40], 'float32', 'silu', 4], // vec4 storage
];

describe.each(CASES)('%s %j %s, activation %s', (layout, shape, dtype, activation, slot) => {
  it('the grid has fewer threads than slots; forward and backward match the reference', async () => {
    const device = await testDevice();
    const view = channelView(layout, shape);
    const C = view.channels;
    const round = (a: Float32Array) => (dtype === 'float16' ? fromFloat16Bits(toFloat16Bits(a)) : a);
    const half = (t: Tolerance) => (dtype === 'float16' ? halfTolerance(t) : t);
    const x = round(channelData(view, 400));
    const gamma = [0.5, 1.5, -1];
    const beta = [0.25, -0.5, 1];
    const bn = new BatchNorm(device, { numFeatures: C, layout, dtype, activation });
    bn.setState({ gamma, beta });

    // The grid: fewer threads than slots, so threads walk several rows.
    const recorder = recordingDevice(device);
    const probe = new BatchNorm(recorder.device, { numFeatures: C, layout, dtype, activation });
    const usage = GPUBufferUsage.STORAGE;
    const bytes = Math.ceil((x.length * (dtype === 'float16' ? 2 : 4)) / 4) * 4;
    const [bx, by] = [0, 1].map(() => device.createBuffer({ size: bytes, usage }));
    probe.encodeForward(recorder.device.createCommandEncoder(), { x: bx, y: by, shape, training: true });
    const line = recorder.take().find((l) => /^webgpu-batchnorm normalize_(update|batch) \(/.test(l))!;
    const [gx, gy] = /\[(\d+),(\d+),1\]/.exec(line)!.slice(1).map(Number);
    expect(gx * gy * WORKGROUP_SIZE, line).toBeLessThan(Math.ceil(x.length / slot));
    probe.destroy();
    bx.destroy();
    by.destroy();

    const act = (z: Float64Array) => (activation === 'silu' ? referenceActivation(z, 'silu') : z);
    const yTol = (z: Float64Array, tol: Tolerance) => half(activation === 'silu' ? siluTolerance(z, tol) : tol);
    const y = await bn.forward(x, shape, { training: true });
    const ref = referenceTrainingForward(x, view, { gamma, beta, eps: 1e-5 });
    const stats = { mean: ref.mean, variance: ref.variance, gamma, eps: 1e-5 };
    expectClose(y, act(ref.y), yTol(ref.y, yTolerance(x, view, stats)), 'y');
    if (activation === 'none') {
      // The backward's dx runs the slot kernel too (SiLU's backward is covered by the activation tests).
      const dy = round(randn(x.length, 401));
      expectTrainingGradients(await bn.backward(dy), x, dy, view, stats, half);
    }
    const state = await bn.getState();
    const yTest = await bn.forward(x, shape, { training: false });
    const refTest = referenceInference(x, view, { runningMean: state.runningMean, runningVar: state.runningVar, gamma, beta, eps: 1e-5 });
    const testStats = { mean: state.runningMean, variance: state.runningVar, gamma, eps: 1e-5 };
    expectClose(yTest, act(refTest), yTol(refTest, yTolerance(x, view, testStats)), 'inference y');
    bn.destroy();
  });
});

describe('four rows (or slots) a thread per iteration, and the rest one at a time', () => {
  // [layout, shape, activation, kernel, units of the walk: elements per unit]: the grid of the
  // recorded normalize dispatch gives each thread between 4 and 6 units (5 or 6 here).
  const WALKS: [Layout, number[], 'none' | 'relu', string, number][] = [
    ['NC', [2600, 1024], 'relu', 'channels_last_vec4', 4], // rows of a channel group
    ['NCL', [5970, 3, 161], 'none', '', 1], // float32 slots of one element
  ];
  it.each(WALKS)('%s %j, activation %s: training forward, backward and inference match the reference', async (layout, shape, activation, suffix, unit) => {
    const device = await testDevice();
    const view = channelView(layout, shape);
    const C = view.channels;
    const n = viewSize(view);
    const recorder = recordingDevice(device);
    const probe = new BatchNorm(recorder.device, { numFeatures: C, layout, activation });
    const [bx, by] = [0, 1].map(() => device.createBuffer({ size: 4 * n, usage: GPUBufferUsage.STORAGE }));
    probe.encodeForward(recorder.device.createCommandEncoder(), { x: bx, y: by, shape, training: true });
    const kernel = new RegExp(`^webgpu-batchnorm normalize_(update|batch)${suffix ? `_${suffix}` : ''} \\(`);
    const line = recorder.take().find((l) => kernel.test(l))!;
    const [gx, gy] = /\[(\d+),(\d+),1\]/.exec(line)!.slice(1).map(Number);
    const perThread = n / unit / (gx * gy * WORKGROUP_SIZE);
    expect(perThread, `units a thread walks: ${line}`).toBeGreaterThan(4);
    expect(perThread).toBeLessThan(6);
    probe.destroy();
    bx.destroy();
    by.destroy();

    const x = channelData(view, 410);
    const gamma = Array.from({ length: C }, (_, c) => 0.5 + (c % 7) / 4);
    const beta = Array.from({ length: C }, (_, c) => ((c % 5) - 2) / 4);
    const act = (z: Float64Array) => (activation === 'relu' ? referenceActivation(z, 'relu') : z);
    const bn = new BatchNorm(device, { numFeatures: C, layout, activation });
    bn.setState({ gamma, beta });
    const y = await bn.forward(x, shape, { training: true });
    const ref = referenceTrainingForward(x, view, { gamma, beta, eps: 1e-5 });
    const stats = { mean: ref.mean, variance: ref.variance, gamma, eps: 1e-5 };
    expectClose(y, act(ref.y), yTolerance(x, view, stats), 'y');
    // ReLU's gate: dy where the normalized value is positive, on the reference.
    const dy = randn(n, 411);
    const gated = activation === 'relu' ? dy.map((v, e) => (ref.y[e] > 0 ? v : 0)) : dy;
    expectTrainingGradients(await bn.backward(dy), x, gated, view, stats);
    const state = await bn.getState();
    const yTest = await bn.forward(x, shape, { training: false });
    const refTest = referenceInference(x, view, { runningMean: state.runningMean, runningVar: state.runningVar, gamma, beta, eps: 1e-5 });
    expectClose(yTest, act(refTest), yTolerance(x, view, { mean: state.runningMean, variance: state.runningVar, gamma, eps: 1e-5 }), 'inference y');
    bn.destroy();
  });
});
