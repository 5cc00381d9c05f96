/**
 * Options that change what a pass does: cumulative running averages (momentum null), layers
 * without running statistics, layers without affine parameters, and a non-default eps.
 */
import { describe, it, expect } from 'vitest';
import { BatchNorm } from '../../../src/batchnorm/layer.js';
import { channelView } from '../../../src/core/layout.js';
import {
  referenceBackward,
  referenceStats,
  referenceTrainingForward,
  referenceUpdateRunningStats,
  type RunningStats,
} from '../../../src/batchnorm/reference.js';
import { channelData, expectClose, randn } from '../../helpers/data.js';
import { testDevice } from '../../helpers/gpu.js';
import { STATS_TOL, dxTolerance, yTolerance } from '../../helpers/tolerances.js';

describe('momentum null (cumulative moving average)', () => {
  it('running statistics are the average of every batch so far', async () => {
    const device = await testDevice();
    const shape = [4, 6, 9, 5];
    const view = channelView('NHWC', shape);
    const bn = new BatchNorm(device, { numFeatures: 5, layout: 'NHWC', momentum: null });
    let running: RunningStats = { runningMean: new Float64Array(5), runningVar: new Float64Array(5).fill(1), numBatchesTracked: 0 };
    for (let step = 0; step < 5; step++) {
      const x = channelData(view, 40 + step).map((v) => v * (1 + step) + step);
      running = referenceUpdateRunningStats(running, referenceStats(x, view), null);
      await bn.forward(x, shape, { training: true });
    }
    const state = await bn.getState();
    expect(state.numBatchesTracked).toBe(5);
    expectClose(state.runningMean, running.runningMean, STATS_TOL, 'running mean');
    expectClose(state.runningVar, running.runningVar, STATS_TOL, 'running var');
    bn.destroy();
  });

  it('continues the average from a restored numBatchesTracked', async () => {
    const device = await testDevice();
    const view = channelView('NC', [16, 2]);
    const bn = new BatchNorm(device, { numFeatures: 2, layout: 'NC', momentum: null });
    bn.setState({ runningMean: [1, -1], runningVar: [2, 3], numBatchesTracked: 3 });
    const x = channelData(view, 50);
    await bn.forward(x, [16, 2], { training: true });
    const expected = referenceUpdateRunningStats(
      { runningMean: Float64Array.from([1, -1]), runningVar: Float64Array.from([2, 3]), numBatchesTracked: 3 },
      referenceStats(x, view),
      null,
    );
    const state = await bn.getState();
    expect(state.numBatchesTracked).toBe(4);
    expectClose(state.runningMean, expected.runningMean, STATS_TOL, 'running mean');
    expectClose(state.runningVar, expected.runningVar, STATS_TOL, 'running var');
    bn.destroy();
  });
});

describe('trackRunningStats: false', () => {
  it('inference normalizes with batch statistics and nothing is tracked', async () => {
    const device = await testDevice();
    const shape = [3, 4, 6];
    const view = channelView('NCL', shape);
    const bn = new BatchNorm(device, { numFeatures: 4, layout: 'NCL', trackRunningStats: false });
    const x = channelData(view, 60);
    const gamma = [1, 1, 1, 1];
    const beta = [0, 0, 0, 0];
    const ref = referenceTrainingForward(x, view, { gamma, beta, eps: 1e-5 });
    const y = await bn.forward(x, shape, { training: false });
    expectClose(y, ref.y, yTolerance(x, view, { ...ref, gamma, eps: 1e-5 }), 'inference y');
    // Backward flows through the batch statistics, as they were used.
    const dy = randn(x.length, 61);
    const { dx } = await bn.backward(dy);
    const refG = referenceBackward(x, dy, view, { ...ref, gamma, eps: 1e-5, batchStats: true });
    expectClose(dx, refG.dx, dxTolerance(x, dy, view, { ...ref, gamma, eps: 1e-5 }), 'dx');
    await bn.forward(x, shape, { training: true });
    const state = await bn.getState();
    expect(state.numBatchesTracked).toBe(0);
    expect(Array.from(state.runningMean)).toEqual([0, 0, 0, 0]);
    expect(Array.from(state.runningVar)).toEqual([1, 1, 1, 1]);
    bn.destroy();
  });
});

describe('affine: false', () => {
  it('normalizes with gamma = 1, beta = 0, returns no parameter gradients and refuses to set them', async () => {
    const device = await testDevice();
    const shape = [5, 3];
    const view = channelView('NC', shape);
    const bn = new BatchNorm(device, { numFeatures: 3, layout: 'NC', affine: false, eps: 1e-3 });
    const x = channelData(view, 70);
    const ref = referenceTrainingForward(x, view, { gamma: [1, 1, 1], beta: [0, 0, 0], eps: 1e-3 });
    const y = await bn.forward(x, shape, { training: true });
    expectClose(y, ref.y, yTolerance(x, view, { ...ref, gamma: [1, 1, 1], eps: 1e-3 }), 'y with eps 1e-3');
    const g = await bn.backward(randn(15, 71));
    expect(g.dgamma).toBeNull();
    expect(g.dbeta).toBeNull();
    expect(() => bn.setState({ gamma: [2, 2, 2] })).toThrow(/state.gamma cannot be set: it is fixed in this layer \(affine: false, or scale: false\)/);
    // getState reports the fixed γ = 1 and β = 0, which setState takes back.
    const state = await bn.getState();
    expect(state).toMatchObject({ gamma: Float32Array.of(1, 1, 1), beta: Float32Array.of(0, 0, 0), numBatchesTracked: 1 });
    bn.setState(state);
    expect(await bn.getState()).toEqual(state);
    bn.destroy();
  });
});
