/**
 * Batch norm as functions of (device, encoder, buffers, shape) on buffers that are all the
 * caller's: a training step and an inference pass against the reference, with the running
 * statistics and gradients landing in the caller's buffers, and the cache released.
 */
import { describe, expect, it, vi } from 'vitest';
import { encodeBatchNormBackward, encodeBatchNormForward, type BatchNormBuffers } from '../../../src/batchnorm/functions.js';
import { encodeFeatureScalingAdapt, encodeFeatureScalingInverse, encodeFeatureScalingTransform } from '../../../src/feature-scaling/functions.js';
import { releaseFunctionCaches } from '../../../src/core/function-forms.js';
import { SCALING_STATE_BYTES_PER_FEATURE } from '../../../src/feature-scaling/layer.js';
import { kerasOptions } from '../../../src/interop/presets.js';
import { readBuffers } from '../../../src/core/gpu.js';
import { channelView } from '../../../src/core/layout.js';
import { referenceBackward, referenceInference, referenceStats, referenceTrainingForward, referenceUpdateRunningStats } from '../../../src/batchnorm/reference.js';
import { referenceFeatureScaling } from '../../../src/feature-scaling/reference.js';
import { channelData, expectClose, randn } from '../../helpers/data.js';
import { batchNormBuffers, countingDevice, storageBuffer, testDevice } from '../../helpers/gpu.js';
import { STATS_TOL, dxTolerance, yTolerance } from '../../helpers/tolerances.js';

describe('encodeBatchNormForward / encodeBatchNormBackward', () => {
  it.each([
    ['affine: false', { affine: false }, [1, 1], [0, 0]],
    ['scale: false', { scale: false }, [1, 1], [0.5, -1]],
    ['center: false', { center: false }, [2, 3], [0, 0]],
  ] as const)('%s: the functions hold γ = 1 / β = 0 themselves; a buffer given for a fixed one is refused', async (_, flags, gammaUsed, betaUsed) => {
    const device = await testDevice();
    const shape = [6, 2];
    const view = channelView('NC', shape);
    const xData = randn(12, 131, 1, 2);
    const dyData = randn(12, 132);
    const all = batchNormBuffers(device, 2, Float32Array.of(2, 3), Float32Array.of(0.5, -1));
    const buffers: BatchNormBuffers = { ...all };
    if ('affine' in flags || 'scale' in flags) delete buffers.gamma;
    if ('affine' in flags || 'center' in flags) delete buffers.beta;
    const options = { layout: 'NC' as const, ...flags };
    const [x, dy, y, dx] = [xData, dyData, new Float32Array(12), new Float32Array(12)].map((d) => storageBuffer(device, d));
    const encoder = device.createCommandEncoder();
    expect(() => encodeBatchNormForward(device, encoder, { x, y, shape, training: true, buffers: all, options })).toThrow(
      /args.buffers.(gamma|beta) cannot be given: (γ is fixed at 1|β is fixed at 0) \(args.options.(scale|center) or affine false\), and the function keeps that value itself/,
    );
    encodeBatchNormForward(device, encoder, { x, y, shape, training: true, buffers, options });
    encodeBatchNormBackward(device, encoder, { x, dy, dx, shape, buffers, options });
    const [yOut, dxOut] = (await readBuffers(device, [y, dx].map((buffer) => ({ buffer, size: 48 })), encoder)).map((b) => new Float32Array(b));
    const ref = referenceTrainingForward(xData, view, { gamma: gammaUsed, beta: betaUsed, eps: 1e-5 });
    const stats = { mean: ref.mean, variance: ref.variance, gamma: gammaUsed, eps: 1e-5 };
    expectClose(yOut, ref.y, yTolerance(xData, view, stats), `y with ${_}`);
    expectClose(dxOut, referenceBackward(xData, dyData, view, { ...stats, batchStats: true }).dx, dxTolerance(xData, dyData, view, stats), `dx with ${_}`);
    for (const b of [x, dy, y, dx, ...(Object.values(all) as GPUBuffer[])]) b.destroy();
  });

  it("a training step and an inference pass on the caller's buffers match the reference", async () => {
    const { device, live } = countingDevice(await testDevice());
    const shape = [4, 3, 6, 5];
    const view = channelView('NCHW', shape);
    const n = 4 * 3 * 6 * 5;
    const gamma = Float32Array.of(1.5, 0.5, 2);
    const beta = Float32Array.of(0.1, -0.2, 0.3);
    const buffers = batchNormBuffers(device, 3, gamma, beta);
    const xData = channelData(view, 120);
    const dyData = randn(n, 121);
    const [x, dy, y, dx, yTest] = [xData, dyData, new Float32Array(n), new Float32Array(n), new Float32Array(n)].map((d) => storageBuffer(device, d));
    const options = { layout: 'NCHW' as const, eps: 1e-3, momentum: 0.2 };

    const encoder = device.createCommandEncoder();
    encodeBatchNormForward(device, encoder, { x, y, shape, training: true, buffers, options });
    encodeBatchNormBackward(device, encoder, { x, dy, dx, shape, buffers, options });
    encodeBatchNormForward(device, encoder, { x, y: yTest, shape, training: false, buffers, options });
    const out = await readBuffers(
      device,
      [y, dx, yTest, buffers.runningMean, buffers.runningVar, buffers.numBatchesTracked, buffers.gammaGrad, buffers.betaGrad].map((b) => ({ buffer: b as GPUBuffer, size: (b as GPUBuffer).size })),
      encoder,
    );
    const [yOut, dxOut, yTestOut, rm, rv, count, dgamma, dbeta] = out.map((b, i) => (i === 5 ? new Uint32Array(b) : new Float32Array(b)));

    const ref = referenceTrainingForward(xData, view, { gamma, beta, eps: 1e-3 });
    const stats = { mean: ref.mean, variance: ref.variance, gamma, eps: 1e-3 };
    expectClose(yOut, ref.y, yTolerance(xData, view, stats), 'y');
    const refG = referenceBackward(xData, dyData, view, { ...stats, batchStats: true });
    expectClose(dxOut, refG.dx, dxTolerance(xData, dyData, view, stats), 'dx');
    expectClose(dbeta, refG.dbeta, { rtol: 1e-5, atol: 1e-4 }, 'dbeta in the caller buffer');
    expectClose(dgamma, refG.dgamma, { rtol: 1e-5, atol: 1e-4 }, 'dgamma in the caller buffer');
    const running = referenceUpdateRunningStats({ runningMean: new Float64Array(3), runningVar: new Float64Array(3).fill(1), numBatchesTracked: 0 }, referenceStats(xData, view), 0.2);
    expectClose(rm, running.runningMean, STATS_TOL, 'running mean in the caller buffer');
    expectClose(rv, running.runningVar, STATS_TOL, 'running var in the caller buffer');
    expect(count[0]).toBe(1);
    const refTest = referenceInference(xData, view, { runningMean: running.runningMean, runningVar: running.runningVar, gamma, beta, eps: 1e-3 });
    expectClose(yTestOut, refTest, yTolerance(xData, view, { mean: running.runningMean, variance: running.runningVar, gamma, eps: 1e-3 }), 'inference y');

    // Released: only the caller's buffers are left.
    releaseFunctionCaches(device);
    const callers = new Set<GPUBuffer>([x, dy, y, dx, yTest, ...(Object.values(buffers) as GPUBuffer[])]);
    expect([...live].filter((b) => !callers.has(b)).map((b) => b.label)).toEqual([]);
  });

  it('names a missing buffer or option', async () => {
    const device = await testDevice();
    const buffers = batchNormBuffers(device, 2, Float32Array.of(1, 1), Float32Array.of(0, 0));
    const x = storageBuffer(device, new Float32Array(8));
    const y = storageBuffer(device, new Float32Array(8));
    const encoder = device.createCommandEncoder();
    const { saved: _saved, ...noSaved } = buffers;
    expect(() => encodeBatchNormForward(device, encoder, { x, y, shape: [4, 2], training: true, buffers: noSaved as BatchNormBuffers, options: { layout: 'NC' } })).toThrow(
      /args.buffers.saved is required/,
    );
    expect(() => encodeBatchNormForward(device, encoder, { x, y, shape: [4, 2], training: true, buffers: { ...buffers, saved: buffers.gamma! }, options: { layout: 'NC' } })).toThrow(
      /args.buffers.saved must hold at least 64 bytes/,
    );
    expect(() => encodeBatchNormForward(device, encoder, { x, y, shape: [4, 2], training: true, buffers, options: { layout: 'NCW' as never } })).toThrow(/layout must be one of/);
    encoder.finish();
    releaseFunctionCaches(device);
  });

  it('refuses unknown names in args.options, and the layer options the functions take elsewhere', async () => {
    const device = await testDevice();
    const buffers = batchNormBuffers(device, 2, Float32Array.of(1, 1), Float32Array.of(0, 0));
    const x = storageBuffer(device, new Float32Array(8));
    const y = storageBuffer(device, new Float32Array(8));
    const encoder = device.createCommandEncoder();
    const forward = (options: object) => () => encodeBatchNormForward(device, encoder, { x, y, shape: [4, 2], training: true, buffers, options: options as never });
    expect(forward({ layout: 'NC', trainable: false })).toThrow(
      /^args.options.trainable is not an option of the batch-norm functions \(Keras's trainable: .*\); expected one of numFeatures, layout, eps, momentum, affine, scale, center, runningVariance, activation, trackRunningStats, dtype, nonFiniteBatches$/,
    );
    expect(forward({ layout: 'NC', label: 'bn1' })).toThrow(/^args.options.label is not an option of the batch-norm functions \(the function forms label their GPU objects 'webgpu-batchnorm function'\)/);
    expect(forward({ layout: 'NC', buffers })).toThrow(/^args.options.buffers is not an option of the batch-norm functions \(the function forms take their buffers as args.buffers\)/);
    expect(forward({ layout: 'NC', numFeatures: 3 })).toThrow(/^args.options.numFeatures must match the 2 channels of args.shape \[4, 2\] \(or be left out: the shape gives it\); got 3$/);
    // A preset's options serve as they are: their numFeatures agrees with the shape.
    expect(forward(kerasOptions({ numFeatures: 2, rank: 2 }))).not.toThrow();
    const state = storageBuffer(device, new Float32Array((2 * SCALING_STATE_BYTES_PER_FEATURE) / 4));
    expect(() => encodeFeatureScalingAdapt(device, encoder, { x, shape: [4, 2], state, options: { method: 'min-max', state } as never })).toThrow(
      /^args.options.state is not an option of the feature-scaling functions \(the function forms take the state as args.state\); expected one of numFeatures, method, layout, correction$/,
    );
    encoder.finish();
    for (const b of [x, y, state, ...(Object.values(buffers) as GPUBuffer[])]) b.destroy();
    releaseFunctionCaches(device);
  });

  it('warns once per saved buffer about a momentum above 0.5, and runs with it', async () => {
    const device = await testDevice();
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    const [a, b] = [0, 1].map(() => batchNormBuffers(device, 2, Float32Array.of(1, 1), Float32Array.of(0, 0)));
    const x = storageBuffer(device, randn(8, 140));
    const y = storageBuffer(device, new Float32Array(8));
    const encoder = device.createCommandEncoder();
    const options = { layout: 'NC' as const, momentum: 0.99 };
    for (let i = 0; i < 3; i++) encodeBatchNormForward(device, encoder, { x, y, shape: [4, 2], training: true, buffers: a, options });
    expect(warn).toHaveBeenCalledTimes(1);
    expect(warn.mock.calls[0][0]).toMatch(/^webgpu-batchnorm function \(this args.buffers.saved\): momentum 0.99 is the weight of the new batch here .*kerasOptions/);
    encodeBatchNormForward(device, encoder, { x, y, shape: [4, 2], training: true, buffers: b, options });
    expect(warn).toHaveBeenCalledTimes(2);
    encodeBatchNormForward(device, encoder, { x, y, shape: [4, 2], training: true, buffers: batchNormBuffers(device, 2, Float32Array.of(1, 1), Float32Array.of(0, 0)), options: { layout: 'NC' } });
    expect(warn).toHaveBeenCalledTimes(2);
    device.queue.submit([encoder.finish()]);
    await device.queue.onSubmittedWorkDone();
    warn.mockRestore();
    releaseFunctionCaches(device);
  });
});

describe('encodeFeatureScalingAdapt / Transform / Inverse', () => {
  it("adapt over two batches into the caller's state, then transform and inverse, match the reference", async () => {
    const { device, live } = countingDevice(await testDevice());
    const state = storageBuffer(device, new Float32Array((3 * SCALING_STATE_BYTES_PER_FEATURE) / 4)); // zeroed: nothing adapted
    const options = { method: 'standardize' as const, layout: 'NC' as const };
    const batches = [randn(30, 130, 50, 4), randn(21, 131, 50, 4)];
    const all = Float32Array.from([...batches[0], ...batches[1]]);
    const encoder = device.createCommandEncoder();
    for (const b of batches) encodeFeatureScalingAdapt(device, encoder, { x: storageBuffer(device, b), shape: [b.length / 3, 3], state, options });
    const [x, y, back] = [all, new Float32Array(all.length), new Float32Array(all.length)].map((d) => storageBuffer(device, d));
    const shape = [all.length / 3, 3];
    encodeFeatureScalingTransform(device, encoder, { x, y, shape, state, options });
    encodeFeatureScalingInverse(device, encoder, { x: y, y: back, shape, state, options });
    const [scaled, restored] = await readBuffers(device, [y, back].map((buffer) => ({ buffer, size: buffer.size })), encoder);
    const ref = referenceFeatureScaling(all, channelView('NC', shape), 'standardize');
    expectClose(new Float32Array(scaled), ref.y, { rtol: 1e-5, atol: 1e-5 }, 'scaled');
    expectClose(new Float32Array(restored), all, { rtol: 1e-6, atol: 1e-4 }, 'inverse');
    releaseFunctionCaches(device);
    expect([...live].filter((b) => b.label.startsWith('webgpu-batchnorm function')).map((b) => b.label)).toEqual([]);
    expect(() => encodeFeatureScalingAdapt(device, device.createCommandEncoder(), { x: state, shape: [8, 3], state, options })).toThrow(
      /args.state must be in a different GPUBuffer from args.x/,
    );
    releaseFunctionCaches(device);
  });
});
