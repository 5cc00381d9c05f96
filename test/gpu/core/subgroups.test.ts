/**
 * The reductions with and without subgroups. On a device with `subgroups` (SwiftShader offers
 * it, with subgroups of 4) the kernels that merge across a workgroup -- partial_stats,
 * finalize_stats, partial_grad_sums, finalize_grads, scaling_partials -- run the subgroups
 * variant (reduce_subgroups.wgsl); on a device requested without it (getDevice({ adapterFeatures:
 * false })) the same kernels run the workgroup-memory tree (reduce_tree.wgsl). Both run the same
 * cases, and each is checked against the float64 reference; then against each other: on full
 * subgroups (SwiftShader's) the subgroup stage replays the tree's last merges, so the bits agree.
 *
 * The shapes leave a workgroup's lanes partly empty, in counts that are multiples of no subgroup
 * size: 21 values per channel (21 of 64 threads hold data), 3 partials per channel for
 * finalize (6100 and 4320 values per channel, 600 rows), on the scalar, runs-of-4 and
 * channels-last paths, and one with a large offset (the k-way Chan merge on shifted data).
 *
 * Tolerances: batch norm's (test/helpers/tolerances.ts); batch statistics: mean within
 * 1e-6·(|mean| + std), variance within 1e-5 relative (the large-offset case: the numerics
 * guarantee, 1e-3 relative); feature scaling: min and max exact, mean and variance 1e-5
 * relative.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BatchNorm } from '../../../src/batchnorm/layer.js';
import { FeatureScaler } from '../../../src/feature-scaling/layer.js';
import { SUBGROUP_KERNELS } from '../../helpers/kernel-families.js';
import { getDevice } from '../../../src/core/device.js';
import { channelView, type Layout } from '../../../src/core/layout.js';
import { referenceTrainingForward } from '../../../src/batchnorm/reference.js';
import { referenceFeatureScaling } from '../../../src/feature-scaling/reference.js';
import { channelData, expectClose, randn } from '../../helpers/data.js';
import { recordingDevice } from '../../helpers/dispatch-recorder.js';
import { testAdapter, testDevice } from '../../helpers/gpu.js';
import { expectTrainingGradients, yTolerance } from '../../helpers/tolerances.js';

const CASES: [Layout, number[], string, number][] = [
  ['NCL', [3, 2, 7], '21 values per channel: 21 of 64 lanes hold data', 0],
  ['NCHW', [2, 3, 50, 61], '6100 values per channel: 3 chunks, the scalar path', 0],
  ['NCHW', [3, 2, 36, 40], '4320 values per channel: 3 chunks, runs of 4', 0],
  ['NC', [600, 7], 'channels-last: 3 row blocks merged by finalize_stats', 0],
  ['NHWC', [8, 8, 8, 32], 'channels-last vec4 (its lane tree has no subgroup variant)', 0],
  ['NCL', [5, 3, 1001], 'offset 1e4: 5005 values per channel, 3 chunks', 1e4],
];

let withSubgroups: GPUDevice;
let without: GPUDevice;
let adapterHasSubgroups: boolean;

beforeAll(async () => {
  withSubgroups = await testDevice();
  adapterHasSubgroups = (await testAdapter()).features.has('subgroups');
  without = await getDevice({ adapterFeatures: false, label: 'device without subgroups' });
});

afterAll(() => without.destroy());

const DEVICES = ['with subgroups', 'without subgroups'] as const;
const deviceNamed = (name: (typeof DEVICES)[number]) => (name === 'with subgroups' ? withSubgroups : without);

/** The labels of the pipelines a training step and a feature-scaling adapt record on `device`. */
function pipelineLabels(device: GPUDevice): string[] {
  const recorder = recordingDevice(device);
  const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
  const x = device.createBuffer({ size: 6 * 4 * 7 * 4, usage });
  const y = device.createBuffer({ size: 6 * 4 * 7 * 4, usage });
  const z = device.createBuffer({ size: 6 * 4 * 7 * 4, usage });
  const bn = new BatchNorm(recorder.device, { numFeatures: 4, layout: 'NCL' });
  const scaler = new FeatureScaler(recorder.device, { numFeatures: 4, layout: 'NCL', method: 'standardize' });
  const encoder = recorder.device.createCommandEncoder();
  bn.encodeForward(encoder, { x, y, shape: [6, 4, 7], training: true });
  bn.encodeBackward(encoder, { x, dy: y, dx: z, shape: [6, 4, 7] });
  scaler.encodeAdapt(encoder, { x: y, shape: [6, 4, 7] });
  bn.destroy();
  scaler.destroy();
  for (const buffer of [x, y, z]) buffer.destroy();
  return [...new Set(recorder.take().filter((line) => line !== '--').map((line) => line.replace(/^webgpu-batchnorm (.*) \[.*/, '$1')))];
}

describe('which variant runs', () => {
  it('the test device has subgroups where the adapter offers them (SwiftShader does); the other device has none', () => {
    expect(withSubgroups.features.has('subgroups')).toBe(adapterHasSubgroups);
    expect(without.features.has('subgroups')).toBe(false);
  });

  it.each(DEVICES)('%s: the merging kernels are labelled with the variant they run, the others are not', (name) => {
    const labels = pipelineLabels(deviceNamed(name));
    const expectVariant = name === 'with subgroups' && adapterHasSubgroups;
    for (const kernel of SUBGROUP_KERNELS) {
      expect(labels, kernel).toContain(`${kernel} (f32${expectVariant ? ', subgroups' : ''})`);
    }
    const others = labels.filter((label) => !SUBGROUP_KERNELS.has(label.split(' ')[0] as never));
    expect(others.length).toBeGreaterThan(3);
    expect(others.filter((label) => label.includes('subgroups'))).toEqual([]);
  });
});

/** A training step of `bn` on `device`, checked against the float64 reference; its outputs. */
async function trainingStep(device: GPUDevice, layout: Layout, shape: number[], offset: number) {
  const view = channelView(layout, shape);
  const C = view.channels;
  const x = channelData(view, 300 + C).map((v) => v + offset);
  const dy = randn(x.length, 301);
  const gamma = Array.from({ length: C }, (_, c) => 0.75 + 0.25 * c);
  const beta = Array.from({ length: C }, (_, c) => 0.1 * c - 0.2);
  const bn = new BatchNorm(device, { numFeatures: C, layout });
  bn.setState({ gamma, beta });
  const y = await bn.forward(x, shape, { training: true });
  const gpu = await bn.getBatchStats();
  const ref = referenceTrainingForward(x, view, { gamma, beta, eps: 1e-5 });
  for (let c = 0; c < C; c++) {
    const std = Math.sqrt(ref.variance[c]);
    expect(Math.abs(gpu.mean[c] - ref.mean[c]), `mean of channel ${c}`).toBeLessThanOrEqual(1e-6 * (Math.abs(ref.mean[c]) + std));
    expect(Math.abs(gpu.variance[c] - ref.variance[c]) / ref.variance[c], `variance of channel ${c}`).toBeLessThanOrEqual(offset ? 1e-3 : 1e-5);
  }
  const stats = { mean: ref.mean, variance: ref.variance, gamma, eps: 1e-5 };
  expectClose(y, ref.y, yTolerance(x, view, stats), 'y');
  const g = await bn.backward(dy);
  expectTrainingGradients(g, x, dy, view, stats);
  bn.destroy();
  return { mean: gpu.mean, variance: gpu.variance, y, dx: g.dx, dgamma: g.dgamma, dbeta: g.dbeta };
}

/** Feature scaling's adapted statistics of `x` on `device`, checked against the float64 reference. */
async function scalingStats(device: GPUDevice, layout: Layout, shape: number[]) {
  const view = channelView(layout, shape);
  const x = channelData(view, 310);
  const scaler = new FeatureScaler(device, { numFeatures: view.channels, layout, method: 'standardize' });
  await scaler.adapt(x, shape);
  const stats = await scaler.getStats();
  const ref = referenceFeatureScaling(x, view, 'standardize', 1);
  expectClose(stats.min, ref.min, { rtol: 0, atol: 0 }, 'min');
  expectClose(stats.max, ref.max, { rtol: 0, atol: 0 }, 'max');
  expectClose(stats.mean, ref.mean, { rtol: 1e-5, atol: 1e-6 }, 'mean');
  expectClose(stats.variance, ref.variance, { rtol: 1e-5, atol: 0 }, 'variance');
  scaler.destroy();
  return { min: stats.min, max: stats.max, mean: stats.mean, variance: stats.variance };
}

/** Each output as a plain array, so that toEqual compares the float32 values bit for bit (NaN included). */
const plain = (outputs: Record<string, ArrayLike<number> | null | undefined>) =>
  Object.fromEntries(Object.entries(outputs).map(([name, values]) => [name, Array.from(values ?? [])]));

describe('both variants against the reference, and the same bits', () => {
  it.each(CASES)('%s %j (%s): statistics, y, dx, dγ and dβ', async (layout, shape, _why, offset) => {
    const [sub, tree] = [await trainingStep(withSubgroups, layout, shape, offset), await trainingStep(without, layout, shape, offset)];
    // The subgroup stage replays the tree's last merges (full subgroups: SwiftShader's are).
    expect(plain(sub)).toEqual(plain(tree));
  });

  it.each(CASES.slice(0, 3))('feature scaling %s %j: min, max, mean and variance', async (layout, shape) => {
    const [sub, tree] = [await scalingStats(withSubgroups, layout, shape), await scalingStats(without, layout, shape)];
    expect(plain(sub)).toEqual(plain(tree));
  });
});
