/**
 * Limits, device loss and GPU memory over long runs.
 */
import { describe, it, expect } from 'vitest';
import { BatchNorm } from '../../../src/batchnorm/layer.js';
import { LayerNorm } from '../../../src/normalization/layer.js';
import { getDevice } from '../../../src/core/device.js';
import { expectClose, randn } from '../../helpers/data.js';
import { channelView } from '../../../src/core/layout.js';
import { referenceTrainingForward } from '../../../src/batchnorm/reference.js';
import { countingDevice, storageBuffer, testDevice } from '../../helpers/gpu.js';

describe('device limits', () => {
  it('refuses a tensor larger than maxStorageBufferBindingSize up front, stating the limit', async () => {
    // A device with the default limits: 128 MiB per storage binding.
    const device = await getDevice({ adapterLimits: false, label: 'default-limits device' });
    const limit = device.limits.maxStorageBufferBindingSize;
    expect(limit).toBe(134217728);
    const tooMany = limit / 4 + 64; // float32 elements
    const shape = [tooMany / 64, 64];
    const bn = new BatchNorm(device, { numFeatures: 64, layout: 'NC' });
    const small = storageBuffer(device, new Float32Array(4));
    const message = new RegExp(`args.shape \\[${shape[0]}, 64\\] needs ${tooMany * 4} bytes per tensor, more than this device's maxStorageBufferBindingSize of ${limit} bytes`);
    expect(() => bn.encodeForward(device.createCommandEncoder(), { x: small, y: small, shape, training: true })).toThrow(message);
    await expect(bn.forward(new Float32Array(tooMany), shape, { training: true })).rejects.toThrow(/maxStorageBufferBindingSize of 134217728 bytes/);
    // float16 storage halves the bytes: the same shape fits.
    const half = new BatchNorm(device, { numFeatures: 64, layout: 'NC', dtype: 'float16' });
    expect(() => half.encodeForward(device.createCommandEncoder(), { x: small, y: small, shape, training: true })).toThrow(
      /args.x must hold at least 67108992 bytes/,
    );
    bn.destroy();
    half.destroy();
    small.destroy();
    device.destroy();
  });
});

describe('device limits: maxBufferSize below maxStorageBufferBindingSize', () => {
  it('a tensor larger than maxBufferSize is refused up front, naming that limit; the layer works on', async () => {
    // getDevice asks for the adapter's largest binding (1 GiB on SwiftShader); maxBufferSize stays at WebGPU's default.
    const device = await getDevice({ label: 'small maxBufferSize device', requiredLimits: { maxBufferSize: 268435456 } });
    const limits = device.limits;
    expect(limits.maxBufferSize).toBeLessThan(limits.maxStorageBufferBindingSize);
    const rows = limits.maxBufferSize / 8 + 16; // float32 [rows, 2]: 128 bytes over
    const bn = new BatchNorm(device, { numFeatures: 2, layout: 'NC' });
    const message = `shape [${rows}, 2] needs ${rows * 8} bytes per tensor, more than this device's maxBufferSize of ${limits.maxBufferSize} bytes`;
    await expect(bn.forward(new Float32Array(8), [rows, 2], { training: true })).rejects.toThrow(message);
    const y = await bn.forward(Float32Array.from([1, 10, 3, 30]), [2, 2], { training: true });
    expect(Array.from(y, (v) => Math.round(v * 1000) / 1000)).toEqual([-1, -1, 1, 1]);
    bn.destroy();
    device.destroy();
  });
});

describe("the family's saved statistics at the default limits", () => {
  it('grow up to one binding and no further; a batch whose statistics would not fit is refused up front; the layer works on', async () => {
    const device = await getDevice({ label: 'default-limits device for saved statistics', adapterLimits: false });
    const limit = device.limits.maxStorageBufferBindingSize; // 128 MiB, below maxBufferSize
    // LayerNorm over one value: 16 bytes of statistics per 4-byte element.
    const ln = new LayerNorm(device, { normalizedShape: 1 });
    const rowsA = Math.floor(limit / 16 / 1.8); // saved over half the limit
    const rowsB = Math.floor(limit / 16) - 64; // doubling would pass the limit: it stops at it
    const usage = GPUBufferUsage.STORAGE;
    const tooMany = Math.floor(limit / 16) + 64;
    const [x, y] = [0, 1].map(() => device.createBuffer({ size: tooMany * 4, usage }));
    // Recorded only (nothing to compute): binding a saved buffer over the limit fails validation.
    const encoder = device.createCommandEncoder();
    device.pushErrorScope('validation');
    ln.encodeForward(encoder, { x, y, shape: [rowsA, 1] });
    ln.encodeForward(encoder, { x, y, shape: [rowsB, 1] });
    encoder.finish();
    expect(await device.popErrorScope(), 'validation errors of the passes').toBeNull();
    await device.queue.onSubmittedWorkDone();
    await expect(ln.forward(new Float32Array(tooMany), [tooMany, 1])).rejects.toThrow(
      `shape [${tooMany}, 1] needs ${tooMany * 16} bytes of saved statistics (16 per statistics group), more than this device's ${limit} bytes per binding`,
    );
    expect(() => ln.encodeForward(device.createCommandEncoder(), { x, y, shape: [tooMany, 1] })).toThrow(/args.shape \[\d+, 1\] needs \d+ bytes of saved statistics/);
    expect(Array.from(await ln.forward(Float32Array.of(1, 3), [2, 1]))).toEqual([0, 0]);
    ln.destroy();
    x.destroy();
    y.destroy();
    device.destroy();
  });
});

describe('device loss', () => {
  it('surfaces as a clear error from the next call; a new layer on a new device works', async () => {
    const device = await getDevice({ label: 'device to lose' });
    const bn = new BatchNorm(device, { numFeatures: 2, layout: 'NC' });
    await bn.forward(randn(8, 1), [4, 2], { training: true });
    device.destroy();
    const info = await device.lost;
    expect(info.reason).toBe('destroyed');
    await expect(bn.forward(randn(8, 2), [4, 2], { training: true })).rejects.toThrow(
      /BatchNorm: the GPU device was lost \(destroyed: .*\); get a new device \(getDevice\) and create a new BatchNorm on it/,
    );
    expect(() => bn.encodeForward({} as GPUCommandEncoder, { x: {} as GPUBuffer, y: {} as GPUBuffer, shape: [4, 2], training: true })).toThrow(
      /the GPU device was lost/,
    );
    await expect(bn.getState()).rejects.toThrow(/the GPU device was lost/);

    const fresh = new BatchNorm(await getDevice({ label: 'replacement device' }), { numFeatures: 2, layout: 'NC' });
    const y = await fresh.forward(Float32Array.from([1, 10, 3, 30]), [2, 2], { training: true });
    expect(Array.from(y, (v) => Math.round(v * 1000) / 1000)).toEqual([-1, -1, 1, 1]);
    fresh.destroy();
    fresh.device.destroy();
  });
});

describe('GPU memory', () => {
  it('1000 training steps (forward + backward) leave the live buffer count flat', async () => {
    const { device, live } = countingDevice(await testDevice());
    const bn = new BatchNorm(device, { numFeatures: 4, layout: 'NCHW' });
    const shape = [2, 4, 3, 3];
    const x = randn(72, 7);
    const dy = randn(72, 8);
    const counts: number[] = [];
    for (let step = 1; step <= 1000; step++) {
      await bn.forward(x, shape, { training: true });
      await bn.backward(dy);
      if (step === 10 || step === 1000) counts.push(live.size);
    }
    expect((await bn.getState()).numBatchesTracked).toBe(1000);
    expect(counts[1], `live buffers after 10 steps: ${counts[0]}, after 1000: ${counts[1]}`).toBe(counts[0]);
    expect(live.size).toBe(bn.bufferCount);
    bn.destroy();
    expect(live.size, 'buffers left after destroy()').toBe(0);
  });
});

describe('scratch memory pooled per device', () => {
  it('layers share one scratch buffer, grown as needed, destroyed with its last holder', async () => {
    const { device, live } = countingDevice(await testDevice());
    const a = new BatchNorm(device, { numFeatures: 4, layout: 'NCHW', label: 'a' });
    await a.forward(randn(2 * 4 * 50 * 50, 1), [2, 4, 50, 50], { training: true }); // 10 chunks per channel
    const scratch = [...live].filter((b) => b.label === 'webgpu-batchnorm scratch');
    expect(scratch.length).toBe(1);
    const b = new BatchNorm(device, { numFeatures: 3, layout: 'NC', label: 'b' });
    await b.forward(randn(8 * 3, 2), [8, 3], { training: true }); // fits: no new scratch
    expect([...live].filter((x) => x.label === 'webgpu-batchnorm scratch')).toEqual(scratch);
    // Interleaved use stays correct: each pass consumes its partials before the next pass runs.
    const x = randn(8 * 3, 3);
    const y = await b.forward(x, [8, 3], { training: true });
    const ref = referenceTrainingForward(x, channelView('NC', [8, 3]), { gamma: [1, 1, 1], beta: [0, 0, 0], eps: 1e-5 });
    expectClose(y, ref.y, { rtol: 1e-5, atol: 1e-5 }, 'y after the other layer used the scratch');
    a.destroy();
    expect(live.has(scratch[0]), 'still held by b').toBe(true);
    b.destroy();
    expect(live.size, 'buffers left after both layers are destroyed').toBe(0);
  });
});
