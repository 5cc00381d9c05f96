/**
 * Trains the seeds' CNN twice side by side, with and without batch norm, from the same initial
 * weights on the same mini-batches, alternating one step of each. Reports progress through a
 * callback; the page draws it.
 */
import { MnistCnn } from './nn/mnist-cnn.js';
import { batches, type Samples } from './dataset.js';

/** Settings of a training session. */
export interface TrainingConfig {
  lr: number;
  momentum: number;
  batch: number;
  epochs: number;
  /** Plot the mean training loss of every this many steps. */
  logEvery: number;
  /**
   * Evaluate on the validation samples at step `evalFirst` (so accuracy shows up early), then
   * every `evalEvery` steps, and at the end.
   */
  evalEvery: number;
  /** The first evaluation's step (0: none before the first `evalEvery`). */
  evalFirst: number;
  /** Seed of the weights and of the data order, shared by both runs. */
  seed: number;
  /** Stop after this many steps even if the epochs are not done (0: no limit). */
  maxSteps: number;
}

/** What one run (with or without BN) has done so far. */
export interface RunProgress {
  name: string;
  batchNorm: boolean;
  step: number;
  /** Seconds the GPU spent on this run's steps (submit to done), for steps/s. */
  busySeconds: number;
  /** Mean training loss and accuracy of the last logged window. */
  trainLoss: number;
  trainAccuracy: number;
  valLoss: number;
  valAccuracy: number;
  /** Seconds spent evaluating on the validation samples. */
  evalSeconds: number;
  /** The loss became NaN or infinite: the run stops. */
  diverged: boolean;
  /** (step, mean training loss of the last logEvery steps) every logEvery steps. */
  losses: [number, number][];
  /** (step, validation accuracy) at each evaluation. */
  accuracies: [number, number][];
}

/** The state of a training session, passed to the page after every step. */
export interface TrainingProgress {
  step: number;
  totalSteps: number;
  stepsPerEpoch: number;
  running: boolean;
  done: boolean;
  runs: RunProgress[];
}

/** Whether the schedule evaluates after `step` (the last step is evaluated in any case). */
export function evaluatesAt(step: number, config: Pick<TrainingConfig, 'evalFirst' | 'evalEvery'>): boolean {
  return step === config.evalFirst || (config.evalEvery > 0 && step % config.evalEvery === 0);
}

/** Two runs of the CNN on one device; start, pause and reset drive them. */
export class SideBySideTraining {
  private readonly models: MnistCnn[];
  private readonly data: Generator<{ images: Float32Array; labels: Uint8Array }>;
  readonly progress: TrainingProgress;
  private loop: Promise<void> | null = null;
  /** Per run: sums of loss and accuracy since the last logged point. */
  private window = [0, 1].map(() => ({ loss: 0, accuracy: 0, steps: 0 }));
  private stopRequested = false;

  constructor(
    device: GPUDevice,
    train: Samples,
    private readonly validation: Samples,
    readonly config: TrainingConfig,
    private readonly onProgress: (p: TrainingProgress) => void,
  ) {
    this.models = [true, false].map(
      (batchNorm) => new MnistCnn(device, { batchNorm, seed: config.seed, lr: config.lr, momentum: config.momentum, label: batchNorm ? 'with BN' : 'without BN' }),
    );
    this.data = batches(train, config.batch, config.seed);
    const stepsPerEpoch = Math.floor(train.count / config.batch);
    const planned = stepsPerEpoch * config.epochs;
    this.progress = {
      step: 0,
      totalSteps: config.maxSteps > 0 ? Math.min(planned, config.maxSteps) : planned,
      stepsPerEpoch,
      running: false,
      done: false,
      runs: this.models.map((m) => ({
        name: m.batchNorm ? 'With batch norm' : 'Without batch norm',
        batchNorm: m.batchNorm,
        step: 0,
        busySeconds: 0,
        evalSeconds: 0,
        trainLoss: NaN,
        trainAccuracy: NaN,
        valLoss: NaN,
        valAccuracy: NaN,
        diverged: false,
        losses: [],
        accuracies: [],
      })),
    };
  }

  /** Starts or resumes training; resolves when it pauses or finishes. */
  start(): Promise<void> {
    if (!this.loop && !this.progress.done) {
      this.stopRequested = false;
      this.progress.running = true;
      this.loop = this.run().finally(() => {
        this.loop = null;
        this.progress.running = false;
        this.onProgress(this.progress);
      });
    }
    return this.loop ?? Promise.resolve();
  }

  /** Pauses after the current step. */
  pause(): Promise<void> {
    this.stopRequested = true;
    return this.loop ?? Promise.resolve();
  }

  /** Changes the learning rate of both runs from the next step on. */
  setLearningRate(lr: number): void {
    for (const m of this.models) m.setSgd({ lr });
  }

  /** Frees both models' GPU memory (after pausing). */
  async destroy(): Promise<void> {
    await this.pause();
    for (const m of this.models) m.destroy();
  }

  private async run(): Promise<void> {
    const p = this.progress;
    while (!this.stopRequested && p.step < p.totalSteps) {
      const batch = this.data.next().value!;
      for (const [i, model] of this.models.entries()) {
        const run = p.runs[i];
        if (run.diverged) continue;
        const t0 = performance.now();
        model.trainStep(batch.images, batch.labels);
        // Reading the batch's loss (a few bytes) waits for the step: busy time is the step's time.
        const m = await model.readLastMetrics();
        run.busySeconds += (performance.now() - t0) / 1000;
        run.step++;
        const w = this.window[i];
        w.loss += m.loss;
        w.accuracy += m.accuracy;
        w.steps++;
      }
      p.step++;
      const last = p.step === p.totalSteps;
      if (p.step % this.config.logEvery === 0 || last) this.log();
      if (evaluatesAt(p.step, this.config) || last) await this.evaluate();
      if (last) p.done = true;
      this.onProgress(p);
      // Let the page paint and handle input between steps.
      await new Promise((resolve) => setTimeout(resolve, 0));
    }
  }

  private log(): void {
    this.progress.runs.forEach((run, i) => {
      const w = this.window[i];
      if (run.diverged || w.steps === 0) return;
      run.trainLoss = w.loss / w.steps;
      run.trainAccuracy = w.accuracy / w.steps;
      run.losses.push([this.progress.step, run.trainLoss]);
      if (!Number.isFinite(run.trainLoss)) run.diverged = true;
      this.window[i] = { loss: 0, accuracy: 0, steps: 0 };
    });
  }

  private async evaluate(): Promise<void> {
    for (const [i, model] of this.models.entries()) {
      const run = this.progress.runs[i];
      if (run.diverged) continue;
      const t0 = performance.now();
      const m = await model.evaluate(this.validation.images, this.validation.labels);
      run.evalSeconds += (performance.now() - t0) / 1000;
      run.valLoss = m.loss;
      run.valAccuracy = m.accuracy;
      run.accuracies.push([this.progress.step, m.accuracy]);
    }
  }
}
