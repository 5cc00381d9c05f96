/**
 * Plans: everything about one (shape, options) that does not depend on the buffers — the
 * [outer, C, inner] view, the tensor storage, the dispatch geometry and the uniform Params —
 * computed once per key and kept in the device's context (at most MAX_PLANS, least recently used
 * evicted).
 *
 * A plan's uniform is immutable: passes recorded into one encoder before a submit never see each
 * other's parameters, and no uniform a recorded pass uses is rewritten before it runs.
 */
import type { FusedActivation } from './contract.js';
import type { TensorStorage } from './shaders.js';
import { BN_PARTIAL_BYTES, KERNEL_CONSTANTS, SLOT_ELEMENTS, isChannelsLastVec4, packStruct, tensorStorage } from '../batchnorm/kernels.js';
import { structBytes } from '../feature-scaling/kernels.js';
import { MAX_PLANS, deviceContext } from './context.js';
import { Usage, align4, createBufferWithData } from './gpu.js';
import type { ChannelView } from './layout.js';

const { WG, RWG, CHUNK, ROWS } = KERNEL_CONSTANTS;

// Dispatch sizes of the channels-last vec4 kernels. On a GPU: enough work to keep a large one busy
// (an H200 keeps 132 SMs × 2048 threads resident and needs megabytes of loads in flight), measured
// there. On a CPU adapter (SwiftShader), where every workgroup runs each barrier of its tree on a
// core: few large workgroups (NHWC [32,56,56,64] training forward: 1098 ms with the GPU sizes,
// 286 ms with these, on 2 cores).
/** Threads an elementwise channels-last dispatch aims for (fewer than resident: each keeps its coefficients for several rows). */
const ELEMENTWISE_THREADS = 1 << 17;
/**
 * Threads a slot dispatch (normalize, input_grad; slot_period in common.wgsl) aims for: about twice
 * an H200's resident threads, so that a large channels-first tensor, which ran one thread per
 * slot, still fills every SM with loads in flight while each thread keeps its coefficients for
 * a few rows. Not measured on a GPU yet.
 */
const SLOT_THREADS = 1 << 19;
/** Workgroups a channels-last reduction aims for, and runs of 4 rows each lane takes at least (so that the partials stay small against the data). */
export const REDUCTION_SIZES = { gpu: { workgroups: 1024, minRunsPerLane: 4 }, cpu: { workgroups: 16, minRunsPerLane: 64 } } as const;

/** Whether `device` is a software (CPU) adapter, as SwiftShader is: WebGPU's fallback adapter. */
export function isCpuAdapter(device: GPUDevice): boolean {
  const info = (device as GPUDevice & { adapterInfo?: GPUAdapterInfo & { isFallbackAdapter?: boolean } }).adapterInfo;
  return info?.isFallbackAdapter === true || /swiftshader|llvmpipe|lavapipe/i.test(`${info?.architecture ?? ''} ${info?.description ?? ''}`);
}

/** Element type of the tensors (x, y, dy, dx) in GPU buffers. Statistics are always float32. */
export type DType = 'float32' | 'float16';

/** What the elementwise kernels need: normalize and input_grad. */
export interface ElementwisePlan {
  readonly view: ChannelView;
  /** How x, y, dy and dx are stored (tensor_*.wgsl). */
  readonly storage: TensorStorage;
  /** The activation compiled into the kernels that fuse one. */
  readonly activation: FusedActivation;
  /** The uniform Params of every dispatch of this plan. */
  readonly params: GPUBuffer;
  /**
   * Channels-last with C % 4 == 0: the *_channels_last_vec4 kernels, four channels at a time
   * (common.wgsl), instead of the slot kernels.
   */
  readonly channelsLastVec4: boolean;
  /** Workgroups of an elementwise dispatch: (slot, row lane) or (channel group, row lane) threads, each keeping its channels' coefficients. */
  readonly elementwiseWorkgroups: number;
  /** Workgroups of a one-thread-per-channel dispatch. */
  readonly perChannelWorkgroups: number;
}

/** A plan of the batch-norm kernels for one shape, options and mode. */
export interface BatchNormPlan extends ElementwisePlan {
  /** inner == 1: the partial reductions walk contiguous channels (the *_channels_last kernels). */
  readonly channelsLast: boolean;
  /** Partials per channel: chunks of CHUNK elements, or blocks of rows channels-last. */
  readonly chunks: number;
  /** Workgroups of one partial-reduction dispatch. */
  readonly partialWorkgroups: number;
  /** Scratch bytes of the partials: one vec4f per (channel, chunk). */
  readonly partialBytes: number;
}

/** The layer options a batch-norm plan depends on. */
export interface BatchNormPlanOptions {
  dtype: DType;
  activation: FusedActivation;
  eps: number;
  /** null: cumulative moving average. */
  momentum: number | null;
  nonFiniteBatches: 'skip' | 'update';
  runningVariance: 'unbiased' | 'biased';
}

/** What a forward pass normalizes with and updates. */
export interface BatchNormMode {
  /** Normalize with the batch's statistics (training, or inference without running statistics). */
  batchStats: boolean;
  /** Update the running statistics and numBatchesTracked (training with running statistics). */
  updateRunning: boolean;
}

/** A plan of the feature-scaling kernels for one shape. */
export interface ScalingPlan extends ElementwisePlan {
  readonly chunks: number;
  readonly partialWorkgroups: number;
  /** Scratch bytes of the partials: one ScalePartial (32 bytes) per (feature, chunk). */
  readonly partialBytes: number;
}

/** The batch-norm plan of `view` for `options` and `mode`, held by `holder` (see runtime/context.ts). */
export function batchNormPlan(device: GPUDevice, view: ChannelView, options: BatchNormPlanOptions, mode: BatchNormMode, holder: object): BatchNormPlan {
  const storage = tensorStorage(device, options.dtype, view);
  const { activation, eps, momentum, nonFiniteBatches, runningVariance } = options;
  const key = `bn ${storage} ${activation} ${viewKey(view)} eps ${eps} momentum ${momentum} ${nonFiniteBatches} ${runningVariance} ${mode.batchStats} ${mode.updateRunning}`;
  return cachedPlan(device, key, holder, () => {
    const reduction = reductionGeometry(device, view);
    const params = packStruct('Params', {
      ...viewFields(view, reduction.chunks),
      eps,
      momentum: momentum ?? -1, // < 0 selects the cumulative average (finalize_stats)
      update_running: Number(mode.updateRunning),
      batch_stats: Number(mode.batchStats),
      update_non_finite: Number(nonFiniteBatches === 'update'),
      unbiased_running: Number(runningVariance === 'unbiased'),
    });
    return {
      ...elementwise(view, storage, activation, uniform(device, `bn ${viewKey(view)}`, params)),
      channelsLast: view.inner === 1,
      ...reduction,
      partialBytes: align4(view.channels * reduction.chunks * BN_PARTIAL_BYTES),
    };
  });
}

/** The feature-scaling plan of `view`, held by `holder`. */
export function scalingPlan(device: GPUDevice, view: ChannelView, holder: object): ScalingPlan {
  const storage = tensorStorage(device, 'float32', view);
  return cachedPlan(device, `scaling ${storage} ${viewKey(view)}`, holder, () => {
    const chunks = Math.ceil((view.outer * view.inner) / CHUNK);
    const params = packStruct('Params', {
      ...viewFields(view, chunks),
      eps: 0,
      momentum: -1,
      update_running: 0,
      batch_stats: 0,
      update_non_finite: 0,
      unbiased_running: 1,
    });
    return {
      ...elementwise(view, storage, 'none', uniform(device, `scaling ${viewKey(view)}`, params)),
      chunks,
      partialWorkgroups: view.channels * chunks,
      partialBytes: view.channels * chunks * structBytes('ScalePartial'),
    };
  });
}

function viewKey(view: ChannelView): string {
  return `[${view.outer}, ${view.channels}, ${view.inner}]`;
}

/** An immutable uniform buffer holding `params`. */
export function uniform(device: GPUDevice, what: string, params: ArrayBuffer): GPUBuffer {
  return createBufferWithData(device, `webgpu-batchnorm ${what} params`, params, Usage.UNIFORM);
}

function viewFields(view: ChannelView, chunks: number) {
  const count = view.outer * view.inner;
  return { outer: view.outer, channels: view.channels, inner: view.inner, count, chunks, total: count * view.channels };
}

/**
 * The batch-norm reductions' partials per channel and workgroups. Chunked: CHUNK elements per
 * workgroup. Channels-last: ROWS rows of RWG channels per workgroup, or with C % 4 == 0 a tile of
 * channel groups and row lanes (RowTile in common.wgsl) over blocks of rows sized so that the
 * launch covers the device and each lane still takes a few runs of 4 rows (REDUCTION_SIZES).
 */
function reductionGeometry(device: GPUDevice, view: ChannelView): { chunks: number; partialWorkgroups: number } {
  if (view.inner !== 1) {
    const chunks = Math.ceil((view.outer * view.inner) / CHUNK);
    return { chunks, partialWorkgroups: view.channels * chunks };
  }
  if (!isChannelsLastVec4(view)) {
    const chunks = Math.ceil(view.outer / ROWS);
    return { chunks, partialWorkgroups: Math.ceil(view.channels / RWG) * chunks };
  }
  const groups = view.channels / 4;
  const width = Math.min(groups, RWG);
  const lanes = Math.floor(WG / width);
  const tiles = Math.ceil(groups / width);
  const sizes = REDUCTION_SIZES[isCpuAdapter(device) ? 'cpu' : 'gpu'];
  const rowsPerBlock = Math.max(4 * lanes * sizes.minRunsPerLane, Math.ceil(view.outer / Math.max(1, Math.floor(sizes.workgroups / tiles))));
  const chunks = Math.ceil(view.outer / rowsPerBlock);
  return { chunks, partialWorkgroups: tiles * chunks };
}

/** Workgroups of a fixed grid of `lanes` (at most `units`, at least 1, about `threads` / `period`) times `period` threads. */
function laneWorkgroups(period: number, units: number, threads: number): number {
  const lanes = Math.min(units, Math.max(1, Math.floor(threads / period)));
  return Math.ceil((lanes * period) / WG);
}

function elementwise(view: ChannelView, storage: TensorStorage, activation: FusedActivation, params: GPUBuffer): ElementwisePlan {
  const channelsLastVec4 = isChannelsLastVec4(view);
  // Channels-last vec4: (channel group, row lane) threads, group_lanes() in common.wgsl. Otherwise
  // (slot, row lane) threads over periods of slots, slot_period() in common.wgsl.
  const slot = SLOT_ELEMENTS[storage];
  const row = view.channels * view.inner;
  const period = row / Math.min(slot, row & -row);
  const slots = Math.ceil((view.outer * row) / slot);
  return {
    view,
    storage,
    activation,
    params,
    channelsLastVec4,
    elementwiseWorkgroups: channelsLastVec4
      ? laneWorkgroups(view.channels / 4, view.outer, ELEMENTWISE_THREADS)
      : laneWorkgroups(period, Math.ceil(slots / period), SLOT_THREADS),
    perChannelWorkgroups: Math.ceil(view.channels / WG),
  };
}

/**
 * The plan under `key` (everything it depends on), made by `make` on first use, moved to the most
 * recently used end, and held by `holder`. Beyond MAX_PLANS the least recently used plan leaves
 * the cache, and its holders let go of its uniform without destroying it (a pass recorded with it
 * may not have been submitted yet): WebGPU frees it once nothing references it. So a layer that
 * sees ever new shapes (variable sequence lengths) holds at most MAX_PLANS uniforms, not one per
 * shape it ever saw.
 */
export function cachedPlan<P extends { readonly params: GPUBuffer }>(device: GPUDevice, key: string, holder: object, make: () => P): P {
  const context = deviceContext(device);
  let plan = context.plans.get(key) as P | undefined;
  if (plan) context.plans.delete(key);
  else plan = make();
  context.plans.set(key, plan);
  context.holdings.hold(plan.params, holder);
  for (const [oldKey, old] of context.plans) {
    if (context.plans.size <= MAX_PLANS) break;
    context.plans.delete(oldKey);
    context.holdings.forget(old.params);
  }
  return plan;
}
