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

const { WG, RWG } = KERNEL_CONSTANTS;

/** Elements of a channel one chunked partial workgroup reduces, at least (Params.chunk; 32 per thread). */
export const CHUNK = 2048;
/** Rows of a channels-last partial workgroup (RWG channels, one per thread), at least (Params.chunk). */
const ROWS = 256;
/**
 * The cost bound of merging partials where they are used. The last dispatch of a training forward
 * or backward pass merges, in each workgroup, the partials of every channel it touches, so its
 * partial reads grow with the product of its workgroups and the partials per channel. A plan
 * takes at most one partial read (16 bytes, from L2: a channel's partials are read by every
 * workgroup that touches it) per this many elements of the tensor -- half a float32 tensor's
 * bytes: it halves the larger of the two (longer partial chunks, or fewer lanes of the merging
 * grid, down to MERGE_MIN_THREADS) until it does, or until one partial per channel is left.
 * Chosen by this arithmetic, not yet measured on a GPU.
 */
export const MERGE_ELEMENTS_PER_READ = 8;
/** Threads the merging dispatch keeps at least, where the tensor has that many slots (or channel groups × rows). */
const MERGE_MIN_THREADS = 1 << 14;

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
  /** Workgroups of the dispatches that merge the partials (normalize_batch, input_grad): the elementwise grid, with fewer lanes where MERGE_ELEMENTS_PER_READ asks. */
  readonly mergeWorkgroups: number;
  /** Partial reads of one merging dispatch: at most total / MERGE_ELEMENTS_PER_READ, unless one partial per channel is left. */
  readonly mergeReads: number;
  /** Training under nonFiniteBatches 'skip' with running statistics: a finalize dispatch decides whether the batch counts. */
  readonly skipsNonFinite: boolean;
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
    const geometry = elementwiseGeometry(view, storage);
    const reduction = reductionGeometry(device, view, storage);
    const params = packStruct('Params', {
      ...viewFields(view, reduction.chunks, reduction.chunk),
      eps,
      momentum: momentum ?? -1, // < 0 selects the cumulative average (finalize_stats)
      update_running: Number(mode.updateRunning),
      batch_stats: Number(mode.batchStats),
      update_non_finite: Number(nonFiniteBatches === 'update'),
      unbiased_running: Number(runningVariance === 'unbiased'),
    });
    return {
      ...geometry,
      activation,
      params: uniform(device, `bn ${viewKey(view)}`, params),
      channelsLast: view.inner === 1,
      chunks: reduction.chunks,
      partialWorkgroups: reduction.partialWorkgroups,
      // The partials, then each channel's (γ, β), which the partial statistics copy for normalize_batch.
      partialBytes: align4(view.channels * (reduction.chunks + 1) * BN_PARTIAL_BYTES),
      mergeWorkgroups: reduction.merge.workgroups,
      mergeReads: reduction.merge.reads,
      skipsNonFinite: mode.updateRunning && nonFiniteBatches === 'skip',
    };
  });
}

export function viewKey(view: ChannelView): string {
  return `[${view.outer}, ${view.channels}, ${view.inner}]`;
}

export function viewFields(view: ChannelView, chunks: number, chunk: number) {
  const count = view.outer * view.inner;
  return { outer: view.outer, channels: view.channels, inner: view.inner, count, chunks, total: count * view.channels, chunk };
}

/** A fixed grid of threads: `lanes` (row lanes, or periods of slots) of `period` threads (channel groups, or slots). */
interface Grid {
  period: number;
  lanes: number;
}

function gridWorkgroups(grid: Grid): number {
  return Math.ceil((grid.lanes * grid.period) / WG);
}

/**
 * Partial reads of a merging dispatch over `grid` with `chunks` partials per channel: each
 * workgroup merges every channel its threads touch -- a slot kernel's WG · SLOT consecutive
 * elements (workgroup_channels in common.wgsl), a channels-last vec4 kernel's WG consecutive
 * channel groups (workgroup_groups).
 */
function mergeReads(view: ChannelView, storage: TensorStorage, grid: Grid, chunks: number): number {
  const { channels, inner } = view;
  const span = isChannelsLastVec4(view) ? Math.min(channels, 4 * WG) : Math.min(channels, Math.floor((WG * SLOT_ELEMENTS[storage] + inner - 2) / inner) + 1);
  return gridWorkgroups(grid) * span * chunks;
}

/**
 * The batch-norm reductions' partials per channel and workgroups, and the merging dispatch's grid.
 * Chunked: at least CHUNK elements per workgroup. Channels-last: at least ROWS rows of RWG channels
 * per workgroup, or with C % 4 == 0 a tile of channel groups and row lanes (RowTile in
 * common.wgsl) over blocks of rows sized so that the launch covers the device and each lane still
 * takes a few runs of 4 rows (REDUCTION_SIZES). Then fewer partials and merging lanes, as
 * MERGE_ELEMENTS_PER_READ asks.
 */
function reductionGeometry(device: GPUDevice, view: ChannelView, storage: TensorStorage) {
  const total = view.outer * view.channels * view.inner;
  const groups = view.channels / 4;
  const width = Math.min(groups, RWG);
  const tiles = Math.ceil(groups / width);
  let defaultChunks: number;
  if (view.inner !== 1) defaultChunks = Math.ceil((view.outer * view.inner) / CHUNK);
  else if (!isChannelsLastVec4(view)) defaultChunks = Math.ceil(view.outer / ROWS);
  else {
    const lanes = Math.floor(WG / width);
    const sizes = REDUCTION_SIZES[isCpuAdapter(device) ? 'cpu' : 'gpu'];
    const rowsPerBlock = Math.max(4 * lanes * sizes.minRunsPerLane, Math.ceil(view.outer / Math.max(1, Math.floor(sizes.workgroups / tiles))));
    defaultChunks = Math.ceil(view.outer / rowsPerBlock);
  }

  const grid = elementwiseGrid(view, storage);
  const minLanes = Math.min(grid.lanes, Math.ceil(MERGE_MIN_THREADS / grid.period));
  let chunks = defaultChunks;
  while (mergeReads(view, storage, grid, chunks) > total / MERGE_ELEMENTS_PER_READ && chunks > 1) {
    if (grid.lanes > minLanes && grid.lanes >= chunks) grid.lanes = Math.max(minLanes, Math.ceil(grid.lanes / 2));
    else chunks = Math.ceil(chunks / 2);
  }
  const merge = { workgroups: gridWorkgroups(grid), reads: mergeReads(view, storage, grid, chunks) };

  // `unit` elements (or rows) per partial, widened by a whole factor to at most `chunks` partials.
  const sized = (length: number, unit: number) => {
    const chunk = unit * Math.ceil(Math.ceil(length / unit) / chunks);
    return { chunk, chunks: Math.ceil(length / chunk) };
  };
  if (view.inner !== 1) {
    const c = sized(view.outer * view.inner, CHUNK);
    return { ...c, partialWorkgroups: view.channels * c.chunks, merge };
  }
  if (!isChannelsLastVec4(view)) {
    const c = sized(view.outer, ROWS);
    return { ...c, partialWorkgroups: Math.ceil(view.channels / RWG) * c.chunks, merge };
  }
  // The kernels split the rows evenly over the blocks themselves (row_tile); chunk is unused.
  return { chunks, chunk: 0, partialWorkgroups: tiles * chunks, merge };
}

/** The elementwise kernels' plan of `view` stored as `storage`, with the uniform `params`. */
export function elementwise(view: ChannelView, storage: TensorStorage, activation: FusedActivation, params: GPUBuffer): ElementwisePlan {
  return { ...elementwiseGeometry(view, storage), activation, params };
}

/** Which elementwise kernels a view takes and their dispatch sizes. */
type ElementwiseGeometry = Pick<ElementwisePlan, 'view' | 'storage' | 'channelsLastVec4' | 'elementwiseWorkgroups' | 'perChannelWorkgroups'>;

function elementwiseGeometry(view: ChannelView, storage: TensorStorage): ElementwiseGeometry {
  return {
    view,
    storage,
    channelsLastVec4: isChannelsLastVec4(view),
    elementwiseWorkgroups: gridWorkgroups(elementwiseGrid(view, storage)),
    perChannelWorkgroups: Math.ceil(view.channels / WG),
  };
}

/**
 * The elementwise grid: channels-last vec4, (channel group, row lane) threads (group_lanes() in
 * common.wgsl); otherwise (slot, row lane) threads over periods of slots (slot_period() there).
 * About `threads` threads, at least one lane, at most one lane per row (or period).
 */
function elementwiseGrid(view: ChannelView, storage: TensorStorage): Grid {
  const lanes = (period: number, units: number, threads: number) => ({ period, lanes: Math.min(units, Math.max(1, Math.floor(threads / period))) });
  if (isChannelsLastVec4(view)) return lanes(view.channels / 4, view.outer, ELEMENTWISE_THREADS);
  const slot = SLOT_ELEMENTS[storage];
  const row = view.channels * view.inner;
  const period = row / Math.min(slot, row & -row);
  const slots = Math.ceil((view.outer * row) / slot);
  return lanes(period, Math.ceil(slots / period), SLOT_THREADS);
}
export type { DType };
