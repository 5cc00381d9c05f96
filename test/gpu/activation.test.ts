/**
 * activation: 'relu' fuses max(·, 0) into the normalize pass and the ReLU's mask into backward.
 * Reference: y = max(BN(x), 0); backward = BN's backward of dy·[BN(x) > 0]. Every tensor storage
 * path is covered: vec4 (inner % 4 == 0), scalar, channels-last reductions, packed halves.
 */
import { describe, expect, it } from 'vitest';
import { BatchNorm } from '../../src/layers/batchnorm.js';
import { channelView, type Layout } from '../../src/tensor/layout.js';
import { referenceBackward, referenceInference, referenceTrainingForward } from '../../src/reference/batchnorm.js';
import { toFloat16Bits, fromFloat16Bits } from '../../src/tensor/float16.js';
import { channelData, expectClose, randn } from '../helpers/data.js';
import { testDevice } from '../helpers/gpu.js';
import { dgammaTolerance, dxTolerance, halfTolerance, sumTolerance, yTolerance } from '../helpers/tolerances.js';

const CASES: [Layout, number[], 'float32' | 'float16'][] = [
  ['NCHW', [3, 4, 6, 8], 'float32'], // vec4 storage
  ['NCL', [4, 3, 7], 'float32'], // scalar storage
  ['NHWC', [3, 5, 7, 6], 'float32'], // channels-last reductions
  ['NC', [40, 5], 'float32'],
  ['NHWC', [3, 5, 7, 12], 'float32'], // channels-last vec4 kernels
  ['NC', [41, 8], 'float16'], // channels-last vec4 kernels on half storage
  ['NCHW', [2, 3, 5, 5], 'float16'], // packed halves with a slot straddling channels
];

describe.each(CASES)('fused ReLU, %s %j %s', (layout, shape, dtype) => {
  it('forward (training and inference) and backward match ReLU after the reference', async () => {
    const device = await testDevice();
    const view = channelView(layout, shape);
    const C = view.channels;
    const eps = 1e-5;
    const gamma = Array.from({ length: C }, (_, c) => 0.5 + 0.3 * c);
    const beta = Array.from({ length: C }, (_, c) => 0.4 * (c % 3) - 0.4);
    const round = (a: Float32Array) => (dtype === 'float16' ? fromFloat16Bits(toFloat16Bits(a)) : a);
    const x = round(channelData(view, 80));
    const dy = round(randn(x.length, 81));
    const bn = new BatchNorm(device, { numFeatures: C, layout, activation: 'relu', dtype, eps });
    bn.setState({ gamma, beta });
    const half = (t: ReturnType<typeof yTolerance>) => (dtype === 'float16' ? halfTolerance(t) : t);

    const y = await bn.forward(x, shape, { training: true });
    const ref = referenceTrainingForward(x, view, { gamma, beta, eps });
    const stats = { mean: ref.mean, variance: ref.variance, gamma, eps };
    expectClose(y, ref.y.map((v) => Math.max(v, 0)), half(yTolerance(x, view, stats)), 'y');
    expect(y.some((v) => v === 0) && y.some((v) => v > 0)).toBe(true); // the mask matters

    const g = await bn.backward(dy);
    const gated = dy.map((d, i) => (ref.y[i] > 0 ? d : 0));
    const refG = referenceBackward(x, gated, view, { ...stats, batchStats: true });
    expectClose(g.dx, refG.dx, half(dxTolerance(x, gated, view, stats)), 'dx');
    expectClose(g.dbeta!, refG.dbeta, sumTolerance(gated, view), 'dbeta');
    expectClose(g.dgamma!, refG.dgamma, dgammaTolerance(x, gated, view, stats), 'dgamma');

    // Inference: the running statistics, then the ReLU.
    const state = await bn.getState();
    const yTest = await bn.forward(x, shape, { training: false });
    const refTest = referenceInference(x, view, { runningMean: state.runningMean, runningVar: state.runningVar, gamma, beta, eps });
    const testStats = { mean: state.runningMean, variance: state.runningVar, gamma, eps };
    expectClose(yTest, refTest.map((v) => Math.max(v, 0)), half(yTolerance(x, view, testStats)), 'inference y');
    const gTest = await bn.backward(dy);
    const gatedTest = dy.map((d, i) => (refTest[i] > 0 ? d : 0));
    const refGTest = referenceBackward(x, gatedTest, view, { ...testStats, batchStats: false });
    expectClose(gTest.dx, refGTest.dx, half(dxTolerance(x, gatedTest, view, testStats)), 'inference dx');
    bn.destroy();
  });
});

it("refuses an unknown activation, naming it", async () => {
  const device = await testDevice();
  expect(() => new BatchNorm(device, { numFeatures: 2, layout: 'NC', activation: 'gelu' as never })).toThrow(/options.activation must be 'none' or 'relu'; got the string 'gelu'/);
});
