/**
 * The benchmark harness itself (bench/), in quick mode with one iteration: every implementation
 * runs on every case and mode and its output matches the float64 reference. No timing is
 * asserted here; speed is what `npm run bench` reports.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { BenchResult } from '../../bench/main.js';
import { MODES, QUICK_CASES } from '../../bench/cases.js';
import { openSite, type SiteUnderTest } from '../helpers/browser.js';

let site: SiteUnderTest;

beforeAll(async () => {
  site = await openSite('bench');
});

afterAll(async () => {
  await site?.close();
});

it('runs every implementation of the quick cases and checks each against the reference', async () => {
  const page = await site.browser.newPage();
  const warnings: string[] = [];
  page.on('pageerror', (e) => warnings.push(e.message));
  page.on('console', (m) => ['error', 'warning'].includes(m.type()) && warnings.push(m.text()));
  await page.goto(`${site.url}?quick=1&iterations=1`);
  await page.waitForFunction(() => window.benchResult !== undefined, undefined, { timeout: 240_000 });
  const result = (await page.evaluate(() => window.benchResult)) as BenchResult;
  expect(result.error).toBeUndefined();
  expect(result.timing).toBe('timestamp-query');
  const impls = ['webgpu-batchnorm', 'two-pass baseline', 'copy (roofline)', 'TF.js WebGPU'];
  expect(result.rows.length).toBe(QUICK_CASES.length * MODES.length * impls.length);
  for (const row of result.rows) {
    const what = `${row.layout} [${row.shape}] ${row.mode} ${row.impl}`;
    expect(impls, what).toContain(row.impl);
    expect(row.wall.medianMs, what).toBeGreaterThan(0);
    if (row.impl !== 'TF.js WebGPU') expect(row.gpu?.medianMs, what).toBeGreaterThan(0);
    // y or dx of N(1, 2) data are O(1): float32 results agree to about 1e-6.
    if (row.impl !== 'copy (roofline)') expect(row.maxError, what).toBeLessThanOrEqual(1e-5);
  }
  expect(warnings).toEqual([]);
  await page.close();
}, 300_000);
