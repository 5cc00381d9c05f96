/**
 * The channels-last kernels for C % 4 == 0 (four channels per thread) keep the numerics of the
 * others: large offsets cost no precision (shifted data, runs of 4 merged by Chan's formula), and
 * NaN or ±Inf in one channel leaves its group's other channels exact. Their agreement with the
 * reference over awkward shapes is in layouts, activation and float16 tests.
 */
import { describe, expect, it } from 'vitest';
import { BatchNorm } from '../../../src/batchnorm/layer.js';
import { isCpuAdapter } from '../../../src/core/plans.js';
import { referenceBackward, referenceStats } from '../../../src/batchnorm/reference.js';
import { channelView } from '../../../src/core/layout.js';
import { randn } from '../../helpers/data.js';
import { testDevice } from '../../helpers/gpu.js';

describe('channels-last, four channels per thread', () => {
  it('reduction sizes follow the adapter: SwiftShader, llvmpipe and fallback adapters are CPUs, a GPU is not', async () => {
    const adapter = (info: Partial<GPUAdapterInfo> & { isFallbackAdapter?: boolean }) =>
      ({ adapterInfo: { vendor: '', architecture: '', description: '', ...info } }) as unknown as GPUDevice;
    // As Dawn reports them.
    expect(isCpuAdapter(adapter({ vendor: 'google', architecture: 'swiftshader', description: 'SwiftShader driver 5.0.0', isFallbackAdapter: true }))).toBe(true);
    expect(isCpuAdapter(adapter({ vendor: 'google', architecture: 'swiftshader', isFallbackAdapter: false }))).toBe(true);
    expect(isCpuAdapter(adapter({ vendor: 'mesa', description: 'llvmpipe (LLVM 15.0.6, 256 bits)' }))).toBe(true);
    expect(isCpuAdapter(adapter({ vendor: 'unknown', isFallbackAdapter: true }))).toBe(true);
    expect(isCpuAdapter(adapter({ vendor: 'nvidia', description: 'NVIDIA: 580.159.04 580.159.4.0', isFallbackAdapter: false }))).toBe(false);
    expect(isCpuAdapter(adapter({ vendor: 'amd', architecture: 'rdna-3', isFallbackAdapter: false }))).toBe(false);
    // The device this suite runs on: SwiftShader here and in CI, a real GPU on a GPU machine.
    const device = await testDevice();
    const { vendor, architecture } = device.adapterInfo;
    if (vendor === 'google' && architecture === 'swiftshader') expect(isCpuAdapter(device)).toBe(true);
    else if (/^(nvidia|amd|intel|apple|qualcomm|arm)$/.test(vendor)) expect(isCpuAdapter(device)).toBe(false);
  });

  it.each([1e4, 1e5, 1e6])('mean %d, std 1 over 100,003 rows: variance within 1e-3 relative', async (offset) => {
    const device = await testDevice();
    const shape = [100_003, 8];
    const view = channelView('NC', shape);
    const x = Float32Array.from(randn(shape[0] * 8, 7), (v, e) => offset * (1 + (e % 8) / 8) + v);
    const bn = new BatchNorm(device, { numFeatures: 8, layout: 'NC' });
    await bn.forward(x, shape, { training: true });
    const gpu = await bn.getBatchStats();
    const ref = referenceStats(x, view);
    for (let c = 0; c < 8; c++) {
      expect(Math.abs(gpu.variance[c] - ref.variance[c]) / ref.variance[c], `variance of channel ${c}`).toBeLessThan(1e-3);
      expect(Math.abs(gpu.mean[c] - ref.mean[c]), `mean of channel ${c}`).toBeLessThanOrEqual(1e-7 * Math.abs(ref.mean[c]) + 1e-3);
    }
    bn.destroy();
  });

  it('NaN and ±Inf make only their channels NaN, forward and backward; the running statistics are skipped', async () => {
    const device = await testDevice();
    const shape = [6, 7, 8]; // NLC: rows of 8 channels, two channel groups
    const view = channelView('NLC', shape);
    const n = 6 * 7 * 8;
    const x = randn(n, 11, 1, 2);
    x[5 * 8 + 1] = NaN;
    x[17 * 8 + 2] = Infinity;
    x[40 * 8 + 5] = -Infinity;
    const bad = [1, 2, 5];
    const bn = new BatchNorm(device, { numFeatures: 8, layout: 'NLC' });
    const before = await bn.getState();
    const y = await bn.forward(x, shape, { training: true });
    const stats = await bn.getBatchStats();
    const clean = referenceStats(x, view);
    for (let c = 0; c < 8; c++) {
      if (bad.includes(c)) expect(stats.variance[c], `variance of channel ${c}`).toBeNaN();
      else expect(Math.abs(stats.variance[c] - clean.variance[c]) / clean.variance[c], `variance of channel ${c}`).toBeLessThan(1e-6);
    }
    y.forEach((v, e) => expect(Number.isNaN(v), `y[${e}] (channel ${e % 8})`).toBe(bad.includes(e % 8)));
    const dy = randn(n, 12);
    const { dx } = await bn.backward(dy);
    const refDx = referenceBackward(x, dy, view, { ...clean, gamma: new Array(8).fill(1), eps: 1e-5, batchStats: true }).dx;
    dx.forEach((v, e) => {
      if (bad.includes(e % 8)) expect(v, `dx[${e}]`).toBeNaN();
      else expect(Math.abs(v - refDx[e]), `dx[${e}]`).toBeLessThan(1e-5);
    });
    expect(await bn.getState(), 'the non-finite batch left the running statistics alone').toEqual(before);
    bn.destroy();
  });
});
