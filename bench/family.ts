/**
 * bench:node's normalization-family rows: the cases' geometry, the library's layers
 * behind one interface, the two-pass baseline of family-baseline.wgsl, and the float64 reference
 * of src/normalization/reference.ts.
 */
import familyBaselineWgsl from './family-baseline.wgsl?raw';
import { GroupNorm, InstanceNorm, LayerNorm, RMSNorm } from '../src/normalization/layer.js';
import { dispatchPipeline } from '../src/core/gpu.js';
import { channelAxis, channelView, type Layout } from '../src/core/layout.js';
import {
  referenceGroupNorm,
  referenceGroupNormBackward,
  referenceInstanceNorm,
  referenceInstanceNormBackward,
  referenceLayerNorm,
  referenceLayerNormBackward,
  referenceRMSNorm,
  referenceRMSNormBackward,
} from '../src/normalization/reference.js';
import type { BenchCase, FamilyMode, FamilyNorm } from './cases.js';

/** Which elements a family case normalizes together. */
export interface FamilyGeometry {
  /** Groups in the tensor: rows (LayerNorm, RMSNorm), N·G (GroupNorm), N·C (InstanceNorm). */
  groups: number;
  /** Elements per group. */
  size: number;
  total: number;
  /** Groups are contiguous runs of `size` elements (rows; channels-first group and instance norm). */
  contiguous: boolean;
  /** Spatial positions per sample, channels, channels per group, groups per sample (channels last). */
  spatial: number;
  channels: number;
  perGroup: number;
  groupsPerSample: number;
  /** Whether the mean is subtracted (all but RMSNorm). */
  center: boolean;
}

/** LayerNorm's and RMSNorm's layout for a rank: the normalized (last) axis in the channel position. */
export function rowLayout(rank: number): Layout {
  const layout = ({ 2: 'NC', 3: 'NLC', 4: 'NHWC', 5: 'NDHWC' } as Record<number, Layout>)[rank];
  if (!layout) throw new RangeError(`a LayerNorm or RMSNorm case must have 2 to 5 dimensions; got ${rank}`);
  return layout;
}

/** The geometry of a family case (throws a RangeError when GroupNorm's groups do not divide C). */
export function familyGeometry(c: BenchCase): FamilyGeometry {
  const norm = c.norm!;
  const total = c.shape.reduce((a, b) => a * b, 1);
  if (norm === 'LayerNorm' || norm === 'RMSNorm') {
    const K = c.shape[c.shape.length - 1];
    return { groups: total / K, size: K, total, contiguous: true, spatial: 1, channels: K, perGroup: K, groupsPerSample: 1, center: norm === 'LayerNorm' };
  }
  const view = channelView(c.layout, c.shape);
  const N = c.shape[0];
  const C = view.channels;
  const G = norm === 'InstanceNorm' ? C : (c.numGroups ?? 32);
  if (!Number.isSafeInteger(G) || G < 1 || C % G !== 0) throw new RangeError(`GroupNorm's ${G} groups must divide the ${C} channels`);
  const spatial = total / (N * C);
  const channelsLast = channelAxis(c.layout) === c.shape.length - 1 && spatial > 1;
  return { groups: N * G, size: (C / G) * spatial, total, contiguous: !channelsLast, spatial, channels: C, perGroup: C / G, groupsPerSample: G, center: true };
}

/** A family layer of the library on caller buffers (γ = 1, β = 0: the layers' initial state). */
export interface FamilyLayer {
  encodeForward(encoder: GPUCommandEncoder, args: { x: GPUBuffer; y: GPUBuffer; shape: number[] }): void;
  encodeBackward(encoder: GPUCommandEncoder, args: { x: GPUBuffer; dy: GPUBuffer; dx: GPUBuffer; shape: number[] }): void;
  destroy(): void;
}

/**
 * The library's layer for a family case: LayerNorm and RMSNorm over the last dimension,
 * GroupNorm with the case's groups, InstanceNorm with `affine: true` (so that backward computes
 * dγ and dβ, as PyTorch's peer with weight and bias requiring grad does). All with `eps`.
 */
export function makeFamilyLayer(device: GPUDevice, c: BenchCase, eps: number, label = 'bench'): FamilyLayer {
  const last = c.shape[c.shape.length - 1];
  const C = c.norm === 'LayerNorm' || c.norm === 'RMSNorm' ? last : channelView(c.layout, c.shape).channels;
  switch (c.norm) {
    case 'LayerNorm':
      return new LayerNorm(device, { normalizedShape: last, eps, label });
    case 'RMSNorm':
      return new RMSNorm(device, { normalizedShape: last, eps, label });
    case 'GroupNorm':
      return new GroupNorm(device, { numGroups: c.numGroups ?? 32, numChannels: C, eps, layout: c.layout, label });
    case 'InstanceNorm':
      return new InstanceNorm(device, { numFeatures: C, eps, affine: true, layout: c.layout, label });
    default:
      throw new Error(`not a family case: ${JSON.stringify(c)}`);
  }
}

/** The float64 reference of a family case's mode (γ = 1, β = 0): y for forward, dx for backward. */
export function familyReference(c: BenchCase, mode: FamilyMode, x: Float32Array, dy: Float32Array, eps: number): Float64Array {
  const norm: FamilyNorm = c.norm!;
  const K = c.shape[c.shape.length - 1];
  const forward = mode === 'forward';
  switch (norm) {
    case 'LayerNorm':
      return forward ? referenceLayerNorm(x, c.shape, K, { eps }).y : referenceLayerNormBackward(x, dy, c.shape, K, { eps }).dx;
    case 'RMSNorm':
      return forward ? referenceRMSNorm(x, c.shape, K, { eps }).y : referenceRMSNormBackward(x, dy, c.shape, K, { eps }).dx;
    case 'GroupNorm': {
      const p = { layout: c.layout, numGroups: c.numGroups ?? 32, eps };
      return forward ? referenceGroupNorm(x, c.shape, p).y : referenceGroupNormBackward(x, dy, c.shape, p).dx;
    }
    case 'InstanceNorm':
      return forward ? referenceInstanceNorm(x, c.shape, { layout: c.layout, eps }).y : referenceInstanceNormBackward(x, dy, c.shape, { layout: c.layout, eps }).dx;
  }
}

type Kernel = 'group_stats' | 'normalize' | 'group_grads' | 'input_grad';

/** The straightforward two-pass family norm of family-baseline.wgsl (γ = 1, β = 0; dx only). */
export class FamilyTwoPassBaseline {
  private readonly pipelines = new Map<Kernel, GPUComputePipeline>();
  private readonly shape: GPUBuffer;
  private readonly stats: GPUBuffer;
  private readonly grads: GPUBuffer;

  constructor(private readonly device: GPUDevice, private readonly geometry: FamilyGeometry, eps: number) {
    const module = device.createShaderModule({ label: 'family-baseline.wgsl', code: familyBaselineWgsl });
    for (const k of ['group_stats', 'normalize', 'group_grads', 'input_grad'] as Kernel[]) {
      this.pipelines.set(k, device.createComputePipeline({ label: `family baseline ${k}`, layout: 'auto', compute: { module, entryPoint: k } }));
    }
    const g = geometry;
    const shape = new ArrayBuffer(48);
    new Uint32Array(shape, 0, 8).set([g.groups, g.size, g.total, g.contiguous ? 1 : 0, g.spatial, g.channels, g.perGroup, g.groupsPerSample]);
    new Float32Array(shape, 32, 2).set([eps, g.center ? 1 : 0]);
    this.shape = device.createBuffer({ label: 'family baseline shape', size: 48, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
    device.queue.writeBuffer(this.shape, 0, shape);
    const perGroup = (label: string) => device.createBuffer({ label, size: g.groups * 8, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC });
    this.stats = perGroup('family baseline stats');
    this.grads = perGroup('family baseline grads');
  }

  private run(pass: GPUComputePassEncoder, kernel: Kernel, workgroups: number, buffers: Record<number, GPUBuffer>) {
    dispatchPipeline(this.device, pass, this.pipelines.get(kernel)!, workgroups, { 0: this.shape, ...buffers });
  }

  /** Records a forward pass: the statistics of every group, then y. */
  encodeForward(encoder: GPUCommandEncoder, x: GPUBuffer, y: GPUBuffer): void {
    const pass = encoder.beginComputePass({ label: 'family baseline forward' });
    this.run(pass, 'group_stats', this.geometry.groups, { 1: x, 3: this.stats });
    this.run(pass, 'normalize', Math.ceil(this.geometry.total / 256), { 1: x, 2: y, 8: this.stats });
    pass.end();
  }

  /** Records the backward pass (dx) of the last forward pass. */
  encodeBackward(encoder: GPUCommandEncoder, x: GPUBuffer, dy: GPUBuffer, dx: GPUBuffer): void {
    const pass = encoder.beginComputePass({ label: 'family baseline backward' });
    this.run(pass, 'group_grads', this.geometry.groups, { 1: x, 5: dy, 7: this.grads, 8: this.stats });
    this.run(pass, 'input_grad', Math.ceil(this.geometry.total / 256), { 1: x, 5: dy, 6: dx, 7: this.grads, 8: this.stats });
    pass.end();
  }

  destroy(): void {
    for (const b of [this.shape, this.stats, this.grads]) b.destroy();
  }
}
