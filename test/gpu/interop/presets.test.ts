/**
 * PyTorch and Keras option presets: the mapping itself, and layers built from them trained on
 * the GPU against the reference with each framework's semantics (Keras: momentum 1 − 0.99,
 * epsilon 1e-3, biased moving variance, channels last; center/scale separately).
 */
import { describe, expect, it } from 'vitest';
import { BatchNorm } from '../../../src/batchnorm/layer.js';
import { channelView } from '../../../src/core/layout.js';
import { kerasOptions, pytorchOptions } from '../../../src/interop/presets.js';
import { referenceBackward, referenceStats, referenceTrainingForward, referenceUpdateRunningStats, type RunningStats } from '../../../src/batchnorm/reference.js';
import { channelData, expectClose, randn } from '../../helpers/data.js';
import { testDevice } from '../../helpers/gpu.js';
import { STATS_TOL, dxTolerance, yTolerance } from '../../helpers/tolerances.js';

describe('option mapping', () => {
  it("PyTorch's defaults", () => {
    expect(pytorchOptions({ numFeatures: 8, layout: 'NCHW' })).toEqual({
      numFeatures: 8,
      layout: 'NCHW',
      eps: 1e-5,
      momentum: 0.1,
      affine: true,
      trackRunningStats: true,
      runningVariance: 'unbiased',
    });
  });

  it("Keras's defaults, momentum as the weight of the new batch, and axis to layout", () => {
    const o = kerasOptions({ numFeatures: 8, rank: 4 });
    expect(o).toMatchObject({ layout: 'NHWC', eps: 1e-3, center: true, scale: true, runningVariance: 'biased' });
    expect(o.momentum).toBeCloseTo(0.01, 15);
    const layouts = [2, 3, 4, 5].flatMap((rank) => [1, -1].map((axis) => kerasOptions({ numFeatures: 1, rank, axis }).layout));
    expect(layouts).toEqual(['NC', 'NC', 'NCL', 'NLC', 'NCHW', 'NHWC', 'NCDHW', 'NDHWC']);
    expect(kerasOptions({ numFeatures: 1, rank: 4, axis: 3 }).layout).toBe('NHWC');
    expect(() => kerasOptions({ numFeatures: 1, rank: 4, axis: 2 })).toThrow(/axis 2 of a rank-4 input has no supported layout/);
    expect(() => kerasOptions({ numFeatures: 1, rank: 2, momentum: 1.5 })).toThrow(/momentum must be a number in \[0, 1\]/);
  });
});

describe('unknown arguments are refused, naming the argument, the key and the accepted ones', () => {
  const torch = 'expected one of numFeatures, layout, eps, momentum, affine, trackRunningStats';
  const keras = 'expected one of numFeatures, rank, axis, momentum, epsilon, center, scale';
  const bad = <T>(args: T) => ({ ...args }) as never;

  it("pytorchOptions: PyTorch's own spelling, a foreign name, a BatchNorm option it does not take", () => {
    expect(() => pytorchOptions(bad({ numFeatures: 3, layout: 'NCHW', track_running_stats: false }))).toThrow(
      new TypeError(`args.track_running_stats is not an argument of pytorchOptions (did you mean trackRunningStats?); ${torch}`),
    );
    expect(() => pytorchOptions(bad({ num_features: 3, layout: 'NCHW' }))).toThrow(/^args\.num_features is not an argument of pytorchOptions \(did you mean numFeatures\?\)/);
    expect(() => pytorchOptions(bad({ numFeatures: 3, layout: 'NCHW', axis: 1 }))).toThrow(
      new TypeError(`args.axis is not an argument of pytorchOptions (the channel axis comes from layout: 'NC' or 'NCL' (BatchNorm1d), 'NCHW' (2d), 'NCDHW' (3d)); ${torch}`),
    );
    expect(() => pytorchOptions(bad({ numFeatures: 3, layout: 'NCHW', dtype: 'float16' }))).toThrow(
      /^args\.dtype is not an argument of pytorchOptions \(an option of BatchNorm, which pytorchOptions does not take: add it to the result, \{ \.\.\.pytorchOptions\(…\), dtype \}\)/,
    );
    expect(() => pytorchOptions(bad({ numFeatures: 3, layout: 'NCHW', weight: [1, 1, 1] }))).toThrow(/^args\.weight is not an argument of pytorchOptions \(γ is state, not an argument: load it with setState; fromPyTorchState/);
  });

  it("kerasOptions: PyTorch's and the layer's names", () => {
    expect(() => kerasOptions(bad({ numFeatures: 3, rank: 4, eps: 1e-3 }))).toThrow(new TypeError(`args.eps is not an argument of kerasOptions (Keras's epsilon); ${keras}`));
    expect(() => kerasOptions(bad({ numFeatures: 3, rank: 4, layout: 'NHWC' }))).toThrow(/^args\.layout is not an argument of kerasOptions \(the layout comes from rank and axis\)/);
    expect(() => kerasOptions(bad({ numFeatures: 3, rank: 4, affine: false }))).toThrow(/^args\.affine is not an argument of kerasOptions \(Keras's center \(β\) and scale \(γ\)\)/);
    expect(() => kerasOptions(bad({ numFeatures: 3, rank: 4, Epsilon: 1e-2 }))).toThrow(/^args\.Epsilon is not an argument of kerasOptions \(did you mean epsilon\?\)/);
  });

  it('checks keys before values; a key set to undefined passes; args must be an object', () => {
    expect(() => kerasOptions(bad({ numFeatures: 3, rank: 9, bogus: 1 }))).toThrow(/^args\.bogus is not an argument of kerasOptions; expected one of/);
    expect(pytorchOptions(bad({ numFeatures: 3, layout: 'NC', bogus: undefined })).trackRunningStats).toBe(true);
    expect(() => pytorchOptions(null as never)).toThrow(new TypeError('args must be an object; got null'));
    expect(() => kerasOptions(4 as never)).toThrow(new TypeError('args must be an object; got 4'));
  });

  it('the result is unchanged for known keys', () => {
    expect(pytorchOptions({ numFeatures: 3, layout: 'NCL', eps: 1e-3, momentum: null, affine: false, trackRunningStats: false })).toEqual({
      numFeatures: 3,
      layout: 'NCL',
      eps: 1e-3,
      momentum: null,
      affine: false,
      trackRunningStats: false,
      runningVariance: 'unbiased',
    });
  });
});

describe('a Keras-preset layer on the GPU', () => {
  it('trains like Keras: biased moving variance, momentum 0.01, epsilon 1e-3, channels last', async () => {
    const device = await testDevice();
    const shape = [2, 2, 2, 3]; // 8 values per channel: n/(n-1) = 8/7 separates the two updates clearly
    const view = channelView('NHWC', shape);
    const bn = new BatchNorm(device, kerasOptions({ numFeatures: 3, rank: 4 }));
    const init: RunningStats = { runningMean: new Float64Array(3), runningVar: new Float64Array(3).fill(1), numBatchesTracked: 0 };
    let running = init;
    let asPyTorch = init; // the same batches with PyTorch's unbiased update
    for (let step = 0; step < 3; step++) {
      const x = channelData(view, 60 + step);
      const y = await bn.forward(x, shape, { training: true });
      const ref = referenceTrainingForward(x, view, { gamma: [1, 1, 1], beta: [0, 0, 0], eps: 1e-3 });
      expectClose(y, ref.y, yTolerance(x, view, { ...ref, gamma: [1, 1, 1], eps: 1e-3 }), 'y');
      running = referenceUpdateRunningStats(running, referenceStats(x, view), 1 - 0.99, 'biased');
      asPyTorch = referenceUpdateRunningStats(asPyTorch, referenceStats(x, view), 1 - 0.99, 'unbiased');
    }
    const state = await bn.getState();
    expectClose(state.runningMean, running.runningMean, STATS_TOL, 'moving_mean');
    expectClose(state.runningVar, running.runningVar, STATS_TOL, 'moving_variance');
    // PyTorch's unbiased update is far outside the tolerance: the check above tells the two apart.
    for (let c = 0; c < 3; c++) {
      const bound = (STATS_TOL.atol as number) + STATS_TOL.rtol * asPyTorch.runningVar[c];
      expect(Math.abs(state.runningVar[c] - asPyTorch.runningVar[c])).toBeGreaterThan(10 * bound);
    }
    bn.destroy();
  });

  it('center: false keeps β = 0 fixed and learns γ; scale: false the other way round', async () => {
    const device = await testDevice();
    const shape = [6, 4];
    const view = channelView('NC', shape);
    const x = channelData(view, 70);
    const dy = randn(24, 71);
    for (const [center, scale] of [[false, true], [true, false]]) {
      const bn = new BatchNorm(device, kerasOptions({ numFeatures: 4, rank: 2, center, scale }));
      expect([bn.center, bn.scale, bn.affine]).toEqual([center, scale, true]);
      const fixed = center ? 'gamma' : 'beta';
      expect(() => bn.setState({ [fixed]: [2, 2, 2, 2] })).toThrow(new RegExp(`state.${fixed} cannot be set: it is fixed`));
      const learned = center ? { beta: [0.5, -0.5, 1, 0] } : { gamma: [2, 0.5, 1, 3] };
      bn.setState(learned);
      const gamma = center ? [1, 1, 1, 1] : learned.gamma!;
      const beta = center ? learned.beta! : [0, 0, 0, 0];
      const y = await bn.forward(x, shape, { training: true });
      const ref = referenceTrainingForward(x, view, { gamma, beta, eps: 1e-3 });
      expectClose(y, ref.y, yTolerance(x, view, { ...ref, gamma, eps: 1e-3 }), 'y');
      const g = await bn.backward(dy);
      const refG = referenceBackward(x, dy, view, { mean: ref.mean, variance: ref.variance, gamma, eps: 1e-3, batchStats: true });
      expectClose(g.dx, refG.dx, dxTolerance(x, dy, view, { ...ref, gamma, eps: 1e-3 }), 'dx');
      expect(g.dgamma === null).toBe(!scale);
      expect(g.dbeta === null).toBe(!center);
      bn.destroy();
    }
  });
});
