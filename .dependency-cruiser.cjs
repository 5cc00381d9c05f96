/**
 * Import rules of the library (src/), checked in CI with `npm run lint:imports`:
 * core imports no op family; a family imports core (feature scaling also batch norm's kernels,
 * plan, record functions and reference: its transform runs batch norm's normalize kernel);
 * interop imports the families' public modules; an adapter for another framework (src/tfjs/) imports only the
 * package's public API (src/index.ts); nothing in src imports demo, bench, test, examples or
 * support; no cycles, type-only imports included. The WGSL (imported as ?raw text) follows the
 * same lines: core takes shaders/core only, a family shaders/core and its own folder.
 */
const FAMILIES = 'batchnorm|normalization|feature-scaling';

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      comment: 'No import cycles, type-only imports included.',
      severity: 'error',
      from: { path: '^src/' },
      to: { circular: true },
    },
    {
      name: 'core-imports-no-family',
      comment: 'src/core is the small core every op family builds on: it imports nothing outside src/core.',
      severity: 'error',
      from: { path: '^src/core/' },
      to: { path: '^src/', pathNot: '^src/core/' },
    },
    {
      name: 'batchnorm-imports-core',
      severity: 'error',
      from: { path: '^src/batchnorm/' },
      to: { path: '^src/', pathNot: '^src/(core|batchnorm)/' },
    },
    {
      name: 'normalization-imports-core',
      severity: 'error',
      from: { path: '^src/normalization/' },
      to: { path: '^src/', pathNot: '^src/(core|normalization)/' },
    },
    {
      name: 'feature-scaling-imports-core-and-batchnorm-kernels',
      comment: "Feature scaling builds on batch norm: its transform runs batch norm's normalize kernel, and its reference takes batch norm's statistics. It may import batch norm's kernels, plan, record functions and reference, nothing else of another family.",
      severity: 'error',
      from: { path: '^src/feature-scaling/' },
      to: { path: '^src/', pathNot: '^src/(core|feature-scaling)/|^src/batchnorm/(plan|record|kernels|reference)\\.ts$' },
    },
    {
      name: 'interop-imports-public-modules',
      comment: "Interop (presets, state I/O, folding) builds on the families' public modules: layer, functions, options, reference.",
      severity: 'error',
      from: { path: '^src/interop/' },
      to: { path: '^src/', pathNot: `^src/(core|interop)/|^src/(${FAMILIES})/(layer|functions|options|reference)\\.ts$` },
    },
    {
      name: 'adapter-imports-public-api',
      comment: 'An adapter for another framework (the tfjs subpath) uses only what users get: src/index.ts.',
      severity: 'error',
      from: { path: '^src/tfjs/' },
      to: { path: '^src/', pathNot: '^src/(index\\.ts$|tfjs/)' },
    },
    {
      name: 'library-imports-no-support-code',
      comment: 'The library is what src/index.ts reaches: demo, bench, test, examples and support build on it, never the other way.',
      severity: 'error',
      from: { path: '^src/' },
      to: { path: '^(demo|bench|test|examples|support)/' },
    },
    {
      name: 'resolvable',
      comment: 'Every import of the library resolves (WGSL comes in as ?raw text).',
      severity: 'error',
      from: { path: '^src/' },
      to: { couldNotResolve: true, pathNot: ['\\.wgsl\\?raw$', '^@webgpu/types$'] },
    },
    {
      name: 'shaders-by-family',
      comment: "The WGSL follows the same rules: core's TypeScript takes only shaders/core; a family's, shaders/core and its own (feature scaling: also batch norm's, through batchnorm/kernels.ts).",
      severity: 'error',
      from: { path: '^src/(core|batchnorm|normalization|feature-scaling)/' },
      to: { path: '^shaders/', pathNot: ['^shaders/core/', '^shaders/$1/'] },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
  },
};
