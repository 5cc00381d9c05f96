/**
 * What the float64 CPU references of every family share (batchnorm/reference.ts,
 * normalization/reference.ts).
 */

/** Gradients of a normalization layer with γ and β: dL/dx, dL/dγ and dL/dβ. */
export interface Gradients {
  dx: Float64Array;
  dgamma: Float64Array;
  dbeta: Float64Array;
}
