/**
 * How many dependent dispatches each family call records (the cost of a small tensor on a GPU:
 * each one waits for the last), and which kernels, on the test adapter's plans and on a GPU's:
 * a forward pass is one dispatch (InstanceNorm's training with running statistics two: the
 * running update waits for every instance); a backward pass with γ/β one kernel that takes dx and
 * the γ/β partial sums in one walk, then their finalize (rows of LayerNorm/RMSNorm, channels-first
 * and channels-last groups), so x and dy are read once. Only where no such walk applies (rows
 * longer than MAX_COLUMNS · 256, GroupNorm without spatial axes) does a third dispatch read x and
 * dy again for the γ/β sums. Without learnable γ/β the backward pass is one dispatch.
 */
import { describe, expect, it } from 'vitest';
import { GroupNorm, InstanceNorm, LayerNorm, RMSNorm } from '../../../src/index.js';
import { blankBuffer, recordingDevice } from '../../helpers/dispatch-recorder.js';
import { seenAsGpu, testDevice } from '../../helpers/gpu.js';

/** The kernels of each compute pass of the recorded lines ('--' ends a pass), by entry point. */
function kernelsPerPass(lines: string[]): string[][] {
  const passes: string[][] = [];
  let pass: string[] = [];
  for (const line of lines) {
    if (line === '--') {
      passes.push(pass);
      pass = [];
    } else pass.push(line.match(/norm_[a-z_]+/)?.[0] ?? line);
  }
  return passes;
}

type Layer = { encodeForward: LayerNorm['encodeForward']; encodeBackward: LayerNorm['encodeBackward']; destroy(): void };

// [what, layer, shape, training, forward kernels, backward kernels, backward kernels on a CPU adapter where they differ]
type Case = [string, (device: GPUDevice) => Layer, number[], boolean, string[], string[], string[]?];

const FINALIZE = 'norm_affine_finalize';
// A CPU adapter's plans give a group few lanes (many values each): rows of 300 are then past MAX_COLUMNS a lane.
const REREAD = ['norm_backward', 'norm_affine_partials_rows', FINALIZE];
const CASES: Case[] = [
  ['LayerNorm rows of 300', (d) => new LayerNorm(d, { normalizedShape: 300 }), [64, 300], true, ['norm_forward'], ['norm_backward_columns', FINALIZE], REREAD],
  ['LayerNorm rows of 3, CPU plans too', (d) => new LayerNorm(d, { normalizedShape: 3 }), [5000, 3], true, ['norm_forward'], ['norm_backward_columns', FINALIZE]],
  ['LayerNorm without γ/β', (d) => new LayerNorm(d, { normalizedShape: 300, elementwiseAffine: false }), [64, 300], true, ['norm_forward'], ['norm_backward_columns'], ['norm_backward']],
  ['RMSNorm rows of 300', (d) => new RMSNorm(d, { normalizedShape: 300 }), [64, 300], true, ['norm_forward'], ['norm_backward_columns', FINALIZE], REREAD],
  ['LayerNorm rows of 9000 (beyond MAX_COLUMNS · 256)', (d) => new LayerNorm(d, { normalizedShape: 9000 }), [4, 9000], true, ['norm_forward'], REREAD],
  ['GroupNorm channels first', (d) => new GroupNorm(d, { numGroups: 4, numChannels: 16, layout: 'NCHW' }), [2, 16, 8, 8], true, ['norm_forward'], ['norm_backward_planes', FINALIZE]],
  ['GroupNorm channels last', (d) => new GroupNorm(d, { numGroups: 4, numChannels: 16, layout: 'NHWC' }), [2, 8, 8, 16], true, ['norm_forward'], ['norm_backward_channels', FINALIZE]],
  ['GroupNorm channels last, 10 channels a group', (d) => new GroupNorm(d, { numGroups: 2, numChannels: 20, layout: 'NHWC', activation: 'silu' }), [2, 16, 16, 20], true, ['norm_forward'], ['norm_backward_channels', FINALIZE]],
  ['GroupNorm without spatial axes', (d) => new GroupNorm(d, { numGroups: 4, numChannels: 16, layout: 'NC' }), [8, 16], true, ['norm_forward'], REREAD],
  ['InstanceNorm channels last, training with running statistics', (d) => new InstanceNorm(d, { numFeatures: 16, layout: 'NHWC', affine: true, trackRunningStats: true }), [2, 8, 8, 16], true, ['norm_forward', 'norm_update_running'], ['norm_backward_channels', FINALIZE]],
  ['InstanceNorm channels last, inference', (d) => new InstanceNorm(d, { numFeatures: 16, layout: 'NHWC', affine: true, trackRunningStats: true }), [2, 8, 8, 16], false, ['norm_forward'], ['norm_backward_channels', FINALIZE]],
  ['InstanceNorm channels first', (d) => new InstanceNorm(d, { numFeatures: 16, layout: 'NCHW', affine: true }), [2, 16, 8, 8], true, ['norm_forward'], ['norm_backward_planes', FINALIZE]],
];

describe('family dispatches per call', async () => {
  const recorder = recordingDevice(await testDevice());
  // The plans of a GPU adapter too (lanes and kernels are sized per adapter kind).
  const gpuLike = seenAsGpu(recorder.device);

  it.each(CASES)('%s', (what, make, shape, training, forward, backward, cpuBackward) => {
    for (const device of [recorder.device, gpuLike]) {
      const bytes = shape.reduce((p, d) => p * d, 1) * 4;
      const [x, y, dy, dx] = [0, 1, 2, 3].map(() => blankBuffer(device, bytes));
      const layer = make(device);
      const encoder = device.createCommandEncoder();
      layer.encodeForward(encoder, { x, y, shape, training });
      layer.encodeBackward(encoder, { x, dy, dx, shape });
      const adapter = device === gpuLike ? 'GPU plans' : 'CPU plans';
      const expected = device === gpuLike ? backward : (cpuBackward ?? backward);
      expect(kernelsPerPass(recorder.take()), `${what}, ${adapter}`).toEqual([forward, expected]);
      layer.destroy();
      for (const b of [x, y, dy, dx]) b.destroy();
    }
  });
});
