/**
 * One context per device (src/core/context.ts): plans shared by layers and functions and
 * bounded in number, an evicted plan's uniform still good for the passes recorded with it, and
 * releasing the context freeing everything the library kept for the device.
 */
import { describe, expect, it } from 'vitest';
import { BatchNorm } from '../../../src/batchnorm/layer.js';
import { FeatureScaler } from '../../../src/feature-scaling/layer.js';
import { encodeBatchNormForward } from '../../../src/batchnorm/functions.js';
import { encodeFeatureScalingAdapt } from '../../../src/feature-scaling/functions.js';
import { releaseFunctionCaches } from '../../../src/core/function-forms.js';
import { MAX_PLANS, deviceContext, hasDeviceContext } from '../../../src/core/context.js';
import { readBuffers } from '../../../src/core/gpu.js';
import { expectClose, randn } from '../../helpers/data.js';
import { batchNormBuffers, countingDevice, storageBuffer, testDevice } from '../../helpers/gpu.js';

describe('the device context', () => {
  it('layers and functions share plans; releasing frees what the library kept, pipelines included', async () => {
    const { device, live } = countingDevice(await testDevice());
    const buffers = batchNormBuffers(device, 3);
    const x = storageBuffer(device, randn(24, 1));
    const y = storageBuffer(device, new Float32Array(24));

    const bn = new BatchNorm(device, { numFeatures: 3, layout: 'NC' });
    const scaler = new FeatureScaler(device, { numFeatures: 3, method: 'min-max' });
    const encoder = device.createCommandEncoder();
    bn.encodeForward(encoder, { x, y, shape: [8, 3], training: true });
    const plans = deviceContext(device).plans.size;
    // Same shape and options through the functions: the same plan.
    encodeBatchNormForward(device, encoder, { x, y, shape: [8, 3], training: true, buffers, options: { layout: 'NC' } });
    expect(deviceContext(device).plans.size).toBe(plans);
    encodeFeatureScalingAdapt(device, encoder, { x, shape: [8, 3], state: storageBuffer(device, new Float32Array(24)), options: { method: 'min-max' } });
    scaler.encodeAdapt(encoder, { x, shape: [8, 3] });
    device.queue.submit([encoder.finish()]);
    await device.queue.onSubmittedWorkDone();

    bn.destroy();
    scaler.destroy();
    expect(hasDeviceContext(device), 'the functions still hold their buffers').toBe(true);
    releaseFunctionCaches(device);
    const callers = [...live].filter((b) => b.label === 'test buffer');
    expect([...live].filter((b) => b.label !== 'test buffer').map((b) => b.label)).toEqual([]);
    expect(hasDeviceContext(device), 'nothing held: the context and its pipelines are gone').toBe(false);
    for (const b of callers) b.destroy();
  });

  it(`keeps at most ${MAX_PLANS} plans; a pass recorded with an evicted plan still runs with its own uniform`, async () => {
    const { device, live } = countingDevice(await testDevice());
    const bn = new BatchNorm(device, { numFeatures: 2, layout: 'NC' });
    const xData = randn(16, 3, 5, 2);
    const x = storageBuffer(device, xData);
    const y = storageBuffer(device, new Float32Array(16));
    const scratchX = storageBuffer(device, new Float32Array(2 * (MAX_PLANS + 20)));
    const scratchY = storageBuffer(device, new Float32Array(2 * (MAX_PLANS + 20)));
    const encoder = device.createCommandEncoder();
    bn.encodeForward(encoder, { x, y, shape: [8, 2], training: false });
    for (let rows = 2; rows < MAX_PLANS + 20; rows++) bn.encodeForward(encoder, { x: scratchX, y: scratchY, shape: [rows, 2], training: false });
    const keys = [...deviceContext(device).plans.keys()];
    expect(keys.length).toBeLessThanOrEqual(MAX_PLANS);
    expect(keys.filter((k) => k.includes('[8, 2, 1]')), 'the first plan was evicted').toEqual([]);
    const [out] = await readBuffers(device, [{ buffer: y, size: 64 }], encoder);
    // Inference with the initial running statistics (mean 0, variance 1): y = x / sqrt(1 + eps).
    expectClose(new Float32Array(out), Float32Array.from(xData, (v) => v / Math.sqrt(1 + 1e-5)), { rtol: 1e-6, atol: 1e-6 }, 'y of the first pass');
    // The evicted uniforms are let go (not destroyed: the encoder above still used them), so the
    // layer holds one per cached plan at most, however many shapes it saw.
    // Rows 2 … MAX_PLANS + 19 are MAX_PLANS + 18 shapes ([8, 2] among them), one plan each.
    const evicted = MAX_PLANS + 18 - keys.length;
    expect(evicted).toBeGreaterThan(0);
    expect(live.size - 4 - evicted, 'the uniforms of the cached plans are the layer\'s until destroy()').toBe(bn.bufferCount);
    expect(bn.bufferCount, "the cached plans' uniforms, its own state buffers and the scratch").toBeLessThanOrEqual(MAX_PLANS + 16);
    bn.destroy();
    for (const b of [x, y, scratchX, scratchY]) b.destroy();
    expect(live.size, 'buffers left after destroy(): the evicted uniforms, freed by WebGPU once unreferenced').toBe(evicted);
  });
});
