/**
 * The ONNX preset and state I/O: onnxOptions' mapping and errors, fromOnnxInputs/toOnnxInputs,
 * and GPU layers built from them trained and run against a float64 implementation of ONNX's
 * BatchNormalization-15 written here from the operator's definition (docs/Operators.md and
 * onnx/reference/ops/op_batch_normalization.py): biased batch variance, momentum as the weight
 * of the old value, channel axis 1.
 */
import { describe, expect, it } from 'vitest';
import { parseNpy } from '../../src/interop/npy.js';
import { onnxOptions, pytorchOptions } from '../../src/interop/presets.js';
import { fromOnnxInputs, toOnnxInputs, type OnnxBatchNormInputs } from '../../src/interop/state-io.js';
import { BatchNorm } from '../../src/batchnorm/layer.js';
import { channelView } from '../../src/core/layout.js';
import { channelData, expectClose, type Tolerance } from '../helpers/data.js';
import { testDevice } from '../helpers/gpu.js';
import { STATS_TOL, yTolerance } from '../helpers/tolerances.js';

type Vec = ArrayLike<number>;

/**
 * ONNX BatchNormalization (opset 15) in float64 on X of shape (N, C, D1, …, Dn). training_mode=1:
 * current_mean/current_var reduce over every axis but 1 (the population variance, divided by the
 * count), Y = (X − current_mean)/√(current_var + ε)·scale + B, running = input·momentum +
 * current·(1 − momentum). training_mode=0: Y = scale·(X − input_mean)/√(input_var + ε) + B.
 */
function onnxBatchNormalization(
  x: Vec,
  shape: readonly number[],
  inputs: { scale: Vec; B: Vec; input_mean: Vec; input_var: Vec },
  attrs: { epsilon: number; momentum: number; training_mode: 0 | 1 },
) {
  const C = shape[1];
  const inner = shape.slice(2).reduce((a, b) => a * b, 1);
  const count = shape[0] * inner;
  const channelOf = (e: number) => Math.floor(e / inner) % C;
  const currentMean = new Float64Array(C);
  const currentVar = new Float64Array(C);
  for (let e = 0; e < x.length; e++) currentMean[channelOf(e)] += x[e] / count;
  for (let e = 0; e < x.length; e++) currentVar[channelOf(e)] += (x[e] - currentMean[channelOf(e)]) ** 2 / count;
  const training = attrs.training_mode === 1;
  const mean = training ? currentMean : inputs.input_mean;
  const variance = training ? currentVar : inputs.input_var;
  const Y = Float64Array.from(x, (v, e) => {
    const c = channelOf(e);
    return (inputs.scale[c] * (v - mean[c])) / Math.sqrt(variance[c] + attrs.epsilon) + inputs.B[c];
  });
  const m = attrs.momentum;
  const running_mean = Float64Array.from(inputs.input_mean, (v, c) => v * m + currentMean[c] * (1 - m));
  const running_var = Float64Array.from(inputs.input_var, (v, c) => v * m + currentVar[c] * (1 - m));
  return { Y, mean, variance, running_mean, running_var, currentVar, count };
}

/** |actual − wrong| exceeds ten times the tolerance around `wrong` in every element. */
function expectFarFrom(actual: Vec, wrong: Vec, tol: Tolerance, what: string) {
  for (let i = 0; i < wrong.length; i++) {
    const bound = (tol.atol as number) + tol.rtol * Math.abs(wrong[i]);
    expect(Math.abs(actual[i] - wrong[i]), `${what}[${i}]`).toBeGreaterThan(10 * bound);
  }
}

describe('onnxOptions', () => {
  it("ONNX's defaults: epsilon 1e-5, momentum 1 − 0.9, biased running variance, channels first by rank", () => {
    const o = onnxOptions({ numFeatures: 8, rank: 4 });
    expect(o).toMatchObject({ numFeatures: 8, layout: 'NCHW', eps: 1e-5, affine: true, trackRunningStats: true, runningVariance: 'biased' });
    expect(o.momentum).toBeCloseTo(0.1, 15);
    expect([2, 3, 4, 5].map((rank) => onnxOptions({ numFeatures: 1, rank }).layout)).toEqual(['NC', 'NCL', 'NCHW', 'NCDHW']);
    const custom = onnxOptions({ numFeatures: 2, rank: 2, epsilon: 1e-3, momentum: 0.99 });
    expect(custom.eps).toBe(1e-3);
    expect(custom.momentum).toBeCloseTo(0.01, 15);
    expect(onnxOptions({ numFeatures: 2, rank: 2, momentum: 1 }).momentum).toBe(0); // keeps input_mean/input_var
    expect(onnxOptions({ numFeatures: 2, rank: 2, momentum: 0 }).momentum).toBe(1); // takes the batch's
  });

  it('differs from pytorchOptions where the frameworks differ: biased variance, and momentum counted from the old value', () => {
    // At the defaults the momenta coincide (ONNX 0.9 old = PyTorch 0.1 new): only the variance differs.
    const onnx = onnxOptions({ numFeatures: 8, rank: 4 });
    const torch = pytorchOptions({ numFeatures: 8, layout: 'NCHW' });
    expect({ ...onnx, momentum: 0 }).toEqual({ ...torch, momentum: 0, runningVariance: 'biased' });
    expect(torch.runningVariance).toBe('unbiased');
    // The same number means opposite things: PyTorch's 0.8 weighs the batch, ONNX's the old value.
    expect(onnxOptions({ numFeatures: 8, rank: 4, momentum: 0.8 }).momentum).toBeCloseTo(0.2, 15);
    expect(pytorchOptions({ numFeatures: 8, layout: 'NCHW', momentum: 0.8 }).momentum).toBe(0.8);
  });

  it('names the argument that is wrong', () => {
    for (const rank of [0, 1, 6, 2.5, NaN]) {
      expect(() => onnxOptions({ numFeatures: 1, rank })).toThrow(new RegExp(`args\\.rank must be 2, 3, 4 or 5 .*; got ${rank}$`));
    }
    for (const [momentum, got] of [[-0.1, '-0.1'], [1.5, '1.5'], [NaN, 'NaN'], ['0.9', "the string '0.9'"], [null, 'null']] as const) {
      expect(() => onnxOptions({ numFeatures: 1, rank: 2, momentum: momentum as number })).toThrow(
        new RegExp(`args\\.momentum must be a number in \\[0, 1\\] \\(ONNX's weight of the old value\\); got ${got}$`),
      );
    }
    for (const epsilon of [0, -1e-5, Infinity, NaN]) {
      expect(() => onnxOptions({ numFeatures: 1, rank: 2, epsilon })).toThrow(/args\.epsilon must be a finite number > 0/);
    }
  });
});

describe('onnxOptions refuses unknown arguments', () => {
  const accepted = 'expected one of numFeatures, rank, epsilon, momentum';
  const bad = <T>(args: T) => ({ ...args }) as never;

  it("training_mode is the training flag of each call; the operator's inputs and PyTorch's names are not attributes", () => {
    expect(() => onnxOptions(bad({ numFeatures: 3, rank: 4, training_mode: 1 }))).toThrow(
      new TypeError(`args.training_mode is not an argument of onnxOptions (the \`training\` flag of each call); ${accepted}`),
    );
    for (const input of ['scale', 'B', 'input_mean', 'input_var']) {
      expect(() => onnxOptions(bad({ numFeatures: 3, rank: 4, [input]: [1, 1, 1] }))).toThrow(
        new TypeError(`args.${input} is not an argument of onnxOptions (an input of the operator, not an attribute: fromOnnxInputs converts the inputs for setState); ${accepted}`),
      );
    }
    expect(() => onnxOptions(bad({ numFeatures: 3, rank: 4, eps: 1e-3 }))).toThrow(/^args\.eps is not an argument of onnxOptions \(ONNX's epsilon\)/);
    expect(() => onnxOptions(bad({ numFeatures: 3, rank: 4, spatial: 1 }))).toThrow(/^args\.spatial is not an argument of onnxOptions \(the layer normalizes per channel/);
    expect(() => onnxOptions(bad({ numFeatures: 3, rank: 4, layout: 'NCHW' }))).toThrow(/^args\.layout is not an argument of onnxOptions \(the layout comes from rank, channels first\)/);
    expect(() => onnxOptions(bad({ numFeatures: 3, rank: 4, label: 'bn1' }))).toThrow(
      /^args\.label is not an argument of onnxOptions \(an option of BatchNorm, which onnxOptions does not take: add it to the result, \{ \.\.\.onnxOptions\(…\), label \}\)/,
    );
    expect(() => onnxOptions(bad({ num_features: 3, rank: 4 }))).toThrow(/^args\.num_features is not an argument of onnxOptions \(did you mean numFeatures\?\)/);
  });

  it('checks keys before values; a key set to undefined passes; args must be an object', () => {
    expect(() => onnxOptions(bad({ numFeatures: 3, rank: 7, training_mode: 0 }))).toThrow(/^args\.training_mode is not/);
    expect(onnxOptions(bad({ numFeatures: 3, rank: 4, training_mode: undefined })).layout).toBe('NCHW');
    expect(() => onnxOptions(undefined as never)).toThrow(new TypeError('args must be an object; got undefined'));
  });
});

describe('ONNX inputs', () => {
  const state = {
    gamma: Float32Array.of(1.5, 0.5, 2),
    beta: Float32Array.of(0.1, -0.2, 0.3),
    runningMean: Float32Array.of(10, 20, 30),
    runningVar: Float32Array.of(4, 9, 16),
    numBatchesTracked: 0,
  };

  it('scale, B, input_mean and input_var round-trip through a GPU layer, as arrays and as .npy files', async () => {
    const device = await testDevice();
    for (const npy of [false, true]) {
      const inputs = toOnnxInputs(state, { npy });
      expect(Object.keys(inputs)).toEqual(['scale', 'B', 'input_mean', 'input_var']);
      if (npy) expect(parseNpy(inputs.input_var as Uint8Array)).toMatchObject({ dtype: '<f4', shape: [3] });
      else expect(inputs).toEqual({ scale: state.gamma, B: state.beta, input_mean: state.runningMean, input_var: state.runningVar });
      const bn = new BatchNorm(device, onnxOptions({ numFeatures: 3, rank: 4 }));
      bn.setState(fromOnnxInputs(inputs));
      expect(await bn.getState()).toEqual(state);
      bn.destroy();
    }
  });

  it('maps each name to its field, leaves missing inputs out, and keeps no batch count', () => {
    expect(fromOnnxInputs({ scale: [1, 2], B: [3, 4], input_mean: [5, 6], input_var: [7, 8] })).toEqual({
      gamma: [1, 2],
      beta: [3, 4],
      runningMean: [5, 6],
      runningVar: [7, 8],
    });
    expect(fromOnnxInputs({ input_var: Float64Array.of(0.5) })).toEqual({ runningVar: [0.5] });
  });

  it('names the input that is wrong', () => {
    expect(() => fromOnnxInputs({})).toThrow(/inputs has none of 'scale', 'B', 'input_mean', 'input_var'/);
    const pytorchNames = { running_mean: [1] } as unknown as Partial<OnnxBatchNormInputs>;
    expect(() => fromOnnxInputs(pytorchNames)).toThrow(/inputs\['running_mean'\] is not an input of ONNX BatchNormalization: use 'scale', 'B', 'input_mean', 'input_var'/);
    expect(() => fromOnnxInputs({ input_var: new Uint8Array(3) })).toThrow(/inputs\['input_var'\]: not a .npy file/);
    expect(() => fromOnnxInputs({ B: 3 as unknown as number[] })).toThrow(/inputs\['B'\] must be an array of numbers or a .npy file/);
    expect(() => fromOnnxInputs(null as unknown as OnnxBatchNormInputs)).toThrow(/inputs must be an object/);
  });
});

describe('an ONNX-preset layer on the GPU', () => {
  const cases = [
    { shape: [6, 3], attrs: {}, npy: false },
    { shape: [2, 3, 4], attrs: { momentum: 0.7 }, npy: true },
    { shape: [2, 3, 2, 2], attrs: { epsilon: 1e-3, momentum: 0.95 }, npy: false },
    { shape: [2, 3, 2, 1, 2], attrs: {}, npy: true },
  ];
  for (const { shape, attrs, npy } of cases) {
    it(`rank ${shape.length} ${JSON.stringify(attrs)}: inference, three training steps and inference again as the ONNX operator`, async () => {
      const device = await testDevice();
      const rank = shape.length;
      const { epsilon = 1e-5, momentum = 0.9 } = attrs as { epsilon?: number; momentum?: number };
      const options = onnxOptions({ numFeatures: 3, rank, ...attrs });
      const view = channelView(options.layout, shape);
      const bn = new BatchNorm(device, options);
      // The graph's initializers, rounded to float32 as an ONNX model stores them.
      let inputs: OnnxBatchNormInputs<Float32Array> = {
        scale: Float32Array.of(1.5, 0.5, 2),
        B: Float32Array.of(0.25, -1, 0.5),
        input_mean: Float32Array.of(4, -2, 0.5),
        input_var: Float32Array.of(0.25, 6, 2),
      };
      bn.setState(fromOnnxInputs(npy ? toOnnxInputs({ gamma: inputs.scale, beta: inputs.B, runningMean: inputs.input_mean, runningVar: inputs.input_var, numBatchesTracked: 0 }, { npy }) : inputs));

      const x0 = channelData(view, 80 + rank);
      const before = onnxBatchNormalization(x0, shape, inputs, { epsilon, momentum, training_mode: 0 });
      const y0 = await bn.forward(x0, shape, { training: false });
      expectClose(y0, before.Y, yTolerance(x0, view, { ...before, gamma: inputs.scale, eps: epsilon }), 'Y (training_mode=0, imported inputs)');

      // ONNX's running outputs become the next step's inputs; the same chain with PyTorch's unbiased
      // update and with momentum read the other way round must end far from the layer's.
      let running: { input_mean: Vec; input_var: Vec } = inputs;
      let unbiased: Vec = inputs.input_var;
      let swapped: { input_mean: Vec; input_var: Vec } = inputs;
      for (let step = 0; step < 3; step++) {
        const x = channelData(view, 90 + 10 * rank + step);
        const ref = onnxBatchNormalization(x, shape, { ...inputs, ...running }, { epsilon, momentum, training_mode: 1 });
        const y = await bn.forward(x, shape, { training: true });
        expectClose(y, ref.Y, yTolerance(x, view, { ...ref, gamma: inputs.scale, eps: epsilon }), `Y (training_mode=1, step ${step})`);
        unbiased = Float64Array.from(unbiased, (v, c) => v * momentum + ((ref.currentVar[c] * ref.count) / (ref.count - 1)) * (1 - momentum));
        const other = onnxBatchNormalization(x, shape, { ...inputs, ...swapped }, { epsilon, momentum: 1 - momentum, training_mode: 1 });
        swapped = { input_mean: other.running_mean, input_var: other.running_var };
        running = { input_mean: ref.running_mean, input_var: ref.running_var };
      }
      const out = toOnnxInputs(await bn.getState()) as OnnxBatchNormInputs<Float32Array>;
      expectClose(out.input_mean, running.input_mean, STATS_TOL, 'running_mean');
      expectClose(out.input_var, running.input_var, STATS_TOL, 'running_var');
      expect(Array.from(out.scale)).toEqual(Array.from(inputs.scale)); // forward passes leave γ and β alone
      expect(Array.from(out.B)).toEqual(Array.from(inputs.B));
      expectFarFrom(out.input_var, unbiased, STATS_TOL, 'running_var with the unbiased update');
      expectFarFrom(out.input_mean, swapped.input_mean, STATS_TOL, 'running_mean with momentum as the new weight');
      expectFarFrom(out.input_var, swapped.input_var, STATS_TOL, 'running_var with momentum as the new weight');

      // Inference with the layer's running statistics as ONNX's input_mean and input_var.
      inputs = { ...inputs, input_mean: out.input_mean, input_var: out.input_var };
      const x1 = channelData(view, 120 + rank);
      const after = onnxBatchNormalization(x1, shape, inputs, { epsilon, momentum, training_mode: 0 });
      const y1 = await bn.forward(x1, shape, { training: false });
      expectClose(y1, after.Y, yTolerance(x1, view, { ...after, gamma: inputs.scale, eps: epsilon }), 'Y (training_mode=0, after training)');
      bn.destroy();
    });
  }
});
