/**
 * The feature-scaling ops: record the kernels of feature-scaling/scaling.wgsl into a compute pass, with
 * the geometry and uniform of a scaling plan. The transform and its inverse run through the
 * batch-norm normalize kernel (recordNormalize) with the coefficients made here.
 */
import { dispatchKernel } from './kernels.js';
import type { TensorBuffer } from '../core/gpu.js';
import { recordNormalize } from '../batchnorm/record.js';
import type { ScalingPlan } from './plan.js';

// The scaling kernels read x one element at a time; only normalize has vec4 storages.
const SCALAR = { storage: 'f32' } as const;

/** Accumulates `x`'s per-feature statistics into `state` (ScaleState per feature): fix each new feature's shift, reduce the batch, merge it in. */
export function recordScalingAdapt(
  device: GPUDevice,
  pass: GPUComputePassEncoder,
  plan: ScalingPlan,
  b: { x: TensorBuffer; state: TensorBuffer; partials: TensorBuffer },
): void {
  const { params } = plan;
  dispatchKernel(device, pass, 'scaling_begin', SCALAR, plan.perChannelWorkgroups, { params, state: b.state, x: b.x });
  dispatchKernel(device, pass, 'scaling_partials', SCALAR, plan.partialWorkgroups, { params, state: b.state, x: b.x, partials: b.partials });
  dispatchKernel(device, pass, 'scaling_accumulate', SCALAR, plan.perChannelWorkgroups, { params, state: b.state, partials: b.partials });
}

/** The transform's and the inverse's ChannelCoef per feature from `state`, for the scaling method in `options` (ScalingOptions). */
export function recordScalingCoefficients(
  device: GPUDevice,
  pass: GPUComputePassEncoder,
  plan: ScalingPlan,
  b: { state: TensorBuffer; coef: TensorBuffer; inverseCoef: TensorBuffer; options: TensorBuffer },
): void {
  dispatchKernel(device, pass, 'scaling_coefficients', SCALAR, plan.perChannelWorkgroups, {
    params: plan.params,
    state: b.state,
    coef: b.coef,
    inverse_coef: b.inverseCoef,
    options: b.options,
  });
}

/**
 * y = x scaled (or unscaled, with the inverse coefficients) with the statistics in `state`. The
 * coefficients are refreshed from the state every time, so a transform always sees every adapt
 * recorded before it.
 */
export function recordScaling(
  device: GPUDevice,
  pass: GPUComputePassEncoder,
  plan: ScalingPlan,
  direction: 'transform' | 'inverse',
  b: { x: TensorBuffer; y: TensorBuffer; state: TensorBuffer; coef: TensorBuffer; inverseCoef: TensorBuffer; options: TensorBuffer },
): void {
  recordScalingCoefficients(device, pass, plan, b);
  recordNormalize(device, pass, plan, { x: b.x, y: b.y, coef: direction === 'transform' ? b.coef : b.inverseCoef });
}
