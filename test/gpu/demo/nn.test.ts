/**
 * The training demo's layer kernels (demo/nn/kernels.ts) against the float64 reference
 * (demo/nn/reference.ts), and the reference's own gradients against finite differences.
 *
 * Tolerance of a sum of n float32 products: |gpu − reference| ≤ (n + 1)·u·Σ|terms| (the
 * classical bound on recursive summation, u = 2^-24), where Σ|terms| is the same reference
 * computed on |inputs|. A wrong index or a missing term errs by O(Σ|terms|), far above it.
 */
import { describe, expect, it } from 'vitest';
import {
  encodeConv2dBackward,
  encodeConv2dForward,
  encodeMaxPoolBackward,
  encodeMaxPoolForward,
  encodeReluBackward,
  encodeReluForward,
  encodeSgdStep,
  encodeSoftmaxCrossEntropy,
  createSgdHyperparams,
  writeSgdHyperparams,
  conv2dOutputSize,
  poolOutputSize,
  type Conv2dShape,
  type PoolShape,
} from '../../../demo/nn/kernels.js';
import {
  referenceConv2d,
  referenceConv2dBackward,
  referenceMaxPool,
  referenceMaxPoolBackward,
  referenceRelu,
  referenceReluBackward,
  referenceSoftmaxCrossEntropy,
} from '../../../demo/nn/reference.js';
import { readBuffers } from '../../../src/core/gpu.js';
import { expectClose, randn, rng } from '../../helpers/data.js';
import { storageBuffer, testDevice } from '../../helpers/gpu.js';

const U = 2 ** -24;
const abs = (a: ArrayLike<number>) => Float64Array.from(a, Math.abs);

/** Records `record` in one pass, submits, and reads back each buffer as float32 (or u32). */
async function run(device: GPUDevice, record: (pass: GPUComputePassEncoder) => void, outputs: GPUBuffer[]): Promise<ArrayBuffer[]> {
  const encoder = device.createCommandEncoder();
  const pass = encoder.beginComputePass();
  record(pass);
  pass.end();
  return readBuffers(device, outputs.map((buffer) => ({ buffer, size: buffer.size })), encoder);
}

const empty = (device: GPUDevice, elements: number) => storageBuffer(device, new Float32Array(elements));

/** Tolerance of sums of `terms` products whose absolute sums are `absSums`. */
const sumTol = (absSums: ArrayLike<number>, terms: number) => ({ rtol: 0, atol: Float64Array.from(absSums, (s) => (terms + 1) * U * s + 1e-30) });

const CONV_SHAPES: [string, Conv2dShape][] = [
  ['conv2d_1 (1→10, 5x5 on 28x28)', { batch: 3, inChannels: 1, height: 28, width: 28, outChannels: 10, kernelHeight: 5, kernelWidth: 5 }],
  ['conv2d_2 (10→20, 5x5 on 12x12)', { batch: 2, inChannels: 10, height: 12, width: 12, outChannels: 20, kernelHeight: 5, kernelWidth: 5 }],
  ['dense_1 as a 4x4 kernel', { batch: 5, inChannels: 20, height: 4, width: 4, outChannels: 100, kernelHeight: 4, kernelWidth: 4 }],
  ['dense_2 as a 1x1 kernel', { batch: 4, inChannels: 100, height: 1, width: 1, outChannels: 10, kernelHeight: 1, kernelWidth: 1 }],
  ['non-square, odd sizes', { batch: 2, inChannels: 3, height: 7, width: 11, outChannels: 5, kernelHeight: 2, kernelWidth: 4 }],
];

describe('conv2d (and dense as a conv2d)', () => {
  for (const [name, shape] of CONV_SHAPES) {
    it(`forward and backward match the reference: ${name}`, async () => {
      const device = await testDevice();
      const [OH, OW] = conv2dOutputSize(shape);
      const nIn = shape.batch * shape.inChannels * shape.height * shape.width;
      const nW = shape.outChannels * shape.inChannels * shape.kernelHeight * shape.kernelWidth;
      const nOut = shape.batch * shape.outChannels * OH * OW;
      const x = randn(nIn, 1, 0.3, 1);
      const w = randn(nW, 2, 0, 0.5);
      const b = randn(shape.outChannels, 3);
      const dy = randn(nOut, 4);
      const bufs = {
        x: storageBuffer(device, x),
        weight: storageBuffer(device, w),
        bias: storageBuffer(device, b),
        y: empty(device, nOut),
        dy: storageBuffer(device, dy),
        dweight: empty(device, nW),
        dbias: empty(device, shape.outChannels),
        dx: empty(device, nIn),
      };
      const [y, dweight, dbias, dx] = await run(
        device,
        (pass) => {
          encodeConv2dForward(device, pass, shape, bufs);
          encodeConv2dBackward(device, pass, shape, bufs);
        },
        [bufs.y, bufs.dweight, bufs.dbias, bufs.dx],
      );
      const terms = shape.inChannels * shape.kernelHeight * shape.kernelWidth;
      expectClose(new Float32Array(y), referenceConv2d(x, w, b, shape), sumTol(referenceConv2d(abs(x), abs(w), abs(b), shape), terms + 1), 'y');
      const ref = referenceConv2dBackward(x, w, dy, shape);
      const absRef = referenceConv2dBackward(abs(x), abs(w), abs(dy), shape);
      expectClose(new Float32Array(dweight).subarray(0, nW), ref.dweight, sumTol(absRef.dweight, shape.batch * OH * OW), 'dweight');
      expectClose(new Float32Array(dbias).subarray(0, shape.outChannels), ref.dbias, sumTol(absRef.dbias, shape.batch * OH * OW), 'dbias');
      expectClose(new Float32Array(dx), ref.dx, sumTol(absRef.dx, shape.outChannels * shape.kernelHeight * shape.kernelWidth), 'dx');
    });
  }

  it('reference gradients match finite differences of the reference forward', () => {
    const shape: Conv2dShape = { batch: 2, inChannels: 2, height: 5, width: 6, outChannels: 3, kernelHeight: 3, kernelWidth: 2 };
    const [OH, OW] = conv2dOutputSize(shape);
    const x = Float64Array.from(randn(2 * 2 * 5 * 6, 5));
    const w = Float64Array.from(randn(3 * 2 * 3 * 2, 6));
    const b = Float64Array.from(randn(3, 7));
    const dy = Float64Array.from(randn(2 * 3 * OH * OW, 8));
    // L = Σ dy·y, so dL/dθ is what the backward pass returns for this dy.
    const L = (xx: Float64Array, ww: Float64Array, bb: Float64Array) => referenceConv2d(xx, ww, bb, shape).reduce((s, v, i) => s + v * dy[i], 0);
    const g = referenceConv2dBackward(x, w, dy, shape);
    const h = 1e-6;
    const numeric = (arr: Float64Array, i: number, f: () => number) => {
      const keep = arr[i];
      arr[i] = keep + h;
      const up = f();
      arr[i] = keep - h;
      const down = f();
      arr[i] = keep;
      return (up - down) / (2 * h);
    };
    const f = () => L(x, w, b);
    for (let i = 0; i < x.length; i += 7) expect(g.dx[i]).toBeCloseTo(numeric(x, i, f), 6);
    for (let i = 0; i < w.length; i++) expect(g.dweight[i]).toBeCloseTo(numeric(w, i, f), 6);
    for (let i = 0; i < b.length; i++) expect(g.dbias[i]).toBeCloseTo(numeric(b, i, f), 6);
  });
});

describe('max pooling', () => {
  const shapes: PoolShape[] = [
    { batch: 3, channels: 10, height: 24, width: 24, size: 2 },
    { batch: 2, channels: 20, height: 8, width: 8, size: 2 },
    { batch: 2, channels: 3, height: 7, width: 9, size: 3 }, // rows and columns past the last window are dropped
  ];
  for (const shape of shapes) {
    it(`forward and backward are exact: [${shape.batch}, ${shape.channels}, ${shape.height}, ${shape.width}] size ${shape.size}`, async () => {
      const device = await testDevice();
      const nIn = shape.batch * shape.channels * shape.height * shape.width;
      const x = randn(nIn, 9);
      // Ties: a run of equal values, where the first in window order must win.
      x.fill(0.5, 0, 5);
      const [OH, OW] = poolOutputSize(shape);
      const nOut = shape.batch * shape.channels * OH * OW;
      const dy = randn(nOut, 10);
      const bufs = { x: storageBuffer(device, x), y: empty(device, nOut), argmax: empty(device, nOut), dy: storageBuffer(device, dy), dx: empty(device, nIn) };
      const [y, argmax, dx] = await run(
        device,
        (pass) => {
          encodeMaxPoolForward(device, pass, shape, bufs);
          encodeMaxPoolBackward(device, pass, shape, bufs);
        },
        [bufs.y, bufs.argmax, bufs.dx],
      );
      const expected = referenceMaxPool(x, shape);
      expect(Array.from(new Float32Array(y))).toEqual(Array.from(expected.y));
      expect(Array.from(new Uint32Array(argmax))).toEqual(Array.from(expected.argmax));
      expect(Array.from(new Float32Array(dx))).toEqual(Array.from(referenceMaxPoolBackward(x, dy, shape), Math.fround));
    });
  }
});

describe('relu', () => {
  it('forward and backward are exact, with gradient 0 at 0', async () => {
    const device = await testDevice();
    const n = 1000;
    const x = randn(n, 11);
    x.fill(0, 0, 10);
    const dy = randn(n, 12);
    const bufs = { x: storageBuffer(device, x), y: empty(device, n), dy: storageBuffer(device, dy), dx: empty(device, n) };
    const [y, dx] = await run(
      device,
      (pass) => {
        encodeReluForward(device, pass, n, bufs);
        encodeReluBackward(device, pass, n, bufs);
      },
      [bufs.y, bufs.dx],
    );
    expect(Array.from(new Float32Array(y))).toEqual(Array.from(referenceRelu(x)));
    expect(Array.from(new Float32Array(dx))).toEqual(Array.from(referenceReluBackward(x, dy), Math.fround));
  });
});

describe('softmax cross-entropy', () => {
  it('losses, correctness and dlogits match the reference, including large logits', async () => {
    const device = await testDevice();
    const batch = 37;
    const classes = 10;
    const logits = randn(batch * classes, 13, 0, 3);
    logits.fill(80, 0, 3); // exp(80) overflows float32 without the max shift
    const next = rng(14);
    const labels = Uint32Array.from({ length: batch }, () => Math.floor(next() * classes));
    const labelBuffer = device.createBuffer({ size: batch * 4, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
    device.queue.writeBuffer(labelBuffer, 0, labels);
    const bufs = { logits: storageBuffer(device, logits), labels: labelBuffer, dlogits: empty(device, batch * classes), losses: empty(device, batch), correct: empty(device, batch) };
    const [losses, correct, dlogits] = await run(
      device,
      (pass) => encodeSoftmaxCrossEntropy(device, pass, { batch, classes }, bufs),
      [bufs.losses, bufs.correct, bufs.dlogits],
    );
    const ref = referenceSoftmaxCrossEntropy(logits, labels, classes);
    // exp and log in float32 (WGSL: exp within 3 + 2|x| ulp): relative 1e-5 of the terms.
    const maxLogit = Math.max(...Array.from(logits, Math.abs));
    expectClose(new Float32Array(losses), ref.losses, { rtol: 1e-5, atol: 1e-5 * (1 + maxLogit) }, 'losses');
    expectClose(new Float32Array(dlogits), ref.dlogits, { rtol: 1e-5, atol: 1e-5 / batch }, 'dlogits');
    expect(Array.from(new Uint32Array(correct))).toEqual(Array.from(ref.correct));
    expect(ref.correct.some((c) => c === 1) && ref.correct.some((c) => c === 0)).toBe(true);
  });
});

describe('sgd', () => {
  it('applies velocity = momentum·velocity + grad, param −= lr·velocity, with hyperparameters written between steps', async () => {
    const device = await testDevice();
    const n = 300;
    const param = randn(n, 15);
    const grads = [randn(n, 16), randn(n, 17)];
    const hyper = createSgdHyperparams(device, { lr: 0.1, momentum: 0.9 });
    const bufs = { hyper, param: storageBuffer(device, param), grad: storageBuffer(device, grads[0]), velocity: empty(device, n) };
    await run(device, (pass) => encodeSgdStep(device, pass, n, bufs), []);
    writeSgdHyperparams(device, hyper, { lr: 0.02, momentum: 0.5 });
    device.queue.writeBuffer(bufs.grad, 0, grads[1] as Float32Array<ArrayBuffer>);
    const [after, velocity] = await run(device, (pass) => encodeSgdStep(device, pass, n, bufs), [bufs.param, bufs.velocity]);
    const v1 = Float64Array.from(grads[0]);
    const p1 = param.map((p, i) => Math.fround(p - Math.fround(0.1 * v1[i])));
    const v2 = v1.map((v, i) => Math.fround(0.5 * v) + grads[1][i]);
    const p2 = p1.map((p, i) => p - Math.fround(0.02) * v2[i]);
    expectClose(new Float32Array(velocity), v2, { rtol: 4 * U, atol: 1e-12 }, 'velocity');
    expectClose(new Float32Array(after), p2, { rtol: 8 * U, atol: 4 * U * 0.02 * 4 }, 'param');
  });

  it('refuses a bad learning rate or momentum, naming it', async () => {
    const device = await testDevice();
    expect(() => createSgdHyperparams(device, { lr: 0, momentum: 0 })).toThrow(/lr must be a finite number > 0; got 0/);
    expect(() => createSgdHyperparams(device, { lr: 0.1, momentum: 1 })).toThrow(/momentum must be a number in \[0, 1\); got 1/);
  });
});

describe('argument checks', () => {
  it('names the argument and the expected value', async () => {
    const device = await testDevice();
    const shape: Conv2dShape = { batch: 2, inChannels: 1, height: 5, width: 5, outChannels: 2, kernelHeight: 3, kernelWidth: 3 };
    const ok = (n: number) => empty(device, n);
    const bufs = { x: ok(50), weight: ok(18), bias: ok(2), y: ok(36) };
    const pass = device.createCommandEncoder().beginComputePass();
    expect(() => encodeConv2dForward(device, pass, { ...shape, kernelHeight: 6 }, bufs)).toThrow(/kernel must fit the 5x5 input/);
    expect(() => encodeConv2dForward(device, pass, { ...shape, batch: 0 }, bufs)).toThrow(/shape.batch must be a positive integer; got 0/);
    expect(() => encodeConv2dForward(device, pass, shape, { ...bufs, y: ok(35) })).toThrow(/buffers.y must hold at least 144 bytes/);
    expect(() => encodeReluForward(device, pass, 0, { x: ok(1), y: ok(1) })).toThrow(/count must be a positive integer; got 0/);
    pass.end();
  });
});
