/**
 * Small helpers over the WebGPU API: tensor arguments, buffers made from data, dispatches bound
 * by binding number and larger than one grid dimension, and reading buffers back.
 */
/**
 * A tensor argument: a whole GPUBuffer, or a range of one, `{ buffer, offset, size }` as in a
 * bind-group entry (offset a multiple of the device's minStorageBufferOffsetAlignment, size
 * defaulting to the rest of the buffer). A kernel's outputs must be in other GPUBuffers than its
 * inputs (see checkSeparateOutput).
 */
export type TensorBuffer = GPUBuffer | GPUBufferBinding;

/** Whether `t` is a range `{ buffer, offset, size }` rather than a whole GPUBuffer. */
export function isBufferRange(t: TensorBuffer): t is GPUBufferBinding {
  return typeof t === 'object' && t !== null && 'buffer' in t;
}

/** The GPUBuffer a tensor argument lives in. */
export function bufferOf(t: TensorBuffer): GPUBuffer {
  return isBufferRange(t) ? t.buffer : t;
}

/**
 * Throws unless the output `written` lives in a GPUBuffer other than each of `read`: WebGPU
 * validates storage usage per buffer, not per range, so one dispatch cannot write a buffer it
 * also reads, even in disjoint ranges.
 */
export function checkSeparateOutput(written: [string, TensorBuffer], read: Record<string, TensorBuffer>): void {
  for (const [name, input] of Object.entries(read)) {
    if (bufferOf(input) === bufferOf(written[1])) {
      throw new TypeError(
        `${written[0]} must be in a different GPUBuffer from ${name}: WebGPU does not let one dispatch write a buffer it also reads, even in disjoint ranges`,
      );
    }
  }
}

/** A tensor argument as messages name it: its buffer's label, and a range's offset and size. */
export function bufferName(t: TensorBuffer): string {
  const buffer = bufferOf(t);
  const name = buffer?.label ? `'${buffer.label}'` : 'an unlabelled GPUBuffer';
  return isBufferRange(t) ? `${name} at offset ${t.offset ?? 0}${t.size === undefined ? '' : `, ${t.size} bytes`}` : name;
}

/** The first `size` bytes of a tensor argument, as a region to read or write. */
export function regionOf(t: TensorBuffer, size: number): BufferRegion {
  return isBufferRange(t) ? { buffer: t.buffer, offset: t.offset ?? 0, size } : { buffer: t, size };
}

/**
 * A pass's buffers with each caller buffer named in `bytes` bound to exactly its first
 * `bytes[name]` bytes (the others as they are). WebGPU checks the bound ranges of a dispatch's
 * writable bindings against each other, so a whole GPUBuffer, or a range given without a size or
 * with a larger one, that also holds another buffer the dispatch writes would fail the dispatch,
 * though the bytes the pass uses do not overlap.
 */
export function exactBindings<B extends object>(buffers: B, bytes: Readonly<Record<string, number>>): B {
  const out = { ...buffers } as Record<string, unknown>;
  for (const [name, size] of Object.entries(bytes)) {
    const t = out[name] as TensorBuffer | undefined;
    if (t !== undefined) out[name] = regionOf(t, size);
  }
  return out as B;
}

/** GPUBufferUsage flags by value, so that this module does not depend on the globals being set. */
export const Usage = {
  MAP_READ: 0x0001,
  COPY_SRC: 0x0004,
  COPY_DST: 0x0008,
  UNIFORM: 0x0040,
  STORAGE: 0x0080,
} as const;

/** A GPU buffer holding `data`, created mapped so that no queue write is involved. */
export function createBufferWithData(
  device: GPUDevice,
  label: string,
  data: Float32Array | Uint32Array | ArrayBuffer,
  usage: number,
): GPUBuffer {
  const bytes = data instanceof ArrayBuffer ? new Uint8Array(data) : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  const buffer = device.createBuffer({ label, size: Math.max(4, align4(bytes.byteLength)), usage, mappedAtCreation: true });
  new Uint8Array(buffer.getMappedRange()).set(bytes);
  buffer.unmap();
  return buffer;
}

/** `n` rounded up to a multiple of 4 (buffer sizes and copies must be). */
export function align4(n: number): number {
  return Math.ceil(n / 4) * 4;
}

/**
 * Records one dispatch of `pipeline` over `workgroups` workgroups, bound to `buffers` (whole
 * buffers or ranges) by binding number. Counts above maxComputeWorkgroupsPerDimension are spread over y; kernels fold the 2-D
 * id back (linear_workgroup() in common.wgsl) and ignore the overshoot.
 */
export function dispatchPipeline(
  device: GPUDevice,
  pass: GPUComputePassEncoder,
  pipeline: GPUComputePipeline,
  workgroups: number,
  buffers: Record<number, TensorBuffer>,
): void {
  const bindGroup = device.createBindGroup({
    label: `${pipeline.label} bind group`,
    layout: pipeline.getBindGroupLayout(0),
    entries: Object.entries(buffers).map(([binding, b]) => ({ binding: Number(binding), resource: isBufferRange(b) ? b : { buffer: b } })),
  });
  const [x, y] = workgroupGrid(device, workgroups);
  pass.setPipeline(pipeline);
  pass.setBindGroup(0, bindGroup);
  pass.dispatchWorkgroups(x, y);
}

/** A 2-D grid of at least `workgroups` workgroups within the device's per-dimension limit. */
export function workgroupGrid(device: GPUDevice, workgroups: number): [number, number] {
  const max = device.limits.maxComputeWorkgroupsPerDimension;
  if (workgroups <= max) return [workgroups, 1];
  const y = Math.ceil(workgroups / max);
  if (y > max) {
    throw new RangeError(`a dispatch of ${workgroups} workgroups exceeds this device's ${max} x ${max} grid`);
  }
  return [Math.ceil(workgroups / y), y];
}

/** A region of a buffer to read back. */
export interface BufferRegion {
  buffer: GPUBuffer;
  size: number;
  offset?: number;
}

/**
 * Copies each region into one staging buffer and submits at once (after `encoder`, if given, in
 * the same submission); resolves with a copy of each region's bytes once the GPU is done. The
 * copies are recorded and submitted before this returns, so they see exactly the work submitted
 * before the call.
 */
export function submitWithReadback(device: GPUDevice, regions: BufferRegion[], encoder?: GPUCommandEncoder): Promise<ArrayBuffer[]> {
  const offsets: number[] = [];
  let total = 0;
  for (const r of regions) {
    offsets.push(total);
    total += align4(r.size);
  }
  const staging = device.createBuffer({ label: 'webgpu-batchnorm readback', size: Math.max(4, total), usage: Usage.MAP_READ | Usage.COPY_DST });
  try {
    const enc = encoder ?? device.createCommandEncoder({ label: 'webgpu-batchnorm readback' });
    regions.forEach((r, i) => enc.copyBufferToBuffer(r.buffer, r.offset ?? 0, staging, offsets[i], align4(r.size)));
    device.queue.submit([enc.finish()]);
  } catch (error) {
    staging.destroy();
    throw error;
  }
  return (async () => {
    try {
      await staging.mapAsync(0x0001 /* GPUMapMode.READ */);
      const mapped = staging.getMappedRange();
      return regions.map((r, i) => mapped.slice(offsets[i], offsets[i] + r.size));
    } finally {
      staging.destroy();
    }
  })();
}

/** {@link submitWithReadback}, for callers that await at once. */
export async function readBuffers(device: GPUDevice, regions: BufferRegion[], encoder?: GPUCommandEncoder): Promise<ArrayBuffer[]> {
  return submitWithReadback(device, regions, encoder);
}

/** Writes `data` to the start of a tensor argument through the queue (copied at this call). */
export function writeTensor(device: GPUDevice, target: TensorBuffer, data: ArrayBufferView<ArrayBuffer>): void {
  const region = regionOf(target, data.byteLength);
  device.queue.writeBuffer(region.buffer, region.offset ?? 0, data.buffer, data.byteOffset, data.byteLength);
}

/**
 * Records one compute pass labelled `label` into `encoder`: `record` records its dispatches into
 * the pass. Every record function of the families takes a pass, so the begin/end lives here only.
 */
export function inComputePass(encoder: GPUCommandEncoder, label: string, record: (pass: GPUComputePassEncoder) => void): void {
  const pass = encoder.beginComputePass({ label });
  record(pass);
  pass.end();
}
