/**
 * What the float64 CPU references of every family share (batchnorm/reference.ts,
 * normalization/reference.ts, feature-scaling/reference.ts): the gradients' type and the fused
 * activations (shaders/core/activations.wgsl's truth).
 */
import { checkNumbers, checkOneOf } from './validate.js';

/** @inline */
type Numbers = ArrayLike<number>;

/** Gradients of a normalization layer with γ and β: dL/dx, dL/dγ and dL/dβ. */
export interface Gradients {
  dx: Float64Array;
  dgamma: Float64Array;
  dbeta: Float64Array;
}

/** An activation fused after a normalization (BatchNormOptions.activation, the family's activation). */
export type ReferenceActivation = 'none' | 'relu' | 'silu';

const ACTIVATION_NAMES: readonly ReferenceActivation[] = ['none', 'relu', 'silu'];

/**
 * The fused activation of the normalized values z: max(z, 0), or SiLU z·σ(z) = z / (1 + e^(−z))
 * (+∞ stays +∞; −∞ and NaN give NaN).
 */
export function referenceActivation(z: Numbers, activation: ReferenceActivation): Float64Array {
  checkNumbers('z', z);
  checkOneOf('activation', activation, ACTIVATION_NAMES);
  return Float64Array.from(z, (v) => (activation === 'relu' ? Math.max(v, 0) : activation === 'silu' ? v / (1 + Math.exp(-v)) : v));
}

/**
 * The gradient with respect to z of a fused activation, given the gradient dy of its output:
 * dy where z > 0 (ReLU), or dy·σ(z)·(1 + z·(1 − σ(z))) (SiLU; NaN where z is not finite).
 */
export function referenceActivationGrad(z: Numbers, dy: Numbers, activation: ReferenceActivation): Float64Array {
  checkNumbers('z', z);
  checkNumbers('dy', dy, z.length);
  checkOneOf('activation', activation, ACTIVATION_NAMES);
  return Float64Array.from(z, (v, e) => {
    if (activation === 'relu') return v > 0 ? dy[e] : 0;
    if (activation === 'none') return dy[e];
    const s = 1 / (1 + Math.exp(-v));
    return dy[e] * s * (1 + v * (1 - s));
  });
}
