/**
 * Runs one BatchNorm case of bench:node in each selected mode: webgpu-batchnorm, the two-pass
 * baseline and the copies, each output checked against the float64 reference, then timed.
 */
import { BatchNorm } from '../../src/batchnorm/layer.js';
import { readBuffers } from '../../src/core/gpu.js';
import { channelView, viewSize } from '../../src/core/layout.js';
import { referenceBackward, referenceNormalize, referenceStats } from '../../src/batchnorm/reference.js';
import { normalSamples } from '../../support/random.js';
import { COPY_VARIANTS, TwoPassBaseline, type CopyVariant } from '../baseline.js';
import { compulsoryFloats, type BenchCase } from '../cases.js';
import { maxAbsDiff } from '../compare.js';
import { caseBuffers, countDiffering, finishRows, readFloats, type CaseContext } from './case-run.js';
import { BASELINE, EPS, MOMENTUM, OURS, type NodeRow } from './rows.js';
import { timeInterleaved, type Timed } from './sampling.js';

/** A BatchNorm case: webgpu-batchnorm, the two-pass baseline and the copies in each selected mode. */
export async function benchBatchNormCase(ctx: CaseContext, c: BenchCase): Promise<NodeRow[]> {
  const { device, timer, copies, o } = ctx;
  const view = channelView(c.layout, c.shape);
  const n = viewSize(view);
  const C = view.channels;
  const vec4Bytes = (floats: number) => Math.ceil(floats / 4) * 16;
  const largest = vec4Bytes(2.5 * n);
  const limit = Math.min(device.limits.maxStorageBufferBindingSize, device.limits.maxBufferSize);
  const skipped = (error: string): NodeRow[] =>
    o.modes.map((mode) => ({ layout: c.layout, shape: c.shape, mode, impl: OURS, k: 0, gpu: null, wall: null, bytes: 0, gbPerS: null, maxError: null, ok: true, error }));
  if (largest > limit) return skipped(`skipped: a ${(largest / 2 ** 20).toFixed(0)} MiB buffer exceeds this device's ${(limit / 2 ** 20).toFixed(0)} MiB binding limit`);

  const x = normalSamples(n, 1, 1, 2);
  const dy = normalSamples(n, 2, 0, 1);
  // The running statistics are set to the batch statistics, so inference and training give the same y.
  const stats = referenceStats(x, view);
  const ones = new Float64Array(C).fill(1);
  const refY = referenceNormalize(x, view, { mean: stats.mean, variance: stats.variance, gamma: ones, beta: new Float64Array(C), eps: EPS });
  const refDx = o.modes.includes('forward+backward')
    ? referenceBackward(x, dy, view, { mean: stats.mean, variance: stats.variance, gamma: ones, eps: EPS, batchStats: true }).dx
    : null;

  const { buffers, buffer, xBuf, yBuf, dyBuf, dxBuf, copySrc, copyData } = caseBuffers(device, x, dy, largest);
  const copyDst = { forward: buffer('copy dst forward', vec4Bytes(n)), full: buffer('copy dst forward+backward', largest) };

  const bn = new BatchNorm(device, { numFeatures: C, layout: c.layout, eps: EPS, momentum: MOMENTUM, label: 'bench' });
  const baseline = new TwoPassBaseline(device, view, EPS, MOMENTUM);
  const runningPairs = new Float32Array(2 * C);
  for (let k = 0; k < C; k++) runningPairs.set([stats.mean[k], stats.variance[k]], 2 * k);
  const resetRunning = () => {
    bn.setState({ runningMean: stats.mean, runningVar: stats.variance });
    device.queue.writeBuffer(baseline.running, 0, runningPairs);
  };

  const rows: NodeRow[] = [];
  try {
    for (const mode of o.modes) {
      const bytes = compulsoryFloats(mode, n) * 4;
      const training = mode !== 'inference';
      const backward = mode === 'forward+backward';
      const out = backward ? dxBuf : yBuf;
      const ref = backward ? refDx! : refY;
      const timed: Timed[] = [];
      const add = (impl: string, record: (e: GPUCommandEncoder) => void, implBytes: number) => {
        const t: Timed = { impl, record, bytes: implBytes, maxError: null, ok: true, k: 1, gpu: [], wall: [] };
        timed.push(t);
        return t;
      };
      const clear = (b: GPUBuffer) => {
        const e = device.createCommandEncoder({ label: 'bench clear' });
        e.clearBuffer(b);
        device.queue.submit([e.finish()]);
      };
      const checkAgainstReference = async (t: Timed) => {
        resetRunning();
        clear(out);
        await timer.sampleRepeated(t.record, 1);
        t.maxError = maxAbsDiff(await readFloats(device, out, n), ref);
        t.ok = t.maxError <= o.tolerance;
      };

      await checkAgainstReference(
        add(
          OURS,
          (e) => {
            bn.encodeForward(e, { x: xBuf, y: yBuf, shape: c.shape, training });
            if (backward) bn.encodeBackward(e, { x: xBuf, dy: dyBuf, dx: dxBuf, shape: c.shape });
          },
          bytes,
        ),
      );
      await checkAgainstReference(
        add(
          BASELINE,
          (e) => {
            baseline.encodeForward(e, xBuf, yBuf, training);
            if (backward) baseline.encodeBackward(e, xBuf, dyBuf, dxBuf);
          },
          bytes,
        ),
      );
      const dst = backward ? copyDst.full : copyDst.forward;
      const expected = new Uint32Array(copyData.buffer, 0, dst.size / 4);
      for (const variant of Object.keys(COPY_VARIANTS) as CopyVariant[]) {
        const t = add(variant, (e) => copies.encode(e, variant, copySrc, dst), 2 * dst.size);
        clear(dst);
        await timer.sampleRepeated(t.record, 1);
        const [got] = await readBuffers(device, [{ buffer: dst, size: dst.size }]);
        t.maxError = countDiffering(new Uint32Array(got), expected);
        t.ok = t.maxError === 0;
      }
      resetRunning();
      if (!o.checkOnly) await timeInterleaved(timer, timed, o);
      await device.queue.onSubmittedWorkDone();

      rows.push(...finishRows(ctx, { layout: c.layout, shape: c.shape }, mode, timed));
    }
  } finally {
    bn.destroy();
    baseline.destroy();
    for (const b of buffers) b.destroy();
  }
  return rows;
}
