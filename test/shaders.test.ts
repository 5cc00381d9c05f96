/**
 * Every kernel of every tensor storage compiles and validates, including native f16, which the
 * SwiftShader adapter lacks: Dawn's null backend offers shader-f16 and runs the full WGSL
 * validation and pipeline creation, though it executes nothing.
 */
import { describe, it, expect, beforeAll } from 'vitest';
import { KERNELS, getPipeline, type KernelName } from '../src/kernels/pipelines.js';
import { TENSOR_STORAGES, shaderSource } from '../src/kernels/shaders.js';

// Kept referenced for the whole process (Dawn crashes if it is collected with work in flight).
let nullGpu: GPU;
let device: GPUDevice;

beforeAll(async () => {
  const webgpu = await import('webgpu');
  Object.assign(globalThis, webgpu.globals);
  nullGpu = webgpu.create(['backend=null']) as GPU;
  const adapter = await nullGpu.requestAdapter();
  if (!adapter) throw new Error("Dawn's null backend gave no adapter");
  expect(adapter.features.has('shader-f16'), "the null backend's adapter offers shader-f16").toBe(true);
  device = await adapter.requestDevice({ requiredFeatures: ['shader-f16'], label: 'null-backend device' });
});

describe.each(TENSOR_STORAGES)('tensor storage %s', (storage) => {
  it.each(Object.keys(KERNELS) as KernelName[])('%s compiles and its pipeline validates', async (kernel) => {
    device.pushErrorScope('validation');
    const pipeline = getPipeline(device, kernel, storage);
    const module = device.createShaderModule({ code: shaderSource(KERNELS[kernel], storage) });
    const messages = (await module.getCompilationInfo()).messages.filter((m) => m.type !== 'info');
    const error = await device.popErrorScope();
    expect(messages.map((m) => `${m.lineNum}:${m.linePos} ${m.message}`)).toEqual([]);
    expect(error?.message).toBeUndefined();
    expect(pipeline.label).toBe(`webgpu-batchnorm ${kernel} (${storage})`);
  });
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
