/**
 * What the GPU is asked to do, pinned: for a grid of layouts × modes × dtypes × shapes, through
 * the layer, the functions and the feature scaler, the sequence of dispatches (pipeline label,
 * workgroup counts, bound buffer sizes and uniform bytes) must equal the committed one in
 * dispatch-sequence.expected.json. A refactor keeps it; kernel work that changes it on purpose
 * regenerates the file with UPDATE_DISPATCHES=1 and says why in its commit.
 *
 * Nothing is submitted: passes are recorded and dropped.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import {
  BatchNorm,
  FeatureScaler,
  SAVED_BYTES_PER_FEATURE,
  SCALING_STATE_BYTES_PER_FEATURE,
  channelView,
  encodeBatchNormBackward,
  encodeBatchNormForward,
  encodeFeatureScalingAdapt,
  encodeFeatureScalingInverse,
  encodeFeatureScalingTransform,
  releaseFunctionCaches,
  viewSize,
  type BatchNormOptions,
  type DType,
  type Layout,
} from '../../../src/index.js';
import { blankBuffer, blankStateBuffers, recordingDevice, type DispatchRecorder } from '../../helpers/dispatch-recorder.js';
import { testDevice } from '../../helpers/gpu.js';

const EXPECTED = fileURLToPath(new URL('./dispatch-sequence.expected.json', import.meta.url));
const update = process.env.UPDATE_DISPATCHES === '1';
const expected: Record<string, string[]> = update ? {} : JSON.parse(readFileSync(EXPECTED, 'utf8'));
const recorded: Record<string, string[]> = {};

const SHAPES: Record<Layout, number[][]> = {
  NC: [[5, 3], [600, 7]],
  NCL: [[2, 3, 5], [3, 4, 1000], [1100, 3, 161]], // the last: more slots than the slot kernels' grid has threads
  NLC: [[2, 5, 3], [40, 30, 8]],
  NCHW: [[2, 3, 4, 4], [2, 3, 5, 7], [4, 3, 40, 40]],
  NHWC: [[2, 4, 4, 3], [8, 8, 8, 32]],
  NCDHW: [[2, 3, 2, 2, 3]],
  NDHWC: [[2, 2, 2, 3, 5]],
};

/** Layer options per mode name; each mode records training forward + backward and inference forward + backward. */
const MODES: Record<string, Partial<BatchNormOptions>> = {
  default: {},
  relu: { activation: 'relu' },
  untracked: { trackRunningStats: false },
  keras: { momentum: 0.01, eps: 1e-3, runningVariance: 'biased', affine: false },
  cumulative: { momentum: null, nonFiniteBatches: 'update' },
};

const DTYPES: DType[] = ['float32', 'float16'];

let recorder: DispatchRecorder;

const buffer = blankBuffer;

function check(name: string): void {
  const lines = recorder.take();
  recorded[name] = lines;
  if (!update) expect(lines, name).toEqual(expected[name]);
}

afterAll(() => {
  if (update) writeFileSync(EXPECTED, `${JSON.stringify(recorded, null, 1)}\n`);
});

describe('the dispatch sequence is unchanged', async () => {
  recorder = recordingDevice(await testDevice());

  for (const layout of Object.keys(SHAPES) as Layout[]) {
    for (const shape of SHAPES[layout]) {
      for (const dtype of DTYPES) {
        it(`BatchNorm ${layout} [${shape}] ${dtype}, every mode`, () => {
          const device = recorder.device;
          const view = channelView(layout, shape);
          const bytes = dtype === 'float32' ? viewSize(view) * 4 : Math.ceil(viewSize(view) / 2) * 4;
          const [x, y, dy, dx] = [0, 1, 2, 3].map(() => buffer(device, bytes));
          for (const [mode, options] of Object.entries(MODES)) {
            const bn = new BatchNorm(device, { numFeatures: view.channels, layout, dtype, ...options });
            for (const training of [true, false]) {
              const encoder = device.createCommandEncoder();
              bn.encodeForward(encoder, { x, y, shape, training });
              bn.encodeBackward(encoder, { x, dy, dx, shape });
              check(`BatchNorm ${layout} [${shape}] ${dtype} ${mode} ${training ? 'training' : 'inference'}`);
            }
            bn.destroy();
          }
          for (const b of [x, y, dy, dx]) b.destroy();
        });
      }
    }
  }

  for (const [layout, shape] of [['NCHW', [4, 3, 40, 40]], ['NHWC', [8, 8, 8, 32]], ['NC', [600, 7]]] as [Layout, number[]][]) {
    it(`functions ${layout} [${shape}]`, () => {
      const device = recorder.device;
      const view = channelView(layout, shape);
      const C = view.channels;
      const [x, y, dy, dx] = [0, 1, 2, 3].map(() => buffer(device, viewSize(view) * 4));
      const buffers = blankStateBuffers(device, C, SAVED_BYTES_PER_FEATURE);
      for (const training of [true, false]) {
        const encoder = device.createCommandEncoder();
        const options = { layout, eps: 1e-4, momentum: 0.3, activation: 'relu' } as const;
        encodeBatchNormForward(device, encoder, { x, y, shape, training, buffers, options });
        encodeBatchNormBackward(device, encoder, { x, dy, dx, shape, buffers, options });
        check(`functions ${layout} [${shape}] batch norm ${training ? 'training' : 'inference'}`);
      }
      const state = buffer(device, C * SCALING_STATE_BYTES_PER_FEATURE);
      for (const method of ['min-max', 'standardize'] as const) {
        const encoder = device.createCommandEncoder();
        const options = { method, layout };
        encodeFeatureScalingAdapt(device, encoder, { x, shape, state, options });
        encodeFeatureScalingTransform(device, encoder, { x, y, shape, state, options });
        encodeFeatureScalingInverse(device, encoder, { x: y, y: dx, shape, state, options });
        check(`functions ${layout} [${shape}] scaling ${method}`);
      }
      releaseFunctionCaches(device);
      for (const b of [x, y, dy, dx, state, ...Object.values(buffers)]) b.destroy();
    });
  }

  for (const [layout, shape] of [['NC', [5000, 3]], ['NCHW', [2, 3, 5, 7]], ['NHWC', [2, 4, 4, 8]]] as [Layout, number[]][]) {
    it(`FeatureScaler ${layout} [${shape}]`, () => {
      const device = recorder.device;
      const view = channelView(layout, shape);
      const [x, y, z] = [0, 1, 2].map(() => buffer(device, viewSize(view) * 4));
      for (const method of ['min-max', 'standardize'] as const) {
        const scaler = new FeatureScaler(device, { numFeatures: view.channels, method, layout, correction: method === 'min-max' ? 1 : 0 });
        const encoder = device.createCommandEncoder();
        scaler.encodeAdapt(encoder, { x, shape });
        scaler.encodeAdapt(encoder, { x: y, shape });
        scaler.encodeTransform(encoder, { x, y, shape });
        scaler.encodeInverse(encoder, { x: y, y: z, shape });
        check(`FeatureScaler ${layout} [${shape}] ${method}`);
        scaler.destroy();
      }
      for (const b of [x, y, z]) b.destroy();
    });
  }

  it('covers every recorded case', () => {
    if (!update) expect(Object.keys(recorded).sort()).toEqual(Object.keys(expected).sort());
  });
});
