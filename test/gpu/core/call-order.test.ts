/**
 * The array API cannot give a silent wrong answer through the way it is called (issue 18,
 * defects 1–3), for every layer: BatchNorm, the four family layers and FeatureScaler.
 *
 * - Inputs are taken at the call: an x, dy, data or shape array changed (or reused for the next
 *   call) right after the call returns does not change its result.
 * - Calls take effect in the order they were made, awaited or not: setState, getState, getStats,
 *   reset and destroy never overtake an earlier call, nor are overtaken by a later one.
 * - A caller's buffer without the copy flags the array API needs is refused when it is given,
 *   naming the buffer and the flag; a readback that fails WebGPU validation rejects its own call
 *   (never resolves with zeros), also with two layers interleaving calls on one device.
 *
 * Every result is checked against the float64 reference with the tolerances of the other tests
 * (test/helpers/tolerances.ts, test/helpers/family.ts).
 */
import { describe, expect, it } from 'vitest';
import { SAVED_BYTES_PER_FEATURE, encodeBatchNormForward } from '../../../src/batchnorm/functions.js';
import { releaseFunctionCaches } from '../../../src/core/function-forms.js';
import { NORM_SAVED_BYTES_PER_GROUP, encodeLayerNormForward } from '../../../src/normalization/functions.js';
import { BatchNorm } from '../../../src/batchnorm/layer.js';
import { FeatureScaler } from '../../../src/feature-scaling/layer.js';
import { InstanceNorm, LayerNorm } from '../../../src/normalization/layer.js';
import { referenceBackward, referenceTrainingForward } from '../../../src/batchnorm/reference.js';
import { referenceFeatureScaling } from '../../../src/feature-scaling/reference.js';
import { channelView } from '../../../src/core/layout.js';
import { readBuffers } from '../../../src/core/gpu.js';
import { expectClose, randn } from '../../helpers/data.js';
import {
  KINDS,
  describeCase,
  familyData,
  gradTols,
  makeLayer,
  paramCount,
  referenceBackwardOf,
  referenceForward,
  yTol,
  type Case,
  type Kind,
} from '../../helpers/family.js';
import { storageBuffer, testDevice } from '../../helpers/gpu.js';
import { getDevice } from '../../../src/core/device.js';
import { toFloat16Bits } from '../../../src/core/float16.js';
import { dxTolerance, yTolerance } from '../../helpers/tolerances.js';

/** A layer of the array API with forward, backward and γ in its state. */
interface Trainable {
  name: string;
  shape: number[];
  destroy(): void;
  forward(x: Float32Array, shape: number[]): Promise<Float32Array>;
  backward(dy: Float32Array): Promise<{ dx: Float32Array }>;
  setGamma(value: number): void;
  getGamma(): Promise<Float32Array>;
  /** Records a training forward pass over the layer's shape into the caller's encoder. */
  encodeForward(encoder: GPUCommandEncoder, x: GPUBuffer, y: GPUBuffer): void;
  /** Records the backward pass of the last encodeForward. */
  encodeBackward(encoder: GPUCommandEncoder, x: GPUBuffer, dy: GPUBuffer, dx: GPUBuffer): void;
  /** Input data of the layer's shape; `seed` makes each batch different. */
  data(seed: number): Float32Array;
  /** Checks y of a training forward over x (of `shape`, default the layer's) with γ filled with `gamma` (β 0). */
  checkY(y: Float32Array, x: Float32Array, gamma: number, what: string, shape?: number[]): void;
  /** Checks dx of the backward pass after a forward over x (γ 1). */
  checkDx(dx: Float32Array, x: Float32Array, dy: Float32Array, what: string): void;
}

function batchNormSubject(device: GPUDevice): Trainable {
  const shape = [3, 4, 2, 3];
  const view = channelView('NCHW', shape);
  const bn = new BatchNorm(device, { numFeatures: 4, layout: 'NCHW' });
  const eps = bn.eps;
  const forwardOf = (x: Float32Array, gamma: number, v = view) => referenceTrainingForward(x, v, { gamma: new Array(4).fill(gamma), beta: [0, 0, 0, 0], eps });
  return {
    name: 'BatchNorm',
    shape,
    destroy: () => bn.destroy(),
    forward: (x, s) => bn.forward(x, s, { training: true }),
    backward: (dy) => bn.backward(dy),
    setGamma: (value) => bn.setState({ gamma: new Array(4).fill(value) }),
    getGamma: async () => (await bn.getState()).gamma,
    encodeForward: (encoder, x, y) => bn.encodeForward(encoder, { x, y, shape, training: true }),
    encodeBackward: (encoder, x, dy, dx) => bn.encodeBackward(encoder, { x, dy, dx, shape }),
    data: (seed) => randn(72, seed, 1, 2),
    checkY(y, x, gamma, what, s = shape) {
      const v = channelView('NCHW', s);
      const ref = forwardOf(x, gamma, v);
      expectClose(y, ref.y, yTolerance(x, v, { ...ref, gamma: new Array(4).fill(gamma), eps }), what);
    },
    checkDx(dx, x, dy, what) {
      const ref = forwardOf(x, 1);
      const stats = { mean: ref.mean, variance: ref.variance, gamma: [1, 1, 1, 1], eps };
      expectClose(dx, referenceBackward(x, dy, view, { ...stats, batchStats: true }).dx, dxTolerance(x, dy, view, stats), what);
    },
  };
}

/** A small float32 case of each family kind. */
function familyCase(kind: Kind): Case {
  const base = { kind, dtype: 'float32', activation: 'none', eps: 1e-5, affine: true } as const;
  switch (kind) {
    case 'layer':
      return { ...base, shape: [4, 3, 8], normalizedShape: [8] };
    case 'rms':
      return { ...base, shape: [5, 12], normalizedShape: [12], eps: 2 ** -23 };
    case 'group':
      return { ...base, shape: [2, 6, 3, 2], numGroups: 3, layout: 'NCHW' };
    case 'instance':
      return { ...base, shape: [3, 4, 5], layout: 'NCL' };
  }
}

function familySubject(device: GPUDevice, kind: Kind): Trainable {
  const c = familyCase(kind);
  const layer = makeLayer(device, c);
  const P = paramCount(c);
  const params = (gamma: number) => ({ gamma: new Float32Array(P).fill(gamma), beta: new Float32Array(P) });
  return {
    name: describeCase(c),
    shape: c.shape,
    destroy: () => layer.destroy(),
    forward: (x, s) => layer.forward(x, s),
    backward: (dy) => layer.backward(dy),
    setGamma: (value) => layer.setState({ gamma: params(value).gamma }),
    getGamma: async () => (await layer.getState()).gamma,
    encodeForward: (encoder, x, y) => layer.encodeForward(encoder, { x, y, shape: c.shape }),
    encodeBackward: (encoder, x, dy, dx) => layer.encodeBackward(encoder, { x, dy, dx, shape: c.shape }),
    data: (seed) => familyData(c, seed),
    checkY(y, x, gamma, what, shape = c.shape) {
      const p = params(gamma);
      const cs = { ...c, shape };
      const ref = referenceForward(cs, x, p.gamma, p.beta);
      expectClose(y, ref.y, yTol(cs, x, ref.v, ref.stats, ref.gamma, ref.beta), what);
    },
    checkDx(dx, x, dy, what) {
      const p = params(1);
      const ref = referenceForward(c, x, p.gamma, p.beta);
      expectClose(dx, referenceBackwardOf(c, x, dy, ref.v, ref.gamma).dx, gradTols(c, x, dy, ref.v, ref.stats, ref.gamma, ref.beta).dx, what);
    },
  };
}

const subjects: [string, (device: GPUDevice) => Trainable][] = [
  ['BatchNorm', batchNormSubject],
  ...KINDS.map((kind) => [`family ${kind}`, (device: GPUDevice) => familySubject(device, kind)] as [string, (device: GPUDevice) => Trainable]),
];

describe.each(subjects)('%s: inputs are taken at the call', (_, make) => {
  it('x and shape changed right after forward() returns: y is of the x given', async () => {
    const layer = make(await testDevice());
    const x = layer.data(1);
    const given = x.slice();
    const shape = [...layer.shape];
    const pending = layer.forward(x, shape);
    x.fill(0);
    shape.reverse();
    layer.checkY(await pending, given, 1, `${layer.name} y`);
    layer.destroy();
  });

  it('one staging array reused by unawaited forward() calls: each y is of its own contents', async () => {
    const layer = make(await testDevice());
    const stage = new Float32Array(layer.data(0).length);
    const batches = [11, 12, 13, 14].map((seed) => layer.data(seed));
    const pending = batches.map((batch) => {
      stage.set(batch);
      return layer.forward(stage, layer.shape);
    });
    const ys = await Promise.all(pending);
    ys.forEach((y, i) => layer.checkY(y, batches[i], 1, `${layer.name} y of batch ${i}`));
    layer.destroy();
  });

  it('dy changed right after backward() returns: dx is of the dy given', async () => {
    const layer = make(await testDevice());
    const x = layer.data(2);
    const dy = randn(x.length, 3);
    const given = dy.slice();
    // Neither call awaited before the next: backward follows the forward made before it.
    const forward = layer.forward(x, layer.shape);
    const backward = layer.backward(dy);
    dy.fill(0);
    await forward;
    layer.checkDx((await backward).dx, x, given, `${layer.name} dx`);
    layer.destroy();
  });

  it("a larger call while a smaller one is pending (the I/O buffers grow): both on the reference", async () => {
    const layer = make(await testDevice());
    const small = layer.data(4);
    const bigShape = [layer.shape[0] * 3, ...layer.shape.slice(1)];
    const big = Float32Array.from({ length: 3 * small.length }, (_, i) => small[i % small.length] * (1 + Math.floor(i / small.length)));
    const [a, b] = [layer.forward(small, layer.shape), layer.forward(big, bigShape)];
    layer.checkY(await a, small, 1, `${layer.name} y of the smaller call`);
    layer.checkY(await b, big, 1, `${layer.name} y of the larger call`, bigShape);
    layer.destroy();
  });
});

describe.each(subjects)('%s: calls take effect in the order they were made', (_, make) => {
  it('setState right after an unawaited forward(): that forward used the old γ, the next one the new', async () => {
    const layer = make(await testDevice());
    const x = layer.data(5);
    const before = layer.forward(x, layer.shape);
    layer.setGamma(10);
    const after = layer.forward(x, layer.shape);
    layer.checkY(await before, x, 1, `${layer.name} y before setState`);
    layer.checkY(await after, x, 10, `${layer.name} y after setState`);
    layer.destroy();
  });

  it('getState made before setState reads the old state, made after it the new', async () => {
    const layer = make(await testDevice());
    const old = layer.getGamma();
    layer.setGamma(3);
    const fresh = layer.getGamma();
    layer.setGamma(4);
    expect(Array.from(await old).every((v) => v === 1)).toBe(true);
    expect(Array.from(await fresh).every((v) => v === 3)).toBe(true);
    layer.destroy();
  });

  it('destroy() right after unawaited calls: they still resolve on the reference; later calls throw', async () => {
    const layer = make(await testDevice());
    const x = layer.data(6);
    const y = layer.forward(x, layer.shape);
    const gamma = layer.getGamma();
    layer.destroy();
    layer.checkY(await y, x, 1, `${layer.name} y of a call made before destroy()`);
    expect(Array.from(await gamma).every((v) => v === 1)).toBe(true);
    await expect(layer.forward(x, layer.shape)).rejects.toThrow(/was destroyed/);
    expect(() => layer.setGamma(2)).toThrow(/was destroyed/);
  });
});

describe('a backward pass needs the γ and β of its forward pass', () => {
  it.each(subjects)('%s: setState of γ between forward and backward refuses the backward; a new forward makes it work', async (_, make) => {
    const layer = make(await testDevice());
    const x = layer.data(101);
    const dy = randn(x.length, 102);
    await layer.forward(x, layer.shape);
    layer.setGamma(2);
    await expect(layer.backward(dy)).rejects.toThrow(
      ': backward() differentiates the last forward pass, and setState has changed γ or β since: the gradient would mix the old pass with the new parameters; run the forward pass again first',
    );
    layer.setGamma(1);
    await layer.forward(x, layer.shape);
    layer.checkDx((await layer.backward(dy)).dx, x, dy, `${layer.name} dx after a new forward`);
    layer.destroy();
  });
});

describe('getStats in call order', () => {
  it('BatchNorm: getStats (and its alias getBatchStats) between unawaited forwards reads the forward made just before it', async () => {
    const device = await testDevice();
    const shape = [8, 3];
    const view = channelView('NC', shape);
    const bn = new BatchNorm(device, { numFeatures: 3, layout: 'NC' });
    const [a, b] = [randn(24, 21, 0, 1), randn(24, 22, 5, 3)];
    const calls = [bn.forward(a, shape, { training: true }), bn.getStats(), bn.forward(b, shape, { training: true }), bn.getBatchStats()];
    a.fill(0);
    b.fill(0);
    const [, statsA, , statsB] = (await Promise.all(calls)) as [unknown, { mean: Float64Array; variance: Float64Array }, unknown, { mean: Float64Array; variance: Float64Array }];
    const [refA, refB] = [randn(24, 21, 0, 1), randn(24, 22, 5, 3)].map((x) => referenceTrainingForward(x, view, { gamma: [1, 1, 1], beta: [0, 0, 0], eps: 1e-5 }));
    expectClose(statsA.mean, refA.mean, { rtol: 1e-6, atol: 1e-6 }, 'mean of the first batch');
    expectClose(statsA.variance, refA.variance, { rtol: 1e-5, atol: 1e-7 }, 'variance of the first batch');
    expectClose(statsB.mean, refB.mean, { rtol: 1e-6, atol: 1e-6 }, 'mean of the second batch');
    expectClose(statsB.variance, refB.variance, { rtol: 1e-5, atol: 1e-7 }, 'variance of the second batch');
    bn.destroy();
  });

  it('InstanceNorm: setState of the running statistics lands between unawaited inference passes', async () => {
    const device = await testDevice();
    const layer = new InstanceNorm(device, { numFeatures: 2, trackRunningStats: true, layout: 'NCL' });
    const x = Float32Array.from([1, 2, 3, 4, 5, 6, 7, 8]);
    const first = layer.forward(x, [1, 2, 4], { training: false });
    layer.setState({ runningMean: [1, 2], runningVar: [4, 16] });
    const second = layer.forward(x, [1, 2, 4], { training: false });
    const eps = layer.eps;
    // Fresh running statistics: mean 0, variance 1; then the ones set.
    expectClose(await first, Array.from(x, (v) => v / Math.sqrt(1 + eps)), { rtol: 1e-6, atol: 1e-6 }, 'inference with the initial running statistics');
    const expected = Array.from(x, (v, i) => (i < 4 ? (v - 1) / Math.sqrt(4 + eps) : (v - 2) / Math.sqrt(16 + eps)));
    expectClose(await second, expected, { rtol: 1e-6, atol: 1e-6 }, 'inference with the running statistics set');
    layer.destroy();
  });
});

describe('FeatureScaler: data taken at the call, reset in call order', () => {
  const shape = [50, 2];
  const view = channelView('NC', shape);
  const scaledBy = (x: Float32Array, stats: { mean: ArrayLike<number>; variance: ArrayLike<number> }) =>
    Float64Array.from(x, (v, e) => (v - stats.mean[e % 2]) / Math.sqrt(stats.variance[e % 2]));

  it('adapt and transform on arrays changed right after the call; reset between unawaited adapts', async () => {
    const device = await testDevice();
    const scaler = new FeatureScaler(device, { numFeatures: 2, method: 'standardize' });
    const [a, b] = [randn(100, 31, 10, 2), randn(100, 32, -4, 7)];
    const [givenA, givenB] = [a.slice(), b.slice()];
    const adaptA = scaler.adapt(a, shape);
    a.fill(1e6);
    a.set(givenA);
    const transformA = scaler.transform(a, shape);
    a.fill(0);
    scaler.reset();
    const adaptB = scaler.adapt(b, shape);
    b.fill(-1e6);
    const stats = scaler.getStats();
    await Promise.all([adaptA, adaptB]);

    const refA = referenceFeatureScaling(givenA, view, 'standardize');
    const refB = referenceFeatureScaling(givenB, view, 'standardize');
    expectClose(await transformA, scaledBy(givenA, refA), { rtol: 1e-5, atol: 1e-5 }, 'transform with the statistics of a only');
    const s = await stats;
    expect(s.count, 'values counted after reset: b only').toBe(50);
    expectClose(s.mean, refB.mean, { rtol: 1e-6, atol: 1e-6 }, 'mean of b');
    expectClose(s.variance, refB.variance, { rtol: 1e-5, atol: 0 }, 'variance of b');
    scaler.destroy();
  });
});

describe('FeatureScaler: features with no adapted data', () => {
  it('transform and inverse give NaN, not x passed through: a fresh caller state, an encodeAdapt not submitted yet', async () => {
    const device = await testDevice();
    const state = device.createBuffer({ label: 'fresh caller state', size: 2 * 32, usage: 0x80 | 0x4 | 0x8 });
    const fresh = new FeatureScaler(device, { numFeatures: 2, method: 'standardize', state });
    const x = Float32Array.of(1, 2, 3, 4);
    expect(Array.from(await fresh.transform(x, [2, 2])).every(Number.isNaN)).toBe(true);
    expect(Array.from(await fresh.inverse(x, [2, 2])).every(Number.isNaN)).toBe(true);
    const scaler = new FeatureScaler(device, { numFeatures: 2, method: 'min-max' });
    const xb = storageBuffer(device, x);
    scaler.encodeAdapt(device.createCommandEncoder(), { x: xb, shape: [2, 2] }); // never submitted
    expect((await scaler.getStats()).count).toBe(0);
    expect(Array.from(await scaler.transform(x, [2, 2])).every(Number.isNaN)).toBe(true);
    await scaler.adapt(x, [2, 2]);
    expect(Array.from(await scaler.transform(x, [2, 2]))).toEqual([0, 0, 1, 1]);
    for (const d of [fresh, scaler]) d.destroy();
    state.destroy();
    xb.destroy();
  });
});

describe("a caller's buffer without the copy flags the array API needs is refused when it is given", () => {
  const STORAGE = 0x80;
  const COPY_SRC = 0x4;
  const buffer = (device: GPUDevice, usage: number, size = 256) => device.createBuffer({ label: 'caller buffer', size, usage });

  it('BatchNorm: state buffers need COPY_SRC and COPY_DST, gradients and saved COPY_SRC', async () => {
    const device = await testDevice();
    const storageOnly = buffer(device, STORAGE);
    const readable = buffer(device, STORAGE | COPY_SRC);
    const make = (buffers: object, extra: object = {}) => new BatchNorm(device, { numFeatures: 4, layout: 'NC', buffers, ...extra });
    expect(() => make({ gamma: storageOnly })).toThrow(
      "options.buffers.gamma must have GPUBufferUsage.COPY_SRC in its usage (getState() reads it back); got usage 0x80 (STORAGE)",
    );
    expect(() => make({ runningVar: readable })).toThrow(
      'options.buffers.runningVar must have GPUBufferUsage.COPY_DST in its usage (setState() writes it); got usage 0x84 (COPY_SRC | STORAGE)',
    );
    expect(() => make({ numBatchesTracked: { buffer: storageOnly, offset: 0, size: 4 } })).toThrow(/options.buffers.numBatchesTracked must have GPUBufferUsage.COPY_SRC/);
    expect(() => make({ gammaGrad: storageOnly })).toThrow(/options.buffers.gammaGrad must have GPUBufferUsage.COPY_SRC in its usage \(backward\(\) reads it back\)/);
    expect(() => make({ saved: storageOnly })).toThrow(/options.buffers.saved must have GPUBufferUsage.COPY_SRC in its usage \(getStats\(\) reads it back\)/);
    for (const b of [storageOnly, readable]) b.destroy();
  });

  it('the family and FeatureScaler: buffers.gamma, running statistics and options.state', async () => {
    const device = await testDevice();
    const storageOnly = buffer(device, STORAGE);
    const readable = buffer(device, STORAGE | COPY_SRC);
    expect(() => new LayerNorm(device, { normalizedShape: 8, buffers: { gamma: storageOnly } })).toThrow(
      'options.buffers.gamma must have GPUBufferUsage.COPY_SRC in its usage (getState() reads it back); got usage 0x80 (STORAGE)',
    );
    expect(() => new LayerNorm(device, { normalizedShape: 8, buffers: { beta: readable } })).toThrow(/options.buffers.beta must have GPUBufferUsage.COPY_DST in its usage \(setState\(\) writes it\)/);
    expect(() => new InstanceNorm(device, { numFeatures: 4, trackRunningStats: true, buffers: { runningMean: readable } })).toThrow(
      /options.buffers.runningMean must have GPUBufferUsage.COPY_DST/,
    );
    expect(() => new LayerNorm(device, { normalizedShape: 8, buffers: { betaGrad: storageOnly } })).toThrow(/options.buffers.betaGrad must have GPUBufferUsage.COPY_SRC in its usage \(backward\(\) reads it back\)/);
    expect(() => new FeatureScaler(device, { numFeatures: 2, method: 'standardize', state: storageOnly })).toThrow(
      'options.state must have GPUBufferUsage.COPY_SRC in its usage (getStats() reads it back); got usage 0x80 (STORAGE)',
    );
    expect(() => new FeatureScaler(device, { numFeatures: 2, method: 'standardize', state: readable })).toThrow(/options.state must have GPUBufferUsage.COPY_DST in its usage \(reset\(\) clears it\)/);
    storageOnly.destroy();
    readable.destroy();
  });
});

describe('a readback that fails WebGPU validation rejects its own call, never resolves with zeros', () => {
  it('two layers on one device interleave calls; the one whose caller buffer was destroyed rejects each of its calls, the other is on the reference', async () => {
    const device = await testDevice();
    const shape = [6, 3];
    const view = channelView('NC', shape);
    const gamma = storageBuffer(device, new Float32Array([1, 1, 1]));
    const broken = new BatchNorm(device, { numFeatures: 3, layout: 'NC', label: 'broken BN', buffers: { gamma } });
    const healthy = new BatchNorm(device, { numFeatures: 3, layout: 'NC', label: 'healthy BN' });
    const x = randn(18, 41, 2, 3);
    await broken.forward(x, shape, { training: true });
    gamma.destroy();
    const calls = [
      broken.getState(),
      healthy.forward(x, shape, { training: true }),
      broken.forward(x, shape, { training: true }),
      healthy.getState(),
      broken.getStats(),
      healthy.backward(x),
    ];
    const [brokenState, y, brokenY, state, brokenStats, grads] = await Promise.allSettled(calls);
    for (const [what, result] of [
      ['getState()', brokenState],
      ['forward()', brokenY],
    ] as const) {
      expect(result.status, `broken BN ${what}`).toBe('rejected');
      expect(String((result as PromiseRejectedResult).reason)).toContain(`broken BN: ${what} failed (WebGPU validation error), so it returns nothing:`);
    }
    // getStats reads `saved`, which the layer owns and the failed forward did not write: it reads
    // the last forward that ran (the one before the buffer was destroyed), or rejects; never zeros.
    if (brokenStats.status === 'fulfilled') {
      const ref = referenceTrainingForward(x, view, { gamma: [1, 1, 1], beta: [0, 0, 0], eps: 1e-5 });
      expectClose((brokenStats.value as { variance: Float64Array }).variance, ref.variance, { rtol: 1e-5, atol: 1e-7 }, 'broken BN variance');
    }
    expect(y.status).toBe('fulfilled');
    const ref = referenceTrainingForward(x, view, { gamma: [1, 1, 1], beta: [0, 0, 0], eps: 1e-5 });
    expectClose((y as PromiseFulfilledResult<Float32Array>).value, ref.y, yTolerance(x, view, { ...ref, gamma: [1, 1, 1], eps: 1e-5 }), 'healthy y');
    expect(state.status).toBe('fulfilled');
    expect(Array.from((state as PromiseFulfilledResult<{ gamma: Float32Array }>).value.gamma)).toEqual([1, 1, 1]);
    expect(grads.status).toBe('fulfilled');
    const stats = { mean: ref.mean, variance: ref.variance, gamma: [1, 1, 1], eps: 1e-5 };
    expectClose((grads as PromiseFulfilledResult<{ dx: Float32Array }>).value.dx, referenceBackward(x, x, view, { ...stats, batchStats: true }).dx, dxTolerance(x, x, view, stats), 'healthy dx');
    broken.destroy();
    healthy.destroy();
  });

  it('setState into a destroyed caller buffer is reported by the next call, naming setState', async () => {
    const device = await testDevice();
    const gamma = storageBuffer(device, new Float32Array(8).fill(1));
    const layer = new LayerNorm(device, { normalizedShape: 8, label: 'LN with caller γ', buffers: { gamma } });
    gamma.destroy();
    layer.setState({ gamma: new Float32Array(8).fill(2) });
    await device.queue.onSubmittedWorkDone();
    await expect(layer.getState()).rejects.toThrow(/LN with caller γ: an earlier setState failed WebGPU validation/);
    layer.destroy();
  });

  it("FeatureScaler: getStats of a destroyed caller state rejects", async () => {
    const device = await testDevice();
    const state = device.createBuffer({ label: 'caller state', size: 2 * 32, usage: 0x80 | 0x4 | 0x8 });
    const scaler = new FeatureScaler(device, { numFeatures: 2, method: 'min-max', state });
    state.destroy();
    await expect(scaler.getStats()).rejects.toThrow(/FeatureScaler: getStats\(\) failed \(WebGPU validation error\)/);
    await expect(scaler.transform(new Float32Array(4), [2, 2])).rejects.toThrow(/FeatureScaler: transform\(\) failed \(WebGPU validation error\)/);
    scaler.destroy();
  });
});

describe('a misuse inside encodeForward is reported by the next call, naming that call and what it recorded', () => {
  it('a finished encoder (BatchNorm and LayerNorm)', async () => {
    const device = await testDevice();
    const x = storageBuffer(device, new Float32Array(16));
    const y = storageBuffer(device, new Float32Array(16));
    x.label = 'my x';
    y.label = 'my y';
    const bn = new BatchNorm(device, { numFeatures: 2, layout: 'NC' });
    const ln = new LayerNorm(device, { normalizedShape: 4 });
    const finished = device.createCommandEncoder({ label: 'my finished encoder' });
    finished.finish();
    bn.encodeForward(finished, { x, y, shape: [8, 2], training: false });
    ln.encodeForward(finished, { x, y, shape: [4, 4] });
    await device.queue.onSubmittedWorkDone();
    await expect(bn.getState()).rejects.toThrow(
      /^BatchNorm: an earlier encodeForward \(inference forward of shape \[8, 2\], x 'my x', y 'my y'\) failed WebGPU validation .*my finished encoder.*already finished/s,
    );
    await expect(ln.getState()).rejects.toThrow(/^LayerNorm: an earlier encodeForward \(forward of shape \[4, 4\], x 'my x', y 'my y'\) failed WebGPU validation .*already finished/s);
    // Reported once: the layers work on.
    expect((await bn.getState()).gamma).toEqual(new Float32Array([1, 1]));
    bn.destroy();
    ln.destroy();
    x.destroy();
    y.destroy();
  });

  it('the function forms: the next function call names the earlier one (encodeBatchNormForward, encodeLayerNormForward)', async () => {
    const device = await testDevice();
    const vector = (n: number, label: string) => Object.assign(storageBuffer(device, new Float32Array(n).fill(1)), { label });
    const x = vector(16, 'fx');
    const y = vector(16, 'fy');
    const buffers = {
      gamma: vector(2, 'g'),
      beta: vector(2, 'b'),
      runningMean: vector(2, 'rm'),
      runningVar: vector(2, 'rv'),
      numBatchesTracked: vector(1, 'n'),
      gammaGrad: vector(2, 'dg'),
      betaGrad: vector(2, 'db'),
      saved: vector((2 * SAVED_BYTES_PER_FEATURE) / 4, 'bn saved'),
    };
    const finished = device.createCommandEncoder();
    finished.finish();
    encodeBatchNormForward(device, finished, { x, y, shape: [8, 2], training: true, buffers, options: { layout: 'NC' } });
    await device.queue.onSubmittedWorkDone();
    const next = () => encodeBatchNormForward(device, device.createCommandEncoder(), { x, y, shape: [8, 2], training: true, buffers, options: { layout: 'NC' } });
    expect(next).toThrow(/an earlier encodeBatchNormForward \(training forward of shape \[8, 2\], x 'fx', y 'fy', saved 'bn saved'\) failed WebGPU validation .*already finished/s);
    const saved = vector((4 * NORM_SAVED_BYTES_PER_GROUP) / 4, 'ln saved');
    encodeLayerNormForward(device, finished, { x, y, shape: [4, 4], normalizedShape: 4, saved });
    await device.queue.onSubmittedWorkDone();
    expect(() => encodeLayerNormForward(device, device.createCommandEncoder(), { x, y, shape: [4, 4], normalizedShape: 4, saved })).toThrow(
      /an earlier encodeLayerNormForward \(forward of shape \[4, 4\], x 'fx', y 'fy', saved 'ln saved'\) failed WebGPU validation .*already finished/s,
    );
    for (const b of [x, y, saved, ...Object.values(buffers)]) b.destroy();
  });
});

/**
 * A device whose next queue write (`arm('write')`) also makes a WebGPU validation error, or whose
 * next buffer (`arm('buffer')`) is invalid: a call that fails after it recorded its passes, as an
 * out-of-memory GPU or a buffer destroyed under the layer would make it fail.
 */
function faultyDevice(device: GPUDevice) {
  let armed: 'write' | 'buffer' | 'readback' | null = null;
  const dead = device.createBuffer({ label: 'destroyed on purpose', size: 16, usage: GPUBufferUsage.COPY_DST });
  dead.destroy();
  const queue = new Proxy(device.queue, {
    get(target, prop) {
      if (prop === 'writeBuffer' && armed === 'write') {
        return (...args: Parameters<GPUQueue['writeBuffer']>) => {
          armed = null;
          target.writeBuffer(...args);
          target.writeBuffer(dead, 0, new Uint8Array(4));
        };
      }
      const value = Reflect.get(target, prop, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  const proxy = new Proxy(device, {
    get(target, prop) {
      if (prop === 'queue') return queue;
      if (prop === 'createBuffer' && (armed === 'buffer' || armed === 'readback')) {
        return (descriptor: GPUBufferDescriptor) => {
          if (armed === 'readback' && !descriptor.label?.includes('readback')) return target.createBuffer(descriptor);
          armed = null;
          return target.createBuffer({ ...descriptor, size: target.limits.maxBufferSize + 4 });
        };
      }
      const value = Reflect.get(target, prop, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  return { device: proxy, arm: (what: 'write' | 'buffer' | 'readback') => (armed = what) };
}

describe('a call that reads what a failed call wrote rejects too, never answers from older data', () => {
  it.each(subjects)('%s: forward() fails after recording; the backward() made after it rejects, and the layer works on', async (_, make) => {
    const faulty = faultyDevice(await testDevice());
    const layer = make(faulty.device);
    const [x1, x2] = [layer.data(51), layer.data(52)];
    await layer.forward(x1, layer.shape);
    faulty.arm('write');
    const failed = layer.forward(x2, layer.shape);
    const backward = layer.backward(randn(x2.length, 53));
    await expect(failed).rejects.toThrow(/forward\(\) failed \(WebGPU validation error\)/);
    await expect(backward).rejects.toThrow(/backward\(\) reads what the forward\(\) made before it wrote, and that call failed/);
    // The next forward and its backward are on the reference.
    const dy = randn(x2.length, 54);
    layer.checkY(await layer.forward(x2, layer.shape), x2, 1, `${layer.name} y after the failed call`);
    layer.checkDx((await layer.backward(dy)).dx, x2, dy, `${layer.name} dx after the failed call`);
    layer.destroy();
  });

  it('BatchNorm and LayerNorm: getStats after a failed forward rejects', async () => {
    const faulty = faultyDevice(await testDevice());
    const bn = new BatchNorm(faulty.device, { numFeatures: 2, layout: 'NC' });
    const ln = new LayerNorm(faulty.device, { normalizedShape: 4 });
    await bn.forward(randn(16, 1), [8, 2], { training: true });
    await ln.forward(randn(16, 2), [4, 4]);
    faulty.arm('write');
    const bnFailed = bn.forward(randn(16, 3), [8, 2], { training: true });
    const bnStats = bn.getStats();
    faulty.arm('write');
    const lnFailed = ln.forward(randn(16, 4), [4, 4]);
    const lnStats = ln.getStats();
    await expect(bnFailed).rejects.toThrow(/failed/);
    await expect(lnFailed).rejects.toThrow(/failed/);
    await expect(bnStats).rejects.toThrow(/BatchNorm: getStats\(\) reads what the forward\(\) made before it wrote, and that call failed/);
    await expect(lnStats).rejects.toThrow(/LayerNorm: getStats\(\) reads what the forward\(\) made before it wrote, and that call failed/);
    bn.destroy();
    ln.destroy();
  });

  it('FeatureScaler: an adapt() that failed makes transform, inverse and getStats reject until reset()', async () => {
    const faulty = faultyDevice(await testDevice());
    const scaler = new FeatureScaler(faulty.device, { numFeatures: 2, method: 'standardize' });
    const shape = [20, 2];
    const [a, b] = [randn(40, 61, 3, 2), randn(40, 62, -1, 5)];
    await scaler.adapt(a, shape);
    faulty.arm('write');
    const failed = scaler.adapt(b, shape);
    const calls = [scaler.adapt(a, shape), scaler.transform(a, shape), scaler.inverse(a, shape), scaler.getStats()];
    await expect(failed).rejects.toThrow(/adapt\(\) failed \(WebGPU validation error\)/);
    const [adaptAgain, ...readers] = await Promise.allSettled(calls);
    expect(adaptAgain.status).toBe('fulfilled');
    for (const [i, r] of readers.entries()) {
      expect(r.status, `reader ${i}`).toBe('rejected');
      expect(String((r as PromiseRejectedResult).reason)).toMatch(/reads what an adapt\(\) made since the last reset\(\) wrote, and that call failed/);
    }
    scaler.reset();
    await scaler.adapt(b, shape);
    const ref = referenceFeatureScaling(b, channelView('NC', shape), 'standardize');
    expectClose((await scaler.getStats()).mean, ref.mean, { rtol: 1e-6, atol: 1e-6 }, 'mean after reset');
    expectClose(await scaler.transform(b, shape), ref.y, { rtol: 1e-5, atol: 1e-5 }, 'transform after reset');
    scaler.destroy();
  });

  it.each(subjects)('%s: a call whose new I/O buffers are invalid rejects, and the next call makes new ones', async (_, make) => {
    const faulty = faultyDevice(await testDevice());
    const layer = make(faulty.device);
    const x = layer.data(71);
    faulty.arm('buffer');
    await expect(layer.forward(x, layer.shape)).rejects.toThrow(/forward\(\) failed \(WebGPU validation error\)/);
    layer.checkY(await layer.forward(x, layer.shape), x, 1, `${layer.name} y after the failed call`);
    layer.destroy();
  });

  it.each(subjects)('%s: a failed call does not take the I/O buffers from a later call that used them and ran', async (_, make) => {
    const faulty = faultyDevice(await testDevice());
    const layer = make(faulty.device);
    const x = layer.data(91);
    const bigShape = [layer.shape[0] * 2, ...layer.shape.slice(1)];
    const big = Float32Array.from({ length: 2 * x.length }, (_, i) => x[i % x.length] + Math.floor(i / x.length));
    faulty.arm('readback');
    const failed = layer.forward(big, bigShape); // makes the larger I/O buffers; its readback fails
    const ran = layer.forward(x, layer.shape); // uses them
    await expect(failed).rejects.toThrow(/forward\(\) failed \(WebGPU validation error\)/);
    layer.checkY(await ran, x, 1, `${layer.name} y of the call after the failed one`);
    // Made once both have settled: the backward pass of the forward that ran.
    const dy = randn(x.length, 92);
    layer.checkDx((await layer.backward(dy)).dx, x, dy, `${layer.name} dx after the failed call`);
    layer.destroy();
  });

  it.each(subjects)("%s: a pass recorded into the caller's encoder and submitted after an array forward() does not change what backward() differentiates", async (_, make) => {
    const device = await testDevice();
    const layer = make(device);
    const [x1, x2] = [layer.data(81), layer.data(82)];
    const [xb, yb] = [storageBuffer(device, x1), storageBuffer(device, new Float32Array(x1.length))];
    const encoder = device.createCommandEncoder();
    layer.encodeForward(encoder, xb, yb);
    const y2 = layer.forward(x2, layer.shape);
    device.queue.submit([encoder.finish()]);
    const dy = randn(x2.length, 83);
    const grads = layer.backward(dy);
    layer.checkY(await y2, x2, 1, `${layer.name} y of the array call`);
    layer.checkDx((await grads).dx, x2, dy, `${layer.name} dx of the array call's forward`);
    layer.destroy();
    xb.destroy();
    yb.destroy();
  });
});

describe('device loss with calls pending that build on each other', () => {
  it('every pending call rejects with the device loss, none is left unhandled', async () => {
    const device = await getDevice({ label: 'device lost with calls pending' });
    const x = Float32Array.from({ length: 2048 }, (_, i) => Math.sin(i));
    const bn = new BatchNorm(device, { numFeatures: 2, layout: 'NC' });
    const ln = new LayerNorm(device, { normalizedShape: 2 });
    const scaler = new FeatureScaler(device, { numFeatures: 2, method: 'min-max' });
    const pending = [
      bn.forward(x, [1024, 2], { training: true }),
      bn.backward(x),
      bn.getStats(),
      ln.forward(x, [1024, 2]),
      ln.backward(x),
      scaler.adapt(x, [1024, 2]),
      scaler.transform(x, [1024, 2]),
    ];
    const settled = Promise.allSettled(pending);
    device.destroy();
    for (const [i, r] of (await settled).entries()) {
      expect(r.status, `call ${i}`).toBe('rejected');
      expect(String((r as PromiseRejectedResult).reason), `call ${i}`).toMatch(/the GPU device was lost/);
    }
  });
});

describe('each way in differentiates its own last forward pass', () => {
  it.each(subjects)('%s: encodeForward, then forward(), then encodeBackward: each backward pass is of its own forward pass', async (_, make) => {
    const device = await testDevice();
    const layer = make(device);
    const [x1, x2] = [layer.data(111), layer.data(112)];
    const dy = randn(x1.length, 113);
    const [xb, yb, dyb, dxb] = [x1, new Float32Array(x1.length), dy, new Float32Array(x1.length)].map((d) => storageBuffer(device, d));
    const first = device.createCommandEncoder();
    layer.encodeForward(first, xb, yb);
    device.queue.submit([first.finish()]);
    await layer.forward(x2, layer.shape);
    const second = device.createCommandEncoder();
    layer.encodeBackward(second, xb, dyb, dxb);
    const [dx1] = await readBuffers(device, [{ buffer: dxb, size: x1.length * 4 }], second);
    layer.checkDx(new Float32Array(dx1), x1, dy, `${layer.name} dx of the encoded pass`);
    layer.checkDx((await layer.backward(dy)).dx, x2, dy, `${layer.name} dx of the array pass`);
    layer.destroy();
    for (const b of [xb, yb, dyb, dxb]) b.destroy();
  });
});

describe('arguments the array API used to ignore or store wrongly', () => {
  it('an argument beyond those a method takes is refused, naming the method', async () => {
    const device = await testDevice();
    const bn = new BatchNorm(device, { numFeatures: 2, layout: 'NC' });
    const ln = new LayerNorm(device, { normalizedShape: 2 });
    const scaler = new FeatureScaler(device, { numFeatures: 2, method: 'min-max' });
    const x = Float32Array.of(1, 2, 3, 4);
    const call = (f: (...a: never[]) => unknown, ...a: unknown[]) => (f as (...a: unknown[]) => unknown)(...a);
    await bn.forward(x, [2, 2], { training: true });
    await ln.forward(x, [2, 2]);
    await expect(call(bn.backward.bind(bn), x, { training: false }) as Promise<unknown>).rejects.toThrow('backward() takes 1 argument (dy); got an object as argument 2');
    await expect(call(bn.getState.bind(bn), {}) as Promise<unknown>).rejects.toThrow('getState() takes no arguments; got an object as argument 1');
    await expect(call(bn.getBatchStats.bind(bn), 1) as Promise<unknown>).rejects.toThrow('getBatchStats() takes no arguments; got 1 as argument 1');
    await expect(call(ln.backward.bind(ln), x, {}) as Promise<unknown>).rejects.toThrow('backward() takes 1 argument (dy); got an object as argument 2');
    await expect(call(ln.forward.bind(ln), x, [2, 2], {}, 'x') as Promise<unknown>).rejects.toThrow("forward() takes 3 arguments (x, shape, options); got the string 'x' as argument 4");
    await expect(call(scaler.adapt.bind(scaler), x, [2, 2], { axis: 0 }) as Promise<unknown>).rejects.toThrow('adapt() takes 2 arguments (data, shape); got an object as argument 3');
    expect(() => call(scaler.reset.bind(scaler), true)).toThrow('reset() takes no arguments; got true as argument 1');
    expect(() => call(bn.setState.bind(bn), { gamma: [1, 1] }, { beta: [0, 0] })).toThrow('setState() takes 1 argument (state); got an object as argument 2');
    const encoder = device.createCommandEncoder();
    expect(() => call(encodeBatchNormForward, device, encoder, {}, 7)).toThrow('encodeBatchNormForward() takes 3 arguments (device, encoder, args); got 7 as argument 4');
    expect(() => call(encodeLayerNormForward, device, encoder, {}, 1)).toThrow('encodeLayerNormForward() takes 3 arguments (device, encoder, args); got 1 as argument 4');
    expect(() => call(releaseFunctionCaches, device, 1)).toThrow('releaseFunctionCaches() takes 1 argument (device); got 1 as argument 2');
    await expect(call(getDevice, {}, 1) as Promise<unknown>).rejects.toThrow('getDevice() takes 1 argument (options); got 1 as argument 2');
    encoder.finish();
    // Trailing undefined is no argument.
    expect(Array.from((await call(bn.getState.bind(bn), undefined) as { gamma: Float32Array }).gamma)).toEqual([1, 1]);
    for (const l of [bn, ln, scaler]) l.destroy();
  });

  it("a caller's buffer for a parameter the layer holds fixed is refused", async () => {
    const device = await testDevice();
    const b = storageBuffer(device, new Float32Array(4));
    expect(() => new BatchNorm(device, { numFeatures: 4, layout: 'NC', affine: false, buffers: { gamma: b } })).toThrow(
      'options.buffers.gamma cannot be given: γ is fixed at 1 (scale or affine false), and the layer keeps that value itself',
    );
    expect(() => new BatchNorm(device, { numFeatures: 4, layout: 'NC', center: false, buffers: { beta: b } })).toThrow(/options.buffers.beta cannot be given: β is fixed at 0/);
    expect(() => new LayerNorm(device, { normalizedShape: 4, elementwiseAffine: false, buffers: { gamma: b } })).toThrow(
      /options.buffers.gamma cannot be given: γ is fixed at 1 \(elementwiseAffine false\)/,
    );
    expect(() => new LayerNorm(device, { normalizedShape: 4, bias: false, buffers: { beta: b } })).toThrow(/options.buffers.beta cannot be given: β is fixed at 0 \(bias false\)/);
    expect(() => new InstanceNorm(device, { numFeatures: 4, buffers: { gamma: b } })).toThrow(/options.buffers.gamma cannot be given: γ is fixed at 1 \(affine false\)/);
    b.destroy();
  });

  it('a float16 layer refuses finite values beyond ±65504 instead of storing ±Infinity', async () => {
    const device = await testDevice();
    const bn = new BatchNorm(device, { numFeatures: 2, layout: 'NC', dtype: 'float16' });
    const ln = new LayerNorm(device, { normalizedShape: 2, dtype: 'float16' });
    await expect(bn.forward(Float32Array.of(1, 2, 70000, 4), [2, 2], { training: true })).rejects.toThrow(
      'x[2] must fit float16 (|value| <= 65504) for a float16 layer; got 70000, which would be stored as ±Infinity',
    );
    await expect(ln.forward(Float32Array.of(1, -65520, 3, 4), [2, 2])).rejects.toThrow(/x\[1\] must fit float16/);
    // 65519 rounds to 65504; ±Infinity and NaN are data and pass through; half bits are taken as they are.
    const y = await bn.forward(Float32Array.of(65519, 2, 1, 4), [2, 2], { training: true });
    expect(y.every(Number.isFinite)).toBe(true);
    expect((await ln.forward(Float32Array.of(Infinity, 1, 2, 3), [2, 2])).slice(0, 2).every(Number.isNaN)).toBe(true);
    expect((await ln.forward(toFloat16Bits(Float32Array.of(1, 2, 3, 4)), [2, 2])).every(Number.isFinite)).toBe(true);
    bn.destroy();
    ln.destroy();
  });
});
