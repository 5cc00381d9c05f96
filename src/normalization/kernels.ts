/**
 * The normalization family's kernels (shaders/normalization/: LayerNorm, RMSNorm, GroupNorm,
 * InstanceNorm): their part of the host–kernel contract -- the bindings of each module by name,
 * the uniform NormParams, the constants and buffer sizes both sides share -- and how the modules
 * are assembled from WGSL files. The family has tensor storages and a common.wgsl of its own, and
 * no subgroups variant.
 */
import tensorF32Wgsl from '../../shaders/normalization/tensor_f32.wgsl?raw';
import tensorF16Wgsl from '../../shaders/normalization/tensor_f16.wgsl?raw';
import tensorF16PackedWgsl from '../../shaders/normalization/tensor_f16_packed.wgsl?raw';
import tensorF16PackedX4Wgsl from '../../shaders/normalization/tensor_f16_packed_x4.wgsl?raw';
import packedHalvesWgsl from '../../shaders/normalization/packed_halves.wgsl?raw';
import tensorF32x4Wgsl from '../../shaders/normalization/tensor_f32x4.wgsl?raw';
import chunksScalarWgsl from '../../shaders/normalization/chunks_scalar.wgsl?raw';
import commonWgsl from '../../shaders/normalization/common.wgsl?raw';
import forwardWgsl from '../../shaders/normalization/forward.wgsl?raw';
import runningWgsl from '../../shaders/normalization/running.wgsl?raw';
import backwardWgsl from '../../shaders/normalization/backward.wgsl?raw';
import { CORE_CONSTANTS, TENSOR_BINDINGS, packLayout, type StructValues } from '../core/contract.js';
import { dispatchFamilyKernel, type KernelFamily, type KernelTarget } from '../core/pipelines.js';
import { ACTIVATIONS_WGSL, NUMERICS_WGSL, WORKGROUPS_WGSL, joinWgsl, type TensorStorage } from '../core/shaders.js';
import type { TensorBuffer } from '../core/gpu.js';

/** Binding numbers by WGSL variable name, per shader module of the family. */
export const BINDINGS = {
  'normalization/forward': { ...TENSOR_BINDINGS, saved: 5, gamma: 6, beta: 7, running_mean: 8, running_var: 9 },
  'normalization/running': { ...TENSOR_BINDINGS, saved: 5, gamma: 6, beta: 7, running_mean: 8, running_var: 9 },
  'normalization/backward': { ...TENSOR_BINDINGS, saved: 5, gamma: 6, beta: 7, partials: 8, dgamma: 9, dbeta: 10 },
} as const;

/** Name of a shader module of the family: its file under shaders/, without `.wgsl`. */
export type NormModule = keyof typeof BINDINGS;

/** Fields of the structs of normalization/common.wgsl the host packs, in WGSL order (all 4-byte scalars). */
export const STRUCTS = {
  /** The uniform of every dispatch of the family. */
  NormParams: {
    groups: 'u32',
    rows: 'u32',
    segs: 'u32',
    seg_len: 'u32',
    seg_stride: 'u32',
    group_stride: 'u32',
    sample_stride: 'u32',
    count: 'u32',
    step_seg: 'u32',
    step_elem: 'u32',
    aff_group: 'u32',
    aff_seg: 'u32',
    aff_elem: 'u32',
    total: 'u32',
    eps: 'f32',
    momentum: 'f32',
    has_gamma: 'u32',
    has_beta: 'u32',
    use_running: 'u32',
    update_non_finite: 'u32',
    a_outer: 'u32',
    a_count: 'u32',
    a_inner: 'u32',
    a_rows_per_sample: 'u32',
    a_per_group: 'u32',
    a_blocks: 'u32',
    a_block_rows: 'u32',
    lane_bits: 'u32',
    pair_stores: 'u32',
    row_width: 'u32',
    _pad2: 'u32',
    _pad3: 'u32',
  },
} as const;

/** The bytes of the uniform NormParams, from a value for every field. */
export function packStruct(struct: 'NormParams', values: StructValues<typeof STRUCTS.NormParams>): ArrayBuffer {
  return packLayout(STRUCTS[struct], values);
}

/** Bytes per statistics group of the family's `saved` buffer (GroupCoef in normalization/common.wgsl: one vec4f). */
export const NORM_SAVED_BYTES_PER_GROUP = 16;

/** Bytes of one partial of the family's γ/β gradients (`partials: array<vec2f>` in normalization/backward.wgsl). */
export const NORM_PARTIAL_BYTES = 8;

/** Threads per workgroup of the family's kernels: WG of shaders/core/workgroups.wgsl. */
export const NORM_WORKGROUP_SIZE = CORE_CONSTANTS.WG;

/** Workgroup bytes per thread of the paired stores of packed halves (`stage: array<f32, 2u * WG>` in normalization/tensor_f16_packed.wgsl). */
export const NORM_STAGE_BYTES_PER_THREAD = 8;

/** Threads per γ entry of norm_affine_finalize (FINALIZE_LANES in normalization/backward.wgsl). */
export const NORM_FINALIZE_LANES = 4;

/** Loads (chunks) a thread of the family's walks issues before it uses the first (LOADS_IN_FLIGHT in normalization/common.wgsl). */
export const NORM_LOADS_IN_FLIGHT = 4;

/** γ entries per tile of norm_affine_partials_rows (AFFINE_WIDTH in normalization/backward.wgsl). */
export const NORM_AFFINE_WIDTH = 64;

/** Columns of a row a thread of norm_backward_columns, or channels of norm_backward_channels, keeps dγ/dβ sums for (MAX_COLUMNS in normalization/backward.wgsl). */
export const NORM_MAX_COLUMNS = 32;

/**
 * The family's tensor storages (normalization/tensor_*.wgsl), each with the walks' chunks: one
 * element at a time (chunks_scalar.wgsl; packed halves stored a whole word at a time by pairs of
 * threads, with atomics on one half only at a word shared with another step or group:
 * packed_halves.wgsl), or 4 elements at a time where every segment allows (float32 as vec4s,
 * packed halves as pairs of words).
 */
const TENSOR_STORAGE_WGSL: Readonly<Record<TensorStorage, string>> = {
  f32: joinWgsl(tensorF32Wgsl, chunksScalarWgsl),
  f32x4: tensorF32x4Wgsl,
  f16: joinWgsl(tensorF16Wgsl, chunksScalarWgsl),
  'f16-packed': joinWgsl(tensorF16PackedWgsl, packedHalvesWgsl, chunksScalarWgsl),
  'f16-packed-x4': joinWgsl(tensorF16PackedX4Wgsl, packedHalvesWgsl),
};

/** Elements per chunk of the walks in a storage (VEC of its WGSL). */
export function normChunk(storage: TensorStorage): number {
  return storage === 'f32x4' || storage === 'f16-packed-x4' ? 4 : 1;
}

/** Whether a storage holds packed halves (y and dx of normalization/packed_halves.wgsl). */
export function packedHalves(storage: TensorStorage): boolean {
  return storage === 'f16-packed' || storage === 'f16-packed-x4';
}

/**
 * The storage of the family's tensors of `dtype` on `device`: where `aligned` (every segment
 * starts at a multiple of 4 elements and holds a multiple of 4) in chunks of 4 (float32 as vec4s,
 * packed halves as pairs of words), else one element at a time; halves native with shader-f16,
 * else packed. Both float32 storages have the same bytes, and so have the half storages.
 */
export function normStorage(device: GPUDevice, dtype: 'float32' | 'float16', aligned = false): TensorStorage {
  if (dtype === 'float32') return aligned ? 'f32x4' : 'f32';
  if (device.features.has('shader-f16')) return 'f16';
  return aligned ? 'f16-packed-x4' : 'f16-packed';
}

const KERNEL_WGSL: Readonly<Record<NormModule, string>> = {
  'normalization/forward': forwardWgsl,
  'normalization/running': runningWgsl,
  'normalization/backward': backwardWgsl,
};

/**
 * The complete WGSL of a module of the family: the tensor storage first (it may hold
 * `enable f16;`), the shared core pieces, common.wgsl and the kernel file. There is no subgroups
 * variant (`subgroups` is ignored).
 */
export function shaderSource(module: NormModule, storage: TensorStorage, _subgroups = false): string {
  return joinWgsl(TENSOR_STORAGE_WGSL[storage], NUMERICS_WGSL, WORKGROUPS_WGSL, ACTIVATIONS_WGSL, commonWgsl, KERNEL_WGSL[module]);
}

/** Every kernel entry point of the family and the shader module it lives in. */
export const KERNELS = {
  norm_forward: 'normalization/forward',
  norm_update_running: 'normalization/running',
  norm_backward: 'normalization/backward',
  norm_affine_partials_rows: 'normalization/backward',
  norm_backward_planes: 'normalization/backward',
  norm_backward_columns: 'normalization/backward',
  norm_backward_channels: 'normalization/backward',
  norm_affine_finalize: 'normalization/backward',
} as const satisfies Record<string, NormModule>;

/** Name of a kernel of the family (a WGSL entry point). */
export type NormKernel = keyof typeof KERNELS;

/** The family's kernels, bindings, structs and constants, for the pipelines and the contract test. */
export const NORMALIZATION_KERNELS: KernelFamily<NormKernel, NormModule> = {
  kernels: KERNELS,
  bindings: BINDINGS,
  structs: { NormParams: { module: 'normalization/forward', fields: STRUCTS.NormParams } },
  constants: { WG: NORM_WORKGROUP_SIZE, AFFINE_WIDTH: NORM_AFFINE_WIDTH, MAX_COLUMNS: NORM_MAX_COLUMNS, FINALIZE_LANES: NORM_FINALIZE_LANES, LOADS_IN_FLIGHT: NORM_LOADS_IN_FLIGHT },
  activationKernels: new Set(['norm_forward', 'norm_backward', 'norm_affine_partials_rows', 'norm_backward_planes', 'norm_backward_columns', 'norm_backward_channels']),
  subgroupKernels: new Set(),
  overrides: {
    // RMSNorm: no mean subtracted (normalization/common.wgsl).
    RMS: { kernels: new Set(['norm_forward', 'norm_backward', 'norm_affine_partials_rows', 'norm_backward_planes', 'norm_backward_columns', 'norm_backward_channels']), label: () => 'rms' },
    // Values each thread keeps on chip (normalization/forward.wgsl, backward.wgsl).
    CACHE_STEPS: { kernels: new Set(['norm_forward', 'norm_backward', 'norm_backward_planes', 'norm_backward_columns', 'norm_backward_channels']), label: (n) => `cache ${n}` },
  },
  source: shaderSource,
};

/** The buffers of one dispatch of `kernel`, by the WGSL names of its module's bindings. */
export type KernelBuffers<K extends NormKernel> = Partial<Record<keyof (typeof BINDINGS)[(typeof KERNELS)[K]], TensorBuffer>>;

/**
 * Records one dispatch of the family's `kernel` (built for tensors stored as `target.storage`,
 * with the activation, RMS and cache steps its kernel has) over `workgroups` workgroups, its
 * buffers bound by name.
 */
export function dispatchKernel<K extends NormKernel>(
  device: GPUDevice,
  pass: GPUComputePassEncoder,
  kernel: K,
  target: { storage: TensorStorage; activation?: KernelTarget['activation']; rms?: boolean; cacheSteps?: number },
  workgroups: number,
  buffers: KernelBuffers<K>,
): void {
  const overrides = { RMS: target.rms ? 1 : 0, CACHE_STEPS: target.cacheSteps ?? 0 };
  dispatchFamilyKernel(device, pass, NORMALIZATION_KERNELS, kernel, { storage: target.storage, activation: target.activation, overrides }, workgroups, buffers);
}
