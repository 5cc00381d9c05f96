/**
 * The batch-norm ops: plain functions that record the kernels of one step into a compute pass,
 * on buffers they are given, with the geometry and uniform of a plan (plan.ts). They check
 * nothing and own nothing; layers and the function forms validate first and compose them.
 *
 * A training forward pass is partial statistics → normalize (which merges them; a finalize
 * between under nonFiniteBatches 'skip'), inference one normalize from the running statistics; a
 * backward pass is partial gradient sums → input gradient (which merges them).
 */
import { dispatchKernel } from './kernels.js';
import { STATE_BUFFERS, stateBufferBytes } from './options.js';
import { exactBindings, type TensorBuffer } from '../core/gpu.js';
import { viewSize } from '../core/layout.js';
import { tensorBytes } from '../core/shaders.js';
import type { BatchNormMode, BatchNormPlan } from './plan.js';

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

/** The buffers the forward and backward passes read and write besides the tensors: the state and two intermediates. */
export interface BatchNormStateBuffers extends BatchNormRecordBuffers {
  /** One u32: set while a training pass has seen non-finite statistics. */
  nonFinite: TensorBuffer;
  /** Scratch of at least plan.partialBytes for the partial reductions. */
  partials: TensorBuffer;
}

/** Per-channel partial (mean, M2, n) of `x`, this batch's weight in the running update and each channel's (γ, β) into `partials`; clears the non-finite flag. */
function recordPartialStats(
  device: GPUDevice,
  pass: GPUComputePassEncoder,
  plan: BatchNormPlan,
  b: Pick<BatchNormStateBuffers, 'gamma' | 'beta' | 'numBatchesTracked' | 'nonFinite' | 'partials'> & { x: TensorBuffer },
): void {
  const kernel = plan.channelsLastVec4 ? 'partial_stats_channels_last_vec4' : plan.channelsLast ? 'partial_stats_channels_last' : 'partial_stats';
  dispatchKernel(device, pass, kernel, plan, plan.partialWorkgroups, {
    params: plan.params,
    x: b.x,
    partials: b.partials,
    gamma: b.gamma,
    beta: b.beta,
    batches_tracked: b.numBatchesTracked,
    non_finite: b.nonFinite,
  });
}

/**
 * A training forward pass (or one normalizing with the batch statistics): partial statistics,
 * then one dispatch that normalizes and writes `saved`, the running statistics and
 * numBatchesTracked -- merging each channel's partials in every workgroup that needs them. Under
 * nonFiniteBatches 'skip' with running statistics, whether the batch counts is a decision over
 * every channel's merged statistics, so a finalize dispatch between makes it (three in all).
 */
function recordBatchForward(
  device: GPUDevice,
  pass: GPUComputePassEncoder,
  plan: BatchNormPlan,
  b: BatchNormStateBuffers & { x: TensorBuffer; y: TensorBuffer },
): void {
  const { params } = plan;
  recordPartialStats(device, pass, plan, b);
  if (plan.skipsNonFinite) {
    dispatchKernel(device, pass, 'finalize_stats', plan, plan.view.channels, {
      params,
      x: b.x,
      partials: b.partials,
      gamma: b.gamma,
      beta: b.beta,
      coef: b.saved,
      non_finite: b.nonFinite,
    });
  }
  const suffix = plan.channelsLastVec4 ? '_channels_last_vec4' : '';
  const io = { params, x: b.x, y: b.y, coef: b.saved, running_mean_update: b.runningMean, running_var_update: b.runningVar };
  if (plan.skipsNonFinite) {
    dispatchKernel(device, pass, `normalize_update${suffix}`, plan, plan.elementwiseWorkgroups, {
      ...io,
      batches_tracked: b.numBatchesTracked,
      non_finite: b.nonFinite,
    });
  } else {
    dispatchKernel(device, pass, `normalize_batch${suffix}`, plan, plan.mergeWorkgroups, { ...io, partials: b.partials });
  }
}

/** The caller's buffers of a pass bound to exactly the bytes it uses (see exactBindings). */
function boundExactly<B extends object>(plan: BatchNormPlan, b: B): B {
  const tensor = tensorBytes(plan.storage, viewSize(plan.view));
  const state = STATE_BUFFERS.map((name) => [name, stateBufferBytes(name, plan.view.channels)[0]]);
  return exactBindings(b, { x: tensor, y: tensor, dy: tensor, dx: tensor, ...Object.fromEntries(state) });
}

/** Records a whole forward pass of `plan` in `mode` into `pass`. */
export function recordForward(
  device: GPUDevice,
  pass: GPUComputePassEncoder,
  plan: BatchNormPlan,
  mode: BatchNormMode,
  buffers: BatchNormStateBuffers & { x: TensorBuffer; y: TensorBuffer },
): void {
  const b = boundExactly(plan, buffers);
  if (mode.batchStats) recordBatchForward(device, pass, plan, b);
  else recordNormalizeFromRunning(device, pass, plan, b);
}

/**
 * Inference in one dispatch: y normalized with coefficients each thread takes from the running
 * statistics, which one workgroup also writes to `saved` (for a backward pass and getStats).
 */
function recordNormalizeFromRunning(
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

/**
 * Records a whole backward pass of `plan` into `pass`: partial gradient sums, then dx, where each
 * workgroup sums the partials of its channels itself and one per channel writes dL/dγ and dL/dβ.
 */
export function recordBackward(
  device: GPUDevice,
  pass: GPUComputePassEncoder,
  plan: BatchNormPlan,
  buffers: BatchNormStateBuffers & { x: TensorBuffer; dy: TensorBuffer; dx: TensorBuffer },
): void {
  const b = boundExactly(plan, buffers);
  const { params } = plan;
  const partialKernel = plan.channelsLastVec4
    ? 'partial_grad_sums_channels_last_vec4'
    : plan.channelsLast
      ? 'partial_grad_sums_channels_last'
      : 'partial_grad_sums';
  dispatchKernel(device, pass, partialKernel, plan, plan.partialWorkgroups, { params, x: b.x, dy: b.dy, coef: b.saved, partials: b.partials });
  dispatchKernel(device, pass, plan.channelsLastVec4 ? 'input_grad_channels_last_vec4' : 'input_grad', plan, plan.mergeWorkgroups, {
    params,
    x: b.x,
    dy: b.dy,
    dx: b.dx,
    coef: b.saved,
    partials: b.partials,
    gamma: b.gamma,
    dgamma: b.gammaGrad,
    dbeta: b.betaGrad,
  });
}
