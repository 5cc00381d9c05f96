/**
 * Every kernel of every tensor storage compiles and validates, including native f16, which the
 * SwiftShader adapter lacks: Dawn's null backend offers shader-f16 and runs the full WGSL
 * validation and pipeline creation, though it executes nothing. The subgroups variants of the
 * merging kernels (each family's subgroupKernels) compile on a null-backend device with `subgroups` too, native
 * f16 included; the device without it gets the workgroup-memory tree.
 */
import { describe, it, expect, beforeAll } from 'vitest';
import { kernelPipeline } from '../../src/core/pipelines.js';
import { TENSOR_STORAGES } from '../../src/core/shaders.js';
import { ALL_KERNELS, KERNEL_FAMILIES } from '../helpers/kernel-families.js';

// Kept referenced for the whole process (Dawn crashes if it is collected with work in flight).
let nullGpu: GPU;
let device: GPUDevice;
let subgroupDevice: GPUDevice;

beforeAll(async () => {
  const webgpu = await import('webgpu');
  Object.assign(globalThis, webgpu.globals);
  nullGpu = webgpu.create(['backend=null']) as GPU;
  const adapter = await nullGpu.requestAdapter();
  if (!adapter) throw new Error("Dawn's null backend gave no adapter");
  expect(adapter.features.has('shader-f16'), "the null backend's adapter offers shader-f16").toBe(true);
  device = await adapter.requestDevice({ requiredFeatures: ['shader-f16'], label: 'null-backend device' });
  expect(adapter.features.has('subgroups'), "the null backend's adapter offers subgroups").toBe(true);
  const second = await nullGpu.requestAdapter();
  if (!second) throw new Error("Dawn's null backend gave no second adapter");
  subgroupDevice = await second.requestDevice({ requiredFeatures: ['shader-f16', 'subgroups'], label: 'null-backend device with subgroups' });
});

const kernels = ALL_KERNELS.map((k) => [k.kernel, k] as const);
const subgroupKernels = ALL_KERNELS.filter((k) => k.table.subgroupKernels.has(k.kernel)).map((k) => [k.kernel, k] as const);

describe.each(TENSOR_STORAGES)('tensor storage %s', (storage) => {
  it.each(kernels)('%s compiles and its pipeline validates', async (kernel, { table, module: name }) => {
    device.pushErrorScope('validation');
    const pipeline = kernelPipeline(device, table, kernel, { storage });
    const module = device.createShaderModule({ code: table.source(name, storage) });
    const messages = (await module.getCompilationInfo()).messages.filter((m) => m.type !== 'info');
    const error = await device.popErrorScope();
    expect(messages.map((m) => `${m.lineNum}:${m.linePos} ${m.message}`)).toEqual([]);
    expect(error?.message).toBeUndefined();
    expect(pipeline.label).toBe(`webgpu-batchnorm ${kernel} (${storage})`);
  });
});

describe.each(TENSOR_STORAGES)('tensor storage %s, subgroups variant', (storage) => {
  it.each(subgroupKernels)('%s compiles and its pipeline validates', async (kernel, { table, module: name }) => {
    subgroupDevice.pushErrorScope('validation');
    const pipeline = kernelPipeline(subgroupDevice, table, kernel, { storage });
    const source = table.source(name, storage, true);
    expect(source.startsWith('enable subgroups;')).toBe(true);
    const module = subgroupDevice.createShaderModule({ code: source });
    const messages = (await module.getCompilationInfo()).messages.filter((m) => m.type !== 'info');
    const error = await subgroupDevice.popErrorScope();
    expect(messages.map((m) => `${m.lineNum}:${m.linePos} ${m.message}`)).toEqual([]);
    expect(error?.message).toBeUndefined();
    expect(pipeline.label).toBe(`webgpu-batchnorm ${kernel} (${storage}, subgroups)`);
  });
});

it('only the subgroups variant enables subgroups', () => {
  for (const storage of TENSOR_STORAGES) {
    for (const table of Object.values(KERNEL_FAMILIES)) {
      for (const module of Object.keys(table.bindings)) expect(table.source(module, storage), `${module} (${storage})`).not.toMatch(/enable subgroups|subgroup[A-Z]/);
    }
  }
});

it('the null backend does reject invalid f16 WGSL (the checks above can fail)', async () => {
  device.pushErrorScope('validation');
  const module = device.createShaderModule({
    code: 'enable f16;\n@group(0) @binding(0) var<storage, read_write> v: array<f16>;\n@compute @workgroup_size(1) fn main() { v[0] = 1.5f + v[1]; }',
  });
  device.createComputePipeline({ layout: 'auto', compute: { module } });
  const messages = (await module.getCompilationInfo()).messages.filter((m) => m.type === 'error');
  const error = await device.popErrorScope();
  expect(messages.length).toBeGreaterThan(0);
  expect(error).not.toBeNull();
});
