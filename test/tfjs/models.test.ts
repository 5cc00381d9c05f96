/**
 * webgpu-batchnorm/tfjs at model level: tf.layers models trained with model.fit (SGD,
 * shuffle: false, the same initial weights and batches) with and without the adapter, plain
 * TF.js's own layers and autodiff on its webgpu backend being the truth:
 * - conv2d → batchNormalization → reLU → flatten → dense, and dense → layerNormalization → dense:
 *   every weight (moving statistics included) within 1e-5 after the steps, predict within 1e-5,
 *   and our kernels did run;
 * - batchNormalization({ axis: 1 }), ({ scale: false }), ({ center: false }) and
 *   layerNormalization's `scale` and `center` false, where plain TF.js 4.22 throws in model.fit:
 *   plain TF.js's error is asserted, and our training agrees
 *   within 1e-5 with the plain model that computes the same function (axis 1 through permute
 *   layers around an axis −1 layer; a fixed γ or β as a weight written back to 1 or 0 after
 *   each SGD step, batch by batch).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerTfjsKernels } from '../../src/tfjs/index.js';
import { expectClose, randn, type Tolerance } from '../helpers/data.js';
import { ourPasses, tf, tfjsOnDevice, values } from './setup.js';

let gpuErrors: string[];
const WEIGHT_TOL: Tolerance = { rtol: 1e-5, atol: 1e-5 };

beforeAll(async () => {
  ({ gpuErrors } = await tfjsOnDevice());
});

afterAll(() => {
  expect(gpuErrors, 'uncaptured GPU errors').toEqual([]);
});

const STEPS = 4;
const BATCH = 6;

/** Inputs and targets of STEPS batches. */
function dataset(inputShape: number[], outputs: number, seed: number) {
  const n = STEPS * BATCH;
  const size = inputShape.reduce((p, d) => p * d, 1);
  return {
    xs: tf.tensor(randn(n * size, seed).map((v, i) => 2 * v + (i % 3)), [n, ...inputShape]),
    ys: tf.tensor(randn(n * outputs, seed + 1), [n, outputs]),
  };
}

/** A weight held at a constant through training: the stand-in for γ or β fixed by `scale`/`center` false. */
interface FixedWeight {
  variable: { write(value: tf.Tensor): unknown };
  value: number;
  shape: number[];
}

/**
 * Trains `model` from `init` on the data (model.fit, SGD, shuffle false); returns its weights and
 * a prediction. With `fixed`, batch by batch instead (trainOnBatch, the same batches), writing
 * the fixed weight back to its constant after each step: with plain SGD that is the same as
 * never training it (tf.layers cannot freeze one weight of a layer through fit).
 */
async function train(model: tf.LayersModel, init: tf.Tensor[], data: { xs: tf.Tensor; ys: tf.Tensor }, fixed?: FixedWeight) {
  model.setWeights(init);
  model.compile({ optimizer: tf.train.sgd(0.05), loss: 'meanSquaredError' });
  if (!fixed) {
    await model.fit(data.xs, data.ys, { epochs: 1, batchSize: BATCH, shuffle: false, verbose: 0 });
  } else {
    for (let step = 0; step < STEPS; step++) {
      const [xb, yb] = [data.xs, data.ys].map((t) => t.slice(step * BATCH, BATCH));
      await model.trainOnBatch(xb, yb);
      tf.dispose([xb, yb]);
      tf.tidy(() => {
        fixed.variable.write(tf.fill(fixed.shape, fixed.value));
      });
    }
  }
  const weights = await Promise.all(model.getWeights().map(values));
  const predicted = model.predict(data.xs) as tf.Tensor;
  const prediction = await values(predicted);
  predicted.dispose();
  return { weights, prediction, names: model.getWeights().map((w) => (w as tf.Variable).name) };
}

/** Every weight and the prediction of `ours` within 1e-5 of `truth`. */
function expectSameTraining(ours: Awaited<ReturnType<typeof train>>, truth: Awaited<ReturnType<typeof train>>) {
  expect(ours.weights).toHaveLength(truth.weights.length);
  for (let i = 0; i < truth.weights.length; i++) expectClose(ours.weights[i], truth.weights[i], WEIGHT_TOL, `weight ${truth.names[i]}`);
  expectClose(ours.prediction, truth.prediction, WEIGHT_TOL, 'predict');
}

/** Largest |a − b| over every weight, for the log (the figure the notes quote). */
function maxWeightDiff(a: Float64Array[], b: Float64Array[]): number {
  let worst = 0;
  a.forEach((w, i) => w.forEach((v, j) => (worst = Math.max(worst, Math.abs(v - b[i][j])))));
  return worst;
}

/** Trains `build()` plain, then with the adapter, from the same initial weights. */
async function plainAndAdapter(build: () => tf.LayersModel, data: { xs: tf.Tensor; ys: tf.Tensor }) {
  const model = build();
  const init = model.getWeights().map((w) => w.clone());
  const plain = await train(model, init, data);
  const uninstall = registerTfjsKernels(tf);
  const before = ourPasses();
  const ours = await train(model, init, data).finally(uninstall);
  const passes = ourPasses() - before;
  model.dispose();
  tf.dispose(init);
  return { plain, ours, passes };
}

describe('models trained with model.fit, with and without the adapter', () => {
  it('conv2d → batchNormalization → reLU → flatten → dense: every weight and predict within 1e-5', async () => {
    const data = dataset([7, 7, 3], 4, 1);
    const { plain, ours, passes } = await plainAndAdapter(() => {
      const m = tf.sequential();
      m.add(tf.layers.conv2d({ inputShape: [7, 7, 3], filters: 5, kernelSize: 3, useBias: false }));
      m.add(tf.layers.batchNormalization({ momentum: 0.8 }));
      m.add(tf.layers.reLU());
      m.add(tf.layers.flatten());
      m.add(tf.layers.dense({ units: 4 }));
      return m;
    }, data);
    // Each step: a training forward and a backward pass; predict: an inference pass per batch.
    expect(passes).toBeGreaterThanOrEqual(2 * STEPS + 1);
    expect(plain.names.filter((n) => /moving_(mean|variance)$/.test(n))).toHaveLength(2);
    expectSameTraining(ours, plain);
    console.log(`conv→BN→relu→dense: max |Δweight| ${maxWeightDiff(ours.weights, plain.weights).toExponential(2)}`);
    tf.dispose([data.xs, data.ys]);
  });

  it('dense → layerNormalization → dense: every weight and predict within 1e-5', async () => {
    const data = dataset([12], 3, 3);
    const { plain, ours, passes } = await plainAndAdapter(() => {
      const m = tf.sequential();
      m.add(tf.layers.dense({ inputShape: [12], units: 10 }));
      m.add(tf.layers.layerNormalization({}));
      m.add(tf.layers.dense({ units: 3 }));
      return m;
    }, data);
    expect(passes).toBeGreaterThanOrEqual(2 * STEPS + 1);
    expectSameTraining(ours, plain);
    console.log(`dense→LN→dense: max |Δweight| ${maxWeightDiff(ours.weights, plain.weights).toExponential(2)}`);
    tf.dispose([data.xs, data.ys]);
  });
});

describe('cases plain TF.js 4.22 cannot train', () => {
  /** A model whose BatchNormalization has `bn` arguments, around an input [C, L] (axis 1 is its channel axis). */
  function bnModel(bn: Record<string, unknown>, permuted = false) {
    const m = tf.sequential();
    m.add(tf.layers.dense({ inputShape: [6, 5], units: 5 }));
    if (permuted) m.add(tf.layers.permute({ dims: [2, 1] }));
    m.add(tf.layers.batchNormalization({ momentum: 0.7, ...bn }));
    if (permuted) m.add(tf.layers.permute({ dims: [2, 1] }));
    m.add(tf.layers.flatten());
    m.add(tf.layers.dense({ units: 2 }));
    return m;
  }

  /**
   * Plain TF.js's failure on `model`, then our training of it and plain TF.js's training of
   * `truthModel` (the same function, which plain TF.js can train) from `truthInit(init)`.
   */
  async function trainsWherePlainThrows(
    model: tf.LayersModel,
    truthModel: tf.LayersModel,
    plainError: RegExp,
    truthInit: (init: tf.Tensor[]) => tf.Tensor[],
    fixed?: FixedWeight,
  ) {
    const data = dataset([6, 5], 2, 9);
    const init = model.getWeights().map((w) => w.clone());
    model.compile({ optimizer: tf.train.sgd(0.05), loss: 'meanSquaredError' });
    await expect(model.fit(data.xs, data.ys, { epochs: 1, batchSize: BATCH, shuffle: false, verbose: 0 })).rejects.toThrow(plainError);
    const truth = await train(truthModel, truthInit(init), data, fixed);
    const uninstall = registerTfjsKernels(tf);
    const ours = await train(model, init, data).finally(uninstall);
    tf.dispose([...init, data.xs, data.ys]);
    return { ours, truth };
  }

  it('axis 1 ([N, C, L]): plain throws; ours trains as the permuted axis −1 model', async () => {
    const model = bnModel({ axis: 1 });
    const truthModel = bnModel({ axis: -1 }, true);
    const { ours, truth } = await trainsWherePlainThrows(model, truthModel, /must match the product of shape 1,6,1/, (init) => init);
    expectSameTraining(ours, truth);
    console.log(`axis 1: max |Δweight| ${maxWeightDiff(ours.weights, truth.weights).toExponential(2)}`);
    model.dispose();
    truthModel.dispose();
  });

  /** A model whose LayerNormalization has `ln` arguments (normalized over the input's last axis, of 5). */
  function lnModel(ln: Record<string, unknown>) {
    const m = tf.sequential();
    m.add(tf.layers.dense({ inputShape: [6, 5], units: 5 }));
    m.add(tf.layers.layerNormalization(ln));
    m.add(tf.layers.flatten());
    m.add(tf.layers.dense({ units: 2 }));
    return m;
  }

  const fixedCases = [
    { layer: 'batchNormalization', build: bnModel, fixed: 'scale', error: /Cannot read properties of undefined \(reading 'read'\)/ },
    { layer: 'batchNormalization', build: bnModel, fixed: 'center', error: /Cannot read properties of undefined \(reading 'read'\)/ },
    { layer: 'layerNormalization', build: lnModel, fixed: 'scale', error: /Cannot read properties of undefined \(reading 'dataId'\)/ },
    { layer: 'layerNormalization', build: lnModel, fixed: 'center', error: /Cannot read properties of undefined \(reading 'id'\)/ },
  ] as const;
  for (const { layer, build, fixed, error } of fixedCases) {
    it(`${layer}({ ${fixed}: false }): plain throws; ours trains as plain TF.js with ${fixed === 'scale' ? 'γ held at 1' : 'β held at 0'}`, async () => {
      const model = build({ axis: -1, [fixed]: false });
      const truthModel = build({ axis: -1 });
      const param = fixed === 'scale' ? 'gamma' : 'beta';
      const value = fixed === 'scale' ? 1 : 0;
      const variable = (truthModel.layers[1] as unknown as Record<string, FixedWeight['variable']>)[param];
      const { ours, truth } = await trainsWherePlainThrows(
        model,
        truthModel,
        error,
        // The model's weights, with the truth's fixed one (its initial 1 or 0) in its place.
        (init) => {
          let next = 0;
          return truthModel.getWeights().map((w) => ((w as tf.Variable).name.endsWith(`/${param}`) ? w : init[next++]));
        },
        { variable, value, shape: [5] },
      );
      const drop = truth.names.findIndex((n) => n.endsWith(`/${param}`));
      expect(Array.from(truth.weights[drop]).every((v) => v === value), `the truth's ${param} stays fixed`).toBe(true);
      expectSameTraining(ours, { ...truth, weights: truth.weights.filter((_, i) => i !== drop), names: truth.names.filter((_, i) => i !== drop) });
      model.dispose();
      truthModel.dispose();
    });
  }
});
