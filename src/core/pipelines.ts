/**
 * Compute pipelines, created once per device and kept in the device's context, and dispatches of
 * a kernel with its buffers bound by name. Each family describes its kernels in a
 * {@link KernelFamily} (src/<family>/kernels.ts); this module knows none of them.
 */
import { deviceContext } from './context.js';
import { dispatchPipeline, type TensorBuffer } from './gpu.js';
import { ACTIVATIONS, type FusedActivation, type StructLayout } from './contract.js';
import type { TensorStorage } from './shaders.js';

/**
 * A family's kernels and its part of the host–kernel contract. `K` names its kernels (WGSL entry
 * points), `M` its shader modules: a module's name is its kernel file's path under shaders/
 * without `.wgsl` ('batchnorm/stats').
 */
export interface KernelFamily<K extends string = string, M extends string = string> {
  /** Every kernel entry point and the shader module it lives in. */
  readonly kernels: Readonly<Record<K, M>>;
  /** Binding numbers by WGSL variable name, per shader module. */
  readonly bindings: Readonly<Record<M, Readonly<Record<string, number>>>>;
  /** The structs the host packs or decodes, each with its fields and a module that declares it. */
  readonly structs: Readonly<Record<string, { readonly module: M; readonly fields: StructLayout }>>;
  /** WGSL constants the host relies on, by name (`const NAME: u32 = ...u;` in the family's modules). */
  readonly constants: Readonly<Record<string, number>>;
  /** The kernels whose code reads ACTIVATION; only their pipelines are specialized for it. */
  readonly activationKernels: ReadonlySet<K>;
  /**
   * The kernels that merge across a workgroup (workgroup_reduce); on a device with `subgroups`
   * their pipelines come from the module's subgroups variant (shaders/core/reduce_subgroups.wgsl).
   */
  readonly subgroupKernels: ReadonlySet<K>;
  /**
   * The family's own pipeline-overridable constants (WGSL `override NAME`), by name: the kernels
   * whose code reads it, and how a pipeline's label shows its value. A pipeline sets one where its
   * target gives it a value other than 0; the labels list them in this order.
   */
  readonly overrides: Readonly<Record<string, { readonly kernels: ReadonlySet<K>; readonly label: (value: number) => string }>>;
  /**
   * The complete WGSL of `module` for tensors stored as `storage`; in its subgroups variant (which
   * begins with `enable subgroups;`) where `subgroups` and the module has one.
   */
  source(module: M, storage: TensorStorage, subgroups?: boolean): string;
}

/** What a pipeline is compiled for: the tensor storage and the variants its kernel has. */
export interface KernelTarget {
  readonly storage: TensorStorage;
  /** The fused activation (kernels in activationKernels). */
  readonly activation?: FusedActivation;
  /** Values of the family's overrides, by name (0 or absent: not set). */
  readonly overrides?: Readonly<Record<string, number>>;
}

/** Whether `kernel`'s pipeline on `device` is the subgroups variant: the device has the feature and the kernel merges across its workgroup. */
export function usesSubgroups<K extends string>(device: GPUDevice, family: KernelFamily<K>, kernel: K): boolean {
  return family.subgroupKernels.has(kernel) && device.features.has('subgroups');
}

/**
 * The compute pipeline for `kernel` of `family` compiled for `target`: the storage and, for the
 * kernels that have them, the activation and the family's overrides as pipeline constants; the
 * subgroups variant where {@link usesSubgroups}; created on first use. Its label names the kernel,
 * the storage and each variant: `webgpu-batchnorm <kernel> (<storage>[, <activation>][, subgroups][, <override>…])`.
 */
export function kernelPipeline<K extends string, M extends string>(device: GPUDevice, family: KernelFamily<K, M>, kernel: K, target: KernelTarget): GPUComputePipeline {
  const { storage, activation = 'none', overrides = {} } = target;
  const module = family.kernels[kernel];
  const subgroups = usesSubgroups(device, family, kernel);
  const constants: Record<string, number> = {};
  const variant: string[] = [storage];
  if (activation !== 'none' && family.activationKernels.has(kernel)) {
    constants.ACTIVATION = ACTIVATIONS[activation];
    variant.push(activation);
  }
  if (subgroups) variant.push('subgroups');
  for (const [name, { kernels, label }] of Object.entries(family.overrides)) {
    const value = overrides[name] ?? 0;
    if (value === 0 || !kernels.has(kernel)) continue;
    constants[name] = value;
    variant.push(label(value));
  }
  return cachedPipeline(
    device,
    `webgpu-batchnorm ${module}.wgsl (${storage}${subgroups ? ', subgroups' : ''})`,
    () => family.source(module, storage, subgroups),
    kernel,
    `webgpu-batchnorm ${kernel} (${variant.join(', ')})`,
    Object.keys(constants).length > 0 ? constants : undefined,
  );
}

/**
 * Records one dispatch of `kernel` of `family` (its pipeline compiled for `target`) over
 * `workgroups` workgroups, `buffers` bound by the WGSL names of its module's bindings.
 */
export function dispatchFamilyKernel<K extends string, M extends string>(
  device: GPUDevice,
  pass: GPUComputePassEncoder,
  family: KernelFamily<K, M>,
  kernel: K,
  target: KernelTarget,
  workgroups: number,
  buffers: Readonly<Record<string, TensorBuffer | undefined>>,
): void {
  const numbers = family.bindings[family.kernels[kernel]];
  const bound: Record<number, TensorBuffer> = {};
  for (const [name, buffer] of Object.entries(buffers)) {
    if (buffer === undefined) continue;
    if (!(name in numbers)) throw new Error(`kernel ${kernel} has no binding named ${name}`);
    bound[numbers[name]] = buffer;
  }
  dispatchPipeline(device, pass, kernelPipeline(device, family, kernel, target), workgroups, bound);
}

/**
 * The compute pipeline for `entryPoint` of the shader module named `moduleLabel` (whose WGSL
 * `code()` returns), with pipeline-overridable `constants`, created on first use and kept for
 * the device's lifetime under `label` (which must therefore name the constants).
 */
export function cachedPipeline(
  device: GPUDevice,
  moduleLabel: string,
  code: () => string,
  entryPoint: string,
  label: string,
  constants?: Record<string, number>,
): GPUComputePipeline {
  const context = deviceContext(device);
  let pipeline = context.pipelines.get(label);
  if (!pipeline) {
    let module = context.modules.get(moduleLabel);
    if (!module) {
      module = device.createShaderModule({ label: moduleLabel, code: code() });
      context.modules.set(moduleLabel, module);
    }
    pipeline = device.createComputePipeline({ label, layout: 'auto', compute: constants ? { module, entryPoint, constants } : { module, entryPoint } });
    context.pipelines.set(label, pipeline);
  }
  return pipeline;
}
