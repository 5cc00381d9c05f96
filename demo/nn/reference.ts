/**
 * float64 CPU reference of the training demo's layers (NCHW), the truth the kernels in
 * kernels.ts are tested against. Written for clarity, not speed.
 */
import { conv2dOutputSize, poolOutputSize, type Conv2dShape, type PoolShape } from './kernels.js';

type Numbers = ArrayLike<number>;

/** y = conv2d(x, weight) + bias (cross-correlation, valid padding, stride 1). */
export function referenceConv2d(x: Numbers, weight: Numbers, bias: Numbers, shape: Conv2dShape): Float64Array {
  const [OH, OW] = conv2dOutputSize(shape);
  const { batch: N, inChannels: Ci, height: H, width: W, outChannels: Co, kernelHeight: KH, kernelWidth: KW } = shape;
  const y = new Float64Array(N * Co * OH * OW);
  for (let n = 0; n < N; n++)
    for (let co = 0; co < Co; co++)
      for (let oy = 0; oy < OH; oy++)
        for (let ox = 0; ox < OW; ox++) {
          let acc = bias[co];
          for (let ci = 0; ci < Ci; ci++)
            for (let ky = 0; ky < KH; ky++)
              for (let kx = 0; kx < KW; kx++) {
                acc += x[((n * Ci + ci) * H + oy + ky) * W + ox + kx] * weight[((co * Ci + ci) * KH + ky) * KW + kx];
              }
          y[((n * Co + co) * OH + oy) * OW + ox] = acc;
        }
  return y;
}

/** Gradients of a convolution given dy: with respect to its weight, bias and input. */
export function referenceConv2dBackward(
  x: Numbers,
  weight: Numbers,
  dy: Numbers,
  shape: Conv2dShape,
): { dweight: Float64Array; dbias: Float64Array; dx: Float64Array } {
  const [OH, OW] = conv2dOutputSize(shape);
  const { batch: N, inChannels: Ci, height: H, width: W, outChannels: Co, kernelHeight: KH, kernelWidth: KW } = shape;
  const dweight = new Float64Array(Co * Ci * KH * KW);
  const dbias = new Float64Array(Co);
  const dx = new Float64Array(N * Ci * H * W);
  for (let n = 0; n < N; n++)
    for (let co = 0; co < Co; co++)
      for (let oy = 0; oy < OH; oy++)
        for (let ox = 0; ox < OW; ox++) {
          const g = dy[((n * Co + co) * OH + oy) * OW + ox];
          dbias[co] += g;
          for (let ci = 0; ci < Ci; ci++)
            for (let ky = 0; ky < KH; ky++)
              for (let kx = 0; kx < KW; kx++) {
                const xi = ((n * Ci + ci) * H + oy + ky) * W + ox + kx;
                const wi = ((co * Ci + ci) * KH + ky) * KW + kx;
                dweight[wi] += g * x[xi];
                dx[xi] += g * weight[wi];
              }
        }
  return { dweight, dbias, dx };
}

/** Max pooling: y and, per output, the in-plane index (iy·W + ix) of the first maximum. */
export function referenceMaxPool(x: Numbers, shape: PoolShape): { y: Float64Array; argmax: Uint32Array } {
  const [OH, OW] = poolOutputSize(shape);
  const { height: H, width: W, size: S } = shape;
  const planes = shape.batch * shape.channels;
  const y = new Float64Array(planes * OH * OW);
  const argmax = new Uint32Array(planes * OH * OW);
  for (let p = 0; p < planes; p++)
    for (let oy = 0; oy < OH; oy++)
      for (let ox = 0; ox < OW; ox++) {
        let best = -Infinity;
        let at = 0;
        for (let ky = 0; ky < S; ky++)
          for (let kx = 0; kx < S; kx++) {
            const i = (oy * S + ky) * W + ox * S + kx;
            if (x[p * H * W + i] > best) {
              best = x[p * H * W + i];
              at = i;
            }
          }
        y[(p * OH + oy) * OW + ox] = best;
        argmax[(p * OH + oy) * OW + ox] = at;
      }
  return { y, argmax };
}

/** Gradient of max pooling: dy routed to each window's maximum. */
export function referenceMaxPoolBackward(x: Numbers, dy: Numbers, shape: PoolShape): Float64Array {
  const [OH, OW] = poolOutputSize(shape);
  const { argmax } = referenceMaxPool(x, shape);
  const HW = shape.height * shape.width;
  const dx = new Float64Array(shape.batch * shape.channels * HW);
  for (let o = 0; o < argmax.length; o++) {
    const plane = Math.floor(o / (OH * OW));
    dx[plane * HW + argmax[o]] += dy[o];
  }
  return dx;
}

/** max(x, 0). */
export function referenceRelu(x: Numbers): Float64Array {
  return Float64Array.from(x, (v) => Math.max(v, 0));
}

/** dy where x > 0, else 0. */
export function referenceReluBackward(x: Numbers, dy: Numbers): Float64Array {
  return Float64Array.from(x, (v, i) => (v > 0 ? dy[i] : 0));
}

/** Softmax cross-entropy of logits [batch, classes]: per-sample losses, correctness, and d(mean loss)/dlogits. */
export function referenceSoftmaxCrossEntropy(
  logits: Numbers,
  labels: ArrayLike<number>,
  classes: number,
): { losses: Float64Array; correct: Uint32Array; dlogits: Float64Array } {
  const batch = labels.length;
  const losses = new Float64Array(batch);
  const correct = new Uint32Array(batch);
  const dlogits = new Float64Array(batch * classes);
  for (let n = 0; n < batch; n++) {
    const row = Array.from({ length: classes }, (_, k) => logits[n * classes + k]);
    const top = Math.max(...row);
    const sum = row.reduce((s, v) => s + Math.exp(v - top), 0);
    losses[n] = Math.log(sum) + top - row[labels[n]];
    correct[n] = row.indexOf(top) === labels[n] ? 1 : 0;
    for (let k = 0; k < classes; k++) dlogits[n * classes + k] = (Math.exp(row[k] - top) / sum - (k === labels[n] ? 1 : 0)) / batch;
  }
  return { losses, correct, dlogits };
}
