/**
 * The built demo site in headless chromium (WebGPU on SwiftShader):
 * - the training demo (/): on SwiftShader (a CPU adapter) the page picks the short schedule, and
 *   schedule=full the full experiment's settings; before training the charts have their axes and
 *   the legends hold no placeholders; with the page's defaults (the short schedule) both runs of
 *   the seeds' CNN train on the GPU, with a first validation accuracy at step 10; the run with
 *   batch norm must reach a stated accuracy and beat the run without it by a stated margin at
 *   equal steps, and the page's own check (what `npm run demo:headless` exits on) must pass; the
 *   model summary shows the seeds' parameter counts, and the feature-scaling panel the condition
 *   numbers (raw, change of units, min-max, standardized) and gradient-descent steps;
 * - without WebGPU (no navigator.gpu, or no adapter) the pages tell a browser visitor which
 *   browsers and which flag, not getDevice's apt-get advice for Node;
 * - the check page (/check.html): getDevice() takes the browser's navigator.gpu path, every one of
 *   the seven layouts matches the float64 reference, and so do LayerNorm, RMSNorm, GroupNorm and
 *   InstanceNorm, forward and backward;
 * - the TF.js page (/tfjs.html): one small tf.layers CNN trained with plain TF.js and with
 *   webgpu-batchnorm/tfjs's kernels registered, from the same initial weights on the same batches;
 *   both runs finish, step 1 of the adapter's run ran its BatchNorm and BatchNormGrad kernels (and
 *   plain TF.js's none of them), both validation accuracies are at least 50 points above chance,
 *   and the runs agree: validation accuracy within 1 point, losses within 1e-3, every weight within
 *   1e-4 (|Δ| / (1 + |w|)); without WebGPU it gives a visitor the same advice as the other pages.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync } from 'node:fs';
import type { DemoResult } from '../../demo/check.js';
import type { DemoState } from '../../demo/main.js';
import type { TfjsDemoState } from '../../demo/tfjs.js';
import { evaluatesAt } from '../../demo/training.js';
import { checkResult, chooseSchedule, FULL_SCHEDULE, isCpuAdapter, REQUIRED_MARGIN, SHORT_SCHEDULE } from '../../demo/schedule.js';
import { LAYOUTS } from '../../src/index.js';
import { openSite, type SiteUnderTest } from '../helpers/browser.js';
import type { Page } from 'playwright-core';

let site: SiteUnderTest;

beforeAll(async () => {
  site = await openSite('demo');
});

afterAll(async () => {
  await site?.close();
});

describe('demo page in chromium (WebGPU on SwiftShader)', () => {
  it('runs every layout and the four family layers on the GPU and matches the float64 reference', async () => {
    const page = await site.browser.newPage({ viewport: { width: 1000, height: 640 } });
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
    await page.goto(`${site.url}check.html`);
    await page.waitForFunction(() => window.demoResult !== undefined, undefined, { timeout: 90_000 });
    const result = (await page.evaluate(() => window.demoResult)) as DemoResult;
    mkdirSync('test/output', { recursive: true });
    await page.screenshot({ path: 'test/output/demo-check.png', fullPage: true });

    expect(result.error, 'page error').toBeUndefined();
    expect(result.adapter).not.toBe('none');
    expect(LAYOUTS).toHaveLength(7);
    expect(result.cases.map((c) => c.layout)).toEqual([...LAYOUTS]);
    const rows = await page.$$eval('#results tbody tr', (trs) => trs.map((tr) => tr.children[0].textContent));
    expect(rows).toEqual([...LAYOUTS]);
    for (const c of result.cases) {
      // The page's own bound (1e-4 absolute on O(1) outputs); the vitest suites hold the tight ones.
      expect(Math.max(c.yError, c.dxError, c.inferenceError), `${c.layout} [${c.shape}]`).toBeLessThanOrEqual(1e-4);
    }
    // The rest of the family: one training step each, forward and backward.
    const family = ['LayerNorm', 'RMSNorm', 'GroupNorm', 'InstanceNorm'];
    expect(result.family.map((c) => c.layer)).toEqual(family);
    const familyRows = await page.$$eval('#family-results tbody tr', (trs) => trs.map((tr) => tr.children[0].textContent));
    expect(familyRows).toEqual(family);
    for (const c of result.family) {
      expect(Math.max(c.yError, c.dxError, c.paramGradError), `${c.layer} [${c.shape}]`).toBeLessThanOrEqual(1e-4);
    }
    expect(await page.$$eval('#family-results td.fail', (tds) => tds.length)).toBe(0);
    expect(result.ok).toBe(true);
    expect(await page.textContent('#status')).toContain('All layouts match the float64 reference');
    expect(await page.textContent('#status')).toContain('and so do LayerNorm, RMSNorm, GroupNorm and InstanceNorm');
    // The training demo exists now: the page links to it instead of promising it.
    const text = await page.textContent('body');
    expect(text).not.toContain('comes later');
    for (const layout of LAYOUTS) expect(text).toContain(layout);
    expect(await page.getAttribute('a[href="./"]', 'href')).toBe('./');
    expect(errors).toEqual([]);
    await page.close();
  });
});

/**
 * The e2e budget: the page's defaults, which on SwiftShader are the short schedule (SHORT_SCHEDULE:
 * the full experiment's first 50 steps of 32 digits at learning rate 0.1, validated on 500
 * held-out digits at steps 10, 20, 40 and 50). The same run as `npm run demo:headless`.
 */
const BUDGET = 'autostart=1';
/** Measured on SwiftShader: 91.2% with BN, 74.2% without (deterministic kernels, fixed seeds). */
const MIN_BN_ACCURACY = 0.85;
const MIN_MARGIN = 0.08;
/** The steps the short schedule validates at. */
const SHORT_EVAL_STEPS = Array.from({ length: SHORT_SCHEDULE.steps }, (_, i) => i + 1).filter(
  (step) => evaluatesAt(step, SHORT_SCHEDULE) || step === SHORT_SCHEDULE.steps,
);

/** A uPlot legend value the demo allows: a number (maybe with thousands separators, an exponent or %), or nothing. */
const LEGEND_VALUE = /^(|-?\d{1,3}(,\d{3})*(\.\d+)?(e[+-]\d+)?%?)$/;

/** The values of every uPlot legend on the page, by chart container id. */
function legendValues(page: Page): Promise<Record<string, string[]>> {
  return page.$$eval('.uplot', (plots) =>
    Object.fromEntries(plots.map((p) => [p.parentElement!.id, Array.from(p.querySelectorAll('.u-legend .u-value'), (v) => v.textContent ?? '')])),
  );
}

/** Painted (non-transparent) canvas pixels of a uPlot chart left of its plot area (y axis) and below it (x axis). */
function axisInk(page: Page, containerId: string): Promise<{ yAxis: number; xAxis: number }> {
  return page.$eval(`#${containerId}`, (el) => {
    const canvas = el.querySelector('canvas')!;
    const box = canvas.getBoundingClientRect();
    const plot = el.querySelector('.u-over')!.getBoundingClientRect();
    const scale = canvas.width / box.width;
    const ctx = canvas.getContext('2d')!;
    const ink = (x: number, y: number, w: number, h: number) => {
      const data = ctx.getImageData(Math.round(x * scale), Math.round(y * scale), Math.round(w * scale), Math.round(h * scale)).data;
      let n = 0;
      for (let i = 3; i < data.length; i += 4) if (data[i] > 0) n++;
      return n;
    };
    return {
      yAxis: ink(0, plot.top - box.top, plot.left - box.left, plot.height),
      xAxis: ink(plot.left - box.left, plot.bottom - box.top, plot.width, box.bottom - plot.bottom),
    };
  });
}

describe('training demo in chromium (WebGPU on SwiftShader)', () => {
  it('before training: the loss and accuracy charts have their axes, and no legend shows a placeholder', async () => {
    const page = await site.browser.newPage({ viewport: { width: 1320, height: 1000 } });
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`${site.url}?steps=150&batch=16`);
    await page.waitForFunction(() => window.demoState?.status === 'ready');
    await page.waitForFunction(() => window.demoState.scaling !== undefined, undefined, { timeout: 60_000 });
    mkdirSync('test/output', { recursive: true });
    await page.screenshot({ path: 'test/output/demo-before-training.png', fullPage: true });
    const state = (await page.evaluate(() => window.demoState)) as DemoState;
    expect(state.progress!.step).toBe(0);
    expect(state.progress!.runs.map((r) => r.losses.length)).toEqual([0, 0]);
    for (const id of ['loss-plot', 'accuracy-plot']) {
      // Tick labels of both axes are painted although there is no point yet.
      const ink = await axisInk(page, id);
      expect(ink.yAxis, `${id} y axis`).toBeGreaterThan(100);
      expect(ink.xAxis, `${id} x axis`).toBeGreaterThan(100);
    }
    const legends = await legendValues(page);
    expect(Object.keys(legends).sort()).toEqual(['accuracy-plot', 'loss-plot', 'scaling-plot']);
    // Nothing to show yet: empty, not uPlot's "--".
    expect(legends['loss-plot']).toEqual(['', '', '']);
    expect(legends['accuracy-plot']).toEqual(['', '', '']);
    for (const values of Object.values(legends)) for (const v of values) expect(v).toMatch(LEGEND_VALUE);
    expect(await page.textContent('#eval-schedule')).toBe(`at step 10, every ${SHORT_SCHEDULE.evalEvery} steps, at the end`);
    // SwiftShader is a CPU adapter: the short schedule, with the URL's batch and steps.
    expect(state.schedule).toMatchObject({ name: 'short', chosenBy: 'adapter', cpuAdapter: true, overrides: ['batch', 'steps'], other: 'full' });
    expect(state.config).toMatchObject({ lr: SHORT_SCHEDULE.lr, batch: 16, maxSteps: 150, validationSamples: SHORT_SCHEDULE.validation });
    const scheduleText = (await page.textContent('#schedule'))!;
    expect(scheduleText).toContain('Short schedule (the default on a CPU adapter');
    expect(scheduleText).toContain('URL parameters changed batch, steps.');
    expect(scheduleText).toContain('npm run demo:headless -- --full');
    expect(await page.getAttribute('#other-schedule', 'href')).toBe('?steps=150&batch=16&schedule=full');
    expect(await page.isHidden('#result')).toBe(true);
    expect(errors).toEqual([]);
    await page.close();
  });

  it('schedule=full gives the full experiment\'s settings on a CPU adapter, and URL parameters still override', async () => {
    const page = await site.browser.newPage({ viewport: { width: 1320, height: 1000 } });
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`${site.url}?schedule=full`);
    await page.waitForFunction(() => window.demoState?.status === 'ready');
    let state = (await page.evaluate(() => window.demoState)) as DemoState;
    expect(state.schedule).toMatchObject({ name: 'full', chosenBy: 'url', cpuAdapter: true, overrides: [], other: 'short' });
    // The page's defaults before the short schedule: 2 epochs of the 8,000 training digits in
    // batches of 32 (500 steps), learning rate 0.1, validated on all 2,000 held-out digits.
    expect(state.config).toEqual({
      lr: 0.1, momentum: 0, batch: 32, epochs: 2, logEvery: 10, evalFirst: 10, evalEvery: 50, seed: 1, maxSteps: 0,
      trainSamples: 8000, validationSamples: 2000,
    });
    expect(state.progress!.totalSteps).toBe(500);
    expect(await page.textContent('#eval-schedule')).toBe('at step 10, every 50 steps, at the end');
    expect(await page.inputValue('#batch')).toBe('32');
    expect(await page.textContent('#lr-value')).toBe('0.1');
    const scheduleText = (await page.textContent('#schedule'))!;
    expect(scheduleText).toContain('Full schedule (asked for in the URL): 2 epochs of 8,000 digits in batches of 32 (500 steps) at learning rate 0.1, validated on 2,000 held-out digits.');
    expect(await page.getAttribute('#other-schedule', 'href')).toBe('?schedule=short');

    await page.goto(`${site.url}?schedule=full&lr=0.2&steps=40`);
    await page.waitForFunction(() => window.demoState?.status === 'ready');
    state = (await page.evaluate(() => window.demoState)) as DemoState;
    expect(state.schedule).toMatchObject({ name: 'full', overrides: ['lr', 'steps'] });
    expect(state.config).toMatchObject({ lr: 0.2, batch: 32, maxSteps: 40, validationSamples: 2000 });
    expect(state.progress!.totalSteps).toBe(40);
    expect(errors).toEqual([]);
    await page.close();
  });

  it(
    'trains both runs; batch norm beats no batch norm at equal steps; the summary and scaling panel show the notes\' numbers',
    async () => {
      const page = await site.browser.newPage({ viewport: { width: 1320, height: 1000 } });
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(e.message));
      page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
      await page.goto(`${site.url}?${BUDGET}`);
      // The first validation accuracy shows up early, long before the end.
      await page.waitForFunction(
        () =>
          ['error', 'no-webgpu'].includes(window.demoState?.status) ||
          (window.demoState?.progress?.runs.every((r) => r.accuracies.length > 0) &&
            Array.from(document.querySelectorAll('.val-accuracy'), (e) => e.textContent).every((t) => t?.endsWith('%'))),
        undefined,
        { timeout: 200_000, polling: 250 },
      );
      const early = (await page.evaluate(() => window.demoState)) as DemoState;
      expect(early.message, 'page error').toBeUndefined();
      expect(early.progress!.runs[0].accuracies[0][0]).toBe(10);
      expect(early.progress!.step).toBeLessThan(50);
      expect(await page.$$eval('.val-accuracy', (els) => els.map((e) => e.textContent))).toEqual(
        early.progress!.runs.map((r) => `${(100 * r.valAccuracy).toFixed(1)}%`),
      );

      await page.waitForFunction(() => ['done', 'error', 'no-webgpu'].includes(window.demoState?.status), undefined, { timeout: 500_000, polling: 1000 });
      // The scaling panel runs beside training; give it its moment.
      await page.waitForFunction(() => window.demoState.scaling !== undefined, undefined, { timeout: 60_000 });
      const state = (await page.evaluate(() => window.demoState)) as DemoState;
      mkdirSync('test/output', { recursive: true });
      await page.screenshot({ path: 'test/output/demo-training.png', fullPage: true });

      expect(state.message, 'page error').toBeUndefined();
      expect(state.status).toBe('done');
      const [bn, plain] = state.progress!.runs;
      expect([bn.batchNorm, plain.batchNorm]).toEqual([true, false]);
      // The page's defaults on SwiftShader: the short schedule, unchanged.
      expect(state.schedule).toMatchObject({ name: 'short', chosenBy: 'adapter', cpuAdapter: true, overrides: [] });
      const last = SHORT_SCHEDULE.steps;
      expect([bn.step, plain.step]).toEqual([last, last]);
      expect(SHORT_EVAL_STEPS).toEqual([10, 20, 40, 50]);
      expect(bn.accuracies.map(([step]) => step)).toEqual(SHORT_EVAL_STEPS);
      expect(plain.accuracies.map(([step]) => step)).toEqual(SHORT_EVAL_STEPS);
      const seconds = (r: typeof bn) => `${r.busySeconds.toFixed(0)} s training, ${r.evalSeconds.toFixed(0)} s validating`;
      console.log(
        `validation accuracy at steps ${SHORT_EVAL_STEPS.join(', ')}: ${bn.accuracies.map(([, a]) => (100 * a).toFixed(1)).join(', ')}% with BN (${seconds(bn)}), ` +
          `${plain.accuracies.map(([, a]) => (100 * a).toFixed(1)).join(', ')}% without (${seconds(plain)})`,
      );
      expect(bn.valAccuracy).toBeGreaterThanOrEqual(MIN_BN_ACCURACY);
      expect(bn.valAccuracy - plain.valAccuracy).toBeGreaterThanOrEqual(MIN_MARGIN);
      expect(bn.trainLoss).toBeLessThan(plain.trainLoss);
      // The page's own check, the one `npm run demo:headless` exits on: at least 2 points ahead.
      expect(state.result).toMatchObject({ checked: true, ok: true, required: REQUIRED_MARGIN.short, step: last });
      expect(state.result!.margin).toBeCloseTo(100 * (bn.valAccuracy - plain.valAccuracy), 6);
      expect(state.result!.margin).toBeGreaterThanOrEqual(REQUIRED_MARGIN.short);
      expect(await page.textContent('#result')).toContain('as the notes say');
      expect(await page.isVisible('#result')).toBe(true);
      // What the page shows agrees with what it published.
      const shown = await page.$$eval('.val-accuracy', (els) => els.map((e) => e.textContent));
      expect(shown).toEqual([bn, plain].map((r) => `${(100 * r.valAccuracy).toFixed(1)}%`));

      // Legends: off the charts, the training charts' legends show the last step's values; the scaling chart's is empty.
      const legends = await legendValues(page);
      expect(legends['loss-plot']).toEqual([String(last), bn.trainLoss.toFixed(3), plain.trainLoss.toFixed(3)]);
      expect(legends['accuracy-plot']).toEqual([String(last), ...[bn, plain].map((r) => `${(100 * r.valAccuracy).toFixed(1)}%`)]);
      // Under the cursor: the values there, or nothing where a series has no point (never "--" or NaN).
      for (const id of ['loss-plot', 'accuracy-plot', 'scaling-plot']) {
        for (const fraction of [0.2, 0.5, 0.8]) {
          const plot = (await page.$(`#${id} .u-over`))!;
          await plot.scrollIntoViewIfNeeded();
          const box = (await plot.boundingBox())!;
          await page.mouse.move(box.x + fraction * box.width, box.y + box.height / 2);
          await page.evaluate(() => new Promise(requestAnimationFrame));
          const values = (await legendValues(page))[id];
          expect(values[0], `${id} at ${fraction}: the step under the cursor`).toMatch(/^\d[\d,]*$/);
          for (const v of values) expect(v, `${id} at ${fraction}: ${values.join(' | ')}`).toMatch(LEGEND_VALUE);
        }
      }
      await page.mouse.move(0, 0);

      // The seeds' Keras summary table.
      expect(await page.textContent('#total-params')).toBe('38,910');
      expect(await page.textContent('#trainable-params')).toBe('38,650');
      expect(await page.textContent('#non-trainable-params')).toBe('260');
      const rows = await page.$$eval('#summary-table tbody tr', (trs) => trs.map((tr) => Array.from(tr.children, (td) => td.textContent)));
      // A BN layer: 4·C parameters, 2·C of them trainable.
      expect(rows).toContainEqual(['batch_normalization_1 (BatchNormalization)', '(None, 10, 24, 24)', '40', '20']);
      expect(rows).toContainEqual(['batch_normalization_3 (BatchNormalization)', '(None, 100)', '400', '200']);
      expect(rows).toContainEqual(['dense_1 (Dense)', '(None, 100)', '32,100', '32,100']);

      // Feature scaling: the raw Hessian is as badly conditioned as the notes say (9.2e4); the notes'
      // change of units (thousands of dollars, feet) helps (281.7 in the notes; about 303 for the
      // population; λmax/λmin of this sample of 1000), scaling fixes it.
      expect(state.scaling!.map((r) => r.key)).toEqual(['raw', 'units', 'min-max', 'standardize']);
      const [raw, units, minMax, standardized] = state.scaling!;
      console.log(
        `feature scaling: ${state.scaling!.map((r) => `${r.key} condition number ${r.conditionNumber.toPrecision(4)}, ${r.steps} GD steps`).join('; ')}`,
      );
      expect(raw.conditionNumber).toBeGreaterThan(5e4);
      expect(raw.conditionNumber).toBeLessThan(2e5);
      expect(units.conditionNumber).toBeGreaterThan(250);
      expect(units.conditionNumber).toBeLessThan(360);
      // The same people in other units: H near the notes' [[9.1, 17.2], [17.2, 33.1]].
      const [h11, h12, , h22] = units.hessian;
      expect(h11).toBeGreaterThan(8.6);
      expect(h11).toBeLessThan(9.7);
      expect(h12).toBeGreaterThan(16.6);
      expect(h12).toBeLessThan(17.9);
      expect(h22).toBeGreaterThan(32.5);
      expect(h22).toBeLessThan(33.8);
      expect(standardized.conditionNumber).toBeLessThan(1.5);
      expect(minMax.conditionNumber).toBeLessThan(raw.conditionNumber / 100);
      expect(minMax.conditionNumber).toBeLessThan(units.conditionNumber);
      expect(raw.steps).not.toBeNull();
      expect(standardized.steps!).toBeLessThan(minMax.steps!);
      expect(minMax.steps!).toBeLessThan(units.steps!);
      expect(units.steps!).toBeLessThan(raw.steps! / 100);
      expect(minMax.steps!).toBeLessThan(raw.steps! / 100);
      const table = await page.$$eval('#scaling-results tbody tr', (trs) => trs.map((tr) => Array.from(tr.children, (td) => td.textContent!.trim())));
      expect(table).toHaveLength(4);
      const unitsRow = table[1];
      expect(unitsRow[0]).toBe('Change of units (thousands of dollars, feet)');
      expect(Number(unitsRow[2])).toBeCloseTo(units.conditionNumber, 0);
      expect(unitsRow[3]).toBe('281.7');
      expect(unitsRow[4]).toBe(units.steps!.toLocaleString('en-US'));
      expect(await page.$$eval('.uplot', (plots) => plots.length)).toBe(3);
      expect(errors).toEqual([]);
      await page.close();
    },
    600_000,
  );

  /** What every page must tell a visitor without WebGPU: where it runs, the flag, a secure context; no apt-get. */
  const expectBrowserAdvice = (text: string) => {
    for (const words of ['Chrome and Edge 113', 'Safari 26', 'Firefox 141', 'chrome://flags/#enable-unsafe-webgpu', 'https', 'localhost']) {
      expect(text).toContain(words);
    }
    expect(text).not.toContain('apt-get');
    expect(text).not.toContain('Vulkan ICD');
  };

  for (const [what, init, headline] of [
    ['has no WebGPU', () => delete (Navigator.prototype as { gpu?: unknown }).gpu, 'This browser has no WebGPU'],
    ['offers no GPU adapter', () => (GPU.prototype.requestAdapter = async () => null), 'offered no GPU adapter'],
  ] as const) {
    it(`tells a browser visitor what to do, instead of a blank page or apt-get, when the browser ${what}`, async () => {
      const page = await site.browser.newPage();
      await page.addInitScript(init);
      await page.goto(site.url);
      await page.waitForFunction(() => window.demoState?.status === 'no-webgpu');
      const status = (await page.textContent('#status'))!;
      expect(status).toContain(headline);
      expectBrowserAdvice(status);
      expect(await page.isHidden('#app')).toBe(true);
      mkdirSync('test/output', { recursive: true });
      await page.screenshot({ path: `test/output/demo-no-webgpu-${what.replace(/ /g, '-')}.png`, fullPage: true });

      await page.goto(`${site.url}check.html`);
      await page.waitForFunction(() => window.demoResult !== undefined);
      const result = (await page.evaluate(() => window.demoResult)) as DemoResult;
      expect(result.ok).toBe(false);
      expect(result.cases).toEqual([]);
      const checkStatus = (await page.textContent('#status'))!;
      expect(checkStatus).toContain(headline);
      expectBrowserAdvice(checkStatus);

      await page.goto(`${site.url}tfjs.html`);
      await page.waitForFunction(() => window.tfjsDemo?.status === 'no-webgpu');
      const tfjsStatus = (await page.textContent('#status'))!;
      expect(tfjsStatus).toContain(headline);
      expectBrowserAdvice(tfjsStatus);
      expect(await page.isHidden('#app')).toBe(true);
      await page.close();
    });
  }
});

/** The TF.js page's defaults (TFJS_DEFAULTS in demo/tfjs-training.ts, not imported here: it imports TF.js). */
const TFJS_CONFIG = { steps: 40, batch: 32, lr: 0.1, bnMomentum: 0.9, evalEvery: 10, seed: 1, validationSamples: 500 };
/**
 * Measured on SwiftShader (headless chromium): 82.2% for both runs after 40 steps, with the
 * validation losses 1.2e-7 apart, the last training losses 6e-8 and every weight within 8e-8 (both
 * runs compute the same float32 math in different summation orders, and smooth SGD hardly
 * amplifies the rounding). Chance is 10%: both runs must be at least 50 points above it.
 */
const TFJS_MIN_ACCURACY = 0.6;
/**
 * How closely the runs must agree: about 1,000 times the measured differences, yet below what a
 * semantic slip would give (a moving variance with Bessel's correction over the 32·5·5 = 800
 * values per channel differs by 1/799 ≈ 1.3e-3; Keras's momentum read as PyTorch's, far more).
 * 1 point of accuracy is 5 of the 500 validation digits.
 */
const TFJS_TOLERANCE = { accuracy: 0.01, loss: 1e-3, weight: 1e-4 };

describe('TF.js page in chromium (WebGPU on SwiftShader)', () => {
  it(
    'trains one TF.js model with plain TF.js and with the adapter: its kernels run, and the runs agree',
    async () => {
      const page = await site.browser.newPage({ viewport: { width: 1320, height: 1000 } });
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(e.message));
      page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
      await page.goto(`${site.url}tfjs.html`);
      await page.waitForFunction(() => ['done', 'error', 'no-webgpu'].includes(window.tfjsDemo?.status), undefined, { timeout: 240_000, polling: 500 });
      const state = (await page.evaluate(() => window.tfjsDemo)) as TfjsDemoState;
      mkdirSync('test/output', { recursive: true });
      await page.screenshot({ path: 'test/output/demo-tfjs.png', fullPage: true });

      expect(state.message, 'page error').toBeUndefined();
      expect(state.status).toBe('done');
      expect(state.tfjs).toMatchObject({ version: '4.22.0', backend: 'webgpu' });
      expect(state.config).toMatchObject(TFJS_CONFIG);
      const [plain, ours] = state.runs!;
      expect([plain.adapter, ours.adapter]).toEqual([false, true]);
      for (const r of [plain, ours]) {
        expect(r.done, r.name).toBe(true);
        expect(r.step).toBe(TFJS_CONFIG.steps);
        expect(r.losses.map(([step]) => step)).toEqual(Array.from({ length: TFJS_CONFIG.steps }, (_, i) => i + 1));
        expect(r.accuracies.map(([step]) => step)).toEqual([10, 20, 30, 40]);
        expect(r.stepsPerSecond).toBeGreaterThan(0);
        expect(Number.isFinite(r.trainLoss) && Number.isFinite(r.valLoss)).toBe(true);
        expect(r.valAccuracy, `${r.name}: validation accuracy`).toBeGreaterThanOrEqual(TFJS_MIN_ACCURACY);
      }
      console.log(
        `TF.js page: ${[plain, ours].map((r) => `${r.name}: ${r.stepsPerSecond.toFixed(1)} steps/s, validation accuracy ${r.accuracies.map(([, a]) => (100 * a).toFixed(1)).join(', ')}%, loss ${r.valLoss.toFixed(4)}`).join('; ')}; ` +
          `max weight difference ${state.comparison!.maxWeightDifference.toExponential(1)}`,
      );

      // Step 1 under tf.profile: the adapter's run normalized and back-propagated through our kernels;
      // plain TF.js ran its own FusedBatchNorm and none of ours.
      expect(ours.kernels['webgpu-batchnorm/BatchNorm']).toBeGreaterThanOrEqual(1);
      expect(ours.kernels['webgpu-batchnorm/BatchNormGrad']).toBeGreaterThanOrEqual(1);
      expect(ours.kernels.FusedBatchNorm ?? 0).toBe(0);
      expect(ours.adapterKernelCalls).toBeGreaterThanOrEqual(2);
      expect(plain.adapterKernelCalls).toBe(0);
      expect(Object.keys(plain.kernels).filter((k) => k.startsWith('webgpu-batchnorm/'))).toEqual([]);
      expect(plain.kernels.FusedBatchNorm).toBeGreaterThanOrEqual(1);

      // The same initial weights and batches: the runs agree.
      const c = state.comparison!;
      expect(c.valAccuracyDifference).toBeCloseTo(Math.abs(ours.valAccuracy - plain.valAccuracy), 12);
      expect(c.maxAccuracyDifference).toBeLessThanOrEqual(TFJS_TOLERANCE.accuracy);
      expect(c.valLossDifference).toBeLessThanOrEqual(TFJS_TOLERANCE.loss);
      expect(c.trainLossDifference).toBeLessThanOrEqual(TFJS_TOLERANCE.loss);
      expect(c.maxWeightDifference).toBeLessThanOrEqual(TFJS_TOLERANCE.weight);
      for (const [i, [step, a]] of plain.losses.entries()) {
        expect(ours.losses[i][0]).toBe(step);
        expect(Math.abs(ours.losses[i][1] - a), `training loss at step ${step}`).toBeLessThanOrEqual(TFJS_TOLERANCE.loss);
      }

      // What the page shows agrees with what it published.
      expect(await page.$$eval('.val-accuracy', (els) => els.map((e) => e.textContent))).toEqual([plain, ours].map((r) => `${(100 * r.valAccuracy).toFixed(1)}%`));
      expect(await page.$$eval('.steps-per-second', (els) => els.map((e) => e.textContent))).toEqual([plain, ours].map((r) => r.stepsPerSecond.toFixed(1)));
      expect(await page.textContent('#comparison')).toContain("The adapter's kernels ran");
      expect(await page.$$eval('#accuracy-results tbody tr', (trs) => trs.length)).toBe(4);
      expect(await page.$$eval('.uplot', (plots) => plots.length)).toBe(2);
      expect(await page.getAttribute('a[href="./"]', 'href')).toBe('./');
      expect(errors).toEqual([]);
      await page.close();
    },
    300_000,
  );
});

describe('the demo\'s schedules (no browser)', () => {
  it('knows a CPU adapter: type cpu where reported, a fallback adapter, or a software renderer by name', () => {
    // What chromium's Dawn reports for SwiftShader here (no `type`).
    expect(isCpuAdapter({ vendor: 'google', architecture: 'swiftshader', device: '', description: '', isFallbackAdapter: true })).toBe(true);
    expect(isCpuAdapter({ vendor: 'google', architecture: 'swiftshader' })).toBe(true);
    expect(isCpuAdapter({ type: 'cpu', vendor: 'mesa' })).toBe(true);
    expect(isCpuAdapter({ vendor: 'mesa', description: 'llvmpipe (LLVM 15.0.6, 256 bits)' })).toBe(true);
    expect(isCpuAdapter({ vendor: 'microsoft', architecture: 'warp' })).toBe(true);
    expect(isCpuAdapter({ type: 'discrete GPU', vendor: 'nvidia', architecture: 'ampere' })).toBe(false);
    expect(isCpuAdapter({ vendor: 'apple', architecture: 'metal-3', isFallbackAdapter: false })).toBe(false);
    expect(isCpuAdapter({ vendor: 'intel', architecture: 'gen-12lp' })).toBe(false);
    expect(isCpuAdapter(undefined)).toBe(false);
  });

  it('picks short on a CPU adapter and full on a GPU, unless schedule= says; single URL parameters override', () => {
    const swiftshader = { vendor: 'google', architecture: 'swiftshader', isFallbackAdapter: true };
    const gpu = { vendor: 'nvidia', architecture: 'ampere', isFallbackAdapter: false };
    const pick = (search: string, adapter: object) => chooseSchedule(new URLSearchParams(search), adapter);
    expect(pick('', swiftshader)).toEqual({ name: 'short', chosenBy: 'adapter', cpuAdapter: true, overrides: [], settings: { ...SHORT_SCHEDULE } });
    expect(pick('autostart=1', gpu)).toEqual({ name: 'full', chosenBy: 'adapter', cpuAdapter: false, overrides: [], settings: { ...FULL_SCHEDULE } });
    expect(pick('schedule=full', swiftshader)).toMatchObject({ name: 'full', chosenBy: 'url', settings: { ...FULL_SCHEDULE } });
    expect(pick('schedule=short', gpu)).toMatchObject({ name: 'short', chosenBy: 'url', settings: { ...SHORT_SCHEDULE } });
    expect(pick('schedule=nonsense', gpu)).toMatchObject({ name: 'full', chosenBy: 'adapter' });
    expect(pick('lr=0.5&steps=40&seed=abc&batch=', swiftshader)).toMatchObject({ name: 'short', overrides: ['lr', 'steps'], settings: { ...SHORT_SCHEDULE, lr: 0.5, steps: 40 } });
    // The full schedule is the page's defaults before the short one existed.
    expect(FULL_SCHEDULE).toEqual({ lr: 0.1, momentum: 0, batch: 32, epochs: 2, steps: 0, train: Infinity, validation: Infinity, logEvery: 10, evalFirst: 10, evalEvery: 50, seed: 1 });
  });

  it('checks the result: at least 2 points ahead on the short schedule, ahead on the full one, nothing with overrides', () => {
    const runs = (withBn: number, without: number, diverged = false) => [
      { batchNorm: true, valAccuracy: withBn, diverged: false },
      { batchNorm: false, valAccuracy: without, diverged },
    ];
    const short = { name: 'short', overrides: [] } as const;
    const full = { name: 'full', overrides: [] } as const;
    expect(checkResult(short, runs(0.937, 0.868), 150)).toMatchObject({ margin: 6.9, checked: true, ok: true, required: 2 });
    expect(checkResult(short, runs(0.9, 0.88), 150)).toMatchObject({ margin: 2, ok: true });
    expect(checkResult(short, runs(0.9, 0.881), 150)).toMatchObject({ margin: 1.9, ok: false });
    expect(checkResult(short, runs(0.9, 0.881), 150).text).toContain('NOT as the notes say');
    expect(checkResult(short, runs(0.5, NaN, true), 150)).toMatchObject({ margin: 50, ok: true });
    expect(checkResult(full, runs(0.974, 0.956), 500)).toMatchObject({ margin: 1.8, ok: true, required: 0 });
    expect(checkResult(full, runs(0.95, 0.95), 500)).toMatchObject({ ok: false });
    expect(checkResult({ name: 'short', overrides: ['lr'] }, runs(0.5, 0.9), 150)).toMatchObject({ checked: false, ok: true });
  });
});
