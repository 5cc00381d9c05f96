/**
 * Every option of every constructor and every argument of the function forms is checked: a bad
 * value is refused with an error of the right type whose message names the argument, the
 * expected value and what it got, and the refused call changes nothing. Buffer aliasing that
 * WebGPU or the math forbids is refused up front; what both allow (ranges of one GPUBuffer side
 * by side) still runs.
 *
 * The cases under "layer methods (after wiring)" need the layer files to call the helpers of
 * src/core/validate.ts and the args files; they fail until those calls are made.
 */
import { describe, expect, it } from 'vitest';
import { BatchNorm, type BatchNormOptions } from '../../../src/batchnorm/layer.js';
import { GroupNorm, InstanceNorm, LayerNorm, RMSNorm } from '../../../src/normalization/layer.js';
import { FeatureScaler, SCALING_STATE_BYTES_PER_FEATURE } from '../../../src/feature-scaling/layer.js';
import { encodeBatchNormBackward, encodeBatchNormForward, type BatchNormBuffers } from '../../../src/batchnorm/functions.js';
import { encodeFeatureScalingAdapt, encodeFeatureScalingInverse, encodeFeatureScalingTransform } from '../../../src/feature-scaling/functions.js';
import { releaseFunctionCaches } from '../../../src/core/function-forms.js';
import {
  encodeInstanceNormBackward,
  encodeInstanceNormForward,
  encodeGroupNormBackward,
  encodeGroupNormForward,
  encodeLayerNormBackward,
  encodeLayerNormForward,
  encodeRMSNormBackward,
} from '../../../src/normalization/functions.js';
import { getDevice } from '../../../src/core/device.js';
import { readBuffers, type TensorBuffer } from '../../../src/core/gpu.js';
import { expectError, randn, type ErrorClass } from '../../helpers/data.js';
import { runningOf } from '../../helpers/family.js';
import { batchNormBuffers, countingDevice, storageBuffer, testDevice } from '../../helpers/gpu.js';


/** Like expectError for a promise. */
async function expectRejection(promise: Promise<unknown>, type: ErrorClass, message: string | RegExp): Promise<void> {
  const error = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(error, 'it rejects').toBeInstanceOf(type);
  if (typeof message === 'string') expect((error as Error).message).toBe(message);
  else expect((error as Error).message).toMatch(message);
}

const WEBGPU_ALIAS = 'WebGPU does not let one dispatch write a buffer it also reads, even in disjoint ranges';
const LAYOUTS = "'NC', 'NCL', 'NLC', 'NCHW', 'NHWC', 'NCDHW', 'NDHWC'";

/** A STORAGE buffer of `bytes` zero bytes. */
function arena(device: GPUDevice, bytes: number): GPUBuffer {
  return storageBuffer(device, new Float32Array(bytes / 4));
}

/** Every state buffer of the batch-norm functions for C channels, each its own GPUBuffer. */
function destroyAll(...buffers: (TensorBuffer | BatchNormBuffers | undefined)[]): void {
  const seen = new Set<GPUBuffer>();
  for (const b of buffers) {
    if (!b) continue;
    const list = 'gammaGrad' in b ? Object.values(b) : [b];
    for (const t of list as TensorBuffer[]) seen.add('buffer' in t ? t.buffer : t);
  }
  for (const b of seen) b.destroy();
}

describe('BatchNorm options: booleans are booleans, the label a string, buffers an object', () => {
  it.each<[string, Record<string, unknown>, ErrorClass, string]>([
    ["trackRunningStats: 'false' (it was taken as true)", { trackRunningStats: 'false' }, TypeError, "options.trackRunningStats must be a boolean; got the string 'false'"],
    ["affine: 'false'", { affine: 'false' }, TypeError, "options.affine must be a boolean; got the string 'false'"],
    ['affine: null', { affine: null }, TypeError, 'options.affine must be a boolean; got null'],
    ["center: 'no'", { center: 'no' }, TypeError, "options.center must be a boolean; got the string 'no'"],
    ['scale: 0', { scale: 0 }, TypeError, 'options.scale must be a boolean; got 0'],
    ['trackRunningStats: 1', { trackRunningStats: 1 }, TypeError, 'options.trackRunningStats must be a boolean; got 1'],
    ['label: 42', { label: 42 }, TypeError, 'options.label must be a string; got 42'],
    ['buffers: null', { buffers: null }, TypeError, 'options.buffers must be an object of GPUBuffers (or ranges) by state name; got null'],
  ])('%s', async (_, bad, type, message) => {
    const { device, live } = countingDevice(await testDevice());
    expectError(() => new BatchNorm(device, { numFeatures: 2, layout: 'NC', ...bad } as unknown as BatchNormOptions), type, message);
    expect(live.size, 'the refused constructor created no buffer').toBe(0);
  });

  it('caller buffers: runningMean and runningVar in one range are refused; side by side in one GPUBuffer they train', async () => {
    const device = await testDevice();
    const align = device.limits.minStorageBufferOffsetAlignment;
    const shared = arena(device, 2 * align);
    expectError(
      () => new BatchNorm(device, { numFeatures: 2, layout: 'NC', buffers: { runningMean: shared, runningVar: shared } }),
      TypeError,
      `options.buffers.runningMean must not overlap options.buffers.runningVar, which the same pass reads or writes; got bytes [0, 8) of the GPUBuffer that holds options.buffers.runningVar at bytes [0, 8)`,
    );
    expectError(
      () => new BatchNorm(device, { numFeatures: 2, layout: 'NC', buffers: { gamma: shared, numBatchesTracked: { buffer: shared, offset: align } } }),
      TypeError,
      `options.buffers.numBatchesTracked must be in a different GPUBuffer from options.buffers.gamma: ${WEBGPU_ALIAS}`,
    );
    device.queue.writeBuffer(shared, align, Float32Array.of(1, 1));
    const bn = new BatchNorm(device, { numFeatures: 2, layout: 'NC', buffers: { runningMean: { buffer: shared, offset: 0, size: 8 }, runningVar: { buffer: shared, offset: align, size: 8 } } });
    const plain = new BatchNorm(device, { numFeatures: 2, layout: 'NC' });
    const x = randn(8, 4101);
    expect(await bn.forward(x, [4, 2], { training: true })).toEqual(await plain.forward(x, [4, 2], { training: true }));
    const [a, b] = [await bn.getState(), await plain.getState()];
    expect(a).toEqual(b);
    bn.destroy();
    plain.destroy();
    shared.destroy();
  });
});

describe('family options: null is no default', () => {
  it.each<[string, () => unknown, ErrorClass, string]>([
    [
      'InstanceNorm momentum: null (it became 0.1)',
      () => InstanceNorm,
      RangeError,
      "options.momentum must be a number in [0, 1] (InstanceNorm has no cumulative average: null is BatchNorm's); got null",
    ],
  ])('%s', async (_, __, type, message) => {
    const { device, live } = countingDevice(await testDevice());
    expectError(() => new InstanceNorm(device, { numFeatures: 2, trackRunningStats: true, momentum: null as never }), type, message);
    expect(live.size, 'the refused constructor created no buffer').toBe(0);
  });

  it.each<[string, (device: GPUDevice) => unknown, ErrorClass, string | RegExp]>([
    ['LayerNorm eps: null', (d) => new LayerNorm(d, { normalizedShape: 4, eps: null as never }), RangeError, 'options.eps must be a finite number > 0; got null'],
    ['GroupNorm layout: null', (d) => new GroupNorm(d, { numGroups: 1, numChannels: 2, layout: null as never }), TypeError, `options.layout must be one of ${LAYOUTS}; got null`],
    ['InstanceNorm layout: null', (d) => new InstanceNorm(d, { numFeatures: 2, layout: null as never }), TypeError, `options.layout must be one of ${LAYOUTS}; got null`],
    ['LayerNorm dtype: null', (d) => new LayerNorm(d, { normalizedShape: 4, dtype: null as never }), TypeError, "options.dtype must be 'float32' or 'float16'; got null"],
    ['RMSNorm activation: null', (d) => new RMSNorm(d, { normalizedShape: 4, activation: null as never }), TypeError, "options.activation must be 'none', 'relu' or 'silu'; got null"],
    [
      'InstanceNorm nonFiniteBatches: null',
      (d) => new InstanceNorm(d, { numFeatures: 2, nonFiniteBatches: null as never }),
      TypeError,
      "options.nonFiniteBatches must be 'skip' or 'update'; got null",
    ],
    ['GroupNorm label: null', (d) => new GroupNorm(d, { numGroups: 1, numChannels: 2, label: null as never }), TypeError, 'options.label must be a string; got null'],
    ['LayerNorm buffers: null', (d) => new LayerNorm(d, { normalizedShape: 4, buffers: null as never }), TypeError, 'options.buffers must be an object of GPUBuffers (or ranges) by name; got null'],
  ])('%s', async (_, create, type, message) => {
    const { device, live } = countingDevice(await testDevice());
    expectError(() => create(device), type, message);
    expect(live.size, 'the refused constructor created no buffer').toBe(0);
  });
});

describe('batch-norm function forms', () => {
  const shape = [4, 2];
  const options = { layout: 'NC' as const };

  it('the device, the encoder and the args object come first, named', async () => {
    const device = await testDevice();
    const buffers = batchNormBuffers(device, 2);
    const [x, y] = [arena(device, 32), arena(device, 32)];
    const encoder = device.createCommandEncoder();
    const args = { x, y, shape, training: true, buffers, options };
    // It used to say "Invalid value used as weak map key", and give a TypeError from inside for the encoder.
    expectError(() => encodeBatchNormForward(undefined as never, encoder, args), TypeError, 'device must be a GPUDevice; got undefined');
    expectError(() => encodeBatchNormForward(device, undefined as never, args), TypeError, 'encoder must be a GPUCommandEncoder (device.createCommandEncoder()); got undefined');
    expectError(
      () => encodeBatchNormForward(device, encoder, undefined as never),
      TypeError,
      'args must be an object { x, y, shape, training, buffers, options }; got undefined',
    );
    // An option beside args.options, and a buffer beside args.buffers, used to be ignored.
    expectError(
      () => encodeBatchNormForward(device, encoder, { ...args, momentum: 0.5 } as never),
      TypeError,
      'args.momentum is not an argument of encodeBatchNormForward (an option: args.options.momentum); expected one of x, y, shape, training, buffers, options',
    );
    expectError(
      () => encodeBatchNormBackward(device, encoder, { x, dy: x, dx: y, shape, buffers, options, training: true } as never),
      TypeError,
      'args.training is not an argument of encodeBatchNormBackward (the backward pass follows the training flag of its forward pass); expected one of x, dy, dx, shape, buffers, options',
    );
    expectError(
      () => encodeBatchNormForward(device, encoder, { ...args, buffers: { ...buffers, nonFinite: x } as never }),
      TypeError,
      'args.buffers.nonFinite is not a state buffer of the batch-norm functions (kept by the functions per args.buffers.saved); expected one of gamma, beta, runningMean, runningVar, numBatchesTracked, gammaGrad, betaGrad, saved',
    );
    expectError(
      () => encodeBatchNormForward(device, encoder, { ...args, options: { layout: 'NC', affine: 'false' as never } }),
      TypeError,
      "args.options.affine must be a boolean; got the string 'false'",
    );
    // Nothing was recorded: a backward pass on this saved still needs its forward pass.
    expect(() => encodeBatchNormBackward(device, encoder, { x, dy: x, dx: y, shape, buffers, options })).toThrow(/encodeBackward needs a forward pass first/);
    encoder.finish();
    destroyAll(buffers, x, y);
    releaseFunctionCaches(device);
  });

  it('runningMean === runningVar is refused and the refused call writes nothing; side by side in one GPUBuffer they run as separate buffers do', async () => {
    const device = await testDevice();
    const buffers = batchNormBuffers(device, 2);
    const [x, y] = [storageBuffer(device, randn(8, 4102)), arena(device, 32)];
    const encoder = device.createCommandEncoder();
    expectError(
      () => encodeBatchNormForward(device, encoder, { x, y, shape, training: true, buffers: { ...buffers, runningVar: buffers.runningMean }, options }),
      TypeError,
      'args.buffers.runningMean must not overlap args.buffers.runningVar, which the same pass reads or writes; got bytes [0, 8) of the GPUBuffer that holds args.buffers.runningVar at bytes [0, 8)',
    );
    const [mean, count] = await readBuffers(device, [{ buffer: buffers.runningMean as GPUBuffer, size: 8 }, { buffer: buffers.numBatchesTracked as GPUBuffer, size: 4 }], encoder);
    expect(Array.from(new Float32Array(mean))).toEqual([0, 0]);
    expect(new Uint32Array(count)[0]).toBe(0);
    destroyAll(buffers, x, y);
    // Side by side in one GPUBuffer they run, as separate buffers do (WebGPU lets one dispatch write two ranges of a buffer).
    const align = device.limits.minStorageBufferOffsetAlignment;
    const separate = batchNormBuffers(device, 2);
    const stats = arena(device, 2 * align);
    const grads = arena(device, 2 * align);
    device.queue.writeBuffer(stats, align, Float32Array.of(1, 1));
    const shared = {
      ...batchNormBuffers(device, 2),
      runningMean: { buffer: stats, offset: 0, size: 8 },
      runningVar: { buffer: stats, offset: align, size: 8 },
      gammaGrad: { buffer: grads, offset: 0, size: 8 },
      betaGrad: { buffer: grads, offset: align, size: 8 },
    };
    const [x2, dy] = [storageBuffer(device, randn(8, 4104, 2, 3)), storageBuffer(device, randn(8, 4105))];
    const outs = [0, 1, 2, 3].map(() => arena(device, 32));
    const encoder2 = device.createCommandEncoder();
    [separate, shared].forEach((b, k) => {
      encodeBatchNormForward(device, encoder2, { x: x2, y: outs[2 * k], shape, training: true, buffers: b, options });
      encodeBatchNormBackward(device, encoder2, { x: x2, dy, dx: outs[2 * k + 1], shape, buffers: b, options });
    });
    const regions = [separate.runningMean, separate.runningVar, separate.gammaGrad, separate.betaGrad, ...outs.slice(0, 2)]
      .map((b) => ({ buffer: b as GPUBuffer, size: 8 }))
      .concat([shared.runningMean, shared.runningVar, shared.gammaGrad, shared.betaGrad].map((r) => ({ buffer: r.buffer, offset: r.offset, size: 8 })))
      .concat(outs.slice(2).map((b) => ({ buffer: b, size: 8 })));
    const got = (await readBuffers(device, regions, encoder2)).map((b) => Array.from(new Float32Array(b)));
    expect(got.slice(6)).toEqual(got.slice(0, 6));
    expect(got[1]).not.toEqual([1, 1]);
    destroyAll(separate, shared, stats, grads, x2, dy, ...outs);
    releaseFunctionCaches(device);
  });

  it('what one dispatch would write and read in one GPUBuffer: y and saved, x and saved, x and a running statistic, y and γ/β/a running statistic, dx and saved or γ, numBatchesTracked and γ, a gradient of γ/β and x or dy', async () => {
    const device = await testDevice();
    const align = device.limits.minStorageBufferOffsetAlignment;
    const buffers = batchNormBuffers(device, 2);
    const [x, y, dx] = [storageBuffer(device, randn(8, 4103)), arena(device, 32), arena(device, 32)];
    const shared = arena(device, 2 * align);
    const inShared = (offset: number, size: number) => ({ buffer: shared, offset, size });
    const encoder = device.createCommandEncoder();
    const forward = (a: object) => () => encodeBatchNormForward(device, encoder, { x, y, shape, training: true, buffers, options, ...a });
    expectError(
      forward({ y: inShared(0, 32), buffers: { ...buffers, saved: inShared(align, 64) } }),
      TypeError,
      `args.y must be in a different GPUBuffer from args.buffers.saved: ${WEBGPU_ALIAS}`,
    );
    expectError(
      forward({ x: inShared(0, 32), buffers: { ...buffers, saved: inShared(align, 64) } }),
      TypeError,
      `args.buffers.saved must be in a different GPUBuffer from args.x: ${WEBGPU_ALIAS}`,
    );
    expectError(
      forward({ buffers: { ...buffers, gamma: inShared(0, 8), numBatchesTracked: inShared(align, 4) } }),
      TypeError,
      `args.buffers.numBatchesTracked must be in a different GPUBuffer from args.buffers.gamma: ${WEBGPU_ALIAS}`,
    );
    // The running statistics are written by the kernels that read x.
    expectError(
      forward({ x: inShared(0, 32), buffers: { ...buffers, runningVar: inShared(align, 8) } }),
      TypeError,
      `args.buffers.runningVar must be in a different GPUBuffer from args.x: ${WEBGPU_ALIAS}`,
    );
    // Inference writes y in the dispatch that reads γ, β and the running statistics (one rule for both modes).
    for (const n of ['gamma', 'beta', 'runningMean', 'runningVar'] as const) {
      for (const training of [false, true]) {
        expectError(
          forward({ y: inShared(0, 32), training, buffers: { ...buffers, [n]: inShared(align, 8) } }),
          TypeError,
          `args.y must be in a different GPUBuffer from args.buffers.${n}: ${WEBGPU_ALIAS}`,
        );
      }
    }
    // y over a state buffer: no WebGPU error (both are written), a silently overwritten count.
    expectError(
      forward({ y: inShared(0, 32), buffers: { ...buffers, numBatchesTracked: inShared(0, 4) } }),
      TypeError,
      'args.y must not overlap args.buffers.numBatchesTracked, which the same pass reads or writes; got bytes [0, 32) of the GPUBuffer that holds args.buffers.numBatchesTracked at bytes [0, 4)',
    );
    const saved = inShared(0, 64);
    encodeBatchNormForward(device, encoder, { x, y, shape, training: true, buffers: { ...buffers, saved }, options });
    expectError(
      () => encodeBatchNormBackward(device, encoder, { x, dy: x, dx: inShared(align, 32), shape, buffers: { ...buffers, saved }, options }),
      TypeError,
      `args.dx must be in a different GPUBuffer from args.buffers.saved: ${WEBGPU_ALIAS}`,
    );
    // The input-gradient kernel reads γ while it writes dx.
    const gammaArena = arena(device, 2 * align);
    const gammaHere = { ...buffers, saved: arena(device, 64), gamma: { buffer: gammaArena, offset: align, size: 8 } };
    encodeBatchNormForward(device, encoder, { x, y, shape, training: true, buffers: gammaHere, options });
    expectError(
      () => encodeBatchNormBackward(device, encoder, { x, dy: x, dx: { buffer: gammaArena, offset: 0, size: 32 }, shape, buffers: gammaHere, options }),
      TypeError,
      `args.dx must be in a different GPUBuffer from args.buffers.gamma: ${WEBGPU_ALIAS}`,
    );
    // A gradient over dy: written before dx reads dy again.
    const dyArena = storageBuffer(device, randn(2 * align / 4, 4118));
    expectError(
      () =>
        encodeBatchNormBackward(device, encoder, {
          x,
          dy: { buffer: dyArena, offset: 0, size: 32 },
          dx,
          shape,
          buffers: { ...buffers, saved, gammaGrad: { buffer: dyArena, offset: 0, size: 8 } },
          options,
        }),
      TypeError,
      `args.buffers.gammaGrad must be in a different GPUBuffer from args.dy: ${WEBGPU_ALIAS}`,
    );
    // dγ/dβ are written by the kernel that reads x and dy.
    expectError(
      () =>
        encodeBatchNormBackward(device, encoder, {
          x: { buffer: dyArena, offset: 0, size: 32 },
          dy: x,
          dx,
          shape,
          buffers: { ...buffers, saved, betaGrad: { buffer: dyArena, offset: align, size: 8 } },
          options,
        }),
      TypeError,
      `args.buffers.betaGrad must be in a different GPUBuffer from args.x: ${WEBGPU_ALIAS}`,
    );
    encodeBatchNormBackward(device, encoder, { x, dy: x, dx, shape, buffers: { ...buffers, saved }, options });
    await readBuffers(device, [{ buffer: dx, size: 32 }], encoder);
    destroyAll(buffers, x, y, dx, shared, dyArena, gammaArena, gammaHere.saved);
    releaseFunctionCaches(device);
  });
});

describe('family function forms', () => {
  it('the device and the encoder are checked first', async () => {
    const device = await testDevice();
    const [x, y, saved] = [arena(device, 32), arena(device, 32), arena(device, 64)];
    const encoder = device.createCommandEncoder();
    const args = { x, y, shape: [2, 4], normalizedShape: 4, saved };
    expectError(() => encodeLayerNormForward(undefined as never, encoder, args), TypeError, 'device must be a GPUDevice; got undefined');
    expectError(() => encodeLayerNormForward(device, null as never, args), TypeError, 'encoder must be a GPUCommandEncoder (device.createCommandEncoder()); got null');
    expectError(
      () => encodeLayerNormBackward(device, {} as never, { x, dy: x, dx: y, shape: [2, 4], normalizedShape: 4, saved }),
      TypeError,
      'encoder must be a GPUCommandEncoder (device.createCommandEncoder()); got an object',
    );
    encoder.finish();
    destroyAll(x, y, saved);
  });

  it('saved === y is refused (both written by one dispatch, the one over the other)', async () => {
    const device = await testDevice();
    const [x, y] = [storageBuffer(device, randn(8, 4106)), arena(device, 64)];
    const encoder = device.createCommandEncoder();
    expectError(
      () => encodeLayerNormForward(device, encoder, { x, y, shape: [2, 4], normalizedShape: 4, saved: y }),
      TypeError,
      'args.y must not overlap args.saved, which the same pass reads or writes; got bytes [0, 32) of the GPUBuffer that holds args.saved at bytes [0, 32)',
    );
    encoder.finish();
    destroyAll(x, y);
  });

  it('null options are refused, not replaced by the default: momentum, layout, eps', async () => {
    const device = await testDevice();
    const [x, y, saved, rm, rv] = [arena(device, 64), arena(device, 64), arena(device, 256), arena(device, 16), arena(device, 16)];
    const encoder = device.createCommandEncoder();
    const shape = [2, 4, 2];
    expectError(
      () => encodeInstanceNormForward(device, encoder, { x, y, shape, layout: 'NCL', saved, runningMean: rm, runningVar: rv, momentum: null as never }),
      RangeError,
      "args.momentum must be a number in [0, 1] (InstanceNorm has no cumulative average: null is BatchNorm's); got null",
    );
    expectError(() => encodeGroupNormForward(device, encoder, { x, y, shape: [2, 4, 2, 1], numGroups: 2, layout: null as never, saved }), TypeError, `args.layout must be one of ${LAYOUTS}; got null`);
    expectError(() => encodeLayerNormForward(device, encoder, { x, y, shape: [4, 4], normalizedShape: 4, saved, eps: null as never }), RangeError, 'args.eps must be a finite number > 0; got null');
    encoder.finish();
    destroyAll(x, y, saved, rm, rv);
  });

  it('what one dispatch would write and read in one GPUBuffer: y and the running statistics, dx and saved, dx and γ; a gradient over γ', async () => {
    const device = await testDevice();
    const align = device.limits.minStorageBufferOffsetAlignment;
    const shape = [2, 4, 2];
    const [x, y, dx, saved, rv] = [storageBuffer(device, randn(16, 4107)), arena(device, 64), arena(device, 64), arena(device, 256), arena(device, 16)];
    const shared = arena(device, 3 * align);
    const at = (k: number, size: number) => ({ buffer: shared, offset: k * align, size });
    const encoder = device.createCommandEncoder();
    expectError(
      () => encodeInstanceNormForward(device, encoder, { x, y: at(1, 64), shape, layout: 'NCL', saved, runningMean: at(0, 16), runningVar: rv }),
      TypeError,
      `args.y must be in a different GPUBuffer from args.runningMean: ${WEBGPU_ALIAS}`,
    );
    expectError(
      () => encodeInstanceNormBackward(device, encoder, { x, dy: x, dx: at(1, 64), shape, layout: 'NCL', saved: at(0, 128) }),
      TypeError,
      `args.dx must be in a different GPUBuffer from args.saved: ${WEBGPU_ALIAS}`,
    );
    expectError(
      () => encodeInstanceNormBackward(device, encoder, { x, dy: x, dx: at(1, 64), shape, layout: 'NCL', saved, gamma: at(0, 16) }),
      TypeError,
      `args.dx must be in a different GPUBuffer from args.gamma: ${WEBGPU_ALIAS}`,
    );
    expectError(
      () => encodeInstanceNormBackward(device, encoder, { x, dy: x, dx, shape, layout: 'NCL', saved, gamma: at(0, 16), dgamma: at(0, 16) }),
      TypeError,
      'args.dgamma must not overlap args.gamma, which the same pass reads or writes; got bytes [0, 16) of the GPUBuffer that holds args.gamma at bytes [0, 16)',
    );
    encoder.finish();
    destroyAll(x, y, dx, saved, rv, shared);
  });

  it('running statistics, and dγ and dβ, side by side in one GPUBuffer give the results of separate buffers (they used to be refused)', async () => {
    const device = await testDevice();
    const align = device.limits.minStorageBufferOffsetAlignment;
    const shape = [2, 4, 3];
    const [x, dy] = [storageBuffer(device, randn(24, 4108, 1, 2)), storageBuffer(device, randn(24, 4109))];
    const gamma = storageBuffer(device, Float32Array.of(1, 2, 0.5, -1));
    const stats = arena(device, 2 * align);
    const grads = arena(device, 2 * align);
    device.queue.writeBuffer(stats, align, Float32Array.of(1, 1, 1, 1));
    const [rm, rv, dg, db] = [arena(device, 16), storageBuffer(device, Float32Array.of(1, 1, 1, 1)), arena(device, 16), arena(device, 16)];
    const outs = [0, 1, 2, 3].map(() => arena(device, 96));
    const saves = [arena(device, 128), arena(device, 128)];
    const sharedRanges = {
      runningMean: { buffer: stats, offset: 0, size: 16 },
      runningVar: { buffer: stats, offset: align, size: 16 },
      dgamma: { buffer: grads, offset: 0, size: 16 },
      dbeta: { buffer: grads, offset: align, size: 16 },
    };
    const encoder = device.createCommandEncoder();
    [{ runningMean: rm, runningVar: rv, dgamma: dg, dbeta: db }, sharedRanges].forEach((b, k) => {
      const common = { x, shape, layout: 'NCL' as const, gamma, saved: saves[k], runningMean: b.runningMean, runningVar: b.runningVar, training: true };
      encodeInstanceNormForward(device, encoder, { ...common, y: outs[2 * k] });
      encodeInstanceNormBackward(device, encoder, { ...common, dy, dx: outs[2 * k + 1], dgamma: b.dgamma, dbeta: b.dbeta });
    });
    const regions = [rm, rv, dg, db].map((buffer) => ({ buffer, size: 16 })).concat(Object.values(sharedRanges));
    const got = (await readBuffers(device, regions, encoder)).map((b) => Array.from(new Float32Array(b)));
    expect(got.slice(4)).toEqual(got.slice(0, 4));
    expect(got[0]).not.toEqual([0, 0, 0, 0]);
    destroyAll(x, dy, gamma, stats, grads, rm, rv, dg, db, ...outs, ...saves);
  });
});

describe('feature-scaling function forms', () => {
  it('device, encoder, unknown args, y over the state it scales with, x in the state\'s GPUBuffer', async () => {
    const device = await testDevice();
    const align = device.limits.minStorageBufferOffsetAlignment;
    const stateBytes = 2 * SCALING_STATE_BYTES_PER_FEATURE;
    const x = storageBuffer(device, randn(8, 4110));
    const shared = arena(device, align + Math.max(stateBytes, 32));
    const state = { buffer: shared, offset: 0, size: stateBytes };
    const encoder = device.createCommandEncoder();
    const options = { method: 'standardize' as const };
    expectError(() => encodeFeatureScalingTransform(undefined as never, encoder, { x, y: x, shape: [4, 2], state, options }), TypeError, 'device must be a GPUDevice; got undefined');
    expectError(() => encodeFeatureScalingAdapt(device, undefined as never, { x, shape: [4, 2], state, options }), TypeError, 'encoder must be a GPUCommandEncoder (device.createCommandEncoder()); got undefined');
    expectError(
      () => encodeFeatureScalingAdapt(device, encoder, { x, y: x, shape: [4, 2], state, options } as never),
      TypeError,
      'args.y is not an argument of encodeFeatureScalingAdapt (adapt writes only the state); expected one of x, shape, state, options',
    );
    expectError(
      () => encodeFeatureScalingTransform(device, encoder, { x, y: { buffer: shared, offset: 0, size: 32 }, shape: [4, 2], state, options }),
      TypeError,
      `args.y must not overlap args.state, which the same pass reads or writes; got bytes [0, 32) of the GPUBuffer that holds args.state at bytes [0, ${stateBytes})`,
    );
    // The state is bound writable in every feature-scaling dispatch, so x stays out of its GPUBuffer.
    for (const encode of [encodeFeatureScalingTransform, encodeFeatureScalingInverse]) {
      expectError(
        () => encode(device, encoder, { x: { buffer: shared, offset: align, size: 32 }, y: x, shape: [4, 2], state, options }),
        TypeError,
        `args.state must be in a different GPUBuffer from args.x: ${WEBGPU_ALIAS}`,
      );
    }
    // Side by side they run.
    encodeFeatureScalingAdapt(device, encoder, { x, shape: [4, 2], state, options });
    encodeFeatureScalingTransform(device, encoder, { x, y: { buffer: shared, offset: align, size: 32 }, shape: [4, 2], state, options });
    await readBuffers(device, [{ buffer: shared, size: 4 }], encoder);
    destroyAll(x, shared);
    releaseFunctionCaches(device);
  });
});

describe("layers' pass arguments: unknown keys are refused, nothing changes", () => {
  it('BatchNorm encodeForward / encodeBackward', async () => {
    const device = await testDevice();
    const bn = new BatchNorm(device, { numFeatures: 2, layout: 'NC' });
    const [x, y] = [storageBuffer(device, randn(8, 4111)), arena(device, 32)];
    const encoder = device.createCommandEncoder();
    expectError(
      () => bn.encodeForward(encoder, { x, y, shape: [4, 2], training: true, momentum: 0.5 } as never),
      TypeError,
      'args.momentum is not an argument of encodeForward (momentum is an option of the layer, given to its constructor, not an argument of a pass); expected one of x, y, shape, training',
    );
    expect(() => bn.encodeBackward(encoder, { x, dy: x, dx: y, shape: [4, 2] })).toThrow(/encodeBackward needs a forward pass first/);
    bn.encodeForward(encoder, { x, y, shape: [4, 2], training: true });
    expectError(
      () => bn.encodeBackward(encoder, { x, dy: x, dx: y, shape: [4, 2], training: false } as never),
      TypeError,
      'args.training is not an argument of encodeBackward (the backward pass follows the training flag of its forward pass); expected one of x, dy, dx, shape',
    );
    await readBuffers(device, [{ buffer: y, size: 32 }], encoder);
    expect((await bn.getState()).numBatchesTracked).toBe(1);
    bn.destroy();
    destroyAll(x, y);
  });

  it("InstanceNorm encodeForward with { train: false } is refused (it used to train and move the running statistics)", async () => {
    const device = await testDevice();
    const inorm = new InstanceNorm(device, { numFeatures: 2, layout: 'NCL', trackRunningStats: true });
    const [x, y] = [storageBuffer(device, randn(12, 4112, 3, 1)), arena(device, 48)];
    const before = runningOf(await inorm.getState());
    const encoder = device.createCommandEncoder();
    expectError(
      () => inorm.encodeForward(encoder, { x, y, shape: [2, 2, 3], train: false } as never),
      TypeError,
      'args.train is not an argument of encodeForward (did you mean training?); expected one of x, y, shape, training',
    );
    device.queue.submit([encoder.finish()]);
    expect(runningOf(await inorm.getState())).toEqual(before);
    inorm.destroy();
    destroyAll(x, y);
  });
});

describe('getDevice', () => {
  it('numbers the labels of the devices it labels, so that WebGPU tells them apart', async () => {
    const [a, b] = [await getDevice(), await getDevice()];
    expect(a.label).toMatch(/^webgpu-batchnorm device \d+$/);
    expect(b.label).toMatch(/^webgpu-batchnorm device \d+$/);
    expect(a.label).not.toBe(b.label);
    a.destroy();
    b.destroy();
  });

  it('a required limit set to undefined is as if absent', async () => {
    const device = await getDevice({ label: 'limits device', requiredLimits: { maxBufferSize: undefined as never } });
    expect(device.label).toBe('limits device');
    device.destroy();
  });
});

describe('layer methods (after wiring: the layer files call the helpers)', () => {
  it('BatchNorm.forward refuses { training: true, momentum: 0.5 } and null options, changing nothing', async () => {
    const device = await testDevice();
    const bn = new BatchNorm(device, { numFeatures: 2, layout: 'NC' });
    const x = randn(8, 4113);
    const before = await bn.getState();
    await expectRejection(
      bn.forward(x, [4, 2], { training: true, momentum: 0.5 } as never),
      TypeError,
      'options.momentum is not an option of BatchNorm.forward (momentum is an option of the layer, given to its constructor; a call takes only training); expected one of training',
    );
    await expectRejection(bn.forward(x, [4, 2], null as never), TypeError, 'options must be an object { training }; got null');
    expect(await bn.getState()).toEqual(before);
    bn.destroy();
  });

  it("InstanceNorm.forward refuses { train: false }, leaving the running statistics", async () => {
    const device = await testDevice();
    const inorm = new InstanceNorm(device, { numFeatures: 2, layout: 'NCL', trackRunningStats: true });
    const before = await inorm.getState();
    await expectRejection(
      inorm.forward(randn(12, 4114, 3, 1), [2, 2, 3], { train: false } as never),
      TypeError,
      'options.train is not an option of InstanceNorm.forward (did you mean training?); expected one of training',
    );
    expect(await inorm.getState()).toEqual(before);
    inorm.destroy();
  });

  it('encodeForward with an undefined encoder names it', async () => {
    const device = await testDevice();
    const bn = new BatchNorm(device, { numFeatures: 2, layout: 'NC' });
    const ln = new LayerNorm(device, { normalizedShape: 2 });
    const [x, y] = [arena(device, 32), arena(device, 32)];
    const message = 'encoder must be a GPUCommandEncoder (device.createCommandEncoder()); got undefined';
    expectError(() => bn.encodeForward(undefined as never, { x, y, shape: [4, 2], training: true }), TypeError, message);
    expectError(() => ln.encodeForward(undefined as never, { x, y, shape: [4, 2] }), TypeError, message);
    bn.destroy();
    ln.destroy();
    destroyAll(x, y);
  });

  it('FeatureScaler: label, pass arguments, y over the caller state, x in its GPUBuffer', async () => {
    const device = await testDevice();
    expectError(() => new FeatureScaler(device, { numFeatures: 2, method: 'min-max', label: 42 as never }), TypeError, 'options.label must be a string; got 42');
    const align = device.limits.minStorageBufferOffsetAlignment;
    const stateBytes = 2 * SCALING_STATE_BYTES_PER_FEATURE;
    const shared = arena(device, align + Math.max(stateBytes, 32));
    const scaler = new FeatureScaler(device, { numFeatures: 2, method: 'min-max', state: { buffer: shared, offset: 0, size: stateBytes } });
    const x = storageBuffer(device, randn(8, 4115));
    const encoder = device.createCommandEncoder();
    expectError(
      () => scaler.encodeTransform(encoder, { x, y: { buffer: shared, offset: align, size: 32 }, shape: [4, 2], extra: 1 } as never),
      TypeError,
      /^args\.extra is not an argument of \S*encodeTransform; expected one of x, y, shape$/,
    );
    expectError(
      () => scaler.encodeTransform(encoder, { x, y: { buffer: shared, offset: 0, size: 32 }, shape: [4, 2] }),
      TypeError,
      /^args\.y must not overlap options\.state, which the same pass reads or writes; got bytes \[0, 32\)/,
    );
    // Every scaling kernel binds the state writable, so x stays out of its GPUBuffer.
    const y = arena(device, 32);
    for (const encode of ['encodeAdapt', 'encodeTransform', 'encodeInverse'] as const) {
      expectError(
        () => scaler[encode](encoder, { x: { buffer: shared, offset: align, size: 32 }, shape: [4, 2], ...(encode === 'encodeAdapt' ? {} : { y }) } as never),
        TypeError,
        `options.state must be in a different GPUBuffer from args.x: ${WEBGPU_ALIAS}`,
      );
    }
    encoder.finish();
    scaler.destroy();
    destroyAll(x, y, shared);
  });

  it("BatchNorm with caller buffers: y in saved's or the running mean's GPUBuffer; dx in γ's", async () => {
    const device = await testDevice();
    const align = device.limits.minStorageBufferOffsetAlignment;
    const shared = arena(device, 2 * align);
    const bn = new BatchNorm(device, { numFeatures: 2, layout: 'NC', buffers: { saved: { buffer: shared, offset: align, size: 64 } } });
    const x = storageBuffer(device, randn(8, 4116));
    const encoder = device.createCommandEncoder();
    expectError(
      () => bn.encodeForward(encoder, { x, y: { buffer: shared, offset: 0, size: 32 }, shape: [4, 2], training: true }),
      TypeError,
      new RegExp(`^args\\.y must be in a different GPUBuffer from \\S+\\.saved: ${WEBGPU_ALIAS}$`),
    );
    encoder.finish();
    bn.destroy();
    const bn2 = new BatchNorm(device, { numFeatures: 2, layout: 'NC', buffers: { runningMean: { buffer: shared, offset: 0, size: 8 } } });
    const encoder2 = device.createCommandEncoder();
    expectError(
      () => bn2.encodeForward(encoder2, { x, y: { buffer: shared, offset: align, size: 32 }, shape: [4, 2], training: false }),
      TypeError,
      new RegExp(`^args\\.y must be in a different GPUBuffer from \\S+\\.runningMean: ${WEBGPU_ALIAS}$`),
    );
    encoder2.finish();
    bn2.destroy();
    const bn3 = new BatchNorm(device, { numFeatures: 2, layout: 'NC', buffers: { gamma: { buffer: shared, offset: 0, size: 8 } } });
    const [y, encoder3] = [arena(device, 32), device.createCommandEncoder()];
    bn3.encodeForward(encoder3, { x, y, shape: [4, 2], training: true });
    expectError(
      () => bn3.encodeBackward(encoder3, { x, dy: x, dx: { buffer: shared, offset: align, size: 32 }, shape: [4, 2] }),
      TypeError,
      new RegExp(`^args\\.dx must be in a different GPUBuffer from \\S+\\.gamma: ${WEBGPU_ALIAS}$`),
    );
    encoder3.finish();
    bn3.destroy();
    destroyAll(x, y, shared);
  });

  it('family layers with caller buffers: running statistics over each other; y and dx in γ\'s GPUBuffer', async () => {
    const device = await testDevice();
    const align = device.limits.minStorageBufferOffsetAlignment;
    const shared = arena(device, 2 * align);
    expectError(
      () => new InstanceNorm(device, { numFeatures: 2, trackRunningStats: true, buffers: { runningMean: shared, runningVar: shared } }),
      TypeError,
      /^options\.buffers\.running(Mean|Var) must not overlap options\.buffers\.running(Mean|Var), which the same pass reads or writes; got bytes \[0, 8\)/,
    );
    const ln = new LayerNorm(device, { normalizedShape: 2, buffers: { gamma: { buffer: shared, offset: 0, size: 8 } } });
    const x = storageBuffer(device, randn(8, 4117));
    const dx = arena(device, 32);
    const encoder = device.createCommandEncoder();
    expectError(
      () => ln.encodeForward(encoder, { x, y: { buffer: shared, offset: align, size: 32 }, shape: [4, 2] }),
      TypeError,
      new RegExp(`^args\\.y must be in a different GPUBuffer from \\S+\\.gamma: ${WEBGPU_ALIAS}$`),
    );
    ln.encodeForward(encoder, { x, y: dx, shape: [4, 2] });
    expectError(
      () => ln.encodeBackward(encoder, { x, dy: x, dx: { buffer: shared, offset: align, size: 32 }, shape: [4, 2] }),
      TypeError,
      new RegExp(`^args\\.dx must be in a different GPUBuffer from \\S+\\.gamma: ${WEBGPU_ALIAS}$`),
    );
    await readBuffers(device, [{ buffer: dx, size: 32 }], encoder);
    ln.destroy();
    destroyAll(x, dx, shared);
  });
});

/*
 * A new user's review: inputs that were accepted and then gave NaN, a wrong answer or an error
 * from inside WebGPU naming no argument.
 */

const SUBNORMAL =
  "must be at least 2^-126 (1.1754943508222875e-38), float32's smallest normal number: the GPU computes in float32 and flushes a smaller (subnormal) eps to 0, which gives NaN for a constant channel or row";
const NOT_FLOAT32 = "must be at most 3.4028234663852886e+38, float32's largest number: the GPU computes in float32, where 1e+39 is not a float32 (it would be Infinity); got 1e+39";

describe('eps: a subnormal float32 (flushed to 0) or beyond float32 is refused', () => {
  it('by the layers, creating nothing', async () => {
    const { device, live } = countingDevice(await testDevice());
    expectError(() => new BatchNorm(device, { numFeatures: 2, layout: 'NC', eps: 1e-38 }), RangeError, `options.eps ${SUBNORMAL}; got 1e-38`);
    expectError(() => new LayerNorm(device, { normalizedShape: 4, eps: 1e-45 }), RangeError, `options.eps ${SUBNORMAL}; got 1e-45`);
    expectError(() => new GroupNorm(device, { numGroups: 1, numChannels: 2, eps: 1e39 }), RangeError, `options.eps ${NOT_FLOAT32}`);
    expect(live.size, 'the refused constructors created no buffer').toBe(0);
  });

  it('by the function forms', async () => {
    const device = await testDevice();
    const buffers = batchNormBuffers(device, 2);
    const [x, y, saved] = [arena(device, 32), arena(device, 32), arena(device, 64)];
    const encoder = device.createCommandEncoder();
    expectError(
      () => encodeBatchNormForward(device, encoder, { x, y, shape: [4, 2], training: true, buffers, options: { layout: 'NC', eps: 1e-40 } }),
      RangeError,
      `args.options.eps ${SUBNORMAL}; got 1e-40`,
    );
    expectError(() => encodeLayerNormForward(device, encoder, { x, y, shape: [2, 4], normalizedShape: 4, saved, eps: 1e39 }), RangeError, `args.eps ${NOT_FLOAT32}`);
    encoder.finish();
    destroyAll(buffers, x, y, saved);
    releaseFunctionCaches(device);
  });

  it("float32's smallest normal eps gives a constant row and channel 0, not NaN", async () => {
    const device = await testDevice();
    const ln = new LayerNorm(device, { normalizedShape: 4, eps: 2 ** -126 });
    const bn = new BatchNorm(device, { numFeatures: 2, layout: 'NC', eps: 2 ** -126 });
    expect(Array.from(await ln.forward(new Float32Array(8).fill(3), [2, 4]))).toEqual(new Array(8).fill(0));
    expect(Array.from(await bn.forward(new Float32Array(8).fill(-5), [4, 2], { training: true }))).toEqual(new Array(8).fill(0));
    ln.destroy();
    bn.destroy();
  });
});

describe('holes in shape arrays are refused (forEach skipped them)', () => {
  it('forward(x, [, 2]) and normalizedShape [, 2]', async () => {
    const { device, live } = countingDevice(await testDevice());
    expectError(() => new LayerNorm(device, { normalizedShape: [, 2] as number[] }), RangeError, 'options.normalizedShape[0] must be a positive integer; got undefined');
    expect(live.size).toBe(0);
    const bn = new BatchNorm(device, { numFeatures: 2, layout: 'NC' });
    const ln = new LayerNorm(device, { normalizedShape: 2 });
    await expectRejection(bn.forward(randn(2, 4121), [, 2] as number[], { training: true }), TypeError, 'shape[0] must be a positive integer; got undefined in [, 2]');
    await expectRejection(ln.forward(randn(4, 4122), [2, , 2] as number[]), RangeError, 'shape[1] must be a positive integer; got undefined');
    bn.destroy();
    ln.destroy();
  });
});

describe('tensor arguments: only real GPUBuffers, ranges with known keys and whole words', () => {
  it("an object with a GPUBuffer's size and usage is refused where the GPUBuffer class exists (it failed inside WebGPU)", async () => {
    const device = await testDevice();
    expect(typeof GPUBuffer).toBe('function');
    const bn = new BatchNorm(device, { numFeatures: 2, layout: 'NC' });
    const [x, y] = [storageBuffer(device, randn(8, 4123)), arena(device, 32)];
    const fake = { size: 1024, usage: GPUBufferUsage.STORAGE };
    const encoder = device.createCommandEncoder();
    const forward = (a: object) => () => bn.encodeForward(encoder, { x, y, shape: [4, 2], training: true, ...a } as never);
    expectError(forward({ x: fake }), TypeError, 'args.x must be a GPUBuffer (or args.x a range { buffer, offset, size } of one); got an object');
    expectError(forward({ y: { buffer: fake, offset: 0 } }), TypeError, 'args.y.buffer must be a GPUBuffer (or args.y a range { buffer, offset, size } of one); got an object');
    expectError(forward({ x: { buffer: x, offset: 0, size: 32, typo: 1 } }), TypeError, 'args.x.typo is not a key of a range { buffer, offset, size }; expected one of buffer, offset, size');
    expectError(forward({ y: { buffer: y, size: 30 } }), RangeError, 'args.y.size must be a multiple of 4 (WebGPU binds storage in 4-byte words); got 30');
    const mappable = device.createBuffer({ size: 32, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    expectError(forward({ y: mappable }), TypeError, 'args.y must have GPUBufferUsage.STORAGE in its usage; got usage 0x9 (MAP_READ | COPY_DST)');
    bn.encodeForward(encoder, { x, y: { buffer: y, offset: 0, size: 32 }, shape: [4, 2], training: true });
    await readBuffers(device, [{ buffer: y, size: 32 }], encoder);
    bn.destroy();
    destroyAll(x, y, mappable);
  });
});

describe('state buffers: a Map is refused, and so are two state names on the same bytes', () => {
  it('options.buffers and args.buffers as a Map (they read as no buffers)', async () => {
    const { device, live } = countingDevice(await testDevice());
    const gamma = arena(device, 8);
    live.clear();
    const map = new Map([['gamma', gamma]]);
    expectError(
      () => new BatchNorm(device, { numFeatures: 2, layout: 'NC', buffers: map as never }),
      TypeError,
      'options.buffers must be an object of GPUBuffers (or ranges) by state name; got a Map',
    );
    expectError(() => new LayerNorm(device, { normalizedShape: 2, buffers: map as never }), TypeError, 'options.buffers must be an object of GPUBuffers (or ranges) by name; got a Map');
    expect(live.size).toBe(0);
    const [x, y] = [arena(device, 32), arena(device, 32)];
    const encoder = device.createCommandEncoder();
    expectError(
      () => encodeBatchNormForward(device, encoder, { x, y, shape: [4, 2], training: true, buffers: new Map(Object.entries(batchNormBuffers(device, 2))) as never, options: { layout: 'NC' } }),
      TypeError,
      'args.buffers must be an object with gamma, beta, runningMean, runningVar, numBatchesTracked, gammaGrad, betaGrad, saved; got a Map',
    );
    encoder.finish();
    destroyAll(gamma, x, y);
  });

  it('γ and β in one buffer (setState wrote one over the other) are refused, by BatchNorm, the family and the functions', async () => {
    const device = await testDevice();
    const shared = arena(device, 16);
    const message = (prefix: string, bytes: number) =>
      `${prefix}.gamma must not overlap ${prefix}.beta: each state buffer needs bytes of its own (setState and the passes write them separately); got bytes [0, ${bytes}) of the GPUBuffer that holds ${prefix}.beta at bytes [0, ${bytes})`;
    expectError(() => new BatchNorm(device, { numFeatures: 2, layout: 'NC', buffers: { gamma: shared, beta: shared } }), TypeError, message('options.buffers', 8));
    expectError(() => new GroupNorm(device, { numGroups: 1, numChannels: 4, buffers: { gamma: shared, beta: shared } }), TypeError, message('options.buffers', 16));
    const buffers = batchNormBuffers(device, 2);
    const [x, y] = [arena(device, 32), arena(device, 32)];
    const encoder = device.createCommandEncoder();
    expectError(
      () => encodeBatchNormForward(device, encoder, { x, y, shape: [4, 2], training: true, buffers: { ...buffers, gamma: shared, beta: shared }, options: { layout: 'NC' } }),
      TypeError,
      message('args.buffers', 8),
    );
    // The family's functions: γ and β (and a gradient over γ) as well.
    const saved = arena(device, 64);
    expectError(
      () => encodeLayerNormForward(device, encoder, { x, y, shape: [2, 4], normalizedShape: 4, gamma: shared, beta: shared, saved }),
      TypeError,
      message('args', 16),
    );
    encoder.finish();
    destroyAll(shared, buffers, x, y, saved);
    releaseFunctionCaches(device);
  });
});

describe('releaseFunctionCaches and getDevice name what they got', () => {
  it('releaseFunctionCaches(null) is refused', () => {
    expectError(() => releaseFunctionCaches(null as never), TypeError, 'device must be a GPUDevice; got null');
  });

  it('an unknown required limit lists the limits the adapter has', async () => {
    const error = await getDevice({ requiredLimits: { maxFoo: 1 } }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Error);
    expect((error as Error).message).toMatch(
      /^getDevice: options\.requiredLimits\.maxFoo is not a limit this adapter has; its limits are maxTextureDimension1D, .*\bmaxStorageBufferBindingSize, minUniformBufferOffsetAlignment, minStorageBufferOffsetAlignment, .*maxComputeWorkgroupsPerDimension$/,
    );
  });
});

describe('a backward function takes the options of the forward pass recorded on its saved', () => {
  it("batch norm: activation, dtype and layout (relu then no activation gave dx off by 0.96; float32 then float16, by 3e6)", async () => {
    const device = await testDevice();
    const shape = [4, 2];
    const buffers = batchNormBuffers(device, 2);
    const [x, y, dx] = [storageBuffer(device, randn(8, 4124)), arena(device, 32), arena(device, 32)];
    const encoder = device.createCommandEncoder();
    const backward = (options: object) => () => encodeBatchNormBackward(device, encoder, { x, dy: x, dx, shape, buffers, options } as never);
    const why = 'as in the forward pass recorded on this args.buffers.saved (a backward pass takes the options of its forward pass)';
    encodeBatchNormForward(device, encoder, { x, y, shape, training: true, buffers, options: { layout: 'NC', activation: 'relu' } });
    expectError(backward({ layout: 'NC' }), TypeError, `args.options.activation must be 'relu', ${why}; got undefined (the default, 'none')`);
    encodeBatchNormBackward(device, encoder, { x, dy: x, dx, shape, buffers, options: { layout: 'NC', activation: 'relu' } });
    encodeBatchNormForward(device, encoder, { x, y, shape, training: true, buffers, options: { layout: 'NC' } });
    expectError(backward({ layout: 'NC', activation: 'silu' }), TypeError, `args.options.activation must be 'none' or left out, ${why}; got the string 'silu'`);
    expectError(backward({ layout: 'NC', dtype: 'float16' }), TypeError, `args.options.dtype must be 'float32' or left out, ${why}; got the string 'float16'`);
    expectError(
      () => encodeBatchNormBackward(device, encoder, { x, dy: x, dx, shape: [4, 2, 1], buffers, options: { layout: 'NCL' } }),
      TypeError,
      `args.options.layout must be 'NC', ${why}; got the string 'NCL'`,
    );
    encodeBatchNormBackward(device, encoder, { x, dy: x, dx, shape, buffers, options: { layout: 'NC', eps: 1e-3, momentum: 0.5 } });
    // The same shape in another layout: the layout is named, not the shape.
    encodeBatchNormForward(device, encoder, { x, y, shape: [2, 2, 1, 2], training: true, buffers, options: { layout: 'NCHW' } });
    expectError(
      () => encodeBatchNormBackward(device, encoder, { x, dy: x, dx, shape: [2, 2, 1, 2], buffers, options: { layout: 'NHWC' } }),
      TypeError,
      `args.options.layout must be 'NCHW', ${why}; got the string 'NHWC'`,
    );
    await readBuffers(device, [{ buffer: dx, size: 32 }], encoder);
    destroyAll(buffers, x, y, dx);
    releaseFunctionCaches(device);
  });

  it('batch norm: the γ and β of the forward pass, fixed or the same buffers (dx used to take the backward\'s γ, off by 1.74)', async () => {
    const device = await testDevice();
    const shape = [4, 2];
    const all = batchNormBuffers(device, 2, Float32Array.of(2, 3), Float32Array.of(0.5, -1));
    const { gamma, beta, ...noParams } = all;
    const otherGamma = storageBuffer(device, Float32Array.of(2, 3));
    const [x, y, dx] = [storageBuffer(device, randn(8, 4127)), arena(device, 32), arena(device, 32)];
    const encoder = device.createCommandEncoder();
    const why = 'as in the forward pass recorded on this args.buffers.saved (the backward pass takes the γ and β its forward pass normalized with)';
    const backward = (buffers: object, options: object) => () => encodeBatchNormBackward(device, encoder, { x, dy: x, dx, shape, buffers, options } as never);
    encodeBatchNormForward(device, encoder, { x, y, shape, training: true, buffers: noParams, options: { layout: 'NC', affine: false } });
    expectError(backward(all, { layout: 'NC' }), TypeError, `args.options.scale (or affine) must be false, ${why}: it held γ fixed at 1; got scale undefined, affine undefined`);
    expectError(backward({ ...noParams, gamma }, { layout: 'NC', center: false }), TypeError, `args.options.scale (or affine) must be false, ${why}: it held γ fixed at 1; got scale undefined, affine undefined`);
    encodeBatchNormBackward(device, encoder, { x, dy: x, dx, shape, buffers: noParams, options: { layout: 'NC', affine: false } });
    encodeBatchNormForward(device, encoder, { x, y, shape, training: true, buffers: all, options: { layout: 'NC' } });
    expectError(backward(noParams, { layout: 'NC', affine: false }), TypeError, `args.options.scale and affine must be true or left out, ${why}: it took args.buffers.gamma; got scale undefined, affine false`);
    expectError(backward({ ...all, gamma: otherGamma }, { layout: 'NC' }), TypeError, `args.buffers.gamma must be the buffer (and range) its forward pass took, ${why}; got 'test buffer', not 'test buffer'`);
    encodeBatchNormBackward(device, encoder, { x, dy: x, dx, shape, buffers: all, options: { layout: 'NC' } });
    await readBuffers(device, [{ buffer: dx, size: 32 }], encoder);
    destroyAll(all, otherGamma, x, y, dx);
    releaseFunctionCaches(device);
  });

  it('the family: a forward pass recorded on that saved, the same layer, shape and arguments its math depends on', async () => {
    const device = await testDevice();
    const shape = [2, 4];
    const [x, dy, y, dx] = [storageBuffer(device, randn(8, 4125)), storageBuffer(device, randn(8, 4126)), arena(device, 32), arena(device, 32)];
    // γ and β of 8 entries, enough for normalizedShape [2, 4] too.
    const [gamma, beta, saved] = [storageBuffer(device, Float32Array.of(1, 2, 0.5, -1, 1, 1, 1, 1)), arena(device, 32), arena(device, 128)];
    const encoder = device.createCommandEncoder();
    const why = 'as in the forward pass recorded on this args.saved (a backward pass takes the arguments of its forward pass that its math depends on)';
    const common = { x, dy, dx, shape, normalizedShape: 4, saved, gamma, beta, activation: 'relu' } as const;
    const backward = (a: object) => () => encodeLayerNormBackward(device, encoder, { ...common, ...a } as never);
    // Nothing recorded on this saved: its contents cannot be told from a forward pass's.
    expectError(
      backward({}),
      Error as unknown as ErrorClass,
      'encodeLayerNormBackward needs a forward pass recorded on this args.saved first: call encodeLayerNormForward with the same saved (buffer and offset) before it; releaseFunctionCaches forgets the recorded passes',
    );
    encodeLayerNormForward(device, encoder, { x, y, shape, normalizedShape: 4, saved, gamma, beta, activation: 'relu' });
    expectError(backward({ activation: undefined }), TypeError, `args.activation must be 'relu', ${why}; got undefined (the default, 'none')`);
    expectError(backward({ dtype: 'float16' }), TypeError, `args.dtype must be 'float32', ${why}; got the string 'float16'`);
    expectError(backward({ gamma: undefined }), TypeError, `args.gamma must be given, ${why}; got undefined`);
    expectError(backward({ beta: undefined }), TypeError, `args.beta must be given, ${why}; got undefined`);
    expectError(backward({ shape: [1, 4] }), RangeError, 'args.shape must be [2, 4], the shape of the forward pass recorded on this args.saved; got [1, 4]');
    expectError(backward({ normalizedShape: [2, 4] }), TypeError, `args.normalizedShape must be [4], ${why}; got [2, 4]`);
    expectError(
      () => encodeRMSNormBackward(device, encoder, { x, dy, dx, shape, normalizedShape: 4, saved }),
      TypeError,
      'args.saved holds a LayerNorm forward pass (the last recorded on it), not an RMSNorm one: encodeRMSNormBackward must follow encodeRMSNormForward on the same saved',
    );
    // eps is not compared: the backward pass reads 1/sqrt(var + eps) from saved.
    backward({ eps: 1e-3 })();
    // GroupNorm's groups; and a saved range at another offset is another record.
    const gshape = [2, 2, 2];
    encodeGroupNormForward(device, encoder, { x, y, shape: gshape, layout: 'NCL', numGroups: 2, saved });
    expectError(
      () => encodeGroupNormBackward(device, encoder, { x, dy, dx, shape: gshape, layout: 'NCL', numGroups: 1, saved }),
      TypeError,
      `args.numGroups must be 2, ${why}; got 1`,
    );
    expectError(
      () => encodeGroupNormBackward(device, encoder, { x, dy, dx, shape: gshape, layout: 'NLC', numGroups: 2, saved } as never),
      TypeError,
      `args.layout must be 'NCL', ${why}; got the string 'NLC'`,
    );
    encodeGroupNormBackward(device, encoder, { x, dy, dx, shape: gshape, layout: 'NCL', numGroups: 2, saved });
    await readBuffers(device, [{ buffer: dx, size: 32 }], encoder);
    // releaseFunctionCaches forgets what was recorded.
    releaseFunctionCaches(device);
    const encoder2 = device.createCommandEncoder();
    expectError(
      () => encodeGroupNormBackward(device, encoder2, { x, dy, dx, shape: gshape, layout: 'NCL', numGroups: 2, saved }),
      Error as unknown as ErrorClass,
      /^encodeGroupNormBackward needs a forward pass recorded on this args\.saved first/,
    );
    encoder2.finish();
    destroyAll(x, dy, y, dx, gamma, beta, saved);
  });

  it('InstanceNorm: the statistics its forward pass normalized with (training, running statistics)', async () => {
    const device = await testDevice();
    const shape = [2, 2, 3];
    const [x, dy, y, dx] = [storageBuffer(device, randn(12, 4127)), storageBuffer(device, randn(12, 4128)), arena(device, 48), arena(device, 48)];
    const [rm, rv, saved] = [arena(device, 8), storageBuffer(device, Float32Array.of(1, 1)), arena(device, 64)];
    const encoder = device.createCommandEncoder();
    const why = '(a backward pass takes the arguments of its forward pass that its math depends on)';
    const running = { runningMean: rm, runningVar: rv };
    encodeInstanceNormForward(device, encoder, { x, y, shape, layout: 'NCL', saved, ...running, training: false });
    expectError(
      () => encodeInstanceNormBackward(device, encoder, { x, dy, dx, shape, layout: 'NCL', saved, ...running }),
      TypeError,
      `args.training must be false, as in the forward pass recorded on this args.saved, which normalized with the running statistics ${why}; got undefined (the default, true)`,
    );
    expectError(
      () => encodeInstanceNormBackward(device, encoder, { x, dy, dx, shape, layout: 'NCL', saved, training: false }),
      TypeError,
      `args.runningMean and args.runningVar must be given, with args.training false, as in the forward pass recorded on this args.saved, which normalized with them ${why}; got undefined`,
    );
    encodeInstanceNormBackward(device, encoder, { x, dy, dx, shape, layout: 'NCL', saved, ...running, training: false });
    encodeInstanceNormForward(device, encoder, { x, y, shape, layout: 'NCL', saved });
    expectError(
      () => encodeInstanceNormBackward(device, encoder, { x, dy, dx, shape, layout: 'NCL', saved, ...running, training: false }),
      TypeError,
      `args.training must be true or left out, as in the forward pass recorded on this args.saved, which normalized with each instance's own statistics ${why}; got false`,
    );
    // Training with or without running statistics normalizes with the instance's own: both pass.
    encodeInstanceNormBackward(device, encoder, { x, dy, dx, shape, layout: 'NCL', saved, ...running, training: true });
    encodeInstanceNormBackward(device, encoder, { x, dy, dx, shape, layout: 'NCL', saved });
    await readBuffers(device, [{ buffer: dx, size: 48 }], encoder);
    destroyAll(x, dy, y, dx, rm, rv, saved);
    releaseFunctionCaches(device);
  });
});
