/**
 * The normalization family's plans (LayerNorm, RMSNorm, GroupNorm, InstanceNorm): how each
 * layer's tensor splits into statistics groups (NormGeometry), and plans holding the uniform
 * NormParams and dispatch sizes, cached in the device's plan cache (core/plans.ts).
 */
import type { FusedActivation } from '../core/contract.js';
import type { TensorStorage } from '../core/shaders.js';
import { NORM_AFFINE_WIDTH, NORM_FINALIZE_LANES, NORM_LOADS_IN_FLIGHT, NORM_MAX_COLUMNS, NORM_PARTIAL_BYTES, NORM_STAGE_BYTES_PER_THREAD, NORM_WORKGROUP_SIZE, normChunk, normStorage, packStruct, packedHalves } from './kernels.js';
import type { ChannelView } from '../core/layout.js';
import { REDUCTION_SIZES, cachedPlan, isCpuAdapter, uniform, type DType } from '../core/plans.js';

/** Which family member: RMSNorm subtracts no mean; the others share every kernel. */
export type FamilyMember = 'layer' | 'rms' | 'group' | 'instance';

/**
 * How a tensor splits into statistics groups and γ entries (normalization/common.wgsl): `samples`·`groups`
 * groups of `segs` segments of `segLen` contiguous elements, and the γ/β gradients' view
 * [aOuter, paramSize, aInner].
 */
export interface NormGeometry {
  readonly samples: number;
  readonly groups: number;
  readonly segs: number;
  readonly segLen: number;
  readonly segStride: number;
  readonly groupStride: number;
  readonly sampleStride: number;
  readonly affGroup: number;
  readonly affSeg: number;
  readonly affElem: number;
  /** Entries of γ and β. */
  readonly paramSize: number;
  readonly aOuter: number;
  readonly aInner: number;
  /** aOuter / samples. */
  readonly aRowsPerSample: number;
  /** γ entries per statistics group (LayerNorm: all of them). */
  readonly aPerGroup: number;
}

/** Elements per statistics group. */
export function groupCount(g: NormGeometry): number {
  return g.segs * g.segLen;
}

/** Whether every segment of every group starts at a multiple of 4 elements and holds a multiple of 4 (the walks may move 4 at a time). */
export function chunksOfFour(g: NormGeometry): boolean {
  return [g.segLen, g.segStride, g.groupStride, g.sampleStride].every((n) => n % 4 === 0);
}

/** Elements of the tensor. */
export function geometrySize(g: NormGeometry): number {
  return g.samples * g.groups * groupCount(g);
}

/** LayerNorm/RMSNorm: `rows` rows of `rowLength` (the product of normalizedShape), one γ entry per position. */
export function rowGeometry(rows: number, rowLength: number): NormGeometry {
  return {
    samples: rows,
    groups: 1,
    segs: 1,
    segLen: rowLength,
    segStride: rowLength,
    groupStride: 0,
    sampleStride: rowLength,
    affGroup: 0,
    affSeg: 0,
    affElem: 1,
    paramSize: rowLength,
    aOuter: rows,
    aInner: 1,
    aRowsPerSample: 1,
    aPerGroup: rowLength,
  };
}

/**
 * GroupNorm (and InstanceNorm, numGroups = C) over the [outer, C, inner] view of a layout whose
 * first axis is the sample: channels-first (outer = N, inner = spatial) or channels-last
 * (inner = 1, outer = N·spatial, given `samples` = N). γ has one entry per channel.
 */
export function channelGroupGeometry(view: ChannelView, samples: number, numGroups: number): NormGeometry {
  const C = view.channels;
  const perGroup = C / numGroups;
  const spatial = (view.outer / samples) * view.inner;
  const common = { samples, groups: numGroups, paramSize: C, aOuter: view.outer, aInner: view.inner, aRowsPerSample: view.outer / samples, aPerGroup: perGroup, affGroup: perGroup };
  if (view.inner > 1 || view.outer === samples) {
    // Channels-first: a segment is one channel's plane.
    return { ...common, segs: perGroup, segLen: spatial, segStride: spatial, groupStride: perGroup * spatial, sampleStride: C * spatial, affSeg: 1, affElem: 0 };
  }
  // Channels-last: a segment is the group's channels at one position.
  return { ...common, segs: spatial, segLen: perGroup, segStride: C, groupStride: perGroup, sampleStride: spatial * C, affSeg: 0, affElem: 1 };
}

/** The layer options a family plan depends on. */
export interface NormPlanOptions {
  kind: FamilyMember;
  dtype: DType;
  activation: FusedActivation;
  eps: number;
  /** InstanceNorm's running update; 0 elsewhere. */
  momentum: number;
  nonFiniteBatches: 'skip' | 'update';
  /** Whether γ and β are bound (function forms may leave them out: γ = 1, β = 0). */
  hasGamma: boolean;
  hasBeta: boolean;
}

/** What a forward pass normalizes with: batch statistics, or (InstanceNorm inference) the running ones. */
export interface NormMode {
  useRunning: boolean;
  updateRunning: boolean;
}

/** A plan of the family's kernels for one geometry, options and mode. */
export interface NormPlan {
  readonly geometry: NormGeometry;
  readonly storage: TensorStorage;
  readonly activation: FusedActivation;
  readonly rms: boolean;
  readonly params: GPUBuffer;
  readonly mode: NormMode;
  /** Values each thread of norm_forward, and (x, dy) pairs of norm_backward, keeps on chip (CACHE_STEPS). */
  readonly forwardCache: number;
  readonly backwardCache: number;
  /** Workgroups of norm_forward and norm_backward: NORM_WORKGROUP_SIZE / 2^lane_bits groups each. */
  readonly rowWorkgroups: number;
  /**
   * The backward kernel: LayerNorm/RMSNorm rows (of up to MAX_COLUMNS · 256 values) take the γ/β
   * partial sums per block of rows, and channels-first groups (whole channel planes) and
   * channels-last groups (of up to MAX_COLUMNS · 256 channels) per (sample, channel), in the same
   * walk as dx; the others leave them to norm_affine_partials_rows.
   */
  readonly backwardKernel: BackwardKernel;
  /** Workgroups of the backward kernel (norm_backward_columns: a_blocks, each over several row batches). */
  readonly backwardWorkgroups: number;
  /** Workgroups of norm_affine_partials_rows, and the scratch bytes of the partials. */
  readonly affineWorkgroups: number;
  readonly partialBytes: number;
  readonly finalizeWorkgroups: number;
}

/** The family plan of `geometry` for `options` and `mode`, held by `holder`. */
export function normPlan(device: GPUDevice, geometry: NormGeometry, options: NormPlanOptions, mode: NormMode, holder: object): NormPlan {
  const g = geometry;
  const storage = normStorage(device, options.dtype, chunksOfFour(g));
  const key = `norm ${storage} ${JSON.stringify(g)} ${JSON.stringify(options)} ${mode.useRunning} ${mode.updateRunning}`;
  return cachedPlan(device, key, holder, () => {
    const count = groupCount(g);
    const WG = NORM_WORKGROUP_SIZE;
    const chunk = normChunk(storage);
    const laneBits = groupLaneBits(device, count, chunk);
    const lanes = 2 ** laneBits;
    const walk = { lanes, chunk };
    // From one chunk of a lane's walk to its next (normalization/common.wgsl).
    const stride = lanes * walk.chunk;
    const rowWorkgroups = Math.ceil((g.samples * g.groups) / (WG / lanes));
    const backwardKernel = backwardKernelOf(g, walk);
    const affine = affineGeometry(device, g, backwardKernel, rowWorkgroups);
    const params = packStruct('NormParams', {
      groups: g.groups,
      rows: g.samples * g.groups,
      segs: g.segs,
      seg_len: g.segLen,
      seg_stride: g.segStride,
      group_stride: g.groupStride,
      sample_stride: g.sampleStride,
      count,
      step_seg: Math.floor(stride / g.segLen),
      step_elem: stride % g.segLen,
      aff_group: g.affGroup,
      aff_seg: g.affSeg,
      aff_elem: g.affElem,
      total: geometrySize(g),
      eps: options.eps,
      momentum: options.momentum,
      has_gamma: Number(options.hasGamma),
      has_beta: Number(options.hasBeta && options.kind !== 'rms'),
      use_running: Number(mode.useRunning),
      update_non_finite: Number(options.nonFiniteBatches === 'update'),
      a_outer: g.aOuter,
      a_count: g.paramSize,
      a_inner: g.aInner,
      a_rows_per_sample: g.aRowsPerSample,
      a_per_group: g.aPerGroup,
      a_blocks: affine.blocks,
      a_block_rows: affine.blockRows,
      lane_bits: laneBits,
      // Segments of one element (InstanceNorm channels last) never put a word's halves in one step.
      pair_stores: Number(packedHalves(storage) && g.segLen > 1),
      row_width: backwardKernel === 'norm_backward_channels' ? channelRowWidth(g.segLen, lanes) : 0,
    });
    return {
      geometry: g,
      storage,
      activation: options.activation,
      rms: options.kind === 'rms',
      params: uniform(device, `${options.kind} norm`, params),
      mode,
      ...cacheSteps(device, g, walk, backwardKernel, storage),
      rowWorkgroups,
      backwardKernel,
      backwardWorkgroups: backwardKernel === 'norm_backward_columns' ? affine.blocks : rowWorkgroups,
      affineWorkgroups: affine.workgroups,
      partialBytes: affine.blocks * g.paramSize * NORM_PARTIAL_BYTES,
      finalizeWorkgroups: Math.ceil(g.paramSize / (WG / NORM_FINALIZE_LANES)),
    };
  });
}

/**
 * CACHE_STEPS of norm_forward and norm_backward: the steps a thread's walk over its group takes,
 * as many of them as the device's workgroup storage holds beside the kernels' other workgroup
 * arrays (forward: tree and coefs, 32 bytes a thread; backward: sums, 8; packed halves also the
 * paired stores' stage, 8), at 4 bytes a thread per step (backward: x and dy, 8). No more than
 * the walk takes, so that a short group's workgroups stay small and many fit on a
 * multiprocessor; where the walk takes more, whole chunks (a chunk partly cached is loaded whole,
 * one load, so its cached part would save nothing). 16 KiB (WebGPU's default) holds 8 and 7
 * steps (packed halves 6), in chunks of 4 8 and 4; 48 KiB a 4096-float LayerNorm row at 16
 * values a thread, forward and backward.
 */
function cacheSteps(device: GPUDevice, g: NormGeometry, walk: LaneWalk, backward: BackwardKernel, storage: TensorStorage): { forwardCache: number; backwardCache: number } {
  // A CPU adapter's "chip" is its memory; there the arrays only cost (measured on SwiftShader).
  if (isCpuAdapter(device)) return { forwardCache: 1, backwardCache: 1 };
  const WG = NORM_WORKGROUP_SIZE;
  const bytes = device.limits.maxComputeWorkgroupStorageSize - (packedHalves(storage) ? NORM_STAGE_BYTES_PER_THREAD * WG : 0);
  const forwardWalk = walkSteps(groupCount(g), walk);
  const backwardWalk = backwardSteps(g, walk, backward);
  const steps = (walkLength: number, fit: number, chunk: number) => (fit >= walkLength ? walkLength : Math.max(1, fit - (fit % chunk)));
  return {
    forwardCache: steps(forwardWalk, Math.floor((bytes - 32 * WG) / (4 * WG)), walk.chunk),
    // norm_backward_channels walks (and caches) one element at a time.
    backwardCache: steps(backwardWalk, Math.floor((bytes - 8 * WG) / (8 * WG)), backward === 'norm_backward_channels' ? 1 : walk.chunk),
  };
}

/**
 * Elements a thread of the rows kernels takes at least, before a group gets more lanes: on a GPU
 * a few loads in flight per thread (with chunks of 4, a whole batch: LOADS_IN_FLIGHT chunks, so
 * that a LayerNorm row of 1024 gets 64 lanes with 4 loads each rather than 128 with 2); on a CPU
 * adapter (SwiftShader) many, since every workgroup pays for each barrier of its tree (a
 * LayerNorm over [5000, 3] took 21 s with a workgroup per row).
 */
const ELEMENTS_PER_LANE = { gpu: 8, cpu: 256 } as const;

/** log2 of the lanes of a group of `count` elements walked in chunks of `chunk`: a power of two up to NORM_WORKGROUP_SIZE. */
function groupLaneBits(device: GPUDevice, count: number, chunk: number): number {
  const perLane = isCpuAdapter(device) ? ELEMENTS_PER_LANE.cpu : Math.max(ELEMENTS_PER_LANE.gpu, NORM_LOADS_IN_FLIGHT * chunk);
  const wanted = Math.ceil(count / perLane);
  let bits = 0;
  while (2 ** bits < wanted && 2 ** bits < NORM_WORKGROUP_SIZE) bits++;
  return bits;
}

/**
 * Blocks of the γ/β partial sums: for norm_affine_partials_rows enough workgroups to cover the
 * device (REDUCTION_SIZES, as the batch-norm reductions), each block still a few rows per lane.
 */
function affineGeometry(device: GPUDevice, g: NormGeometry, kernel: BackwardKernel, rowWorkgroups: number): { blocks: number; blockRows: number; workgroups: number } {
  const target = REDUCTION_SIZES[isCpuAdapter(device) ? 'cpu' : 'gpu'].workgroups;
  if (kernel === 'norm_backward_planes') return { blocks: g.samples, blockRows: 1, workgroups: 0 };
  if (kernel === 'norm_backward_channels') return { blocks: g.samples, blockRows: g.aRowsPerSample, workgroups: 0 };
  // One partial per workgroup, each over rowWorkgroups / blocks batches of rows.
  if (kernel === 'norm_backward_columns') return { blocks: Math.min(rowWorkgroups, target), blockRows: 0, workgroups: 0 };
  const width = Math.min(g.paramSize, NORM_AFFINE_WIDTH);
  const lanes = Math.floor(NORM_WORKGROUP_SIZE / width);
  const tiles = Math.ceil(g.paramSize / width);
  const blockRows = Math.max(4 * lanes, Math.ceil(g.aOuter / Math.max(1, Math.floor(target / tiles))));
  const blocks = Math.ceil(g.aOuter / blockRows);
  return { blocks, blockRows, workgroups: tiles * blocks };
}

type BackwardKernel = 'norm_backward' | 'norm_backward_planes' | 'norm_backward_columns' | 'norm_backward_channels';

/** How a group's lanes walk it: `lanes` threads, each taking `chunk` consecutive elements (VEC) at a time. */
interface LaneWalk {
  readonly lanes: number;
  readonly chunk: number;
}

/** Steps of a lane's walk over a run of `length` elements (walk_steps, run_offset in normalization/common.wgsl). */
function walkSteps(length: number, walk: LaneWalk): number {
  return Math.ceil(length / (walk.lanes * walk.chunk)) * walk.chunk;
}

/** Which backward kernel takes a geometry whose groups are walked as `walk` (see NormPlan.backwardKernel). */
function backwardKernelOf(g: NormGeometry, walk: LaneWalk): BackwardKernel {
  if (g.aInner > 1) return 'norm_backward_planes';
  const rows = g.groups === 1 && g.segs === 1 && g.affElem === 1 && g.aPerGroup === g.paramSize;
  if (rows) return walkSteps(g.segLen, walk) <= NORM_MAX_COLUMNS ? 'norm_backward_columns' : 'norm_backward';
  // Channels-last groups: a segment is a position's C/G channels, one γ entry per channel (a
  // kernel that walks channels one at a time).
  const channelsLast = g.affSeg === 0 && g.affElem === 1;
  return channelsLast && Math.ceil(g.segLen / walk.lanes) <= NORM_MAX_COLUMNS ? 'norm_backward_channels' : 'norm_backward';
}

/**
 * Steps of a thread's walk in the backward kernel: norm_backward_planes walks each channel plane
 * from its start; norm_backward_channels gives each thread ceil(segLen / width) channels at every
 * floor(lanes / width)-th position, width from channelRowWidth (see its comment in
 * normalization/backward.wgsl).
 */
function backwardSteps(g: NormGeometry, walk: LaneWalk, kernel: BackwardKernel): number {
  if (kernel === 'norm_backward_planes') return g.segs * walkSteps(g.segLen, walk);
  if (kernel === 'norm_backward_channels') {
    const width = channelRowWidth(g.segLen, walk.lanes);
    return Math.ceil(g.segs / Math.floor(walk.lanes / width)) * Math.ceil(g.segLen / width);
  }
  return walkSteps(groupCount(g), walk);
}

/**
 * The row width of norm_backward_channels for segments of `segLen` channels over `lanes` lanes:
 * rows of width lanes take ceil(segLen / width) columns each, floor(lanes / width) rows side by
 * side. Of the widths ceil(segLen / cols) (cols up to MAX_COLUMNS) the first that keeps at least
 * 7/8 of the lane steps busy, else the busiest: 129 channels over 256 lanes would leave half the
 * lanes idle in one row of 129, and leave 12 % idle in 7 rows of 33 lanes, 4 columns each.
 */
function channelRowWidth(segLen: number, lanes: number): number {
  let best = { width: Math.min(segLen, lanes), busy: 0 };
  for (let cols = Math.ceil(segLen / lanes); cols <= NORM_MAX_COLUMNS; cols++) {
    const width = Math.ceil(segLen / cols);
    const busy = (segLen * Math.floor(lanes / width)) / (lanes * cols);
    if (busy >= 7 / 8) return width;
    if (busy > best.busy) best = { width, busy };
  }
  return best.width;
}
