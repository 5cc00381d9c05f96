/**
 * The device every GPU test uses: Dawn through the `webgpu` package, SwiftShader on machines
 * without a GPU. A missing adapter fails the tests (with getDevice's instructions); it never
 * skips them.
 */
import { afterEach, expect } from 'vitest';
import { getDevice } from '../../src/runtime/device.js';

let devicePromise: Promise<GPUDevice> | null = null;
const gpuErrors: string[] = [];

/** The shared test device; its uncaptured validation errors fail the running test. */
export function testDevice(): Promise<GPUDevice> {
  devicePromise ??= getDevice({ label: 'test device' }).then((device) => {
    device.addEventListener('uncapturederror', (event) => {
      gpuErrors.push((event as GPUUncapturedErrorEvent).error.message);
    });
    return device;
  });
  return devicePromise;
}

// Kept referenced for the whole process (Dawn crashes if it is collected with work in flight).
let adapterGpu: GPU | null = null;

/**
 * The adapter the test device came from, as a fresh Dawn instance finds it (getDevice has set up
 * the driver environment by then): what it offers is what getDevice could request.
 */
export async function testAdapter(): Promise<GPUAdapter> {
  await testDevice();
  const { create } = await import('webgpu');
  adapterGpu ??= create([]) as GPU;
  const adapter = await adapterGpu.requestAdapter();
  if (!adapter) throw new Error('no adapter on a second Dawn instance');
  return adapter;
}

afterEach(async () => {
  if (!devicePromise) return;
  const device = await devicePromise;
  // Errors are delivered asynchronously: let the queue drain first.
  await device.queue.onSubmittedWorkDone();
  const errors = gpuErrors.splice(0);
  expect(errors, 'WebGPU validation errors').toEqual([]);
});

/** A STORAGE buffer holding `data`. */
export function storageBuffer(device: GPUDevice, data: Float32Array, extraUsage = 0): GPUBuffer {
  const buffer = device.createBuffer({
    label: 'test buffer',
    size: Math.max(4, data.byteLength),
    usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST | extraUsage,
    mappedAtCreation: true,
  });
  new Float32Array(buffer.getMappedRange()).set(data);
  buffer.unmap();
  return buffer;
}

/** Wraps a device so that every buffer it creates and destroys is counted. */
export function countingDevice(device: GPUDevice) {
  const live = new Set<GPUBuffer>();
  const proxy = new Proxy(device, {
    get(target, prop) {
      if (prop === 'createBuffer') {
        return (descriptor: GPUBufferDescriptor) => {
          const buffer = target.createBuffer(descriptor);
          live.add(buffer);
          const destroy = buffer.destroy.bind(buffer);
          buffer.destroy = () => {
            live.delete(buffer);
            destroy();
          };
          return buffer;
        };
      }
      const value = Reflect.get(target, prop, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  return { device: proxy, live };
}
