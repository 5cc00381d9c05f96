import { defineConfig } from 'vitest/config';

// A page of its own: `demo` (npm run demo / build:demo) or `bench` (npm run bench).
const page = (root: string) => ({
  root,
  base: './',
  build: { outDir: `../dist-${root}`, emptyOutDir: true, target: 'es2022' },
  server: { host: '127.0.0.1' },
});

export default defineConfig(({ mode }) =>
  mode === 'demo' || mode === 'bench'
    ? page(mode)
    : {
        build: {
          // Library build: one ESM file with the WGSL inlined; the Node-only imports stay external.
          lib: { entry: 'src/index.ts', formats: ['es'], fileName: 'webgpu-batchnorm' },
          rollupOptions: { external: ['webgpu', /^node:/] },
          target: 'es2022',
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
