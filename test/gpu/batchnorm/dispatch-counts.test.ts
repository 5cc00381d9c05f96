/**
 * How many dependent dispatches each call records, the cost of a small tensor on a GPU (each one
 * waits for the last): BatchNorm's inference forward pass is one dispatch, as a layer and as a
 * function form, in every layout and dtype, fused activation or not; the other passes stay within
 * today's counts (training forward 4 with running statistics, 3 without; backward 3; the feature
 * scaler's adapt 3, transform and inverse 2 each). Lowering a count tightens this test.
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
import { blankBuffer, blankStateBuffers, recordingDevice } from '../../helpers/dispatch-recorder.js';
import { testDevice } from '../../helpers/gpu.js';

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
      it(`BatchNorm ${layout} [${shape}] ${dtype}: inference 1; training forward ≤ 4 (≤ 3 without running statistics); backward ≤ 3`, () => {
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
            const forwardBound = training || !tracked ? (tracked ? 4 : 3) : 1;
            expect(forward, `${mode} ${training ? 'training' : 'inference'} forward`).toBeLessThanOrEqual(forwardBound);
            if (!training && tracked) expect(forward, `${mode} inference forward`).toBe(1);
            expect(backward, `${mode} backward`).toBeLessThanOrEqual(3);
          }
          bn.destroy();
        }
        for (const b of [x, y, dy, dx]) b.destroy();
      });
    }
  }

  it('the function forms: inference 1, training forward ≤ 4, backward ≤ 3', () => {
    const [layout, shape] = CASES[1];
    const C = channelView(layout, shape).channels;
    const size = shape.reduce((p, d) => p * d, 1) * 4;
    const [x, y, dy, dx] = [0, 1, 2, 3].map(() => buffer(device, size));
    const buffers = blankStateBuffers(device, C, SAVED_BYTES_PER_FEATURE);
    for (const training of [true, false]) {
      const encoder = device.createCommandEncoder();
      encodeBatchNormForward(device, encoder, { x, y, shape, training, buffers, options: { layout } });
      encodeBatchNormBackward(device, encoder, { x, dy, dx, shape, buffers, options: { layout } });
      const [forward, backward] = perPass(recorder.take());
      if (training) expect(forward).toBeLessThanOrEqual(4);
      else expect(forward).toBe(1);
      expect(backward).toBeLessThanOrEqual(3);
    }
    releaseFunctionCaches(device);
    for (const b of [x, y, dy, dx, ...Object.values(buffers)]) b.destroy();
  });

  it('FeatureScaler: adapt ≤ 3, transform ≤ 2, inverse ≤ 2', async () => {
    const [layout, shape] = CASES[2];
    const size = shape.reduce((p, d) => p * d, 1) * 4;
    const [x, y, z] = [0, 1, 2].map(() => buffer(device, size));
    const scaler = new FeatureScaler(device, { numFeatures: channelView(layout, shape).channels, layout, method: 'standardize' });
    const encoder = device.createCommandEncoder();
    scaler.encodeAdapt(encoder, { x, shape });
    scaler.encodeTransform(encoder, { x, y, shape });
    scaler.encodeInverse(encoder, { x: y, y: z, shape });
    const [adapt, transform, inverse] = perPass(recorder.take());
    expect(adapt).toBeLessThanOrEqual(3);
    expect(transform).toBeLessThanOrEqual(2);
    expect(inverse).toBeLessThanOrEqual(2);
    scaler.destroy();
    for (const b of [x, y, z]) b.destroy();
  });
});
