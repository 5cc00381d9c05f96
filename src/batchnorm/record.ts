/**
 * The batch-norm ops: plain functions that record the kernels of one step into a compute pass,
 * on buffers they are given, with the geometry and uniform of a plan (plan.ts). They check
 * nothing and own nothing; layers and the function forms validate first and compose them.
 *
 * A forward pass is batch statistics → (running update) → normalize, or coefficients from the
 * running statistics → normalize; a backward pass is gradient reductions → input gradient.
 */
import { dispatchKernel } from './kernels.js';
import type { TensorBuffer } from '../core/gpu.js';
import type { BatchNormMode, BatchNormPlan, ElementwisePlan } from './plan.js';

/** Every buffer of one batch-norm layer's state (whole buffers or ranges): what a caller owns in the function forms. */
export interface BatchNormRecordBuffers {
  /** γ, β, running mean and running variance: numFeatures float32 each. */
  gamma: TensorBuffer;
  beta: TensorBuffer;
  runningMean: TensorBuffer;
  runningVar: TensorBuffer;
  /** One u32. */
  numBatchesTracked: TensorBuffer;
  /** Receive dL/dγ and dL/dβ (numFeatures float32 each). */
  gammaGrad: TensorBuffer;
  betaGrad: TensorBuffer;
  /** numFeatures ChannelCoef (CHANNEL_COEF_BYTES each): written by the forward pass, read by its backward pass. */
  saved: TensorBuffer;
}

/** The buffers the forward and backward passes read and write besides the tensors: the state and three intermediates. */
export interface BatchNormStateBuffers extends BatchNormRecordBuffers {
  /** C vec4f: the backward pass's per-channel coefficients of dx. */
  gradCoef: TensorBuffer;
  /** One u32: set while a training pass has seen non-finite statistics. */
  nonFinite: TensorBuffer;
  /** Scratch of at least plan.partialBytes for the partial reductions. */
  partials: TensorBuffer;
}

/** Per-channel mean and biased variance of `x` into `saved` (and the non-finite flag, and each channel's factor for the running update): partial reductions, then their merge. */
export function recordBatchStats(
  device: GPUDevice,
  pass: GPUComputePassEncoder,
  plan: BatchNormPlan,
  b: Pick<BatchNormStateBuffers, 'gamma' | 'beta' | 'numBatchesTracked' | 'saved' | 'nonFinite' | 'partials'> & { x: TensorBuffer },
): void {
  const { params } = plan;
  const partialKernel = plan.channelsLastVec4 ? 'partial_stats_channels_last_vec4' : plan.channelsLast ? 'partial_stats_channels_last' : 'partial_stats';
  dispatchKernel(device, pass, partialKernel, plan, plan.partialWorkgroups, {
    params,
    x: b.x,
    partials: b.partials,
    non_finite: b.nonFinite,
  });
  dispatchKernel(device, pass, 'finalize_stats', plan, plan.view.channels, {
    params,
    x: b.x,
    partials: b.partials,
    gamma: b.gamma,
    beta: b.beta,
    batches_tracked: b.numBatchesTracked,
    coef: b.saved,
    non_finite: b.nonFinite,
  });
}

/** The running statistics and numBatchesTracked from the batch statistics and factor in `saved`, unless the batch was flagged non-finite and the plan skips such batches. */
export function recordRunningUpdate(
  device: GPUDevice,
  pass: GPUComputePassEncoder,
  plan: BatchNormPlan,
  b: Pick<BatchNormStateBuffers, 'runningMean' | 'runningVar' | 'numBatchesTracked' | 'saved' | 'nonFinite'>,
): void {
  const { params } = plan;
  dispatchKernel(device, pass, 'update_running', plan, plan.perChannelWorkgroups, {
    params,
    running_mean: b.runningMean,
    running_var: b.runningVar,
    batches_tracked: b.numBatchesTracked,
    coef: b.saved,
    non_finite: b.nonFinite,
  });
}

/** y = ((x − shift) − mean) · scale + β per channel, from the coefficients in `coef` (then the fused activation). */
export function recordNormalize(
  device: GPUDevice,
  pass: GPUComputePassEncoder,
  plan: ElementwisePlan,
  b: { x: TensorBuffer; y: TensorBuffer; coef: TensorBuffer },
): void {
  const kernel = plan.channelsLastVec4 ? 'normalize_channels_last_vec4' : 'normalize';
  dispatchKernel(device, pass, kernel, plan, plan.elementwiseWorkgroups, { params: plan.params, x: b.x, y: b.y, coef_in: b.coef });
}

/** dL/dγ and dL/dβ into the gradient buffers, and the per-channel coefficients of dx into `gradCoef`. */
export function recordGradReductions(
  device: GPUDevice,
  pass: GPUComputePassEncoder,
  plan: BatchNormPlan,
  b: Pick<BatchNormStateBuffers, 'saved' | 'partials' | 'gamma' | 'gammaGrad' | 'betaGrad' | 'gradCoef'> & { x: TensorBuffer; dy: TensorBuffer },
): void {
  const { params } = plan;
  const partialKernel = plan.channelsLastVec4
    ? 'partial_grad_sums_channels_last_vec4'
    : plan.channelsLast
      ? 'partial_grad_sums_channels_last'
      : 'partial_grad_sums';
  dispatchKernel(device, pass, partialKernel, plan, plan.partialWorkgroups, {
    params,
    x: b.x,
    dy: b.dy,
    coef: b.saved,
    partials: b.partials,
  });
  dispatchKernel(device, pass, 'finalize_grads', plan, plan.view.channels, {
    params,
    coef: b.saved,
    partials: b.partials,
    gamma: b.gamma,
    dgamma: b.gammaGrad,
    dbeta: b.betaGrad,
    grad_coef: b.gradCoef,
  });
}

/** dx = k·dy − (x − shift)·q − p' per channel, from the coefficients of recordGradReductions. */
export function recordInputGrad(
  device: GPUDevice,
  pass: GPUComputePassEncoder,
  plan: BatchNormPlan,
  b: Pick<BatchNormStateBuffers, 'saved' | 'gradCoef'> & { x: TensorBuffer; dy: TensorBuffer; dx: TensorBuffer },
): void {
  dispatchKernel(device, pass, plan.channelsLastVec4 ? 'input_grad_channels_last_vec4' : 'input_grad', plan, plan.elementwiseWorkgroups, {
    params: plan.params,
    x: b.x,
    dy: b.dy,
    dx: b.dx,
    coef: b.saved,
    grad_coef_in: b.gradCoef,
  });
}

/** Records a whole forward pass of `plan` in `mode` into `pass`. */
export function recordForward(
  device: GPUDevice,
  pass: GPUComputePassEncoder,
  plan: BatchNormPlan,
  mode: BatchNormMode,
  b: BatchNormStateBuffers & { x: TensorBuffer; y: TensorBuffer },
): void {
  if (!mode.batchStats) {
    recordNormalizeFromRunning(device, pass, plan, b);
    return;
  }
  recordBatchStats(device, pass, plan, b);
  if (mode.updateRunning) recordRunningUpdate(device, pass, plan, b);
  recordNormalize(device, pass, plan, { x: b.x, y: b.y, coef: b.saved });
}

/**
 * Inference in one dispatch: y normalized with coefficients each thread takes from the running
 * statistics, which one workgroup also writes to `saved` (for a backward pass and getStats).
 */
export function recordNormalizeFromRunning(
  device: GPUDevice,
  pass: GPUComputePassEncoder,
  plan: BatchNormPlan,
  b: Pick<BatchNormStateBuffers, 'runningMean' | 'runningVar' | 'gamma' | 'beta' | 'saved'> & { x: TensorBuffer; y: TensorBuffer },
): void {
  const kernel = plan.channelsLastVec4 ? 'normalize_running_channels_last_vec4' : 'normalize_running';
  dispatchKernel(device, pass, kernel, plan, plan.elementwiseWorkgroups, {
    params: plan.params,
    running_mean: b.runningMean,
    running_var: b.runningVar,
    gamma: b.gamma,
    beta: b.beta,
    coef: b.saved,
    x: b.x,
    y: b.y,
  });
}

/** Records a whole backward pass of `plan` into `pass`. */
export function recordBackward(
  device: GPUDevice,
  pass: GPUComputePassEncoder,
  plan: BatchNormPlan,
  b: BatchNormStateBuffers & { x: TensorBuffer; dy: TensorBuffer; dx: TensorBuffer },
): void {
  recordGradReductions(device, pass, plan, b);
  recordInputGrad(device, pass, plan, b);
}
