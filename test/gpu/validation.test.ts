/**
 * Bad input is refused with an error that names the argument and the expected value, before
 * any state changes; destroy() frees every buffer the layer created.
 */
import { describe, it, expect } from 'vitest';
import { BatchNorm, type BatchNormOptions } from '../../src/layers/batchnorm.js';
import { countingDevice, storageBuffer, testDevice } from '../helpers/gpu.js';
import { getDevice } from '../../src/runtime/device.js';
import { randn } from '../helpers/data.js';

describe('constructor options', () => {
  it.each([
    [{ numFeatures: 0, layout: 'NC' }, /options.numFeatures must be a positive integer; got 0/],
    [{ numFeatures: 2.5, layout: 'NC' }, /options.numFeatures must be a positive integer; got 2.5/],
    [{ numFeatures: 3, layout: 'NWC' }, /options.layout must be one of 'NC', 'NCL', 'NLC', 'NCHW', 'NHWC', 'NCDHW', 'NDHWC'; got NWC/],
    [{ numFeatures: 3, layout: 'NC', eps: 0 }, /options.eps must be a finite number > 0; got 0/],
    [{ numFeatures: 3, layout: 'NC', momentum: 1.5 }, /options.momentum must be a number in \[0, 1\] or null; got 1.5/],
  ])('%j', async (options, message) => {
    const device = await testDevice();
    expect(() => new BatchNorm(device, options as BatchNormOptions)).toThrow(message);
  });
});

describe('forward and backward arguments', () => {
  it('refuses a shape of the wrong rank or channel count', async () => {
    const device = await testDevice();
    const bn = new BatchNorm(device, { numFeatures: 3, layout: 'NCHW' });
    await expect(bn.forward(new Float32Array(24), [2, 3, 4], { training: true })).rejects.toThrow(
      /shape must have 4 dimensions for layout 'NCHW'; got \[2,3,4\]/,
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
      /args.training must be a boolean; got yes/,
    );
    expect(() => bn.encodeBackward(encoder, { x, dy: x, dx: small, shape })).toThrow(/encodeBackward needs a forward pass first/);
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
      /BatchNorm: an earlier encodeForward failed WebGPU validation \(are all its buffers from this layer's device, and alive\?\): .*other device.*cannot be used with.*test device/,
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
