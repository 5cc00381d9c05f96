/**
 * Tensor arguments as ranges { buffer, offset, size } of the caller's larger buffers: a training
 * step reads x and dy from ranges of one input arena and writes y and dx into ranges of one
 * output arena (WebGPU does not let a dispatch write a buffer it also reads, so outputs live in
 * another buffer than the inputs), and the bytes around each range stay untouched. Ranges are
 * checked like whole buffers. A buffer given whole, or as a range without a size or with a larger
 * one, beside another buffer in its GPUBuffer is bound to the bytes the pass uses: WebGPU would
 * otherwise fail a dispatch whose two written bindings overlap, though the used bytes do not.
 */
import { describe, expect, it } from 'vitest';
import { BatchNorm } from '../../../src/batchnorm/layer.js';
import { FeatureScaler, SCALING_STATE_BYTES_PER_FEATURE } from '../../../src/feature-scaling/layer.js';
import { readBuffers, type TensorBuffer } from '../../../src/core/gpu.js';
import { SAVED_BYTES_PER_FEATURE, encodeBatchNormBackward, encodeBatchNormForward } from '../../../src/batchnorm/functions.js';
import { encodeFeatureScalingAdapt, encodeFeatureScalingTransform } from '../../../src/feature-scaling/functions.js';
import { encodeLayerNormForward } from '../../../src/normalization/functions.js';
import { NORM_SAVED_BYTES_PER_GROUP } from '../../../src/normalization/kernels.js';
import { channelView } from '../../../src/core/layout.js';
import { encodeReluForward } from '../../../demo/nn/kernels.js';
import { referenceBackward, referenceTrainingForward } from '../../../src/batchnorm/reference.js';
import { referenceFeatureScaling } from '../../../src/feature-scaling/reference.js';
import { channelData, expectClose, randn } from '../../helpers/data.js';
import { batchNormBuffers, storageBuffer, tensorArenas, testDevice } from '../../helpers/gpu.js';
import { dxTolerance, yTolerance } from '../../helpers/tolerances.js';


describe('buffer ranges', () => {
  it('a training step on ranges of two arenas matches the reference and leaves the rest alone', async () => {
    const device = await testDevice();
    const shape = [3, 4, 5, 7];
    const view = channelView('NCHW', shape);
    const n = 3 * 4 * 5 * 7;
    const arenas = tensorArenas(device, n);
    const { inputs, x, dy, y, dx } = arenas;
    const xData = channelData(view, 90);
    const dyData = randn(n, 91);
    device.queue.writeBuffer(inputs, x.offset, xData as Float32Array<ArrayBuffer>);
    device.queue.writeBuffer(inputs, dy.offset, dyData);

    const bn = new BatchNorm(device, { numFeatures: 4, layout: 'NCHW' });
    const encoder = device.createCommandEncoder();
    bn.encodeForward(encoder, { x, y, shape, training: true });
    bn.encodeBackward(encoder, { x, dy, dx, shape });
    const { slice, changedOutside } = await arenas.read(encoder);

    const ref = referenceTrainingForward(xData, view, { gamma: [1, 1, 1, 1], beta: [0, 0, 0, 0], eps: 1e-5 });
    const stats = { mean: ref.mean, variance: ref.variance, gamma: [1, 1, 1, 1], eps: 1e-5 };
    expectClose(slice(y), ref.y, yTolerance(xData, view, stats), 'y');
    const refDx = referenceBackward(xData, dyData, view, { ...stats, batchStats: true }).dx;
    expectClose(slice(dx), refDx, dxTolerance(xData, dyData, view, stats), 'dx');
    expect(Array.from(slice(x))).toEqual(Array.from(xData));
    // Every value outside the tensors still holds the sentinel.
    for (const changed of changedOutside) expect(changed).toEqual([]);
    bn.destroy();
    arenas.destroy();
  });

  it('FeatureScaler and the layer kernels take ranges too', async () => {
    const device = await testDevice();
    const align = device.limits.minStorageBufferOffsetAlignment;
    const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
    const [inputs, outputs] = [device.createBuffer({ size: 2 * align, usage }), device.createBuffer({ size: 3 * align, usage })];
    const data = randn(20, 92, 5, 2);
    device.queue.writeBuffer(inputs, align, data);
    const x = { buffer: inputs, offset: align, size: 80 };
    const y = { buffer: outputs, offset: align, size: 80 };
    const r = { buffer: outputs, offset: 2 * align, size: 80 };
    const scaler = new FeatureScaler(device, { numFeatures: 4, method: 'min-max' });
    const encoder = device.createCommandEncoder();
    scaler.encodeAdapt(encoder, { x, shape: [5, 4] });
    scaler.encodeTransform(encoder, { x, y, shape: [5, 4] });
    const pass = encoder.beginComputePass();
    encodeReluForward(device, pass, 20, { x, y: r });
    pass.end();
    const [scaled, relu] = await readBuffers(device, [{ buffer: outputs, offset: y.offset, size: 80 }, { buffer: outputs, offset: r.offset, size: 80 }], encoder);
    const ref = referenceFeatureScaling(data, channelView('NC', [5, 4]), 'min-max');
    expectClose(new Float32Array(scaled), ref.y, { rtol: 1e-5, atol: 1e-6 }, 'scaled');
    expect(Array.from(new Float32Array(relu))).toEqual(Array.from(data, (v) => Math.max(v, 0)));
    scaler.destroy();
    inputs.destroy();
    outputs.destroy();
  });

  it('refuses misaligned, overflowing, too small and overlapping ranges, naming them', async () => {
    const device = await testDevice();
    const align = device.limits.minStorageBufferOffsetAlignment;
    const big = device.createBuffer({ size: 4 * align, usage: GPUBufferUsage.STORAGE });
    const bn = new BatchNorm(device, { numFeatures: 2, layout: 'NC' });
    const encoder = device.createCommandEncoder();
    const y = { buffer: big, offset: 2 * align, size: 32 };
    const forward = (x: GPUBufferBinding, yy: GPUBufferBinding = y) => () => bn.encodeForward(encoder, { x, y: yy, shape: [4, 2], training: true });
    expect(forward({ buffer: big, offset: 4 })).toThrow(new RegExp(`args.x.offset must be a multiple of ${align} \\(the device's minStorageBufferOffsetAlignment\\); got 4`));
    expect(forward({ buffer: big, offset: 3 * align, size: 2 * align })).toThrow(new RegExp(`args.x: offset ${3 * align} \\+ size ${2 * align} exceeds its buffer's ${4 * align} bytes`));
    expect(forward({ buffer: big, offset: 0, size: 16 })).toThrow(/args.x must hold at least 32 bytes \(float32 \[4, 2\]\); got 16/);
    expect(forward({ buffer: big, offset: 0, size: 32 })).toThrow(
      /args.y must be in a different GPUBuffer from args.x: WebGPU does not let one dispatch write a buffer it also reads, even in disjoint ranges/,
    );
    const pass = encoder.beginComputePass();
    expect(() => encodeReluForward(device, pass, 8, { x: { buffer: big, offset: 0, size: 32 }, y })).toThrow(/buffers.y must be in a different GPUBuffer from buffers.x/);
    pass.end();
    expect(forward({ buffer: 'nope' as never })).toThrow(/args.x.buffer must be a GPUBuffer/);
    encoder.finish();
    bn.destroy();
    big.destroy();
  });
});

describe('caller-owned parameters (options.buffers)', () => {
  it("two layers keep γ, β and their gradients in the caller's arenas; the layer uses them as they are", async () => {
    const device = await testDevice();
    const align = device.limits.minStorageBufferOffsetAlignment;
    const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
    const params = device.createBuffer({ size: 4 * align, usage }); // γ1, β1, γ2, β2
    const grads = device.createBuffer({ size: 4 * align, usage }); // their gradients, in the same order
    const C = 3;
    const at = (buffer: GPUBuffer, k: number) => ({ buffer, offset: k * align, size: C * 4 });
    const gammas = [Float32Array.of(1.5, 0.5, 2), Float32Array.of(0.25, 1, 3)];
    const betas = [Float32Array.of(0.1, 0.2, 0.3), Float32Array.of(-1, 0, 1)];
    gammas.forEach((g, l) => device.queue.writeBuffer(params, 2 * l * align, g));
    betas.forEach((b, l) => device.queue.writeBuffer(params, (2 * l + 1) * align, b));
    const layers = [0, 1].map(
      (l) =>
        new BatchNorm(device, {
          numFeatures: C,
          layout: 'NC',
          buffers: { gamma: at(params, 2 * l), beta: at(params, 2 * l + 1), gammaGrad: at(grads, 2 * l), betaGrad: at(grads, 2 * l + 1) },
        }),
    );
    const view = channelView('NC', [6, C]);
    for (const [l, bn] of layers.entries()) {
      const x = channelData(view, 100 + l);
      const dy = randn(6 * C, 110 + l);
      const y = await bn.forward(x, [6, C], { training: true });
      const ref = referenceTrainingForward(x, view, { gamma: gammas[l], beta: betas[l], eps: 1e-5 });
      const stats = { mean: ref.mean, variance: ref.variance, gamma: gammas[l], eps: 1e-5 };
      expectClose(y, ref.y, yTolerance(x, view, stats), `layer ${l} y`);
      const g = await bn.backward(dy);
      const refG = referenceBackward(x, dy, view, { ...stats, batchStats: true });
      const [dgamma, dbeta] = await readBuffers(device, [{ buffer: grads, offset: 2 * l * align, size: C * 4 }, { buffer: grads, offset: (2 * l + 1) * align, size: C * 4 }]);
      expect(Array.from(new Float32Array(dgamma))).toEqual(Array.from(g.dgamma!));
      expect(Array.from(new Float32Array(dbeta))).toEqual(Array.from(g.dbeta!));
      expectClose(g.dbeta!, refG.dbeta, { rtol: 1e-5, atol: 1e-5 }, `layer ${l} dbeta`);
      expect(Array.from((await bn.getState()).gamma)).toEqual(Array.from(gammas[l]));
    }
    layers[1].setState({ beta: [7, 8, 9] });
    const [beta2] = await readBuffers(device, [{ buffer: params, offset: 3 * align, size: C * 4 }]);
    expect(Array.from(new Float32Array(beta2))).toEqual([7, 8, 9]);
    for (const bn of layers) bn.destroy();
    // The caller's buffers outlive the layers.
    const [after] = await readBuffers(device, [{ buffer: params, size: 4 }]);
    expect(new Float32Array(after)[0]).toBe(1.5);
    params.destroy();
    grads.destroy();
  });

  it('refuses unknown names, small buffers, and gradients in the buffer of γ', async () => {
    const device = await testDevice();
    const small = device.createBuffer({ size: 8, usage: GPUBufferUsage.STORAGE });
    const big = device.createBuffer({ size: 1024, usage: GPUBufferUsage.STORAGE });
    const make = (buffers: object) => () => new BatchNorm(device, { numFeatures: 3, layout: 'NC', buffers: buffers as never });
    expect(make({ weight: big })).toThrow(/options.buffers.weight is not a state buffer; expected one of gamma, beta/);
    expect(make({ gamma: small })).toThrow(/options.buffers.gamma must hold at least 12 bytes \(3 float32\); got 8/);
    expect(make({ gamma: { buffer: big, offset: 0, size: 12 }, gammaGrad: { buffer: big, offset: 256, size: 12 } })).toThrow(
      /options.buffers.gammaGrad must be in a different GPUBuffer from options.buffers.gamma/,
    );
    small.destroy();
    big.destroy();
  });
});

describe('a buffer given whole, without a size or with a larger one, beside another in its GPUBuffer', () => {
  // Each case runs twice in one encoder: on separate buffers, and with `wide` holding a written
  // output at its start as a whole GPUBuffer, a range without size or a larger range, and another
  // buffer the same dispatch writes at 2·align. No validation error, and the same bits.
  const C = 4;
  const N = 8;
  // GPUBufferUsage is a global once testDevice() has run.
  const usage = () => GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
  type Wide = (arena: GPUBuffer) => TensorBuffer;
  const WIDE: [string, Wide][] = [
    ['a whole GPUBuffer', (arena) => arena],
    ['a range without size', (arena) => ({ buffer: arena, offset: 0 })],
    ['a range larger than the tensor', (arena) => ({ buffer: arena, offset: 0, size: 3 * 256 })],
  ];
  async function sameAsSeparate(
    device: GPUDevice,
    run: (encoder: GPUCommandEncoder, out: TensorBuffer, inner: TensorBuffer) => void,
    innerBytes: number,
    wide: Wide,
  ): Promise<void> {
    const align = device.limits.minStorageBufferOffsetAlignment;
    const [out, inner] = [N * C * 4, innerBytes].map((size) => device.createBuffer({ size, usage: usage() }));
    const arena = device.createBuffer({ size: 4 * align, usage: usage() });
    const innerRange = { buffer: arena, offset: 2 * align, size: innerBytes };
    device.pushErrorScope('validation');
    const encoder = device.createCommandEncoder();
    run(encoder, out, inner);
    run(encoder, wide(arena), innerRange);
    const [a, b, c, d] = await readBuffers(device, [{ buffer: out, size: N * C * 4 }, { buffer: arena, size: N * C * 4 }, { buffer: inner, size: innerBytes }, innerRange], encoder);
    expect((await device.popErrorScope())?.message, 'WebGPU validation error').toBeUndefined();
    expect(Array.from(new Float32Array(b)), 'the output').toEqual(Array.from(new Float32Array(a)));
    expect(Array.from(new Uint32Array(d)), 'the other buffer').toEqual(Array.from(new Uint32Array(c)));
    expect(new Float32Array(a).some((v) => v !== 0), 'a nonzero output').toBe(true);
    for (const buffer of [out, inner, arena]) buffer.destroy();
  }

  it('a layer whose dγ is a whole GPUBuffer and dβ a range of it trains as one with separate buffers', async () => {
    const device = await testDevice();
    const grads = device.createBuffer({ size: 2 * device.limits.minStorageBufferOffsetAlignment, usage: usage() });
    const shared = new BatchNorm(device, { numFeatures: C, layout: 'NC', buffers: { gammaGrad: grads, betaGrad: { buffer: grads, offset: device.limits.minStorageBufferOffsetAlignment } } });
    const plain = new BatchNorm(device, { numFeatures: C, layout: 'NC' });
    const [x, dy] = [randn(N * C, 4305), randn(N * C, 4306)];
    for (const bn of [shared, plain]) await bn.forward(x, [N, C], { training: true });
    const [a, b] = [await shared.backward(dy), await plain.backward(dy)];
    expect(Array.from(a.dx)).toEqual(Array.from(b.dx));
    expect(Array.from(a.dgamma!)).toEqual(Array.from(b.dgamma!));
    expect(Array.from(a.dbeta!)).toEqual(Array.from(b.dbeta!));
    shared.destroy();
    plain.destroy();
    grads.destroy();
  });

  describe.each(WIDE)('the output as %s', (_, wide) => {
    it('BatchNorm training forward: y, and numBatchesTracked beside it; backward: dx, and dγ beside it', async () => {
      const device = await testDevice();
      const x = storageBuffer(device, randn(N * C, 4301));
      const dy = storageBuffer(device, randn(N * C, 4302));
      const options = { layout: 'NC' } as const;
      const fresh = () => batchNormBuffers(device, C);
      await sameAsSeparate(device, (encoder, y, count) => {
        encodeBatchNormForward(device, encoder, { x, y, shape: [N, C], training: true, buffers: { ...fresh(), numBatchesTracked: count }, options });
      }, 4, wide);
      await sameAsSeparate(device, (encoder, dx, dgamma) => {
        const buffers = { ...fresh(), gammaGrad: dgamma, saved: device.createBuffer({ size: C * SAVED_BYTES_PER_FEATURE, usage: usage() }) };
        encodeBatchNormForward(device, encoder, { x, y: device.createBuffer({ size: N * C * 4, usage: usage() }), shape: [N, C], training: true, buffers, options });
        encodeBatchNormBackward(device, encoder, { x, dy, dx, shape: [N, C], buffers, options });
      }, C * 4, wide);
    });

    it('FeatureScaler transform: y, and the state beside it', async () => {
      const device = await testDevice();
      const x = storageBuffer(device, randn(N * C, 4303));
      const options = { method: 'standardize' } as const;
      await sameAsSeparate(device, (encoder, y, state) => {
        encodeFeatureScalingAdapt(device, encoder, { x, shape: [N, C], state, options });
        encodeFeatureScalingTransform(device, encoder, { x, y, shape: [N, C], state, options });
      }, C * SCALING_STATE_BYTES_PER_FEATURE, wide);
    });

    it('LayerNorm forward: y, and saved beside it', async () => {
      const device = await testDevice();
      const x = storageBuffer(device, randn(N * C, 4304));
      await sameAsSeparate(device, (encoder, y, saved) => {
        encodeLayerNormForward(device, encoder, { x, y, shape: [N, C], normalizedShape: C, saved });
      }, N * NORM_SAVED_BYTES_PER_GROUP, wide);
    });
  });
});
