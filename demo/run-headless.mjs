#!/usr/bin/env node
/**
 * Builds the demo, opens it in headless chromium (WebGPU on SwiftShader, or on the GPU chromium
 * finds), trains both runs with the page's defaults (the short schedule on a CPU adapter, the full
 * experiment on a GPU) or the schedule and URL parameters given, prints each run's validation
 * accuracy at every evaluation as it happens, saves a screenshot, and checks the result: it exits
 * non-zero unless batch norm ends ahead of the run without it (by at least 2 points on the short
 * schedule; ahead at all on the full one, whose margin at the end is smaller; not checked when
 * URL parameters change the schedule).
 *
 *   npm run demo:headless -- [--full | --short] [--query "steps=150&batch=16"] [--screenshot docs/demo.png]
 */
import { readFileSync } from 'node:fs';
import { chromium } from 'playwright-core';
import { build, preview } from 'vite';

const args = process.argv.slice(2);
const option = (name, fallback) => (args.includes(name) ? args[args.indexOf(name) + 1] : fallback);
const schedule = args.includes('--full') ? 'full' : args.includes('--short') ? 'short' : '';
const query = [schedule && `schedule=${schedule}`, option('--query', '')].filter(Boolean).join('&');
const screenshot = option('--screenshot', 'test/output/demo-headless.png');
const chromiumArgs = JSON.parse(readFileSync(new URL('../test/helpers/chromium-args.json', import.meta.url), 'utf8'));
const percent = (a) => `${(100 * a).toFixed(1)}%`;
const seconds = () => `${process.uptime().toFixed(0)} s`;

/** Seconds since the command started, at the end of each phase. */
const phases = {};
await build({ mode: 'demo', logLevel: 'warn' });
phases.build = process.uptime();
const server = await preview({ mode: 'demo', logLevel: 'warn', preview: { host: '127.0.0.1', port: 0, open: false } });
const browser = await chromium.launch({ executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium', args: chromiumArgs, headless: true });
phases.chromium = process.uptime();
let failure = '';
try {
  const page = await browser.newPage({ viewport: { width: 1320, height: 1000 } });
  page.on('pageerror', (e) => console.error('page error:', e.message));
  const started = Date.now();
  await page.goto(`${server.resolvedUrls.local[0]}?autostart=1${query ? `&${query}` : ''}`);
  let announced = false;
  let progressLine = '';
  const printed = new Set();
  /** Prints the evaluations both runs have done (or a diverged run has skipped) since the last call. */
  const printEvaluations = (runs) => {
    const steps = [...new Set(runs.flatMap((r) => r.accuracies.map(([s]) => s)))].sort((a, b) => a - b);
    for (const step of steps) {
      if (printed.has(step)) continue;
      const at = runs.map((r) => r.accuracies.find(([s]) => s === step));
      if (at.some((a, i) => !a && !runs[i].diverged)) break;
      printed.add(step);
      if (progressLine) process.stderr.write('\n');
      progressLine = '';
      console.log(`  step ${step}: validation accuracy ${runs.map((r, i) => `${at[i] ? percent(at[i][1]) : 'diverged'} ${r.batchNorm ? 'with BN' : 'without'}`).join(', ')} (${seconds()})`);
    }
  };
  for (;;) {
    const state = await page.evaluate(() => window.demoState);
    if (!announced && state.schedule?.description && state.config) {
      const s = state.schedule;
      console.log(
        `${state.adapter} (${s.cpuAdapter ? 'a CPU adapter' : 'a GPU adapter'}): ${s.name} schedule${s.overrides.length ? `, with ${s.overrides.join(', ')} from --query` : ''}, ` +
          `${s.description} (lr ${state.config.lr}, momentum ${state.config.momentum}, seed ${state.config.seed})`,
      );
      announced = true;
    }
    if (state.progress) printEvaluations(state.progress.runs);
    if (!phases.page && state.progress?.running) phases.page = process.uptime();
    if (['done', 'error', 'no-webgpu'].includes(state.status)) break;
    const p = state.progress;
    const line = p ? `step ${p.step}/${p.totalSteps}` : state.status;
    if (process.stderr.isTTY && line !== progressLine) process.stderr.write(`\r${line}   `);
    progressLine = process.stderr.isTTY ? line : '';
    await new Promise((r) => setTimeout(r, 1000));
  }
  await page.waitForFunction(() => window.demoState.scaling !== undefined || window.demoState.status !== 'done', undefined, { timeout: 60_000 });
  const state = await page.evaluate(() => window.demoState);
  phases.training = process.uptime();
  if (progressLine) process.stderr.write('\n');
  if (state.status !== 'done') throw new Error(`the demo ended with status ${state.status}: ${state.message}`);
  await page.screenshot({ path: screenshot, fullPage: true });
  const c = state.config;
  const s = state.schedule;
  console.log(
    `${state.adapter}: ${s.name} schedule, ${state.progress.totalSteps} steps of ${c.batch} (lr ${c.lr}, momentum ${c.momentum}), ` +
      `${c.trainSamples} training / ${c.validationSamples} validation digits, ${((Date.now() - started) / 1000).toFixed(0)} s in the page, ${seconds()} in all`,
  );
  for (const r of state.progress.runs) {
    console.log(`  ${r.name}: validation accuracy ${percent(r.valAccuracy)}, loss ${r.valLoss.toFixed(3)}, ${(r.step / r.busySeconds).toFixed(1)} steps/s${r.diverged ? ' (diverged)' : ''}`);
    console.log(`    accuracy by step: ${r.accuracies.map(([step, a]) => `${step}:${(100 * a).toFixed(1)}`).join(' ')}`);
  }
  for (const x of state.scaling) console.log(`  ${x.name}: condition number ${x.conditionNumber.toPrecision(3)}, ${x.steps} gradient-descent steps`);
  console.log(`screenshot: ${screenshot}`);
  const took = (from, to) => `${(phases[to] - (from ? phases[from] : 0)).toFixed(0)} s`;
  console.log(
    `time: build ${took(undefined, 'build')}, chromium ${took('build', 'chromium')}, page load ${took('chromium', 'page')}, ` +
      `training and validation ${took('page', 'training')} (${state.progress.runs.map((r) => `${r.batchNorm ? 'with BN' : 'without'}: ${r.busySeconds.toFixed(0)} s training, ${r.evalSeconds.toFixed(0)} s validating`).join('; ')}), ${seconds()} in all`,
  );

  // The notes' result, checked by the page (demo/schedule.ts, checkResult): batch norm ahead at equal steps.
  console.log(`${state.result.text[0].toUpperCase()}${state.result.text.slice(1)}.`);
  if (!state.result.ok) failure = state.result.text;
  if (s.name === 'short') {
    console.log(`The full experiment, ${s.otherDescription}, takes about 15 min on SwiftShader (2 cores): npm run demo:headless -- --full`);
  } else if (s.cpuAdapter) {
    console.log(`The short schedule, ${s.otherDescription}, takes about 2 min on SwiftShader (2 cores): npm run demo:headless`);
  }
} finally {
  await browser.close();
  await server.close();
}
if (failure) {
  console.error(`demo:headless failed: ${failure}`);
  process.exit(1);
}
