/**
 * Every option and argument is checked, without a device: the check helpers the layers call,
 * the CPU reference functions, the presets and getDevice's options. Each refusal is asserted by
 * its error type and its whole message: the argument's name, the expected value, what it got.
 */
import { describe, expect, it } from 'vitest';
import { checkBoolean, checkCallOptions, checkDevice, checkEncoder, checkLabel, checkNoOverlap, checkObjectArg } from '../src/runtime/validate.js';
import {
  referenceActivation,
  referenceActivationGrad,
  referenceBackward,
  referenceFeatureScaling,
  referenceInference,
  referenceNormalize,
  referenceStats,
  referenceTrainingForward,
  referenceUpdateRunningStats,
} from '../src/reference/batchnorm.js';
import {
  referenceGroupNorm,
  referenceInstanceNorm,
  referenceInstanceNormRunningStats,
  referenceLayerNorm,
  referenceLayerNormBackward,
  referenceRMSNorm,
} from '../src/reference/normalization.js';
import { groupNormScaleFromOpset18, kerasOptions, onnxOptions, pytorchOptions } from '../src/interop/presets.js';
import { getDevice, type GetDeviceOptions } from '../src/runtime/device.js';
import { BATCHNORM_OPTIONS } from '../src/layers/batchnorm-args.js';
import { channelView, type Layout } from '../src/tensor/layout.js';

type ErrorClass = typeof TypeError | typeof RangeError;

/** The error `fn` throws, which must be of `type` with the message `message` (a string: exactly). */
function expectError(fn: () => unknown, type: ErrorClass, message: string | RegExp): void {
  let error: unknown = null;
  try {
    fn();
  } catch (e) {
    error = e;
  }
  expect(error, 'it throws').toBeInstanceOf(type);
  if (typeof message === 'string') expect((error as Error).message).toBe(message);
  else expect((error as Error).message).toMatch(message);
}

describe('check helpers the layers call', () => {
  it('checkBoolean refuses strings and numbers; undefined takes the default', () => {
    expectError(() => checkBoolean('options.affine', 'false'), TypeError, "options.affine must be a boolean; got the string 'false'");
    expectError(() => checkBoolean('options.scale', 0, true), TypeError, 'options.scale must be a boolean; got 0');
    expectError(() => checkBoolean('options.center', null, true), TypeError, 'options.center must be a boolean; got null');
    expect(checkBoolean('options.center', undefined, true)).toBe(true);
    expect(checkBoolean('options.center', false, true)).toBe(false);
  });

  it('checkLabel refuses a number and null; undefined takes the default', () => {
    expectError(() => checkLabel('options.label', 42, 'FeatureScaler'), TypeError, 'options.label must be a string; got 42');
    expectError(() => checkLabel('options.label', null, 'FeatureScaler'), TypeError, 'options.label must be a string; got null');
    expect(checkLabel('options.label', undefined, 'FeatureScaler')).toBe('FeatureScaler');
  });

  it('checkDevice and checkEncoder name what they got', () => {
    expectError(() => checkDevice('device', undefined), TypeError, 'device must be a GPUDevice; got undefined');
    expectError(() => checkDevice('device', {}), TypeError, 'device must be a GPUDevice; got an object');
    expectError(() => checkEncoder('encoder', undefined), TypeError, 'encoder must be a GPUCommandEncoder (device.createCommandEncoder()); got undefined');
    // A compute pass encoder is not a command encoder.
    class GPUComputePassEncoder {
      end() {}
    }
    expectError(() => checkEncoder('encoder', new GPUComputePassEncoder()), TypeError, 'encoder must be a GPUCommandEncoder (device.createCommandEncoder()); got a GPUComputePassEncoder');
    expect(() => checkEncoder('encoder', { beginComputePass() {}, finish() {} })).not.toThrow();
  });

  it('checkObjectArg refuses arrays and null, and unknown keys', () => {
    const keys = { names: ['x', 'y'], what: 'an argument of f' };
    expectError(() => checkObjectArg('args', [1], 'an object { x, y }', keys), TypeError, 'args must be an object { x, y }; got an Array of 1');
    expectError(() => checkObjectArg('args', { x: 1, z: 2 }, 'an object { x, y }', keys), TypeError, 'args.z is not an argument of f; expected one of x, y');
  });

  describe('checkCallOptions (the options of forward(x, shape, options))', () => {
    const bn = { what: 'an option of BatchNorm.forward', layerOptions: BATCHNORM_OPTIONS };
    const family = { what: 'an option of InstanceNorm.forward', layerOptions: ['momentum', 'trackRunningStats'], trainingDefault: true };

    it("refuses a layer option given to a call, which it would ignore: { training: true, momentum: 0.5 }", () => {
      expectError(
        () => checkCallOptions('options', { training: true, momentum: 0.5 }, bn),
        TypeError,
        'options.momentum is not an option of BatchNorm.forward (momentum is an option of the layer, given to its constructor; a call takes only training); expected one of training',
      );
    });

    it('refuses { train: false }, which would silently train', () => {
      expectError(
        () => checkCallOptions('options', { train: false }, family),
        TypeError,
        'options.train is not an option of InstanceNorm.forward (did you mean training?); expected one of training',
      );
    });

    it('training must be a boolean, and is required where there is no default', () => {
      expectError(() => checkCallOptions('options', { training: 'false' }, family), TypeError, "options.training must be a boolean; got the string 'false'");
      expectError(() => checkCallOptions('options', { training: 1 }, bn), TypeError, 'options.training must be a boolean; got 1');
      expectError(() => checkCallOptions('options', {}, bn), TypeError, 'options.training must be a boolean; got undefined');
      expectError(() => checkCallOptions('options', undefined, bn), TypeError, 'options must be an object { training }; got undefined');
      expectError(() => checkCallOptions('options', null, family), TypeError, 'options must be an object { training? }; got null');
      expect(checkCallOptions('options', undefined, family)).toBe(true);
      expect(checkCallOptions('options', {}, family)).toBe(true);
      expect(checkCallOptions('options', { training: false }, family)).toBe(false);
      expect(checkCallOptions('options', { training: false, momentum: undefined }, bn)).toBe(false);
    });
  });

  it('checkNoOverlap refuses overlapping ranges of one GPUBuffer, and passes disjoint ones', () => {
    const arena = { size: 1024, usage: 0x80 } as unknown as GPUBuffer;
    const other = { size: 1024, usage: 0x80 } as unknown as GPUBuffer;
    expectError(
      () => checkNoOverlap(['args.buffers.runningVar', arena, 16], { 'args.buffers.runningMean': [arena, 16] }),
      TypeError,
      'args.buffers.runningVar must not overlap args.buffers.runningMean, which the same pass reads or writes; got bytes [0, 16) of the GPUBuffer that holds args.buffers.runningMean at bytes [0, 16)',
    );
    expectError(
      () => checkNoOverlap(['args.y', { buffer: arena, offset: 256 }, 64], { 'args.saved': [{ buffer: arena, offset: 0, size: 512 }, 300] }),
      TypeError,
      /^args\.y must not overlap args\.saved, .*; got bytes \[256, 320\) of the GPUBuffer that holds args\.saved at bytes \[0, 300\)$/,
    );
    expect(() => checkNoOverlap(['a', { buffer: arena, offset: 256 }, 64], { b: [{ buffer: arena, offset: 0 }, 256], c: [other, 1024], d: [undefined, 4] })).not.toThrow();
  });
});

describe('reference functions', () => {
  const view = channelView('NC', [2, 3]);
  const x = [1, 2, 3, 4, 5, 6];

  it('a short γ is refused, naming it (it used to give NaN, or "Cannot read properties of undefined")', () => {
    expectError(() => referenceTrainingForward(x, view, { gamma: [1, 1], beta: [0, 0, 0], eps: 1e-5 }), RangeError, 'p.gamma must have 3 elements; got 2');
    expectError(() => referenceTrainingForward(x, view, { beta: [0, 0, 0], eps: 1e-5 } as never), TypeError, 'p.gamma must be an array of 3 numbers; got undefined');
    expectError(() => referenceNormalize(x, view, { mean: [0, 0, 0], variance: [1, 1], gamma: [1, 1, 1], beta: [0, 0, 0], eps: 0 }), RangeError, 'p.variance must have 3 elements; got 2');
    expectError(() => referenceLayerNorm(x, [2, 3], 3, { gamma: 5 as never, eps: 1e-5 }), TypeError, 'p.gamma must be an array of 3 numbers; got 5');
    expectError(() => referenceLayerNorm(x, [2, 3], 3, { gamma: [1, '2', 3] as never, eps: 1e-5 }), TypeError, "p.gamma[1] must be a number; got the string '2'");
    expectError(() => referenceInstanceNorm(x, [1, 3, 2], { layout: 'NCL', beta: [0], eps: 1e-5 }), RangeError, 'p.beta must have 3 elements; got 1');
  });

  it('the parameters object, the view and eps', () => {
    expectError(() => referenceTrainingForward(x, view, undefined as never), TypeError, 'p must be an object { gamma, beta, eps }; got undefined');
    expectError(() => referenceRMSNorm(x, [2, 3], 3, undefined as never), TypeError, 'p must be an object { gamma?, eps }; got undefined');
    expectError(() => referenceStats(x, undefined as never), TypeError, 'view must be a ChannelView { outer, channels, inner } of positive integers (see channelView(layout, shape)); got undefined');
    expectError(
      () => referenceStats(x, { outer: 2, channels: 0, inner: 1 }),
      TypeError,
      'view must be a ChannelView { outer, channels, inner } of positive integers (see channelView(layout, shape)); got { outer: 2, channels: 0, inner: 1 }',
    );
    expectError(() => referenceStats('123456' as never, view), TypeError, "x must be an array of 6 numbers; got the string '123456'");
    expectError(() => referenceTrainingForward(x, view, { gamma: [1, 1, 1], beta: [0, 0, 0], eps: -1 }), RangeError, 'p.eps must be a finite number >= 0; got -1');
    expectError(() => referenceLayerNormBackward(x, x, [2, 3], 3, { eps: '1e-5' as never }), RangeError, "p.eps must be a finite number >= 0; got the string '1e-5'");
    expectError(() => referenceLayerNorm(x, [2, 3], 3, { eps: NaN }), RangeError, 'p.eps must be a finite number >= 0; got NaN');
    expectError(() => referenceGroupNorm(x, [1, 3, 2], { layout: null as unknown as Layout, numGroups: 1, eps: 0 }), TypeError, /^p\.layout must be one of 'NC', .*; got null$/);
  });

  it('backward: the statistics, and batchStats a boolean', () => {
    const stats = referenceStats(x, view);
    const p = { mean: stats.mean, variance: stats.variance, gamma: [1, 1, 1], eps: 1e-5, batchStats: true };
    expectError(() => referenceBackward(x, x, view, { ...p, mean: [0] }), RangeError, 'p.mean must have 3 elements; got 1');
    expectError(() => referenceBackward(x, x, view, { ...p, batchStats: 'yes' as never }), TypeError, "p.batchStats must be a boolean; got the string 'yes'");
    expectError(() => referenceBackward(x, [1, 2], view, p), RangeError, 'dy must have 6 elements; got 2');
  });

  it('inference: the running statistics', () => {
    expectError(
      () => referenceInference(x, view, { runningMean: [0, 0, 0], runningVar: [1, 1], gamma: [1, 1, 1], beta: [0, 0, 0], eps: 1e-5 }),
      RangeError,
      'p.runningVar must have 3 elements; got 2',
    );
  });

  it('the running update: momentum, runningVariance, the state and the batch', () => {
    const batch = referenceStats(x, view);
    const state = { runningMean: new Float64Array(3), runningVar: new Float64Array(3).fill(1), numBatchesTracked: 0 };
    expectError(() => referenceUpdateRunningStats(state, batch, 1.5), RangeError, 'momentum must be a number in [0, 1] or null (the cumulative moving average); got 1.5');
    expectError(() => referenceUpdateRunningStats(state, batch, 0.1, 'population' as never), TypeError, "runningVariance must be 'unbiased' or 'biased'; got the string 'population'");
    expectError(() => referenceUpdateRunningStats({ ...state, runningVar: new Float64Array(2) }, batch, 0.1), RangeError, 'state.runningVar must have 3 elements; got 2');
    expectError(() => referenceUpdateRunningStats({ ...state, numBatchesTracked: -1 }, batch, 0.1), RangeError, 'state.numBatchesTracked must be an integer >= 0; got -1');
    expectError(
      () => referenceUpdateRunningStats(state, { ...batch, count: 1 }, 0.1),
      RangeError,
      'batch.count must be an integer >= 2 (the unbiased variance divides by count - 1); got 1',
    );
    expect(referenceUpdateRunningStats(state, { ...batch, count: 1 }, 0.1, 'biased').numBatchesTracked).toBe(1);
    const family = referenceInstanceNorm(x, [1, 3, 2], { layout: 'NCL', eps: 1e-5 });
    expectError(
      () => referenceInstanceNormRunningStats({ runningMean: [0, 0, 0], runningVar: [1, 1, 1] }, family, null as never),
      RangeError,
      'momentum must be a number in [0, 1]; got null',
    );
    expectError(() => referenceInstanceNormRunningStats({ runningMean: [0, 0, 0], runningVar: [1, 1] }, family, 0.1), RangeError, 'state.runningVar must have 3 elements; got 2');
  });

  it('activation, scaling method and correction are checked (an unknown one used to fall through to the last case)', () => {
    expectError(() => referenceActivation([1, -1], 'gelu' as never), TypeError, "activation must be 'none', 'relu' or 'silu'; got the string 'gelu'");
    expectError(() => referenceActivationGrad([1, -1], [1, 1], 'swish' as never), TypeError, "activation must be 'none', 'relu' or 'silu'; got the string 'swish'");
    expectError(() => referenceFeatureScaling(x, view, 'zscore' as never), TypeError, "method must be 'min-max' or 'standardize'; got the string 'zscore'");
    expectError(() => referenceFeatureScaling(x, view, 'min-max', 2 as never), TypeError, 'correction must be 0 or 1; got 2');
  });
});

describe('presets check what they pass through, naming args.*', () => {
  it("pytorchOptions: affine: 'false' and trackRunningStats: 0 are refused (they read as true and false)", () => {
    expectError(() => pytorchOptions({ numFeatures: 3, layout: 'NCHW', affine: 'false' as never }), TypeError, "args.affine must be a boolean; got the string 'false'");
    expectError(() => pytorchOptions({ numFeatures: 3, layout: 'NCHW', trackRunningStats: 0 as never }), TypeError, 'args.trackRunningStats must be a boolean; got 0');
    expectError(() => pytorchOptions({ numFeatures: '3' as never, layout: 'NCHW' }), RangeError, "args.numFeatures must be a positive integer; got the string '3'");
    expectError(() => pytorchOptions({ numFeatures: 3, layout: 'NWC' as never }), TypeError, /^args\.layout must be one of 'NC', .*; got the string 'NWC'$/);
    expectError(() => pytorchOptions({ numFeatures: 3, layout: 'NC', eps: 0 }), RangeError, 'args.eps must be a finite number > 0; got 0');
    expectError(
      () => pytorchOptions({ numFeatures: 3, layout: 'NC', momentum: 2 }),
      RangeError,
      "args.momentum must be a number in [0, 1] (PyTorch's weight of the new batch) or null (a cumulative moving average); got 2",
    );
    expect(pytorchOptions({ numFeatures: 3, layout: 'NC', momentum: null }).momentum).toBeNull();
  });

  it("kerasOptions: center: 'no', scale: 0, a string rank, a fractional axis, epsilon 0", () => {
    expectError(() => kerasOptions({ numFeatures: 3, rank: 4, center: 'no' as never }), TypeError, "args.center must be a boolean; got the string 'no'");
    expectError(() => kerasOptions({ numFeatures: 3, rank: 4, scale: 0 as never }), TypeError, 'args.scale must be a boolean; got 0');
    expectError(() => kerasOptions({ numFeatures: 3, rank: '4' as never }), RangeError, "args.rank must be 2, 3, 4 or 5 (the input's rank, batch axis included); got the string '4'");
    expectError(() => kerasOptions({ numFeatures: 3, rank: 4, axis: 1.5 }), TypeError, 'args.axis must be an integer (negative counts from the end); got 1.5');
    expectError(() => kerasOptions({ numFeatures: 3, rank: 4, epsilon: 0 }), RangeError, 'args.epsilon must be a finite number > 0; got 0');
    expectError(() => kerasOptions({ numFeatures: 3, rank: 2, momentum: 1.5 }), RangeError, "args.momentum must be a number in [0, 1] (Keras's weight of the old value); got 1.5");
  });

  it('onnxOptions: numFeatures; groupNormScaleFromOpset18: each entry a finite number', () => {
    expectError(() => onnxOptions({ numFeatures: 0, rank: 4 }), RangeError, 'args.numFeatures must be a positive integer; got 0');
    expectError(() => groupNormScaleFromOpset18([1, '2'] as never, [0, 0], 2, 4), TypeError, "scale[1] must be a number; got the string '2'");
    expectError(() => groupNormScaleFromOpset18([1, 2], [0, NaN], 2, 4), RangeError, 'bias[1] must be finite; got NaN');
  });
});

describe('getDevice options', () => {
  it('a limit beyond 2^53 − 1 is refused, saying so', async () => {
    const error = await getDevice({ requiredLimits: { maxBufferSize: 2 ** 60 } } as GetDeviceOptions).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TypeError);
    expect((error as Error).message).toBe(`getDevice: options.requiredLimits.maxBufferSize must be a non-negative safe integer (≤ 2^53 − 1); got ${2 ** 60}`);
  });
});
