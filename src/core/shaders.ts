/**
 * WGSL sources. Each shader module is built from real .wgsl files: a tensor storage (how x, y, dy
 * and dx are declared, loaded and stored; see TensorStorage), common.wgsl (the Params uniform and
 * the [outer, C, inner] indexing), for the modules with reductions their workgroup-wide merges
 * (reduce_tree.wgsl, or reduce_subgroups.wgsl in the subgroups variant), and the kernel file.
 * `?raw` makes vite and vitest inline the text.
 */
import tensorF32 from '../../shaders/batchnorm/tensor_f32.wgsl?raw';
import tensorF32x4 from '../../shaders/batchnorm/tensor_f32x4.wgsl?raw';
import tensorF16Packed from '../../shaders/batchnorm/tensor_f16_packed.wgsl?raw';
import tensorF16 from '../../shaders/batchnorm/tensor_f16.wgsl?raw';
import common from '../../shaders/batchnorm/common.wgsl?raw';
import numerics from '../../shaders/core/numerics.wgsl?raw';
import normTensorF32 from '../../shaders/normalization/tensor_f32.wgsl?raw';
import normTensorF16 from '../../shaders/normalization/tensor_f16.wgsl?raw';
import normTensorF16Packed from '../../shaders/normalization/tensor_f16_packed.wgsl?raw';
import normCommon from '../../shaders/normalization/common.wgsl?raw';
import normForward from '../../shaders/normalization/forward.wgsl?raw';
import normBackward from '../../shaders/normalization/backward.wgsl?raw';
import normRunning from '../../shaders/normalization/running.wgsl?raw';
import stats from '../../shaders/batchnorm/stats.wgsl?raw';
import normalize from '../../shaders/batchnorm/normalize.wgsl?raw';
import backward from '../../shaders/batchnorm/backward.wgsl?raw';
import scaling from '../../shaders/feature-scaling/scaling.wgsl?raw';
import reduceTree from '../../shaders/core/reduce_tree.wgsl?raw';
import reduceSubgroups from '../../shaders/core/reduce_subgroups.wgsl?raw';
import { NORM_SHADERS, SLOT_ELEMENTS, type ShaderName } from './contract.js';

const KERNEL_FILES: Record<ShaderName, string> = { stats, normalize, backward, scaling, norm_forward: normForward, norm_running: normRunning, norm_backward: normBackward };

/**
 * The normalization family's tensor storages (norm_tensor_*.wgsl): one element at a time, halves
 * stored with atomics where packed. Both float32 storages map to the scalar file.
 */
const NORM_STORAGE_FILES: Record<TensorStorage, string> = {
  f32: normTensorF32,
  f32x4: normTensorF32,
  f16: normTensorF16,
  'f16-packed': normTensorF16Packed,
};

/**
 * How tensors are stored in GPU buffers and accessed: float32 (as vec4s where runs of 4
 * elements share a channel), or IEEE halves -- native f16 where the device has shader-f16, else packed
 * two per u32. Both float32 storages have the same bytes, and so do both half storages.
 */
export type TensorStorage = keyof typeof SLOT_ELEMENTS;

const STORAGE_FILES: Record<TensorStorage, string> = {
  f32: tensorF32,
  f32x4: tensorF32x4,
  f16: tensorF16,
  'f16-packed': tensorF16Packed,
};

/** Every tensor storage. */
export const TENSOR_STORAGES = Object.keys(STORAGE_FILES) as TensorStorage[];

export { SLOT_ELEMENTS };

/**
 * The storage for tensors of `dtype` on `device` with the [outer, C, inner] `view`: float32
 * tensors are accessed as vec4s where runs of 4 share a channel (inner % 4 == 0) or are 4
 * channels of one row (channels-last, C % 4 == 0).
 */
export function tensorStorage(device: GPUDevice, dtype: 'float32' | 'float16', view: { channels: number; inner: number }): TensorStorage {
  if (dtype === 'float32') return view.inner % 4 === 0 || isChannelsLastVec4(view) ? 'f32x4' : 'f32';
  return device.features.has('shader-f16') ? 'f16' : 'f16-packed';
}

/** Channels-last (inner == 1) with C % 4 == 0: the kernels go four channels at a time (common.wgsl). */
export function isChannelsLastVec4(view: { channels: number; inner: number }): boolean {
  return view.inner === 1 && view.channels % 4 === 0;
}

/** Bytes a tensor of `elements` values takes in a buffer with this storage. */
export function tensorBytes(storage: TensorStorage, elements: number): number {
  return storage === 'f32' || storage === 'f32x4' ? elements * 4 : Math.ceil(elements / 2) * 4;
}

/** The modules whose kernels merge values across a workgroup (workgroup_reduce). */
const REDUCING_SHADERS: ReadonlySet<ShaderName> = new Set(['stats', 'backward', 'scaling']);

/**
 * The complete WGSL of a shader module for a tensor storage: the directives come first (the
 * storage file may hold `enable f16;`; the subgroups variant begins with `enable subgroups;` and
 * merges with subgroup operations). The family's modules have storages and a common file of their
 * own, and no subgroup variant.
 */
export function shaderSource(shader: ShaderName, storage: TensorStorage, subgroups = false): string {
  if ((NORM_SHADERS as readonly string[]).includes(shader)) {
    return `${NORM_STORAGE_FILES[storage]}\n${numerics}\n${normCommon}\n${KERNEL_FILES[shader]}`;
  }
  const reduce = REDUCING_SHADERS.has(shader) ? `${subgroups ? reduceSubgroups : reduceTree}\n` : '';
  return `${subgroups ? 'enable subgroups;\n' : ''}${STORAGE_FILES[storage]}\n${numerics}\n${common}\n${reduce}${KERNEL_FILES[shader]}`;
}

/** The storage of the normalization family's tensors of `dtype` on `device` (float32: always 'f32'). */
export function normStorage(device: GPUDevice, dtype: 'float32' | 'float16'): TensorStorage {
  if (dtype === 'float32') return 'f32';
  return device.features.has('shader-f16') ? 'f16' : 'f16-packed';
}
