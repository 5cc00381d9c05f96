/**
 * Fused activations. activation: 'relu' fuses max(z, 0) into the normalize pass and the ReLU's
 * mask into backward; 'silu' fuses z·σ(z) and multiplies dy by σ(z)·(1 + z·(1 − σ(z))), z
 * recomputed from x in backward. Reference: the float64 activation after the float64 batch norm;
 * backward = BN's backward of the activation's gradient with respect to z. Every tensor storage
 * path is covered: vec4 (inner % 4 == 0), scalar, channels-last reductions and vec4 kernels,
 * packed halves.
 *
 * Tolerances: ReLU is 1-Lipschitz, so y, dx, dβ and dγ keep batch norm's own (tolerances.ts).
 * SiLU: siluTolerance carries z's error through |silu'(z)| ≤ 1.1 and adds exp's rounding, and the
 * error of the gradient it hands to backward (siluGateError: z's error through |silu''| ≤ 0.5,
 * plus rounding) widens the dx, dβ and dγ tolerances (widenForGradError). float16 adds one half
 * rounding to y and dx.
 */
import { describe, expect, it } from 'vitest';
import { BatchNorm } from '../../../src/batchnorm/layer.js';
import { channelView, type Layout } from '../../../src/core/layout.js';
import {
  referenceActivation,
  referenceActivationGrad,
  referenceBackward,
  referenceInference,
  referenceTrainingForward,
} from '../../../src/batchnorm/reference.js';
import { toFloat16Bits, fromFloat16Bits } from '../../../src/core/float16.js';
import { channelData, expectClose, randn, type Tolerance } from '../../helpers/data.js';
import { testDevice } from '../../helpers/gpu.js';
import {
  dgammaTolerance,
  dxTolerance,
  halfTolerance,
  siluGateError,
  siluTolerance,
  sumTolerance,
  widenForGradError,
  yTolerance,
  type NormalizeStats,
} from '../../helpers/tolerances.js';
import type { ChannelView } from '../../../src/core/layout.js';

const CASES: [Layout, number[], 'float32' | 'float16'][] = [
  ['NCHW', [3, 4, 6, 8], 'float32'], // vec4 storage
  ['NCL', [4, 3, 7], 'float32'], // scalar storage
  ['NHWC', [3, 5, 7, 6], 'float32'], // channels-last reductions
  ['NC', [40, 5], 'float32'],
  ['NHWC', [3, 5, 7, 12], 'float32'], // channels-last vec4 kernels
  ['NC', [41, 8], 'float16'], // channels-last vec4 kernels on half storage
  ['NC', [41, 5], 'float16'], // channels-last scalar kernels on half storage
  ['NCHW', [2, 3, 4, 4], 'float16'], // channels-first halves, slots within one channel
  ['NCHW', [2, 3, 5, 5], 'float16'], // packed halves with a slot straddling channels
];

const ACTIVATIONS = ['relu', 'silu'] as const;
type Activation = (typeof ACTIVATIONS)[number];

/** Tolerances of y and of the gradients for `activation` after a pass that normalized with `stats`. */
function tolerances(activation: Activation, x: Float32Array, dy: Float32Array, z: Float64Array, view: ChannelView, stats: NormalizeStats) {
  const zTol = yTolerance(x, view, stats);
  const gated = referenceActivationGrad(z, dy, activation);
  const plain = { dx: dxTolerance(x, gated, view, stats), dbeta: sumTolerance(gated, view), dgamma: dgammaTolerance(x, gated, view, stats) };
  if (activation === 'relu') return { y: zTol, gated, ...plain };
  return { y: siluTolerance(z, zTol), gated, ...widenForGradError(plain, siluGateError(z, dy, zTol), x, view, stats) };
}

describe.each(ACTIVATIONS)('fused %s', (activation) => {
  describe.each(CASES)('%s %j %s', (layout, shape, dtype) => {
    it('forward (training and inference) and backward match the activation after the reference', async () => {
      const device = await testDevice();
      const view = channelView(layout, shape);
      const C = view.channels;
      const eps = 1e-5;
      const gamma = Array.from({ length: C }, (_, c) => 0.5 + 0.3 * c);
      const beta = Array.from({ length: C }, (_, c) => 0.4 * (c % 3) - 0.4);
      const round = (a: Float32Array) => (dtype === 'float16' ? fromFloat16Bits(toFloat16Bits(a)) : a);
      const x = round(channelData(view, 80));
      const dy = round(randn(x.length, 81));
      const bn = new BatchNorm(device, { numFeatures: C, layout, activation, dtype, eps });
      bn.setState({ gamma, beta });
      const half = (t: Tolerance) => (dtype === 'float16' ? halfTolerance(t) : t);

      const y = await bn.forward(x, shape, { training: true });
      const ref = referenceTrainingForward(x, view, { gamma, beta, eps });
      const stats = { mean: ref.mean, variance: ref.variance, gamma, eps };
      const tol = tolerances(activation, x, dy, ref.y, view, stats);
      expectClose(y, referenceActivation(ref.y, activation), half(tol.y), 'y');
      // The activation matters: ReLU zeroes some outputs, SiLU makes some negative and bends the rest.
      if (activation === 'relu') expect(y.some((v) => v === 0) && y.some((v) => v > 0)).toBe(true);
      else expect(y.some((v) => v < 0) && y.some((v, e) => v > 0 && v < ref.y[e] - 0.1)).toBe(true);

      const g = await bn.backward(dy);
      const refG = referenceBackward(x, tol.gated, view, { ...stats, batchStats: true });
      expectClose(g.dx, refG.dx, half(tol.dx), 'dx');
      expectClose(g.dbeta!, refG.dbeta, tol.dbeta, 'dbeta');
      expectClose(g.dgamma!, refG.dgamma, tol.dgamma, 'dgamma');

      // Inference: the running statistics, then the activation.
      const state = await bn.getState();
      const yTest = await bn.forward(x, shape, { training: false });
      const refTest = referenceInference(x, view, { runningMean: state.runningMean, runningVar: state.runningVar, gamma, beta, eps });
      const testStats = { mean: state.runningMean, variance: state.runningVar, gamma, eps };
      const testTol = tolerances(activation, x, dy, refTest, view, testStats);
      expectClose(yTest, referenceActivation(refTest, activation), half(testTol.y), 'inference y');
      const gTest = await bn.backward(dy);
      const refGTest = referenceBackward(x, testTol.gated, view, { ...testStats, batchStats: false });
      expectClose(gTest.dx, refGTest.dx, half(testTol.dx), 'inference dx');
      expectClose(gTest.dbeta!, refGTest.dbeta, testTol.dbeta, 'inference dbeta');
      bn.destroy();
    });
  });
});

describe('fused SiLU and non-finite values', () => {
  // Channel 1 of NCL [4, 3, 7] (scalar storage) and of NC [6, 8] (channels-last vec4) gets a NaN.
  it.each([
    ['NCL', [4, 3, 7]],
    ['NC', [6, 8]],
  ] as [Layout, number[]][])('%s %j: a NaN makes its channel NaN in training and only its element NaN at inference, forward and backward', async (layout, shape) => {
    const device = await testDevice();
    const view = channelView(layout, shape);
    const x = channelData(view, 90);
    const nanAt = view.inner === 1 ? 2 * view.channels + 1 : (2 * view.channels + 1) * view.inner + 3;
    x[nanAt] = NaN;
    const dy = randn(x.length, 91);
    const channelOf = (e: number) => Math.floor(e / view.inner) % view.channels;
    const bn = new BatchNorm(device, { numFeatures: view.channels, layout, activation: 'silu' });

    const y = await bn.forward(x, shape, { training: true });
    y.forEach((v, e) => expect(Number.isNaN(v), `training y[${e}]`).toBe(channelOf(e) === 1));
    const g = await bn.backward(dy);
    g.dx.forEach((v, e) => expect(Number.isNaN(v), `training dx[${e}]`).toBe(channelOf(e) === 1));
    expect(Number.isNaN(g.dbeta![1]) && Number.isNaN(g.dgamma![1])).toBe(true);

    // Inference (running statistics untouched by the skipped batch): only the NaN element.
    const yTest = await bn.forward(x, shape, { training: false });
    yTest.forEach((v, e) => expect(Number.isNaN(v), `inference y[${e}]`).toBe(e === nanAt));
    const gTest = await bn.backward(dy);
    gTest.dx.forEach((v, e) => expect(Number.isNaN(v), `inference dx[${e}]`).toBe(e === nanAt));
    bn.destroy();
  });

  it('+Inf stays +Inf and -Inf gives NaN at inference, as z·σ(z) does in IEEE arithmetic', async () => {
    const device = await testDevice();
    const bn = new BatchNorm(device, { numFeatures: 3, layout: 'NC', activation: 'silu' });
    const x = Float32Array.from([Infinity, -Infinity, 0, 1, 2, -3]);
    const y = await bn.forward(x, [2, 3], { training: false });
    const ref = referenceActivation(referenceInference(x, channelView('NC', [2, 3]), { runningMean: [0, 0, 0], runningVar: [1, 1, 1], gamma: [1, 1, 1], beta: [0, 0, 0], eps: 1e-5 }), 'silu');
    expect(y[0]).toBe(Infinity);
    expect(y[1]).toBeNaN();
    expect(Number.isNaN(ref[1]) && ref[0] === Infinity).toBe(true);
    expectClose(y.slice(2), ref.slice(2), { rtol: 1e-5, atol: 1e-6 }, 'finite y');
    bn.destroy();
  });
});

describe('fused ReLU and non-finite values', () => {
  // As the reference's max(NaN, 0) = NaN (referenceActivation): a NaN z stays NaN through the ReLU
  // (shaders/core/activations.wgsl), where WGSL's max(NaN, 0) may give 0. Scalar slots, vec4
  // slots, channels-last vec4 groups and packed halves.
  it.each([
    ['NCL', [4, 3, 7], 'float32'],
    ['NCHW', [2, 3, 2, 2], 'float32'],
    ['NC', [6, 8], 'float32'],
    ['NCL', [4, 3, 7], 'float16'],
  ] as [Layout, number[], 'float32' | 'float16'][])('%s %j %s: a NaN makes its channel NaN in training and only its element NaN at inference', async (layout, shape, dtype) => {
    const device = await testDevice();
    const view = channelView(layout, shape);
    const x = channelData(view, 92);
    const nanAt = view.inner; // channel 1 of the first row
    x[nanAt] = NaN;
    const channelOf = (e: number) => Math.floor(e / view.inner) % view.channels;
    expect(referenceActivation([NaN, -1, 2], 'relu')[0]).toBeNaN();
    const bn = new BatchNorm(device, { numFeatures: view.channels, layout, activation: 'relu', dtype });
    const y = await bn.forward(x, shape, { training: true });
    y.forEach((v, e) => expect(Number.isNaN(v), `training y[${e}]`).toBe(channelOf(e) === 1));
    // Inference (running statistics untouched by the skipped batch): only the NaN element.
    const yTest = await bn.forward(x, shape, { training: false });
    yTest.forEach((v, e) => expect(Number.isNaN(v), `inference y[${e}]`).toBe(e === nanAt));
    bn.destroy();
  });
});

it('refuses an unknown activation, naming it and the accepted ones', async () => {
  const device = await testDevice();
  expect(() => new BatchNorm(device, { numFeatures: 2, layout: 'NC', activation: 'gelu' as never })).toThrow(
    /options.activation must be 'none', 'relu' or 'silu'; got the string 'gelu'/,
  );
});
