/**
 * The low-level API on caller-owned buffers: passes are recorded into the caller's encoder and
 * run only when the caller submits; several passes may share one encoder.
 */
import { describe, it, expect } from 'vitest';
import { BatchNorm } from '../../../src/batchnorm/layer.js';
import { readBuffers } from '../../../src/core/gpu.js';
import { channelView } from '../../../src/core/layout.js';
import {
  referenceBackward,
  referenceStats,
  referenceTrainingForward,
  referenceUpdateRunningStats,
  type RunningStats,
} from '../../../src/batchnorm/reference.js';
import { channelData, expectClose, randn } from '../../helpers/data.js';
import { storageBuffer, testDevice } from '../../helpers/gpu.js';
import { STATS_TOL, dxTolerance, yTolerance } from '../../helpers/tolerances.js';

async function read(device: GPUDevice, buffer: GPUBuffer, n: number): Promise<Float32Array> {
  const [bytes] = await readBuffers(device, [{ buffer, size: n * 4 }]);
  return new Float32Array(bytes);
}

describe('encodeForward / encodeBackward', () => {
  it('record into the caller encoder without submitting; the results appear after submit', async () => {
    const device = await testDevice();
    const shape = [3, 4, 5, 6];
    const view = channelView('NCHW', shape);
    const n = 3 * 4 * 30;
    const x = channelData(view, 80);
    const dy = randn(n, 81);
    const xBuf = storageBuffer(device, x);
    const yBuf = storageBuffer(device, new Float32Array(n));
    const dyBuf = storageBuffer(device, dy);
    const dxBuf = storageBuffer(device, new Float32Array(n));
    const bn = new BatchNorm(device, { numFeatures: 4, layout: 'NCHW' });

    const encoder = device.createCommandEncoder({ label: 'caller encoder' });
    bn.encodeForward(encoder, { x: xBuf, y: yBuf, shape, training: true });
    bn.encodeBackward(encoder, { x: xBuf, dy: dyBuf, dx: dxBuf, shape });
    expect(Array.from(await read(device, yBuf, n)).every((v) => v === 0), 'y untouched before submit').toBe(true);
    expect((await bn.getState()).numBatchesTracked, 'no step before submit').toBe(0);

    device.queue.submit([encoder.finish()]);
    const gamma = [1, 1, 1, 1];
    const ref = referenceTrainingForward(x, view, { gamma, beta: [0, 0, 0, 0], eps: 1e-5 });
    const stats = { ...ref, gamma, eps: 1e-5 };
    expectClose(await read(device, yBuf, n), ref.y, yTolerance(x, view, stats), 'y');
    const refG = referenceBackward(x, dy, view, { ...stats, batchStats: true });
    expectClose(await read(device, dxBuf, n), refG.dx, dxTolerance(x, dy, view, stats), 'dx');
    expect((await bn.getState()).numBatchesTracked).toBe(1);
    bn.destroy();
    for (const b of [xBuf, yBuf, dyBuf, dxBuf]) b.destroy();
  });

  it('keeps passes of different shapes and steps apart within one encoder', async () => {
    const device = await testDevice();
    const bn = new BatchNorm(device, { numFeatures: 3, layout: 'NCL', momentum: null });
    const shapes = [[2, 3, 5], [7, 3, 11], [2, 3, 5], [4, 3, 1]];
    const inputs = shapes.map((s, k) => channelData(channelView('NCL', s), 90 + k));
    const xs = inputs.map((x) => storageBuffer(device, x));
    const ys = inputs.map((x) => storageBuffer(device, new Float32Array(x.length)));
    const encoder = device.createCommandEncoder({ label: 'four steps' });
    shapes.forEach((shape, k) => bn.encodeForward(encoder, { x: xs[k], y: ys[k], shape, training: true }));
    device.queue.submit([encoder.finish()]);

    let running: RunningStats = { runningMean: new Float64Array(3), runningVar: new Float64Array(3).fill(1), numBatchesTracked: 0 };
    const gamma = [1, 1, 1];
    for (let k = 0; k < shapes.length; k++) {
      const view = channelView('NCL', shapes[k]);
      const ref = referenceTrainingForward(inputs[k], view, { gamma, beta: [0, 0, 0], eps: 1e-5 });
      expectClose(await read(device, ys[k], inputs[k].length), ref.y, yTolerance(inputs[k], view, { ...ref, gamma, eps: 1e-5 }), `y of pass ${k}`);
      running = referenceUpdateRunningStats(running, referenceStats(inputs[k], view), null);
    }
    const state = await bn.getState();
    expect(state.numBatchesTracked).toBe(4);
    expectClose(state.runningMean, running.runningMean, STATS_TOL, 'running mean after 4 recorded steps');
    expectClose(state.runningVar, running.runningVar, STATS_TOL, 'running var after 4 recorded steps');
    bn.destroy();
    for (const b of [...xs, ...ys]) b.destroy();
  });
});
