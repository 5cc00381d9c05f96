#!/usr/bin/env node
/**
 * Builds the demo, opens it in headless chromium (WebGPU on SwiftShader, or on the GPU chromium
 * finds), trains both runs with the page's defaults (or the URL parameters given), then prints
 * each run's validation accuracy and saves a screenshot.
 *
 *   npm run demo:headless -- [--query "steps=150&batch=16"] [--screenshot docs/demo.png]
 */
import { readFileSync } from 'node:fs';
import { chromium } from 'playwright-core';
import { build, preview } from 'vite';

const args = process.argv.slice(2);
const option = (name, fallback) => (args.includes(name) ? args[args.indexOf(name) + 1] : fallback);
const query = option('--query', '');
const screenshot = option('--screenshot', 'test/output/demo-headless.png');
const chromiumArgs = JSON.parse(readFileSync(new URL('../test/helpers/chromium-args.json', import.meta.url), 'utf8'));

await build({ mode: 'demo', logLevel: 'warn' });
const server = await preview({ mode: 'demo', logLevel: 'warn', preview: { host: '127.0.0.1', port: 0, open: false } });
const browser = await chromium.launch({ executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium', args: chromiumArgs, headless: true });
try {
  const page = await browser.newPage({ viewport: { width: 1320, height: 1000 } });
  page.on('pageerror', (e) => console.error('page error:', e.message));
  const started = Date.now();
  await page.goto(`${server.resolvedUrls.local[0]}?autostart=1${query ? `&${query}` : ''}`);
  let last = '';
  for (;;) {
    const state = await page.evaluate(() => window.demoState);
    if (['done', 'error', 'no-webgpu'].includes(state.status)) break;
    const p = state.progress;
    const line = p ? `step ${p.step}/${p.totalSteps}` : state.status;
    if (line !== last) process.stderr.write(`\r${line}   `);
    last = line;
    await new Promise((r) => setTimeout(r, 2000));
  }
  await page.waitForFunction(() => window.demoState.scaling !== undefined || window.demoState.status !== 'done', undefined, { timeout: 60_000 });
  const state = await page.evaluate(() => window.demoState);
  process.stderr.write('\n');
  if (state.status !== 'done') throw new Error(`the demo ended with status ${state.status}: ${state.message}`);
  await page.screenshot({ path: screenshot, fullPage: true });
  const c = state.config;
  console.log(`${state.adapter}: ${state.progress.totalSteps} steps of ${c.batch} (lr ${c.lr}, momentum ${c.momentum}), ${c.trainSamples} training / ${c.validationSamples} validation digits, ${((Date.now() - started) / 1000).toFixed(0)} s`);
  for (const r of state.progress.runs) {
    console.log(`  ${r.name}: validation accuracy ${(100 * r.valAccuracy).toFixed(1)}%, loss ${r.valLoss.toFixed(3)}, ${(r.step / r.busySeconds).toFixed(1)} steps/s`);
    console.log(`    accuracy by step: ${r.accuracies.map(([s, a]) => `${s}:${(100 * a).toFixed(1)}`).join(' ')}`);
  }
  for (const s of state.scaling) console.log(`  ${s.name}: condition number ${s.conditionNumber.toPrecision(3)}, ${s.steps} gradient-descent steps`);
  console.log(`screenshot: ${screenshot}`);
} finally {
  await browser.close();
  await server.close();
}
