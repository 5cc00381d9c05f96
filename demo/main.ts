/**
 * The training demo page: the seeds' MNIST experiment with and without batch norm, the model
 * summary, and the feature-scaling panel. The defaults are a schedule (schedule.ts): the full
 * experiment on a GPU adapter, a short one on a CPU adapter such as SwiftShader; schedule=full or
 * schedule=short picks one. URL parameters override single settings: lr, momentum, batch, epochs,
 * steps (a cap), validation (samples), train (samples), logEvery, evalFirst, evalEvery, seed; and
 * autostart=1 starts training.
 *
 * window.demoState publishes what the page shows, for the e2e test.
 */
import './style.css';
import digits from 'virtual:mnist-digits';
import { $, adapterName, escapeHtml, failureShower, pageDevice } from './page.js';
import { MnistCnn, type SummaryRow } from './nn/mnist-cnn.js';
import { firstSamples, splitDigits } from './dataset.js';
import { SideBySideTraining, type TrainingConfig, type TrainingProgress } from './training.js';
import { scalingExperiment, type ScalingResult } from './scaling.js';
import { checkResult, chooseSchedule, describeSchedule, SCHEDULES, type AdapterDescription, type ScheduleChoice, type ScheduleName, type ResultCheck } from './schedule.js';
import { scalingPlot, trainingPlots } from './plots.js';

/** What the page publishes on window.demoState. */
export interface DemoState {
  status: 'loading' | 'ready' | 'training' | 'paused' | 'done' | 'no-webgpu' | 'error';
  message?: string;
  adapter?: string;
  /** The schedule the page runs (short on a CPU adapter, full on a GPU, or as the URL says). */
  schedule?: Omit<ScheduleChoice, 'settings'> & { other: ScheduleName; description?: string; otherDescription?: string };
  config?: TrainingConfig & { trainSamples: number; validationSamples: number };
  summary?: { rows: SummaryRow[]; total: number; trainable: number; nonTrainable: number };
  progress?: TrainingProgress;
  /** When training is done: batch norm's lead at the end, checked against the schedule's requirement. */
  result?: ResultCheck;
  scaling?: ScalingResult[];
}

declare global {
  interface Window {
    demoState: DemoState;
  }
}

const query = new URLSearchParams(location.search);
const state: DemoState = (window.demoState = { status: 'loading' });
const status = $('status');
const fail = failureShower(state, status);

async function main(): Promise<void> {
  const device = await pageDevice('demo device', fail);
  if (!device) return;
  const info = device.adapterInfo;
  state.adapter = adapterName(device);
  // Chromium's adapterInfo has no `type` yet (other browsers may): isCpuAdapter falls back on names.
  const choice = chooseSchedule(query, info as AdapterDescription | undefined);
  const { settings, ...chosen } = choice;
  state.schedule = { ...chosen, other: choice.name === 'full' ? 'short' : 'full' };

  status.textContent = 'Loading 10,000 MNIST digits…';
  const bytes = Uint8Array.from(atob(digits.base64), (c) => c.charCodeAt(0));
  const split = splitDigits(bytes, digits.count);
  const train = firstSamples(split.train, settings.train);
  const validation = firstSamples(split.validation, settings.validation);

  showSummary(device);
  $('app').hidden = false;
  status.textContent = `Running on ${state.adapter}. ${train.count} training and ${validation.count} validation digits (held out).`;
  status.className = 'status';

  showSchedule(choice, train.count, validation.count, split.train.count, split.validation.count);
  const trainer = setUpTraining(device, train, validation, choice);
  showScaling(device).catch((e: Error) => ($('scaling-table').textContent = `Feature scaling failed: ${e.message}`));
  state.status = 'ready';
  if (query.get('autostart') === '1') await trainer.start();
}

function showSummary(device: GPUDevice): void {
  const model = new MnistCnn(device, { batchNorm: true, label: 'summary' });
  const rows = model.summary();
  model.destroy();
  const total = rows.reduce((s, r) => s + r.params, 0);
  const trainable = rows.reduce((s, r) => s + r.trainableParams, 0);
  state.summary = { rows, total, trainable, nonTrainable: total - trainable };
  const fmt = (n: number) => n.toLocaleString('en-US');
  $('summary').innerHTML = `<table id="summary-table">
    <thead><tr><th>Layer (type)</th><th>Output shape</th><th>Param #</th><th>Trainable</th></tr></thead>
    <tbody>${rows
      .map((r) => `<tr><td>${r.name} (${r.type})</td><td>(None, ${r.outputShape.join(', ')})</td><td class="num">${fmt(r.params)}</td><td class="num">${fmt(r.trainableParams)}</td></tr>`)
      .join('')}</tbody>
    <tfoot>
      <tr><td colspan="2">Total params</td><td class="num" id="total-params">${fmt(total)}</td><td></td></tr>
      <tr><td colspan="2">Trainable params</td><td class="num" id="trainable-params">${fmt(trainable)}</td><td></td></tr>
      <tr><td colspan="2">Non-trainable params</td><td class="num" id="non-trainable-params">${fmt(total - trainable)}</td><td></td></tr>
    </tfoot></table>
    <p class="hint">Without batch norm the same network has ${fmt(total - 4 * (10 + 20 + 100))} parameters.</p>`;
}

/** Which schedule runs, why, and a link (and the headless command) for the other one. */
function showSchedule(choice: ScheduleChoice, trainCount: number, validationCount: number, allTrain: number, allValidation: number): void {
  const other: ScheduleName = choice.name === 'full' ? 'short' : 'full';
  const otherSettings = SCHEDULES[other];
  const link = new URLSearchParams(query);
  link.set('schedule', other);
  link.delete('autostart');
  const otherText = describeSchedule(otherSettings, Math.min(otherSettings.train, allTrain), Math.min(otherSettings.validation, allValidation));
  const why =
    choice.chosenBy === 'url'
      ? 'asked for in the URL'
      : choice.cpuAdapter
        ? 'the default on a CPU adapter such as this one, where the full experiment can take a quarter of an hour'
        : 'the default on a GPU';
  const overridden = choice.overrides.length > 0 ? ` URL parameters changed ${choice.overrides.join(', ')}.` : '';
  const how =
    other === 'full'
      ? `The full experiment, ${otherText}: <a id="other-schedule" href="?${escapeHtml(link.toString())}">open it with schedule=full</a>, or run <code>npm run demo:headless -- --full</code>.`
      : `The short schedule, ${otherText}: <a id="other-schedule" href="?${escapeHtml(link.toString())}">open it with schedule=short</a>.`;
  const description = describeSchedule(choice.settings, trainCount, validationCount);
  Object.assign(state.schedule!, { description, otherDescription: otherText });
  $('schedule').innerHTML =
    `<strong>${choice.name === 'full' ? 'Full' : 'Short'} schedule</strong> (${why}): ${description}.${overridden} ${how}`;
}

function setUpTraining(device: GPUDevice, train: ReturnType<typeof firstSamples>, validation: ReturnType<typeof firstSamples>, choice: ScheduleChoice) {
  const settings = choice.settings;
  const lrInput = $<HTMLInputElement>('lr');
  const lrValue = $<HTMLOutputElement>('lr-value');
  const momentumInput = $<HTMLInputElement>('momentum');
  const batchInput = $<HTMLSelectElement>('batch');
  const epochsInput = $<HTMLInputElement>('epochs');
  const [startButton, pauseButton, resetButton] = ['start', 'pause', 'reset'].map((id) => $<HTMLButtonElement>(id));
  // The slider moves in log10 steps of 0.05; a rate given in the URL is used exactly.
  let learningRate = settings.lr;
  lrInput.value = String(Math.log10(learningRate));
  momentumInput.value = String(settings.momentum);
  batchInput.value = String(settings.batch);
  epochsInput.value = String(settings.epochs);
  const lr = () => learningRate;
  const showLr = () => (lrValue.textContent = String(learningRate));
  showLr();

  let trainer: SideBySideTraining;
  let plots: ReturnType<typeof trainingPlots>;
  /** Settings changed on the page, away from the schedule's: the result is then not checked either. */
  const changedHere = new Set<string>();
  const create = () => {
    changedHere.clear();
    if (lr() !== settings.lr) changedHere.add('lr');
    for (const [key, input] of [['momentum', momentumInput], ['batch', batchInput], ['epochs', epochsInput]] as const) {
      if (Number(input.value) !== settings[key]) changedHere.add(key);
    }
    const config: TrainingConfig = {
      lr: lr(),
      momentum: Number(momentumInput.value),
      batch: Number(batchInput.value),
      epochs: Number(epochsInput.value),
      logEvery: settings.logEvery,
      evalFirst: settings.evalFirst,
      evalEvery: settings.evalEvery,
      seed: settings.seed,
      maxSteps: settings.steps,
    };
    state.config = { ...config, trainSamples: train.count, validationSamples: validation.count };
    $('eval-schedule').textContent = [
      config.evalFirst > 0 ? `at step ${config.evalFirst}` : '',
      config.evalEvery > 0 ? `every ${config.evalEvery} steps` : '',
      'at the end',
    ]
      .filter(Boolean)
      .join(', ');
    trainer = new SideBySideTraining(device, train, validation, config, render);
    for (const id of ['loss-plot', 'accuracy-plot']) $(id).replaceChildren();
    plots = trainingPlots($('loss-plot'), $('accuracy-plot'), trainer.progress.runs, trainer.progress.totalSteps);
    render(trainer.progress);
  };
  const render = (p: TrainingProgress) => {
    state.progress = p;
    if (state.status !== 'error') state.status = p.done ? 'done' : p.running ? 'training' : p.step > 0 ? 'paused' : 'ready';
    // The epoch the last step belongs to (1-based), and how far into it that step is.
    const epoch = p.step === 0 ? 1 : Math.floor((p.step - 1) / p.stepsPerEpoch) + 1;
    const within = p.step - (epoch - 1) * p.stepsPerEpoch;
    p.runs.forEach((r, i) => {
      const percent = (x: number) => (Number.isFinite(x) ? `${(100 * x).toFixed(1)}%` : '–');
      $(['run-bn', 'run-plain'][i]).innerHTML = `<h3>${r.name}</h3>
        <progress max="${p.stepsPerEpoch}" value="${within}"></progress>
        <div class="hint">epoch ${epoch} of ${trainer.config.epochs} · step ${r.step} of ${p.totalSteps}</div>
        <dl>
          <dt>steps/s</dt><dd>${r.busySeconds > 0 ? (r.step / r.busySeconds).toFixed(1) : '–'}</dd>
          <dt>training loss (last ${trainer.config.logEvery} steps)</dt><dd>${r.diverged ? '<span class="fail">diverged</span>' : Number.isFinite(r.trainLoss) ? r.trainLoss.toFixed(3) : '–'}</dd>
          <dt>validation accuracy</dt><dd class="val-accuracy">${percent(r.valAccuracy)}</dd>
        </dl>`;
    });
    plots.update(p.runs);
    const result = $('result');
    state.result = p.done ? checkResult({ name: choice.name, overrides: [...new Set([...choice.overrides, ...changedHere])] }, p.runs, p.step) : undefined;
    result.hidden = !state.result;
    result.className = `schedule ${state.result?.checked ? (state.result.ok ? 'ok' : 'fail') : ''}`;
    result.textContent = state.result ? `${state.result.text[0].toUpperCase()}${state.result.text.slice(1)}.` : '';
    startButton.disabled = p.running || p.done;
    pauseButton.disabled = !p.running;
    for (const input of [momentumInput, batchInput, epochsInput]) input.disabled = p.step > 0;
  };
  create();

  lrInput.addEventListener('input', () => {
    learningRate = Number((10 ** Number(lrInput.value)).toPrecision(2));
    showLr();
    trainer.setLearningRate(lr());
    state.config!.lr = lr();
    changedHere.add('lr');
  });
  startButton.addEventListener('click', () => void trainer.start().catch(trainingFailed));
  pauseButton.addEventListener('click', () => void trainer.pause());
  resetButton.addEventListener('click', async () => {
    await trainer.destroy();
    create();
  });
  return { start: () => trainer.start().catch(trainingFailed) };
}

function trainingFailed(e: Error): void {
  fail('error', `<strong>Training failed:</strong> ${escapeHtml(e.message)}`, e.message);
}

/** The notes' condition numbers for their own samples, beside the page's. */
const NOTES_CONDITION: Partial<Record<ScalingResult['key'], string>> = { raw: '9.2 × 10⁴', units: '281.7' };

async function showScaling(device: GPUDevice): Promise<void> {
  const results = await scalingExperiment(device);
  state.scaling = results;
  const fmt = (v: number) => (Math.abs(v) >= 1e4 ? v.toExponential(2) : v.toPrecision(4));
  $('scaling-table').innerHTML = `<table id="scaling-results">
    <thead><tr><th>Features</th><th>H = (1/n) Σ x xᵀ</th><th>Condition number</th><th>In the notes</th><th>Gradient-descent steps to within 10⁻⁶</th></tr></thead>
    <tbody>${results
      .map(
        (r) => `<tr data-key="${r.key}"><td>${r.name}</td><td>[[${fmt(r.hessian[0])}, ${fmt(r.hessian[1])}], [${fmt(r.hessian[2])}, ${fmt(r.hessian[3])}]]</td>
        <td class="num condition">${fmt(r.conditionNumber)}</td><td class="num">${NOTES_CONDITION[r.key] ?? ''}</td>
        <td class="num steps">${r.steps === null ? 'not converged' : r.steps.toLocaleString('en-US')}</td></tr>`,
      )
      .join('')}</tbody></table>`;
  scalingPlot($('scaling-plot'), results);
}

main().catch((e: Error) => fail('error', `<strong>Error:</strong> ${escapeHtml(e.message)}`, e.message));
