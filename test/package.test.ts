/**
 * The package as a user gets it: `npm run build`, `npm pack`, the tarball installed into a fresh
 * project, then used from plain Node (Dawn through the `webgpu` package), from TypeScript (the
 * .d.ts files through the exports map), and from a vite-built page in headless chromium.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { build, preview } from 'vite';
import { launchChromium } from './helpers/browser.js';

const repo = resolve(import.meta.dirname, '..');
let project: string;
let packedFiles: string[];

const run = (cmd: string, args: string[], cwd: string) => execFileSync(cmd, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

/** A check every consumer runs: a training forward pass on the GPU against the package's float64 reference. */
const CONSUMER_CHECK = `
import { BatchNorm, channelView, getDevice, referenceTrainingForward } from 'webgpu-batchnorm';
export async function check() {
  const device = await getDevice();
  const shape = [4, 3, 5, 5];
  const view = channelView('NCHW', shape);
  const x = Float32Array.from({ length: 300 }, (_, i) => Math.sin(i * 1.7) * 3 + (i % 3));
  const bn = new BatchNorm(device, { numFeatures: 3, layout: 'NCHW' });
  const y = await bn.forward(x, shape, { training: true });
  const ref = referenceTrainingForward(x, view, { gamma: [1, 1, 1], beta: [0, 0, 0], eps: 1e-5 });
  bn.destroy();
  let worst = 0;
  for (let i = 0; i < y.length; i++) worst = Math.max(worst, Math.abs(y[i] - ref.y[i]));
  return { worst, adapter: device.adapterInfo?.description ?? device.adapterInfo?.vendor ?? '' };
}
`;

beforeAll(() => {
  run('npm', ['run', 'build'], repo);
  project = mkdtempSync(join(tmpdir(), 'webgpu-batchnorm-consumer-'));
  const [pack] = JSON.parse(run('npm', ['pack', '--json', '--pack-destination', project], repo)) as { filename: string; files: { path: string }[] }[];
  packedFiles = pack.files.map((f) => f.path).sort();
  writeFileSync(
    join(project, 'package.json'),
    JSON.stringify({ name: 'consumer', private: true, type: 'module', dependencies: { 'webgpu-batchnorm': `file:./${pack.filename}` } }),
  );
  // The tarball's dependency (webgpu) comes from npm's cache, filled by the repository's install.
  run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline'], project);
}, 300_000);

afterAll(() => {
  if (project) rmSync(project, { recursive: true, force: true });
});

describe('the packed package', () => {
  it('ships the ESM build, the type declarations and the README only', () => {
    expect(packedFiles).toContain('dist/webgpu-batchnorm.js');
    expect(packedFiles).toContain('dist/types/index.d.ts');
    expect(packedFiles).toContain('package.json');
    expect(packedFiles).toContain('README.md');
    const unexpected = packedFiles.filter((f) => !/^(dist\/webgpu-batchnorm\.js|dist\/types\/.+\.d\.ts|package\.json|README\.md)$/.test(f));
    expect(unexpected).toEqual([]);
    // The WGSL is inlined: no shader files ship.
    expect(packedFiles.some((f) => f.endsWith('.wgsl'))).toBe(false);
    expect(readdirSync(join(project, 'node_modules', 'webgpu-batchnorm', 'dist'))).toEqual(['types', 'webgpu-batchnorm.js']);
  });

  it('works from plain Node', () => {
    writeFileSync(join(project, 'check.mjs'), CONSUMER_CHECK);
    writeFileSync(join(project, 'node.mjs'), "import { check } from './check.mjs';\nconsole.log(JSON.stringify(await check()));\n");
    const out = JSON.parse(run('node', ['node.mjs'], project).trim().split('\n').pop()!) as { worst: number };
    expect(out.worst).toBeLessThan(1e-5);
  });

  it('type-checks from TypeScript through the exports map', () => {
    writeFileSync(
      join(project, 'typed.ts'),
      `import { BatchNorm, FeatureScaler, kerasOptions, type BatchNormOptions, type BatchNormState } from 'webgpu-batchnorm';
       export function make(device: GPUDevice): [BatchNorm, FeatureScaler] {
         const options: BatchNormOptions = kerasOptions({ numFeatures: 8, rank: 4 });
         return [new BatchNorm(device, options), new FeatureScaler(device, { numFeatures: 2, method: 'min-max' })];
       }
       export const momentum = (s: BatchNormState): number => s.numBatchesTracked;
       // @ts-expect-error a misspelled option is a type error
       export const bad: BatchNormOptions = { numFeatures: 1, layout: 'NCHW', epsilon: 1e-3 };\n`,
    );
    writeFileSync(
      join(project, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: { strict: true, noEmit: true, module: 'NodeNext', moduleResolution: 'NodeNext', target: 'ES2022', lib: ['ES2022', 'DOM'], types: ['@webgpu/types'], typeRoots: [join(repo, 'node_modules')] },
        files: ['typed.ts'],
      }),
    );
    // Throws (with tsc's messages) if the declarations do not resolve or do not type-check.
    run('node', [join(repo, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', project], project);
  });

  it('works in a vite-built page in chromium', async () => {
    writeFileSync(join(project, 'index.html'), '<!doctype html><script type="module" src="./page.js"></script>');
    writeFileSync(join(project, 'page.js'), "import { check } from './check.mjs';\ncheck().then((r) => (window.result = r), (e) => (window.result = { error: e.message }));\n");
    await build({ root: project, configFile: false, logLevel: 'warn', build: { outDir: 'site', target: 'es2022' } });
    const server = await preview({ root: project, configFile: false, logLevel: 'warn', build: { outDir: 'site' }, preview: { host: '127.0.0.1', port: 0 } });
    const browser = await launchChromium();
    try {
      const page = await browser.newPage();
      await page.goto(server.resolvedUrls!.local[0]);
      await page.waitForFunction(() => (window as { result?: unknown }).result !== undefined, undefined, { timeout: 60_000 });
      const result = (await page.evaluate(() => (window as { result?: unknown }).result)) as { worst?: number; error?: string };
      expect(result.error).toBeUndefined();
      expect(result.worst).toBeLessThan(1e-5);
    } finally {
      await browser.close();
      await server.close();
    }
  });
});
