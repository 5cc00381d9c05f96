/**
 * The two-pass baseline (baseline.wgsl) and the copy kernels (copy.wgsl) on caller buffers.
 */
import baselineWgsl from './baseline.wgsl?raw';
import copyWgsl from './copy.wgsl?raw';
import type { ChannelView } from '../src/core/layout.js';
import { dispatchPipeline } from '../src/core/gpu.js';

type Kernel = 'channel_stats' | 'stats_from_running' | 'normalize' | 'channel_grads' | 'input_grad';

/** The straightforward two-pass batch norm (gamma = 1, beta = 0). */
export class TwoPassBaseline {
  private readonly pipelines = new Map<Kernel, GPUComputePipeline>();
  private readonly shape: GPUBuffer;
  private readonly stats: GPUBuffer;
  readonly running: GPUBuffer;
  private readonly grads: GPUBuffer;

  constructor(private readonly device: GPUDevice, private readonly view: ChannelView, eps: number, momentum: number) {
    const module = device.createShaderModule({ label: 'baseline.wgsl', code: baselineWgsl });
    for (const k of ['channel_stats', 'stats_from_running', 'normalize', 'channel_grads', 'input_grad'] as Kernel[]) {
      this.pipelines.set(k, device.createComputePipeline({ label: `baseline ${k}`, layout: 'auto', compute: { module, entryPoint: k } }));
    }
    const C = view.channels;
    const count = view.outer * view.inner;
    const shape = new ArrayBuffer(32);
    new Uint32Array(shape, 0, 5).set([view.outer, C, view.inner, count, count * C]);
    new Float32Array(shape, 20, 2).set([eps, momentum]);
    this.shape = device.createBuffer({ label: 'baseline shape', size: 32, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
    device.queue.writeBuffer(this.shape, 0, shape);
    const perChannel = (label: string) =>
      device.createBuffer({ label, size: C * 8, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC });
    this.stats = perChannel('baseline stats');
    this.running = perChannel('baseline running');
    this.grads = perChannel('baseline grads');
  }

  private run(pass: GPUComputePassEncoder, kernel: Kernel, workgroups: number, buffers: Record<number, GPUBuffer>) {
    dispatchPipeline(this.device, pass, this.pipelines.get(kernel)!, workgroups, { 0: this.shape, ...buffers });
  }

  /** Records a forward pass: batch statistics and running update when training, else running statistics. */
  encodeForward(encoder: GPUCommandEncoder, x: GPUBuffer, y: GPUBuffer, training: boolean): void {
    const pass = encoder.beginComputePass({ label: 'baseline forward' });
    const C = this.view.channels;
    if (training) this.run(pass, 'channel_stats', C, { 1: x, 3: this.stats, 4: this.running });
    else this.run(pass, 'stats_from_running', Math.ceil(C / 256), { 3: this.stats, 4: this.running });
    this.run(pass, 'normalize', Math.ceil((this.view.outer * C * this.view.inner) / 256), { 1: x, 2: y, 8: this.stats });
    pass.end();
  }

  /** Records the backward pass of a training forward pass. */
  encodeBackward(encoder: GPUCommandEncoder, x: GPUBuffer, dy: GPUBuffer, dx: GPUBuffer): void {
    const pass = encoder.beginComputePass({ label: 'baseline backward' });
    const C = this.view.channels;
    this.run(pass, 'channel_grads', C, { 1: x, 5: dy, 7: this.grads, 8: this.stats });
    this.run(pass, 'input_grad', Math.ceil((this.view.outer * C * this.view.inner) / 256), { 1: x, 5: dy, 6: dx, 7: this.grads, 8: this.stats });
    pass.end();
  }

  destroy(): void {
    for (const b of [this.shape, this.stats, this.running, this.grads]) b.destroy();
  }
}

/** A vectorized copy of `src` into `dst` (whole vec4s; both sizes a multiple of 16 bytes). */
export class CopyKernel {
  private readonly pipeline: GPUComputePipeline;

  constructor(private readonly device: GPUDevice) {
    const module = device.createShaderModule({ label: 'copy.wgsl', code: copyWgsl });
    this.pipeline = device.createComputePipeline({ label: 'roofline copy', layout: 'auto', compute: { module, entryPoint: 'copy' } });
  }

  encode(encoder: GPUCommandEncoder, src: GPUBuffer, dst: GPUBuffer): void {
    const pass = encoder.beginComputePass({ label: 'roofline copy' });
    dispatchPipeline(this.device, pass, this.pipeline, Math.ceil(dst.size / 16 / 256), { 0: src, 1: dst });
    pass.end();
  }
}

/** The copy kernels of copy.wgsl: entry point, vec4s each thread copies, and a fixed grid (grid-stride). */
export const COPY_VARIANTS = {
  'copy vec4': { entry: 'copy', perThread: 1, grid: 0 },
  'copy vec4x4': { entry: 'copy_x4', perThread: 4, grid: 0 },
  'copy vec4x8': { entry: 'copy_x8', perThread: 8, grid: 0 },
  'copy grid-stride': { entry: 'copy_grid', perThread: 1, grid: 4096 },
} as const;
export type CopyVariant = keyof typeof COPY_VARIANTS;

/** Every copy kernel of copy.wgsl; each copies all of `dst` (whole vec4s) from the start of `src`. */
export class CopyKernels {
  private readonly pipelines = new Map<CopyVariant, GPUComputePipeline>();

  constructor(private readonly device: GPUDevice) {
    const module = device.createShaderModule({ label: 'copy.wgsl', code: copyWgsl });
    for (const [name, v] of Object.entries(COPY_VARIANTS) as [CopyVariant, (typeof COPY_VARIANTS)[CopyVariant]][]) {
      this.pipelines.set(name, device.createComputePipeline({ label: `roofline ${name}`, layout: 'auto', compute: { module, entryPoint: v.entry } }));
    }
  }

  /** Records one copy in a compute pass of its own. */
  encode(encoder: GPUCommandEncoder, variant: CopyVariant, src: GPUBuffer, dst: GPUBuffer): void {
    const v = COPY_VARIANTS[variant];
    const needed = Math.ceil(dst.size / 16 / (256 * v.perThread));
    const pass = encoder.beginComputePass({ label: `roofline ${variant}` });
    dispatchPipeline(this.device, pass, this.pipelines.get(variant)!, v.grid ? Math.min(needed, v.grid) : needed, { 0: src, 1: dst });
    pass.end();
  }
}
