/**
 * What running a case of either kind (cases-batchnorm.ts, cases-family.ts) shares: its context,
 * its buffers, reading an output back, checking a copy word by word, and turning its timed
 * implementations into rows.
 */
import { readBuffers } from '../../src/core/gpu.js';
import type { CopyKernels } from '../baseline.js';
import type { RowMode } from '../cases.js';
import { summarize, type GpuTimer } from '../timing.js';
import type { Options } from './cli.js';
import type { NodeRow } from './rows.js';
import type { Timed } from './sampling.js';

/** What a case runs with: the device, the timer, the copy kernels, the options, where its rows go and the GPU errors caught. */
export interface CaseContext {
  device: GPUDevice;
  timer: GpuTimer;
  copies: CopyKernels;
  o: Options;
  progress: (row: NodeRow) => void;
  gpuErrors: string[];
}

/** How many words of a copy differ from what was copied. */
export function countDiffering(a: Uint32Array, b: Uint32Array): number {
  let bad = 0;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) bad++;
  return bad;
}

/** Reads n floats of a buffer back. */
export async function readFloats(device: GPUDevice, buffer: GPUBuffer, n: number): Promise<Float32Array> {
  const [bytes] = await readBuffers(device, [{ buffer, size: n * 4 }]);
  return new Float32Array(bytes);
}

/**
 * A case's buffers: x and dy written, y and dx, and the copies' source of `largest` bytes filled
 * with real data (x, dy, x, ...: zeros could be compressed by the GPU). `buffer` makes more;
 * all of them are in `buffers`, for the case to destroy.
 */
export function caseBuffers(device: GPUDevice, x: Float32Array<ArrayBuffer>, dy: Float32Array<ArrayBuffer>, largest: number) {
  const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
  const buffers: GPUBuffer[] = [];
  const buffer = (label: string, size: number) => {
    const b = device.createBuffer({ label, size, usage });
    buffers.push(b);
    return b;
  };
  const [xBuf, yBuf, dyBuf, dxBuf] = ['x', 'y', 'dy', 'dx'].map((label) => buffer(label, x.length * 4));
  device.queue.writeBuffer(xBuf, 0, x);
  device.queue.writeBuffer(dyBuf, 0, dy);
  const copySrc = buffer('copy src', largest);
  const copyData = new Float32Array(largest / 4);
  for (let at = 0, part = 0; at < copyData.length; part++) {
    const from = part % 2 ? dy : x;
    const len = Math.min(from.length, copyData.length - at);
    copyData.set(from.subarray(0, len), at);
    at += len;
  }
  device.queue.writeBuffer(copySrc, 0, copyData);
  return { buffers, buffer, xBuf, yBuf, dyBuf, dxBuf, copySrc, copyData };
}

/** The rows of one case and mode from its timed implementations (GPU errors since the last mode mark them all). */
export function finishRows(ctx: CaseContext, base: Pick<NodeRow, 'layout' | 'shape' | 'norm' | 'numGroups'>, mode: RowMode, timed: Timed[]): NodeRow[] {
  const rows: NodeRow[] = [];
  for (const t of timed) {
    const gpu = t.gpu.length ? summarize(t.gpu) : null;
    const wall = t.wall.length ? summarize(t.wall) : null;
    const time = gpu ?? wall;
    const row: NodeRow = {
      ...base,
      mode,
      impl: t.impl,
      k: t.k,
      gpu,
      wall,
      bytes: t.bytes,
      gbPerS: time ? t.bytes / (time.medianMs * 1e6) : null,
      maxError: t.maxError,
      ok: t.ok,
    };
    if (ctx.gpuErrors.length) {
      row.ok = false;
      row.error = ctx.gpuErrors.join('; ');
    }
    rows.push(row);
    ctx.progress(row);
  }
  ctx.gpuErrors.length = 0;
  return rows;
}
