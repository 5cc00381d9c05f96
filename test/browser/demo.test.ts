/**
 * The demo page in headless chromium: getDevice() takes the browser's navigator.gpu path, and
 * the page's own GPU-vs-reference check must pass for every layout.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync } from 'node:fs';
import type { DemoResult } from '../../demo/main.js';
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
    await page.goto(site.url);
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
