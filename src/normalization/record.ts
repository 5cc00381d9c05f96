/**
 * The normalization family's record functions on buffers they are given (LayerNorm, RMSNorm,
 * GroupNorm, InstanceNorm). They check nothing; layers and function forms do.
 *
 * Forward: norm_forward (statistics and normalization, one workgroup per group), then for
 * InstanceNorm's training with running statistics norm_update_running. Backward: the plan's
 * backward kernel (dx, and in the same walk the γ/β partial sums: norm_backward_columns, _planes,
 * _channels), or norm_backward and then, where γ or β is learnable, norm_affine_partials_rows;
 * then norm_affine_finalize.
 */
import { dispatchKernel } from './kernels.js';
import { savedBytes } from './options.js';
import { geometrySize, type NormPlan } from './plan.js';
import { exactBindings, type TensorBuffer } from '../core/gpu.js';
import { tensorBytes } from '../core/shaders.js';

/** The caller's buffers of a pass bound to exactly the bytes it uses (see exactBindings). */
function boundExactly<B extends object>(plan: NormPlan, b: B): B {
  const g = plan.geometry;
  const tensor = tensorBytes(plan.storage, geometrySize(g));
  const param = g.paramSize * 4;
  return exactBindings(b, {
    x: tensor,
    y: tensor,
    dy: tensor,
    dx: tensor,
    gamma: param,
    beta: param,
    runningMean: param,
    runningVar: param,
    dgamma: param,
    dbeta: param,
    saved: savedBytes(g),
  });
}

/** The buffers of a family layer's state (whole buffers or ranges). */
export interface NormBuffers {
  /** γ and β (paramSize float32), or absent: γ = 1, β = 0 (then nothing is bound in their place but x). */
  gamma?: TensorBuffer;
  beta?: TensorBuffer;
  /** One GroupCoef (NORM_SAVED_BYTES_PER_GROUP) per statistics group: written by the forward pass, read by its backward pass. */
  saved: TensorBuffer;
  /** InstanceNorm's running statistics (C float32 each). */
  runningMean?: TensorBuffer;
  runningVar?: TensorBuffer;
}

/** Records a forward pass: y from x, the groups' coefficients into `saved`, and (training InstanceNorm with running statistics) the running update. */
export function recordNormForward(
  device: GPUDevice,
  pass: GPUComputePassEncoder,
  plan: NormPlan,
  buffers: NormBuffers & { x: TensorBuffer; y: TensorBuffer },
): void {
  const b = boundExactly(plan, buffers);
  const { params } = plan;
  const running = plan.mode.useRunning || plan.mode.updateRunning;
  dispatchKernel(device, pass, 'norm_forward', { ...plan, cacheSteps: plan.forwardCache }, plan.rowWorkgroups, {
    params,
    x: b.x,
    y: b.y,
    saved: b.saved,
    gamma: b.gamma ?? b.x,
    beta: b.beta ?? b.x,
    // Read only with running statistics (use_running).
    running_mean: running ? b.runningMean : b.x,
    running_var: running ? b.runningVar : b.x,
  });
  if (plan.mode.updateRunning) {
    dispatchKernel(device, pass, 'norm_update_running', plan, 1, {
      params,
      saved: b.saved,
      running_mean: b.runningMean,
      running_var: b.runningVar,
    });
  }
}

/**
 * Records a backward pass: dx, and dγ/dβ into `dgamma`/`dbeta` (those given): partial sums in
 * scratch.partials (plan.partialBytes), then their merge; an absent one's sums go to scratch.sink.
 */
export function recordNormBackward(
  device: GPUDevice,
  pass: GPUComputePassEncoder,
  plan: NormPlan,
  buffers: Omit<NormBuffers, 'runningMean' | 'runningVar'> & { x: TensorBuffer; dy: TensorBuffer; dx: TensorBuffer; dgamma?: TensorBuffer; dbeta?: TensorBuffer },
  scratch: { partials: TensorBuffer; sink: TensorBuffer },
): void {
  const b = boundExactly(plan, buffers);
  const { params } = plan;
  const read = { params, x: b.x, dy: b.dy, saved: b.saved, gamma: b.gamma ?? b.x, beta: b.beta ?? b.x };
  const fused = plan.backwardKernel !== 'norm_backward';
  dispatchKernel(device, pass, plan.backwardKernel, { ...plan, cacheSteps: plan.backwardCache }, plan.backwardWorkgroups, {
    ...read,
    dx: b.dx,
    ...(fused ? { partials: scratch.partials } : {}),
  });
  if (!b.dgamma && !b.dbeta) return;
  if (!fused) dispatchKernel(device, pass, 'norm_affine_partials_rows', plan, plan.affineWorkgroups, { ...read, partials: scratch.partials });
  dispatchKernel(device, pass, 'norm_affine_finalize', plan, plan.finalizeWorkgroups, {
    params,
    partials: scratch.partials,
    dgamma: b.dgamma ?? scratch.sink,
    dbeta: b.dbeta ?? scratch.sink,
  });
}
