/**
 * The bridge to TF.js's WebGPU backend: its tensors' GPUBuffers, new output tensors, and recording
 * our passes into the backend's own command encoder.
 *
 * Recording into TF.js's encoder (not a command buffer of our own) keeps every ordering TF.js
 * relies on: a tensor created on the CPU just before our call is uploaded by a copy TF.js records
 * in that encoder, so it lands before our pass reads it; TF.js's later kernels read our outputs
 * after our passes. Every tensor our passes touch is marked as owned by the pending command
 * buffer, as TF.js marks its own, so that disposing it before the submit cannot hand its buffer
 * to a queue.writeBuffer that would overtake our pass.
 *
 * The members used here are TF.js 4.22's (not its public API); {@link checkBackend} names any
 * that a TF.js upgrade removed, instead of failing somewhere inside a kernel.
 */
import type { NamedAttrMap, Tensor, TensorInfo, TfjsNamespace } from './tfjs-types.js';

/** A tensor's entry in the backend's tensorMap. */
interface TensorData {
  resource: unknown;
  dtype: string;
  shape: number[];
}

/** The members of TF.js's WebGPUBackend (4.22) the adapter relies on. */
export interface WebGPUBackendLike {
  device: GPUDevice;
  tensorMap: { get(dataId: object): TensorData | undefined };
  uploadToGPU(dataId: object): void;
  makeTensorInfo(shape: number[], dtype: 'float32'): TensorInfo;
  disposeData(dataId: object, force?: boolean): boolean;
  ensureCommandEncoderReady(): void;
  endComputePassEncoder(): void;
  submitQueue(): void;
  commandEncoder: GPUCommandEncoder | null;
  commandQueueOwnedIds: WeakSet<object>;
  dispatchCountInPass: number;
}

const BACKEND_METHODS = ['uploadToGPU', 'makeTensorInfo', 'disposeData', 'ensureCommandEncoderReady', 'endComputePassEncoder', 'submitQueue'] as const;

/**
 * Throws unless `backend` has every member the adapter uses, naming the missing ones: the
 * adapter reaches into TF.js's WebGPU backend, whose internals may change with a TF.js upgrade.
 */
export function checkBackend(backend: unknown): asserts backend is WebGPUBackendLike {
  const b = backend as Partial<Record<string, unknown>> | null;
  if (!b || typeof b !== 'object') throw new Error(`webgpu-batchnorm/tfjs: expected TF.js's webgpu backend; got ${String(backend)}`);
  const missing: string[] = [];
  for (const name of BACKEND_METHODS) if (typeof b[name] !== 'function') missing.push(`${name}()`);
  const device = b.device as Partial<GPUDevice> | undefined;
  if (!device || typeof device.createCommandEncoder !== 'function') missing.push('device (a GPUDevice)');
  const map = b.tensorMap as { get?: unknown } | undefined;
  if (!map || typeof map.get !== 'function') missing.push('tensorMap.get()');
  const owned = b.commandQueueOwnedIds as { add?: unknown } | undefined;
  if (!owned || typeof owned.add !== 'function') missing.push('commandQueueOwnedIds');
  if (typeof b.dispatchCountInPass !== 'number') missing.push('dispatchCountInPass');
  if (!('commandEncoder' in b)) missing.push('commandEncoder');
  if (missing.length > 0) {
    throw new Error(
      `webgpu-batchnorm/tfjs: TF.js's webgpu backend lacks ${missing.join(', ')}, which the adapter relies on ` +
        '(written against @tensorflow/tfjs-backend-webgpu 4.22); call uninstall() and use plain TF.js, or a TF.js version the adapter supports',
    );
  }
}

/** A float32 tensor's GPUBuffer, as a range of exactly its bytes; uploads it first if its values are still on the CPU. */
export function tensorBuffer(backend: WebGPUBackendLike, t: TensorInfo, name: string): GPUBufferBinding {
  if (t.dtype !== 'float32') throw new TypeError(`webgpu-batchnorm/tfjs: ${name} must be a float32 tensor; got ${t.dtype}`);
  backend.uploadToGPU(t.dataId);
  const resource = backend.tensorMap.get(t.dataId)?.resource;
  if (!isGPUBuffer(resource)) throw new TypeError(`webgpu-batchnorm/tfjs: ${name} must live in a GPUBuffer (not a texture)`);
  return { buffer: resource, offset: 0, size: sizeOf(t.shape) * 4 };
}

/** Whether every tensor can be bound as a GPUBuffer (after an upload): the kernels' fallback test. */
export function inGPUBuffers(backend: WebGPUBackendLike, tensors: readonly TensorInfo[]): boolean {
  return tensors.every((t) => {
    if (t.dtype !== 'float32') return false;
    const resource = backend.tensorMap.get(t.dataId)?.resource;
    return resource == null || isGPUBuffer(resource);
  });
}

function isGPUBuffer(resource: unknown): resource is GPUBuffer {
  const r = resource as Partial<GPUBuffer> | null;
  return !!r && typeof r === 'object' && typeof r.size === 'number' && typeof r.mapAsync === 'function';
}

/** γ and β in a kernel's input array: after its first `fixed` inputs, each present where its flag says. */
export function optionalParams<T>(list: readonly T[], fixed: number, flags: { scale: boolean; center: boolean }): { gamma?: T; beta?: T } {
  let i = fixed;
  const gamma = flags.scale ? list[i++] : undefined;
  const beta = flags.center ? list[i++] : undefined;
  return { gamma, beta };
}

/**
 * What each kernel starts from: the backend (checked), its input list, a GPUBuffer getter, and
 * γ and β (after the first `fixed` inputs) as tensors and as the function forms' optional
 * `gamma`/`beta` arguments.
 */
export function kernelInputs(backend: unknown, inputs: unknown, flags: { scale: boolean; center: boolean }, fixed: number) {
  checkBackend(backend);
  const list = inputs as TensorInfo[];
  const buf = (t: TensorInfo, name: string) => tensorBuffer(backend, t, name);
  const { gamma, beta } = optionalParams(list, fixed, flags);
  return { backend, list, buf, gamma, beta, params: paramBuffers(buf, gamma, beta) };
}

/** γ and β, where given, as the function forms' optional `gamma`/`beta` arguments. */
export function paramBuffers(buf: (t: TensorInfo, name: string) => GPUBufferBinding, gamma?: TensorInfo | null, beta?: TensorInfo | null) {
  return { ...(gamma && { gamma: buf(gamma, 'gamma') }), ...(beta && { beta: buf(beta, 'beta') }) };
}

/**
 * From a gradient function: `gradKernel` on [...tensors, γ?, β?], one backward pass whose outputs
 * are every input's gradient, run once (TF.js then asks for each input's gradient in turn).
 */
export function runGradKernel(tf: TfjsNamespace, gradKernel: string, tensors: Tensor[], gamma: Tensor | undefined, beta: Tensor | undefined, attrs: unknown): Tensor[] {
  const list = [...tensors, ...(gamma ? [gamma] : []), ...(beta ? [beta] : [])];
  return tf.engine().runKernel(gradKernel, list as never, attrs as NamedAttrMap) as Tensor[];
}

/** A new float32 output tensor with its GPUBuffer allocated. */
export function outputTensor(backend: WebGPUBackendLike, shape: number[]): TensorInfo {
  const info = backend.makeTensorInfo(shape, 'float32');
  backend.uploadToGPU(info.dataId);
  return info;
}

/** The element count of `shape`. */
export function sizeOf(shape: readonly number[]): number {
  return shape.reduce((p, d) => p * d, 1);
}

/**
 * Records `record(encoder)` into the backend's command encoder, after TF.js's own commands (its
 * open compute pass ended), marks `tensors` as owned by the pending command buffer, and submits
 * as TF.js does once a batch of dispatches is recorded. If `record` throws, `outputs` are
 * disposed, so a refused call leaks nothing.
 */
export function recordOnBackend(
  tf: TfjsNamespace,
  backend: WebGPUBackendLike,
  tensors: readonly TensorInfo[],
  outputs: readonly TensorInfo[],
  record: (encoder: GPUCommandEncoder) => void,
): void {
  backend.ensureCommandEncoderReady();
  backend.endComputePassEncoder();
  try {
    record(backend.commandEncoder!);
  } catch (error) {
    for (const t of outputs) backend.disposeData(t.dataId, true);
    throw error;
  }
  for (const t of tensors) backend.commandQueueOwnedIds.add(t.dataId);
  for (const t of outputs) backend.commandQueueOwnedIds.add(t.dataId);
  backend.dispatchCountInPass++;
  if (Number(tf.env().get('WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE')) <= backend.dispatchCountInPass) backend.submitQueue();
}
