// Normalizes a tensor on the GPU (training step, backward, then inference with the running
// statistics) and prints how far each result is from the float64 CPU reference.
// Run with `npm run example` (it builds dist/ first).
import {
  BatchNorm,
  channelView,
  getDevice,
  referenceBackward,
  referenceInference,
  referenceTrainingForward,
} from '../dist/webgpu-batchnorm.js';

const shape = [8, 16, 28, 28]; // NCHW: a conv layer's activations
const layout = 'NCHW';
const eps = 1e-5;

function randomTensor(n, seed, mean, std) {
  let s = seed >>> 0;
  const uniform = () => ((s = (s * 1664525 + 1013904223) >>> 0) + 1) / 4294967297;
  return Float32Array.from({ length: n }, () => mean + std * Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform()));
}

function maxAbsDiff(a, b) {
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
  return worst;
}

const device = await getDevice();
const info = device.adapterInfo ?? {};
console.log(`adapter: ${[info.vendor, info.architecture, info.description].filter(Boolean).join(' ') || 'unknown'}`);

const view = channelView(layout, shape);
const n = view.outer * view.channels * view.inner;
const x = randomTensor(n, 1, 5, 3);
const dy = randomTensor(n, 2, 0, 1);
const bn = new BatchNorm(device, { numFeatures: shape[1], layout, eps });
const gamma = new Array(shape[1]).fill(1);
const beta = new Array(shape[1]).fill(0);

const t0 = performance.now();
const y = await bn.forward(x, shape, { training: true });
const grads = await bn.backward(dy);
const t1 = performance.now();
const ref = referenceTrainingForward(x, view, { gamma, beta, eps });
const refGrads = referenceBackward(x, dy, view, { mean: ref.mean, variance: ref.variance, gamma, eps, batchStats: true });
console.log(`training step on [${shape}] (${n.toLocaleString('en')} values): ${(t1 - t0).toFixed(1)} ms including upload and readback`);
console.log(`  y      max |gpu - float64 reference| = ${maxAbsDiff(y, ref.y).toExponential(2)}`);
console.log(`  dx     max |gpu - float64 reference| = ${maxAbsDiff(grads.dx, refGrads.dx).toExponential(2)}`);
console.log(`  dgamma max |gpu - float64 reference| = ${maxAbsDiff(grads.dgamma, refGrads.dgamma).toExponential(2)}`);

const state = await bn.getState();
const xTest = randomTensor(n, 3, 5, 3);
const yTest = await bn.forward(xTest, shape, { training: false });
const refTest = referenceInference(xTest, view, { ...state, gamma, beta, eps });
console.log(`inference with running statistics (numBatchesTracked = ${state.numBatchesTracked}):`);
console.log(`  y      max |gpu - float64 reference| = ${maxAbsDiff(yTest, refTest).toExponential(2)}`);

const worst = Math.max(maxAbsDiff(y, ref.y), maxAbsDiff(yTest, refTest));
bn.destroy();
if (worst > 1e-4) {
  console.error(`FAILED: the GPU differs from the reference by ${worst}`);
  process.exit(1);
}
console.log('OK: the GPU matches the float64 reference');
