/**
 * Every option and argument is checked, without a device: the check helpers the layers call,
 * the CPU reference functions, the presets and getDevice's options. Each refusal is asserted by
 * its error type and its whole message: the argument's name, the expected value, what it got.
 */
import { describe, expect, it } from 'vitest';
import { expectError } from '../helpers/data.js';
import { checkBoolean, checkCallOptions, checkDevice, checkEncoder, checkLabel, checkNoOverlap, checkObjectArg, checkTensorBuffer } from '../../src/core/validate.js';
import { referenceActivation, referenceActivationGrad, referenceBackward, referenceInference, referenceNormalize, referenceStats, referenceTrainingForward, referenceUpdateRunningStats } from '../../src/batchnorm/reference.js';
import { referenceFeatureScaling } from '../../src/feature-scaling/reference.js';
import {
  referenceGroupNorm,
  referenceInstanceNorm,
  referenceInstanceNormRunningStats,
  referenceLayerNorm,
  referenceLayerNormBackward,
  referenceRMSNorm,
} from '../../src/normalization/reference.js';
import { groupNormScaleFromOpset18, kerasOptions, onnxLayerNormOptions, onnxOptions, pytorchOptions } from '../../src/interop/presets.js';
import { getDevice, type GetDeviceOptions } from '../../src/core/device.js';
import { BATCHNORM_OPTIONS, checkStateBuffers, resolveBatchNormOptions, type BatchNormOptions } from '../../src/batchnorm/options.js';
import { checkNormStateBuffers, resolveLayerNormOptions, resolveRMSNormOptions } from '../../src/normalization/options.js';
import { fromKerasWeights, fromPyTorchState, toKerasWeights, toOnnxInputs, toOnnxNormInputs, toPyTorchState } from '../../src/interop/state-io.js';
import { parseNpy, toNpy } from '../../src/interop/npy.js';
import { foldBatchNorm } from '../../src/interop/folding.js';
import { channelAxis, channelView, layoutFor, viewSize, type Layout } from '../../src/core/layout.js';


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

/*
 * A new user's review: inputs that were accepted and then gave NaN, a wrong answer or an error
 * naming no argument. Each is refused at the check now, naming the argument, what it expects and
 * what it got.
 */

/** What the option checks read of a device: its limits (WebGPU's defaults). */
const FAKE_DEVICE = { limits: { maxStorageBufferBindingSize: 134217728, minStorageBufferOffsetAlignment: 256 } } as unknown as GPUDevice;

/** An object with a GPUBuffer's size and usage: where no global GPUBuffer class exists (here, before getDevice), it passes as one. */
function fakeBuffer(size: number, usage = 0x80): GPUBuffer {
  return { size, usage } as unknown as GPUBuffer;
}

const SUBNORMAL =
  "must be at least 2^-126 (1.1754943508222875e-38), float32's smallest normal number: the GPU computes in float32 and flushes a smaller (subnormal) eps to 0, which gives NaN for a constant channel or row";
const NOT_FLOAT32 = (v: string) => `must be at most 3.4028234663852886e+38, float32's largest number: the GPU computes in float32, where ${v} is not a float32 (it would be Infinity); got ${v}`;

describe('eps the GPU cannot add: subnormal in float32, or beyond its range', () => {
  it('BatchNorm options (the layer and the function forms resolve them here)', () => {
    const resolve = (eps: number, prefix?: string) => resolveBatchNormOptions(FAKE_DEVICE, { numFeatures: 2, layout: 'NC', eps } as BatchNormOptions, prefix);
    expectError(() => resolve(1e-38), RangeError, `options.eps ${SUBNORMAL}; got 1e-38`);
    expectError(() => resolve(1e-45, 'args.options'), RangeError, `args.options.eps ${SUBNORMAL}; got 1e-45`);
    expectError(() => resolve(1e39), RangeError, `options.eps ${NOT_FLOAT32('1e+39')}`);
    // eps = 0 stays refused, with the message it had.
    expectError(() => resolve(0), RangeError, 'options.eps must be a finite number > 0; got 0');
    expect(resolve(2 ** -126).eps).toBe(2 ** -126);
    expect(resolve(3e38).eps).toBe(3e38);
  });

  it("the family's options", () => {
    expectError(() => resolveLayerNormOptions({ normalizedShape: 4, eps: 1e-40 }), RangeError, `options.eps ${SUBNORMAL}; got 1e-40`);
    expectError(() => resolveRMSNormOptions({ normalizedShape: 4, eps: 1e39 }, 'args'), RangeError, `args.eps ${NOT_FLOAT32('1e+39')}`);
    expectError(() => resolveLayerNormOptions({ normalizedShape: 4, eps: 0 }), RangeError, 'options.eps must be a finite number > 0; got 0');
  });

  it('the presets, under their own names', () => {
    expectError(() => pytorchOptions({ numFeatures: 3, layout: 'NC', eps: 1e-38 }), RangeError, `args.eps ${SUBNORMAL}; got 1e-38`);
    expectError(() => kerasOptions({ numFeatures: 3, rank: 4, epsilon: 1e-45 }), RangeError, `args.epsilon ${SUBNORMAL}; got 1e-45`);
    expectError(() => onnxOptions({ numFeatures: 3, rank: 4, epsilon: 1e39 }), RangeError, `args.epsilon ${NOT_FLOAT32('1e+39')}`);
    expectError(() => onnxLayerNormOptions({ epsilon: 1e-39 }, [2, 4]), RangeError, `attributes.epsilon ${SUBNORMAL}; got 1e-39`);
  });

  it('the float64 reference still takes any eps >= 0', () => {
    const view = channelView('NC', [2, 1]);
    expect(Array.from(referenceTrainingForward([3, 3], view, { gamma: [1], beta: [0], eps: 1e-45 }).y)).toEqual([0, 0]);
    expect(Array.from(referenceLayerNorm([3, 3], [1, 2], 2, { eps: 0 }).y)).toEqual([NaN, NaN]);
  });
});

describe('holes in arrays are seen (forEach, map and some skip them)', () => {
  it('shapes', () => {
    // channelView('NCHW', [2, 2, , 2]) used to return inner 2.
    expectError(() => channelView('NCHW', [2, 2, , 2] as number[]), TypeError, 'shape[2] must be a positive integer; got undefined in [2, 2, , 2]');
    expectError(() => channelView('NC', [, 2] as number[], 'args.shape'), TypeError, 'args.shape[0] must be a positive integer; got undefined in [, 2]');
    expectError(() => resolveLayerNormOptions({ normalizedShape: [, 2] as number[] }), RangeError, 'options.normalizedShape[0] must be a positive integer; got undefined');
    expectError(() => onnxLayerNormOptions({}, [2, , 4] as number[]), TypeError, 'inputShape[1] must be a positive integer; got undefined');
    expectError(() => toNpy(Float32Array.of(1, 2), [, 2] as number[]), TypeError, 'shape[0] must be a non-negative integer; got undefined');
  });

  it("the reference's data and shapes", () => {
    const view = channelView('NC', [2, 2]);
    expectError(() => referenceStats([1, , 3, 4] as number[], view), TypeError, 'x[1] must be a number; got undefined');
    expectError(() => referenceNormalize([1, 2, 3, 4], view, { mean: [0, 0], variance: [1, ,] as number[], gamma: [1, 1], beta: [0, 0], eps: 1e-5 }), TypeError, 'p.variance[1] must be a number; got undefined');
    expectError(() => referenceLayerNorm([1, 2, 3, 4], [2, , 2] as number[], 2, { eps: 1e-5 }), TypeError, 'shape[1] must be a positive integer; got undefined in [2, , 2]');
    expectError(
      () => referenceLayerNorm([1, 2, 3, 4, 5, 6], [2, 3], [, 3] as number[], { eps: 1e-5 }),
      RangeError,
      'normalizedShape must be the last 2 dimensions of shape [2, 3], [2, 3]; got [, 3]',
    );
  });

  it('state arrays loaded from other frameworks', () => {
    expectError(() => fromKerasWeights([[1, , 3] as number[], [0, 0, 0], [0, 0, 0], [1, 1, 1]]), TypeError, 'weights[0][1] (gamma) must be a number; got undefined');
    expectError(() => fromPyTorchState({ weight: [1, 'x'] as never }), TypeError, "dict['weight'][1] must be a number; got the string 'x'");
  });
});

describe('tensor arguments: ranges and buffers', () => {
  it('a range with an unknown key, a size not a multiple of 4, a buffer without STORAGE (its flags decoded)', () => {
    const buffer = fakeBuffer(1024);
    expectError(
      () => checkTensorBuffer('args.x', { buffer, offset: 0, size: 16, typo: 1 } as never, 16, 'float32 [4]'),
      TypeError,
      'args.x.typo is not a key of a range { buffer, offset, size }; expected one of buffer, offset, size',
    );
    expectError(() => checkTensorBuffer('args.x', { buffer, offset: 0, sise: 16 } as never, 16, 'float32 [4]'), TypeError, /^args\.x\.sise is not a key of a range/);
    expectError(() => checkTensorBuffer('args.x', { buffer, size: 9 }, 8, 'float32 [2]'), RangeError, 'args.x.size must be a multiple of 4 (WebGPU binds storage in 4-byte words); got 9');
    expectError(
      () => checkTensorBuffer('args.x', fakeBuffer(64, 0x9), 16, 'float32 [4]'),
      TypeError,
      'args.x must have GPUBufferUsage.STORAGE in its usage; got usage 0x9 (MAP_READ | COPY_DST)',
    );
    expectError(() => checkTensorBuffer('args.x', { buffer: fakeBuffer(64, 0) }, 16, 'float32 [4]'), TypeError, 'args.x.buffer must have GPUBufferUsage.STORAGE in its usage; got usage 0x0 (none)');
  });

  it('where no global GPUBuffer class exists, an object with size and usage still passes', () => {
    expect(typeof (globalThis as { GPUBuffer?: unknown }).GPUBuffer).toBe('undefined');
    expect(() => checkTensorBuffer('args.x', { buffer: fakeBuffer(1024), offset: 256, size: 16 }, 16, 'float32 [4]')).not.toThrow();
  });
});

describe('state buffers: a plain object, and no two of them overlapping', () => {
  it('a Map is refused (its entries are no properties: it read as no buffers at all)', () => {
    const buffers = new Map([['gamma', fakeBuffer(8)]]);
    expectError(
      () => resolveBatchNormOptions(FAKE_DEVICE, { numFeatures: 2, layout: 'NC', buffers } as never),
      TypeError,
      'options.buffers must be an object of GPUBuffers (or ranges) by state name; got a Map',
    );
    expectError(() => checkStateBuffers(FAKE_DEVICE, 2, buffers as never, 'args.buffers'), TypeError, 'args.buffers must be an object of buffers by state name; got a Map');
    expectError(() => resolveLayerNormOptions({ normalizedShape: 2, buffers: buffers as never }), TypeError, 'options.buffers must be an object of GPUBuffers (or ranges) by name; got a Map');
    // A null-prototype object is a plain object.
    expect(() => checkStateBuffers(FAKE_DEVICE, 2, Object.assign(Object.create(null), { gamma: fakeBuffer(8) }), 'options.buffers')).not.toThrow();
  });

  it('γ and β in one buffer or overlapping ranges are refused; side by side they pass', () => {
    const b = fakeBuffer(1024);
    const message = (name: string) =>
      `options.buffers.gamma must not overlap options.buffers.beta: each state buffer needs bytes of its own (setState and the passes write them separately); got bytes [0, 8) of the GPUBuffer that holds options.buffers.beta at bytes ${name}`;
    expectError(() => checkStateBuffers(FAKE_DEVICE, 2, { gamma: b, beta: b }, 'options.buffers'), TypeError, message('[0, 8)'));
    expectError(() => checkStateBuffers(FAKE_DEVICE, 2, { gamma: { buffer: b, offset: 0, size: 8 }, beta: { buffer: b, offset: 0, size: 16 } }, 'options.buffers'), TypeError, message('[0, 8)'));
    expect(() => checkStateBuffers(FAKE_DEVICE, 2, { gamma: { buffer: b, offset: 0, size: 8 }, beta: { buffer: b, offset: 256, size: 8 } }, 'options.buffers')).not.toThrow();
    const o = resolveLayerNormOptions({ normalizedShape: 2 });
    expectError(() => checkNormStateBuffers(o, { gamma: b, beta: b }, 'options.buffers'), TypeError, message('[0, 8)'));
    expect(() => checkNormStateBuffers(o, { gamma: { buffer: b, offset: 0, size: 8 }, beta: { buffer: b, offset: 256, size: 8 } }, 'options.buffers')).not.toThrow();
  });
});

describe('interop options: unknown keys refused, the prefix as fromPyTorchState takes it, the arrays toNpy takes', () => {
  const state = {
    gamma: Float32Array.of(1, 2),
    beta: Float32Array.of(0, 1),
    runningMean: Float32Array.of(0, 0),
    runningVar: Float32Array.of(1, 1),
    numBatchesTracked: 3,
  };

  it('a misspelt or foreign option is refused, naming the accepted ones', () => {
    expectError(() => toPyTorchState(state, { prefx: 'a.' } as never), TypeError, 'options.prefx is not an option of toPyTorchState; expected one of prefix, npy, kind, layer');
    expectError(() => toKerasWeights(state, { centre: false } as never), TypeError, 'options.centre is not an option of toKerasWeights (did you mean center?); expected one of center, scale, npy');
    expectError(() => fromKerasWeights([[1], [0], [0], [1]], { centre: false } as never), TypeError, 'options.centre is not an option of fromKerasWeights (did you mean center?); expected one of center, scale');
    expectError(() => toOnnxInputs(state, { npz: true } as never), TypeError, 'options.npz is not an option of toOnnxInputs; expected one of npy');
    expectError(() => toOnnxNormInputs('LayerNormalization', state, { NPY: true } as never), TypeError, 'options.NPY is not an option of toOnnxNormInputs (did you mean npy?); expected one of npy');
    expectError(() => toKerasWeights(state, { npy: 'yes' } as never), TypeError, "options.npy must be a boolean; got the string 'yes'");
    expectError(() => toPyTorchState(state, null as never), TypeError, 'options must be an object { prefix, npy, kind, layer }; got null');
    expectError(
      () => foldBatchNorm({ weight: [1, 2], axis: 'last' } as never, { ...state, eps: 1e-5 }),
      TypeError,
      'layer.axis is not a field of the layer to fold into (outAxis); expected one of weight, bias, outAxis',
    );
    expectError(
      () => foldBatchNorm({ weight: [1, 2] }, { ...state, epsilon: 1e-5 } as never),
      TypeError,
      'bn.epsilon is not a field of the BN layer to fold (eps here); expected one of gamma, beta, runningMean, runningVar, eps, numBatchesTracked',
    );
  });

  it("toPyTorchState takes a prefix string as fromPyTorchState does (it was ignored)", () => {
    const entries = toPyTorchState(state, 'bn1.');
    expect(Object.keys(entries)).toEqual(['bn1.weight', 'bn1.bias', 'bn1.running_mean', 'bn1.running_var', 'bn1.num_batches_tracked']);
    expect(fromPyTorchState(entries, 'bn1.').numBatchesTracked).toBe(3);
    expectError(() => toPyTorchState(state, { prefix: 1 } as never), TypeError, 'options.prefix must be a string; got 1');
  });

  it('toNpy names its argument and the arrays it takes ("offset is out of bounds", "Cannot convert 1 to a BigInt")', () => {
    const types = 'data must be a Float32Array, a Float64Array or a BigInt64Array';
    expectError(() => toNpy([1, 2] as never), TypeError, `${types} (an array: Float32Array.from(array) or Float64Array.from(array) first); got an Array of 2`);
    expectError(() => toNpy(Int32Array.of(1) as never), TypeError, `${types}; got an Int32Array of 1`);
    expectError(() => parseNpy([1, 2] as never), TypeError, 'file must be the bytes of a .npy file, a Uint8Array or an ArrayBuffer; got an Array of 2');
  });
});

describe('reference parameters: unknown keys are refused (they were ignored)', () => {
  const view = channelView('NC', [2, 3]);
  const x = [1, 2, 3, 4, 5, 6];
  const gamma = [1, 1, 1];
  const beta = [0, 0, 0];

  it('{ epsilon } and other frameworks\' names, naming the parameters', () => {
    const stats = referenceStats(x, view);
    expectError(
      () => referenceNormalize(x, view, { mean: stats.mean, variance: stats.variance, gamma, beta, eps: 1e-5, epsilon: 1e-3 } as never),
      TypeError,
      'p.epsilon is not a parameter of referenceNormalize (eps here); expected mean, variance, gamma, beta, eps (count, y, runningMean, runningVar, numBatchesTracked, batchStats may come along unread)',
    );
    expectError(() => referenceTrainingForward(x, view, { gamma, beta, eps: 1e-5, momentum: 0.1 } as never), TypeError, /^p\.momentum is not a parameter of referenceTrainingForward \(referenceUpdateRunningStats takes the momentum\); expected gamma, beta, eps/);
    expectError(() => referenceBackward(x, x, view, { ...stats, gamma, eps: 1e-5, batchStats: true, weight: gamma } as never), TypeError, /^p\.weight is not a parameter of referenceBackward \(PyTorch's weight is gamma here\)/);
  });

  it('β given to referenceRMSNorm (it has none) and running statistics given to referenceInstanceNorm', () => {
    expectError(() => referenceRMSNorm(x, [2, 3], 3, { gamma, beta, eps: 1e-5 } as never), TypeError, 'p.beta is not a parameter of referenceRMSNorm (RMSNorm has no β); expected gamma, eps');
    expectError(() => referenceLayerNorm(x, [2, 3], 3, { gamma, beta, epsilon: 1e-5 } as never), TypeError, 'p.epsilon is not a parameter of referenceLayerNorm (eps here); expected gamma, beta, eps');
    expectError(
      () => referenceInstanceNorm(x, [1, 3, 2], { layout: 'NCL', eps: 1e-5, runningMean: [0, 0, 0] } as never),
      TypeError,
      'p.runningMean is not a parameter of referenceInstanceNorm (with running statistics at inference, instance norm is referenceInference on the same layout); expected layout, gamma, beta, eps',
    );
    expectError(() => referenceGroupNorm(x, [1, 3, 2], { layout: 'NCL', num_groups: 3, eps: 1e-5 } as never), TypeError, /^p\.num_groups is not a parameter of referenceGroupNorm \(PyTorch's num_groups is numGroups here\)/);
  });

  it("what the library's own results carry along still passes: stats, a layer's state, the forward pass's β", () => {
    const fwd = referenceTrainingForward(x, view, { gamma, beta, eps: 1e-5 });
    expect(() => referenceBackward(x, x, view, { ...fwd, gamma, eps: 1e-5, batchStats: true })).not.toThrow();
    expect(() => referenceInference(x, view, { gamma, beta, runningMean: [0, 0, 0], runningVar: [1, 1, 1], numBatchesTracked: 1, eps: 1e-5 } as never)).not.toThrow();
    expect(() => referenceLayerNormBackward(x, x, [2, 3], 3, { gamma, beta, eps: 1e-5 } as never)).not.toThrow();
  });
});

describe('layout helpers name a bad argument ("Cannot read properties of undefined", NaN, undefined)', () => {
  it('channelAxis, viewSize, layoutFor', () => {
    expectError(() => channelAxis('XY' as never), TypeError, "layout must be one of 'NC', 'NCL', 'NLC', 'NCHW', 'NHWC', 'NCDHW', 'NDHWC'; got the string 'XY'");
    expectError(
      () => viewSize({} as never),
      TypeError,
      'view must be a ChannelView { outer, channels, inner } of positive integers (see channelView(layout, shape)); got { outer: undefined, channels: undefined, inner: undefined }',
    );
    expectError(() => layoutFor(4, 5), RangeError, "layoutFor: axis must be the channel axis of a supported rank-4 layout, 1 or -3 ('NCHW'), 3 or -1 ('NHWC'); got 5");
    expectError(() => layoutFor(6, 1), RangeError, 'layoutFor: rank must be 2, 3, 4, 5 (a supported layout\'s rank); got 6');
    expect(layoutFor(4, -1)).toBe('NHWC');
    expect(layoutFor(3, 2)).toBe('NLC');
    expect(channelAxis('NDHWC')).toBe(4);
  });
});

describe('getDevice: a required limit weaker than WebGPU\'s default (it was silently raised to the default)', () => {
  it.each<[string, number, string]>([
    ['maxStorageBufferBindingSize', 1000, 'at least'],
    ['maxComputeWorkgroupStorageSize', 1024, 'at least'],
    ['minStorageBufferOffsetAlignment', 512, 'at most'],
  ])('%s: %d', async (name, value, bound) => {
    const fallback = { maxStorageBufferBindingSize: 134217728, maxComputeWorkgroupStorageSize: 16384, minStorageBufferOffsetAlignment: 256 }[name];
    const error = await getDevice({ requiredLimits: { [name]: value } }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RangeError);
    expect((error as Error).message).toBe(
      `getDevice: options.requiredLimits.${name} must be ${bound} WebGPU's default ${fallback}, which every device has (a weaker request would get the default); got ${value}`,
    );
  });
});
