/**
 * Dispatches beyond maxComputeWorkgroupsPerDimension (65535 here): the host spreads them over a
 * 2-D grid and the kernels fold it back. Each case asserts it really crossed the limit.
 */
import { describe, it, expect } from 'vitest';
import { BatchNorm } from '../../../src/batchnorm/layer.js';
import { channelView, viewSize } from '../../../src/core/layout.js';
import { referenceTrainingForward } from '../../../src/batchnorm/reference.js';
import { WORKGROUP_SIZE } from '../../../src/core/contract.js';
import { CHUNK as REDUCTION_CHUNK } from '../../../src/batchnorm/plan.js';
import { channelData, expectClose, randn } from '../../helpers/data.js';
import { testDevice } from '../../helpers/gpu.js';
import { expectTrainingGradients, yTolerance } from '../../helpers/tolerances.js';

describe('more than 65535 workgroups in one dispatch', () => {
  it('elementwise passes over 18.4M elements (71,778 workgroups): forward and backward', async () => {
    const device = await testDevice();
    const shape = [2, 3, 1750, 1750];
    const view = channelView('NCHW', shape);
    const n = viewSize(view);
    expect(Math.ceil(n / WORKGROUP_SIZE)).toBeGreaterThan(Math.max(70_000, device.limits.maxComputeWorkgroupsPerDimension));
    const x = channelData(view, 100);
    const bn = new BatchNorm(device, { numFeatures: 3, layout: 'NCHW' });
    const y = await bn.forward(x, shape, { training: true });
    const gamma = [1, 1, 1];
    const ref = referenceTrainingForward(x, view, { gamma, beta: [0, 0, 0], eps: 1e-5 });
    const stats = { ...ref, gamma, eps: 1e-5 };
    expectClose(y, ref.y, yTolerance(x, view, stats), 'y');
    const dy = randn(n, 101);
    const g = await bn.backward(dy);
    expectTrainingGradients(g, x, dy, view, stats);
    bn.destroy();
  });

  it('per-channel reductions over 70,000 channels (70,000 workgroups each): forward and backward', async () => {
    const device = await testDevice();
    // NCL with inner = 2: the chunked reductions, one workgroup per (channel, chunk). ((N,C) takes
    // the channels-last reductions, which need far fewer workgroups.)
    const C = 70_000;
    const shape = [3, C, 2];
    const view = channelView('NCL', shape);
    expect(C * Math.ceil((3 * 2) / REDUCTION_CHUNK)).toBeGreaterThan(device.limits.maxComputeWorkgroupsPerDimension);
    const x = channelData(view, 110);
    const gamma = Array.from(randn(C, 111, 1, 0.3));
    const beta = Array.from(randn(C, 112));
    const bn = new BatchNorm(device, { numFeatures: C, layout: 'NCL' });
    bn.setState({ gamma, beta });
    const y = await bn.forward(x, shape, { training: true });
    const ref = referenceTrainingForward(x, view, { gamma, beta, eps: 1e-5 });
    const stats = { ...ref, gamma, eps: 1e-5 };
    expectClose(y, ref.y, yTolerance(x, view, stats), 'y');
    const dy = randn(x.length, 113);
    const g = await bn.backward(dy);
    expectTrainingGradients(g, x, dy, view, stats);
    bn.destroy();
  });
});
