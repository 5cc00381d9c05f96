/**
 * The device every GPU test uses: Dawn through the `webgpu` package, SwiftShader on machines
 * without a GPU. A missing adapter fails the tests (with getDevice's instructions); it never
 * skips them.
 */
import { afterEach, expect } from 'vitest';
import { getDevice } from '../../src/core/device.js';
import { SAVED_BYTES_PER_FEATURE, type BatchNormBuffers } from '../../src/batchnorm/functions.js';
import { readBuffers } from '../../src/core/gpu.js';

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

/** What fills the arenas of {@link tensorArenas}: a word a kernel wrote outside its tensors shows. */
export const ARENA_SENTINEL = 12345.5;

/**
 * Tensors as ranges of two arenas: x and dy in `inputs`, y and dx in `outputs` (a dispatch cannot
 * write a buffer it also reads), each of `elements` float32 at an aligned offset with a gap after
 * it, the rest of each arena holding ARENA_SENTINEL. `read` submits `encoder` and returns each
 * range's values and, per arena, the indices of the words outside the tensors that changed.
 */
export function tensorArenas(device: GPUDevice, elements: number) {
  const align = device.limits.minStorageBufferOffsetAlignment;
  const bytes = elements * 4;
  const stride = Math.ceil((bytes + 64) / align) * align; // a gap after each tensor
  const arena = () => {
    const b = device.createBuffer({ size: 2 * stride + align, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST });
    device.queue.writeBuffer(b, 0, new Float32Array(b.size / 4).fill(ARENA_SENTINEL));
    return b;
  };
  const [inputs, outputs] = [arena(), arena()];
  const at = (buffer: GPUBuffer, k: number) => ({ buffer, offset: align + k * stride, size: bytes });
  const [x, dy, y, dx] = [at(inputs, 0), at(inputs, 1), at(outputs, 0), at(outputs, 1)];
  const read = async (encoder: GPUCommandEncoder) => {
    const [inBytes, outBytes] = await readBuffers(device, [inputs, outputs].map((buffer) => ({ buffer, size: buffer.size })), encoder);
    const arenas = new Map([
      [inputs, new Float32Array(inBytes)],
      [outputs, new Float32Array(outBytes)],
    ]);
    const slice = (r: { buffer: GPUBuffer; offset: number }) => arenas.get(r.buffer)!.subarray(r.offset / 4, r.offset / 4 + elements);
    const changedOutside = [...arenas].map(([buffer, f]) => {
      const inside = new Set<number>();
      for (const r of [x, y, dy, dx].filter((t) => t.buffer === buffer)) for (let i = 0; i < elements; i++) inside.add(r.offset / 4 + i);
      return Array.from(f.keys()).filter((i) => !inside.has(i) && f[i] !== ARENA_SENTINEL);
    });
    return { slice, changedOutside };
  };
  return { inputs, outputs, x, dy, y, dx, read, destroy: () => [inputs, outputs].forEach((b) => b.destroy()) };
}

/** Every buffer the batch-norm functions take, as a caller makes them: γ (default 1), β (default 0), fresh running statistics, C channels. */
export function batchNormBuffers(device: GPUDevice, C: number, gamma = new Float32Array(C).fill(1), beta = new Float32Array(C)): BatchNormBuffers {
  return {
    gamma: storageBuffer(device, gamma),
    beta: storageBuffer(device, beta),
    runningMean: storageBuffer(device, new Float32Array(C)),
    runningVar: storageBuffer(device, new Float32Array(C).fill(1)),
    numBatchesTracked: storageBuffer(device, new Float32Array(1)),
    gammaGrad: storageBuffer(device, new Float32Array(C)),
    betaGrad: storageBuffer(device, new Float32Array(C)),
    saved: storageBuffer(device, new Float32Array((C * SAVED_BYTES_PER_FEATURE) / 4)),
  };
}

/**
 * The test device as the plans see a GPU (`isCpuAdapter` false): its adapter info says it is no
 * CPU adapter, so plans size kernels as on a GPU (more lanes, caches sized by workgroup storage).
 */
export function seenAsGpu(device: GPUDevice): GPUDevice {
  const info = { vendor: 'test', architecture: 'seen-as-gpu', device: '', description: 'the test device seen as a GPU', isFallbackAdapter: false };
  return new Proxy(device, {
    get(target, prop) {
      if (prop === 'adapterInfo') return info;
      const value = Reflect.get(target, prop, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}
