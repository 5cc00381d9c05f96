/**
 * Debian's chromium driven by playwright-core, with WebGPU on SwiftShader (no GPU needed), and
 * a page server on 127.0.0.1 (navigator.gpu exists only in secure contexts such as localhost).
 */
import { chromium, type Browser } from 'playwright-core';
import { build, preview, type PreviewServer } from 'vite';
import ARGS from './chromium-args.json' with { type: 'json' };

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';


/** Headless chromium with WebGPU on SwiftShader. */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, args: ARGS, headless: true });
}

/** Serves a built vite site (the given mode's outDir) on 127.0.0.1; resolves with its URL. */
export async function serveBuild(mode: string): Promise<{ url: string; server: PreviewServer }> {
  const server = await preview({ mode, logLevel: 'warn', preview: { host: '127.0.0.1', port: 0, strictPort: false, open: false } });
  const url = server.resolvedUrls?.local[0];
  if (!url) throw new Error('the preview server did not report a URL');
  return { url, server };
}

/** A built vite site served on 127.0.0.1 and a chromium to open it in. */
export interface SiteUnderTest {
  browser: Browser;
  url: string;
  close(): Promise<void>;
}

/** Builds the vite site of `mode` (demo, bench), serves it and launches chromium. */
export async function openSite(mode: string): Promise<SiteUnderTest> {
  await build({ mode, logLevel: 'warn' });
  const { server, url } = await serveBuild(mode);
  const browser = await launchChromium();
  return {
    browser,
    url,
    async close() {
      await browser.close();
      await server.close();
    },
  };
}
