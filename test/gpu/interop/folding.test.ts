/**
 * BN folding: the folded layer equals layer → BN at inference. Convolutions and dense layers run
 * on the GPU with the demo's kernels and the library's BatchNorm, the folded one with the
 * folded weights; Keras's out-channel-last weights are checked on the CPU reference.
 *
 * Tolerance: both sides are float32 GPU computations of the same value through different
 * roundings: |a − b| ≤ 1e-5·(1 + max|output|).
 */
import { describe, expect, it } from 'vitest';
import { BatchNorm } from '../../../src/batchnorm/layer.js';
import { foldBatchNorm } from '../../../src/interop/folding.js';
import { readBuffers } from '../../../src/core/gpu.js';
import { encodeConv2dForward, conv2dOutputSize, type Conv2dShape } from '../../../demo/nn/kernels.js';
import { referenceConv2d } from '../../../demo/nn/reference.js';
import { referenceInference } from '../../../src/batchnorm/reference.js';
import { channelView } from '../../../src/core/layout.js';
import { expectClose, randn } from '../../helpers/data.js';
import { storageBuffer, testDevice } from '../../helpers/gpu.js';

async function convOnGpu(device: GPUDevice, shape: Conv2dShape, x: Float32Array, w: ArrayLike<number>, b: ArrayLike<number>, bn?: BatchNorm) {
  const [OH, OW] = conv2dOutputSize(shape);
  const n = shape.batch * shape.outChannels * OH * OW;
  const y = storageBuffer(device, new Float32Array(n));
  const z = storageBuffer(device, new Float32Array(n));
  const encoder = device.createCommandEncoder();
  const pass = encoder.beginComputePass();
  encodeConv2dForward(device, pass, shape, { x: storageBuffer(device, x), weight: storageBuffer(device, Float32Array.from(w)), bias: storageBuffer(device, Float32Array.from(b)), y });
  pass.end();
  if (bn) bn.encodeForward(encoder, { x: y, y: z, shape: OH * OW > 1 ? [shape.batch, shape.outChannels, OH, OW] : [shape.batch, shape.outChannels], training: false });
  const [out] = await readBuffers(device, [{ buffer: bn ? z : y, size: n * 4 }], encoder);
  return new Float32Array(out);
}

const SHAPES: [string, Conv2dShape][] = [
  ['conv 3→5, 3x3', { batch: 4, inChannels: 3, height: 9, width: 8, outChannels: 5, kernelHeight: 3, kernelWidth: 3 }],
  ['dense 12→7', { batch: 6, inChannels: 12, height: 1, width: 1, outChannels: 7, kernelHeight: 1, kernelWidth: 1 }],
];

describe('foldBatchNorm', () => {
  for (const [name, shape] of SHAPES) {
    it(`${name}: the folded layer equals layer → BN (inference), with and without a bias`, async () => {
      const device = await testDevice();
      const C = shape.outChannels;
      const x = randn(shape.batch * shape.inChannels * shape.height * shape.width, 1);
      const w = randn(C * shape.inChannels * shape.kernelHeight * shape.kernelWidth, 2, 0, 0.4);
      const state = {
        gamma: randn(C, 3, 1, 0.3),
        beta: randn(C, 4, 0, 0.5),
        runningMean: randn(C, 5, 0.5, 1),
        runningVar: randn(C, 6).map((v) => 0.2 + v * v),
      };
      const bn = new BatchNorm(device, { numFeatures: C, layout: shape.height > 1 ? 'NCHW' : 'NC', eps: 1e-3 });
      bn.setState(state);
      for (const bias of [randn(C, 7), null]) {
        const layerThenBn = await convOnGpu(device, shape, x, w, bias ?? new Float32Array(C), bn);
        const folded = foldBatchNorm({ weight: w, bias }, { ...state, eps: 1e-3 });
        const foldedOut = await convOnGpu(device, shape, x, folded.weight, folded.bias);
        const scale = Math.max(...Array.from(layerThenBn, Math.abs));
        expectClose(foldedOut, layerThenBn, { rtol: 0, atol: 1e-5 * (1 + scale) }, 'folded vs layer → BN');
      }
      bn.destroy();
    });
  }

  it("Keras weights (output channel last) fold the same way as PyTorch's", () => {
    // A Keras Dense kernel [in, out] is the transpose of PyTorch's Linear weight [out, in].
    const [inputs, outputs] = [5, 3];
    const torchW = randn(outputs * inputs, 8);
    const kerasW = Float32Array.from({ length: inputs * outputs }, (_, i) => torchW[(i % outputs) * inputs + Math.floor(i / outputs)]);
    const bn = { gamma: [1.5, 0.5, 2], beta: [0.1, 0.2, 0.3], runningMean: [1, -1, 0], runningVar: [4, 1, 0.25], eps: 1e-5 };
    const a = foldBatchNorm({ weight: torchW, bias: [1, 2, 3] }, bn);
    const b = foldBatchNorm({ weight: kerasW, bias: [1, 2, 3], outAxis: 'last' }, bn);
    expect(Array.from(b.bias)).toEqual(Array.from(a.bias));
    for (let i = 0; i < inputs * outputs; i++) expect(b.weight[i]).toBe(a.weight[(i % outputs) * inputs + Math.floor(i / outputs)]);
    // And it is exactly layer → BN in float64.
    const x = randn(2 * inputs, 9);
    const shape: Conv2dShape = { batch: 2, inChannels: inputs, height: 1, width: 1, outChannels: outputs, kernelHeight: 1, kernelWidth: 1 };
    const viaBn = referenceInference(referenceConv2d(x, torchW, [1, 2, 3], shape), channelView('NC', [2, outputs]), bn);
    expectClose(referenceConv2d(x, a.weight, a.bias, shape), viaBn, { rtol: 1e-12, atol: 1e-12 }, 'float64');
  });

  it('names a mismatched argument', () => {
    const bn = { gamma: [1, 1], beta: [0, 0], runningMean: [0, 0], runningVar: [1, 1], eps: 1e-5 };
    expect(() => foldBatchNorm({ weight: [1, 2, 3] }, bn)).toThrow(/layer.weight must hold a multiple of 2 values/);
    expect(() => foldBatchNorm({ weight: [1, 2], bias: [1] }, bn)).toThrow(/layer.bias must have 2 values; got 1/);
    expect(() => foldBatchNorm({ weight: [1, 2] }, { ...bn, runningVar: [1] })).toThrow(/bn.runningVar must have 2 values/);
  });
});
