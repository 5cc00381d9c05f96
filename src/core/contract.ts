/**
 * The host–kernel contract, written once: every WGSL module's bindings by name, the layout of
 * the structs the host writes or reads, and the constants both sides share. Host code binds and
 * packs only through these tables; test/kernel-contract.test.ts parses the .wgsl files and fails
 * wherever they disagree.
 */

/** Bindings of every module: the Params uniform (common.wgsl) and the tensors (tensor_*.wgsl). */
const SHARED_BINDINGS = { params: 0, x: 1, y: 2, dy: 3, dx: 4 } as const;

/** Binding numbers by WGSL variable name, per shader module (kernel file). */
export const BINDINGS = {
  stats: { ...SHARED_BINDINGS, partials: 5, gamma: 6, beta: 7, running_mean: 8, running_var: 9, batches_tracked: 10, coef: 11, non_finite: 12 },
  normalize: { ...SHARED_BINDINGS, running_mean: 5, running_var: 6, gamma: 7, beta: 8, coef: 9, coef_in: 10 },
  backward: { ...SHARED_BINDINGS, coef: 5, partials: 6, gamma: 7, dgamma: 8, dbeta: 9, grad_coef: 10, grad_coef_in: 11 },
  scaling: { ...SHARED_BINDINGS, partials: 5, state: 6, coef: 7, inverse_coef: 8, options: 9 },
  norm_forward: { ...SHARED_BINDINGS, saved: 5, gamma: 6, beta: 7, running_mean: 8, running_var: 9 },
  norm_running: { ...SHARED_BINDINGS, saved: 5, gamma: 6, beta: 7, running_mean: 8, running_var: 9 },
  norm_backward: { ...SHARED_BINDINGS, saved: 5, gamma: 6, beta: 7, partials: 8, dgamma: 9, dbeta: 10 },
} as const;

/** The shader modules of the normalization family (norm_*.wgsl), built from their own tensor storages. */
export const NORM_SHADERS = ['norm_forward', 'norm_running', 'norm_backward'] as const;

/** Name of a shader module (a kernel file). */
export type ShaderName = keyof typeof BINDINGS;

/** The WGSL name of a binding of module `M`. */
export type BindingName<M extends ShaderName> = keyof (typeof BINDINGS)[M];

/**
 * Fields of the structs the host packs or decodes, in WGSL order. Every field is a 4-byte
 * scalar, so field k sits at byte 4k.
 */
export const STRUCTS = {
  /** common.wgsl: the uniform of every batch-norm and feature-scaling dispatch. */
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
  },
  /** common.wgsl: per-channel coefficients of a forward pass (kept in buffers as planes: COEF_PLANES). */
  ChannelCoef: { shift: 'f32', mean: 'f32', variance: 'f32', invstd: 'f32', scale: 'f32', beta: 'f32', factor: 'f32', _pad1: 'f32' },
  /** feature-scaling/scaling.wgsl: a feature's accumulated statistics (FeatureScaler's state). */
  ScaleState: { shift: 'f32', mean: 'f32', m2: 'f32', count: 'u32', min: 'f32', max: 'f32', _pad0: 'f32', _pad1: 'f32' },
  /** feature-scaling/scaling.wgsl: the scaler's uniform options. */
  ScalingOptions: { method: 'u32', correction: 'f32', _pad0: 'u32', _pad1: 'u32' },
  /** normalization/common.wgsl: the uniform of every dispatch of the normalization family. */
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
    _pad0: 'u32',
    _pad1: 'u32',
    _pad2: 'u32',
    _pad3: 'u32',
  },
  /** feature-scaling/scaling.wgsl: one chunk's partial statistics (two vec4f). */
  ScalePartial: { moments: 'vec4f', range: 'vec4f' },
} as const;

/** Name of a struct in {@link STRUCTS}. */
export type StructName = keyof typeof STRUCTS;

const FIELD_BYTES = { u32: 4, f32: 4, vec4f: 16 } as const;

/** Bytes of one `struct` (its fields are laid out without padding between them). */
export function structBytes(struct: StructName): number {
  return Object.values(STRUCTS[struct]).reduce((sum, type) => sum + FIELD_BYTES[type], 0);
}

/** The index, in 4-byte words, of `field` within `struct`. */
export function fieldWord<S extends StructName>(struct: S, field: keyof (typeof STRUCTS)[S]): number {
  let bytes = 0;
  for (const [name, type] of Object.entries(STRUCTS[struct])) {
    if (name === field) return bytes / 4;
    bytes += FIELD_BYTES[type as keyof typeof FIELD_BYTES];
  }
  throw new Error(`struct ${struct} has no field ${String(field)}`);
}

/**
 * The bytes of a struct of 4-byte scalars, from a value for every field (padding fields are
 * written as 0). Each value is written as its field's WGSL type.
 */
export function packStruct<S extends 'Params' | 'ScalingOptions' | 'NormParams'>(
  struct: S,
  values: Record<Exclude<keyof (typeof STRUCTS)[S], `_${string}`>, number>,
): ArrayBuffer {
  const fields = Object.entries(STRUCTS[struct]) as [string, 'u32' | 'f32'][];
  const bytes = new ArrayBuffer(fields.length * 4);
  const u32 = new Uint32Array(bytes);
  const f32 = new Float32Array(bytes);
  fields.forEach(([name, type], k) => {
    if (name.startsWith('_')) return;
    const value = (values as Record<string, number>)[name];
    if (type === 'u32') u32[k] = value;
    else f32[k] = value;
  });
  return bytes;
}

/** Constants shared by the host and the WGSL (`const NAME: u32 = ...u;` in common.wgsl). */
export const KERNEL_CONSTANTS = {
  /** Threads per workgroup of the elementwise and per-channel kernels. */
  WG: 256,
  /** Threads per reduction workgroup. */
  RWG: 64,
  /** Elements of a channel reduced by one chunked partial workgroup. */
  CHUNK: 2048,
  /** Rows of a channels-last partial workgroup. */
  ROWS: 256,
} as const;

/**
 * The planes of a coefficient buffer (`saved`, and FeatureScaler's coefficients): field f of
 * channel c is float f · C + c (COEF_* in common.wgsl), so that one field of four consecutive
 * channels is one vec4. The buffer holds 8 planes (CHANNEL_COEF_BYTES per channel).
 */
export const COEF_PLANES = { shift: 0, mean: 1, variance: 2, invstd: 3, scale: 4, beta: 5, factor: 6 } as const;

/** Values of the pipeline-overridable ACTIVATION constant (common.wgsl). */
export const ACTIVATIONS = { none: 0, relu: 1, silu: 2 } as const;

/** An activation fused into the batch-norm kernels. */
export type FusedActivation = keyof typeof ACTIVATIONS;

/** Elements one thread of a slot kernel handles, per tensor storage (`const SLOT` in tensor_*.wgsl). */
export const SLOT_ELEMENTS = { f32: 1, f32x4: 4, f16: 2, 'f16-packed': 2 } as const;

/** Bytes of one partial of the batch-norm reductions (`partials: array<vec4f>` in bn_stats and bn_backward). */
export const BN_PARTIAL_BYTES = 16;

/** Bytes per channel of the backward pass's dx coefficients (`grad_coef`: four planes of f32). */
export const GRAD_COEF_BYTES = 16;

/** Bytes of one ChannelCoef: the per-feature size of a forward pass's `saved` buffer. */
export const CHANNEL_COEF_BYTES = structBytes('ChannelCoef');
/** Threads per workgroup of the elementwise and per-channel kernels (WG in common.wgsl). */
export const WORKGROUP_SIZE = KERNEL_CONSTANTS.WG;
/** Elements of a channel reduced by one partial workgroup (CHUNK in common.wgsl). */
export const REDUCTION_CHUNK = KERNEL_CONSTANTS.CHUNK;

/** Bytes per statistics group of the normalization family's `saved` buffer (GroupCoef: one vec4f). */
export const NORM_SAVED_BYTES_PER_GROUP = 16;

/** Bytes of one partial of the family's γ/β gradients (`partials: array<vec2f>` in normalization/backward.wgsl). */
export const NORM_PARTIAL_BYTES = 8;

/** Threads per workgroup of the family's kernels (NWG in normalization/common.wgsl). */
export const NORM_WORKGROUP_SIZE = 256;

/** γ entries per tile of norm_affine_partials_rows (AFFINE_WIDTH in normalization/backward.wgsl). */
export const NORM_AFFINE_WIDTH = 64;

/** Columns of a row a thread of norm_backward_columns keeps dγ/dβ sums for (MAX_COLUMNS in normalization/backward.wgsl). */
export const NORM_MAX_COLUMNS = 32;
