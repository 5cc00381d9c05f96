/**
 * The feature-scaling ops: record the kernels of feature-scaling/scaling.wgsl into a compute pass, with
 * the geometry and uniform of a scaling plan. The transform and its inverse walk the tensor as
 * batch norm's normalize does (the walks of batchnorm/common.wgsl), on batch norm's elementwise grid.
 */
import { dispatchKernel } from './kernels.js';
import { SCALING_STATE_BYTES_PER_FEATURE } from './options.js';
import { exactBindings, type TensorBuffer } from '../core/gpu.js';
import { viewSize } from '../core/layout.js';
import type { ScalingPlan } from './plan.js';

/** The caller's buffers of a pass bound to exactly the bytes it uses (see exactBindings): float32 tensors, one ScaleState per feature. */
function boundExactly<B extends object>(plan: ScalingPlan, b: B): B {
  const tensor = viewSize(plan.view) * 4;
  return exactBindings(b, { x: tensor, y: tensor, state: plan.view.channels * SCALING_STATE_BYTES_PER_FEATURE });
}

// The scaling kernels read x one element at a time; only normalize has vec4 storages.
const SCALAR = { storage: 'f32' } as const;

/** Accumulates `x`'s per-feature statistics into `state` (ScaleState per feature): fix each new feature's shift, reduce the batch, merge it in. */
export function recordScalingAdapt(
  device: GPUDevice,
  pass: GPUComputePassEncoder,
  plan: ScalingPlan,
  buffers: { x: TensorBuffer; state: TensorBuffer; partials: TensorBuffer },
): void {
  const b = boundExactly(plan, buffers);
  const { params } = plan;
  dispatchKernel(device, pass, 'scaling_begin', SCALAR, plan.perChannelWorkgroups, { params, state: b.state, x: b.x });
  dispatchKernel(device, pass, 'scaling_partials', SCALAR, plan.partialWorkgroups, { params, state: b.state, x: b.x, partials: b.partials });
  dispatchKernel(device, pass, 'scaling_accumulate', SCALAR, plan.perChannelWorkgroups, { params, state: b.state, partials: b.partials });
}

/**
 * y = x scaled (or unscaled) with the statistics in `state`, in one dispatch: each thread makes
 * its features' coefficients from the state, so a transform always sees every adapt recorded
 * before it.
 */
export function recordScaling(
  device: GPUDevice,
  pass: GPUComputePassEncoder,
  plan: ScalingPlan,
  direction: 'transform' | 'inverse',
  buffers: { x: TensorBuffer; y: TensorBuffer; state: TensorBuffer; options: TensorBuffer },
): void {
  const b = boundExactly(plan, buffers);
  const kernel = `scale_${direction}${plan.channelsLastVec4 ? '_channels_last_vec4' : ''}` as const;
  dispatchKernel(device, pass, kernel, plan, plan.elementwiseWorkgroups, { params: plan.params, x: b.x, y: b.y, state: b.state, options: b.options });
}
