/**
 * The seeds' CNN (demo/nn/mnist-cnn.ts) on the GPU against the same network composed from the
 * float64 references: one training step's loss and gradients, the SGD update, inference with
 * running statistics, the Keras summary, and argument checks.
 *
 * Tolerance: errors compound through ten layers, so gradients are compared per tensor against
 * its largest reference magnitude: |gpu − ref| ≤ 2e-4·max|ref| + 1e-6. A wiring mistake (a
 * wrong buffer, a skipped layer, BN without its gradient) errs by O(max|ref|). A convolution's
 * bias right before BN has an exactly zero gradient (BN subtracts the mean); float32 leaves
 * cancellation noise, bounded here by 1e-5.
 */
import { describe, expect, it } from 'vitest';
import { MnistCnn, IMAGE_SIZE } from '../../../demo/nn/mnist-cnn.js';
import { expectClose, rng } from '../../helpers/data.js';
import { testDevice } from '../../helpers/gpu.js';
import { referenceInferenceLogits, referenceTrainStep } from '../../helpers/cnn-reference.js';
import { referenceSoftmaxCrossEntropy } from '../../../demo/nn/reference.js';

const EPS = 1e-3;

/** Digit-like inputs: pixels in [0, 1], mostly dark. */
function images(batch: number, seed: number): Float32Array {
  const next = rng(seed);
  return Float32Array.from({ length: batch * IMAGE_SIZE }, () => Math.max(0, next() * 1.6 - 0.6));
}

const relTol = (ref: ArrayLike<number>) => ({ rtol: 0, atol: 2e-4 * Math.max(...Array.from(ref, Math.abs)) + 1e-6 });

for (const batchNorm of [true, false]) {
  describe(`one training step ${batchNorm ? 'with' : 'without'} batch norm`, () => {
    it('loss, gradients and the SGD update match the float64 reference network', async () => {
      const device = await testDevice();
      const batch = 6;
      const lr = 0.1;
      const model = new MnistCnn(device, { batchNorm, seed: 3, lr, eps: EPS });
      // Non-trivial BN parameters, so gamma and beta matter.
      const next = rng(4);
      for (const [i, bn] of model.bnLayers.entries()) {
        const C = bn.numFeatures;
        bn.setState({ gamma: Array.from({ length: C }, () => 0.5 + next()), beta: Array.from({ length: C }, () => next() - 0.5 + 0.1 * i) });
      }
      const before = await model.readParameters();
      const x = images(batch, 5);
      const labels = [3, 1, 4, 1, 5, 9];
      model.trainStep(x, labels);
      const metrics = await model.readLastMetrics();
      const grads = await model.readGradients();
      const after = await model.readParameters();

      const ref = referenceTrainStep(before, x, labels, { batchNorm, eps: EPS });
      expect(metrics.loss).toBeCloseTo(ref.loss, 4);
      expect(metrics.accuracy).toBe(ref.accuracy);
      const names = Object.keys(ref.grads).sort();
      expect(Object.keys(grads).sort()).toEqual(names);
      expect(names.length).toBe(batchNorm ? 14 : 8);
      for (const name of names) {
        const beforeBn = batchNorm && /^(conv2d_\d|dense_1) bias$/.test(name);
        expectClose(grads[name], ref.grads[name], beforeBn ? { rtol: 0, atol: 1e-5 } : relTol(ref.grads[name]), `gradient of ${name}`);
        const stepped = before[name].map((v, i) => v - lr * grads[name][i]);
        expectClose(after[name], stepped, { rtol: 1e-6, atol: 1e-7 }, `${name} after the SGD step`);
      }
      model.destroy();
    });
  });
}

describe('inference', () => {
  it('evaluate() uses the running statistics and matches the reference network', async () => {
    const device = await testDevice();
    const model = new MnistCnn(device, { batchNorm: true, seed: 8, eps: EPS });
    // A few training steps move the running statistics and the weights.
    for (let s = 0; s < 3; s++) model.trainStep(images(4, 10 + s), [0, 1, 2, 3]);
    const params = await model.readParameters();
    const running = await Promise.all(model.bnLayers.map(async (bn) => {
      const st = await bn.getState();
      return { mean: st.runningMean, variance: st.runningVar };
    }));
    const batch = 7;
    const x = images(batch, 20);
    const labels = [0, 1, 2, 3, 4, 5, 6];
    const metrics = await model.evaluate(x, labels, 3); // batches of 3, 3 and 1
    const logits = referenceInferenceLogits(params, running, x, batch, { batchNorm: true, eps: EPS });
    const ref = referenceSoftmaxCrossEntropy(logits, labels, 10);
    expect(metrics.samples).toBe(batch);
    expect(metrics.loss).toBeCloseTo(ref.losses.reduce((a, b) => a + b, 0) / batch, 4);
    expect(metrics.accuracy).toBe(ref.correct.reduce((a, b) => a + b, 0) / batch);
    model.destroy();
  });
});

describe('model summary', () => {
  it("matches the seeds' Keras table: 38,910 parameters, 38,650 trainable, 260 not", async () => {
    const device = await testDevice();
    const model = new MnistCnn(device, { batchNorm: true });
    const rows = model.summary();
    const params = Object.fromEntries(rows.map((r) => [r.name, r.params]));
    expect(params).toMatchObject({ conv2d_1: 260, batch_normalization_1: 40, conv2d_2: 5020, batch_normalization_2: 80, dense_1: 32100, batch_normalization_3: 400, dense_2: 1010 });
    const total = rows.reduce((s, r) => s + r.params, 0);
    const trainable = rows.reduce((s, r) => s + r.trainableParams, 0);
    expect([total, trainable, total - trainable]).toEqual([38910, 38650, 260]);
    expect(rows.find((r) => r.name === 'max_pooling2d_2')?.outputShape).toEqual([20, 4, 4]);
    expect(rows.find((r) => r.name === 'flatten_1')?.outputShape).toEqual([320]);
    // The GPU holds exactly the trainable parameters the table counts.
    const stored = Object.values(await model.readParameters()).reduce((s, p) => s + p.length, 0);
    expect(stored).toBe(trainable);
    model.destroy();

    const plain = new MnistCnn(device, { batchNorm: false });
    expect(plain.summary().reduce((s, r) => s + r.params, 0)).toBe(38910 - 520);
    plain.destroy();
  });
});

describe('argument checks', () => {
  it('refuses bad images, labels and hyperparameters with the argument named', async () => {
    const device = await testDevice();
    const model = new MnistCnn(device, { batchNorm: true });
    expect(() => model.trainStep(new Float32Array(784 * 2), [1])).toThrow(/images must hold 784 pixels for each of the 1 labels \(784\); got 1568/);
    expect(() => model.trainStep(new Float32Array(784 * 2), [1, 10])).toThrow(/labels\[1\] must be a digit 0-9; got 10/);
    expect(() => model.trainStep(new Float32Array(784), [1])).toThrow(/labels.length must be an integer ≥ 2/);
    expect(() => model.setSgd({ lr: -1 })).toThrow(/lr must be a finite number > 0; got -1/);
    expect(model.sgd.lr).toBe(0.05); // the refused call changed nothing
    model.destroy();
    expect(() => model.trainStep(new Float32Array(784 * 2), [1, 2])).toThrow(/was destroyed/);
  });
});
