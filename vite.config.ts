import { defineConfig } from 'vitest/config';
import { fileURLToPath } from 'node:url';
import { mnistDigits } from './demo/mnist-digits.js';

const demoPage = (file: string) => fileURLToPath(new URL(`./demo/${file}`, import.meta.url));

// A site of its own: `demo` (npm run demo / build:demo: the training demo at /, the layout check
// at /check.html, TF.js with and without the adapter at /tfjs.html) or `bench` (npm run bench).
const page = (root: string) => ({
  root,
  base: './',
  plugins: root === 'demo' ? [mnistDigits()] : [],
  build: {
    outDir: `../dist-${root}`,
    emptyOutDir: true,
    target: 'es2022',
    // The inlined digits make one large chunk by design (no fetch at run time).
    chunkSizeWarningLimit: 16_000,
    rollupOptions:
      root === 'demo' ? { input: { main: demoPage('index.html'), check: demoPage('check.html'), tfjs: demoPage('tfjs.html') } } : undefined,
  },
  server: { host: '127.0.0.1' },
});

export default defineConfig(({ mode }) =>
  mode === 'demo' || mode === 'bench'
    ? page(mode)
    : {
        build: {
          // Library build, ESM with the WGSL inlined: the main entry and the tfjs subpath's, both
          // importing one shared chunk (one copy of the library and its per-device state); the
          // Node-only imports stay external.
          lib: {
            entry: { 'webgpu-batchnorm': 'src/index.ts', tfjs: 'src/tfjs/index.ts' },
            formats: ['es'],
            fileName: (_format, name) => `${name}.js`,
          },
          // The code both entries share goes to one chunk of a fixed name (no hash: package.json lists it).
          rollupOptions: { external: ['webgpu', /^node:/], output: { chunkFileNames: 'webgpu-batchnorm-[name].js' } },
          target: 'es2022',
          // Not minified: class and function names stay as written (bn.constructor.name is
          // 'BatchNorm', stack traces say BatchNorm.forward); the app that bundles it minifies.
          minify: false,
        },
        test: {
          include: ['test/**/*.test.ts'],
          // The GPU tests share one software GPU (SwiftShader on two cores): one file at a time.
          fileParallelism: false,
          pool: 'forks',
          testTimeout: 120_000,
          hookTimeout: 120_000,
        },
      },
);
