/**
 * dtype 'float16': tensors stored as IEEE halves, statistics and arithmetic in float32. The
 * kernels use native f16 where the device has shader-f16 (getDevice requests it wherever the
 * adapter offers it), else two halves per u32 ('f16-packed': SwiftShader has no shader-f16).
 * Dawn's null backend, which offers it, shows the choice in test/device-features.test.ts.
 *
 * Tolerance: the reference runs in float64 on the half values the GPU actually read; outputs
 * are rounded to half on the way out, so the float32 tolerances are widened by halfTolerance.
 */
import { describe, it, expect } from 'vitest';
import { BatchNorm } from '../../../src/batchnorm/layer.js';
import { LayerNorm } from '../../../src/normalization/layer.js';
import { referenceLayerNorm } from '../../../src/normalization/reference.js';
import { fromFloat16Bits, fromHalfBits, toFloat16Bits, toHalfBits } from '../../../src/core/float16.js';
import { readBuffers } from '../../../src/core/gpu.js';
import { channelView, viewSize, type Layout } from '../../../src/core/layout.js';
import { referenceBackward, referenceTrainingForward } from '../../../src/batchnorm/reference.js';
import { channelData, expectClose, randn } from '../../helpers/data.js';
import { recordingDevice } from '../../helpers/dispatch-recorder.js';
import { testAdapter, testDevice } from '../../helpers/gpu.js';
import { dxTolerance, halfTolerance, yTolerance } from '../../helpers/tolerances.js';

const HALF_RTOL = 2 ** -10;

it('the tests below run native f16 kernels exactly where the adapter offers shader-f16', async () => {
  const device = await testDevice();
  const offered = (await testAdapter()).features.has('shader-f16');
  expect(device.features.has('shader-f16'), 'getDevice requests shader-f16 wherever it is offered').toBe(offered);
  const recorder = recordingDevice(device);
  const bn = new BatchNorm(recorder.device, { numFeatures: 2, layout: 'NC', dtype: 'float16' });
  const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
  const [x, y] = [0, 1].map(() => device.createBuffer({ size: 16, usage }));
  bn.encodeForward(recorder.device.createCommandEncoder(), { x, y, shape: [4, 2], training: true });
  const labels = recorder.take().filter((line) => line !== '--');
  expect(labels.length).toBeGreaterThan(0);
  const storage = offered ? 'f16' : 'f16-packed';
  // The label names the storage, then any variant (the merging kernels' subgroups).
  expect(labels.filter((line) => !line.startsWith('webgpu-batchnorm ') || !new RegExp(` \\(${storage}(, subgroups)?\\) \\[`).test(line))).toEqual([]);
  bn.destroy();
  x.destroy();
  y.destroy();
});

describe('half conversion on the CPU', () => {
  it('round-trips every half bit pattern and rounds to nearest even', () => {
    for (let bits = 0; bits < 0x10000; bits++) {
      const value = fromHalfBits(bits);
      if (Number.isNaN(value)) expect(Number.isNaN(fromHalfBits(toHalfBits(value)))).toBe(true);
      else expect(toHalfBits(value), `0x${bits.toString(16)}`).toBe(bits);
    }
    expect(toHalfBits(1 + 2 ** -11)).toBe(0x3c00); // tie to even (down)
    expect(toHalfBits(1 + 3 * 2 ** -11)).toBe(0x3c02); // tie to even (up)
    expect(toHalfBits(65520)).toBe(0x7c00); // rounds past the largest half, 65504: +Inf
    expect(toHalfBits(2 ** -25)).toBe(0); // tie between 0 and the smallest subnormal: even
    expect(toHalfBits(3 * 2 ** -26)).toBe(1);
  });
});

describe.each([
  ['NC', [7, 3]],
  ['NCL', [3, 4, 9]],
  ['NCHW', [2, 3, 7, 5]],
  ['NHWC', [3, 5, 7, 3]],
  ['NCDHW', [2, 2, 3, 3, 5]],
  ['NCHW', [2, 3, 4, 6]],
  ['NCL', [3, 2, 2052]],
  ['NHWC', [3, 5, 7, 8]],
  ['NC', [4099, 12]],
] as [Layout, number[]][])('float16 %s %j (odd sizes use half of the last word; inner 4k uses runs of 4)', (layout, shape) => {
  it('forward and backward match the reference on the half values', async () => {
    const device = await testDevice();
    const view = channelView(layout, shape);
    const C = view.channels;
    const gamma = Array.from(randn(C, 1, 1, 0.3));
    const beta = Array.from(randn(C, 2));
    const bn = new BatchNorm(device, { numFeatures: C, layout, dtype: 'float16' });
    bn.setState({ gamma, beta });
    const x = fromFloat16Bits(toFloat16Bits(channelData(view, 400)));
    const dy = fromFloat16Bits(toFloat16Bits(randn(x.length, 401)));
    const y = await bn.forward(x, shape, { training: true });
    const ref = referenceTrainingForward(x, view, { gamma, beta, eps: 1e-5 });
    const stats = { ...ref, gamma, eps: 1e-5 };
    expectClose(y, ref.y, halfTolerance(yTolerance(x, view, stats)), 'y');
    const g = await bn.backward(toFloat16Bits(dy));
    const refG = referenceBackward(x, dy, view, { ...stats, batchStats: true });
    expectClose(g.dx, refG.dx, halfTolerance(dxTolerance(x, dy, view, stats)), 'dx');
    bn.destroy();
  });
});

describe('float16 range', () => {
  it('values near 6e4 (the half maximum is 65504): the variance does not overflow', async () => {
    const device = await testDevice();
    const shape = [64, 2];
    const view = channelView('NC', shape);
    // Channel 0 around 6e4 with spread 1000; channel 1 spans [-65504, 65504].
    const raw = randn(128, 410);
    const x = fromFloat16Bits(toFloat16Bits(raw.map((z, e) => (e % 2 === 0 ? 6e4 + 1000 * Math.max(-5, Math.min(5, z)) : (z > 0 ? 65504 : -65504) * Math.min(1, Math.abs(z))))));
    expect(Math.max(...x.map(Math.abs))).toBeLessThanOrEqual(65504);
    const bn = new BatchNorm(device, { numFeatures: 2, layout: 'NC', dtype: 'float16' });
    const y = await bn.forward(x, shape, { training: true });
    const stats = await bn.getBatchStats();
    const ref = referenceTrainingForward(x, view, { gamma: [1, 1], beta: [0, 0], eps: 1e-5 });
    for (let c = 0; c < 2; c++) {
      expect(Number.isFinite(stats.variance[c])).toBe(true);
      expect(Math.abs(stats.variance[c] - ref.variance[c]) / ref.variance[c], `variance of channel ${c} (${ref.variance[c]})`).toBeLessThan(1e-5);
    }
    expect(ref.variance[1]).toBeGreaterThan(65504); // beyond half range: it lives in float32
    expectClose(y, ref.y, { rtol: HALF_RTOL, atol: 1e-4 }, 'y');
    const state = await bn.getState();
    expect(state.runningVar.every(Number.isFinite)).toBe(true);
    bn.destroy();
  });

  it('a NaN or ±Infinity output is stored as such and leaves the half beside it in its word alone (BatchNorm and LayerNorm)', async () => {
    const device = await testDevice();
    const bits = (y: Float32Array) => Array.from(toFloat16Bits(y), (b) => b.toString(16));
    // Inference with the initial running statistics (mean 0, variance 1): y = x / sqrt(1 + eps),
    // so a finite x lands on one half and NaN / ±Inf stay NaN / ±Inf. Each word holds a
    // non-finite output and a finite one.
    const bn = new BatchNorm(device, { numFeatures: 2, layout: 'NC', dtype: 'float16', eps: 2 ** -20 });
    const x = Float32Array.of(NaN, 1, 2, Infinity, -Infinity, -3);
    const y = await bn.forward(x, [3, 2], { training: false });
    const scale = 1 / Math.sqrt(1 + 2 ** -20);
    expect(bits(y)).toEqual(bits(Float32Array.of(NaN, scale, 2 * scale, Infinity, -Infinity, -3 * scale)));
    // Training over channels-last vec4 rows: one channel NaN (its statistics too), the others exact.
    const bn4 = new BatchNorm(device, { numFeatures: 4, layout: 'NHWC', dtype: 'float16' });
    const xt = Float32Array.from({ length: 32 }, (_, i) => (i % 4 === 1 && i === 5 ? NaN : Math.sin(i) * 3));
    const yt = await bn4.forward(xt, [2, 2, 2, 4], { training: true });
    const ref = referenceTrainingForward(fromFloat16Bits(toFloat16Bits(xt)), channelView('NHWC', [2, 2, 2, 4]), { gamma: [1, 1, 1, 1], beta: [0, 0, 0, 0], eps: 1e-5 });
    for (let i = 0; i < 32; i++) {
      if (i % 4 === 1) expect(Number.isNaN(yt[i]), `y[${i}] in the NaN channel`).toBe(true);
      else expect(Math.abs(yt[i] - ref.y[i]), `y[${i}] beside the NaN channel`).toBeLessThanOrEqual(2 ** -10 * Math.abs(ref.y[i]) + 1e-3);
    }
    // LayerNorm over rows of 3: element 2 (row 0, NaN) and element 3 (row 1) share a word.
    const ln = new LayerNorm(device, { normalizedShape: 3, dtype: 'float16' });
    const yl = await ln.forward(Float32Array.of(NaN, 1, 2, 3, 4, 5), [2, 3]);
    expect(Array.from(yl.slice(0, 3)).every(Number.isNaN)).toBe(true);
    const row = referenceLayerNorm([3, 4, 5], [1, 3], 3, { eps: 1e-5 }).y;
    expectClose(yl.slice(3), row, halfTolerance({ rtol: 1e-5, atol: 1e-6 }), 'the row beside the NaN row');
    bn.destroy();
    bn4.destroy();
    ln.destroy();
  });

  it('caller buffers hold packed halves: ceil(n / 2) words', async () => {
    const device = await testDevice();
    const shape = [3, 3, 3];
    const n = 27;
    const bn = new BatchNorm(device, { numFeatures: 3, layout: 'NCL', dtype: 'float16' });
    const bits = toFloat16Bits(randn(n, 420, 2, 3));
    const bytes = Math.ceil(n / 2) * 4; // 56
    const padded = new Uint16Array(bytes / 2);
    padded.set(bits);
    const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
    const xBuf = device.createBuffer({ size: bytes, usage });
    device.queue.writeBuffer(xBuf, 0, padded);
    const yBuf = device.createBuffer({ size: bytes, usage });
    const small = device.createBuffer({ size: bytes - 4, usage });
    const encoder = device.createCommandEncoder();
    expect(() => bn.encodeForward(encoder, { x: xBuf, y: small, shape, training: true })).toThrow(
      /args.y must hold at least 56 bytes \(float16 \[3, 3, 3\]\); got 52/,
    );
    bn.encodeForward(encoder, { x: xBuf, y: yBuf, shape, training: true });
    device.queue.submit([encoder.finish()]);
    const [out] = await readBuffers(device, [{ buffer: yBuf, size: bytes }]);
    const y = fromFloat16Bits(new Uint16Array(out, 0, n));
    const x = fromFloat16Bits(bits);
    const view = channelView('NCL', shape);
    const ref = referenceTrainingForward(x, view, { gamma: [1, 1, 1], beta: [0, 0, 0], eps: 1e-5 });
    expectClose(y, ref.y, halfTolerance(yTolerance(x, view, { ...ref, gamma: [1, 1, 1], eps: 1e-5 })), 'y');
    expect(new Uint16Array(out)[n], 'the padding half of the last word').toBe(0);
    expect(viewSize(view)).toBe(n);
    bn.destroy();
    for (const b of [xBuf, yBuf, small]) b.destroy();
  });

  it('a float32 layer refuses half bits', async () => {
    const device = await testDevice();
    const bn = new BatchNorm(device, { numFeatures: 2, layout: 'NC' });
    await expect(bn.forward(new Uint16Array(4), [2, 2], { training: true })).rejects.toThrow(
      /x must be a Float32Array for a float32 layer; got a Uint16Array of 4/,
    );
    bn.destroy();
  });
});
