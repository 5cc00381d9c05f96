/**
 * Batch norm's plans: everything about one (shape, options) that does not depend on the buffers —
 * the [outer, C, inner] view, the tensor storage, the dispatch geometry and the uniform Params —
 * kept in the device's plan cache (core/plans.ts). The elementwise geometry is shared with
 * feature scaling, which normalizes with batch norm's kernels.
 */
import type { FusedActivation } from '../core/contract.js';
import type { TensorStorage } from '../core/shaders.js';
import { BN_PARTIAL_BYTES, KERNEL_CONSTANTS, SLOT_ELEMENTS, isChannelsLastVec4, packStruct, tensorStorage } from './kernels.js';
import { REDUCTION_SIZES, cachedPlan, isCpuAdapter, uniform, type DType } from '../core/plans.js';
import { align4 } from '../core/gpu.js';
import type { ChannelView } from '../core/layout.js';

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
/** The batch-norm plan of `view` for `options` and `mode`, held by `holder` (see core/context.ts). */
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

export function viewKey(view: ChannelView): string {
  return `[${view.outer}, ${view.channels}, ${view.inner}]`;
}

export function viewFields(view: ChannelView, chunks: number) {
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

export function elementwise(view: ChannelView, storage: TensorStorage, activation: FusedActivation, params: GPUBuffer): ElementwisePlan {
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
export type { DType };
