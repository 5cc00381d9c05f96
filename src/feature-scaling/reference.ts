/**
 * The float64 CPU reference of feature scaling: min-max normalization or standardization per
 * feature, from batch norm's per-channel statistics.
 */
import type { ChannelView } from '../core/layout.js';
import { checkOneOf, describeValue } from '../core/validate.js';
import { forEachInChannel, referenceStats } from '../batchnorm/reference.js';

/** @inline */
type Numbers = ArrayLike<number>;

/** Per-feature statistics and scaled values of feature scaling (see FeatureScaler). */
export interface ScalingReference {
  min: Float64Array;
  max: Float64Array;
  mean: Float64Array;
  /** Σ(x − mean)² / (count − correction). */
  variance: Float64Array;
  /** x scaled: (x − min) / (max − min), or (x − mean) / sqrt(variance); a feature without spread is not divided. */
  y: Float64Array;
}

/** Min-max normalization or standardization per channel, as in the lecture notes. */
export function referenceFeatureScaling(x: Numbers, view: ChannelView, method: 'min-max' | 'standardize', correction: 0 | 1 = 1): ScalingReference {
  checkOneOf('method', method, ['min-max', 'standardize'] as const);
  if (correction !== 0 && correction !== 1) throw new TypeError(`correction must be 0 or 1; got ${describeValue(correction)}`);
  const { mean, variance: biased, count } = referenceStats(x, view);
  const variance = biased.map((v) => (v * count) / Math.max(count - correction, 1));
  const min = new Float64Array(view.channels).fill(Infinity);
  const max = new Float64Array(view.channels).fill(-Infinity);
  const y = new Float64Array(x.length);
  for (let c = 0; c < view.channels; c++) {
    forEachInChannel(view, c, (e) => {
      min[c] = Math.min(min[c], x[e]);
      max[c] = Math.max(max[c], x[e]);
    });
    const offset = method === 'min-max' ? min[c] : mean[c];
    const spread = method === 'min-max' ? max[c] - min[c] : Math.sqrt(variance[c]);
    forEachInChannel(view, c, (e) => (y[e] = (x[e] - offset) / (spread === 0 ? 1 : spread)));
  }
  return { min, max, mean, variance, y };
}
