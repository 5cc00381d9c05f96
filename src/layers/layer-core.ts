/**
 * The skeleton every layer shares (BatchNorm, FeatureScaler): the buffers it owns, the shared
 * buffers it holds (plans, scratch), device-loss and validation reporting, high-level calls run
 * one at a time, the array API's input/output buffers, and destroy().
 */
import { heldBuffers, releaseHolder } from '../runtime/context.js';
import { DeviceGuard } from '../runtime/guard.js';
import { Usage, align4, createBufferWithData, type BufferRegion } from '../runtime/gpu.js';
import { fromFloat16Bits, toFloat16Bits } from '../tensor/float16.js';
import { describe } from '../runtime/validate.js';
import type { DType } from '../ops/plan.js';

/** The array API's staging buffers, grown to fit: an input and an output, and their gradients. */
export interface IoBuffers {
  bytes: number;
  x: GPUBuffer;
  y: GPUBuffer;
  dy: GPUBuffer;
  dx: GPUBuffer;
}

export class LayerCore {
  readonly guard: DeviceGuard;
  private readonly owned = new Set<GPUBuffer>();
  private io: IoBuffers | null = null;
  /** Tail of the queue of high-level calls, which run one at a time. */
  private pending: Promise<unknown> = Promise.resolve();
  private destroyed = false;

  /**
   * @param device the layer's device.
   * @param label  prefix of every GPU object's label and of error messages.
   * @param kind   the class name, for messages ('BatchNorm').
   */
  constructor(
    readonly device: GPUDevice,
    readonly label: string,
    kind: string,
  ) {
    this.guard = new DeviceGuard(device, label, `a new ${kind}`);
  }

  /** A buffer of the layer's own holding `data`, destroyed with the layer. */
  ownBuffer(name: string, data: Float32Array | Uint32Array | ArrayBuffer, usage: number): GPUBuffer {
    const buffer = createBufferWithData(this.device, `${this.label} ${name}`, data, usage);
    this.owned.add(buffer);
    return buffer;
  }

  /**
   * Number of GPU buffers the layer holds: its own, and the shared plan uniforms and scratch it
   * holds with other layers (destroyed with their last holder).
   */
  get bufferCount(): number {
    return this.owned.size + heldBuffers(this.device, this);
  }

  /** Runs high-level calls one after another, so they never interleave their buffer use. */
  serialized<T>(fn: () => Promise<T>): Promise<T> {
    const result = this.pending.then(fn);
    this.pending = result.catch(() => undefined);
    return result;
  }

  /** Reads regions back after submitting `encoder`, if given (device loss reported as such). */
  read(regions: BufferRegion[], encoder?: GPUCommandEncoder): Promise<ArrayBuffer[]> {
    return this.guard.read(regions, encoder);
  }

  /** The array API's input and output buffers, of at least `bytes` each. */
  ioBuffers(bytes: number): IoBuffers {
    if (this.io && this.io.bytes >= bytes) return this.io;
    if (this.io) {
      for (const b of [this.io.x, this.io.y, this.io.dy, this.io.dx]) {
        this.owned.delete(b);
        b.destroy();
      }
    }
    const make = (name: string) => {
      const buffer = this.device.createBuffer({ label: `${this.label} ${name}`, size: bytes, usage: Usage.STORAGE | Usage.COPY_SRC | Usage.COPY_DST });
      this.owned.add(buffer);
      return buffer;
    };
    this.io = { bytes, x: make('x'), y: make('y'), dy: make('dy'), dx: make('dx') };
    return this.io;
  }

  /** The array API's current buffers, if any call made them. */
  get currentIo(): IoBuffers | null {
    return this.io;
  }

  /** Destroys every buffer the layer owns and lets go of the shared ones; later calls throw. */
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.guard.markDestroyed();
    for (const buffer of this.owned) buffer.destroy();
    this.owned.clear();
    releaseHolder(this.device, this);
    this.io = null;
  }
}

/**
 * The bytes to upload for a tensor argument of the array API, after checking its type and
 * length: a Float32Array, or for float16 also a Uint16Array of half bits (Float32Array values are
 * rounded to halves).
 */
export function tensorUpload(argName: string, data: unknown, dtype: DType, elements: number, what: string): Uint8Array<ArrayBuffer> {
  const accepted = dtype === 'float16' ? 'a Float32Array or a Uint16Array of half bits' : 'a Float32Array';
  const ok = data instanceof Float32Array || (dtype === 'float16' && data instanceof Uint16Array);
  if (!ok) throw new TypeError(`${argName} must be ${accepted} for a ${dtype} layer; got ${describe(data)}`);
  const array = data as Float32Array | Uint16Array;
  if (array.length !== elements) throw new RangeError(`${argName} must have ${elements} elements for ${what}; got ${array.length}`);
  const typed = dtype === 'float16' && array instanceof Float32Array ? toFloat16Bits(array) : array;
  const bytes = new Uint8Array(align4(typed.byteLength));
  bytes.set(new Uint8Array(typed.buffer, typed.byteOffset, typed.byteLength));
  return bytes;
}

/** A tensor read back by the array API, as float32 values. */
export function tensorDownload(bytes: ArrayBuffer, dtype: DType, elements: number): Float32Array {
  return dtype === 'float16' ? fromFloat16Bits(new Uint16Array(bytes, 0, elements)) : new Float32Array(bytes, 0, elements);
}
