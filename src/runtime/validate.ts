/**
 * Argument checks shared by the layer's entry points. Each failure throws an error that names
 * the argument, the expected value and the actual one.
 */
import type { ChannelView } from '../tensor/layout.js';
import { Usage, bufferOf, isBufferRange, type TensorBuffer } from './gpu.js';

/** A short description of a value for error messages. */
export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value !== 'object') return `${typeof value} ${String(value)}`;
  return (value as object).constructor?.name ?? 'object';
}

/** Training needs two or more values per channel: the unbiased variance divides by n - 1. */
export function checkTrainable(view: ChannelView, shape: readonly number[], training: boolean): void {
  const count = view.outer * view.inner;
  if (training && count < 2) {
    throw new RangeError(`expected more than 1 value per channel when training; got shape [${shape.join(', ')}] (${count} value per channel)`);
  }
}

/**
 * A caller's tensor argument: a GPUBuffer, or a range `{ buffer, offset, size }` of one, of at
 * least `bytes` bytes, with STORAGE usage. A range's offset must be a multiple of the device's
 * minStorageBufferOffsetAlignment (256 where no device is given, WebGPU's default limit).
 */
export function checkTensorBuffer(argName: string, arg: TensorBuffer, bytes: number, what: string, device?: GPUDevice): void {
  const range = arg && isBufferRange(arg) ? arg : null;
  const buffer = bufferOf(arg);
  const name = range ? `${argName}.buffer` : argName;
  if (!buffer || typeof buffer !== 'object' || typeof buffer.size !== 'number' || typeof buffer.usage !== 'number') {
    throw new TypeError(`${name} must be a GPUBuffer (or ${argName} a range { buffer, offset, size } of one); got ${describe(buffer)}`);
  }
  let available = buffer.size;
  if (range) {
    const offset = range.offset ?? 0;
    const align = device?.limits.minStorageBufferOffsetAlignment ?? 256;
    if (!Number.isSafeInteger(offset) || offset < 0 || offset % align !== 0) {
      throw new RangeError(`${argName}.offset must be a multiple of ${align} (the device's minStorageBufferOffsetAlignment); got ${String(offset)}`);
    }
    const size = range.size ?? buffer.size - offset;
    if (!Number.isSafeInteger(size) || size < 0 || offset + size > buffer.size) {
      throw new RangeError(`${argName}: offset ${offset} + size ${String(size)} exceeds its buffer's ${buffer.size} bytes`);
    }
    available = size;
  }
  if (available < bytes) {
    throw new RangeError(`${argName} must hold at least ${bytes} bytes (${what}); got ${available}`);
  }
  if ((buffer.usage & Usage.STORAGE) === 0) {
    throw new TypeError(`${name} must have GPUBufferUsage.STORAGE in its usage; got usage 0x${buffer.usage.toString(16)}`);
  }
}

/**
 * A tensor must fit one storage binding of this device, and its element indices must fit the
 * kernels' u32 arithmetic.
 */
export function checkTensorFits(device: GPUDevice, argName: string, shape: readonly number[], elements: number, bytes: number): void {
  const limit = device.limits.maxStorageBufferBindingSize;
  if (bytes > limit) {
    throw new RangeError(
      `${argName} [${shape.join(', ')}] needs ${bytes} bytes per tensor, more than this device's maxStorageBufferBindingSize of ${limit} bytes; ` +
        'split the batch, or request a larger limit from the adapter (getDevice requests the adapter maximum by default)',
    );
  }
  if (elements >= 2 ** 31) {
    throw new RangeError(`${argName} [${shape.join(', ')}] has ${elements} elements; at most 2^31 - 1 are supported`);
  }
}

/** A per-channel state array: array-like of `length` numbers. */
export function checkStateArray(argName: string, value: unknown, length: number): asserts value is ArrayLike<number> {
  if (value === null || typeof value !== 'object' || typeof (value as ArrayLike<number>).length !== 'number') {
    throw new TypeError(`${argName} must be an array of ${length} numbers; got ${describe(value)}`);
  }
  const actual = (value as ArrayLike<number>).length;
  if (actual !== length) throw new RangeError(`${argName} must have ${length} elements (numFeatures); got ${actual}`);
}
