/**
 * The WGSL every family's shader modules share (shaders/core/), and the tensor storages they are
 * built for. A family assembles its modules from these pieces and its own files
 * (src/<family>/kernels.ts); `?raw` makes vite and vitest inline the text.
 */
import numericsWgsl from '../../shaders/core/numerics.wgsl?raw';
import workgroupsWgsl from '../../shaders/core/workgroups.wgsl?raw';
import activationsWgsl from '../../shaders/core/activations.wgsl?raw';
import reducePartialWgsl from '../../shaders/core/reduce_partial.wgsl?raw';
import reduceTreeWgsl from '../../shaders/core/reduce_tree.wgsl?raw';
import reduceSubgroupsWgsl from '../../shaders/core/reduce_subgroups.wgsl?raw';

/** shaders/core/numerics.wgsl: finite and NaN tests, IEEE half bits, Welford and Chan summaries, sigmoid. */
export const NUMERICS_WGSL: string = numericsWgsl;

/** shaders/core/workgroups.wgsl: the workgroup sizes WG and RWG, and linear_workgroup. */
export const WORKGROUPS_WGSL: string = workgroupsWgsl;

/** shaders/core/activations.wgsl: the ACTIVATION override and the fused activations with their gradients. */
export const ACTIVATIONS_WGSL: string = activationsWgsl;

/**
 * A workgroup reduction over RWG threads (workgroup_reduce): what it merges
 * (reduce_partial.wgsl) and how, with subgroup operations where `subgroups` (reduce_subgroups.wgsl,
 * whose module must begin with `enable subgroups;`) or else as a tree in workgroup memory
 * (reduce_tree.wgsl).
 */
export function workgroupReduceWgsl(subgroups: boolean): string {
  return `${reducePartialWgsl}\n${subgroups ? reduceSubgroupsWgsl : reduceTreeWgsl}`;
}

/**
 * How tensors are stored in GPU buffers and accessed: float32 (as vec4s where runs of 4
 * elements share a channel), or IEEE halves -- native f16 where the device has shader-f16, else packed
 * two per u32 (read as pairs of words, 4 halves, where the normalization family's groups allow:
 * 'f16-packed-x4'; batch norm reads it as 'f16-packed'). Both float32 storages have the same
 * bytes, and so do the half storages.
 */
export type TensorStorage = 'f32' | 'f32x4' | 'f16' | 'f16-packed' | 'f16-packed-x4';

/** Every tensor storage. */
export const TENSOR_STORAGES: readonly TensorStorage[] = ['f32', 'f32x4', 'f16', 'f16-packed', 'f16-packed-x4'];

/** Bytes a tensor of `elements` values takes in a buffer with this storage. */
export function tensorBytes(storage: TensorStorage, elements: number): number {
  return storage === 'f32' || storage === 'f32x4' ? elements * 4 : Math.ceil(elements / 2) * 4;
}

/**
 * The WGSL of a module from its pieces, in order, one per line break; the first must hold the
 * directives (`enable …;`), which WGSL requires before any declaration.
 */
export function joinWgsl(...pieces: string[]): string {
  return pieces.join('\n');
}
