/**
 * TF.js on the tests' device: Node has no navigator.gpu, so TF.js's webgpu backend is built on
 * the device getDevice() returns (useDeviceForTfjs), as an app would give it one with subgroups.
 * Also: a count of the compute passes our function forms record (their labels start with
 * 'webgpu-batchnorm'; TF.js labels none), to tell our kernels from a fallback to TF.js's.
 */
import * as tf from '@tensorflow/tfjs';
import { WebGPUBackend } from '@tensorflow/tfjs-backend-webgpu';
import { getDevice } from '../../src/index.js';
import { useDeviceForTfjs } from '../../src/tfjs/index.js';

export { tf };

/** Labels of every compute pass begun on any command encoder since the spy was installed. */
const passLabels: string[] = [];
let spied = false;

function spyOnPasses(device: GPUDevice): void {
  if (spied) return;
  spied = true;
  const proto = Object.getPrototypeOf(device.createCommandEncoder()) as GPUCommandEncoder;
  const begin = proto.beginComputePass;
  proto.beginComputePass = function (this: GPUCommandEncoder, descriptor?: GPUComputePassDescriptor) {
    passLabels.push(descriptor?.label ?? '');
    return begin.call(this, descriptor);
  };
}

/** The number of our passes recorded so far. */
export function ourPasses(): number {
  return passLabels.filter((l) => l.startsWith('webgpu-batchnorm')).length;
}

/** TF.js switched to a webgpu backend on getDevice()'s device; uncaptured GPU errors collected. */
export async function tfjsOnDevice(): Promise<{ device: GPUDevice; gpuErrors: string[] }> {
  const device = await getDevice();
  const gpuErrors: string[] = [];
  device.addEventListener('uncapturederror', (e) => gpuErrors.push((e as GPUUncapturedErrorEvent).error.message));
  await useDeviceForTfjs(tf, device, { WebGPUBackend });
  spyOnPasses(device);
  return { device, gpuErrors };
}

/** The values of `t` as float64. */
export async function values(t: tf.Tensor): Promise<Float64Array> {
  return Float64Array.from((await t.data()) as Float32Array);
}

/** max |a − b| / (1 + |b|) over the elements (NaN counts as Infinity). */
export function maxRelError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`lengths differ: ${a.length} vs ${b.length}`);
  let worst = 0;
  for (let i = 0; i < a.length; i++) {
    const e = Math.abs(a[i] - b[i]) / (1 + Math.abs(b[i]));
    if (!(e <= worst)) worst = Number.isNaN(e) ? Infinity : e;
  }
  return worst;
}
