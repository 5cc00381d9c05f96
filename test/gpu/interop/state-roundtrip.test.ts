/**
 * setState(getState()) restores a trained layer on every option combination: fixed γ or β
 * (affine, scale, center false), with and without running statistics, non-finite batches skipped
 * or folded in (NaN running statistics included), both dtypes, a fused ReLU, and the presets.
 */
import { describe, expect, it } from 'vitest';
import { BatchNorm, type BatchNormOptions } from '../../../src/batchnorm/layer.js';
import { kerasOptions, onnxOptions, pytorchOptions } from '../../../src/interop/presets.js';
import { channelView } from '../../../src/core/layout.js';
import { channelData, randn } from '../../helpers/data.js';
import { testDevice } from '../../helpers/gpu.js';

const parameters: [string, Partial<BatchNormOptions>][] = [
  ['affine', {}],
  ['affine: false', { affine: false }],
  ['scale: false', { scale: false }],
  ['center: false', { center: false }],
];
const grid: [string, BatchNormOptions][] = parameters.flatMap(([name, p]) =>
  [true, false].flatMap((trackRunningStats) =>
    (['skip', 'update'] as const).flatMap((nonFiniteBatches) =>
      (['float32', 'float16'] as const).flatMap((dtype) =>
        (['none', 'relu'] as const).map((activation): [string, BatchNormOptions] => [
          `${name}, trackRunningStats ${trackRunningStats}, ${nonFiniteBatches}, ${dtype}, ${activation}`,
          { numFeatures: 3, layout: 'NCHW', ...p, trackRunningStats, nonFiniteBatches, dtype, activation },
        ]),
      ),
    ),
  ),
);
const presets: [string, BatchNormOptions][] = [
  ['pytorchOptions, affine false, momentum null', pytorchOptions({ numFeatures: 3, layout: 'NCHW', affine: false, momentum: null })],
  ['pytorchOptions, no running statistics', pytorchOptions({ numFeatures: 3, layout: 'NCHW', trackRunningStats: false })],
  ['kerasOptions, center false, momentum 0.3', kerasOptions({ numFeatures: 3, rank: 4, axis: 1, center: false, momentum: 0.3 })],
  ['kerasOptions, scale false', kerasOptions({ numFeatures: 3, rank: 4, axis: 1, scale: false })],
  ['onnxOptions', onnxOptions({ numFeatures: 3, rank: 4 })],
];

describe('setState(getState()) round-trips a trained layer', () => {
  it.each([...grid, ...presets])('%s', async (_, options) => {
    const device = await testDevice();
    const shape = [4, 3, 2, 2];
    const view = channelView('NCHW', shape);
    const bn = new BatchNorm(device, options);
    // Learnable parameters and running statistics away from their initial values.
    bn.setState({
      ...(bn.scale ? { gamma: [1.5, 0.5, -2] } : {}),
      ...(bn.center ? { beta: [0.25, -1, 3] } : {}),
      ...(bn.trackRunningStats ? { runningMean: [0.5, -0.5, 2], runningVar: [2, 0.5, 3], numBatchesTracked: 5 } : {}),
    });
    const x = channelData(view, 300);
    await bn.forward(x, shape, { training: true });
    await bn.backward(randn(x.length, 301));
    // A batch with a NaN: skipped, or folded into channel 1's running statistics.
    const bad = channelData(view, 302);
    bad[view.inner] = NaN;
    await bn.forward(bad, shape, { training: true });
    const before = await bn.getState();
    if (bn.trackRunningStats && bn.nonFiniteBatches === 'update') expect(before.runningMean[1]).toBeNaN();

    bn.setState(before);
    expect(await bn.getState()).toEqual(before);
    const copy = new BatchNorm(device, options);
    copy.setState(before);
    expect(await copy.getState()).toEqual(before);
    // The state is all an inference pass depends on.
    expect(await copy.forward(x, shape, { training: false })).toEqual(await bn.forward(x, shape, { training: false }));
    bn.destroy();
    copy.destroy();
  });
});
