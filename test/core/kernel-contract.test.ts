/**
 * The host–kernel contract against the WGSL itself, for every family (test/helpers/kernel-families.ts):
 * each module's `@group(0) @binding(n) var… name`, the fields of the structs the host packs or
 * decodes, the constants the host relies on, and the shared pieces of src/core/contract.ts
 * (tensor bindings, workgroup sizes, the ACTIVATION override). Host code binds only through the
 * families' tables.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ACTIVATIONS, CORE_CONSTANTS, TENSOR_BINDINGS, WORKGROUP_SIZE, layoutBytes } from '../../src/core/contract.js';
import { TENSOR_STORAGES } from '../../src/core/shaders.js';
import { BN_PARTIAL_BYTES, COEF_PLANES, SLOT_ELEMENTS, STRUCTS as BATCHNORM_STRUCTS, BATCHNORM_KERNELS } from '../../src/batchnorm/kernels.js';
import { STRUCTS as SCALING_STRUCTS, fieldWord } from '../../src/feature-scaling/kernels.js';
import {
  NORM_AFFINE_WIDTH,
  NORM_MAX_COLUMNS,
  NORM_PARTIAL_BYTES,
  NORM_SAVED_BYTES_PER_GROUP,
  NORM_WORKGROUP_SIZE,
  STRUCTS as NORM_STRUCTS,
} from '../../src/normalization/kernels.js';
import { ALL_KERNELS, KERNEL_FAMILIES } from '../helpers/kernel-families.js';

/** Binding number by variable name, as declared in `wgsl`. */
function declaredBindings(wgsl: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const m of wgsl.matchAll(/@group\(0\)\s*@binding\((\d+)\)\s*var(?:<[^>]*>)?\s+(\w+)\s*:/g)) {
    if (m[2] in out) throw new Error(`binding ${m[2]} declared twice`);
    out[m[2]] = Number(m[1]);
  }
  return out;
}

/** Field name → WGSL type of `struct name { ... }` in `wgsl`, in order. */
function declaredStruct(wgsl: string, name: string): [string, string][] {
  const body = new RegExp(`struct\\s+${name}\\s*\\{([^}]*)\\}`).exec(wgsl)?.[1];
  if (body === undefined) throw new Error(`struct ${name} not found`);
  return [...body.replace(/\/\/[^\n]*/g, '').matchAll(/(\w+)\s*:\s*(\w+)/g)].map((m) => [m[1], m[2]]);
}

/** The values `const NAME: u32 = <value>u;` declares in `wgsl`. */
function declaredConstants(wgsl: string, name: string): number[] {
  return [...wgsl.matchAll(new RegExp(`const\\s+${name}\\s*:\\s*u32\\s*=\\s*(\\d+)u\\s*;`, 'g'))].map((m) => Number(m[1]));
}

/** A file of shaders/, by its path there. */
function shaderFile(path: string): string {
  return readFileSync(fileURLToPath(new URL(`../../shaders/${path}`, import.meta.url)), 'utf8');
}

/** Every module's WGSL for every tensor storage, by family and module. */
const sources: Record<string, Record<string, string[]>> = Object.fromEntries(
  Object.entries(KERNEL_FAMILIES).map(([family, table]) => [
    family,
    Object.fromEntries(Object.keys(table.bindings).map((module) => [module, TENSOR_STORAGES.map((storage) => table.source(module, storage))])),
  ]),
);

describe.each(Object.entries(KERNEL_FAMILIES))('the %s family', (family, table) => {
  it("each module's name is its kernel file (shaders/<module>.wgsl, in the family's folder), whose text its WGSL ends with", () => {
    for (const module of Object.keys(table.bindings)) {
      expect(module.startsWith(`${family}/`), module).toBe(true);
      expect(sources[family][module][0].endsWith(shaderFile(`${module}.wgsl`)), module).toBe(true);
    }
  });

  it('its binding table names every binding each module declares, with its number, for every tensor storage', () => {
    for (const [module, bindings] of Object.entries(table.bindings)) {
      for (const source of sources[family][module]) expect(declaredBindings(source), module).toEqual({ ...bindings });
      // The tensor bindings are the same in every family.
      expect(bindings, module).toMatchObject(TENSOR_BINDINGS);
    }
  });

  it('every kernel entry point is a @compute function of its module', () => {
    for (const [kernel, module] of Object.entries(table.kernels)) {
      expect(sources[family][module][0], kernel).toMatch(new RegExp(`@compute\\s+@workgroup_size\\([^)]*\\)\\s*fn\\s+${kernel}\\s*\\(`));
    }
  });

  it('the variant tables name only kernels of the family', () => {
    for (const set of [table.activationKernels, table.subgroupKernels, ...Object.values(table.overrides).map((o) => o.kernels)]) {
      for (const kernel of set) expect(Object.keys(table.kernels), kernel).toContain(kernel);
    }
    // Each override the host sets is declared in the module of every kernel that reads it.
    for (const [name, { kernels }] of Object.entries(table.overrides)) {
      for (const kernel of kernels) expect(sources[family][table.kernels[kernel]][0], `${name} in ${kernel}`).toMatch(new RegExp(`override\\s+${name}\\s*:`));
    }
  });

  it("each struct's fields, types and order match the WGSL", () => {
    const wgslType = { u32: 'u32', f32: 'f32', vec4f: 'vec4f' } as const;
    for (const [name, { module, fields }] of Object.entries(table.structs)) {
      expect(declaredStruct(sources[family][module][0], name), name).toEqual(Object.entries(fields).map(([f, t]) => [f, wgslType[t]]));
    }
  });

  it('each constant is declared, with its value, by a module of the family, and by none with another value', () => {
    const all = Object.values(sources[family]).map((storages) => storages[0]);
    for (const [name, value] of Object.entries(table.constants)) {
      const declared = all.flatMap((source) => declaredConstants(source, name));
      expect(declared.length, name).toBeGreaterThan(0);
      expect(new Set(declared), name).toEqual(new Set([value]));
    }
  });
});

describe('across families', () => {
  it('kernel names are unique: a pipeline is cached under its label, which names the kernel and not its family', () => {
    const names = ALL_KERNELS.map((k) => k.kernel);
    expect(new Set(names).size).toBe(names.length);
  });

  it('a table that disagrees with the WGSL is caught', () => {
    const source = sources.batchnorm['batchnorm/stats'][0].replace('@binding(5) var<storage, read_write> partials', '@binding(13) var<storage, read_write> partials');
    expect(declaredBindings(source)).not.toEqual({ ...BATCHNORM_KERNELS.bindings['batchnorm/stats'] });
  });

  it('no library module outside the kernel layer binds by bare number', () => {
    const root = fileURLToPath(new URL('../../src/', import.meta.url));
    const files = (readdirSync(root, { recursive: true }) as string[]).filter((f) => f.endsWith('.ts'));
    const callers = files.filter((f) => /dispatchPipeline\(/.test(readFileSync(root + f, 'utf8')));
    expect(callers.sort()).toEqual(['core/gpu.ts', 'core/pipelines.ts']);
  });
});

describe('shared pieces (shaders/core)', () => {
  const workgroups = shaderFile('core/workgroups.wgsl');
  const activations = shaderFile('core/activations.wgsl');

  it('each CORE_CONSTANTS value is the const of the same name in core/workgroups.wgsl, which every module includes', () => {
    for (const [name, value] of Object.entries(CORE_CONSTANTS)) expect(declaredConstants(workgroups, name), name).toEqual([value]);
    expect(WORKGROUP_SIZE).toBe(CORE_CONSTANTS.WG);
    expect(NORM_WORKGROUP_SIZE).toBe(CORE_CONSTANTS.WG);
    for (const { family, module } of ALL_KERNELS) expect(sources[family][module][0], module).toContain(workgroups);
  });

  it("ACTIVATION's default is 'none' and its values are ACTIVATIONS'; both families take the activations from core/activations.wgsl", () => {
    expect(activations).toMatch(new RegExp(`override\\s+ACTIVATION\\s*:\\s*u32\\s*=\\s*${ACTIVATIONS.none}u\\s*;`));
    expect(activations).toContain(`ACTIVATION == ${ACTIVATIONS.relu}u`);
    expect(activations).toContain(`ACTIVATION == ${ACTIVATIONS.silu}u`);
    for (const table of [KERNEL_FAMILIES.batchnorm, KERNEL_FAMILIES.normalization]) {
      for (const kernel of table.activationKernels) {
        const source = table.source(table.kernels[kernel], 'f32');
        expect(source, kernel).toContain(activations);
        // Declared once, there.
        expect(source.match(/override\s+ACTIVATION\b/g), kernel).toHaveLength(1);
        expect(source.match(/fn\s+activate4?\s*\(/g), kernel).toHaveLength(2);
      }
    }
  });
});

describe("batch norm's and feature scaling's constants and buffers", () => {
  const common = shaderFile('batchnorm/common.wgsl');
  const bn = sources.batchnorm;

  it('each COEF_PLANES entry is the WGSL COEF_<FIELD> plane, in ChannelCoef order', () => {
    for (const [field, plane] of Object.entries(COEF_PLANES)) {
      expect(declaredConstants(common, `COEF_${field.toUpperCase()}`), field).toEqual([plane]);
      expect(Object.keys(BATCHNORM_STRUCTS.ChannelCoef).indexOf(field), field).toBe(plane);
    }
  });

  it("SLOT_ELEMENTS is each tensor storage's SLOT", () => {
    for (const storage of TENSOR_STORAGES) {
      expect(declaredConstants(BATCHNORM_KERNELS.source('batchnorm/normalize', storage), 'SLOT'), storage).toEqual([SLOT_ELEMENTS[storage]]);
    }
  });

  it('sizes: Params is 64 bytes (a multiple of 16 for a uniform), ChannelCoef and ScaleState 32, ScalingOptions 16, NormParams 128', () => {
    expect([BATCHNORM_STRUCTS.Params, BATCHNORM_STRUCTS.ChannelCoef, SCALING_STRUCTS.ScaleState, SCALING_STRUCTS.ScalingOptions, NORM_STRUCTS.NormParams].map(layoutBytes)).toEqual([64, 32, 32, 16, 128]);
    expect(fieldWord('ScaleState', 'count')).toBe(3);
  });

  it('partials have the size the host allocates', () => {
    expect(BN_PARTIAL_BYTES).toBe(16);
    for (const module of ['batchnorm/stats', 'batchnorm/backward']) {
      expect(bn[module][0], module).toMatch(/var<storage, read_write> partials\s*:\s*array<vec4f>/);
    }
    expect(bn['batchnorm/normalize'][0]).toMatch(/var<storage, read> partials\s*:\s*array<vec4f>/);
    expect(sources['feature-scaling']['feature-scaling/scaling'][0]).toMatch(/var<storage, read_write> partials\s*:\s*array<ScalePartial>/);
  });
});

describe("the normalization family's buffers", () => {
  const norm = sources.normalization;

  it('AFFINE_WIDTH and MAX_COLUMNS are the host constants', () => {
    expect(declaredConstants(norm['normalization/backward'][0], 'AFFINE_WIDTH')).toEqual([NORM_AFFINE_WIDTH]);
    expect(declaredConstants(norm['normalization/backward'][0], 'MAX_COLUMNS')).toEqual([NORM_MAX_COLUMNS]);
  });

  it('saved: one vec4f per group; partials: one vec2f per (block, γ entry)', () => {
    expect(NORM_SAVED_BYTES_PER_GROUP).toBe(16);
    expect(NORM_PARTIAL_BYTES).toBe(8);
    for (const module of ['normalization/forward', 'normalization/running', 'normalization/backward']) {
      expect(norm[module][0], module).toMatch(/var<storage, read(_write)?> saved\s*:\s*array<vec4f>/);
    }
    expect(norm['normalization/backward'][0]).toMatch(/var<storage, read_write> partials\s*:\s*array<vec2f>/);
  });
});
