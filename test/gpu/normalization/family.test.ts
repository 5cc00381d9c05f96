/**
 * The normalization family on the GPU (LayerNorm, RMSNorm, GroupNorm, InstanceNorm) against the
 * float64 reference (src/normalization/reference.ts), with the tolerances stated in
 * test/helpers/family.ts: forward and backward through the array API, the encode API on caller
 * buffers (whole and ranges of arenas) and the function forms; float32 and float16 storage; the
 * fused ReLU and SiLU; fixed γ/β; InstanceNorm's running statistics and inference with them;
 * GroupNorm on every layout; getState/setState; getStats.
 */
import { describe, expect, it } from 'vitest';
import { GroupNorm, InstanceNorm, LayerNorm, RMSNorm } from '../../../src/normalization/layer.js';
import {
  NORM_SAVED_BYTES_PER_GROUP,
  encodeGroupNormBackward,
  encodeGroupNormForward,
  encodeInstanceNormBackward,
  encodeInstanceNormForward,
  encodeLayerNormBackward,
  encodeLayerNormForward,
  encodeRMSNormBackward,
  encodeRMSNormForward,
} from '../../../src/normalization/functions.js';
import { referenceBackward, referenceInference } from '../../../src/batchnorm/reference.js';
import { referenceInstanceNorm, referenceInstanceNormRunningStats } from '../../../src/normalization/reference.js';
import { readBuffers, regionOf } from '../../../src/core/gpu.js';
import { fromFloat16Bits, toFloat16Bits } from '../../../src/core/float16.js';
import { LAYOUTS, channelView, type Layout } from '../../../src/core/layout.js';
import { expectClose, randn } from '../../helpers/data.js';
import {
  KINDS,
  activate,
  activateGrad,
  describeCase,
  familyData,
  gradTols,
  hasBeta,
  makeLayer,
  meanSquareOf,
  meanVarOf,
  paramCount,
  params,
  partition,
  runningGroupStats,
  runningOf,
  referenceBackwardOf,
  referenceForward,
  sizeOf,
  stored,
  yTol,
  type Activation,
  type AnyNorm,
  type Case,
  type DType,
  type Kind,
} from '../../helpers/family.js';
import { tensorArenas, testDevice } from '../../helpers/gpu.js';
import { STATS_TOL, dxTolerance, yTolerance } from '../../helpers/tolerances.js';

/** Sets the learnable parts of γ and β. */
function setParams(layer: AnyNorm, c: Case, gamma: Float32Array, beta: Float32Array): void {
  if (!c.affine) return;
  const state: Record<string, Float32Array> = { gamma };
  if (hasBeta(c)) state.beta = beta;
  (layer as { setState(s: object): void }).setState(state);
}

/** Forward (training), getStats and backward of one case through the array API, each against the reference. */
async function checkArrayApi(device: GPUDevice, c: Case, seed: number, layer?: AnyNorm): Promise<void> {
  const own = !layer;
  layer ??= makeLayer(device, c);
  const what = describeCase(c);
  try {
    const { gamma, beta } = params(c, seed + 7);
    setParams(layer, c, gamma, beta);
    const x = familyData(c, seed);
    const dy = stored(randn(x.length, seed + 1), c.dtype);
    // float16 layers take either the values (rounded on upload) or their half bits.
    const y = await layer.forward(c.dtype === 'float16' && c.activation !== 'none' ? toFloat16Bits(x) : x, c.shape);
    const ref = referenceForward(c, x, gamma, beta);
    expectClose(y, ref.y, yTol(c, x, ref.v, ref.stats, ref.gamma, ref.beta), `y of ${what}`);
    if (c.activation === 'relu') expect(y.some((v) => v === 0) && y.some((v) => v > 0), `the ReLU's mask matters in ${what}`).toBe(true);

    const stats = await layer.getStats();
    if (c.kind === 'rms') {
      expectClose(meanSquareOf(stats), ref.stats.variance, { rtol: 1e-5, atol: 1e-7 }, `meanSquare of ${what}`);
    } else {
      const s = meanVarOf(stats);
      const spread = Math.max(...Array.from(ref.stats.variance, Math.sqrt));
      expectClose(s.mean, ref.stats.mean, { rtol: 1e-6, atol: 1e-6 * spread }, `mean of ${what}`);
      expectClose(s.variance, ref.stats.variance, { rtol: 1e-5, atol: 1e-7 }, `variance of ${what}`);
    }

    const g = await layer.backward(c.dtype === 'float16' ? toFloat16Bits(dy) : dy);
    const refG = referenceBackwardOf(c, x, dy, ref.v, ref.gamma);
    const tol = gradTols(c, x, dy, ref.v, ref.stats, ref.gamma, ref.beta);
    expectClose(g.dx, refG.dx, tol.dx, `dx of ${what}`);
    if (c.affine) expectClose(g.dgamma!, refG.dgamma, tol.dgamma, `dgamma of ${what}`);
    else expect(g.dgamma, `dgamma of ${what} (γ fixed)`).toBeNull();
    if (hasBeta(c)) expectClose(g.dbeta!, refG.dbeta!, tol.dbeta, `dbeta of ${what}`);
    else expect(g.dbeta, `dbeta of ${what} (β fixed or absent)`).toBeNull();
  } finally {
    if (own) layer.destroy();
  }
}

/** A small case of each kind; `variant` varies the shape. */
function caseOf(kind: Kind, dtype: DType, activation: Activation, variant = 0): Case {
  const base = { kind, dtype, activation, eps: 1e-5, affine: true };
  switch (kind) {
    case 'layer':
      return variant % 2 === 0 ? { ...base, shape: [4, 6, 9], normalizedShape: [9] } : { ...base, shape: [3, 5, 4], normalizedShape: [5, 4] };
    case 'rms':
      return variant % 2 === 0 ? { ...base, shape: [5, 17], normalizedShape: [17], eps: 2 ** -23 } : { ...base, shape: [2, 3, 4, 8], normalizedShape: [4, 8], eps: 2 ** -23 };
    case 'group':
      return variant % 2 === 0 ? { ...base, shape: [2, 6, 3, 5], numGroups: 3, layout: 'NCHW' } : { ...base, shape: [3, 4, 5, 4], numGroups: 2, layout: 'NHWC' };
    case 'instance':
      return variant % 2 === 0 ? { ...base, shape: [3, 4, 7], layout: 'NCL' } : { ...base, shape: [2, 3, 4, 5], layout: 'NHWC' };
  }
}

const DTYPES: DType[] = ['float32', 'float16'];
const ACTIVATIONS: Activation[] = ['none', 'relu', 'silu'];

describe('array API: forward, getStats and backward against the reference', () => {
  const grid = KINDS.flatMap((kind) => DTYPES.flatMap((dtype) => ACTIVATIONS.map((activation, i) => [kind, dtype, activation, i] as const)));
  it.each(grid)('%s %s activation %s', async (kind, dtype, activation, i) => {
    const device = await testDevice();
    const c = caseOf(kind, dtype, activation, i + (dtype === 'float16' ? 1 : 0));
    await checkArrayApi(device, c, 1000 + 10 * i);
  });

  it('one layer serves several shapes in turn (LayerNorm and RMSNorm: any leading dims; GroupNorm and InstanceNorm: any N and spatial size)', async () => {
    const device = await testDevice();
    const shapes: Record<Kind, number[][]> = {
      layer: [[7, 6], [2, 3, 6], [1, 6]],
      rms: [[7, 6], [2, 3, 6], [1, 6]],
      group: [[2, 4, 5], [1, 4, 9], [3, 4, 2]],
      instance: [[2, 4, 5], [1, 4, 9], [3, 4, 2]],
    };
    for (const kind of KINDS) {
      const first: Case = { kind, shape: shapes[kind][0], normalizedShape: [6], numGroups: 2, layout: 'NCL', eps: 1e-5, activation: 'none', dtype: 'float32', affine: true };
      const layer = makeLayer(device, first);
      for (const [k, shape] of shapes[kind].entries()) await checkArrayApi(device, { ...first, shape }, 1100 + k, layer);
      layer.destroy();
    }
  });

  it('the readonly fields report the options, with the defaults of the spec', async () => {
    const device = await testDevice();
    const ln = new LayerNorm(device, { normalizedShape: 8 });
    expect([ln.normalizedShape, ln.eps, ln.elementwiseAffine, ln.bias, ln.activation, ln.dtype, ln.label, ln.paramSize]).toEqual([[8], 1e-5, true, true, 'none', 'float32', 'LayerNorm', 8]);
    const rms = new RMSNorm(device, { normalizedShape: [3, 4] });
    expect([rms.normalizedShape, rms.eps, rms.elementwiseAffine, rms.paramSize]).toEqual([[3, 4], 2 ** -23, true, 12]);
    const gn = new GroupNorm(device, { numGroups: 2, numChannels: 6 });
    expect([gn.numGroups, gn.numChannels, gn.eps, gn.affine, gn.layout, gn.paramSize]).toEqual([2, 6, 1e-5, true, 'NCHW', 6]);
    const inorm = new InstanceNorm(device, { numFeatures: 5 });
    expect([inorm.numFeatures, inorm.eps, inorm.momentum, inorm.affine, inorm.trackRunningStats, inorm.layout, inorm.nonFiniteBatches, inorm.paramSize]).toEqual([
      5,
      1e-5,
      0.1,
      false,
      false,
      'NCHW',
      'skip',
      5,
    ]);
    for (const l of [ln, rms, gn, inorm]) {
      expect(l.device).toBe(device);
      expect(l.bufferCount).toBeGreaterThan(0);
      l.destroy();
    }
  });
});

describe('fixed γ and β', () => {
  it.each([
    ['LayerNorm elementwiseAffine false', caseOf('layer', 'float32', 'none'), { affine: false }],
    ['LayerNorm bias false', caseOf('layer', 'float32', 'silu'), { bias: false }],
    ['LayerNorm bias false, float16', caseOf('layer', 'float16', 'relu', 1), { bias: false }],
    ['RMSNorm elementwiseAffine false', caseOf('rms', 'float32', 'relu'), { affine: false }],
    ['GroupNorm affine false', caseOf('group', 'float32', 'silu', 1), { affine: false }],
    ['InstanceNorm affine false (its default)', caseOf('instance', 'float16', 'none'), { affine: false }],
  ] as [string, Case, Partial<Case>][])('%s: forward and backward as γ = 1, β = 0; null gradients; getState holds 1 and 0', async (_, base, change) => {
    const device = await testDevice();
    const c = { ...base, ...change };
    const layer = makeLayer(device, c);
    await checkArrayApi(device, c, 1200, layer);
    const state = (await layer.getState()) as { gamma: Float32Array; beta?: Float32Array };
    if (!c.affine) expect(Array.from(state.gamma)).toEqual(new Array(paramCount(c)).fill(1));
    if (!hasBeta(c) && c.kind !== 'rms') expect(Array.from(state.beta!)).toEqual(new Array(paramCount(c)).fill(0));
    layer.destroy();
  });

  it('InstanceNorm with the options left out is affine false, and its backward gives null dγ and dβ', async () => {
    const device = await testDevice();
    const inorm = new InstanceNorm(device, { numFeatures: 3, layout: 'NCL' });
    const c: Case = { kind: 'instance', shape: [2, 3, 6], layout: 'NCL', eps: 1e-5, activation: 'none', dtype: 'float32', affine: false };
    await checkArrayApi(device, c, 1250, inorm);
    inorm.destroy();
  });
});

/** A GPUBuffer holding a tensor in `dtype` (float16: packed halves, ceil(n/2) words). */
function tensorBuffer(device: GPUDevice, data: Float32Array, dtype: DType): GPUBuffer {
  const bytes = dtype === 'float16' ? Math.ceil(data.length / 2) * 4 : data.length * 4;
  const buffer = device.createBuffer({ size: Math.max(4, bytes), usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST });
  if (dtype === 'float16') {
    const halves = new Uint16Array(bytes / 2);
    halves.set(toFloat16Bits(data));
    device.queue.writeBuffer(buffer, 0, halves);
  } else {
    device.queue.writeBuffer(buffer, 0, data as Float32Array<ArrayBuffer>);
  }
  return buffer;
}

function decode(bytes: ArrayBuffer, n: number, dtype: DType): Float32Array {
  return dtype === 'float16' ? fromFloat16Bits(new Uint16Array(bytes, 0, n)) : new Float32Array(bytes, 0, n);
}

const tensorBytes = (n: number, dtype: DType) => (dtype === 'float16' ? Math.ceil(n / 2) * 4 : n * 4);

describe('encode API on caller buffers', () => {
  it.each(KINDS.flatMap((kind) => DTYPES.map((dtype) => [kind, dtype] as const)))('%s %s: encodeForward and encodeBackward in one encoder', async (kind, dtype) => {
    const device = await testDevice();
    const c = caseOf(kind, dtype, kind === 'group' ? 'silu' : 'none', dtype === 'float16' ? 1 : 0);
    const layer = makeLayer(device, c);
    const { gamma, beta } = params(c, 1300);
    setParams(layer, c, gamma, beta);
    const x = familyData(c, 1301);
    const dy = stored(randn(x.length, 1302), dtype);
    const n = x.length;
    const [xBuf, dyBuf, yBuf, dxBuf] = [x, dy, new Float32Array(n), new Float32Array(n)].map((d) => tensorBuffer(device, d, dtype));
    const encoder = device.createCommandEncoder();
    layer.encodeForward(encoder, { x: xBuf, y: yBuf, shape: c.shape, training: true });
    layer.encodeBackward(encoder, { x: xBuf, dy: dyBuf, dx: dxBuf, shape: c.shape });
    const P = paramCount(c);
    const regions = [
      { buffer: yBuf, size: tensorBytes(n, dtype) },
      { buffer: dxBuf, size: tensorBytes(n, dtype) },
      regionOf(layer.gammaGrad, P * 4),
      ...(c.kind === 'rms' ? [] : [regionOf((layer as LayerNorm).betaGrad, P * 4)]),
    ];
    const [yOut, dxOut, dgamma, dbeta] = await readBuffers(device, regions, encoder);
    const what = describeCase(c);
    const ref = referenceForward(c, x, gamma, beta);
    expectClose(decode(yOut, n, dtype), ref.y, yTol(c, x, ref.v, ref.stats, ref.gamma, ref.beta), `y of ${what}`);
    const refG = referenceBackwardOf(c, x, dy, ref.v, ref.gamma);
    const tol = gradTols(c, x, dy, ref.v, ref.stats, ref.gamma, ref.beta);
    expectClose(decode(dxOut, n, dtype), refG.dx, tol.dx, `dx of ${what}`);
    expectClose(new Float32Array(dgamma), refG.dgamma, tol.dgamma, `gammaGrad of ${what}`);
    if (dbeta) expectClose(new Float32Array(dbeta), refG.dbeta!, tol.dbeta, `betaGrad of ${what}`);
    layer.destroy();
    for (const b of [xBuf, dyBuf, yBuf, dxBuf]) b.destroy();
  });

  it('tensors as ranges { buffer, offset, size } of an input and an output arena; the bytes around them untouched', async () => {
    const device = await testDevice();
    for (const c of [caseOf('group', 'float32', 'relu', 1), caseOf('layer', 'float32', 'none'), caseOf('rms', 'float32', 'silu', 1), caseOf('instance', 'float32', 'none')]) {
      const layer = makeLayer(device, c);
      const { gamma, beta } = params(c, 1400);
      setParams(layer, c, gamma, beta);
      const n = sizeOf(c.shape);
      const arenas = tensorArenas(device, n);
      const { inputs, x, dy, y, dx } = arenas;
      const xData = familyData(c, 1401);
      const dyData = randn(n, 1402);
      device.queue.writeBuffer(inputs, x.offset, xData as Float32Array<ArrayBuffer>);
      device.queue.writeBuffer(inputs, dy.offset, dyData);
      const encoder = device.createCommandEncoder();
      layer.encodeForward(encoder, { x, y, shape: c.shape, training: true });
      layer.encodeBackward(encoder, { x, dy, dx, shape: c.shape });
      const { slice, changedOutside } = await arenas.read(encoder);
      const what = describeCase(c);
      const ref = referenceForward(c, xData, gamma, beta);
      expectClose(slice(y), ref.y, yTol(c, xData, ref.v, ref.stats, ref.gamma, ref.beta), `y of ${what}`);
      const refG = referenceBackwardOf(c, xData, dyData, ref.v, ref.gamma);
      expectClose(slice(dx), refG.dx, gradTols(c, xData, dyData, ref.v, ref.stats, ref.gamma, ref.beta).dx, `dx of ${what}`);
      for (const changed of changedOutside) expect(changed, `${what}: words outside the tensors that changed`).toEqual([]);
      layer.destroy();
      arenas.destroy();
    }
  });

  it('caller-owned γ, β and gradients (options.buffers) are used as they are', async () => {
    const device = await testDevice();
    const align = device.limits.minStorageBufferOffsetAlignment;
    const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
    const paramsArena = device.createBuffer({ size: 2 * align, usage });
    const gradsArena = device.createBuffer({ size: 2 * align, usage });
    const c = caseOf('group', 'float32', 'none');
    const C = paramCount(c);
    const { gamma, beta } = params(c, 1450);
    device.queue.writeBuffer(paramsArena, 0, gamma as Float32Array<ArrayBuffer>);
    device.queue.writeBuffer(paramsArena, align, beta as Float32Array<ArrayBuffer>);
    const at = (buffer: GPUBuffer, k: number) => ({ buffer, offset: k * align, size: C * 4 });
    const layer = makeLayer(device, c, { buffers: { gamma: at(paramsArena, 0), beta: at(paramsArena, 1), gammaGrad: at(gradsArena, 0), betaGrad: at(gradsArena, 1) } });
    const x = familyData(c, 1451);
    const dy = randn(x.length, 1452);
    const y = await layer.forward(x, c.shape);
    const ref = referenceForward(c, x, gamma, beta);
    expectClose(y, ref.y, yTol(c, x, ref.v, ref.stats, ref.gamma, ref.beta), 'y with the caller γ and β');
    const g = await layer.backward(dy);
    const [dgamma, dbeta] = await readBuffers(device, [{ buffer: gradsArena, size: C * 4 }, { buffer: gradsArena, offset: align, size: C * 4 }]);
    expect(Array.from(new Float32Array(dgamma))).toEqual(Array.from(g.dgamma!));
    expect(Array.from(new Float32Array(dbeta))).toEqual(Array.from(g.dbeta!));
    layer.destroy();
    const [after] = await readBuffers(device, [{ buffer: paramsArena, size: C * 4 }]);
    expect(Array.from(new Float32Array(after)), 'the caller buffers outlive the layer').toEqual(Array.from(gamma));
    paramsArena.destroy();
    gradsArena.destroy();
  });
});

/** A STORAGE buffer holding float32 `data`. */
function f32Buffer(device: GPUDevice, data: ArrayLike<number>): GPUBuffer {
  return tensorBuffer(device, Float32Array.from(data), 'float32');
}

describe('function forms on buffers that are all the caller\'s', () => {
  it.each(KINDS.flatMap((kind) => DTYPES.map((dtype) => [kind, dtype] as const)))('%s %s: forward and backward', async (kind, dtype) => {
    const device = await testDevice();
    const c = caseOf(kind, dtype, kind === 'layer' ? 'relu' : kind === 'rms' ? 'silu' : 'none', dtype === 'float16' ? 1 : 0);
    const { gamma, beta } = params(c, 1500);
    const x = familyData(c, 1501);
    const dy = stored(randn(x.length, 1502), dtype);
    const n = x.length;
    const P = paramCount(c);
    const groups = partition(c).groups;
    const [xBuf, dyBuf, yBuf, dxBuf] = [x, dy, new Float32Array(n), new Float32Array(n)].map((d) => tensorBuffer(device, d, dtype));
    const gammaBuf = f32Buffer(device, gamma);
    const betaBuf = f32Buffer(device, beta);
    const dgammaBuf = f32Buffer(device, new Float32Array(P));
    const dbetaBuf = f32Buffer(device, new Float32Array(P));
    const saved = device.createBuffer({ size: groups * NORM_SAVED_BYTES_PER_GROUP, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC });
    expect(NORM_SAVED_BYTES_PER_GROUP).toBe(16);
    const common = { shape: c.shape, saved, activation: c.activation, dtype, gamma: gammaBuf } as const;
    const fwd = { x: xBuf, y: yBuf, eps: c.eps, ...common };
    const bwd = { x: xBuf, dy: dyBuf, dx: dxBuf, dgamma: dgammaBuf, ...common };
    const encoder = device.createCommandEncoder();
    switch (kind) {
      case 'layer':
        encodeLayerNormForward(device, encoder, { ...fwd, beta: betaBuf, normalizedShape: c.normalizedShape! });
        encodeLayerNormBackward(device, encoder, { ...bwd, beta: betaBuf, dbeta: dbetaBuf, normalizedShape: c.normalizedShape! });
        break;
      case 'rms':
        encodeRMSNormForward(device, encoder, { ...fwd, normalizedShape: c.normalizedShape! });
        encodeRMSNormBackward(device, encoder, { ...bwd, normalizedShape: c.normalizedShape! });
        break;
      case 'group':
        encodeGroupNormForward(device, encoder, { ...fwd, beta: betaBuf, numGroups: c.numGroups!, layout: c.layout });
        encodeGroupNormBackward(device, encoder, { ...bwd, beta: betaBuf, dbeta: dbetaBuf, numGroups: c.numGroups!, layout: c.layout });
        break;
      case 'instance':
        encodeInstanceNormForward(device, encoder, { ...fwd, beta: betaBuf, layout: c.layout });
        encodeInstanceNormBackward(device, encoder, { ...bwd, beta: betaBuf, dbeta: dbetaBuf, layout: c.layout });
        break;
    }
    const [yOut, dxOut, dgamma, dbeta] = await readBuffers(
      device,
      [
        { buffer: yBuf, size: tensorBytes(n, dtype) },
        { buffer: dxBuf, size: tensorBytes(n, dtype) },
        { buffer: dgammaBuf, size: P * 4 },
        { buffer: dbetaBuf, size: P * 4 },
      ],
      encoder,
    );
    const what = `function form of ${describeCase(c)}`;
    const ref = referenceForward(c, x, gamma, beta);
    expectClose(decode(yOut, n, dtype), ref.y, yTol(c, x, ref.v, ref.stats, ref.gamma, ref.beta), `y of ${what}`);
    const refG = referenceBackwardOf(c, x, dy, ref.v, ref.gamma);
    const tol = gradTols(c, x, dy, ref.v, ref.stats, ref.gamma, ref.beta);
    expectClose(decode(dxOut, n, dtype), refG.dx, tol.dx, `dx of ${what}`);
    expectClose(new Float32Array(dgamma), refG.dgamma, tol.dgamma, `dgamma of ${what}`);
    if (kind !== 'rms') expectClose(new Float32Array(dbeta), refG.dbeta!, tol.dbeta, `dbeta of ${what}`);
    for (const b of [xBuf, dyBuf, yBuf, dxBuf, gammaBuf, betaBuf, dgammaBuf, dbetaBuf, saved]) b.destroy();
  });

  it('γ and β left out: 1 and 0', async () => {
    const device = await testDevice();
    const c: Case = { ...caseOf('group', 'float32', 'none'), affine: false };
    const x = familyData(c, 1550);
    const dy = randn(x.length, 1551);
    const n = x.length;
    const [xBuf, dyBuf, yBuf, dxBuf] = [x, dy, new Float32Array(n), new Float32Array(n)].map((d) => f32Buffer(device, d));
    const saved = device.createBuffer({ size: partition(c).groups * NORM_SAVED_BYTES_PER_GROUP, usage: GPUBufferUsage.STORAGE });
    const encoder = device.createCommandEncoder();
    encodeGroupNormForward(device, encoder, { x: xBuf, y: yBuf, shape: c.shape, numGroups: c.numGroups!, layout: c.layout, saved });
    encodeGroupNormBackward(device, encoder, { x: xBuf, dy: dyBuf, dx: dxBuf, shape: c.shape, numGroups: c.numGroups!, layout: c.layout, saved });
    const [yOut, dxOut] = await readBuffers(device, [{ buffer: yBuf, size: n * 4 }, { buffer: dxBuf, size: n * 4 }], encoder);
    const ref = referenceForward(c, x, [], []);
    expectClose(new Float32Array(yOut), ref.y, yTol(c, x, ref.v, ref.stats, ref.gamma, ref.beta), 'y');
    const refG = referenceBackwardOf(c, x, dy, ref.v, ref.gamma);
    expectClose(new Float32Array(dxOut), refG.dx, gradTols(c, x, dy, ref.v, ref.stats, ref.gamma, ref.beta).dx, 'dx');
    for (const b of [xBuf, dyBuf, yBuf, dxBuf, saved]) b.destroy();
  });

  it("InstanceNorm's functions update the caller's running statistics in training and normalize with them at inference", async () => {
    const device = await testDevice();
    const layout: Layout = 'NCL';
    const shape = [3, 4, 6];
    const C = 4;
    const n = sizeOf(shape);
    const view = channelView(layout, shape);
    const x = randn(n, 1560, 2, 3);
    const dy = randn(n, 1561);
    const gamma = randn(C, 1562, 1, 0.5);
    const beta = randn(C, 1563);
    const rm0 = randn(C, 1564);
    const rv0 = Float32Array.from(randn(C, 1565), (z) => 0.5 + Math.abs(z));
    const [xBuf, dyBuf, yBuf, dxBuf, yTestBuf, dxTestBuf] = [x, dy, new Float32Array(n), new Float32Array(n), new Float32Array(n), new Float32Array(n)].map((d) => f32Buffer(device, d));
    const [gammaBuf, betaBuf, rmBuf, rvBuf] = [gamma, beta, rm0, rv0].map((d) => f32Buffer(device, d));
    const saved = device.createBuffer({ size: 3 * C * NORM_SAVED_BYTES_PER_GROUP, usage: GPUBufferUsage.STORAGE });
    const savedTest = device.createBuffer({ size: 3 * C * NORM_SAVED_BYTES_PER_GROUP, usage: GPUBufferUsage.STORAGE });
    const running = { runningMean: rmBuf, runningVar: rvBuf, momentum: 0.25 };
    const encoder = device.createCommandEncoder();
    encodeInstanceNormForward(device, encoder, { x: xBuf, y: yBuf, shape, layout, gamma: gammaBuf, beta: betaBuf, saved, ...running, training: true });
    encodeInstanceNormForward(device, encoder, { x: xBuf, y: yTestBuf, shape, layout, gamma: gammaBuf, beta: betaBuf, saved: savedTest, ...running, training: false });
    encodeInstanceNormBackward(device, encoder, { x: xBuf, dy: dyBuf, dx: dxTestBuf, shape, layout, gamma: gammaBuf, beta: betaBuf, saved: savedTest, runningMean: rmBuf, runningVar: rvBuf, training: false } as never);
    const out = await readBuffers(device, [yBuf, rmBuf, rvBuf, yTestBuf, dxTestBuf].map((b) => ({ buffer: b, size: b.size })), encoder);
    const [y, rm, rv, yTest, dxTest] = out.map((b) => new Float32Array(b));
    const batch = referenceInstanceNorm(x, shape, { layout, gamma, beta, eps: 1e-5 });
    expectClose(y, batch.y, yTol({ kind: 'instance', shape, layout, eps: 1e-5, activation: 'none', dtype: 'float32', affine: true }, x, batch.y, batch, gamma, beta), 'training y');
    const expected = referenceInstanceNormRunningStats({ runningMean: rm0, runningVar: rv0 }, batch, 0.25);
    expectClose(rm, expected.runningMean, { rtol: STATS_TOL.rtol, atol: 1e-6 * 5 }, 'running mean');
    expectClose(rv, expected.runningVar, { rtol: 1e-5, atol: 1e-6 * 9 }, 'running var');
    const fixed = { mean: rm, variance: rv, gamma, eps: 1e-5 };
    const refTest = referenceInference(x, view, { runningMean: rm, runningVar: rv, gamma, beta, eps: 1e-5 });
    expectClose(yTest, refTest, yTolerance(x, view, fixed), 'inference y');
    const refDx = referenceBackward(x, dy, view, { ...fixed, batchStats: false }).dx;
    expectClose(dxTest, refDx, dxTolerance(x, dy, view, fixed), 'inference dx');
    for (const b of [xBuf, dyBuf, yBuf, dxBuf, yTestBuf, dxTestBuf, gammaBuf, betaBuf, rmBuf, rvBuf, saved, savedTest]) b.destroy();
  });
});

describe('InstanceNorm with trackRunningStats', () => {
  it.each([
    ['NCL', [3, 4, 6], 'float32', 'none', 0.1],
    ['NHWC', [2, 3, 4, 3], 'float32', 'relu', 0.3],
    ['NCDHW', [2, 3, 2, 3, 2], 'float16', 'silu', 1],
    ['NDHWC', [3, 2, 2, 3, 5], 'float32', 'none', 0],
    ['NCHW', [4, 5, 3, 3], 'float16', 'none', 0.5],
  ] as [Layout, number[], DType, Activation, number][])('%s %j %s %s momentum %d: training updates the running statistics; inference normalizes with them, forward and backward', async (layout, shape, dtype, activation, momentum) => {
    const device = await testDevice();
    const c: Case = { kind: 'instance', shape, layout, eps: 1e-5, activation, dtype, affine: true };
    const C = paramCount(c);
    const view = channelView(layout, shape);
    const inorm = new InstanceNorm(device, { numFeatures: C, layout, affine: true, trackRunningStats: true, momentum, activation, dtype });
    expect(inorm.trackRunningStats).toBe(true);
    const { gamma, beta } = params(c, 1600);
    inorm.setState({ gamma, beta });
    let state = runningOf(await inorm.getState());
    expect(Array.from(state.runningMean), 'initial running mean').toEqual(new Array(C).fill(0));
    expect(Array.from(state.runningVar), 'initial running var').toEqual(new Array(C).fill(1));
    for (let step = 0; step < 3; step++) {
      const before = state;
      const x = familyData(c, 1610 + step);
      const y = await inorm.forward(x, shape, { training: true });
      const ref = referenceForward(c, x, gamma, beta);
      expectClose(y, ref.y, yTol(c, x, ref.v, ref.stats, ref.gamma, ref.beta), `training y, step ${step}`);
      const expected = referenceInstanceNormRunningStats(before, referenceInstanceNorm(x, shape, { layout, eps: 1e-5 }), momentum);
      state = runningOf(await inorm.getState());
      expectClose(state.runningMean, expected.runningMean, { rtol: STATS_TOL.rtol, atol: 1e-5 }, `running mean after step ${step}`);
      expectClose(state.runningVar, expected.runningVar, { rtol: 1e-5, atol: 1e-5 }, `running var after step ${step}`);
    }
    // Inference with the running statistics: y = act(γ·(x − rm)/sqrt(rv + eps) + β); backward through
    // fixed statistics, dx = γ·act'(v)·dy/sqrt(rv + eps), dγ = Σ act'(v)·dy·x̂, dβ = Σ act'(v)·dy.
    const x = familyData(c, 1620);
    const dy = stored(randn(x.length, 1621), dtype);
    const { runningMean: rm, runningVar: rv } = state;
    const yTest = await inorm.forward(x, shape, { training: false });
    const v = referenceInference(x, view, { runningMean: rm, runningVar: rv, gamma, beta, eps: 1e-5 });
    // The same tolerances as with batch statistics, each (sample, channel) taking the running ones.
    const fixed = runningGroupStats(c, rm, rv);
    expectClose(yTest, v.map((t) => activate(activation, t)), yTol(c, x, v, fixed, gamma, beta), 'inference y');
    expect((await inorm.getState()).runningMean, 'inference leaves the running statistics').toEqual(rm);
    const g = await inorm.backward(dy);
    const gated = Float64Array.from(dy, (d, e) => d * activateGrad(activation, v[e]));
    const refG = referenceBackward(x, gated, view, { mean: rm, variance: rv, gamma, eps: 1e-5, batchStats: false });
    for (let e = 0; e < x.length; e++) {
      const ch = Math.floor(e / view.inner) % C;
      const direct = (gamma[ch] * gated[e]) / Math.sqrt(rv[ch] + 1e-5);
      expect(Math.abs(refG.dx[e] - direct), 'the reference agrees: dx = γ·dy/sqrt(var + eps)').toBeLessThan(1e-9 * (1 + Math.abs(direct)));
    }
    const tol = gradTols(c, x, dy, v, fixed, gamma, beta);
    expectClose(g.dx, refG.dx, tol.dx, 'inference dx');
    expectClose(g.dgamma!, refG.dgamma, tol.dgamma, 'inference dgamma');
    expectClose(g.dbeta!, refG.dbeta, tol.dbeta, 'inference dbeta');
    expect((await inorm.getState()).runningVar, 'backward leaves the running statistics').toEqual(rv);
    inorm.destroy();
  });

  it('inference before any training normalizes with the initial statistics (mean 0, variance 1)', async () => {
    const device = await testDevice();
    const inorm = new InstanceNorm(device, { numFeatures: 2, layout: 'NCL', trackRunningStats: true });
    const x = randn(2 * 2 * 5, 1650, 3, 2);
    const y = await inorm.forward(x, [2, 2, 5], { training: false });
    expectClose(y, Float64Array.from(x, (v) => v / Math.sqrt(1 + 1e-5)), { rtol: 1e-6, atol: 1e-7 }, 'y = x / sqrt(1 + eps)');
    inorm.destroy();
  });

  it('without trackRunningStats, inference normalizes with the batch statistics and has no running update', async () => {
    const device = await testDevice();
    const c: Case = { kind: 'instance', shape: [2, 3, 5], layout: 'NCL', eps: 1e-5, activation: 'none', dtype: 'float32', affine: false };
    const inorm = makeLayer(device, c) as InstanceNorm;
    const x = familyData(c, 1660);
    const y = await inorm.forward(x, c.shape, { training: false });
    const ref = referenceForward(c, x, [], []);
    expectClose(y, ref.y, yTol(c, x, ref.v, ref.stats, ref.gamma, ref.beta), 'y');
    inorm.destroy();
  });
});

describe('GroupNorm on every layout, rank 2 to 5', () => {
  const SHAPES: Record<Layout, number[]> = {
    NC: [5, 6],
    NCL: [3, 6, 7],
    NCHW: [2, 6, 3, 5],
    NCDHW: [2, 6, 2, 3, 2],
    NLC: [3, 7, 6],
    NHWC: [2, 3, 5, 6],
    NDHWC: [2, 2, 3, 2, 6],
  };
  it.each(LAYOUTS.flatMap((layout) => [1, 2, 3, 6].map((G) => [layout, G] as const)))('%s with %i groups of 6 channels', async (layout, G) => {
    const device = await testDevice();
    const c: Case = { kind: 'group', shape: SHAPES[layout], numGroups: G, layout, eps: 1e-5, activation: G === 2 ? 'silu' : 'none', dtype: G === 3 ? 'float16' : 'float32', affine: true };
    await checkArrayApi(device, c, 1700 + G);
  });
});

describe('getState / setState', () => {
  it.each(KINDS)('%s: setState(getState()) into a fresh layer gives the same state and the same outputs', async (kind) => {
    const device = await testDevice();
    const c = caseOf(kind, 'float32', 'silu');
    const extra = kind === 'instance' ? { trackRunningStats: true, momentum: 0.2 } : {};
    const a = makeLayer(device, c, extra);
    const { gamma, beta } = params(c, 1800);
    setParams(a, c, gamma, beta);
    const x = familyData(c, 1801);
    await a.forward(x, c.shape); // trains the running statistics of InstanceNorm
    const state = (await a.getState()) as unknown as Record<string, Float32Array>;
    const names = { layer: ['gamma', 'beta'], rms: ['gamma'], group: ['gamma', 'beta'], instance: ['gamma', 'beta', 'runningMean', 'runningVar'] }[kind];
    expect(Object.keys(state).sort()).toEqual([...names].sort());
    expect(Array.from(state.gamma)).toEqual(Array.from(gamma));
    if (state.beta) expect(Array.from(state.beta)).toEqual(Array.from(beta));
    if (kind === 'instance') expect(Array.from(state.runningMean).some((v) => v !== 0), 'the running mean moved').toBe(true);
    const b = makeLayer(device, c, extra);
    (b as { setState(s: object): void }).setState(state);
    expect(await b.getState()).toEqual(state);
    const x2 = familyData(c, 1802);
    const training = kind !== 'instance';
    expect(Array.from(await b.forward(x2, c.shape, { training }))).toEqual(Array.from(await a.forward(x2, c.shape, { training })));
    // A partial state changes only what it names.
    (b as { setState(s: object): void }).setState({ gamma: new Float32Array(paramCount(c)).fill(2) });
    const partial = (await b.getState()) as unknown as Record<string, Float32Array>;
    expect(Array.from(partial.gamma)).toEqual(new Array(paramCount(c)).fill(2));
    for (const name of names.filter((k) => k !== 'gamma')) expect(partial[name], name).toEqual(state[name]);
    a.destroy();
    b.destroy();
  });
});

describe('getStats', () => {
  it('GroupNorm: mean and variance per (sample, group) at n·G + g, of the last forward pass', async () => {
    const device = await testDevice();
    const c: Case = { kind: 'group', shape: [3, 8, 5], numGroups: 4, layout: 'NCL', eps: 1e-5, activation: 'none', dtype: 'float32', affine: true };
    const gn = makeLayer(device, c) as GroupNorm;
    for (const seed of [1900, 1901]) {
      const x = familyData(c, seed);
      await gn.forward(x, c.shape);
      const ref = referenceForward(c, x, [], []);
      const stats = meanVarOf(await gn.getStats());
      expect(stats.mean.length).toBe(12);
      expectClose(stats.mean, ref.stats.mean, { rtol: 1e-6, atol: 1e-6 }, `mean, seed ${seed}`);
      expectClose(stats.variance, ref.stats.variance, { rtol: 1e-5, atol: 1e-7 }, `variance, seed ${seed}`);
    }
    gn.destroy();
  });

  it('RMSNorm: meanSquare per row', async () => {
    const device = await testDevice();
    const rms = new RMSNorm(device, { normalizedShape: [3, 5] });
    const x = randn(4 * 3 * 5, 1910, 1, 2);
    await rms.forward(x, [4, 3, 5]);
    const meanSquare = meanSquareOf(await rms.getStats());
    const expected = Array.from({ length: 4 }, (_, r) => x.subarray(r * 15, r * 15 + 15).reduce((s, v) => s + v * v, 0) / 15);
    expectClose(meanSquare, expected, { rtol: 1e-5, atol: 0 }, 'meanSquare');
    rms.destroy();
  });
});

describe('several passes in one encoder, and large tensors', () => {
  it('training steps on different shapes recorded into one encoder each see their own shape and statistics', async () => {
    const device = await testDevice();
    for (const base of [caseOf('group', 'float32', 'silu'), caseOf('layer', 'float32', 'relu')]) {
      const layer = makeLayer(device, base);
      const { gamma, beta } = params(base, 1950);
      setParams(layer, base, gamma, beta);
      const shapes = base.kind === 'group' ? [[2, 6, 3, 5], [5, 6, 7, 9], [1, 6, 2, 2], [2, 6, 3, 5]] : [[4, 6, 9], [40, 9], [1, 9], [4, 6, 9]];
      const encoder = device.createCommandEncoder();
      const passes = shapes.map((shape, k) => {
        const c = { ...base, shape };
        const x = familyData(c, 1960 + k);
        const dy = randn(x.length, 1970 + k);
        const n = x.length;
        const bufs = [x, dy, new Float32Array(n), new Float32Array(n)].map((d) => tensorBuffer(device, d, 'float32'));
        layer.encodeForward(encoder, { x: bufs[0], y: bufs[2], shape, training: true });
        layer.encodeBackward(encoder, { x: bufs[0], dy: bufs[1], dx: bufs[3], shape });
        return { c, x, dy, bufs };
      });
      const out = await readBuffers(device, passes.flatMap((p) => [p.bufs[2], p.bufs[3]].map((buffer) => ({ buffer, size: buffer.size }))), encoder);
      passes.forEach((p, k) => {
        const what = `pass ${k} of ${describeCase(p.c)}`;
        const ref = referenceForward(p.c, p.x, gamma, beta);
        expectClose(new Float32Array(out[2 * k]), ref.y, yTol(p.c, p.x, ref.v, ref.stats, ref.gamma, ref.beta), `y of ${what}`);
        const refG = referenceBackwardOf(p.c, p.x, p.dy, ref.v, ref.gamma);
        expectClose(new Float32Array(out[2 * k + 1]), refG.dx, gradTols(p.c, p.x, p.dy, ref.v, ref.stats, ref.gamma, ref.beta).dx, `dx of ${what}`);
        for (const b of p.bufs) b.destroy();
      });
      layer.destroy();
    }
  });

  it.each([
    ['LayerNorm rows of 9000 (more than a workgroup holds on chip)', { kind: 'layer', shape: [3, 9000], normalizedShape: [9000] }],
    ['LayerNorm rows of 4096', { kind: 'layer', shape: [4, 4096], normalizedShape: [4096], dtype: 'float16' }],
    ['RMSNorm rows of 20000', { kind: 'rms', shape: [2, 20000], normalizedShape: [20000], eps: 2 ** -23, activation: 'silu' }],
    ['GroupNorm groups of 16384, channels first', { kind: 'group', shape: [2, 8, 64, 64], numGroups: 2, layout: 'NCHW', activation: 'silu' }],
    ['GroupNorm groups of 16384, channels last', { kind: 'group', shape: [2, 64, 64, 8], numGroups: 2, layout: 'NHWC' }],
    ['InstanceNorm instances of 30000', { kind: 'instance', shape: [1, 3, 30000], layout: 'NCL', activation: 'relu' }],
  ] as [string, Partial<Case>][])('%s: forward and backward', async (_, partial) => {
    const device = await testDevice();
    const c: Case = { eps: 1e-5, activation: 'none', dtype: 'float32', affine: true, ...partial } as Case;
    await checkArrayApi(device, c, 1980);
  });

  // Dispatches beyond maxComputeWorkgroupsPerDimension run on a 2-D grid that the kernels fold
  // back (linear_workgroup). A real device needs 65,536+ workgroups for that, which SwiftShader takes
  // minutes over; here the test device reports a limit of 5 per dimension, so that every
  // dispatch of more than 5 workgroups -- rows, γ/β partials and finalize -- goes 2-D.
  it.each([
    ['LayerNorm over 3,000 rows of 3', { kind: 'layer', shape: [3000, 3], normalizedShape: [3] }],
    ['LayerNorm over 64 rows of 300', { kind: 'layer', shape: [64, 300], normalizedShape: [300] }],
    ['InstanceNorm over 2,400 instances, channels last', { kind: 'instance', shape: [400, 3, 6], layout: 'NLC' }],
    ['GroupNorm over 300 groups, channels first', { kind: 'group', shape: [100, 6, 5], layout: 'NCL', numGroups: 3 }],
  ] as [string, Partial<Case>][])('%s on a 2-D dispatch grid: forward and backward', async (_, partial) => {
    const device = await testDevice();
    const limits = new Proxy(device.limits, {
      get: (target, prop) => (prop === 'maxComputeWorkgroupsPerDimension' ? 5 : Reflect.get(target, prop, target)),
    });
    const narrow = new Proxy(device, {
      get(target, prop) {
        if (prop === 'limits') return limits;
        const value = Reflect.get(target, prop, target);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    const c: Case = { eps: 1e-5, activation: 'none', dtype: 'float32', affine: true, ...partial } as Case;
    await checkArrayApi(narrow, c, 1990);
  });
});
