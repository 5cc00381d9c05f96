/**
 * Timing of recorded GPU work: GPU time from timestamp queries written by two empty compute
 * passes that bracket the work (where the device has 'timestamp-query'), and wall time from
 * submit to onSubmittedWorkDone.
 */

/** One measurement. */
export interface Sample {
  /** GPU time between the bracketing timestamps, or null without timestamp queries. */
  gpuMs: number | null;
  /** Wall time from submit to onSubmittedWorkDone. */
  wallMs: number;
}

/** Median and minimum of the samples, in ms. */
export interface Summary {
  medianMs: number;
  minMs: number;
  iterations: number;
}

/** Median and minimum of a list of times. */
export function summarize(times: number[]): Summary {
  const sorted = [...times].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  const medianMs = sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
  return { medianMs, minMs: sorted[0], iterations: sorted.length };
}

/** Times work recorded into a command encoder. */
export class GpuTimer {
  private readonly querySet: GPUQuerySet | null;
  private readonly resolve: GPUBuffer | null;
  private readonly readback: GPUBuffer | null;

  constructor(private readonly device: GPUDevice) {
    const timestamps = device.features.has('timestamp-query');
    this.querySet = timestamps ? device.createQuerySet({ label: 'bench timestamps', type: 'timestamp', count: 2 }) : null;
    this.resolve = timestamps
      ? device.createBuffer({ label: 'bench timestamp resolve', size: 16, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC })
      : null;
    this.readback = timestamps
      ? device.createBuffer({ label: 'bench timestamp readback', size: 16, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST })
      : null;
  }

  /** How GPU times are measured on this device. */
  get method(): 'timestamp-query' | 'wall' {
    return this.querySet ? 'timestamp-query' : 'wall';
  }

  /** Runs `record` once and measures it. */
  async sample(record: (encoder: GPUCommandEncoder) => void): Promise<Sample> {
    return this.sampleRepeated(record, 1);
  }

  /** Records `record` `k` times into one encoder between the two timestamp writes and measures all k. */
  async sampleRepeated(record: (encoder: GPUCommandEncoder) => void, k: number): Promise<Sample> {
    const encoder = this.device.createCommandEncoder({ label: 'bench iteration' });
    if (this.querySet) encoder.beginComputePass({ timestampWrites: { querySet: this.querySet, beginningOfPassWriteIndex: 0 } }).end();
    for (let i = 0; i < k; i++) record(encoder);
    if (this.querySet && this.resolve && this.readback) {
      encoder.beginComputePass({ timestampWrites: { querySet: this.querySet, endOfPassWriteIndex: 1 } }).end();
      encoder.resolveQuerySet(this.querySet, 0, 2, this.resolve, 0);
      encoder.copyBufferToBuffer(this.resolve, 0, this.readback, 0, 16);
    }
    const start = performance.now();
    this.device.queue.submit([encoder.finish()]);
    await this.device.queue.onSubmittedWorkDone();
    const wallMs = performance.now() - start;
    if (!this.readback) return { gpuMs: null, wallMs };
    await this.readback.mapAsync(GPUMapMode.READ);
    const [begin, end] = new BigInt64Array(this.readback.getMappedRange());
    this.readback.unmap();
    return { gpuMs: Number(end - begin) / 1e6, wallMs };
  }

  /** `warmup` unmeasured runs, then `iterations` measured ones. */
  async measure(record: (encoder: GPUCommandEncoder) => void, iterations: number, warmup = 2): Promise<{ gpu: Summary | null; wall: Summary }> {
    for (let i = 0; i < warmup; i++) await this.sample(record);
    const samples: Sample[] = [];
    for (let i = 0; i < iterations; i++) samples.push(await this.sample(record));
    const gpu = samples.every((s) => s.gpuMs !== null) ? summarize(samples.map((s) => s.gpuMs!)) : null;
    return { gpu, wall: summarize(samples.map((s) => s.wallMs)) };
  }

  destroy(): void {
    this.querySet?.destroy();
    this.resolve?.destroy();
    this.readback?.destroy();
  }
}
