// `npm run bench`: builds the benchmark page, runs it in headless chromium (WebGPU on the
// machine's adapter; SwiftShader where there is no GPU), prints progress and the table, and
// writes bench/results.json.
//
//   npm run bench                      all cases, 10 iterations per measurement
//   npm run bench -- --iterations 20   more iterations
//   npm run bench -- --quick           small cases only, for a quick look
//   npm run bench -- --no-tfjs         leave TF.js out (it is slow on SwiftShader)
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import { build, preview } from 'vite';
import { chromium } from 'playwright-core';
import args from '../test/helpers/chromium-args.json' with { type: 'json' };

const argv = process.argv.slice(2);
const option = (name) => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : undefined;
};
const iterations = Number(option('--iterations') ?? 10);
if (!(Number.isInteger(iterations) && iterations >= 1)) throw new Error(`--iterations must be a positive integer; got ${option('--iterations')}`);
const query = new URLSearchParams({ iterations: String(iterations), quick: argv.includes('--quick') ? '1' : '0', tfjs: argv.includes('--no-tfjs') ? '0' : '1' });

await build({ mode: 'bench', logLevel: 'warn' });
const server = await preview({ mode: 'bench', logLevel: 'warn', preview: { host: '127.0.0.1', port: 0, open: false } });
const browser = await chromium.launch({ executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium', args, headless: true });
let result;
try {
  const page = await browser.newPage();
  page.on('pageerror', (e) => console.error(`page error: ${e.message}`));
  page.on('console', (m) => ['error', 'warning'].includes(m.type()) && console.error(`page ${m.type()}: ${m.text()}`));
  const started = Date.now();
  await page.exposeFunction('benchProgress', (line) => console.log(`${((Date.now() - started) / 1000).toFixed(0).padStart(5)} s  ${line}`));
  await page.goto(`${server.resolvedUrls.local[0]}?${query}`);
  await page.waitForFunction(() => window.benchResult !== undefined, undefined, { timeout: 0, polling: 1000 });
  result = await page.evaluate(() => window.benchResult);
  result.browser = browser.version();
} finally {
  await browser.close();
  await server.close();
}
if (result.error) {
  console.error(result.error);
  process.exit(1);
}

// Derived columns: GB/s, the roofline ratio against the copy, and speed-ups in the same run.
const key = (r) => `${r.layout} ${r.shape} ${r.mode}`;
const byKey = (impl) => new Map(result.rows.filter((r) => r.impl === impl).map((r) => [key(r), r]));
const copies = byKey('copy (roofline)');
const tfjs = byKey('TF.js WebGPU');
const baseline = byKey('two-pass baseline');
for (const r of result.rows) {
  const time = r.gpu ?? r.wall;
  r.gbPerS = r.bytes / (time.medianMs * 1e6);
  const copy = copies.get(key(r));
  r.rooflineRatio = r.gpu && copy?.gpu ? r.gpu.medianMs / copy.gpu.medianMs : null;
  const peer = tfjs.get(key(r));
  r.speedupVsTfjs = peer && (r.impl === 'webgpu-batchnorm' || r.impl === 'two-pass baseline') ? peer.wall.medianMs / r.wall.medianMs : null;
  const base = baseline.get(key(r));
  r.speedupVsBaseline = base && r.impl === 'webgpu-batchnorm' ? base.wall.medianMs / r.wall.medianMs : null;
}
result.machine = { cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model, memoryGiB: Math.round(os.totalmem() / 2 ** 30), platform: `${os.platform()} ${os.release()}` };
result.date = new Date().toISOString();

const fmt = (v, digits = 2) => (v === null || v === undefined ? '' : v.toFixed(digits));
const header = ['case', 'mode', 'implementation', 'median ms', 'min ms', 'timing', 'GB/s', 'roofline ×', 'vs TF.js', 'vs baseline', 'max error'];
const lines = result.rows.map((r) => {
  const time = r.gpu ?? r.wall;
  return [
    `${r.layout} [${r.shape.join(',')}]`,
    r.mode,
    r.impl,
    fmt(time.medianMs, 1),
    fmt(time.minMs, 1),
    r.gpu ? 'gpu' : 'wall',
    fmt(r.gbPerS),
    fmt(r.rooflineRatio),
    r.speedupVsTfjs ? `${fmt(r.speedupVsTfjs, 1)}×` : '',
    r.speedupVsBaseline ? `${fmt(r.speedupVsBaseline, 1)}×` : '',
    r.maxError === null ? '' : r.maxError.toExponential(1),
  ];
});
const table = [header, header.map(() => '---'), ...lines].map((cols) => `| ${cols.join(' | ')} |`).join('\n');
console.log(`\n${result.adapter} (${result.browser}); ${result.machine.cpus} CPUs, ${result.machine.cpuModel}`);
console.log(`GPU time: ${result.timing} for the WGSL implementations; TF.js: wall time to onSubmittedWorkDone. Speed-ups compare wall times. ${result.iterations} iterations.\n`);
console.log(table);
writeFileSync(new URL('./results.json', import.meta.url), `${JSON.stringify({ ...result, table }, null, 2)}\n`);
console.log('\nwrote bench/results.json');
