/**
 * GPU against the float64 reference for every layout over shapes chosen to be awkward: one
 * channel and three, inner sizes 1 and 7, batches of 2, sizes that are not multiples of the
 * workgroup (256) or of the reduction chunk (2048), channels spread over several chunks, more
 * channels than one workgroup, inner sizes that are multiples of 4 (the vec4 paths) and channels-last
 * tensors of C % 4 == 0 (the channels-last vec4 kernels). Each case runs three training steps (y, running statistics,
 * numBatchesTracked), a training backward, an inference forward and an inference backward.
 */
import { describe, it, expect } from 'vitest';
import { BatchNorm } from '../../../src/batchnorm/layer.js';
import { channelView, type Layout } from '../../../src/core/layout.js';
import {
  referenceBackward,
  referenceInference,
  referenceTrainingForward,
  referenceUpdateRunningStats,
  type RunningStats,
} from '../../../src/batchnorm/reference.js';
import { channelData, expectClose, randn } from '../../helpers/data.js';
import { testDevice } from '../../helpers/gpu.js';
import { STATS_TOL, dgammaTolerance, dxTolerance, sumTolerance, yTolerance } from '../../helpers/tolerances.js';

// Channels-last with C % 4 == 0 runs the *_channels_last_vec4 kernels: one channel group (C 4),
// groups that do not divide the tile (C 100: 25 groups, 10 row lanes), several tiles (C 1024),
// row counts that are not multiples of 4, and several row blocks (NC [70001, 4] on a CPU adapter, whose blocks
// are 65536 rows; NC [4099, 8] and NLC [3, 700, 12] on a GPU).
const SHAPES: Record<Layout, number[][]> = {
  NC: [[2, 1], [2, 3], [7, 3], [300, 5], [4100, 3], [2, 300], [4099, 8], [37, 100], [6, 1024], [70001, 4]],
  NCL: [[2, 3, 7], [3, 1, 1000], [5, 4, 513], [2, 3, 1]],
  NLC: [[2, 7, 3], [3, 100, 1], [4, 33, 70], [3, 700, 12]],
  NCHW: [[2, 3, 1, 1], [2, 1, 7, 7], [3, 3, 5, 7], [8, 4, 17, 19], [2, 3, 4, 6], [3, 2, 64, 36]],
  NHWC: [[2, 1, 1, 3], [2, 7, 7, 1], [3, 5, 7, 3], [4, 23, 29, 4], [2, 9, 11, 64]],
  NCDHW: [[2, 3, 1, 1, 7], [2, 1, 3, 5, 7], [2, 4, 5, 6, 7], [2, 2, 2, 2, 3]],
  NDHWC: [[2, 1, 3, 5, 4], [2, 3, 4, 5, 6]],
};

const CASES = (Object.entries(SHAPES) as [Layout, number[][]][]).flatMap(([layout, shapes]) =>
  shapes.map((shape) => [layout, shape] as const),
);

describe.each(CASES)('%s %j', (layout, shape) => {
  it('matches the reference: training steps, running stats, inference, backward', async () => {
    const device = await testDevice();
    const view = channelView(layout, shape);
    const C = view.channels;
    const n = view.outer * C * view.inner;
    const eps = 1e-5;
    const momentum = 0.1;
    const gamma = Array.from(randn(C, 1, 1, 0.5));
    const beta = Array.from(randn(C, 2, 0, 0.5));
    const bn = new BatchNorm(device, { numFeatures: C, layout, eps, momentum });
    bn.setState({ gamma, beta });
    let running: RunningStats = { runningMean: new Float64Array(C), runningVar: new Float64Array(C).fill(1), numBatchesTracked: 0 };

    let x: Float32Array = new Float32Array();
    let ref!: ReturnType<typeof referenceTrainingForward>; // set by the first step
    for (let step = 0; step < 3; step++) {
      x = channelData(view, 10 + step);
      ref = referenceTrainingForward(x, view, { gamma, beta, eps });
      running = referenceUpdateRunningStats(running, ref, momentum);
      const y = await bn.forward(x, shape, { training: true });
      expectClose(y, ref.y, yTolerance(x, view, { ...ref, gamma, eps }), `training y, step ${step}`);
    }
    const state = await bn.getState();
    expectClose(state.runningMean, running.runningMean, STATS_TOL, 'running mean');
    expectClose(state.runningVar, running.runningVar, STATS_TOL, 'running var');
    expect(state.numBatchesTracked).toBe(3);

    // Backward of the last training step: through the batch statistics.
    const dy = randn(n, 20);
    const g = await bn.backward(dy);
    const trained = { mean: ref.mean, variance: ref.variance, gamma, eps };
    const refG = referenceBackward(x, dy, view, { ...trained, batchStats: true });
    expectClose(g.dx, refG.dx, dxTolerance(x, dy, view, trained), 'training dx');
    expectClose(g.dbeta!, refG.dbeta, sumTolerance(dy, view), 'training dbeta');
    expectClose(g.dgamma!, refG.dgamma, dgammaTolerance(x, dy, view, trained), 'training dgamma');

    // Inference: population statistics (the GPU's own float32 running statistics).
    const xi = channelData(view, 30);
    const yi = await bn.forward(xi, shape, { training: false });
    const population = { mean: state.runningMean, variance: state.runningVar, gamma, eps };
    const refYi = referenceInference(xi, view, { runningMean: state.runningMean, runningVar: state.runningVar, gamma, beta, eps });
    expectClose(yi, refYi, yTolerance(xi, view, population), 'inference y');
    const gi = await bn.backward(dy);
    const refGi = referenceBackward(xi, dy, view, { ...population, batchStats: false });
    expectClose(gi.dx, refGi.dx, dxTolerance(xi, dy, view, population), 'inference dx');
    expectClose(gi.dbeta!, refGi.dbeta, sumTolerance(dy, view), 'inference dbeta');
    expectClose(gi.dgamma!, refGi.dgamma, dgammaTolerance(xi, dy, view, population), 'inference dgamma');
    expect((await bn.getState()).numBatchesTracked, 'inference does not count batches').toBe(3);
    bn.destroy();
  });
});
