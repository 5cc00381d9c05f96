/**
 * useDeviceForTfjs: TF.js's `webgpu` backend rebuilt on a device of the caller's (TF.js creates
 * its own device, without the 'subgroups' feature our reductions use where offered; in Node it
 * finds no navigator.gpu and creates none).
 */
import type { TfjsNamespace } from './tfjs-types.js';

/** TF.js's WebGPUBackend class (from `@tensorflow/tfjs-backend-webgpu`). */
export type WebGPUBackendClass = new (device: GPUDevice, adapterInfo?: GPUAdapterInfo) => object;

/** Options of {@link useDeviceForTfjs}. */
export interface UseDeviceOptions {
  /**
   * The WebGPUBackend class: `import { WebGPUBackend } from '@tensorflow/tfjs-backend-webgpu'`.
   * Needed where TF.js has not initialized its webgpu backend yet (always in Node); otherwise
   * taken from that backend.
   */
  WebGPUBackend?: WebGPUBackendClass;
}

/**
 * Makes TF.js's `webgpu` backend one built on `device` (for example getDevice()'s, with
 * 'subgroups') and switches TF.js to it. The webgpu backend TF.js had is removed, with the
 * tensors it held: call this before creating tensors or models.
 *
 * @returns TF.js's new backend.
 */
export async function useDeviceForTfjs(tf: TfjsNamespace, device: GPUDevice, options: UseDeviceOptions = {}): Promise<object> {
  if (!tf || typeof tf.registerBackend !== 'function' || typeof tf.setBackend !== 'function') {
    throw new TypeError('useDeviceForTfjs: tf must be the @tensorflow/tfjs namespace (import * as tf from \'@tensorflow/tfjs\')');
  }
  if (!device || typeof (device as Partial<GPUDevice>).createCommandEncoder !== 'function') {
    throw new TypeError(`useDeviceForTfjs: device must be a GPUDevice (getDevice()); got ${String(device)}`);
  }
  if (options === null || typeof options !== 'object') throw new TypeError(`useDeviceForTfjs: options must be an object { WebGPUBackend }; got ${String(options)}`);
  for (const key of Object.keys(options)) if (key !== 'WebGPUBackend') throw new TypeError(`useDeviceForTfjs: options.${key} is not an option; the only option is WebGPUBackend`);
  const Backend = options.WebGPUBackend ?? (tf.findBackend('webgpu')?.constructor as WebGPUBackendClass | undefined);
  if (typeof Backend !== 'function') {
    throw new TypeError(
      "useDeviceForTfjs: options.WebGPUBackend must be TF.js's WebGPUBackend class (import { WebGPUBackend } from '@tensorflow/tfjs-backend-webgpu'), " +
        'which is needed where TF.js has not initialized a webgpu backend of its own',
    );
  }
  if (tf.findBackendFactory('webgpu')) tf.removeBackend('webgpu');
  // TF.js's KernelBackend type is not ours to import: the class constructs one.
  tf.registerBackend('webgpu', () => construct(Backend, device) as never, 3);
  if (!(await tf.setBackend('webgpu'))) throw new Error('useDeviceForTfjs: TF.js could not initialize its webgpu backend on the device');
  await tf.ready();
  return tf.findBackend('webgpu')!;
}

/**
 * `new Backend(device)`. TF.js's constructor refuses to run where navigator.gpu is absent
 * (Node), though it is given its device: there a stand-in navigator.gpu is in place during the
 * constructor only.
 */
function construct(Backend: WebGPUBackendClass, device: GPUDevice): object {
  const adapterInfo = (device as { adapterInfo?: GPUAdapterInfo }).adapterInfo;
  const g = globalThis as { navigator?: { gpu?: unknown } };
  if (g.navigator?.gpu) return new Backend(device, adapterInfo);
  const hadNavigator = g.navigator !== undefined;
  if (!hadNavigator) Object.defineProperty(globalThis, 'navigator', { value: {}, configurable: true, writable: true });
  Object.defineProperty(g.navigator!, 'gpu', { value: {}, configurable: true });
  try {
    return new Backend(device, adapterInfo);
  } finally {
    delete g.navigator!.gpu;
    if (!hadNavigator) delete g.navigator;
  }
}
