/**
 * The seeds' CNN as a float64 CPU reference, composed from the layer references: one training
 * step's loss and gradients, and inference logits, from given parameters.
 */
import { channelView, type Layout } from '../../src/core/layout.js';
import { referenceBackward, referenceInference, referenceTrainingForward } from '../../src/batchnorm/reference.js';
import {
  referenceConv2d,
  referenceConv2dBackward,
  referenceMaxPool,
  referenceMaxPoolBackward,
  referenceRelu,
  referenceReluBackward,
  referenceSoftmaxCrossEntropy,
} from '../../demo/nn/reference.js';
import type { Conv2dShape } from '../../demo/nn/kernels.js';

type Params = Record<string, ArrayLike<number>>;
const CONVS = [
  { name: 'conv2d_1', ci: 1, size: 28, co: 10, k: 5, pool: true },
  { name: 'conv2d_2', ci: 10, size: 12, co: 20, k: 5, pool: true },
  { name: 'dense_1', ci: 20, size: 4, co: 100, k: 4, pool: false },
  { name: 'dense_2', ci: 100, size: 1, co: 10, k: 1, pool: false },
];

const convShape = (i: number, batch: number): Conv2dShape => {
  const c = CONVS[i];
  return { batch, inChannels: c.ci, height: c.size, width: c.size, outChannels: c.co, kernelHeight: c.k, kernelWidth: c.k };
};
const outSize = (i: number) => CONVS[i].size - CONVS[i].k + 1;
const bnShape = (i: number, batch: number) => (outSize(i) > 1 ? [batch, CONVS[i].co, outSize(i), outSize(i)] : [batch, CONVS[i].co]);
const bnLayout = (i: number): Layout => (outSize(i) > 1 ? 'NCHW' : 'NC');
const poolShape = (i: number, batch: number) => ({ batch, channels: CONVS[i].co, height: outSize(i), width: outSize(i), size: 2 });

/** Loss, accuracy and every parameter's gradient of one training step (BN with batch statistics). */
export function referenceTrainStep(p: Params, images: ArrayLike<number>, labels: ArrayLike<number>, opts: { batchNorm: boolean; eps: number }) {
  const batch = labels.length;
  const saved: { input: ArrayLike<number>; a: Float64Array; z: Float64Array; stats?: { mean: Float64Array; variance: Float64Array } }[] = [];
  let input: ArrayLike<number> = images;
  for (let i = 0; i < 3; i++) {
    const c = CONVS[i];
    const a = referenceConv2d(input, p[`${c.name} kernel`], p[`${c.name} bias`], convShape(i, batch));
    let z = a;
    let stats;
    if (opts.batchNorm) {
      const f = referenceTrainingForward(a, channelView(bnLayout(i), bnShape(i, batch)), {
        gamma: p[`batch_normalization_${i + 1} gamma`],
        beta: p[`batch_normalization_${i + 1} beta`],
        eps: opts.eps,
      });
      z = f.y;
      stats = { mean: f.mean, variance: f.variance };
    }
    saved.push({ input, a, z, stats });
    const r = referenceRelu(z);
    input = c.pool ? referenceMaxPool(r, poolShape(i, batch)).y : r;
  }
  const logits = referenceConv2d(input, p['dense_2 kernel'], p['dense_2 bias'], convShape(3, batch));
  const loss = referenceSoftmaxCrossEntropy(logits, labels, 10);

  const grads: Record<string, Float64Array> = {};
  let g = referenceConv2dBackward(input, p['dense_2 kernel'], loss.dlogits, convShape(3, batch));
  grads['dense_2 kernel'] = g.dweight;
  grads['dense_2 bias'] = g.dbias;
  let dInput = g.dx;
  for (let i = 2; i >= 0; i--) {
    const c = CONVS[i];
    const s = saved[i];
    const r = referenceRelu(s.z);
    const dr = c.pool ? referenceMaxPoolBackward(r, dInput, poolShape(i, batch)) : dInput;
    let da = referenceReluBackward(s.z, dr);
    if (opts.batchNorm) {
      const gamma = p[`batch_normalization_${i + 1} gamma`];
      const bn = referenceBackward(s.a, da, channelView(bnLayout(i), bnShape(i, batch)), { ...s.stats!, gamma, eps: opts.eps, batchStats: true });
      grads[`batch_normalization_${i + 1} gamma`] = bn.dgamma;
      grads[`batch_normalization_${i + 1} beta`] = bn.dbeta;
      da = bn.dx;
    }
    g = referenceConv2dBackward(s.input, p[`${c.name} kernel`], da, convShape(i, batch));
    grads[`${c.name} kernel`] = g.dweight;
    grads[`${c.name} bias`] = g.dbias;
    dInput = g.dx;
  }
  const meanLoss = loss.losses.reduce((a, b) => a + b, 0) / batch;
  const accuracy = loss.correct.reduce((a, b) => a + b, 0) / batch;
  return { loss: meanLoss, accuracy, grads, logits };
}

/** Logits in inference mode: BN with the given running statistics. */
export function referenceInferenceLogits(
  p: Params,
  running: { mean: ArrayLike<number>; variance: ArrayLike<number> }[],
  images: ArrayLike<number>,
  batch: number,
  opts: { batchNorm: boolean; eps: number },
): Float64Array {
  let input: ArrayLike<number> = images;
  for (let i = 0; i < 3; i++) {
    const c = CONVS[i];
    let z = referenceConv2d(input, p[`${c.name} kernel`], p[`${c.name} bias`], convShape(i, batch));
    if (opts.batchNorm) {
      z = referenceInference(z, channelView(bnLayout(i), bnShape(i, batch)), {
        runningMean: running[i].mean,
        runningVar: running[i].variance,
        gamma: p[`batch_normalization_${i + 1} gamma`],
        beta: p[`batch_normalization_${i + 1} beta`],
        eps: opts.eps,
      });
    }
    const r = referenceRelu(z);
    input = c.pool ? referenceMaxPool(r, poolShape(i, batch)).y : r;
  }
  return referenceConv2d(input, p['dense_2 kernel'], p['dense_2 bias'], convShape(3, batch));
}
