/**
 * BatchNorm options in PyTorch's and Keras's terms. The layer follows PyTorch's semantics; the
 * Keras mapping converts:
 *
 * | | PyTorch `nn.BatchNorm*d` | Keras `BatchNormalization` | BatchNorm option |
 * | --- | --- | --- | --- |
 * | ε | `eps=1e-5` | `epsilon=1e-3` | `eps` |
 * | momentum | `0.1`, weight of the new batch | `0.99`, weight of the old value | `momentum` = PyTorch's = 1 − Keras's |
 * | channel axis | 1 (channels first) | `axis=-1` (channels last) | `layout` |
 * | learnable γ, β | `affine` (both) | `scale` (γ), `center` (β) | `scale`, `center` (`affine` sets both) |
 * | running variance takes | unbiased batch variance | biased batch variance | `runningVariance` |
 * | batch count | `num_batches_tracked` | none | `numBatchesTracked` |
 */
import type { BatchNormOptions } from '../layers/batchnorm.js';
import { layoutFor, type Layout } from '../tensor/layout.js';

/** PyTorch's `nn.BatchNorm1d/2d/3d(num_features, eps, momentum, affine, track_running_stats)`. */
export interface PyTorchBatchNormArgs {
  /** num_features. */
  numFeatures: number;
  /** The input's layout: 'NC' or 'NCL' (BatchNorm1d), 'NCHW' (2d), 'NCDHW' (3d). */
  layout: Layout;
  eps?: number;
  /** Weight of the new batch; null: cumulative moving average. Default 0.1. */
  momentum?: number | null;
  affine?: boolean;
  trackRunningStats?: boolean;
}

/** Options for a layer that behaves as PyTorch's BatchNorm with these arguments. */
export function pytorchOptions(args: PyTorchBatchNormArgs): BatchNormOptions {
  const { numFeatures, layout, eps = 1e-5, momentum = 0.1, affine = true, trackRunningStats = true } = args;
  return { numFeatures, layout, eps, momentum, affine, trackRunningStats, runningVariance: 'unbiased' };
}

/** Keras's `BatchNormalization(axis, momentum, epsilon, center, scale)` and the input it is built on. */
export interface KerasBatchNormArgs {
  /** Size of the normalized axis (the input's shape at `axis`). */
  numFeatures: number;
  /** Rank of the input, batch axis included (2 for Dense outputs, 4 for Conv2D). */
  rank: number;
  /** The normalized axis; negative counts from the end. Default -1 (channels last). */
  axis?: number;
  /** Weight of the old moving value. Default 0.99. */
  momentum?: number;
  epsilon?: number;
  center?: boolean;
  scale?: boolean;
}

/** Options for a layer that behaves as Keras's BatchNormalization with these arguments. */
export function kerasOptions(args: KerasBatchNormArgs): BatchNormOptions {
  const { numFeatures, rank, axis = -1, momentum = 0.99, epsilon = 1e-3, center = true, scale = true } = args;
  const layout = layoutFor(rank, axis);
  if (!layout) {
    throw new RangeError(`axis ${axis} of a rank-${rank} input has no supported layout: use axis 1 or -1 on inputs of rank 2 to 5`);
  }
  if (typeof momentum !== 'number' || !(momentum >= 0 && momentum <= 1)) {
    throw new RangeError(`momentum must be a number in [0, 1] (Keras's weight of the old value); got ${String(momentum)}`);
  }
  return { numFeatures, layout, eps: epsilon, momentum: 1 - momentum, center, scale, runningVariance: 'biased' };
}
