/**
 * Bad input to the normalization family is refused with an error naming the argument and the
 * expected value (and what was received), before any state changes: a refused call loses no
 * state (γ, β, running statistics, the last forward pass a backward pass belongs to).
 */
import { describe, expect, it } from 'vitest';
import { GroupNorm, InstanceNorm, LayerNorm, RMSNorm } from '../../../src/normalization/layer.js';
import {
  NORM_SAVED_BYTES_PER_GROUP,
  encodeGroupNormForward,
  encodeInstanceNormForward,
  encodeLayerNormForward,
  encodeRMSNormBackward,
} from '../../../src/normalization/functions.js';
import { referenceGroupNorm, referenceGroupNormBackward } from '../../../src/normalization/reference.js';
import { expectClose, randn } from '../../helpers/data.js';
import { runningOf } from '../../helpers/family.js';
import { storageBuffer, testDevice } from '../../helpers/gpu.js';

type Ctor = new (device: GPUDevice, options: never) => { destroy(): void };
const make = (cls: unknown, options: object) => async () => {
  const device = await testDevice();
  return new (cls as Ctor)(device, options as never);
};

describe('constructor options', () => {
  it.each([
    // numChannels not divisible by numGroups: both named, with their values.
    ['GroupNorm', GroupNorm, { numGroups: 4, numChannels: 6 }, /options\.numChannels \(6\) must be divisible by options\.numGroups \(4\)/],
    ['GroupNorm', GroupNorm, { numGroups: 0, numChannels: 6 }, /options\.numGroups must be a positive integer; got 0/],
    ['GroupNorm', GroupNorm, { numGroups: 2, numChannels: 2.5 }, /options\.numChannels must be a positive integer; got 2\.5/],
    ['GroupNorm', GroupNorm, { numGroups: 2, numChannels: 4, layout: 'NWC' }, /options\.layout must be one of 'NC', 'NCL', 'NLC', 'NCHW', 'NHWC', 'NCDHW', 'NDHWC'; got the string 'NWC'/],
    ['InstanceNorm', InstanceNorm, { numFeatures: 0 }, /options\.numFeatures must be a positive integer; got 0/],
    ['LayerNorm', LayerNorm, { normalizedShape: [] }, /options\.normalizedShape must .*; got \[\]|options\.normalizedShape must .*; got an Array of 0/],
    ['LayerNorm', LayerNorm, { normalizedShape: [4, 0] }, /options\.normalizedShape.*positive integer.*got 0/],
    ['RMSNorm', RMSNorm, { normalizedShape: '8' }, /options\.normalizedShape must .*; got the string '8'/],
    // eps <= 0 or not finite.
    ['LayerNorm', LayerNorm, { normalizedShape: 4, eps: 0 }, /options\.eps must be a finite number > 0; got 0/],
    ['RMSNorm', RMSNorm, { normalizedShape: 4, eps: -1e-5 }, /options\.eps must be a finite number > 0; got -0\.00001/],
    ['GroupNorm', GroupNorm, { numGroups: 1, numChannels: 2, eps: NaN }, /options\.eps must be a finite number > 0; got NaN/],
    ['InstanceNorm', InstanceNorm, { numFeatures: 2, eps: Infinity }, /options\.eps must be a finite number > 0; got Infinity/],
    ['InstanceNorm', InstanceNorm, { numFeatures: 2, eps: '1e-5' }, /options\.eps must be a finite number > 0; got the string '1e-5'/],
    // momentum outside [0, 1].
    ['InstanceNorm', InstanceNorm, { numFeatures: 2, trackRunningStats: true, momentum: 1.5 }, /options\.momentum must be a number in \[0, 1\].*; got 1\.5/],
    ['InstanceNorm', InstanceNorm, { numFeatures: 2, trackRunningStats: true, momentum: -0.1 }, /options\.momentum must be a number in \[0, 1\].*; got -0\.1/],
    ['InstanceNorm', InstanceNorm, { numFeatures: 2, momentum: NaN }, /options\.momentum must be a number in \[0, 1\].*; got NaN/],
    ['InstanceNorm', InstanceNorm, { numFeatures: 2, nonFiniteBatches: 'ignore' }, /options\.nonFiniteBatches must be 'skip' or 'update'; got the string 'ignore'/],
    ['LayerNorm', LayerNorm, { normalizedShape: 4, activation: 'gelu' }, /options\.activation must be 'none', 'relu' or 'silu'; got the string 'gelu'/],
    ['GroupNorm', GroupNorm, { numGroups: 1, numChannels: 2, dtype: 'float64' }, /options\.dtype must be 'float32' or 'float16'; got the string 'float64'/],
    // Unknown option names, PyTorch's spellings among them.
    ['LayerNorm', LayerNorm, { normalizedShape: 4, elementwise_affine: false }, /options\.elementwise_affine is not an option of LayerNorm \(PyTorch's elementwise_affine is elementwiseAffine here\); expected one of normalizedShape, elementwiseAffine, /],
    ['LayerNorm', LayerNorm, { normalized_shape: 4 }, /options\.normalized_shape is not an option of LayerNorm \(PyTorch's normalized_shape is normalizedShape here\)/],
    ['LayerNorm', LayerNorm, { normalizedShape: 4, epsilon: 1e-3 }, /options\.epsilon is not an option of LayerNorm.*; expected one of .*eps/],
    ['RMSNorm', RMSNorm, { normalizedShape: 4, bias: false }, /options\.bias is not an option of RMSNorm.*; expected one of /],
    ['GroupNorm', GroupNorm, { num_groups: 2, numChannels: 4 }, /options\.num_groups is not an option of GroupNorm \(PyTorch's num_groups is numGroups here\); expected one of numGroups, /],
    ['GroupNorm', GroupNorm, { numGroups: 2, numChannels: 4, momentum: 0.1 }, /options\.momentum is not an option of GroupNorm/],
    ['InstanceNorm', InstanceNorm, { numFeatures: 2, track_running_stats: true }, /options\.track_running_stats is not an option of InstanceNorm \(PyTorch's track_running_stats is trackRunningStats here\); expected one of numFeatures, /],
    ['InstanceNorm', InstanceNorm, { numFeatures: 2, elementwiseAffine: true }, /options\.elementwiseAffine is not an option of InstanceNorm.*; expected one of .*affine/],
  ] as [string, unknown, object, RegExp][])('%s %j', async (_, cls, options, message) => {
    await expect(make(cls, options)()).rejects.toThrow(message);
  });

  it('the device and the options object themselves', async () => {
    const device = await testDevice();
    expect(() => new LayerNorm(undefined as unknown as GPUDevice, { normalizedShape: 4 })).toThrow(/^device must be a GPUDevice; got undefined/);
    expect(() => new GroupNorm(device, 3 as never)).toThrow(/^options must be an object.*; got 3$/);
  });
});

describe('forward and backward arguments', () => {
  it('normalizedShape not matching the trailing dims of the shape', async () => {
    const device = await testDevice();
    const ln = new LayerNorm(device, { normalizedShape: [3, 4] });
    await expect(ln.forward(new Float32Array(24), [2, 4, 3])).rejects.toThrow(/normalizedShape \[3, 4\].*shape \[2, 4, 3\]|shape \[2, 4, 3\].*normalizedShape \[3, 4\]/);
    await expect(ln.forward(new Float32Array(4), [4])).rejects.toThrow(/shape .*\[4\].*normalizedShape \[3, 4\]|normalizedShape \[3, 4\].*\[4\]/);
    const rms = new RMSNorm(device, { normalizedShape: 5 });
    await expect(rms.forward(new Float32Array(20), [5, 4])).rejects.toThrow(/normalizedShape \[5\].*\[5, 4\]|\[5, 4\].*normalizedShape \[5\]/);
    ln.destroy();
    rms.destroy();
  });

  it('a shape of the wrong rank for the layout, or the wrong channel count', async () => {
    const device = await testDevice();
    const gn = new GroupNorm(device, { numGroups: 2, numChannels: 6, layout: 'NCHW' });
    await expect(gn.forward(new Float32Array(48), [2, 6, 4])).rejects.toThrow(/shape must have 4 dimensions for layout 'NCHW'; got \[2, 6, 4\]/);
    await expect(gn.forward(new Float32Array(64), [2, 4, 4, 2])).rejects.toThrow(/shape \[2, 4, 4, 2\] must have 6 channels \(numChannels\) on its channel axis for layout 'NCHW'; got 4/);
    const inorm = new InstanceNorm(device, { numFeatures: 3, layout: 'NHWC' });
    await expect(inorm.forward(new Float32Array(32), [2, 2, 2, 4])).rejects.toThrow(/shape \[2, 2, 2, 4\] must have 3 channels \(numFeatures\) on its channel axis for layout 'NHWC'; got 4/);
    await expect(inorm.forward(new Float32Array(24), [2, 2, 2, 3, 1])).rejects.toThrow(/shape must have 4 dimensions for layout 'NHWC'; got \[2, 2, 2, 3, 1\]/);
    await expect(inorm.forward(new Float32Array(24), [2, 2, 2.5, 3])).rejects.toThrow(/shape\[2\] must be a positive integer; got 2\.5/);
    gn.destroy();
    inorm.destroy();
  });

  it('arrays of the wrong length or type', async () => {
    const device = await testDevice();
    const gn = new GroupNorm(device, { numGroups: 1, numChannels: 3, layout: 'NCHW' });
    await expect(gn.forward(new Float32Array(23), [2, 3, 2, 2])).rejects.toThrow(/x must have 24 elements for shape \[2, 3, 2, 2\]; got 23/);
    await gn.forward(randn(24, 1), [2, 3, 2, 2]);
    await expect(gn.backward(new Float32Array(25))).rejects.toThrow(/dy must have 24 elements for the last forward pass's shape \[2, 3, 2, 2\]; got 25/);
    await expect(gn.forward(new Uint16Array(24), [2, 3, 2, 2])).rejects.toThrow(/x must be a Float32Array for a float32 layer; got a Uint16Array of 24/);
    gn.destroy();
  });

  it('training InstanceNorm with running statistics on one spatial element is refused, at inference it is fine', async () => {
    const device = await testDevice();
    const inorm = new InstanceNorm(device, { numFeatures: 3, layout: 'NCHW', trackRunningStats: true });
    await expect(inorm.forward(new Float32Array(6), [2, 3, 1, 1], { training: true })).rejects.toThrow(/more than 1 spatial element.*got shape \[2, 3, 1, 1\]/);
    const nc = new InstanceNorm(device, { numFeatures: 3, layout: 'NC', trackRunningStats: true });
    await expect(nc.forward(new Float32Array(6), [2, 3])).rejects.toThrow(/more than 1 spatial element/);
    const state = runningOf(await inorm.getState());
    expect(Array.from(state.runningMean), 'the refused call changed nothing').toEqual([0, 0, 0]);
    expect(Array.from(state.runningVar)).toEqual([1, 1, 1]);
    inorm.setState({ runningMean: [1, 2, 3], runningVar: [4, 4, 4] });
    const y = await inorm.forward(Float32Array.of(3, 2, 1, 5, 4, 3), [2, 3, 1, 1], { training: false });
    expectClose(y, [2, 0, -2, 4, 2, 0].map((v) => v / Math.sqrt(4 + 1e-5)), { rtol: 1e-6, atol: 1e-7 }, 'inference on one spatial element');
    inorm.destroy();
    nc.destroy();
  });

  it.each([
    ['LayerNorm', () => testDevice().then((d) => new LayerNorm(d, { normalizedShape: 4 }))],
    ['RMSNorm', () => testDevice().then((d) => new RMSNorm(d, { normalizedShape: 4 }))],
    ['GroupNorm', () => testDevice().then((d) => new GroupNorm(d, { numGroups: 2, numChannels: 4 }))],
    ['InstanceNorm', () => testDevice().then((d) => new InstanceNorm(d, { numFeatures: 4 }))],
  ] as [string, () => Promise<LayerNorm | RMSNorm | GroupNorm | InstanceNorm>][])('%s: backward before forward, and getStats before forward', async (_, create) => {
    const layer = await create();
    await expect(layer.backward(new Float32Array(16))).rejects.toThrow(/backward\(\) needs (a )?forward/);
    await expect(layer.getStats()).rejects.toThrow(/getStats\(\) needs a forward pass/);
    layer.destroy();
  });

  it('caller buffers: too small, or the output in the input\'s buffer', async () => {
    const device = await testDevice();
    const ln = new LayerNorm(device, { normalizedShape: 4 });
    const encoder = device.createCommandEncoder();
    const x = storageBuffer(device, new Float32Array(8));
    const small = storageBuffer(device, new Float32Array(7));
    expect(() => ln.encodeForward(encoder, { x, y: small, shape: [2, 4] })).toThrow(/args\.y must hold at least 32 bytes \(float32 \[2, 4\]\); got 28/);
    expect(() => ln.encodeForward(encoder, { x, y: x, shape: [2, 4] })).toThrow(/args\.y must be in a different GPUBuffer from args\.x/);
    const saved = storageBuffer(device, new Float32Array(2));
    const y = storageBuffer(device, new Float32Array(8));
    expect(NORM_SAVED_BYTES_PER_GROUP).toBe(16);
    expect(() => encodeLayerNormForward(device, encoder, { x, y, shape: [2, 4], normalizedShape: [4], saved })).toThrow(/args\.saved must hold at least 32 bytes.*got 8/);
    expect(() => encodeGroupNormForward(device, encoder, { x, y, shape: [2, 4], numGroups: 3, layout: 'NC', saved: storageBuffer(device, new Float32Array(64)) })).toThrow(/args\.numGroups \(3\) must divide the 4 channels of args\.shape \[2, 4\]/);
    // The layers' option checks, as arguments of the functions.
    expect(() => encodeLayerNormForward(device, encoder, { x, y, shape: [2, 4], normalizedShape: [4], saved: storageBuffer(device, new Float32Array(64)), eps: -1 })).toThrow(/args\.eps must be a finite number > 0; got -1/);
    // A state array's length names what sets it.
    expect(() => ln.setState({ gamma: [1, 2, 3] })).toThrow(/state\.gamma must have 4 elements \(the product of normalizedShape \[4\]\); got 3/);
    encoder.finish();
    ln.destroy();
    for (const b of [x, small, saved, y]) b.destroy();
  });

  it('function forms: unknown argument names, β for RMSNorm, running statistics given alone', async () => {
    const device = await testDevice();
    const x = storageBuffer(device, new Float32Array(16));
    const y = storageBuffer(device, new Float32Array(16));
    const dx = storageBuffer(device, new Float32Array(16));
    const saved = storageBuffer(device, new Float32Array(64));
    const rm = storageBuffer(device, new Float32Array(4));
    const encoder = device.createCommandEncoder();
    expect(() => encodeGroupNormForward(device, encoder, { x, y, shape: [2, 4, 2], layout: 'NCL', numGroups: 2, saved, num_groups: 2 } as never)).toThrow(
      /args\.num_groups is not an argument of the GroupNorm forward function.*; expected one of .*numGroups/,
    );
    expect(() => encodeLayerNormForward(device, encoder, { x, y, shape: [4, 4], normalizedShape: 4, saved, weight: rm } as never)).toThrow(/args\.weight is not an argument of the LayerNorm forward function/);
    expect(() => encodeRMSNormBackward(device, encoder, { x, dy: y, dx, shape: [4, 4], normalizedShape: 4, saved, dbeta: rm } as never)).toThrow(/args\.dbeta is not an argument of RMSNorm/);
    expect(() => encodeInstanceNormForward(device, encoder, { x, y, shape: [2, 4, 2], layout: 'NCL', saved, runningMean: rm })).toThrow(/args\.runningMean and args\.runningVar must be given together; got only runningMean/);
    encoder.finish();
    for (const b of [x, y, dx, saved, rm]) b.destroy();
  });
});

describe('setState', () => {
  it.each([
    ['weight', /state\.weight is not a state entry of GroupNorm \(PyTorch's weight is gamma here; fromPyTorchState.* converts a whole state_dict\)/],
    ['bias', /state\.bias is not a state entry of GroupNorm \(PyTorch's bias is beta here; fromPyTorchState.* converts a whole state_dict\)/],
    ['running_mean', /state\.running_mean is not a state entry of GroupNorm \(PyTorch's running_mean is runningMean here/],
  ])("refuses PyTorch's %s with a hint", async (name, message) => {
    const device = await testDevice();
    const gn = new GroupNorm(device, { numGroups: 1, numChannels: 2 });
    expect(() => gn.setState({ [name]: [1, 2] } as never)).toThrow(message);
    gn.destroy();
  });

  it("refuses them on each layer, and InstanceNorm's running_var", async () => {
    const device = await testDevice();
    const ln = new LayerNorm(device, { normalizedShape: 2 });
    const rms = new RMSNorm(device, { normalizedShape: 2 });
    const inorm = new InstanceNorm(device, { numFeatures: 2, affine: true, trackRunningStats: true });
    expect(() => ln.setState({ weight: [1, 2] } as never)).toThrow(/state\.weight is not a state entry of LayerNorm \(PyTorch's weight is gamma here/);
    expect(() => rms.setState({ weight: [1, 2] } as never)).toThrow(/state\.weight is not a state entry of RMSNorm \(PyTorch's weight is gamma here/);
    expect(() => rms.setState({ beta: [1, 2] } as never)).toThrow(/state\.beta is not a state entry of RMSNorm/);
    expect(() => inorm.setState({ running_var: [1, 2] } as never)).toThrow(/state\.running_var is not a state entry of InstanceNorm \(PyTorch's running_var is runningVar here/);
    expect(() => ln.setState({ gamma: [1, 2, 3] })).toThrow(/state\.gamma must have 2 (elements|values).*got .*3/);
    expect(() => ln.setState({ gamma: [1, NaN] })).toThrow(/state\.gamma.*finite.*NaN/);
    expect(() => inorm.setState({ runningVar: [1, -1] })).toThrow(/state\.runningVar.*>= 0.*-1/);
    for (const l of [ln, rms, inorm]) l.destroy();
  });

  it('refused setState calls write nothing, not even the valid entries beside the bad one', async () => {
    const device = await testDevice();
    const inorm = new InstanceNorm(device, { numFeatures: 2, affine: true, trackRunningStats: true });
    inorm.setState({ gamma: [2, 3], beta: [0.5, -0.5], runningMean: [1, 1], runningVar: [2, 2] });
    const before = await inorm.getState();
    expect(() => inorm.setState({ gamma: [7, 7], weight: [1, 1] } as never)).toThrow(/state\.weight/);
    expect(() => inorm.setState({ beta: [7, 7], runningMean: [1, 2, 3] })).toThrow(/state\.runningMean/);
    expect(await inorm.getState()).toEqual(before);
    inorm.destroy();
  });
});

describe('refused calls lose no state', () => {
  it('a refused forward pass leaves γ, β and the last forward pass: backward still differentiates the last good one', async () => {
    const device = await testDevice();
    const shape = [2, 4, 5];
    const gamma = Float32Array.of(1.5, 0.5, -1, 2);
    const beta = Float32Array.of(0.1, 0.2, 0.3, 0.4);
    const gn = new GroupNorm(device, { numGroups: 2, numChannels: 4, layout: 'NCL' });
    gn.setState({ gamma, beta });
    const x = randn(40, 2300, 1, 2);
    const dy = randn(40, 2301);
    await gn.forward(x, shape);
    const statsBefore = await gn.getStats();
    await expect(gn.forward(new Float32Array(39), shape)).rejects.toThrow(/x must have 40 elements/);
    await expect(gn.forward(new Float32Array(48), [2, 6, 4])).rejects.toThrow(/must have 4 channels \(numChannels\)/);
    expect(() => gn.setState({ gamma: [1, 2] })).toThrow(/state\.gamma/);
    expect(await gn.getStats()).toEqual(statsBefore);
    const state = await gn.getState();
    expect(Array.from(state.gamma)).toEqual(Array.from(gamma));
    expect(Array.from(state.beta!)).toEqual(Array.from(beta));
    const g = await gn.backward(dy);
    const ref = referenceGroupNorm(x, shape, { layout: 'NCL', numGroups: 2, gamma, beta, eps: 1e-5 });
    const refG = referenceGroupNormBackward(x, dy, shape, { layout: 'NCL', numGroups: 2, gamma, eps: 1e-5 });
    expectClose(g.dx, refG.dx, { rtol: 1e-4, atol: 1e-5 }, 'dx of the last good forward pass');
    expectClose(g.dgamma!, refG.dgamma, { rtol: 1e-4, atol: 1e-5 }, 'dgamma');
    expect(ref.y.length).toBe(40);
    gn.destroy();
  });

  it('a refused InstanceNorm training pass leaves the running statistics', async () => {
    const device = await testDevice();
    const inorm = new InstanceNorm(device, { numFeatures: 2, layout: 'NCL', trackRunningStats: true });
    await inorm.forward(randn(20, 2310, 3, 1), [2, 2, 5], { training: true });
    const before = await inorm.getState();
    await expect(inorm.forward(new Float32Array(4), [2, 2, 1], { training: true })).rejects.toThrow(/spatial element/);
    await expect(inorm.forward(new Float32Array(20), [2, 2, 5, 1], { training: true })).rejects.toThrow(/shape must have 3 dimensions for layout 'NCL'/);
    expect(await inorm.getState()).toEqual(before);
    inorm.destroy();
  });
});
