/**
 * Runs one case of the normalization family (LayerNorm, RMSNorm, GroupNorm, InstanceNorm) of
 * bench:node in forward and backward: the library's layer, the two-pass family baseline and the
 * copies, each output checked against the float64 reference, then timed.
 */
import { readBuffers } from '../../src/core/gpu.js';
import { normalSamples } from '../../support/random.js';
import { COPY_VARIANTS, type CopyVariant } from '../baseline.js';
import { compulsoryFloats, familyModes, type BenchCase } from '../cases.js';
import { maxAbsDiff } from '../compare.js';
import { FamilyTwoPassBaseline, familyGeometry, familyReference, makeFamilyLayer } from '../family.js';
import { caseBuffers, countDiffering, finishRows, readFloats, type CaseContext } from './case-run.js';
import { BASELINE, EPS, OURS, type NodeRow } from './rows.js';
import { timeInterleaved, type Timed } from './sampling.js';

/**
 * A family case: the library's layer, the two-pass family baseline and the copies,
 * in forward (x read, y written) and backward alone (x and dy read, dx written; the statistics
 * come from one forward pass recorded before, as a training step has them), each output checked
 * against the float64 reference (γ = 1, β = 0).
 */
export async function benchFamilyCase(ctx: CaseContext, c: BenchCase): Promise<NodeRow[]> {
  const { device, timer, copies, o } = ctx;
  const modes = familyModes(o.modes);
  const geometry = familyGeometry(c);
  const n = geometry.total;
  const vec4Bytes = (floats: number) => Math.ceil(floats / 4) * 16;
  const largest = vec4Bytes((modes.includes('backward') ? 1.5 : 1) * n);
  const limit = Math.min(device.limits.maxStorageBufferBindingSize, device.limits.maxBufferSize);
  const base = { layout: c.layout, shape: c.shape, norm: c.norm, ...(c.numGroups !== undefined ? { numGroups: c.numGroups } : {}) };
  const skipped = (error: string): NodeRow[] =>
    modes.map((mode) => ({ ...base, mode, impl: OURS, k: 0, gpu: null, wall: null, bytes: 0, gbPerS: null, maxError: null, ok: true, error }));
  const biggest = Math.max(largest, n * 4);
  if (biggest > limit) return skipped(`skipped: a ${(biggest / 2 ** 20).toFixed(0)} MiB buffer exceeds this device's ${(limit / 2 ** 20).toFixed(0)} MiB binding limit`);

  const x = normalSamples(n, 1, 1, 2);
  const dy = normalSamples(n, 2, 0, 1);

  const { buffers, buffer, xBuf, yBuf, dyBuf, dxBuf, copySrc, copyData } = caseBuffers(device, x, dy, largest);
  const copyDst = { forward: buffer('copy dst forward', vec4Bytes(n)), backward: buffer('copy dst backward', largest) };

  const layer = makeFamilyLayer(device, c, EPS);
  const baseline = new FamilyTwoPassBaseline(device, geometry, EPS);
  const submit = (record: (e: GPUCommandEncoder) => void) => {
    const e = device.createCommandEncoder({ label: 'bench setup' });
    record(e);
    device.queue.submit([e.finish()]);
  };

  const rows: NodeRow[] = [];
  try {
    for (const mode of modes) {
      const bytes = compulsoryFloats(mode, n) * 4;
      const backward = mode === 'backward';
      const out = backward ? dxBuf : yBuf;
      const ref = familyReference(c, mode, x, dy, EPS);
      const timed: Timed[] = [];
      const add = (impl: string, record: (e: GPUCommandEncoder) => void, implBytes: number) => {
        const t: Timed = { impl, record, bytes: implBytes, maxError: null, ok: true, k: 1, gpu: [], wall: [] };
        timed.push(t);
        return t;
      };
      const checkAgainstReference = async (t: Timed) => {
        submit((e) => e.clearBuffer(out));
        await timer.sampleRepeated(t.record, 1);
        t.maxError = maxAbsDiff(await readFloats(device, out, n), ref);
        t.ok = t.maxError <= o.tolerance;
      };
      if (backward) {
        // The statistics backward reads: one forward pass of each, recorded once.
        submit((e) => {
          layer.encodeForward(e, { x: xBuf, y: yBuf, shape: c.shape });
          baseline.encodeForward(e, xBuf, yBuf);
        });
      }
      await checkAgainstReference(
        add(OURS, backward ? (e) => layer.encodeBackward(e, { x: xBuf, dy: dyBuf, dx: dxBuf, shape: c.shape }) : (e) => layer.encodeForward(e, { x: xBuf, y: yBuf, shape: c.shape }), bytes),
      );
      await checkAgainstReference(add(BASELINE, backward ? (e) => baseline.encodeBackward(e, xBuf, dyBuf, dxBuf) : (e) => baseline.encodeForward(e, xBuf, yBuf), bytes));
      const dst = backward ? copyDst.backward : copyDst.forward;
      const expected = new Uint32Array(copyData.buffer, 0, dst.size / 4);
      for (const variant of Object.keys(COPY_VARIANTS) as CopyVariant[]) {
        const t = add(variant, (e) => copies.encode(e, variant, copySrc, dst), 2 * dst.size);
        submit((e) => e.clearBuffer(dst));
        await timer.sampleRepeated(t.record, 1);
        const [got] = await readBuffers(device, [{ buffer: dst, size: dst.size }]);
        t.maxError = countDiffering(new Uint32Array(got), expected);
        t.ok = t.maxError === 0;
      }
      if (!o.checkOnly) await timeInterleaved(timer, timed, o);
      await device.queue.onSubmittedWorkDone();
      rows.push(...finishRows(ctx, base, mode, timed));
    }
  } finally {
    layer.destroy();
    baseline.destroy();
    for (const b of buffers) b.destroy();
  }
  return rows;
}
