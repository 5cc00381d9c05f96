/**
 * Batch-norm folding for inference: a BN layer after a dense or convolution layer, using its
 * population statistics, is an affine map per output channel, so it can be merged into that
 * layer's weights and bias (the notes: "β subsumes the role of the bias"):
 *
 *   s_c = γ_c / sqrt(runningVar_c + eps),  w'_c = s_c · w_c,  b'_c = s_c · (b_c − runningMean_c) + β_c
 */
import { checkKnownKeys, checkObject, describeValue } from '../core/validate.js';

/** The statistics and parameters of the BN layer to fold (as {@link BatchNorm.getState} returns them, with its eps). */
export interface FoldableBatchNorm {
  gamma: ArrayLike<number>;
  beta: ArrayLike<number>;
  runningMean: ArrayLike<number>;
  runningVar: ArrayLike<number>;
  eps: number;
}

/** The layer before the BN: its weights and (optional) bias over `outChannels` output channels. */
export interface FoldableLayer {
  weight: ArrayLike<number>;
  /** Absent for a layer without bias (it is taken as 0). */
  bias?: ArrayLike<number> | null;
  /**
   * Where the output-channel axis of `weight` is: 'first' for PyTorch (Linear [out, in],
   * Conv [Co, Ci, kH, kW]) and this library's convolutions, 'last' for Keras (Dense [in, out],
   * Conv2D [kH, kW, Ci, Co]). Default 'first'.
   */
  outAxis?: 'first' | 'last';
}

/** The weights and bias of the layer with the BN folded in (float64; round to float32 to upload). */
export function foldBatchNorm(layer: FoldableLayer, bn: FoldableBatchNorm): { weight: Float64Array; bias: Float64Array } {
  checkObject('layer', layer, 'an object { weight, bias?, outAxis? }');
  checkKnownKeys('layer', layer, { names: ['weight', 'bias', 'outAxis'], what: 'a field of the layer to fold into', hints: { axis: 'outAxis' } });
  checkObject('bn', bn, "an object { gamma, beta, runningMean, runningVar, eps }, such as { ...(await bn.getState()), eps: bn.eps }");
  // getState()'s numBatchesTracked comes along in { ...(await bn.getState()), eps } and is not needed.
  checkKnownKeys('bn', bn, {
    names: ['gamma', 'beta', 'runningMean', 'runningVar', 'eps', 'numBatchesTracked'],
    what: 'a field of the BN layer to fold',
    hints: { epsilon: 'eps here', weight: "PyTorch's weight is gamma here", bias: "PyTorch's bias is beta here", running_mean: 'runningMean', running_var: 'runningVar' },
  });
  if (!bn.gamma || typeof bn.gamma.length !== 'number') throw new TypeError(`bn.gamma must be an array of numbers; got ${describeValue(bn.gamma)}`);
  const C = bn.gamma.length;
  for (const [name, a] of [['beta', bn.beta], ['runningMean', bn.runningMean], ['runningVar', bn.runningVar]] as const) {
    if (!a || a.length !== C) throw new RangeError(`bn.${name} must have ${C} values (bn.gamma's length); got ${a?.length}`);
  }
  if (!(bn.eps > 0)) throw new RangeError(`bn.eps must be > 0; got ${describeValue(bn.eps)}`);
  const { weight, bias = null, outAxis = 'first' } = layer;
  if (!weight || weight.length % C !== 0 || weight.length === 0) {
    throw new RangeError(`layer.weight must hold a multiple of ${C} values (one slice per output channel); got ${weight?.length}`);
  }
  if (bias && bias.length !== C) throw new RangeError(`layer.bias must have ${C} values; got ${bias.length}`);
  if (outAxis !== 'first' && outAxis !== 'last') throw new TypeError(`layer.outAxis must be 'first' or 'last'; got ${describeValue(outAxis)}`);
  const scale = Float64Array.from({ length: C }, (_, c) => bn.gamma[c] / Math.sqrt(bn.runningVar[c] + bn.eps));
  const per = weight.length / C;
  const channelOf = outAxis === 'first' ? (i: number) => Math.floor(i / per) : (i: number) => i % C;
  return {
    weight: Float64Array.from(weight, (w, i) => w * scale[channelOf(i)]),
    bias: Float64Array.from({ length: C }, (_, c) => scale[c] * ((bias ? bias[c] : 0) - bn.runningMean[c]) + bn.beta[c]),
  };
}
