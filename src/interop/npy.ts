/**
 * NumPy's .npy format (versions 1.0 to 3.0), enough for model weights: little- and big-endian
 * float16/32/64 and signed/unsigned integers, C order. numpy.save writes what `toNpy` reads back.
 */

/** An n-dimensional array read from a .npy file. Values are converted to float64; int64 beyond 2^53 is refused. */
export interface NpyArray {
  /** The file's dtype descriptor, such as '<f4' or '<i8'. */
  dtype: string;
  shape: number[];
  data: Float64Array;
}

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY

import { fromHalfBits } from '../core/float16.js';
import { describeValue } from '../core/validate.js';

/** Parses a .npy file. */
export function parseNpy(file: ArrayBuffer | Uint8Array): NpyArray {
  if (!(file instanceof Uint8Array) && !(file instanceof ArrayBuffer)) {
    throw new TypeError(`file must be the bytes of a .npy file, a Uint8Array or an ArrayBuffer; got ${describeValue(file)}`);
  }
  const bytes = file instanceof Uint8Array ? file : new Uint8Array(file);
  if (bytes.length < 10 || MAGIC.some((b, i) => bytes[i] !== b)) throw new TypeError('not a .npy file: it must start with \\x93NUMPY');
  const major = bytes[6];
  if (major < 1 || major > 3) throw new RangeError(`.npy version ${major}.${bytes[7]} is not supported (1.0 to 3.0 are)`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const headerStart = major === 1 ? 10 : 12;
  const header = new TextDecoder(major === 3 ? 'utf-8' : 'latin1').decode(bytes.subarray(headerStart, headerStart + headerLength));
  const descr = /'descr':\s*'([^']+)'/.exec(header)?.[1];
  const fortran = /'fortran_order':\s*(True|False)/.exec(header)?.[1];
  const shapeText = /'shape':\s*\(([^)]*)\)/.exec(header)?.[1];
  if (!descr || !fortran || shapeText === undefined) throw new TypeError(`malformed .npy header: ${header.trim()}`);
  const shape = shapeText
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '')
    .map(Number);
  if (fortran === 'True' && shape.filter((d) => d > 1).length > 1) throw new RangeError('Fortran-order .npy arrays are not supported; save with numpy.ascontiguousarray');
  const count = shape.reduce((a, b) => a * b, 1);
  const read = reader(descr, view);
  const itemSize = Number(descr.slice(2));
  const start = headerStart + headerLength;
  if (bytes.length < start + count * itemSize) throw new RangeError(`.npy data is truncated: ${count} values of ${descr} need ${count * itemSize} bytes`);
  const data = new Float64Array(count);
  for (let i = 0; i < count; i++) data[i] = read(start + i * itemSize);
  return { dtype: descr, shape, data };
}

function reader(descr: string, view: DataView): (at: number) => number {
  const little = descr[0] === '<' || descr[0] === '|' || descr[0] === '=';
  const kind = descr.slice(1);
  switch (kind) {
    case 'f2':
      return (at) => fromHalfBits(view.getUint16(at, little));
    case 'f4':
      return (at) => view.getFloat32(at, little);
    case 'f8':
      return (at) => view.getFloat64(at, little);
    case 'i1':
      return (at) => view.getInt8(at);
    case 'u1':
    case 'b1':
      return (at) => view.getUint8(at);
    case 'i2':
      return (at) => view.getInt16(at, little);
    case 'u2':
      return (at) => view.getUint16(at, little);
    case 'i4':
      return (at) => view.getInt32(at, little);
    case 'u4':
      return (at) => view.getUint32(at, little);
    case 'i8':
    case 'u8':
      return (at) => {
        const v = kind === 'i8' ? view.getBigInt64(at, little) : view.getBigUint64(at, little);
        if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < -BigInt(Number.MAX_SAFE_INTEGER)) throw new RangeError(`.npy ${descr} value ${v} is beyond 2^53`);
        return Number(v);
      };
    default:
      throw new TypeError(`.npy dtype '${descr}' is not supported (float16/32/64 and integers are)`);
  }
}

/**
 * A .npy file (version 1.0, little-endian, C order) holding `data` with `shape` (default 1-D):
 * '<f4' for a Float32Array, '<f8' for a Float64Array, '<i8' for a BigInt64Array.
 */
export function toNpy(data: Float32Array | Float64Array | BigInt64Array, shape?: readonly number[]): Uint8Array {
  if (!(data instanceof Float32Array) && !(data instanceof Float64Array) && !(data instanceof BigInt64Array)) {
    const hint = Array.isArray(data) ? ' (an array: Float32Array.from(array) or Float64Array.from(array) first)' : '';
    throw new TypeError(`data must be a Float32Array, a Float64Array or a BigInt64Array${hint}; got ${describeValue(data)}`);
  }
  shape ??= [data.length];
  if (!Array.isArray(shape)) throw new TypeError(`shape must be an array of non-negative integers; got ${describeValue(shape)}`);
  // An index loop: forEach would skip the holes of a sparse array.
  for (let i = 0; i < shape.length; i++) {
    const d: unknown = shape[i];
    if (!Number.isSafeInteger(d) || (d as number) < 0) throw new TypeError(`shape[${i}] must be a non-negative integer; got ${describeValue(d)}`);
  }
  const count = shape.reduce((a, b) => a * b, 1);
  if (count !== data.length) throw new RangeError(`shape [${shape.join(', ')}] holds ${count} values; data has ${data.length}`);
  const descr = data instanceof Float32Array ? '<f4' : data instanceof Float64Array ? '<f8' : '<i8';
  const shapeText = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shapeText}, }`;
  // The whole preamble (magic, version, length, header, newline) is padded to a multiple of 64.
  const unpadded = 10 + header.length + 1;
  header += ' '.repeat((64 - (unpadded % 64)) % 64) + '\n';
  const out = new Uint8Array(10 + header.length + data.byteLength);
  out.set(MAGIC, 0);
  out.set([1, 0], 6);
  new DataView(out.buffer).setUint16(8, header.length, true);
  out.set(new TextEncoder().encode(header), 10);
  // Typed arrays are in the platform's byte order: write little-endian explicitly.
  const view = new DataView(out.buffer, 10 + header.length);
  for (let i = 0; i < data.length; i++) {
    if (data instanceof Float32Array) view.setFloat32(i * 4, data[i], true);
    else if (data instanceof Float64Array) view.setFloat64(i * 8, data[i], true);
    else view.setBigInt64(i * 8, data[i], true);
  }
  return out;
}
