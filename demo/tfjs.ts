/**
 * The TF.js page: one small tf.layers CNN (tfjs-training.ts) trained with plain TF.js and with
 * webgpu-batchnorm's kernels registered, one run after the other, from the same initial weights on
 * the same mini-batches, on TF.js's webgpu backend rebuilt on the page's device (useDeviceForTfjs:
 * getDevice()'s, with subgroups where offered). Shows each run's steps/s, loss and accuracy, the
 * kernels step 1 ran, and how closely the runs agree. URL parameters: steps, batch, lr, seed,
 * validation (held-out digits).
 *
 * window.tfjsDemo publishes what the page shows, for the e2e test.
 */
import './style.css';
import * as tf from '@tensorflow/tfjs';
import { WebGPUBackend } from '@tensorflow/tfjs-backend-webgpu';
import digits from 'virtual:mnist-digits';
import { useDeviceForTfjs } from '../src/tfjs/index.js';
import { $, adapterName, escapeHtml, failureShower, pageDevice } from './page.js';
import { firstSamples, splitDigits } from './dataset.js';
import { ADAPTER_KERNEL_PREFIX, compareRuns, digitTensors, newRun, tfjsModel, trainRun, TFJS_DEFAULTS, type TfjsComparison, type TfjsConfig, type TfjsRun } from './tfjs-training.js';
import { trainingPlots } from './plots.js';

/** Held-out digits validated on by default. */
const DEFAULT_VALIDATION = 500;

/** What the page publishes on window.tfjsDemo. */
export interface TfjsDemoState {
  status: 'loading' | 'training' | 'done' | 'no-webgpu' | 'error';
  message?: string;
  adapter?: string;
  /** TF.js's version and backend. */
  tfjs?: { version: string; backend: string };
  config?: TfjsConfig & { trainSamples: number; validationSamples: number; params: number };
  /** Plain TF.js first, then TF.js with the adapter. */
  runs?: TfjsRun[];
  /** When both runs are done. */
  comparison?: TfjsComparison;
}

declare global {
  interface Window {
    tfjsDemo: TfjsDemoState;
  }
}

const query = new URLSearchParams(location.search);
const state: TfjsDemoState = (window.tfjsDemo = { status: 'loading' });
const status = $('status');
const fail = failureShower(state, status);

/** A positive number from the URL, or the default. */
function setting(name: string, fallback: number): number {
  const v = Number(query.get(name) ?? NaN);
  return Number.isFinite(v) && v > 0 ? v : fallback;
}

async function main(): Promise<void> {
  const device = await pageDevice('TF.js demo device', fail);
  if (!device) return;
  state.adapter = adapterName(device);
  await useDeviceForTfjs(tf, device, { WebGPUBackend });
  state.tfjs = { version: tf.version.tfjs, backend: tf.getBackend() };

  status.textContent = 'Loading 10,000 MNIST digits…';
  const bytes = Uint8Array.from(atob(digits.base64), (c) => c.charCodeAt(0));
  const split = splitDigits(bytes, digits.count);
  const validation = firstSamples(split.validation, Math.floor(setting('validation', DEFAULT_VALIDATION)));
  const config: TfjsConfig = {
    ...TFJS_DEFAULTS,
    steps: Math.floor(setting('steps', TFJS_DEFAULTS.steps)),
    batch: Math.floor(setting('batch', TFJS_DEFAULTS.batch)),
    lr: setting('lr', TFJS_DEFAULTS.lr),
    seed: Math.floor(setting('seed', TFJS_DEFAULTS.seed)),
  };

  // One set of initial weights for both models.
  const plainModel = tfjsModel(config);
  const oursModel = tfjsModel(config);
  oursModel.setWeights(plainModel.getWeights());
  state.config = { ...config, trainSamples: split.train.count, validationSamples: validation.count, params: plainModel.countParams() };
  const runs = (state.runs = [newRun(false), newRun(true)]);

  $('app').hidden = false;
  status.textContent = `Running on ${state.adapter}, TF.js ${state.tfjs.version} on its ${state.tfjs.backend} backend.`;
  status.className = 'status';
  $('setup').innerHTML =
    `${config.steps} steps of ${config.batch} digits (of ${split.train.count.toLocaleString('en-US')}), SGD at learning rate ${config.lr}, ` +
    `BatchNormalization momentum ${config.bnMomentum}, seed ${config.seed}; validated on ${validation.count.toLocaleString('en-US')} held-out digits ` +
    `every ${config.evalEvery} steps. ${plainModel.countParams().toLocaleString('en-US')} parameters. Plain TF.js runs first, then the adapter.`;
  const plots = trainingPlots($('loss-plot'), $('accuracy-plot'), runs, config.steps);
  const render = () => {
    runs.forEach((r, i) => showRun($(['run-plain', 'run-adapter'][i]), r, config.steps));
    plots.update(runs);
    showAccuracyTable(runs);
  };
  render();

  const valTensors = digitTensors(validation.images, validation.labels);
  state.status = 'training';
  await trainRun(plainModel, runs[0], split.train, valTensors, config, render);
  await trainRun(oursModel, runs[1], split.train, valTensors, config, render);
  state.comparison = await compareRuns(plainModel, oursModel, runs[0], runs[1]);
  tf.dispose([valTensors.xs, valTensors.ys]);
  showComparison(state.comparison, runs);
  state.status = 'done';
}

function showRun(el: HTMLElement, r: TfjsRun, steps: number): void {
  const percent = (x: number) => (Number.isFinite(x) ? `${(100 * x).toFixed(1)}%` : '–');
  const fixed = (x: number, digits: number) => (Number.isFinite(x) ? x.toFixed(digits) : '–');
  const ours = Object.entries(r.kernels).filter(([name]) => name.startsWith(ADAPTER_KERNEL_PREFIX));
  const kernels =
    r.step === 0
      ? '–'
      : ours.length > 0
        ? ours.map(([name, n]) => `<code>${name}</code> ×${n}`).join(', ')
        : `TF.js's own (<code>FusedBatchNorm</code> ×${r.kernels.FusedBatchNorm ?? 0}, its gradient from other kernels)`;
  el.innerHTML = `<h3>${r.name}</h3>
    <progress max="${steps}" value="${r.step}"></progress>
    <div class="hint">step ${r.step} of ${steps}${r.done ? ' · done' : ''}</div>
    <dl>
      <dt>steps/s</dt><dd class="steps-per-second">${fixed(r.stepsPerSecond, 1)}</dd>
      <dt>training loss (last step)</dt><dd class="train-loss">${fixed(r.trainLoss, 4)}</dd>
      <dt>validation accuracy</dt><dd class="val-accuracy">${percent(r.valAccuracy)}</dd>
      <dt>validation loss</dt><dd class="val-loss">${fixed(r.valLoss, 4)}</dd>
      <dt>batch-norm kernels in step 1</dt><dd class="kernels">${kernels}</dd>
    </dl>`;
}

function showAccuracyTable(runs: TfjsRun[]): void {
  const [plain, ours] = runs;
  const rows = plain.accuracies.map(([step, a], i) => {
    const b = ours.accuracies[i]?.[1];
    const cell = (x: number | undefined) => (x === undefined ? '' : `${(100 * x).toFixed(1)}%`);
    return `<tr><td class="num">${step}</td><td class="num">${cell(a)}</td><td class="num">${cell(b)}</td><td class="num">${b === undefined ? '' : (100 * (b - a)).toFixed(1)}</td></tr>`;
  });
  $('accuracy-table').innerHTML = `<table id="accuracy-results">
    <thead><tr><th>step</th><th>plain TF.js</th><th>with webgpu-batchnorm</th><th>difference (points)</th></tr></thead>
    <tbody>${rows.join('')}</tbody></table>`;
}

function showComparison(c: TfjsComparison, runs: TfjsRun[]): void {
  const [plain, ours] = runs;
  const el = $('comparison');
  const ran = ours.adapterKernelCalls > 0 && plain.adapterKernelCalls === 0;
  el.hidden = false;
  el.className = `schedule ${ran ? 'ok' : 'fail'}`;
  el.textContent =
    `${ran ? `The adapter's kernels ran (${ours.adapterKernelCalls} calls in step 1; none in plain TF.js's)` : "The adapter's kernels did NOT run"}. ` +
    `After ${ours.step} steps the runs differ by ${(100 * c.valAccuracyDifference).toFixed(1)} points of validation accuracy ` +
    `(at most ${(100 * c.maxAccuracyDifference).toFixed(1)} at any evaluation), ${c.valLossDifference.toExponential(1)} in validation loss, ` +
    `${c.trainLossDifference.toExponential(1)} in the last step's training loss, and at most ${c.maxWeightDifference.toExponential(1)} ` +
    `in any weight (|Δ| / (1 + |w|)). Steps/s: ${plain.stepsPerSecond.toFixed(1)} plain, ${ours.stepsPerSecond.toFixed(1)} with the adapter.`;
}

main().catch((e: Error) => fail('error', `<strong>Error:</strong> ${escapeHtml(e.message)}`, e.message));
