/**
 * Batch norm's kernels (shaders/batchnorm/): its part of the host–kernel contract -- the bindings
 * of each module by name, the structs the host packs (Params) or lays out in buffers
 * (ChannelCoef), the constants both sides share -- and how its modules are assembled from WGSL
 * files. Feature scaling's modules are built from the same tensor storages and common.wgsl
 * (src/feature-scaling/kernels.ts takes them from here).
 */
import tensorF32Wgsl from '../../shaders/batchnorm/tensor_f32.wgsl?raw';
import tensorF32x4Wgsl from '../../shaders/batchnorm/tensor_f32x4.wgsl?raw';
import tensorF16Wgsl from '../../shaders/batchnorm/tensor_f16.wgsl?raw';
import tensorF16PackedWgsl from '../../shaders/batchnorm/tensor_f16_packed.wgsl?raw';
import commonWgsl from '../../shaders/batchnorm/common.wgsl?raw';
import statsWgsl from '../../shaders/batchnorm/stats.wgsl?raw';
import normalizeWgsl from '../../shaders/batchnorm/normalize.wgsl?raw';
import backwardWgsl from '../../shaders/batchnorm/backward.wgsl?raw';
import { CORE_CONSTANTS, TENSOR_BINDINGS, layoutBytes, packLayout, type StructValues } from '../core/contract.js';
import { dispatchFamilyKernel, type KernelFamily, type KernelTarget } from '../core/pipelines.js';
import { ACTIVATIONS_WGSL, NUMERICS_WGSL, WORKGROUPS_WGSL, joinWgsl, workgroupReduceWgsl, type TensorStorage } from '../core/shaders.js';
import type { TensorBuffer } from '../core/gpu.js';

/** Binding numbers by WGSL variable name, per batch-norm shader module. */
export const BINDINGS = {
  'batchnorm/stats': { ...TENSOR_BINDINGS, partials: 5, gamma: 6, beta: 7, batches_tracked: 10, coef: 11, non_finite: 12 },
  'batchnorm/normalize': {
    ...TENSOR_BINDINGS,
    running_mean: 5,
    running_var: 6,
    gamma: 7,
    beta: 8,
    coef: 9,
    partials: 11,
    batches_tracked: 12,
    non_finite: 13,
    running_mean_update: 14,
    running_var_update: 15,
  },
  'batchnorm/backward': { ...TENSOR_BINDINGS, coef: 5, partials: 6, gamma: 7, dgamma: 8, dbeta: 9 },
} as const;

/** Name of a batch-norm shader module: its file under shaders/, without `.wgsl`. */
export type BatchNormModule = keyof typeof BINDINGS;

/**
 * Fields of the structs of batchnorm/common.wgsl the host packs or decodes, in WGSL order. Every
 * field is a 4-byte scalar, so field k sits at byte 4k.
 */
export const STRUCTS = {
  /** The uniform of every batch-norm and feature-scaling dispatch. */
  Params: {
    outer: 'u32',
    channels: 'u32',
    inner: 'u32',
    count: 'u32',
    chunks: 'u32',
    total: 'u32',
    eps: 'f32',
    momentum: 'f32',
    update_running: 'u32',
    batch_stats: 'u32',
    update_non_finite: 'u32',
    unbiased_running: 'u32',
    chunk: 'u32',
    _pad0: 'u32',
    _pad1: 'u32',
    _pad2: 'u32',
  },
  /** Per-channel coefficients of a forward pass (kept in buffers as planes: COEF_PLANES). */
  ChannelCoef: { shift: 'f32', mean: 'f32', variance: 'f32', invstd: 'f32', scale: 'f32', beta: 'f32', factor: 'f32', _pad1: 'f32' },
} as const;

/** Bytes of one of batch norm's structs. */
export function structBytes(struct: keyof typeof STRUCTS): number {
  return layoutBytes(STRUCTS[struct]);
}

/** The bytes of the uniform Params, from a value for every field. */
export function packStruct(struct: 'Params', values: StructValues<typeof STRUCTS.Params>): ArrayBuffer {
  return packLayout(STRUCTS[struct], values);
}

/** Constants shared by the host and the batch-norm kernels: WG and RWG of shaders/core/workgroups.wgsl. */
export const KERNEL_CONSTANTS = CORE_CONSTANTS;

/**
 * The planes of a coefficient buffer (`saved`, and FeatureScaler's coefficients): field f of
 * channel c is float f · C + c (COEF_* in batchnorm/common.wgsl), so that one field of four
 * consecutive channels is one vec4. The buffer holds 8 planes (CHANNEL_COEF_BYTES per channel).
 */
export const COEF_PLANES = { shift: 0, mean: 1, variance: 2, invstd: 3, scale: 4, beta: 5, factor: 6 } as const;

/** Elements one thread of a slot kernel handles, per tensor storage (`const SLOT` in batchnorm/tensor_*.wgsl). */
export const SLOT_ELEMENTS: Readonly<Record<TensorStorage, number>> = { f32: 1, f32x4: 4, f16: 2, 'f16-packed': 2, 'f16-packed-x4': 2 };

/** Bytes of one partial of the batch-norm reductions (`partials: array<vec4f>` in batchnorm/stats.wgsl and batchnorm/backward.wgsl). */
export const BN_PARTIAL_BYTES = 16;

/** Bytes of one ChannelCoef: the per-feature size of a forward pass's `saved` buffer. */
export const CHANNEL_COEF_BYTES = structBytes('ChannelCoef');

/**
 * The tensor storages of batch norm and feature scaling (batchnorm/tensor_*.wgsl): a thread's
 * slot is 1, 2 or 4 elements (SLOT_ELEMENTS), and channels-last groups go four channels at a time.
 * They never pick 'f16-packed-x4' (the normalization family's), and read it as 'f16-packed'.
 */
export const TENSOR_STORAGE_WGSL: Readonly<Record<TensorStorage, string>> = {
  f32: tensorF32Wgsl,
  f32x4: tensorF32x4Wgsl,
  f16: tensorF16Wgsl,
  'f16-packed': tensorF16PackedWgsl,
  'f16-packed-x4': tensorF16PackedWgsl,
};

/** batchnorm/common.wgsl: the Params uniform, ChannelCoef and the [outer, C, inner] indexing. */
export const COMMON_WGSL: string = commonWgsl;

/**
 * The storage for tensors of `dtype` on `device` with the [outer, C, inner] `view`: float32
 * tensors are accessed as vec4s where runs of 4 share a channel (inner % 4 == 0) or are 4
 * channels of one row (channels-last, C % 4 == 0).
 */
export function tensorStorage(device: GPUDevice, dtype: 'float32' | 'float16', view: { channels: number; inner: number }): TensorStorage {
  if (dtype === 'float32') return view.inner % 4 === 0 || isChannelsLastVec4(view) ? 'f32x4' : 'f32';
  return device.features.has('shader-f16') ? 'f16' : 'f16-packed';
}

/** Channels-last (inner == 1) with C % 4 == 0: the kernels go four channels at a time (batchnorm/common.wgsl). */
export function isChannelsLastVec4(view: { channels: number; inner: number }): boolean {
  return view.inner === 1 && view.channels % 4 === 0;
}

const KERNEL_WGSL: Readonly<Record<BatchNormModule, string>> = {
  'batchnorm/stats': statsWgsl,
  'batchnorm/normalize': normalizeWgsl,
  'batchnorm/backward': backwardWgsl,
};

/** The modules whose kernels merge values across a workgroup (workgroup_reduce). */
const REDUCING_MODULES: ReadonlySet<BatchNormModule> = new Set(['batchnorm/stats', 'batchnorm/backward']);

/**
 * The complete WGSL of a batch-norm module: the directives first (the storage file may hold
 * `enable f16;`; the subgroups variant begins with `enable subgroups;` and merges with subgroup
 * operations), then the tensor storage, the shared core pieces, common.wgsl, the workgroup
 * reduction where the module has one, and the kernel file.
 */
export function shaderSource(module: BatchNormModule, storage: TensorStorage, subgroups = false): string {
  const reducing = REDUCING_MODULES.has(module);
  return joinWgsl(
    `${reducing && subgroups ? 'enable subgroups;\n' : ''}${TENSOR_STORAGE_WGSL[storage]}`,
    NUMERICS_WGSL,
    WORKGROUPS_WGSL,
    ACTIVATIONS_WGSL,
    COMMON_WGSL,
    ...(reducing ? [workgroupReduceWgsl(subgroups)] : []),
    KERNEL_WGSL[module],
  );
}

/** Every batch-norm kernel entry point and the shader module it lives in. */
export const KERNELS = {
  partial_stats: 'batchnorm/stats',
  partial_stats_channels_last: 'batchnorm/stats',
  partial_stats_channels_last_vec4: 'batchnorm/stats',
  finalize_stats: 'batchnorm/stats',
  normalize_running: 'batchnorm/normalize',
  normalize_running_channels_last_vec4: 'batchnorm/normalize',
  normalize_batch: 'batchnorm/normalize',
  normalize_batch_channels_last_vec4: 'batchnorm/normalize',
  normalize_update: 'batchnorm/normalize',
  normalize_update_channels_last_vec4: 'batchnorm/normalize',
  partial_grad_sums: 'batchnorm/backward',
  partial_grad_sums_channels_last: 'batchnorm/backward',
  partial_grad_sums_channels_last_vec4: 'batchnorm/backward',
  input_grad: 'batchnorm/backward',
  input_grad_channels_last_vec4: 'batchnorm/backward',
} as const satisfies Record<string, BatchNormModule>;

/** Name of a batch-norm kernel (a WGSL entry point). */
export type BatchNormKernel = keyof typeof KERNELS;

/** Batch norm's kernels, bindings, structs and constants, for the pipelines and the contract test. */
export const BATCHNORM_KERNELS: KernelFamily<BatchNormKernel, BatchNormModule> = {
  kernels: KERNELS,
  bindings: BINDINGS,
  structs: {
    Params: { module: 'batchnorm/stats', fields: STRUCTS.Params },
    ChannelCoef: { module: 'batchnorm/stats', fields: STRUCTS.ChannelCoef },
  },
  constants: KERNEL_CONSTANTS,
  activationKernels: new Set([
    'normalize_running',
    'normalize_running_channels_last_vec4',
    'normalize_batch',
    'normalize_batch_channels_last_vec4',
    'normalize_update',
    'normalize_update_channels_last_vec4',
    'partial_grad_sums',
    'partial_grad_sums_channels_last',
    'partial_grad_sums_channels_last_vec4',
    'input_grad',
    'input_grad_channels_last_vec4',
  ]),
  subgroupKernels: new Set(['partial_stats', 'finalize_stats', 'partial_grad_sums']),
  overrides: {},
  source: shaderSource,
};

/** The buffers of one dispatch of `kernel`, by the WGSL names of its module's bindings. */
export type KernelBuffers<K extends BatchNormKernel> = Partial<Record<keyof (typeof BINDINGS)[(typeof KERNELS)[K]], TensorBuffer>>;

/**
 * Records one dispatch of the batch-norm `kernel` (built for tensors stored as `target.storage`,
 * with its activation fused where the kernel has one) over `workgroups` workgroups, its buffers
 * bound by name.
 */
export function dispatchKernel<K extends BatchNormKernel>(
  device: GPUDevice,
  pass: GPUComputePassEncoder,
  kernel: K,
  target: KernelTarget,
  workgroups: number,
  buffers: KernelBuffers<K>,
): void {
  dispatchFamilyKernel(device, pass, BATCHNORM_KERNELS, kernel, target, workgroups, buffers);
}
