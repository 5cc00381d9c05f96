/**
 * The host–kernel contract (src/core/contract.ts) against the WGSL itself: every module's
 * `@group(0) @binding(n) var… name`, the fields of the structs the host packs or decodes, the
 * shared constants and the ACTIVATION override. Host code binds only through the table.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import {
  ACTIVATIONS,
  BINDINGS,
  BN_PARTIAL_BYTES,
  COEF_PLANES,
  NORM_AFFINE_WIDTH,
  NORM_MAX_COLUMNS,
  NORM_PARTIAL_BYTES,
  NORM_SAVED_BYTES_PER_GROUP,
  NORM_WORKGROUP_SIZE,
  GRAD_COEF_BYTES,
  KERNEL_CONSTANTS,
  SLOT_ELEMENTS,
  STRUCTS,
  structBytes,
  type ShaderName,
} from '../../src/core/contract.js';
import { KERNELS } from '../../src/core/pipelines.js';
import { TENSOR_STORAGES, shaderSource } from '../../src/core/shaders.js';

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

const sources = Object.fromEntries(
  (Object.keys(BINDINGS) as ShaderName[]).map((shader) => [shader, TENSOR_STORAGES.map((storage) => shaderSource(shader, storage))]),
) as Record<ShaderName, string[]>;

describe('binding tables', () => {
  for (const shader of Object.keys(BINDINGS) as ShaderName[]) {
    it(`${shader}: the table names every binding the WGSL declares, with its number, for every tensor storage`, () => {
      for (const source of sources[shader]) expect(declaredBindings(source)).toEqual({ ...BINDINGS[shader] });
    });
  }

  it('a table that disagrees with the WGSL is caught', () => {
    const source = sources.stats[0].replace('@binding(5) var<storage, read_write> partials', '@binding(13) var<storage, read_write> partials');
    expect(declaredBindings(source)).not.toEqual({ ...BINDINGS.stats });
  });

  it('every kernel entry point is a @compute function of its module', () => {
    for (const [kernel, shader] of Object.entries(KERNELS)) {
      expect(sources[shader][0], kernel).toMatch(new RegExp(`@compute\\s+@workgroup_size\\([^)]*\\)\\s*fn\\s+${kernel}\\s*\\(`));
    }
  });

  it('no library module outside the kernels binds by bare number', () => {
    const root = fileURLToPath(new URL('../../src/', import.meta.url));
    const files = (readdirSync(root, { recursive: true }) as string[]).filter((f) => f.endsWith('.ts'));
    const callers = files.filter((f) => /dispatchPipeline\(/.test(readFileSync(root + f, 'utf8')));
    expect(callers.sort()).toEqual(['core/gpu.ts', 'core/pipelines.ts']);
  });
});

describe('struct layouts', () => {
  const wgslType = { u32: 'u32', f32: 'f32', vec4f: 'vec4f' } as const;
  for (const [name, fields] of Object.entries(STRUCTS)) {
    it(`${name}: fields, types and order match the WGSL`, () => {
      const wgsl = name.startsWith('Scal') ? sources.scaling[0] : name === 'NormParams' ? sources.norm_forward[0] : sources.stats[0];
      expect(declaredStruct(wgsl, name)).toEqual(Object.entries(fields).map(([f, t]) => [f, wgslType[t]]));
    });
  }

  it('sizes: Params is 48 bytes (a multiple of 16 for a uniform), ChannelCoef and ScaleState 32, NormParams 128', () => {
    expect([structBytes('Params'), structBytes('ChannelCoef'), structBytes('ScaleState'), structBytes('ScalingOptions'), structBytes('NormParams')]).toEqual([48, 32, 32, 16, 128]);
  });
});

describe('shared constants', () => {
  const common = readFileSync(fileURLToPath(new URL('../../shaders/batchnorm/common.wgsl', import.meta.url)), 'utf8');
  it('each KERNEL_CONSTANTS value is the WGSL const of the same name', () => {
    for (const [name, value] of Object.entries(KERNEL_CONSTANTS)) {
      expect(common, name).toMatch(new RegExp(`const\\s+${name}\\s*:\\s*u32\\s*=\\s*${value}u\\s*;`));
    }
  });

  it('each COEF_PLANES entry is the WGSL COEF_<FIELD> plane, in ChannelCoef order', () => {
    for (const [field, plane] of Object.entries(COEF_PLANES)) {
      expect(common, field).toMatch(new RegExp(`const\\s+COEF_${field.toUpperCase()}\\s*:\\s*u32\\s*=\\s*${plane}u\\s*;`));
      expect(Object.keys(STRUCTS.ChannelCoef).indexOf(field), field).toBe(plane);
    }
  });

  it('SLOT_ELEMENTS is each tensor storage\'s SLOT', () => {
    for (const storage of TENSOR_STORAGES) {
      expect(shaderSource('normalize', storage), storage).toMatch(new RegExp(`const\\s+SLOT\\s*:\\s*u32\\s*=\\s*${SLOT_ELEMENTS[storage]}u\\s*;`));
    }
  });

  it('partials and dx coefficients have the sizes the host allocates', () => {
    expect(BN_PARTIAL_BYTES).toBe(16);
    for (const shader of ['stats', 'backward'] as const) {
      expect(sources[shader][0], shader).toMatch(/var<storage, read_write> partials\s*:\s*array<vec4f>/);
    }
    expect(sources.scaling[0]).toMatch(/var<storage, read_write> partials\s*:\s*array<ScalePartial>/);
    // grad_coef: four planes (k, q, p', shift) of one f32 per channel.
    expect(GRAD_COEF_BYTES).toBe(4 * 4);
    expect(sources.backward[0]).toMatch(/var<storage, read_write> grad_coef\s*:\s*array<vec4f>/);
    expect(sources.backward[0]).toMatch(/for \(var f = 0u; f < 4u; f\+\+\)/);
  });

  it("ACTIVATION's default is 'none', and the family's values are ACTIVATIONS'", () => {
    expect(common).toMatch(new RegExp(`override\\s+ACTIVATION\\s*:\\s*u32\\s*=\\s*${ACTIVATIONS.none}u\\s*;`));
    const norm = sources.norm_forward[0];
    expect(norm).toMatch(new RegExp(`override\\s+ACTIVATION\\s*:\\s*u32\\s*=\\s*${ACTIVATIONS.none}u\\s*;`));
    expect(norm).toContain(`ACTIVATION == ${ACTIVATIONS.relu}u`);
    expect(norm).toContain(`ACTIVATION == ${ACTIVATIONS.silu}u`);
  });

  it("the family's constants and buffer sizes are the WGSL's", () => {
    expect(sources.norm_forward[0]).toMatch(new RegExp(`const\\s+NWG\\s*:\\s*u32\\s*=\\s*${NORM_WORKGROUP_SIZE}u\\s*;`));
    expect(sources.norm_backward[0]).toMatch(new RegExp(`const\\s+AFFINE_WIDTH\\s*:\\s*u32\\s*=\\s*${NORM_AFFINE_WIDTH}u\\s*;`));
    expect(sources.norm_backward[0]).toMatch(new RegExp(`const\\s+MAX_COLUMNS\\s*:\\s*u32\\s*=\\s*${NORM_MAX_COLUMNS}u\\s*;`));
    // saved: one vec4f per group; partials: one vec2f per (block, γ entry).
    expect(NORM_SAVED_BYTES_PER_GROUP).toBe(16);
    expect(NORM_PARTIAL_BYTES).toBe(8);
    for (const shader of ['norm_forward', 'norm_running', 'norm_backward'] as const) {
      expect(sources[shader][0], shader).toMatch(/var<storage, read(_write)?> saved\s*:\s*array<vec4f>/);
    }
    expect(sources.norm_backward[0]).toMatch(/var<storage, read_write> partials\s*:\s*array<vec2f>/);
  });
});
