/**
 * Feature scaling's kernels (shaders/feature-scaling/scaling.wgsl): its part of the host–kernel
 * contract and how its module is assembled. The module is built on batch norm's WGSL -- its tensor
 * storages and common.wgsl (the Params uniform, ChannelCoef planes, the [outer, C, inner]
 * indexing) -- and its transforms run through batch norm's normalize kernel; this is the one place
 * that takes batch norm's WGSL for it.
 */
import scalingWgsl from '../../shaders/feature-scaling/scaling.wgsl?raw';
import { COMMON_WGSL as BATCHNORM_COMMON_WGSL, KERNEL_CONSTANTS as BATCHNORM_CONSTANTS, STRUCTS as BATCHNORM_STRUCTS, TENSOR_STORAGE_WGSL as BATCHNORM_TENSOR_STORAGE_WGSL } from '../batchnorm/kernels.js';
import { TENSOR_BINDINGS, layoutBytes, layoutWord, packLayout, type StructValues } from '../core/contract.js';
import { dispatchFamilyKernel, type KernelFamily, type KernelTarget } from '../core/pipelines.js';
import { ACTIVATIONS_WGSL, NUMERICS_WGSL, WORKGROUPS_WGSL, joinWgsl, workgroupReduceWgsl, type TensorStorage } from '../core/shaders.js';
import type { TensorBuffer } from '../core/gpu.js';

/** Binding numbers by WGSL variable name, per feature-scaling shader module. */
export const BINDINGS = {
  'feature-scaling/scaling': { ...TENSOR_BINDINGS, partials: 5, state: 6, options: 9 },
} as const;

/** Name of a feature-scaling shader module: its file under shaders/, without `.wgsl`. */
export type FeatureScalingModule = keyof typeof BINDINGS;

/** Fields of the structs of scaling.wgsl the host packs or decodes, in WGSL order. */
export const STRUCTS = {
  /** A feature's accumulated statistics (FeatureScaler's state). */
  ScaleState: { shift: 'f32', mean: 'f32', m2: 'f32', count: 'u32', min: 'f32', max: 'f32', _pad0: 'f32', _pad1: 'f32' },
  /** The scaler's uniform options. */
  ScalingOptions: { method: 'u32', correction: 'f32', _pad0: 'u32', _pad1: 'u32' },
  /** One chunk's partial statistics (two vec4f). */
  ScalePartial: { moments: 'vec4f', range: 'vec4f' },
} as const;

/** Name of a struct of scaling.wgsl. */
export type FeatureScalingStruct = keyof typeof STRUCTS;

/** Bytes of one of feature scaling's structs. */
export function structBytes(struct: FeatureScalingStruct): number {
  return layoutBytes(STRUCTS[struct]);
}

/** The index, in 4-byte words, of `field` within one of feature scaling's structs. */
export function fieldWord<S extends FeatureScalingStruct>(struct: S, field: keyof (typeof STRUCTS)[S] & string): number {
  return layoutWord(STRUCTS[struct], field, `struct ${struct}`);
}

/** The bytes of the uniform ScalingOptions, from a value for every field. */
export function packStruct(struct: 'ScalingOptions', values: StructValues<typeof STRUCTS.ScalingOptions>): ArrayBuffer {
  return packLayout(STRUCTS[struct], values);
}

/** The module's WGSL: batch norm's storage and common.wgsl, the shared core pieces, the workgroup reduction, scaling.wgsl. */
export function shaderSource(_module: FeatureScalingModule, storage: TensorStorage, subgroups = false): string {
  return joinWgsl(
    `${subgroups ? 'enable subgroups;\n' : ''}${BATCHNORM_TENSOR_STORAGE_WGSL[storage]}`,
    NUMERICS_WGSL,
    WORKGROUPS_WGSL,
    ACTIVATIONS_WGSL, // batchnorm/common.wgsl's walks apply one; feature scaling's is always none
    BATCHNORM_COMMON_WGSL,
    workgroupReduceWgsl(subgroups),
    scalingWgsl,
  );
}

/** Every feature-scaling kernel entry point and the shader module it lives in. */
export const KERNELS = {
  scaling_begin: 'feature-scaling/scaling',
  scaling_partials: 'feature-scaling/scaling',
  scaling_accumulate: 'feature-scaling/scaling',
  scale_transform: 'feature-scaling/scaling',
  scale_transform_channels_last_vec4: 'feature-scaling/scaling',
  scale_inverse: 'feature-scaling/scaling',
  scale_inverse_channels_last_vec4: 'feature-scaling/scaling',
} as const satisfies Record<string, FeatureScalingModule>;

/** Name of a feature-scaling kernel (a WGSL entry point). */
export type FeatureScalingKernel = keyof typeof KERNELS;

/** Feature scaling's kernels, bindings, structs and constants, for the pipelines and the contract test. */
export const FEATURE_SCALING_KERNELS: KernelFamily<FeatureScalingKernel, FeatureScalingModule> = {
  kernels: KERNELS,
  bindings: BINDINGS,
  structs: {
    // Declared in batchnorm/common.wgsl, which the module includes.
    Params: { module: 'feature-scaling/scaling', fields: BATCHNORM_STRUCTS.Params },
    ChannelCoef: { module: 'feature-scaling/scaling', fields: BATCHNORM_STRUCTS.ChannelCoef },
    ScaleState: { module: 'feature-scaling/scaling', fields: STRUCTS.ScaleState },
    ScalingOptions: { module: 'feature-scaling/scaling', fields: STRUCTS.ScalingOptions },
    ScalePartial: { module: 'feature-scaling/scaling', fields: STRUCTS.ScalePartial },
  },
  constants: BATCHNORM_CONSTANTS,
  activationKernels: new Set(),
  subgroupKernels: new Set(['scaling_partials']),
  overrides: {},
  source: shaderSource,
};

/** The buffers of one dispatch of `kernel`, by the WGSL names of its module's bindings. */
export type KernelBuffers<K extends FeatureScalingKernel> = Partial<Record<keyof (typeof BINDINGS)[(typeof KERNELS)[K]], TensorBuffer>>;

/** Records one dispatch of the feature-scaling `kernel` over `workgroups` workgroups, its buffers bound by name. */
export function dispatchKernel<K extends FeatureScalingKernel>(
  device: GPUDevice,
  pass: GPUComputePassEncoder,
  kernel: K,
  target: KernelTarget,
  workgroups: number,
  buffers: KernelBuffers<K>,
): void {
  dispatchFamilyKernel(device, pass, FEATURE_SCALING_KERNELS, kernel, target, workgroups, buffers);
}
