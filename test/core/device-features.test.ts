/**
 * What getDevice asks the adapter for: every one of 'shader-f16', 'subgroups' and
 * 'timestamp-query' it offers and its larger limits (unless turned off), the caller's features
 * and limits on top, and Dawn instance flags passed through to Dawn. Dawn's null backend offers
 * shader-f16 (SwiftShader does not), so it shows float16 layers choosing native f16 kernels.
 */
import { describe, it, expect, beforeAll } from 'vitest';
import { getDevice } from '../../src/core/device.js';
import { BatchNorm } from '../../src/batchnorm/layer.js';
import { recordingDevice } from '../helpers/dispatch-recorder.js';
import { testAdapter } from '../helpers/gpu.js';

const FEATURES: GPUFeatureName[] = ['shader-f16', 'subgroups', 'timestamp-query'];
const LIMITS = ['maxStorageBufferBindingSize', 'maxBufferSize', 'maxComputeWorkgroupStorageSize', 'maxComputeInvocationsPerWorkgroup', 'maxComputeWorkgroupSizeX'];
// WebGPU's defaults for LIMITS.
const DEFAULT_LIMITS = [134217728, 268435456, 16384, 256, 256];

let adapter: GPUAdapter;
const limit = (source: GPUSupportedLimits, name: string) => (source as unknown as Record<string, number>)[name];
const has = (device: GPUDevice) => FEATURES.filter((feature) => device.features.has(feature));

beforeAll(async () => {
  adapter = await testAdapter();
});

describe('features', () => {
  it("the device has exactly the adapter's offered subset of shader-f16, subgroups and timestamp-query", async () => {
    const offered = FEATURES.filter((feature) => adapter.features.has(feature));
    expect(offered.length, 'the adapter offers at least one of them (else this test shows nothing)').toBeGreaterThan(0);
    const device = await getDevice({ label: 'features device' });
    expect(has(device)).toEqual(offered);
    device.destroy();
  });

  it('options set to undefined are as if absent, on a real adapter too', async () => {
    const offered = FEATURES.filter((feature) => adapter.features.has(feature));
    const device = await getDevice({ adapterFeatures: undefined, requiredFeatures: undefined, dawnFlags: undefined, label: undefined });
    expect(has(device)).toEqual(offered);
    expect(device.label).toMatch(/^webgpu-batchnorm device \d+$/);
    device.destroy();
  });

  it('adapterFeatures: false requests none of them; requiredFeatures come on top', async () => {
    const none = await getDevice({ adapterFeatures: false });
    expect(has(none)).toEqual([]);
    none.destroy();
    const offered = FEATURES.filter((feature) => adapter.features.has(feature));
    const one = await getDevice({ adapterFeatures: false, requiredFeatures: [offered[0]] });
    expect(has(one)).toEqual([offered[0]]);
    one.destroy();
  });

  it('a required feature the adapter does not offer is refused, naming it and what the adapter offers', async () => {
    const candidates: GPUFeatureName[] = ['shader-f16', 'dual-source-blending', 'primitive-index', 'texture-formats-tier2', 'float32-filterable'];
    const missing = candidates.find((feature) => !adapter.features.has(feature));
    expect(missing, 'one of the candidates is not offered').toBeDefined();
    const offered = [...adapter.features].sort().map((feature) => `'${feature}'`);
    await expect(getDevice({ requiredFeatures: [missing!] })).rejects.toThrow(
      `getDevice: options.requiredFeatures names '${missing}', which this adapter does not offer; it offers [${offered.join(', ')}]`,
    );
  });
});

describe('limits', () => {
  it("requests the adapter's buffer and workgroup limits; adapterLimits: false keeps WebGPU's defaults", async () => {
    expect(LIMITS.some((name, i) => limit(adapter.limits, name) > DEFAULT_LIMITS[i]), 'the adapter offers more than a default').toBe(true);
    const device = await getDevice();
    expect(LIMITS.map((name) => limit(device.limits, name))).toEqual(LIMITS.map((name) => limit(adapter.limits, name)));
    device.destroy();
    const plain = await getDevice({ adapterLimits: false });
    expect(LIMITS.map((name) => limit(plain.limits, name))).toEqual(DEFAULT_LIMITS);
    plain.destroy();
  });

  it('requiredLimits override one limit at a time, within what the adapter offers', async () => {
    const device = await getDevice({ requiredLimits: { maxComputeWorkgroupStorageSize: 16384 } });
    expect(device.limits.maxComputeWorkgroupStorageSize).toBe(16384);
    expect(device.limits.maxStorageBufferBindingSize).toBe(adapter.limits.maxStorageBufferBindingSize);
    device.destroy();
    const most = adapter.limits.maxComputeWorkgroupStorageSize;
    await expect(getDevice({ requiredLimits: { maxComputeWorkgroupStorageSize: most + 4 } })).rejects.toThrow(
      `getDevice: options.requiredLimits.maxComputeWorkgroupStorageSize must be at most the adapter's ${most}; got ${most + 4}`,
    );
    const align = adapter.limits.minStorageBufferOffsetAlignment;
    await expect(getDevice({ requiredLimits: { minStorageBufferOffsetAlignment: align / 2 } })).rejects.toThrow(
      `options.requiredLimits.minStorageBufferOffsetAlignment must be at least the adapter's ${align}; got ${align / 2}`,
    );
    await expect(getDevice({ requiredLimits: { maxWarpFactor: 9 } })).rejects.toThrow('options.requiredLimits.maxWarpFactor is not a limit this adapter has');
  });
});

/** 16 GPU timestamps (ns) from 8 empty compute passes. */
async function timestamps(device: GPUDevice): Promise<bigint[]> {
  const count = 16;
  const querySet = device.createQuerySet({ type: 'timestamp', count });
  const resolve = device.createBuffer({ size: count * 8, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC });
  const read = device.createBuffer({ size: count * 8, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  const encoder = device.createCommandEncoder();
  for (let i = 0; i < count; i += 2) {
    encoder.beginComputePass({ timestampWrites: { querySet, beginningOfPassWriteIndex: i, endOfPassWriteIndex: i + 1 } }).end();
  }
  encoder.resolveQuerySet(querySet, 0, count, resolve, 0);
  encoder.copyBufferToBuffer(resolve, 0, read, 0, count * 8);
  device.queue.submit([encoder.finish()]);
  await read.mapAsync(GPUMapMode.READ);
  return [...new BigUint64Array(read.getMappedRange().slice(0))];
}

describe('dawnFlags reach Dawn', () => {
  it("'disable-dawn-features=timestamp_quantization' stops Dawn rounding timestamps to 65536 ns", async (ctx) => {
    if (!adapter.features.has('timestamp-query')) return ctx.skip('the adapter offers no timestamp-query');
    const quantized = await getDevice();
    const coarse = await timestamps(quantized);
    expect(coarse.every((t) => t % 65536n === 0n), `default: multiples of 65536 ns: ${coarse}`).toBe(true);
    quantized.destroy();
    const exact = await getDevice({ dawnFlags: ['disable-dawn-features=timestamp_quantization'] });
    const fine = await timestamps(exact);
    expect(fine.some((t) => t % 65536n !== 0n), `with the flag: not all multiples of 65536 ns: ${fine}`).toBe(true);
    exact.destroy();
  });

  it('a flag Dawn rejects fails getDevice with Dawn\'s message', async () => {
    await expect(getDevice({ dawnFlags: ['backend=bogus'] })).rejects.toThrow(/unrecognised backend 'bogus'/);
  });
});

describe("Dawn's null backend (it offers shader-f16): float16 layers choose native f16", () => {
  /** The pipeline labels of a float16 training forward pass recorded on `device`. */
  function float16Labels(device: GPUDevice): string[] {
    const recorder = recordingDevice(device);
    const bn = new BatchNorm(recorder.device, { numFeatures: 3, layout: 'NCHW', dtype: 'float16' });
    const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
    const x = device.createBuffer({ size: 192, usage });
    const y = device.createBuffer({ size: 192, usage });
    bn.encodeForward(recorder.device.createCommandEncoder(), { x, y, shape: [2, 3, 4, 4], training: true });
    bn.destroy();
    return [...new Set(recorder.take().filter((line) => line !== '--').map((line) => line.replace(/ \[.*/, '')))];
  }

  it("getDevice({ dawnFlags: ['backend=null'] }) has shader-f16 and a float16 BatchNorm runs the 'f16' kernels", async () => {
    const device = await getDevice({ dawnFlags: ['backend=null'], label: 'null-backend device' });
    expect(has(device)).toContain('shader-f16');
    const labels = float16Labels(device);
    expect(labels.length).toBeGreaterThan(1);
    expect(labels.filter((label) => !/ \(f16(, subgroups)?\)$/.test(label)), `labels: ${labels}`).toEqual([]);
    expect(labels.some((label) => label.endsWith('(f16, subgroups)')), 'the merging kernels run the subgroups variant').toBe(true);
    device.destroy();
  });

  it("with adapterFeatures: false the same layer runs the 'f16-packed' kernels", async () => {
    const device = await getDevice({ dawnFlags: ['backend=null'], adapterFeatures: false });
    expect(has(device)).toEqual([]);
    const labels = float16Labels(device);
    expect(labels.length).toBeGreaterThan(1);
    expect(labels.filter((label) => !label.endsWith('(f16-packed)')), `labels: ${labels}`).toEqual([]);
    device.destroy();
  });
});
