/**
 * Bad input is refused with an error that names the argument and the expected value, before
 * any state changes; destroy() frees every buffer the layer created.
 */
import { afterEach, describe, it, expect, vi } from 'vitest';
import { BatchNorm, type BatchNormOptions } from '../../../src/batchnorm/layer.js';
import { kerasOptions, onnxOptions, pytorchOptions } from '../../../src/interop/presets.js';
import { countingDevice, storageBuffer, testDevice } from '../../helpers/gpu.js';
import { getDevice } from '../../../src/core/device.js';
import { randn } from '../../helpers/data.js';

describe('constructor options', () => {
  it.each([
    [{ numFeatures: 0, layout: 'NC' }, /options.numFeatures must be a positive integer; got 0/],
    [{ numFeatures: 2.5, layout: 'NC' }, /options.numFeatures must be a positive integer; got 2.5/],
    [{ numFeatures: 3, layout: 'NWC' }, /options.layout must be one of 'NC', 'NCL', 'NLC', 'NCHW', 'NHWC', 'NCDHW', 'NDHWC'; got the string 'NWC'/],
    [{ numFeatures: 3, layout: 'NC', eps: 0 }, /options.eps must be a finite number > 0; got 0/],
    [{ numFeatures: 3, layout: 'NC', momentum: 1.5 }, /options.momentum must be a number in \[0, 1\] or null; got 1.5/],
    // The received value with its type: the string '16' is not the number 16.
    [{ numFeatures: '16', layout: 'NC' }, /options.numFeatures must be a positive integer; got the string '16'$/],
    [{ numFeatures: 3, layout: 'NC', eps: '1e-3' }, /options.eps must be a finite number > 0; got the string '1e-3'$/],
    [{ numFeatures: 3, layout: 'NC', momentum: [0.1] }, /options.momentum must be a number in \[0, 1\] or null; got an Array of 1$/],
    [{ numFeatures: 3, layout: 'NC', dtype: 16 }, /options.dtype must be 'float32' or 'float16'; got 16$/],
    [{ numFeatures: 3, layout: 'NC', nonFiniteBatches: true }, /options.nonFiniteBatches must be 'skip' or 'update'; got true$/],
    // Unknown names are refused, naming them and the accepted ones (they used to be ignored).
    [{ numFeatures: 3, layout: 'NC', trainable: false }, /options.trainable is not an option of BatchNorm \(Keras's trainable: .*\); expected one of numFeatures, layout, eps, momentum, affine, scale, center, runningVariance, activation, trackRunningStats, dtype, nonFiniteBatches, label, buffers$/],
    [{ numFeatures: 3, layout: 'NC', epsilon: 1e-3 }, /options.epsilon is not an option of BatchNorm \(eps here; kerasOptions and onnxOptions convert/],
    [{ numFeatures: 3, layout: 'NC', track_running_stats: false }, /options.track_running_stats is not an option of BatchNorm \(did you mean trackRunningStats\?\)/],
  ])('%j', async (options, message) => {
    const device = await testDevice();
    expect(() => new BatchNorm(device, options as unknown as BatchNormOptions)).toThrow(message);
  });

  it('say what was received in place of the device and the options', async () => {
    const device = await testDevice();
    expect(() => new BatchNorm(undefined as unknown as GPUDevice, { numFeatures: 2, layout: 'NC' })).toThrow(/^device must be a GPUDevice; got undefined$/);
    expect(() => new BatchNorm(device, 16 as unknown as BatchNormOptions)).toThrow(/^options must be an object with numFeatures and layout; got 16$/);
  });

  it("accept every preset's options, spread or not", async () => {
    const device = await testDevice();
    for (const options of [
      pytorchOptions({ numFeatures: 2, layout: 'NC', affine: false }),
      kerasOptions({ numFeatures: 2, rank: 4, center: false }),
      { ...kerasOptions({ numFeatures: 2, rank: 2, momentum: 0.3 }), label: 'keras bn' },
      onnxOptions({ numFeatures: 2, rank: 3 }),
    ]) {
      new BatchNorm(device, options).destroy();
    }
  });
});

describe('momentum above 0.5 (a Keras habit: its 0.99 is 0.01 here)', () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it('is legal, and warns once per layer, pointing at kerasOptions', async () => {
    const device = await testDevice();
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    const bn = new BatchNorm(device, { numFeatures: 2, layout: 'NC', momentum: 0.99, label: 'bn1' });
    expect(bn.momentum).toBe(0.99);
    await bn.forward(randn(8, 1), [4, 2], { training: true });
    await bn.forward(randn(8, 2), [4, 2], { training: true });
    expect(warn).toHaveBeenCalledTimes(1);
    expect(warn.mock.calls[0][0]).toMatch(/^bn1: momentum 0.99 is the weight of the new batch here .*kerasOptions\(\{ momentum: 0.99, … \}\) or momentum: 0.01\b/);
    // Trained with the momentum as given.
    expect((await bn.getState()).numBatchesTracked).toBe(2);
    const other = new BatchNorm(device, { numFeatures: 2, layout: 'NC', momentum: 0.9 });
    expect(warn).toHaveBeenCalledTimes(2);
    bn.destroy();
    other.destroy();
  });

  it('does not warn at 0.5 or below, for null, or when kerasOptions or onnxOptions converted it', async () => {
    const device = await testDevice();
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    const layers = [
      new BatchNorm(device, { numFeatures: 2, layout: 'NC' }),
      new BatchNorm(device, { numFeatures: 2, layout: 'NC', momentum: 0.1 }),
      new BatchNorm(device, { numFeatures: 2, layout: 'NC', momentum: 0.5 }),
      new BatchNorm(device, { numFeatures: 2, layout: 'NC', momentum: null }),
      new BatchNorm(device, kerasOptions({ numFeatures: 2, rank: 2 })),
      new BatchNorm(device, kerasOptions({ numFeatures: 2, rank: 2, momentum: 0.3 })), // 0.7 here
      new BatchNorm(device, { ...kerasOptions({ numFeatures: 2, rank: 2, momentum: 0.1 }), label: 'spread' }), // 0.9 here
      new BatchNorm(device, onnxOptions({ numFeatures: 2, rank: 2, momentum: 0.2 })), // 0.8 here
    ];
    expect(layers.map((l) => l.momentum)).toEqual([0.1, 0.1, 0.5, null, expect.closeTo(0.01, 12), 0.7, 0.9, expect.closeTo(0.8, 12)]);
    expect(warn).not.toHaveBeenCalled();
    // A momentum put over a preset's is the caller's own again.
    layers.push(new BatchNorm(device, { ...kerasOptions({ numFeatures: 2, rank: 2, momentum: 0.3 }), momentum: 0.99 }));
    expect(warn).toHaveBeenCalledTimes(1);
    for (const l of layers) l.destroy();
  });
});

describe('forward and backward arguments', () => {
  it('refuses a shape of the wrong rank or channel count', async () => {
    const device = await testDevice();
    const bn = new BatchNorm(device, { numFeatures: 3, layout: 'NCHW' });
    await expect(bn.forward(new Float32Array(24), [2, 3, 4], { training: true })).rejects.toThrow(
      /shape must have 4 dimensions for layout 'NCHW'; got \[2, 3, 4\]/,
    );
    await expect(bn.forward(new Float32Array(32), [2, 4, 2, 2], { training: true })).rejects.toThrow(
      /shape has 4 channels on the C axis of layout 'NCHW'; numFeatures is 3/,
    );
    await expect(bn.forward(new Float32Array(23), [2, 3, 2, 2], { training: true })).rejects.toThrow(
      /x must have 24 elements for shape \[2, 3, 2, 2\]; got 23/,
    );
    await expect(bn.forward(new Float32Array(24), [2, 3, 2.5, 2], { training: true })).rejects.toThrow(
      /shape\[2\] must be a positive integer; got 2.5 in \[2, 3, 2.5, 2\]/,
    );
    const encoder = device.createCommandEncoder();
    const buffer = storageBuffer(device, new Float32Array(24));
    expect(() => bn.encodeForward(encoder, { x: buffer, y: buffer, shape: [2, 3, -2, 2], training: true })).toThrow(
      /args.shape\[2\] must be a positive integer; got -2/,
    );
    encoder.finish();
    buffer.destroy();
    bn.destroy();
  });

  it('refuses training with one value per channel, and normalizes a single sample at inference', async () => {
    const device = await testDevice();
    const bn = new BatchNorm(device, { numFeatures: 3, layout: 'NC' });
    await expect(bn.forward(new Float32Array(3), [1, 3], { training: true })).rejects.toThrow(
      /expected more than 1 value per channel when training; got shape \[1, 3\]/,
    );
    bn.setState({ runningMean: [1, 2, 3], runningVar: [4, 4, 4] });
    const y = await bn.forward(Float32Array.from([3, 2, 1]), [1, 3], { training: false });
    expect(Array.from(y).map((v) => Number(v.toFixed(5)))).toEqual([1, 0, -1].map((v) => Number(((v * 2) / Math.sqrt(4 + 1e-5)).toFixed(5))));
    expect((await bn.getState()).numBatchesTracked, 'the refused call changed nothing').toBe(0);
    bn.destroy();
  });

  it('checks caller buffers: size, STORAGE usage, aliasing', async () => {
    const device = await testDevice();
    const bn = new BatchNorm(device, { numFeatures: 2, layout: 'NC' });
    const encoder = device.createCommandEncoder();
    const x = storageBuffer(device, new Float32Array(8));
    const small = storageBuffer(device, new Float32Array(7));
    const noStorage = device.createBuffer({ size: 32, usage: GPUBufferUsage.COPY_DST });
    const shape = [4, 2];
    expect(() => bn.encodeForward(encoder, { x, y: small, shape, training: true })).toThrow(
      /args.y must hold at least 32 bytes \(float32 \[4, 2\]\); got 28/,
    );
    expect(() => bn.encodeForward(encoder, { x, y: noStorage, shape, training: true })).toThrow(
      /args.y must have GPUBufferUsage.STORAGE in its usage; got usage 0x8/,
    );
    expect(() => bn.encodeForward(encoder, { x, y: x, shape, training: true })).toThrow(/args.y must be in a different GPUBuffer from args.x/);
    expect(() => bn.encodeForward(encoder, { x, y: small, shape, training: 'yes' as unknown as boolean })).toThrow(
      /args.training must be a boolean; got the string 'yes'/,
    );
    expect(() => bn.encodeBackward(encoder, { x, dy: x, dx: small, shape })).toThrow(/encodeBackward needs a forward pass first/);
    // An array where a buffer belongs is named as such (not as its .buffer, an ArrayBuffer).
    expect(() => bn.encodeForward(encoder, { x: new Float32Array(8) as unknown as GPUBuffer, y: small, shape, training: true })).toThrow(
      /^args.x must be a GPUBuffer or a range \{ buffer, offset, size \} of one; got a Float32Array of 8: write the data into a GPUBuffer .*, or pass arrays to the array API \(forward, transform\)$/,
    );
    expect(() => bn.encodeForward(encoder, { x, y: { buffer: new ArrayBuffer(32) } as unknown as GPUBuffer, shape, training: true })).toThrow(
      /^args.y.buffer must be a GPUBuffer \(or args.y a range \{ buffer, offset, size \} of one\); got an ArrayBuffer of 32 bytes$/,
    );
    encoder.finish();
    bn.destroy();
    for (const b of [x, small, noStorage]) b.destroy();
  });

  it('a refused forward between forward and backward changes nothing', async () => {
    const device = await testDevice();
    const bn = new BatchNorm(device, { numFeatures: 2, layout: 'NCL' });
    const x = randn(2 * 2 * 3, 1);
    const y = await bn.forward(x, [2, 2, 3], { training: true });
    await expect(bn.forward(new Float32Array(2), [1, 2, 1], { training: true })).rejects.toThrow(
      /expected more than 1 value per channel when training/,
    );
    await expect(bn.forward(new Float32Array(12), [2, 2, 3], { training: 1 as unknown as boolean })).rejects.toThrow(
      /options.training must be a boolean; got 1/,
    );
    const dy = randn(x.length, 2);
    const after = await bn.backward(dy);
    // The same backward on a fresh layer that never saw the refused calls.
    const fresh = new BatchNorm(device, { numFeatures: 2, layout: 'NCL' });
    expect(await fresh.forward(x, [2, 2, 3], { training: true })).toEqual(y);
    expect(await fresh.backward(dy)).toEqual(after);
    expect(await bn.getState()).toEqual(await fresh.getState());
    bn.destroy();
    fresh.destroy();
  });

  it('backward needs a matching forward', async () => {
    const device = await testDevice();
    const bn = new BatchNorm(device, { numFeatures: 2, layout: 'NC' });
    await expect(bn.backward(new Float32Array(8))).rejects.toThrow(/backward\(\) needs forward\(\) first/);
    await bn.forward(randn(8, 1), [4, 2], { training: true });
    await expect(bn.backward(new Float32Array(6))).rejects.toThrow(/dy must have 8 elements for the last forward pass's shape \[4, 2\]; got 6/);
    bn.destroy();
  });
});

describe('buffers of another device', () => {
  it('are reported by the next call with the WebGPU message; the layer keeps working', async () => {
    const device = await testDevice();
    const other = await getDevice({ label: 'other device' });
    const bn = new BatchNorm(device, { numFeatures: 2, layout: 'NC' });
    const foreign = storageBuffer(other, new Float32Array(8));
    const y = storageBuffer(device, new Float32Array(8));
    const encoder = device.createCommandEncoder();
    bn.encodeForward(encoder, { x: foreign, y, shape: [4, 2], training: true });
    // The caller's encoder is invalid too: WebGPU reports it when it is finished.
    device.pushErrorScope('validation');
    encoder.finish();
    expect((await device.popErrorScope())?.message).toMatch(/invalid/i);
    await device.queue.onSubmittedWorkDone();
    await expect(bn.getState()).rejects.toThrow(
      /BatchNorm: an earlier encodeForward \(training forward of shape \[4, 2\], x 'test buffer', y 'test buffer'\) failed WebGPU validation \(are all its buffers from this layer's device, and alive, and its encoder not finished\?\): .*other device.*cannot be used with.*test device/,
    );
    // Reported once; the layer itself is fine.
    const out = await bn.forward(Float32Array.from([1, 2, 3, 4, 5, 6, 7, 8]), [4, 2], { training: true });
    expect(out.every(Number.isFinite)).toBe(true);
    bn.destroy();
    foreign.destroy();
    y.destroy();
    other.destroy();
  });
});

describe('state', () => {
  it('setState checks every field before writing any', async () => {
    const device = await testDevice();
    const bn = new BatchNorm(device, { numFeatures: 3, layout: 'NC' });
    expect(() => bn.setState({ gamma: [2, 2, 2], runningVar: [1, 2] })).toThrow(/state.runningVar must have 3 elements \(numFeatures\); got 2/);
    expect(() => bn.setState({ beta: [1, 1, 1], numBatchesTracked: -1 })).toThrow(/state.numBatchesTracked must be an integer in \[0, 2\^32 - 1\]; got -1/);
    const state = await bn.getState();
    expect(Array.from(state.gamma)).toEqual([1, 1, 1]);
    expect(Array.from(state.beta)).toEqual([0, 0, 0]);
    expect(() => bn.setState({ numBatchesTracked: '7' as unknown as number })).toThrow(/state.numBatchesTracked must be an integer in \[0, 2\^32 - 1\]; got the string '7'$/);
    bn.setState({ gamma: [2, 3, 4], beta: [0.5, 0, -0.5], runningMean: [1, 2, 3], runningVar: [4, 5, 6], numBatchesTracked: 7 });
    const after = await bn.getState();
    expect(after).toEqual({
      gamma: Float32Array.from([2, 3, 4]),
      beta: Float32Array.from([0.5, 0, -0.5]),
      runningMean: Float32Array.from([1, 2, 3]),
      runningVar: Float32Array.from([4, 5, 6]),
      numBatchesTracked: 7,
    });
    bn.destroy();
  });
});

describe('setState is strict', () => {
  it("refuses unknown keys, naming them, with PyTorch's, Keras's and ONNX's names mapped", async () => {
    const device = await testDevice();
    const bn = new BatchNorm(device, { numFeatures: 2, layout: 'NC' });
    const set = (state: object) => () => bn.setState(state as never);
    expect(set({ weight: [2, 2], bias: [1, 1] })).toThrow(
      /^state.weight is not a state entry of BatchNorm \(PyTorch's weight is gamma here; fromPyTorchState converts a whole state_dict\); expected one of gamma, beta, runningMean, runningVar, numBatchesTracked$/,
    );
    expect(set({ gamma: [2, 2], running_var: [1, 1] })).toThrow(/^state.running_var is not a state entry of BatchNorm \(PyTorch's running_var is runningVar here; fromPyTorchState/);
    expect(set({ moving_mean: [0, 0] })).toThrow(/state.moving_mean is not a state entry of BatchNorm \(Keras's moving_mean is runningMean here; fromKerasWeights/);
    expect(set({ input_var: [1, 1] })).toThrow(/state.input_var is not a state entry of BatchNorm \(ONNX's input_var is runningVar here; fromOnnxInputs/);
    expect(set({ gama: [2, 2] })).toThrow(/^state.gama is not a state entry of BatchNorm; expected one of gamma, beta/);
    expect(set([1, 2])).toThrow(/^state.0 is not a state entry/);
    expect(() => bn.setState(null as never)).toThrow(/^state must be an object of gamma, beta, runningMean, runningVar, numBatchesTracked; got null$/);
    expect(Array.from((await bn.getState()).gamma), 'nothing was written').toEqual([1, 1]);
    bn.destroy();
  });

  it('refuses non-finite γ and β, a negative running variance, and non-finite running statistics unless the layer can make them', async () => {
    const device = await testDevice();
    const bn = new BatchNorm(device, { numFeatures: 4, layout: 'NC' });
    expect(() => bn.setState({ gamma: [1, 1, 1, NaN] })).toThrow(/^state.gamma\[3\] must be finite; got NaN$/);
    expect(() => bn.setState({ beta: [0, -Infinity, 0, 0] })).toThrow(/^state.beta\[1\] must be finite; got -Infinity$/);
    expect(() => bn.setState({ gamma: [1, 1, 1, 1e39] })).toThrow(/^state.gamma\[3\] must be finite; got 1e\+39, beyond float32's range/);
    expect(() => bn.setState({ runningVar: [1, -0.5, 1, 1] })).toThrow(/^state.runningVar\[1\] must be >= 0 \(a variance\); got -0.5$/);
    expect(() => bn.setState({ runningMean: [0, 0, NaN, 0] })).toThrow(
      /^state.runningMean\[2\] must be finite; got NaN \(a layer holds non-finite running statistics only with nonFiniteBatches: 'update'\)$/,
    );
    expect(() => bn.setState({ runningVar: [Infinity, 1, 1, 1] })).toThrow(/^state.runningVar\[0\] must be finite; got Infinity/);
    expect(() => bn.setState({ runningMean: [0, 0, 0, '1' as unknown as number] })).toThrow(/^state.runningMean\[3\] must be a number; got the string '1'$/);
    expect(await bn.getState(), 'nothing was written').toEqual({
      gamma: new Float32Array(4).fill(1),
      beta: new Float32Array(4),
      runningMean: new Float32Array(4),
      runningVar: new Float32Array(4).fill(1),
      numBatchesTracked: 0,
    });
    bn.destroy();

    // With nonFiniteBatches: 'update' training folds NaN into the running statistics, so they may be restored.
    const update = new BatchNorm(device, { numFeatures: 4, layout: 'NC', nonFiniteBatches: 'update' });
    update.setState({ runningMean: [NaN, Infinity, 0, 0], runningVar: [NaN, Infinity, 1, 1] });
    const state = await update.getState();
    expect(Array.from(state.runningMean)).toEqual([NaN, Infinity, 0, 0]);
    expect(Array.from(state.runningVar)).toEqual([NaN, Infinity, 1, 1]);
    expect(() => update.setState({ runningVar: [1, 1, -Infinity, 1] })).toThrow(/^state.runningVar\[2\] must be >= 0 \(a variance\); got -Infinity$/);
    expect(() => update.setState({ gamma: [NaN, 1, 1, 1] })).toThrow(/^state.gamma\[0\] must be finite; got NaN$/);
    update.destroy();
  });

  it('a fixed γ or β takes only its fixed value', async () => {
    const device = await testDevice();
    const bn = new BatchNorm(device, { numFeatures: 2, layout: 'NC', scale: false });
    bn.setState({ gamma: [1, 1], beta: [0.5, -0.5] });
    expect(() => bn.setState({ gamma: [1, 2] })).toThrow(
      /^state.gamma cannot be set: it is fixed in this layer \(affine: false, or scale: false\) and takes only its fixed value 1; got 2 at state.gamma\[1\]$/,
    );
    expect(await bn.getState()).toMatchObject({ gamma: Float32Array.of(1, 1), beta: Float32Array.of(0.5, -0.5) });
    bn.destroy();
  });
});

describe('lifetime', () => {
  it('destroy() frees every buffer the layer created; later calls fail clearly', async () => {
    const { device, live } = countingDevice(await testDevice());
    const bn = new BatchNorm(device, { numFeatures: 4, layout: 'NCL' });
    const x = randn(2 * 4 * 9, 3);
    await bn.forward(x, [2, 4, 9], { training: true });
    await bn.backward(randn(x.length, 4));
    await bn.forward(randn(3 * 4 * 9, 5), [3, 4, 9], { training: false }); // grows the I/O buffers
    await bn.getState();
    // Readback staging buffers are freed by the call that made them; the layer owns the rest.
    expect(live.size).toBe(bn.bufferCount);
    bn.destroy();
    expect(bn.bufferCount).toBe(0);
    expect(live.size, 'buffers left after destroy()').toBe(0);
    await expect(bn.forward(x, [2, 4, 9], { training: true })).rejects.toThrow(/BatchNorm was destroyed; create a new BatchNorm/);
  });

  it('every buffer, pipeline and pass carries a label', async () => {
    const device = await testDevice();
    const bn = new BatchNorm(device, { numFeatures: 2, layout: 'NC', label: 'bn1' });
    for (const b of [bn.gamma, bn.beta, bn.runningMean, bn.runningVar, bn.numBatchesTracked, bn.gammaGrad, bn.betaGrad] as GPUBuffer[]) {
      expect(b.label).toMatch(/^bn1 /);
    }
    bn.destroy();
  });
});
