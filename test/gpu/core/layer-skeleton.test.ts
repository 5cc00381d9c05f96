/**
 * BatchNorm and FeatureScaler share one skeleton (src/core/layer.ts): the same scenario
 * runs against each — device loss, a validation error of an earlier pass, destroy(), and the
 * array API (calls in order, inputs checked) — and must behave the same.
 */
import { describe, expect, it } from 'vitest';
import { BatchNorm } from '../../../src/batchnorm/layer.js';
import { FeatureScaler } from '../../../src/feature-scaling/layer.js';
import { getDevice } from '../../../src/core/device.js';
import { randn } from '../../helpers/data.js';
import { countingDevice, storageBuffer, testDevice } from '../../helpers/gpu.js';

/** One layer under test, driven through what both kinds have in common. */
interface Subject {
  kind: string;
  layer: BatchNorm | FeatureScaler;
  /** An array-API call on [4, 2] data resolving with 8 outputs. */
  run(x: Float32Array): Promise<Float32Array>;
  /** An encode call reading `x` and writing `y` ([4, 2], float32). */
  encode(encoder: GPUCommandEncoder, x: GPUBuffer, y: GPUBuffer): void;
  /** Another array-API call (a read back). */
  read(): Promise<unknown>;
}

const subjects: [string, (device: GPUDevice) => Subject][] = [
  [
    'BatchNorm',
    (device) => {
      const bn = new BatchNorm(device, { numFeatures: 2, layout: 'NC' });
      return {
        kind: 'BatchNorm',
        layer: bn,
        run: (x) => bn.forward(x, [4, 2], { training: true }),
        encode: (encoder, x, y) => bn.encodeForward(encoder, { x, y, shape: [4, 2], training: true }),
        read: () => bn.getState(),
      };
    },
  ],
  [
    'FeatureScaler',
    (device) => {
      const scaler = new FeatureScaler(device, { numFeatures: 2, method: 'standardize' });
      return {
        kind: 'FeatureScaler',
        layer: scaler,
        run: async (x) => {
          await scaler.adapt(x, [4, 2]);
          return scaler.transform(x, [4, 2]);
        },
        encode: (encoder, x) => scaler.encodeAdapt(encoder, { x, shape: [4, 2] }),
        read: () => scaler.getStats(),
      };
    },
  ],
];

const data = Float32Array.from([1, 10, 2, 20, 3, 30, 4, 40]);
/** Both layers standardize this data per column: (x − mean) / std with the same std up to the variance's correction. */
const standardized = (y: Float32Array) => [y[0] < y[2] && y[2] < y[4] && y[4] < y[6], y[1] < y[3] && y[3] < y[5] && y[5] < y[7]];

describe.each(subjects)('%s', (kind, make) => {
  it('device loss: every later call throws the reason; a new layer on a new device works', async () => {
    const device = await getDevice({ label: `${kind} device to lose` });
    const subject = make(device);
    expect((await subject.run(data)).every(Number.isFinite)).toBe(true);
    device.destroy();
    expect((await device.lost).reason).toBe('destroyed');
    const lost = new RegExp(`${kind}: the GPU device was lost \\(destroyed: .*\\); get a new device \\(getDevice\\) and create a new ${kind} on it`);
    await expect(subject.run(data)).rejects.toThrow(lost);
    await expect(subject.read()).rejects.toThrow(lost);
    expect(() => subject.encode({} as GPUCommandEncoder, {} as GPUBuffer, {} as GPUBuffer)).toThrow(lost);
    const fresh = make(await getDevice({ label: `${kind} replacement device` }));
    expect(standardized(await fresh.run(data))).toEqual([true, true]);
    fresh.layer.destroy();
    fresh.layer.device.destroy();
  });

  it("a validation error of an earlier recorded pass is thrown once by the next call; the layer keeps working", async () => {
    const device = await testDevice();
    const other = await getDevice({ label: 'other device' });
    const subject = make(device);
    const foreign = storageBuffer(other, new Float32Array(8));
    const y = storageBuffer(device, new Float32Array(8));
    const encoder = device.createCommandEncoder();
    subject.encode(encoder, foreign, y);
    device.pushErrorScope('validation');
    encoder.finish();
    expect((await device.popErrorScope())?.message).toMatch(/invalid/i);
    await device.queue.onSubmittedWorkDone();
    await expect(subject.read()).rejects.toThrow(new RegExp(`${kind}: an earlier encode\\w+ \\((training forward|adapt) of shape \\[4, 2\\], x .test buffer.*\\) failed WebGPU validation .*other device`));
    expect(standardized(await subject.run(data))).toEqual([true, true]);
    subject.layer.destroy();
    foreign.destroy();
    y.destroy();
    other.destroy();
  });

  it('destroy() frees every buffer it created and lets go of shared ones; later calls say so', async () => {
    const { device, live } = countingDevice(await testDevice());
    const subject = make(device);
    await subject.run(data);
    await subject.run(randn(8, 2));
    await subject.read();
    expect(live.size).toBe(subject.layer.bufferCount);
    subject.layer.destroy();
    subject.layer.destroy(); // twice is harmless
    expect(subject.layer.bufferCount).toBe(0);
    expect(live.size, 'buffers left after destroy()').toBe(0);
    await expect(subject.run(data)).rejects.toThrow(new RegExp(`${kind} was destroyed; create a new ${kind}`));
    expect(() => subject.encode(device.createCommandEncoder(), {} as GPUBuffer, {} as GPUBuffer)).toThrow(/was destroyed/);
  });

  it('array API: calls run in the order they were made; a wrong input type names the argument', async () => {
    const device = await testDevice();
    const subject = make(device);
    // Not awaited in between: the second call must see the first one's effect (same data twice
    // gives the same result for both layers once the statistics are in).
    const [a, b] = await Promise.all([subject.run(data), subject.run(data)]);
    expect(standardized(a)).toEqual([true, true]);
    expect(standardized(b)).toEqual([true, true]);
    await expect(subject.run([1, 2] as unknown as Float32Array)).rejects.toThrow(/must be a Float32Array.*; got an Array of 2/);
    await expect(subject.run(new Float32Array(6))).rejects.toThrow(/must have 8 elements for shape \[4, 2\]; got 6/);
    subject.layer.destroy();
  });
});
