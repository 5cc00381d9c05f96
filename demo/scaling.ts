/**
 * The notes' feature-scaling experiment: people's income ~ N(3000, 400²) and height ~ N(69, 3²);
 * the same people in other units (the notes' first remedy: income in thousands of dollars
 * ~ N(3, 0.4²), height in feet ~ N(5.75, 0.25²)); and scaled on the GPU by FeatureScaler (min-max
 * and standardization). For each version: the least-squares Hessian H = (1/n) Σ x xᵀ, its
 * condition number, and how many gradient-descent steps it needs. H and gradient descent are 2x2
 * and run on the CPU in float64.
 */
import { FeatureScaler } from '../src/feature-scaling/layer.js';
import { gaussian, mulberry32 } from '../support/random.js';

/** One representation of the data and how gradient descent fares on it. */
export interface ScalingResult {
  key: 'raw' | 'units' | 'min-max' | 'standardize';
  name: string;
  /** H = (1/n) Σ x xᵀ, row-major [h11, h12, h21, h22]. */
  hessian: number[];
  conditionNumber: number;
  /** Steps until the weights are within `tolerance` (relative) of the optimum; null if not within the cap. */
  steps: number | null;
  /** (step, relative distance to the optimum) at log-spaced steps. */
  curve: [number, number][];
}

/** Relative distance to the optimum at which gradient descent counts as converged. */
export const GD_TOLERANCE = 1e-6; // the page says 10⁻⁶
const MAX_STEPS = 5_000_000;

/** The notes' people: rows of [income, height]. Also returns a target to fit. */
export function people(n: number, seed: number): { x: Float32Array; y: Float64Array } {
  const random = mulberry32(seed);
  const normal = () => gaussian(random);
  const x = new Float32Array(2 * n);
  const y = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    x[2 * i] = 3000 + 400 * normal();
    x[2 * i + 1] = 69 + 3 * normal();
    // Something to regress: a linear function of both features plus noise.
    y[i] = 0.02 * x[2 * i] + 1.5 * x[2 * i + 1] + normal();
  }
  return { x, y };
}

/** The people in thousands of dollars and feet: income ~ N(3, 0.4²), height ~ N(5.75, 0.25²). */
export function inOtherUnits(x: ArrayLike<number>): Float64Array {
  return Float64Array.from(x, (v, i) => (i % 2 === 0 ? v / 1000 : v / 12));
}

/**
 * Scales the people by a change of units, and with both methods on the GPU, and runs gradient
 * descent on each version: raw, change of units, min-max, standardized.
 */
export async function scalingExperiment(device: GPUDevice, n = 1000, seed = 2026): Promise<ScalingResult[]> {
  const { x, y } = people(n, seed);
  const versions: [ScalingResult['key'], string, ArrayLike<number>][] = [
    ['raw', 'Raw (dollars, inches)', x],
    ['units', 'Change of units (thousands of dollars, feet)', inOtherUnits(x)],
  ];
  for (const method of ['min-max', 'standardize'] as const) {
    const scaler = new FeatureScaler(device, { numFeatures: 2, method, label: `people ${method}` });
    try {
      await scaler.adapt(x, [n, 2]);
      versions.push([method, method === 'min-max' ? 'Min-max normalized' : 'Standardized', await scaler.transform(x, [n, 2])]);
    } finally {
      scaler.destroy();
    }
  }
  return versions.map(([key, name, data]) => ({ key, ...descend(name, data, y) }));
}

/** Gradient descent on f(w) = (1/2n) ‖Xw − y‖² from w = 0 with step 1/λmax(H). */
function descend(name: string, x: ArrayLike<number>, y: Float64Array): Omit<ScalingResult, 'key'> {
  const n = y.length;
  let [h11, h12, h22, b1, b2] = [0, 0, 0, 0, 0];
  for (let i = 0; i < n; i++) {
    const [u, v] = [x[2 * i], x[2 * i + 1]];
    h11 += (u * u) / n;
    h12 += (u * v) / n;
    h22 += (v * v) / n;
    b1 += (u * y[i]) / n;
    b2 += (v * y[i]) / n;
  }
  // Eigenvalues of the symmetric 2x2 H.
  const mid = (h11 + h22) / 2;
  const radius = Math.hypot((h11 - h22) / 2, h12);
  const [lmax, lmin] = [mid + radius, mid - radius];
  const det = h11 * h22 - h12 * h12;
  const optimum = [(h22 * b1 - h12 * b2) / det, (h11 * b2 - h12 * b1) / det];
  const norm = Math.hypot(optimum[0], optimum[1]);
  const eta = 1 / lmax;
  let w = [0, 0];
  const curve: [number, number][] = [[0, 1]];
  let next = 1;
  let steps: number | null = null;
  for (let k = 1; k <= MAX_STEPS; k++) {
    const g = [h11 * w[0] + h12 * w[1] - b1, h12 * w[0] + h22 * w[1] - b2];
    w = [w[0] - eta * g[0], w[1] - eta * g[1]];
    const distance = Math.hypot(w[0] - optimum[0], w[1] - optimum[1]) / norm;
    if (k >= next || distance <= GD_TOLERANCE) {
      curve.push([k, distance]);
      next = Math.ceil(k * 1.1);
    }
    if (distance <= GD_TOLERANCE) {
      steps = k;
      break;
    }
  }
  return { name, hessian: [h11, h12, h12, h22], conditionNumber: lmax / lmin, steps, curve };
}
