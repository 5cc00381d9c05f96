/**
 * The shared part of the host–kernel contract: what every family's kernels have in common (the
 * tensor bindings, the workgroup sizes of shaders/core/workgroups.wgsl, the fused activations of
 * shaders/core/activations.wgsl) and the helpers a family describes its structs with. Each family
 * writes its own part beside its kernels (src/<family>/kernels.ts: bindings, structs, constants),
 * and test/core/kernel-contract.test.ts checks every family's against its WGSL.
 */

/**
 * Bindings every shader module declares: the uniform `params` (each family's common.wgsl) and the
 * tensors x, y, dy and dx (each family's tensor_<storage>.wgsl).
 */
export const TENSOR_BINDINGS = { params: 0, x: 1, y: 2, dy: 3, dx: 4 } as const;

/** The WGSL type of a field of a struct the host packs or decodes. */
export type FieldType = 'u32' | 'f32' | 'vec4f';

/** Fields of a WGSL struct, by name, in WGSL order, laid out without padding between them. */
export type StructLayout = Readonly<Record<string, FieldType>>;

/** A struct of 4-byte scalars only (a uniform the host packs): field k sits at byte 4k. */
export type ScalarStructLayout = Readonly<Record<string, 'u32' | 'f32'>>;

/** A value for every field of `S` but its padding (fields named `_…`). */
export type StructValues<S extends ScalarStructLayout> = Record<Exclude<keyof S, `_${string}`>, number>;

const FIELD_BYTES: Readonly<Record<FieldType, number>> = { u32: 4, f32: 4, vec4f: 16 };

/** Bytes of one struct with these fields. */
export function layoutBytes(layout: StructLayout): number {
  return Object.values(layout).reduce((sum, type) => sum + FIELD_BYTES[type], 0);
}

/** The index, in 4-byte words, of `field` within a struct with these fields. */
export function layoutWord<S extends StructLayout>(layout: S, field: keyof S & string, structName = 'the struct'): number {
  let bytes = 0;
  for (const [name, type] of Object.entries(layout)) {
    if (name === field) return bytes / 4;
    bytes += FIELD_BYTES[type];
  }
  throw new Error(`${structName} has no field ${field}`);
}

/**
 * The bytes of a struct of 4-byte scalars, from a value for every field (padding fields are
 * written as 0). Each value is written as its field's WGSL type.
 */
export function packLayout<S extends ScalarStructLayout>(layout: S, values: StructValues<S>): ArrayBuffer {
  const fields = Object.entries(layout);
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

/** Constants of shaders/core/workgroups.wgsl (`const NAME: u32 = ...u;`), which every module includes. */
export const CORE_CONSTANTS = {
  /** Threads per workgroup of every kernel but batch norm's and feature scaling's reductions. */
  WG: 256,
  /** Threads per workgroup of batch norm's and feature scaling's reductions (workgroup_reduce). */
  RWG: 64,
} as const;

/** Threads per workgroup of every kernel but the reductions (WG in shaders/core/workgroups.wgsl). */
export const WORKGROUP_SIZE = CORE_CONSTANTS.WG;

/** Values of the pipeline-overridable ACTIVATION constant (shaders/core/activations.wgsl). */
export const ACTIVATIONS = { none: 0, relu: 1, silu: 2 } as const;

/** An activation fused into the kernels after the affine transform. */
export type FusedActivation = keyof typeof ACTIVATIONS;
