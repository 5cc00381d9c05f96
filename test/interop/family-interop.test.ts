/**
 * The normalization family's interop without a GPU: the ONNX presets (LayerNormalization-17,
 * RMSNormalization-23, GroupNormalization-21 and opset 18's per-group scale, InstanceNormalization)
 * mapped to layer options, with their errors; PyTorch state_dict entries of LayerNorm, RMSNorm,
 * GroupNorm and InstanceNorm to and from the layers' state; ONNX inputs to state.
 */
import { describe, expect, it } from 'vitest';
import { parseNpy, toNpy } from '../../src/interop/npy.js';
import {
  groupNormScaleFromOpset18,
  onnxGroupNormOptions,
  onnxInstanceNormOptions,
  onnxLayerNormOptions,
  onnxRMSNormOptions,
} from '../../src/interop/presets.js';
import { fromOnnxNormInputs, fromPyTorchState, toOnnxNormInputs, toPyTorchState } from '../../src/interop/state-io.js';

const bad = <T>(args: T) => ({ ...args }) as never;

describe('ONNX LayerNormalization (opset 17)', () => {
  it("normalizes X.shape[axis:], ONNX's defaults: axis -1, epsilon 1e-5", () => {
    expect(onnxLayerNormOptions({}, [2, 5, 8])).toEqual({ normalizedShape: [8], eps: 1e-5, elementwiseAffine: true, bias: true });
    expect(onnxLayerNormOptions({ axis: 1 }, [2, 5, 8]).normalizedShape).toEqual([5, 8]);
    expect(onnxLayerNormOptions({ axis: -2, epsilon: 1e-6 }, [2, 5, 8])).toMatchObject({ normalizedShape: [5, 8], eps: 1e-6 });
    expect(onnxLayerNormOptions({ axis: 0 }, [2, 5, 8]).normalizedShape).toEqual([2, 5, 8]);
    expect(onnxLayerNormOptions({ axis: -3 }, [2, 5, 8]).normalizedShape).toEqual([2, 5, 8]);
    expect(onnxLayerNormOptions({ stash_type: 1 }, [4]).normalizedShape).toEqual([4]);
  });

  it('refuses an axis outside [-r, r), a bad shape or epsilon, and stash_type other than 1', () => {
    expect(() => onnxLayerNormOptions({ axis: 3 }, [2, 5, 8])).toThrow(new RangeError('attributes.axis must be an integer in [-3, 2] for X of rank 3 (shape [2, 5, 8]); got 3'));
    expect(() => onnxLayerNormOptions({ axis: -4 }, [2, 5, 8])).toThrow(/attributes\.axis must be an integer in \[-3, 2\]/);
    expect(() => onnxLayerNormOptions({ axis: 1.5 }, [2, 5, 8])).toThrow(/attributes\.axis .* got 1\.5/);
    expect(() => onnxLayerNormOptions({}, [])).toThrow(/inputShape must be the shape of X/);
    expect(() => onnxLayerNormOptions({}, [2, 0])).toThrow(/inputShape\[1\] must be a positive integer; got 0/);
    expect(() => onnxLayerNormOptions({ epsilon: 0 }, [4])).toThrow(/attributes\.epsilon must be a finite number > 0; got 0/);
    expect(() => onnxLayerNormOptions({ stash_type: 16 }, [4])).toThrow(
      new RangeError(
        "attributes.stash_type must be 1 (FLOAT): LayerNormalization's statistics are computed in float32 here, the only precision the kernels have; got 16 (BFLOAT16)",
      ),
    );
    expect(() => onnxLayerNormOptions({ stash_type: 11 }, [4])).toThrow(/got 11 \(DOUBLE\)/);
  });

  it('refuses unknown attribute names, naming the attribute and the accepted ones', () => {
    const accepted = 'expected one of axis, epsilon, stash_type';
    expect(() => onnxLayerNormOptions(bad({ axes: [-1] }), [4])).toThrow(
      new TypeError(`attributes.axes is not an attribute of ONNX LayerNormalization (onnxLayerNormOptions); ${accepted}`),
    );
    expect(() => onnxLayerNormOptions(bad({ eps: 1e-5 }), [4])).toThrow(/^attributes\.eps is not an attribute .* \(ONNX's epsilon\)/);
    expect(() => onnxLayerNormOptions(bad({ stashType: 1 }), [4])).toThrow(/attributes\.stashType .*\(did you mean stash_type\?\)/);
    expect(() => onnxLayerNormOptions(bad({ Scale: [1] }), [4])).toThrow(/attributes\.Scale .*an input of the operator, not an attribute: fromOnnxNormInputs/);
    expect(() => onnxLayerNormOptions(bad({ dtype: 'float16' }), [4])).toThrow(/an option of LayerNorm, not an attribute of the operator: add it to the result, \{ \.\.\.onnxLayerNormOptions\(…\), dtype \}/);
    expect(() => onnxLayerNormOptions(null as never, [4])).toThrow(/attributes must be an object; got null/);
  });
});

describe('ONNX RMSNormalization (opset 23)', () => {
  it("carries ONNX's epsilon default 1e-5, not RMSNorm's 2^-23", () => {
    expect(onnxRMSNormOptions({}, [3, 16])).toEqual({ normalizedShape: [16], eps: 1e-5, elementwiseAffine: true });
    expect(onnxRMSNormOptions({ axis: -2, epsilon: 2 ** -23 }, [3, 4, 16])).toEqual({ normalizedShape: [4, 16], eps: 2 ** -23, elementwiseAffine: true });
  });

  it('refuses stash_type other than 1, a bias input and unknown names', () => {
    expect(() => onnxRMSNormOptions({ stash_type: 10 }, [4])).toThrow(/^attributes\.stash_type must be 1 \(FLOAT\): RMSNormalization's .* got 10 \(FLOAT16\)$/);
    expect(() => onnxRMSNormOptions(bad({ bias: true }), [4])).toThrow(/^attributes\.bias is not an attribute of ONNX RMSNormalization/);
    expect(() => onnxRMSNormOptions(bad({ scale: [1] }), [4])).toThrow(/attributes\.scale .*fromOnnxNormInputs/);
    expect(() => onnxRMSNormOptions({ axis: 2 }, [3, 4])).toThrow(/attributes\.axis must be an integer in \[-2, 1\]/);
  });
});

describe('ONNX InstanceNormalization', () => {
  it('is affine (scale and B are always inputs), keeps no running statistics, channels first by rank', () => {
    expect(onnxInstanceNormOptions({}, 8)).toEqual({ numFeatures: 8, eps: 1e-5, affine: true, trackRunningStats: false, layout: 'NCHW' });
    expect([2, 3, 4, 5].map((rank) => onnxInstanceNormOptions({ epsilon: 1e-3 }, 2, rank).layout)).toEqual(['NC', 'NCL', 'NCHW', 'NCDHW']);
    expect(onnxInstanceNormOptions({ epsilon: 1e-3 }, 2).eps).toBe(1e-3);
  });

  it('refuses bad counts, ranks and names', () => {
    expect(() => onnxInstanceNormOptions({}, 0)).toThrow(/numFeatures must be a positive integer; got 0/);
    expect(() => onnxInstanceNormOptions({}, 4, 6)).toThrow(/rank must be 2, 3, 4 or 5 .*got 6/);
    expect(() => onnxInstanceNormOptions(bad({ momentum: 0.1 }), 4)).toThrow(/attributes\.momentum .*keeps no running statistics/);
    expect(() => onnxInstanceNormOptions(bad({ nonFiniteBatches: 'update' }), 4)).toThrow(
      /attributes\.nonFiniteBatches .*an option of InstanceNorm, not an attribute of the operator: add it to the result, \{ \.\.\.onnxInstanceNormOptions\(…\), nonFiniteBatches \}/,
    );
    expect(() => onnxInstanceNormOptions(bad({ layout: 'NHWC' }), 4)).toThrow(/attributes\.layout .*\(the layout comes from rank, channels first\)/);
    expect(() => onnxInstanceNormOptions(bad({ num_features: 4 }), 4)).toThrow(/^attributes\.num_features is not an attribute of ONNX InstanceNormalization .*; expected one of epsilon$/);
  });
});

describe('ONNX GroupNormalization (opset 21, and opset 18 per-group scale)', () => {
  it('maps num_groups and epsilon; per-channel γ, β as opset 21', () => {
    expect(onnxGroupNormOptions({ num_groups: 2 }, 6)).toEqual({ numGroups: 2, numChannels: 6, eps: 1e-5, affine: true, layout: 'NCHW' });
    expect(onnxGroupNormOptions({ num_groups: 3, epsilon: 1e-6, stash_type: 1 }, 6, 3)).toEqual({ numGroups: 3, numChannels: 6, eps: 1e-6, affine: true, layout: 'NCL' });
  });

  it('refuses num_groups that do not divide C, a missing num_groups, stash_type other than 1, and foreign names', () => {
    expect(() => onnxGroupNormOptions({ num_groups: 4 }, 6)).toThrow(new RangeError('attributes.num_groups must divide the number of channels C = 6 (one of 1, 2, 3, 6); got 4'));
    expect(() => onnxGroupNormOptions(bad({}), 6)).toThrow(/attributes\.num_groups must divide .* got undefined/);
    expect(() => onnxGroupNormOptions({ num_groups: 2, stash_type: 10 }, 6)).toThrow(/stash_type must be 1 .*GroupNormalization's .*got 10 \(FLOAT16\)/);
    expect(() => onnxGroupNormOptions(bad({ numGroups: 2 }), 6)).toThrow(/^attributes\.numGroups is not an attribute of ONNX GroupNormalization \(onnxGroupNormOptions\) \(ONNX's num_groups\)/);
    expect(() => onnxGroupNormOptions(bad({ num_groups: 2, bias: [0] }), 6)).toThrow(/attributes\.bias .*fromOnnxNormInputs/);
  });

  it("groupNormScaleFromOpset18 repeats each group's value over its channels", () => {
    const { scale, bias } = groupNormScaleFromOpset18([2, 3], [-1, 1], 2, 6);
    expect(Array.from(scale)).toEqual([2, 2, 2, 3, 3, 3]);
    expect(Array.from(bias)).toEqual([-1, -1, -1, 1, 1, 1]);
    expect(Array.from(groupNormScaleFromOpset18(Float32Array.of(5), [0], 1, 3).scale)).toEqual([5, 5, 5]);
    expect(() => groupNormScaleFromOpset18([1, 2, 3, 4, 5, 6], [0, 0], 2, 6)).toThrow(/scale must have 2 elements \(one per group, opset 18\); got 6: one per channel is already opset 21's form/);
    expect(() => groupNormScaleFromOpset18([1, 2], [0], 2, 6)).toThrow(/^bias must have 2 elements/);
    expect(() => groupNormScaleFromOpset18([1, 2], [0, 0], 4, 6)).toThrow(/numGroups must divide the number of channels C = 6/);
  });

  it('a GroupNorm with opset 18 scale expanded computes what opset 18 defines (per-group affine after the group statistics)', () => {
    // One sample, C = 4, G = 2, one spatial element per channel: the group statistics are over 2 values.
    const x = [1, 3, 10, 14];
    const [s, b] = [[2, -1], [0.5, 4]];
    const eps = 1e-5;
    const opset18 = x.map((v, c) => {
      const g = Math.floor(c / 2);
      const group = x.slice(2 * g, 2 * g + 2);
      const mean = (group[0] + group[1]) / 2;
      const variance = ((group[0] - mean) ** 2 + (group[1] - mean) ** 2) / 2;
      return { v, g, mean, variance };
    });
    const { scale, bias } = groupNormScaleFromOpset18(s, b, 2, 4);
    opset18.forEach(({ v, g, mean, variance }, c) => {
      const normalized = (v - mean) / Math.sqrt(variance + eps);
      expect(scale[c] * normalized + bias[c]).toBeCloseTo(s[g] * normalized + b[g], 6);
    });
  });
});

describe('PyTorch state_dict of the family', () => {
  it('LayerNorm and GroupNorm: weight → gamma, bias → beta, under a prefix; other modules ignored', () => {
    const dict = { 'enc.ln.weight': [1, 2], 'enc.ln.bias': toNpy(Float32Array.of(3, 4)), 'enc.ln.sub.running_mean': [9], 'other.weight': [7] };
    expect(fromPyTorchState(dict, { prefix: 'enc.ln.', kind: 'LayerNorm' })).toEqual({ gamma: [1, 2], beta: [3, 4] });
    expect(fromPyTorchState({ weight: [1], bias: [0] }, { kind: 'GroupNorm' })).toEqual({ gamma: [1], beta: [0] });
    expect(fromPyTorchState({ weight: [1] }, { kind: 'LayerNorm' })).toEqual({ gamma: [1] }); // LayerNorm(bias=False)
  });

  it('RMSNorm: weight → gamma only; a bias entry is refused, naming the key', () => {
    expect(fromPyTorchState({ 'n.weight': Float32Array.of(1, 2) }, { prefix: 'n.', kind: 'RMSNorm' })).toEqual({ gamma: [1, 2] });
    expect(() => fromPyTorchState({ 'n.weight': [1], 'n.bias': [0] }, { prefix: 'n.', kind: 'RMSNorm' })).toThrow(
      new RangeError(
        "dict['n.bias'] is not an entry of a PyTorch RMSNorm's state_dict, which has 'n.weight'; bias belongs to BatchNorm or LayerNorm or GroupNorm or InstanceNorm: pass that kind (options.kind), or the right prefix",
      ),
    );
  });

  it('InstanceNorm: running statistics too; num_batches_tracked accepted (checked, then ignored)', () => {
    const dict = { weight: [1, 1], bias: [0, 0], running_mean: [0.5, 1], running_var: [2, 3], num_batches_tracked: 0n };
    expect(fromPyTorchState(dict, { kind: 'InstanceNorm' })).toEqual({ gamma: [1, 1], beta: [0, 0], runningMean: [0.5, 1], runningVar: [2, 3] });
    expect(fromPyTorchState({ running_mean: [0], running_var: [1], num_batches_tracked: BigInt64Array.of(5n) }, { kind: 'InstanceNorm' })).toEqual({ runningMean: [0], runningVar: [1] });
    expect(() => fromPyTorchState({ running_mean: [0], num_batches_tracked: [1, 2] }, { kind: 'InstanceNorm' })).toThrow(/num_batches_tracked'\] must hold one value; got 2/);
  });

  it("refuses another kind's entries, an unknown kind or option, and a dict with none of the kind's entries", () => {
    expect(() => fromPyTorchState({ weight: [1], running_mean: [0] }, { kind: 'LayerNorm' })).toThrow(
      /^dict\['running_mean'\] is not an entry of a PyTorch LayerNorm's state_dict, which has 'weight', 'bias'; running_mean belongs to BatchNorm or InstanceNorm/,
    );
    expect(() => fromPyTorchState({ weight: [1], num_batches_tracked: 3 }, { kind: 'GroupNorm' })).toThrow(/^dict\['num_batches_tracked'\] is not an entry of a PyTorch GroupNorm's/);
    expect(() => fromPyTorchState({ weight: [1] }, { kind: 'LayerNorm2d' as never })).toThrow(/options\.kind must be one of 'BatchNorm', 'LayerNorm', 'RMSNorm', 'GroupNorm', 'InstanceNorm'; got the string 'LayerNorm2d'/);
    expect(() => fromPyTorchState({ weight: [1] }, bad({ kind: 'LayerNorm', strict: true }))).toThrow(/options\.strict is not an option of fromPyTorchState; expected one of prefix, kind/);
    expect(() => fromPyTorchState({ 'a.weight': [1] }, { prefix: 'b.', kind: 'RMSNorm' })).toThrow(/dict has none of 'b\.weight' \(a PyTorch RMSNorm's state_dict entries\)/);
    expect(() => fromPyTorchState({ weight: new Uint8Array(3) }, { kind: 'LayerNorm' })).toThrow(/dict\['weight'\]: not a .npy file/);
  });

  it('BatchNorm stays the default: a prefix string or { prefix }, with num_batches_tracked', () => {
    const dict = { 'bn.weight': [1], 'bn.num_batches_tracked': 4n };
    expect(fromPyTorchState(dict, 'bn.')).toEqual({ gamma: [1], numBatchesTracked: 4 });
    expect(fromPyTorchState(dict, { prefix: 'bn.' })).toEqual({ gamma: [1], numBatchesTracked: 4 });
    expect(fromPyTorchState(dict, { prefix: 'bn.', kind: 'BatchNorm' })).toEqual({ gamma: [1], numBatchesTracked: 4 });
  });

  it('toPyTorchState writes each kind’s entries; InstanceNorm adds num_batches_tracked = 0 as a 0-d int64', () => {
    const g = Float32Array.of(1, 2);
    const b = Float32Array.of(3, 4);
    const m = Float32Array.of(0, 1);
    const v = Float32Array.of(1, 2);
    expect(Object.keys(toPyTorchState({ gamma: g, beta: b }, { kind: 'LayerNorm', prefix: 'ln.' }))).toEqual(['ln.weight', 'ln.bias']);
    expect(toPyTorchState({ gamma: g }, { kind: 'RMSNorm' })).toEqual({ weight: g });
    expect(toPyTorchState({ gamma: g, beta: b }, { kind: 'GroupNorm' })).toEqual({ weight: g, bias: b });
    const inorm = toPyTorchState({ gamma: g, beta: b, runningMean: m, runningVar: v }, { kind: 'InstanceNorm' });
    expect(inorm).toEqual({ weight: g, bias: b, running_mean: m, running_var: v, num_batches_tracked: BigInt64Array.of(0n) });
    const files = toPyTorchState({ gamma: g, beta: b, runningMean: m, runningVar: v }, { kind: 'InstanceNorm', npy: true });
    expect(parseNpy(files.num_batches_tracked as Uint8Array)).toEqual({ dtype: '<i8', shape: [], data: Float64Array.of(0) });
    expect(parseNpy(files.running_var as Uint8Array)).toMatchObject({ dtype: '<f4', shape: [2] });
    // And back: the entries load into the same state.
    expect(fromPyTorchState(files, { kind: 'InstanceNorm' })).toEqual({ gamma: [1, 2], beta: [3, 4], runningMean: [0, 1], runningVar: [1, 2] });
  });

  it("with `layer`, only the entries PyTorch's module has (load_state_dict strict)", () => {
    const g = Float32Array.of(1);
    const b = Float32Array.of(0);
    const stats = { gamma: g, beta: b, runningMean: Float32Array.of(0), runningVar: Float32Array.of(1) };
    // InstanceNorm2d(C) by default: affine=False, track_running_stats=False → an empty state_dict.
    expect(toPyTorchState(stats, { kind: 'InstanceNorm', layer: { affine: false, trackRunningStats: false } })).toEqual({});
    expect(Object.keys(toPyTorchState(stats, { kind: 'InstanceNorm', layer: { affine: false, trackRunningStats: true } }))).toEqual(['running_mean', 'running_var', 'num_batches_tracked']);
    expect(Object.keys(toPyTorchState(stats, { kind: 'InstanceNorm', layer: { affine: true, trackRunningStats: false } }))).toEqual(['weight', 'bias']);
    expect(Object.keys(toPyTorchState({ gamma: g, beta: b }, { kind: 'LayerNorm', layer: { elementwiseAffine: true, bias: false } }))).toEqual(['weight']);
    expect(toPyTorchState({ gamma: g, beta: b }, { kind: 'LayerNorm', layer: { elementwiseAffine: false, bias: true } })).toEqual({});
    expect(toPyTorchState({ gamma: g }, { kind: 'RMSNorm', layer: { elementwiseAffine: false } })).toEqual({});
    expect(toPyTorchState({ gamma: g, beta: b }, { kind: 'GroupNorm', layer: { affine: false } })).toEqual({});
  });

  it('toPyTorchState without kind is BatchNorm, and says so when the state is not one', () => {
    expect(() => toPyTorchState({ gamma: Float32Array.of(1), beta: Float32Array.of(0) })).toThrow(
      new TypeError("state.numBatchesTracked is missing: a BatchNorm's getState() has it; for a LayerNorm, RMSNorm, GroupNorm or InstanceNorm state pass options.kind"),
    );
    expect(() => toPyTorchState({ gamma: Float32Array.of(1) }, { kind: 'Norm' as never })).toThrow(/options\.kind must be one of/);
  });
});

describe('ONNX inputs of the family', () => {
  it("maps each operator's names: Scale/scale → gamma, B/bias → beta", () => {
    expect(fromOnnxNormInputs('LayerNormalization', { Scale: [1, 2], B: Float32Array.of(3, 4) })).toEqual({ gamma: [1, 2], beta: [3, 4] });
    expect(fromOnnxNormInputs('LayerNormalization', { Scale: [1] })).toEqual({ gamma: [1] }); // B is optional
    expect(fromOnnxNormInputs('RMSNormalization', { scale: toNpy(Float32Array.of(2)) })).toEqual({ gamma: [2] });
    expect(fromOnnxNormInputs('GroupNormalization', { scale: [1, 1], bias: [0, 1] })).toEqual({ gamma: [1, 1], beta: [0, 1] });
    expect(fromOnnxNormInputs('GroupNormalization', groupNormScaleFromOpset18([2], [1], 1, 2))).toEqual({ gamma: [2, 2], beta: [1, 1] });
    expect(fromOnnxNormInputs('InstanceNormalization', { scale: [1], B: [0] })).toEqual({ gamma: [1], beta: [0] });
  });

  it("refuses another operator's spelling, naming the key", () => {
    expect(() => fromOnnxNormInputs('LayerNormalization', bad({ scale: [1] }))).toThrow(
      new TypeError('inputs.scale is not an input of ONNX LayerNormalization (LayerNormalization spells it Scale); expected one of Scale, B'),
    );
    expect(() => fromOnnxNormInputs('GroupNormalization', bad({ scale: [1], B: [0] }))).toThrow(/^inputs\.B is not an input of ONNX GroupNormalization \(GroupNormalization calls it bias\)/);
    expect(() => fromOnnxNormInputs('InstanceNormalization', bad({ bias: [0] }))).toThrow(/^inputs\.bias .*\(InstanceNormalization calls it B\)/);
    expect(() => fromOnnxNormInputs('RMSNormalization', bad({ scale: [1], bias: [0] }))).toThrow(/^inputs\.bias .*\(RMSNormalization has no bias\); expected one of scale$/);
    expect(() => fromOnnxNormInputs('InstanceNormalization', bad({ input_mean: [0] }))).toThrow(/keeps no running statistics/);
    expect(() => fromOnnxNormInputs('BatchNormalization' as never, {})).toThrow(/op must be one of .*\(BatchNormalization: fromOnnxInputs\)/);
    expect(() => fromOnnxNormInputs('RMSNormalization', {})).toThrow(/inputs has none of 'scale'/);
  });

  it('toOnnxNormInputs writes the inputs back, as arrays or .npy', () => {
    const state = { gamma: Float32Array.of(1, 2), beta: Float32Array.of(0, 0) };
    expect(toOnnxNormInputs('LayerNormalization', state)).toEqual({ Scale: state.gamma, B: state.beta });
    expect(toOnnxNormInputs('RMSNormalization', { gamma: state.gamma })).toEqual({ scale: state.gamma });
    const files = toOnnxNormInputs('GroupNormalization', state, { npy: true });
    expect(fromOnnxNormInputs('GroupNormalization', files)).toEqual({ gamma: [1, 2], beta: [0, 0] });
  });
});
