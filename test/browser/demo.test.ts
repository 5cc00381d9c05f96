/**
 * The built demo site in headless chromium (WebGPU on SwiftShader):
 * - the training demo (/): both runs of the seeds' CNN train on the GPU for a short fixed
 *   budget; the run with batch norm must reach a stated accuracy and beat the run without it by
 *   a stated margin at equal steps; the model summary shows the seeds' parameter counts, and the
 *   feature-scaling panel the condition numbers;
 * - without WebGPU the page says so instead of staying blank;
 * - the layout check (/check.html): getDevice() takes the browser's navigator.gpu path and every
 *   layout matches the float64 reference.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync } from 'node:fs';
import type { DemoResult } from '../../demo/check.js';
import type { DemoState } from '../../demo/main.js';
import { openSite, type SiteUnderTest } from '../helpers/browser.js';

let site: SiteUnderTest;

beforeAll(async () => {
  site = await openSite('demo');
});

afterAll(async () => {
  await site?.close();
});

describe('demo page in chromium (WebGPU on SwiftShader)', () => {
  it('runs every layout on the GPU and matches the float64 reference', async () => {
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
    expect(result.cases.map((c) => c.layout)).toEqual(['NC', 'NCL', 'NCHW', 'NHWC', 'NCDHW']);
    for (const c of result.cases) {
      // The page's own bound (1e-4 absolute on O(1) outputs); the vitest suites hold the tight ones.
      expect(Math.max(c.yError, c.dxError, c.inferenceError), `${c.layout} [${c.shape}]`).toBeLessThanOrEqual(1e-4);
    }
    expect(result.ok).toBe(true);
    expect(await page.textContent('#status')).toContain('All layouts match the float64 reference');
    expect(errors).toEqual([]);
    await page.close();
  });
});

/** The e2e budget: 150 steps of 16 digits at learning rate 0.3, validated on 1000 held-out digits. */
const BUDGET = 'steps=150&batch=16&lr=0.3&validation=1000&evalEvery=75&logEvery=10&autostart=1';
/** Measured on SwiftShader: 94.6% with BN, 86.8% without (deterministic kernels, fixed seeds). */
const MIN_BN_ACCURACY = 0.9;
const MIN_MARGIN = 0.04;

describe('training demo in chromium (WebGPU on SwiftShader)', () => {
  it(
    'trains both runs; batch norm beats no batch norm at equal steps; the summary and scaling panel show the notes\' numbers',
    async () => {
      const page = await site.browser.newPage({ viewport: { width: 1320, height: 1000 } });
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(e.message));
      page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
      await page.goto(`${site.url}?${BUDGET}`);
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
      expect([bn.step, plain.step]).toEqual([150, 150]);
      expect(bn.accuracies.map(([step]) => step)).toEqual([75, 150]);
      console.log(`after 150 steps: validation accuracy ${(100 * bn.valAccuracy).toFixed(1)}% with BN, ${(100 * plain.valAccuracy).toFixed(1)}% without`);
      expect(bn.valAccuracy).toBeGreaterThanOrEqual(MIN_BN_ACCURACY);
      expect(bn.valAccuracy - plain.valAccuracy).toBeGreaterThanOrEqual(MIN_MARGIN);
      expect(bn.trainLoss).toBeLessThan(plain.trainLoss);
      // What the page shows agrees with what it published.
      const shown = await page.$$eval('.val-accuracy', (els) => els.map((e) => e.textContent));
      expect(shown).toEqual([bn, plain].map((r) => `${(100 * r.valAccuracy).toFixed(1)}%`));

      // The seeds' Keras summary table.
      expect(await page.textContent('#total-params')).toBe('38,910');
      expect(await page.textContent('#trainable-params')).toBe('38,650');
      expect(await page.textContent('#non-trainable-params')).toBe('260');
      const rows = await page.$$eval('#summary-table tbody tr', (trs) => trs.map((tr) => Array.from(tr.children, (td) => td.textContent)));
      // A BN layer: 4·C parameters, 2·C of them trainable.
      expect(rows).toContainEqual(['batch_normalization_1 (BatchNormalization)', '(None, 10, 24, 24)', '40', '20']);
      expect(rows).toContainEqual(['batch_normalization_3 (BatchNormalization)', '(None, 100)', '400', '200']);
      expect(rows).toContainEqual(['dense_1 (Dense)', '(None, 100)', '32,100', '32,100']);

      // Feature scaling: the raw Hessian is as badly conditioned as the notes say (9.2e4), scaling fixes it.
      const [raw, minMax, standardized] = state.scaling!;
      expect(raw.conditionNumber).toBeGreaterThan(5e4);
      expect(raw.conditionNumber).toBeLessThan(2e5);
      expect(standardized.conditionNumber).toBeLessThan(1.5);
      expect(minMax.conditionNumber).toBeLessThan(raw.conditionNumber / 100);
      expect(raw.steps).not.toBeNull();
      expect(standardized.steps!).toBeLessThan(minMax.steps!);
      expect(minMax.steps!).toBeLessThan(raw.steps! / 100);
      expect(await page.$$eval('#scaling-results tbody tr', (trs) => trs.length)).toBe(3);
      expect(await page.$$eval('.uplot', (plots) => plots.length)).toBe(3);
      expect(errors).toEqual([]);
      await page.close();
    },
    600_000,
  );

  it('says so, instead of a blank page, when the browser has no WebGPU', async () => {
    const page = await site.browser.newPage();
    await page.addInitScript(() => delete (Navigator.prototype as { gpu?: unknown }).gpu);
    await page.goto(site.url);
    await page.waitForFunction(() => window.demoState?.status === 'no-webgpu');
    expect(await page.textContent('#status')).toContain('This browser has no WebGPU');
    expect(await page.isHidden('#app')).toBe(true);
    await page.close();
  });
});
