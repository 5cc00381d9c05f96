/**
 * The TF.js page's experiment: a small tf.layers CNN, AveragePooling2D(2) → Conv2D(8, 5×5,
 * stride 2) → BatchNormalization → ReLU → Flatten → Dense(10) → softmax, trained with model.trainOnBatch on the demo's digits twice:
 * with plain TF.js, then with webgpu-batchnorm's kernels registered (registerTfjsKernels), from
 * the same initial weights on the same mini-batches. Step 1 of each run is recorded with
 * tf.profile, which names the kernels that ran.
 */
import * as tf from '@tensorflow/tfjs';
import { registerTfjsKernels } from '../src/tfjs/index.js';
import { batches, type Samples } from './dataset.js';

/** The adapter's kernel names start with this. */
export const ADAPTER_KERNEL_PREFIX = 'webgpu-batchnorm/';

/** Settings of both runs. */
export interface TfjsConfig {
  steps: number;
  batch: number;
  /** SGD's learning rate. */
  lr: number;
  /** Keras's momentum of the BatchNormalization layer's moving statistics. */
  bnMomentum: number;
  /** Validate after every this many steps, and at the end. */
  evalEvery: number;
  /** Seed of the initial weights and of the data order, shared by both runs. */
  seed: number;
}

/** The page's defaults: small enough for SwiftShader in headless chromium. */
export const TFJS_DEFAULTS: Readonly<TfjsConfig> = Object.freeze({ steps: 40, batch: 32, lr: 0.1, bnMomentum: 0.9, evalEvery: 10, seed: 1 });

/** One run's progress and result. */
export interface TfjsRun {
  name: string;
  /** Whether the run has webgpu-batchnorm's kernels registered. */
  adapter: boolean;
  step: number;
  /** Steps per second over steps 2 to the last (step 1 compiles TF.js's shaders and is profiled). */
  stepsPerSecond: number;
  /** Seconds of steps 2 to the last, each until its loss was read back. */
  trainSeconds: number;
  evalSeconds: number;
  /** The last step's training loss and accuracy (the same batch in both runs). */
  trainLoss: number;
  trainAccuracy: number;
  valLoss: number;
  valAccuracy: number;
  /** (step, training loss) of every step. */
  losses: [number, number][];
  /** (step, validation accuracy) at each evaluation. */
  accuracies: [number, number][];
  /** How often each kernel ran in step 1 (tf.profile). */
  kernels: Record<string, number>;
  /** Calls of the adapter's kernels (webgpu-batchnorm/…) in step 1. */
  adapterKernelCalls: number;
  done: boolean;
}

/** The two runs side by side: how closely they agree. */
export interface TfjsComparison {
  /** max over every weight (γ, β, moving statistics included) of |adapter − plain| / (1 + |plain|). */
  maxWeightDifference: number;
  /** |adapter − plain| of the final validation accuracy (a fraction), validation loss and last training loss. */
  valAccuracyDifference: number;
  valLossDifference: number;
  trainLossDifference: number;
  /** The largest |adapter − plain| of the validation accuracy over every evaluation. */
  maxAccuracyDifference: number;
}

/**
 * The model, with seeded initializers (both runs get its initial weights as they are). The
 * pooling first and the stride keep it quick on SwiftShader, where TF.js's conv2d on 28×28 digits
 * takes seconds a step.
 */
export function tfjsModel(config: TfjsConfig): tf.Sequential {
  const model = tf.sequential();
  model.add(tf.layers.averagePooling2d({ inputShape: [28, 28, 1], poolSize: 2 }));
  model.add(
    tf.layers.conv2d({ filters: 8, kernelSize: 5, strides: 2, useBias: false, kernelInitializer: tf.initializers.glorotUniform({ seed: config.seed }) }),
  );
  model.add(tf.layers.batchNormalization({ momentum: config.bnMomentum }));
  model.add(tf.layers.reLU());
  model.add(tf.layers.flatten());
  model.add(tf.layers.dense({ units: 10, activation: 'softmax', kernelInitializer: tf.initializers.glorotUniform({ seed: config.seed + 1 }) }));
  return model;
}

/** Digits as tensors: images [n, 28, 28, 1] (one channel, so the demo's NCHW pixels are NHWC too) and one-hot labels. */
export function digitTensors(images: Float32Array, labels: Uint8Array): { xs: tf.Tensor4D; ys: tf.Tensor2D } {
  return tf.tidy(() => ({
    xs: tf.tensor4d(images, [labels.length, 28, 28, 1]),
    ys: tf.oneHot(tf.tensor1d(labels, 'int32'), 10).toFloat() as tf.Tensor2D,
  }));
}

/** Validation accuracy and mean cross-entropy of `model` (inference: the moving statistics). */
async function validate(model: tf.LayersModel, xs: tf.Tensor4D, ys: tf.Tensor2D): Promise<{ accuracy: number; loss: number }> {
  const [correct, loss] = tf.tidy(() => {
    const p = model.predict(xs, { batchSize: 250 }) as tf.Tensor2D;
    return [tf.equal(p.argMax(-1), ys.argMax(-1)).sum(), tf.metrics.categoricalCrossentropy(ys, p).mean()];
  });
  const [c, l] = await Promise.all([correct.data(), loss.data()]);
  tf.dispose([correct, loss]);
  return { accuracy: c[0] / ys.shape[0], loss: l[0] };
}

/**
 * Trains `model` (already holding the initial weights) for `config.steps` steps of SGD on the
 * batches of `config.seed`, with the adapter's kernels registered while it trains if `adapter`;
 * `onProgress` sees `run` after every step.
 */
export async function trainRun(
  model: tf.LayersModel,
  run: TfjsRun,
  train: Samples,
  validation: { xs: tf.Tensor4D; ys: tf.Tensor2D },
  config: TfjsConfig,
  onProgress: () => void,
): Promise<void> {
  const uninstall = run.adapter ? registerTfjsKernels(tf) : () => {};
  try {
    model.compile({ optimizer: tf.train.sgd(config.lr), loss: 'categoricalCrossentropy', metrics: ['accuracy'] });
    const data = batches(train, config.batch, config.seed);
    for (let step = 1; step <= config.steps; step++) {
      const batch = data.next().value!;
      const { xs, ys } = digitTensors(batch.images, batch.labels);
      const t0 = performance.now();
      let metrics: number[];
      if (step === 1) {
        const profile = await tf.profile(() => model.trainOnBatch(xs, ys));
        metrics = profile.result as number[];
        for (const k of profile.kernels) run.kernels[k.name] = (run.kernels[k.name] ?? 0) + 1;
        run.adapterKernelCalls = profile.kernels.filter((k) => k.name.startsWith(ADAPTER_KERNEL_PREFIX)).length;
      } else {
        // trainOnBatch reads the loss back: the time is the step's, GPU included.
        metrics = (await model.trainOnBatch(xs, ys)) as number[];
        run.trainSeconds += (performance.now() - t0) / 1000;
        run.stepsPerSecond = (step - 1) / run.trainSeconds;
      }
      tf.dispose([xs, ys]);
      [run.trainLoss, run.trainAccuracy] = metrics;
      run.losses.push([step, run.trainLoss]);
      run.step = step;
      if (step % config.evalEvery === 0 || step === config.steps) {
        const t1 = performance.now();
        const v = await validate(model, validation.xs, validation.ys);
        run.evalSeconds += (performance.now() - t1) / 1000;
        run.valAccuracy = v.accuracy;
        run.valLoss = v.loss;
        run.accuracies.push([step, v.accuracy]);
      }
      onProgress();
      // Let the page paint between steps.
      await new Promise((resolve) => setTimeout(resolve, 0));
    }
    run.done = true;
    onProgress();
  } finally {
    uninstall();
  }
}

/** A run that has not started. */
export function newRun(adapter: boolean): TfjsRun {
  return {
    name: adapter ? 'TF.js with webgpu-batchnorm' : 'Plain TF.js',
    adapter,
    step: 0,
    stepsPerSecond: NaN,
    trainSeconds: 0,
    evalSeconds: 0,
    trainLoss: NaN,
    trainAccuracy: NaN,
    valLoss: NaN,
    valAccuracy: NaN,
    losses: [],
    accuracies: [],
    kernels: {},
    adapterKernelCalls: 0,
    done: false,
  };
}

/** How closely the adapter's run (`ours`, on `oursModel`) follows plain TF.js's. */
export async function compareRuns(plainModel: tf.LayersModel, oursModel: tf.LayersModel, plain: TfjsRun, ours: TfjsRun): Promise<TfjsComparison> {
  const [a, b] = await Promise.all([oursModel, plainModel].map((m) => Promise.all(m.getWeights().map((w) => w.data()))));
  let maxWeightDifference = 0;
  a.forEach((values, i) => {
    for (let j = 0; j < values.length; j++) {
      const d = Math.abs(values[j] - b[i][j]) / (1 + Math.abs(b[i][j]));
      maxWeightDifference = Number.isNaN(d) ? Infinity : Math.max(maxWeightDifference, d);
    }
  });
  const maxAccuracyDifference = Math.max(...ours.accuracies.map(([, acc], i) => Math.abs(acc - plain.accuracies[i][1])));
  return {
    maxWeightDifference,
    valAccuracyDifference: Math.abs(ours.valAccuracy - plain.valAccuracy),
    valLossDifference: Math.abs(ours.valLoss - plain.valLoss),
    trainLossDifference: Math.abs(ours.trainLoss - plain.trainLoss),
    maxAccuracyDifference,
  };
}
