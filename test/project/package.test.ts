/**
 * The package as a user gets it, installed into fresh projects in the temp dir the three ways the
 * README's "Install in your project" section gives. Their source is a checkout as a clean clone
 * has it (no dist/, no node_modules/): a new git repository holding this working tree's files
 * (tracked and untracked, not ignored) in one commit, then `npm install` run in it, whose
 * `prepare` builds dist/.
 *
 * - from a tarball: `npm pack` in the checkout (it runs `prepare` too), then
 *   `npm install <tarball> webgpu`;
 * - from git: `npm install git+file://<checkout> webgpu`; npm clones the commit and builds dist/
 *   through `prepare` there, with the devDependencies;
 * - from a path: `npm install <checkout> webgpu`.
 *
 * Each is then used from plain Node (a training forward pass on Dawn against the package's
 * float64 reference) and from strict TypeScript with no set-up for the WebGPU types
 * (`@webgpu/types` is a dependency that the declarations reference). The tarball also goes into
 * a project without `webgpu` (the optional peer, Dawn for Node): nothing of Dawn is installed,
 * `getDevice()` in Node says what to install, and a vite-built page works in headless chromium.
 * With @tensorflow/tfjs and its webgpu backend installed beside it, the `webgpu-batchnorm/tfjs`
 * subpath trains a model on our kernels from plain Node (tf.profile names them) and type-checks.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { build, preview } from 'vite';
import { launchChromium } from '../helpers/browser.js';

const repo = resolve(import.meta.dirname, '../..');
const scratch = mkdtempSync(join(tmpdir(), 'webgpu-batchnorm-install-'));

const run = (cmd: string, args: string[], cwd: string) => execFileSync(cmd, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

/** npm install from npm's cache where it can (the repository's own install filled it). */
const npmInstall = (cwd: string, specs: string[] = []) => run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', ...specs], cwd);

/** `webgpu` at the version this repository tests with, so that npm finds it in its cache. */
const WEBGPU = `webgpu@${(JSON.parse(readFileSync(join(repo, 'node_modules', 'webgpu', 'package.json'), 'utf8')) as { version: string }).version}`;

/** A fresh project, `webgpu-batchnorm` installed from `spec` (and `webgpu` unless told not to). */
function consumer(name: string, spec: string, withWebgpu = true): string {
  const project = join(scratch, name);
  mkdirSync(project);
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: `consumer-${name}`, private: true, type: 'module' }));
  npmInstall(project, withWebgpu ? [spec, WEBGPU] : [spec]);
  return project;
}

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

/** The installed package's dist/: the ESM build and the declarations, the latter referencing the WebGPU types. */
function checkDist(project: string): void {
  const dist = join(project, 'node_modules', 'webgpu-batchnorm', 'dist');
  expect(existsSync(dist), `${dist} (built by the package's prepare script)`).toBe(true);
  expect(readdirSync(dist).sort()).toEqual(['tfjs.js', 'types', 'webgpu-batchnorm-src.js', 'webgpu-batchnorm.js']);
  expect(readFileSync(join(dist, 'types', 'index.d.ts'), 'utf8')).toMatch(/^\/\/\/ <reference types="@webgpu\/types" preserve="true" \/>\n/);
  expect(existsSync(join(dist, 'types', 'tfjs', 'index.d.ts')), 'the tfjs subpath\'s declarations').toBe(true);
  // Both entries import the library's one shared chunk: one copy of its per-device state.
  for (const entry of ['webgpu-batchnorm.js', 'tfjs.js']) expect(readFileSync(join(dist, entry), 'utf8')).toMatch(/from "\.\/webgpu-batchnorm-src\.js"/);
}

/** The forward pass from plain Node. */
function checkNode(project: string): void {
  writeFileSync(join(project, 'check.mjs'), CONSUMER_CHECK);
  writeFileSync(join(project, 'node.mjs'), "import { check } from './check.mjs';\nconsole.log(JSON.stringify(await check()));\n");
  const out = JSON.parse(run('node', ['node.mjs'], project).trim().split('\n').pop()!) as { worst: number };
  expect(out.worst).toBeLessThan(1e-5);
}

/** Strict TypeScript through the exports map, with no types, typeRoots or lib set-up for WebGPU. */
function checkTypeScript(project: string): void {
  writeFileSync(
    join(project, 'typed.ts'),
    `import { BatchNorm, FeatureScaler, kerasOptions, type BatchNormOptions, type BatchNormState } from 'webgpu-batchnorm';
     export function make(device: GPUDevice): [BatchNorm, FeatureScaler] {
       const options: BatchNormOptions = kerasOptions({ numFeatures: 8, rank: 4 });
       return [new BatchNorm(device, options), new FeatureScaler(device, { numFeatures: 2, method: 'min-max' })];
     }
     export const usage: number = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC;
     export const momentum = (s: BatchNormState): number => s.numBatchesTracked;
     // @ts-expect-error a misspelled option is a type error
     export const bad: BatchNormOptions = { numFeatures: 1, layout: 'NCHW', epsilon: 1e-3 };
     // @ts-expect-error the layer takes a GPUDevice, not any object
     export const notADevice = new BatchNorm({}, { numFeatures: 1 });\n`,
  );
  writeFileSync(
    join(project, 'tsconfig.json'),
    JSON.stringify({ compilerOptions: { strict: true, noEmit: true, module: 'NodeNext', moduleResolution: 'NodeNext', target: 'ES2022' }, files: ['typed.ts'] }),
  );
  // Throws (with tsc's messages) if the declarations do not resolve or do not type-check.
  try {
    run('node', [join(repo, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', project], project);
  } catch (e) {
    throw new Error(`tsc failed:\n${(e as { stdout?: string }).stdout ?? ''}${(e as { stderr?: string }).stderr ?? ''}`);
  }
}

/** The checks every install route passes. */
function usedFromNodeAndTypeScript(project: () => string): void {
  it('has dist/ with the build and the declarations', () => checkDist(project()));
  it('runs a training forward pass from plain Node, matching the float64 reference', () => checkNode(project()));
  it('type-checks a strict TypeScript consumer with no WebGPU types set-up', () => checkTypeScript(project()));
}

/**
 * A clean clone's view of this working tree: a new git repository with the files git would
 * commit (tracked and untracked, not ignored; no dist/, no node_modules/) in one commit.
 */
function checkout(): string {
  const dir = join(scratch, 'checkout');
  const files = run('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], repo).split('\0').filter(Boolean);
  for (const file of new Set(files)) {
    // A tracked file deleted in the working tree is listed but absent: a commit would drop it too.
    if (existsSync(join(repo, file))) {
      mkdirSync(dirname(join(dir, file)), { recursive: true });
      cpSync(join(repo, file), join(dir, file));
    }
  }
  const git = (...args: string[]) =>
    run('git', ['-c', 'user.name=install test', '-c', 'user.email=install-test@example.invalid', '-c', 'commit.gpgsign=false', ...args], dir);
  git('init', '-q');
  git('add', '-A');
  git('commit', '-q', '-m', 'the working tree');
  expect(existsSync(join(dir, 'dist'))).toBe(false);
  return dir;
}

/** The working tree as a clean clone has it, then installed there (its prepare builds dist/): the source of all three routes. */
let source: string;
beforeAll(() => {
  source = checkout();
  npmInstall(source);
}, 300_000);

afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe('installed from a tarball (npm pack)', () => {
  let tarball: string;
  let packedFiles: string[];
  let project: string;

  beforeAll(() => {
    // npm pack runs prepare (the build); the build's own output goes to stdout before npm's JSON.
    const out = run('npm', ['pack', '--json', '--pack-destination', scratch], source);
    const [pack] = JSON.parse(out.slice(out.search(/^\[/m))) as { filename: string; files: { path: string }[] }[];
    tarball = join(scratch, pack.filename);
    packedFiles = pack.files.map((f) => f.path).sort();
    project = consumer('tarball', tarball);
  }, 300_000);

  it('ships the ESM build, the type declarations and the README only', () => {
    expect(packedFiles).toContain('dist/webgpu-batchnorm.js');
    expect(packedFiles).toContain('dist/tfjs.js');
    expect(packedFiles).toContain('dist/types/tfjs/index.d.ts');
    expect(packedFiles).toContain('dist/types/index.d.ts');
    expect(packedFiles).toContain('package.json');
    expect(packedFiles).toContain('README.md');
    const unexpected = packedFiles.filter((f) => !/^(dist\/(webgpu-batchnorm|webgpu-batchnorm-src|tfjs)\.js|dist\/types\/.+\.d\.ts|package\.json|README\.md)$/.test(f));
    expect(unexpected).toEqual([]);
    // The WGSL is inlined: no shader files ship.
    expect(packedFiles.some((f) => f.endsWith('.wgsl'))).toBe(false);
  });

  usedFromNodeAndTypeScript(() => project);

  describe('the tfjs subpath, with @tensorflow/tfjs and its webgpu backend installed beside it', () => {
    beforeAll(() => {
      const version = (name: string) => (JSON.parse(readFileSync(join(repo, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version;
      npmInstall(project, ['@tensorflow/tfjs', '@tensorflow/tfjs-backend-webgpu'].map((name) => `${name}@${version(name)}`));
    }, 300_000);

    it("trains a BatchNormalization model on the adapter's kernels from plain Node", () => {
      writeFileSync(
        join(project, 'tfjs.mjs'),
        `import * as tf from '@tensorflow/tfjs';
         import { WebGPUBackend } from '@tensorflow/tfjs-backend-webgpu';
         import { getDevice } from 'webgpu-batchnorm';
         import { registerTfjsKernels, useDeviceForTfjs } from 'webgpu-batchnorm/tfjs';
         const device = await getDevice();
         await useDeviceForTfjs(tf, device, { WebGPUBackend });
         const uninstall = registerTfjsKernels(tf);
         const model = tf.sequential({ layers: [tf.layers.dense({ inputShape: [4], units: 3 }), tf.layers.batchNormalization({ axis: 1, scale: false })] });
         model.compile({ optimizer: 'sgd', loss: 'meanSquaredError' });
         const kernels = new Set();
         const profile = await tf.profile(() => model.trainOnBatch(tf.ones([5, 4]), tf.zeros([5, 3])));
         for (const k of profile.kernels) kernels.add(k.name);
         const y = model.predict(tf.tensor([[1, 2, 3, 4], [4, 3, 2, 1]]));
         console.log(JSON.stringify({ kernels: [...kernels].filter((k) => k.startsWith('webgpu-batchnorm/')), finite: (await y.data()).every(Number.isFinite) }));
         uninstall();
         process.exit(0);\n`,
      );
      const out = JSON.parse(run('node', ['tfjs.mjs'], project).trim().split('\n').pop()!) as { kernels: string[]; finite: boolean };
      expect(out.kernels.sort()).toEqual(['webgpu-batchnorm/BatchNorm', 'webgpu-batchnorm/BatchNormGrad']);
      expect(out.finite).toBe(true);
    });

    it("type-checks a strict TypeScript consumer of 'webgpu-batchnorm/tfjs'", () => {
      writeFileSync(
        join(project, 'typed-tfjs.ts'),
        `import * as tf from '@tensorflow/tfjs';
         import { WebGPUBackend } from '@tensorflow/tfjs-backend-webgpu';
         import { registerTfjsKernels, useDeviceForTfjs, type TfjsKernelOptions } from 'webgpu-batchnorm/tfjs';
         export async function install(device: GPUDevice): Promise<() => void> {
           await useDeviceForTfjs(tf, device, { WebGPUBackend });
           const options: TfjsKernelOptions = { nonFiniteBatches: 'skip' };
           return registerTfjsKernels(tf, options);
         }
         // @ts-expect-error a misspelled option is a type error
         export const bad: TfjsKernelOptions = { fused: false };\n`,
      );
      writeFileSync(
        join(project, 'tsconfig.tfjs.json'),
        JSON.stringify({ compilerOptions: { strict: true, noEmit: true, skipLibCheck: true, module: 'NodeNext', moduleResolution: 'NodeNext', target: 'ES2022' }, files: ['typed-tfjs.ts'] }),
      );
      try {
        run('node', [join(repo, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(project, 'tsconfig.tfjs.json')], project);
      } catch (e) {
        throw new Error(`tsc failed:\n${(e as { stdout?: string }).stdout ?? ''}${(e as { stderr?: string }).stderr ?? ''}`);
      }
    });
  });

  describe('without webgpu, the optional peer', () => {
    let bare: string;
    beforeAll(() => {
      bare = consumer('tarball-no-webgpu', tarball, false);
    }, 300_000);

    it('installs nothing of Dawn', () => {
      expect(existsSync(join(bare, 'node_modules', 'webgpu'))).toBe(false);
      expect(existsSync(join(bare, 'node_modules', '@webgpu', 'types'))).toBe(true);
    });

    it("says in Node that getDevice needs 'npm install webgpu'", () => {
      writeFileSync(
        join(bare, 'no-dawn.mjs'),
        "import { getDevice } from 'webgpu-batchnorm';\ngetDevice().then(() => console.log('got a device'), (e) => console.log(e.message));\n",
      );
      expect(run('node', ['no-dawn.mjs'], bare).trim()).toBe(
        "getDevice: WebGPU in Node needs the 'webgpu' package (Dawn), an optional peer dependency: npm install webgpu",
      );
    });

    it('works in a vite-built page in chromium', async () => {
      writeFileSync(join(bare, 'check.mjs'), CONSUMER_CHECK);
      writeFileSync(join(bare, 'index.html'), '<!doctype html><script type="module" src="./page.js"></script>');
      writeFileSync(join(bare, 'page.js'), "import { check } from './check.mjs';\ncheck().then((r) => (window.result = r), (e) => (window.result = { error: e.message }));\n");
      await build({ root: bare, configFile: false, logLevel: 'warn', build: { outDir: 'site', target: 'es2022' } });
      const server = await preview({ root: bare, configFile: false, logLevel: 'warn', build: { outDir: 'site' }, preview: { host: '127.0.0.1', port: 0 } });
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
});

describe('installed from git (npm install git+file://...)', () => {
  let project: string;
  beforeAll(() => {
    project = consumer('git', `git+file://${source}`);
  }, 300_000);
  usedFromNodeAndTypeScript(() => project);
});

describe('installed from a path (npm install in the checkout, then npm install <path>)', () => {
  let project: string;
  beforeAll(() => {
    project = consumer('path', source);
  }, 300_000);
  usedFromNodeAndTypeScript(() => project);
});
