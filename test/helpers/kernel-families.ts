/**
 * Every family's kernels (src/<family>/kernels.ts), by family folder: the tests of the kernel
 * layer go through all of them, so a family's contract is checked as soon as it is listed here.
 */
import { BATCHNORM_KERNELS } from '../../src/batchnorm/kernels.js';
import { FEATURE_SCALING_KERNELS } from '../../src/feature-scaling/kernels.js';
import { NORMALIZATION_KERNELS } from '../../src/normalization/kernels.js';
import type { KernelFamily } from '../../src/core/pipelines.js';

/** Each family's kernel table, by the folder its WGSL lives in (shaders/<family>/). */
export const KERNEL_FAMILIES: Readonly<Record<string, KernelFamily>> = {
  batchnorm: BATCHNORM_KERNELS,
  normalization: NORMALIZATION_KERNELS,
  'feature-scaling': FEATURE_SCALING_KERNELS,
};

/** Every (family, kernel, module) of every family. */
export const ALL_KERNELS: readonly { family: string; table: KernelFamily; kernel: string; module: string }[] = Object.entries(KERNEL_FAMILIES).flatMap(([family, table]) =>
  Object.entries(table.kernels).map(([kernel, module]) => ({ family, table, kernel, module })),
);

/** Every kernel, of any family, whose pipeline on a device with `subgroups` is the subgroups variant. */
export const SUBGROUP_KERNELS: ReadonlySet<string> = new Set(Object.values(KERNEL_FAMILIES).flatMap((table) => [...table.subgroupKernels]));
