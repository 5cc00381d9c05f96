/**
 * How many dependent dispatches each call records, the cost of a small tensor on a GPU (each one
 * waits for the last), as a layer and as a function form, in every layout and dtype, fused
 * activation or not: BatchNorm's inference forward pass is one dispatch; a training forward pass
 * two (partial statistics, then normalize merging them) where no whole-batch decision is needed
 * (nonFiniteBatches 'update', or no running statistics), three under the default 'skip' (a
 * finalize decides whether the batch counts); a backward pass two (partial sums, then dx merging
 * them). The feature scaler follows: adapt 3, transform and inverse 1 each. And the cost of merging
 * where the partials are used stays bounded: at most one partial read per MERGE_ELEMENTS_PER_READ
 * elements, down to one partial per channel.
 */
import { describe, expect, it } from 'vitest';
import {
  BatchNorm,
  FeatureScaler,
  SAVED_BYTES_PER_FEATURE,
  channelView,
  encodeBatchNormBackward,
  encodeBatchNormForward,
  releaseFunctionCaches,
  viewSize,
  type BatchNormOptions,
  type DType,
  type Layout,
} from '../../../src/index.js';
import { MERGE_ELEMENTS_PER_READ, batchNormPlan } from '../../../src/batchnorm/plan.js';
import { blankBuffer, blankStateBuffers, recordingDevice } from '../../helpers/dispatch-recorder.js';
import { seenAsGpu, testDevice } from '../../helpers/gpu.js';

/** Dispatches per compute pass of the recorded lines ('--' ends a pass). */
function perPass(lines: string[]): number[] {
  const counts: number[] = [];
  let n = 0;
  for (const line of lines) {
    if (line === '--') {
      counts.push(n);
      n = 0;
    } else n++;
  }
  return counts;
}

const buffer = blankBuffer;

const CASES: [Layout, number[]][] = [
  ['NC', [600, 7]],
  ['NCHW', [4, 3, 40, 40]],
  ['NHWC', [8, 8, 8, 32]], // channels-last vec4 kernels
  ['NHWC', [2, 4, 4, 3]],
  ['NCDHW', [2, 3, 2, 2, 3]],
];
const MODES: Record<string, Partial<BatchNormOptions>> = {
  default: {},
  relu: { activation: 'relu' },
  untracked: { trackRunningStats: false },
  update: { nonFiniteBatches: 'update' },
};

describe('dispatches per call', async () => {
  const recorder = recordingDevice(await testDevice());
  const device = recorder.device;

  for (const [layout, shape] of CASES) {
    for (const dtype of ['float32', 'float16'] as DType[]) {
      it(`BatchNorm ${layout} [${shape}] ${dtype}: inference 1 (2 with batch statistics); training forward 3 under 'skip', 2 otherwise; backward 2`, () => {
        const view = channelView(layout, shape);
        const bytes = dtype === 'float32' ? viewSize(view) * 4 : Math.ceil(viewSize(view) / 2) * 4;
        const [x, y, dy, dx] = [0, 1, 2, 3].map(() => buffer(device, bytes));
        for (const [mode, options] of Object.entries(MODES)) {
          const bn = new BatchNorm(device, { numFeatures: view.channels, layout, dtype, ...options });
          for (const training of [true, false]) {
            const encoder = device.createCommandEncoder();
            bn.encodeForward(encoder, { x, y, shape, training });
            bn.encodeBackward(encoder, { x, dy, dx, shape });
            const [forward, backward] = perPass(recorder.take());
            const tracked = options.trackRunningStats !== false;
            const skips = tracked && options.nonFiniteBatches !== 'update';
            const expected = !tracked ? 2 : !training ? 1 : skips ? 3 : 2;
            expect(forward, `${mode} ${training ? 'training' : 'inference'} forward`).toBe(expected);
            expect(backward, `${mode} backward`).toBe(2);
          }
          bn.destroy();
        }
        for (const b of [x, y, dy, dx]) b.destroy();
      });
    }
  }

  it("the function forms: inference 1, training forward 3 under 'skip' and 2 under 'update', backward 2", () => {
    const [layout, shape] = CASES[1];
    const C = channelView(layout, shape).channels;
    const size = shape.reduce((p, d) => p * d, 1) * 4;
    const [x, y, dy, dx] = [0, 1, 2, 3].map(() => buffer(device, size));
    const buffers = blankStateBuffers(device, C, SAVED_BYTES_PER_FEATURE);
    for (const nonFiniteBatches of ['skip', 'update'] as const) {
      for (const training of [true, false]) {
        const encoder = device.createCommandEncoder();
        const options = { layout, nonFiniteBatches };
        encodeBatchNormForward(device, encoder, { x, y, shape, training, buffers, options });
        encodeBatchNormBackward(device, encoder, { x, dy, dx, shape, buffers, options });
        const [forward, backward] = perPass(recorder.take());
        expect(forward, `${nonFiniteBatches} ${training}`).toBe(!training ? 1 : nonFiniteBatches === 'skip' ? 3 : 2);
        expect(backward).toBe(2);
      }
    }
    releaseFunctionCaches(device);
    for (const b of [x, y, dy, dx, ...Object.values(buffers)]) b.destroy();
  });

  it('FeatureScaler: adapt 3, transform 1, inverse 1', async () => {
    const [layout, shape] = CASES[2];
    const size = shape.reduce((p, d) => p * d, 1) * 4;
    const [x, y, z] = [0, 1, 2].map(() => buffer(device, size));
    const scaler = new FeatureScaler(device, { numFeatures: channelView(layout, shape).channels, layout, method: 'standardize' });
    const encoder = device.createCommandEncoder();
    scaler.encodeAdapt(encoder, { x, shape });
    scaler.encodeTransform(encoder, { x, y, shape });
    scaler.encodeInverse(encoder, { x: y, y: z, shape });
    const [adapt, transform, inverse] = perPass(recorder.take());
    expect(adapt).toBe(3);
    expect(transform).toBe(1);
    expect(inverse).toBe(1);
    scaler.destroy();
    for (const b of [x, y, z]) b.destroy();
  });

  // The merging dispatches re-read each channel's partials in every workgroup that touches the
  // channel: many-channel channels-last rows touch them all, few-channel channels-last rows have
  // many workgroups per channel. At most one partial read per MERGE_ELEMENTS_PER_READ elements,
  // or one partial per channel.
  const BOUND_CASES: [Layout, number[], DType][] = [
    ['NC', [65536, 1024], 'float32'], // channels-last vec4: every thread merges four channels
    ['NC', [65536, 1024], 'float16'],
    ['NC', [200000, 3], 'float32'], // slot kernels, every workgroup touches every channel
    ['NC', [131072, 1023], 'float32'],
    ['NHWC', [32, 56, 56, 64], 'float32'],
    ['NCHW', [64, 256, 56, 56], 'float32'],
    ['NCL', [1100, 3, 161], 'float16'],
    ['NC', [600, 7], 'float32'],
  ];
  // The plans of a GPU adapter too (the channels-last vec4 reductions are sized per adapter kind).
  const gpuLike = seenAsGpu(device);
  it.each(BOUND_CASES)('merging partials where they are used is bounded: %s %j %s', (layout, shape, dtype) => {
    const view = channelView(layout, shape);
    const options = { dtype, activation: 'none', eps: 1e-5, momentum: 0.1, nonFiniteBatches: 'update', runningVariance: 'unbiased' } as const;
    for (const adapter of [device, gpuLike]) {
      const plan = batchNormPlan(adapter, view, options, { batchStats: true, updateRunning: true }, {});
      const total = viewSize(view);
      const what = `${adapter === device ? 'CPU' : 'GPU'} adapter: ${plan.chunks} partials per channel, ${plan.mergeWorkgroups} merging workgroups`;
      if (plan.chunks > 1) expect(plan.mergeReads, what).toBeLessThanOrEqual(total / MERGE_ELEMENTS_PER_READ);
      else expect(plan.mergeReads, what).toBeLessThanOrEqual(Math.max(total / MERGE_ELEMENTS_PER_READ, plan.mergeWorkgroups * view.channels));
      // The merging grid keeps at least 2^14 threads (64 workgroups) where the elementwise one has them.
      expect(plan.mergeWorkgroups, what).toBeGreaterThanOrEqual(Math.min(plan.elementwiseWorkgroups, 64));
    }
  });
});
