/**
 * The family's ONNX presets and state I/O on real layers: each of LayerNorm, RMSNorm, GroupNorm
 * and InstanceNorm built from its ONNX preset, loaded with fromOnnxNormInputs (GroupNorm from
 * opset 18's per-group scale through groupNormScaleFromOpset18), runs one forward pass on the GPU
 * against the float64 reference; PyTorch state_dict entries round-trip through real layers, and an
 * InstanceNorm loaded from a PyTorch state_dict normalizes with its running statistics at inference.
 */
import { describe, expect, it } from 'vitest';
import { normalSamples } from '../../../support/random.js';
import { groupNormScaleFromOpset18, onnxGroupNormOptions, onnxInstanceNormOptions, onnxLayerNormOptions, onnxRMSNormOptions } from '../../../src/interop/presets.js';
import { fromOnnxNormInputs, fromPyTorchState, toPyTorchState } from '../../../src/interop/state-io.js';
import { GroupNorm, InstanceNorm, LayerNorm, RMSNorm } from '../../../src/normalization/layer.js';
import { referenceInference } from '../../../src/batchnorm/reference.js';
import { referenceGroupNorm, referenceInstanceNorm, referenceLayerNorm, referenceRMSNorm } from '../../../src/normalization/reference.js';
import { channelView } from '../../../src/core/layout.js';
import { expectClose, type Tolerance } from '../../helpers/data.js';
import { testDevice } from '../../helpers/gpu.js';

/** Outputs of O(1) (normalized data, |γ| ≤ 2, |β| ≤ 1) in float32 against float64: a few float32 roundings. */
const Y_TOL: Tolerance = { rtol: 1e-5, atol: 1e-5 };

const ramp = (n: number, from: number, step: number) => Float32Array.from({ length: n }, (_, i) => from + step * i);
const size = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

describe('layers built from the ONNX presets match the float64 reference', () => {
  it('LayerNormalization (axis -2, epsilon 1e-3) with Scale and B', async () => {
    const device = await testDevice();
    const shape = [3, 4, 5];
    const options = onnxLayerNormOptions({ axis: -2, epsilon: 1e-3 }, shape);
    const layer = new LayerNorm(device, options);
    try {
      expect(layer.normalizedShape).toEqual([4, 5]);
      expect(layer.eps).toBe(1e-3);
      const Scale = ramp(20, 0.5, 0.05);
      const B = ramp(20, -0.5, 0.05);
      layer.setState(fromOnnxNormInputs('LayerNormalization', { Scale, B }));
      const x = normalSamples(size(shape), 1, 3, 2);
      const y = await layer.forward(x, shape);
      expectClose(y, referenceLayerNorm(x, shape, [4, 5], { gamma: Scale, beta: B, eps: 1e-3 }).y, Y_TOL, 'y');
    } finally {
      layer.destroy();
    }
  });

  it("RMSNormalization (axis -1, ONNX's epsilon 1e-5) with scale", async () => {
    const device = await testDevice();
    const shape = [6, 16];
    const layer = new RMSNorm(device, onnxRMSNormOptions({}, shape));
    try {
      expect(layer.eps).toBe(1e-5);
      const scale = ramp(16, 2, -0.1);
      layer.setState(fromOnnxNormInputs('RMSNormalization', { scale }));
      const x = normalSamples(size(shape), 2, 0.5, 1.5);
      const y = await layer.forward(x, shape);
      expectClose(y, referenceRMSNorm(x, shape, [16], { gamma: scale, eps: 1e-5 }).y, Y_TOL, 'y');
    } finally {
      layer.destroy();
    }
  });

  it("GroupNormalization (num_groups 2) with opset 18's per-group scale and bias", async () => {
    const device = await testDevice();
    const shape = [2, 6, 3, 3];
    const layer = new GroupNorm(device, onnxGroupNormOptions({ num_groups: 2 }, 6, shape.length));
    try {
      expect([layer.numGroups, layer.numChannels, layer.layout]).toEqual([2, 6, 'NCHW']);
      const inputs = groupNormScaleFromOpset18([1.5, -0.5], [0.25, 1], 2, 6);
      layer.setState(fromOnnxNormInputs('GroupNormalization', inputs));
      const x = normalSamples(size(shape), 3, -2, 3);
      const y = await layer.forward(x, shape);
      const ref = referenceGroupNorm(x, shape, { layout: 'NCHW', numGroups: 2, gamma: inputs.scale, beta: inputs.bias, eps: 1e-5 });
      expectClose(y, ref.y, Y_TOL, 'y');
      // Opset 18's own definition: the group's scale and bias after the group's statistics.
      const spatial = 9;
      const opset18 = Float64Array.from(x, (v, e) => {
        const n = Math.floor(e / (6 * spatial));
        const g = Math.floor((Math.floor(e / spatial) % 6) / 3);
        const k = n * 2 + g;
        return [1.5, -0.5][g] * ((v - ref.mean[k]) / Math.sqrt(ref.variance[k] + 1e-5)) + [0.25, 1][g];
      });
      expectClose(y, opset18, Y_TOL, 'y against opset 18');
    } finally {
      layer.destroy();
    }
  });

  it('InstanceNormalization (epsilon 1e-3) on (N, C, L): affine, instance statistics at inference too', async () => {
    const device = await testDevice();
    const shape = [2, 3, 10];
    const layer = new InstanceNorm(device, onnxInstanceNormOptions({ epsilon: 1e-3 }, 3, shape.length));
    try {
      expect([layer.layout, layer.affine, layer.trackRunningStats]).toEqual(['NCL', true, false]);
      const scale = Float32Array.of(1, 2, -1);
      const B = Float32Array.of(0, 0.5, -0.5);
      layer.setState(fromOnnxNormInputs('InstanceNormalization', { scale, B }));
      const x = normalSamples(size(shape), 4, 1, 2);
      const expected = referenceInstanceNorm(x, shape, { layout: 'NCL', gamma: scale, beta: B, eps: 1e-3 }).y;
      expectClose(await layer.forward(x, shape, { training: true }), expected, Y_TOL, 'y (training)');
      expectClose(await layer.forward(x, shape, { training: false }), expected, Y_TOL, 'y (inference)');
    } finally {
      layer.destroy();
    }
  });
});

describe('PyTorch state_dict entries through real layers', () => {
  it('each layer: toPyTorchState of its state loads back into a fresh layer unchanged', async () => {
    const device = await testDevice();
    const g = ramp(6, 0.5, 0.25);
    const b = ramp(6, -1, 0.5);
    const cases = [
      { kind: 'LayerNorm' as const, make: () => new LayerNorm(device, { normalizedShape: [2, 3] }), state: { gamma: g, beta: b } },
      { kind: 'RMSNorm' as const, make: () => new RMSNorm(device, { normalizedShape: 6 }), state: { gamma: g } },
      { kind: 'GroupNorm' as const, make: () => new GroupNorm(device, { numGroups: 3, numChannels: 6 }), state: { gamma: g, beta: b } },
      {
        kind: 'InstanceNorm' as const,
        make: () => new InstanceNorm(device, { numFeatures: 6, affine: true, trackRunningStats: true }),
        state: { gamma: g, beta: b, runningMean: ramp(6, -2, 1), runningVar: ramp(6, 0.5, 0.5) },
      },
    ];
    for (const { kind, make, state } of cases) {
      const source = make();
      const target = make();
      try {
        source.setState(state as never);
        const entries = toPyTorchState(await source.getState(), { kind, prefix: 'm.', npy: true, layer: source });
        const keys = { LayerNorm: ['weight', 'bias'], RMSNorm: ['weight'], GroupNorm: ['weight', 'bias'], InstanceNorm: ['weight', 'bias', 'running_mean', 'running_var', 'num_batches_tracked'] }[kind];
        expect(Object.keys(entries), kind).toEqual(keys.map((k) => `m.${k}`));
        target.setState(fromPyTorchState(entries, { prefix: 'm.', kind }) as never);
        const back = (await target.getState()) as unknown as Record<string, Float32Array>;
        for (const [field, values] of Object.entries(state)) expect(Array.from(back[field]), `${kind} ${field}`).toEqual(Array.from(values));
      } finally {
        source.destroy();
        target.destroy();
      }
    }
  });

  it("an InstanceNorm with track_running_stats loaded from PyTorch's entries normalizes with them at inference", async () => {
    const device = await testDevice();
    const shape = [2, 4, 5, 5];
    const layer = new InstanceNorm(device, { numFeatures: 4, affine: true, trackRunningStats: true });
    try {
      const dict = {
        'in1.weight': [1, 0.5, 2, -1],
        'in1.bias': [0, 1, -1, 0.5],
        'in1.running_mean': [0.5, -1, 2, 0],
        'in1.running_var': [1, 4, 0.25, 2],
        'in1.num_batches_tracked': 0n,
      };
      layer.setState(fromPyTorchState(dict, { prefix: 'in1.', kind: 'InstanceNorm' }));
      const x = normalSamples(size(shape), 5, 1, 2);
      const y = await layer.forward(x, shape, { training: false });
      const expected = referenceInference(x, channelView('NCHW', shape), {
        runningMean: dict['in1.running_mean'],
        runningVar: dict['in1.running_var'],
        gamma: dict['in1.weight'],
        beta: dict['in1.bias'],
        eps: 1e-5,
      });
      expectClose(y, expected, Y_TOL, 'y (inference with running statistics)');
    } finally {
      layer.destroy();
    }
  });
});
