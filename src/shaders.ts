/**
 * WGSL sources. Each kernel file is prefixed with common.wgsl (the Params uniform and the
 * [outer, C, inner] indexing helpers); `?raw` makes vite and vitest inline the text.
 */
import common from '../shaders/common.wgsl?raw';
import stats from '../shaders/bn_stats.wgsl?raw';
import normalize from '../shaders/bn_normalize.wgsl?raw';
import backward from '../shaders/bn_backward.wgsl?raw';

/** Shader modules by name; each is complete WGSL. */
export const SHADERS = {
  stats: `${common}\n${stats}`,
  normalize: `${common}\n${normalize}`,
  backward: `${common}\n${backward}`,
} as const;

/** Name of a shader module in {@link SHADERS}. */
export type ShaderName = keyof typeof SHADERS;

/** Threads per workgroup in every kernel (WG in common.wgsl). */
export const WORKGROUP_SIZE = 256;
/** Elements of a channel reduced by one partial workgroup (CHUNK in common.wgsl). */
export const REDUCTION_CHUNK = 2048;
