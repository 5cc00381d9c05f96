/**
 * .npy files and PyTorch/Keras state conversion. Fixtures are made here: arrays written with
 * toNpy and read back, and .npy bytes assembled by hand in the layout numpy.save writes (header
 * padded to 64 bytes, other dtypes and byte orders, version 2.0).
 */
import { describe, expect, it } from 'vitest';
import { parseNpy, toNpy } from '../../src/interop/npy.js';
import { fromKerasWeights, fromPyTorchState, toKerasWeights, toPyTorchState } from '../../src/interop/state-io.js';
import { BatchNorm } from '../../src/batchnorm/layer.js';
import { testDevice } from '../helpers/gpu.js';

/** .npy bytes as numpy.save lays them out: magic, version, header length, header, data. */
function handMadeNpy(descr: string, shape: string, data: Uint8Array, version: 1 | 2 = 1): Uint8Array {
  const lengthBytes = version === 1 ? 2 : 4;
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shape}, }`;
  header += ' '.repeat((64 - ((8 + lengthBytes + header.length + 1) % 64)) % 64) + '\n';
  const out = new Uint8Array(8 + lengthBytes + header.length + data.length);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, version, 0]);
  const view = new DataView(out.buffer);
  if (version === 1) view.setUint16(8, header.length, true);
  else view.setUint32(8, header.length, true);
  out.set(new TextEncoder().encode(header), 8 + lengthBytes);
  out.set(data, 8 + lengthBytes + header.length);
  return out;
}

describe('.npy', () => {
  it('round-trips float32, float64 and int64, 1-D, 2-D and 0-d, with a 64-byte aligned header', () => {
    const cases: [Float32Array | Float64Array | BigInt64Array, number[], string][] = [
      [Float32Array.of(1.5, -2.25, 3e-8, 65504), [4], '<f4'],
      [Float64Array.of(0.1, 0.2, 0.3, 0.4, 0.5, 0.6), [2, 3], '<f8'],
      [BigInt64Array.of(12345n), [], '<i8'],
    ];
    for (const [data, shape, dtype] of cases) {
      const file = toNpy(data, shape);
      expect(new TextDecoder('latin1').decode(file.subarray(0, 6))).toBe('\x93NUMPY');
      const headerEnd = 10 + new DataView(file.buffer).getUint16(8, true);
      expect(headerEnd % 64).toBe(0);
      expect(file[headerEnd - 1]).toBe(0x0a);
      const back = parseNpy(file);
      expect(back.dtype).toBe(dtype);
      expect(back.shape).toEqual(shape);
      expect(Array.from(back.data)).toEqual(Array.from(data, Number));
    }
  });

  it('reads big-endian float32, float16, int32, and version 2.0 headers', () => {
    const be = new Uint8Array(8);
    new DataView(be.buffer).setFloat32(0, 1.25, false);
    new DataView(be.buffer).setFloat32(4, -3, false);
    expect(Array.from(parseNpy(handMadeNpy('>f4', '(2,)', be)).data)).toEqual([1.25, -3]);
    const half = new Uint8Array(new Uint16Array([0x3c00, 0xc000, 0x0001, 0x7c00]).buffer); // 1, -2, 2^-24, inf
    expect(Array.from(parseNpy(handMadeNpy('<f2', '(4,)', half)).data)).toEqual([1, -2, 2 ** -24, Infinity]);
    const ints = new Uint8Array(new Int32Array([7, -8, 9]).buffer);
    expect(parseNpy(handMadeNpy('<i4', '(3, 1)', ints, 2))).toEqual({ dtype: '<i4', shape: [3, 1], data: Float64Array.of(7, -8, 9) });
  });

  it('refuses what it cannot read, saying why', () => {
    expect(() => parseNpy(new Uint8Array(20))).toThrow(/not a .npy file/);
    expect(() => parseNpy(handMadeNpy('<c8', '(1,)', new Uint8Array(8)))).toThrow(/dtype '<c8' is not supported/);
    expect(() => parseNpy(handMadeNpy('<f4', '(3,)', new Uint8Array(8)))).toThrow(/truncated/);
    expect(() => toNpy(Float32Array.of(1, 2), [3])).toThrow(/shape \[3\] holds 3 values; data has 2/);
  });
});

describe('PyTorch and Keras state', () => {
  const state = {
    gamma: Float32Array.of(1.5, 0.5, 2),
    beta: Float32Array.of(0.1, -0.2, 0.3),
    runningMean: Float32Array.of(10, 20, 30),
    runningVar: Float32Array.of(4, 9, 16),
    numBatchesTracked: 42,
  };

  it('state_dict entries round-trip through a GPU layer, as arrays and as .npy files, with a prefix', async () => {
    const device = await testDevice();
    for (const npy of [false, true]) {
      const dict = toPyTorchState(state, { prefix: 'features.1.', npy });
      expect(Object.keys(dict)).toEqual(['weight', 'bias', 'running_mean', 'running_var', 'num_batches_tracked'].map((k) => `features.1.${k}`));
      if (npy) expect(parseNpy(dict['features.1.num_batches_tracked'] as Uint8Array)).toMatchObject({ dtype: '<i8', shape: [] });
      const bn = new BatchNorm(device, { numFeatures: 3, layout: 'NCHW' });
      bn.setState(fromPyTorchState(dict, 'features.1.'));
      const back = await bn.getState();
      expect(back).toEqual(state);
      bn.destroy();
    }
  });

  it('Keras weight lists map in order, with center/scale leaving out beta/gamma', async () => {
    const device = await testDevice();
    expect(toKerasWeights(state)).toEqual([state.gamma, state.beta, state.runningMean, state.runningVar]);
    expect(fromKerasWeights(toKerasWeights(state, { npy: true }))).toEqual({
      gamma: Array.from(state.gamma),
      beta: Array.from(state.beta),
      runningMean: Array.from(state.runningMean),
      runningVar: Array.from(state.runningVar),
    });
    const noScale = fromKerasWeights([state.beta, state.runningMean, state.runningVar], { scale: false });
    expect(Object.keys(noScale)).toEqual(['beta', 'runningMean', 'runningVar']);
    const bn = new BatchNorm(device, { numFeatures: 3, layout: 'NHWC' });
    bn.setState(noScale);
    const back = await bn.getState();
    expect(Array.from(back.gamma)).toEqual([1, 1, 1]); // untouched
    expect(Array.from(back.runningVar)).toEqual([4, 9, 16]);
    bn.destroy();
  });

  it('names the entry that is wrong', () => {
    expect(() => fromPyTorchState({ foo: [1] })).toThrow(/dict has none of 'weight', 'bias', 'running_mean', 'running_var'/);
    expect(() => fromPyTorchState({ running_mean: new Uint8Array(3) })).toThrow(/dict\['running_mean'\]: not a .npy file/);
    expect(() => fromPyTorchState({ weight: [1], num_batches_tracked: [1, 2] })).toThrow(/num_batches_tracked'\] must hold one value; got 2/);
    expect(() => fromKerasWeights([[1], [2], [3]])).toThrow(/weights must be the 4 arrays \[gamma, beta, moving_mean, moving_variance\]; got 3/);
  });
});
