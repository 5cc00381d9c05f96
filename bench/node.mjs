// `npm run bench:node` (or `node bench/node.mjs`): builds bench/node-bench.ts with vite (no tsc
// needed, so it also runs with the GPU machine's packed node_modules) into a folder of its own
// under dist-bench-node/, imports it and runs it. Options: `npm run bench:node -- --help`.
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build } from 'vite';

const root = fileURLToPath(new URL('..', import.meta.url));
process.chdir(root);
mkdirSync(join(root, 'dist-bench-node'), { recursive: true });
const outDir = mkdtempSync(join(root, 'dist-bench-node', 'run-'));
let code = 1;
try {
  await build({
    configFile: false,
    root,
    logLevel: 'warn',
    build: {
      ssr: 'bench/node-bench.ts',
      outDir,
      emptyOutDir: false,
      target: 'node20',
      minify: false,
      rolldownOptions: { external: ['webgpu', /^@tensorflow\//, /^node:/], output: { entryFileNames: 'bench-node.mjs', format: 'es' } },
    },
  });
  const { main } = await import(pathToFileURL(join(outDir, 'bench-node.mjs')).href);
  rmSync(outDir, { recursive: true, force: true });
  code = await main(process.argv.slice(2));
} catch (e) {
  console.error(e);
} finally {
  rmSync(outDir, { recursive: true, force: true });
}
// Dawn keeps the event loop alive; exit explicitly.
process.exit(code);
