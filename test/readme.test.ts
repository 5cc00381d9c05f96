/**
 * Every TypeScript snippet in the README type-checks against the library's own declarations,
 * each as a module of its own, with the values the prose assumes (a device, input arrays,
 * buffers) declared where a snippet uses them. A renamed export, option or argument, or a
 * snippet a user could not compile as written, breaks this test.
 */
import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const repo = resolve(import.meta.dirname, '..');

/** What the snippets take as given: declared in a snippet's module where it uses the name without defining it. */
const GIVEN: Record<string, string> = {
  device: 'GPUDevice',
  encoder: 'GPUCommandEncoder',
  x: 'Float32Array',
  dy: 'Float32Array',
  xTest: 'Float32Array',
  people: 'Float32Array',
  n: 'number',
  C: 'number',
  F: 'number',
  shape: 'number[]',
  chunks: 'Float32Array[]',
  gamma: 'Float32Array',
  beta: 'Float32Array',
  runningMean: 'Float64Array',
  runningVar: 'Float64Array',
  convWeight: 'Float32Array',
  convBias: 'Float32Array',
  stateDict: 'Record<string, Float32Array>',
  weights: 'Float32Array[]',
  bn: "import('webgpu-batchnorm').BatchNorm",
};
for (const name of ['xBuffer', 'yBuffer', 'dyBuffer', 'dxBuffer', 'params', 'grads', 'gammaBuffer', 'betaBuffer', 'meanBuffer', 'varBuffer', 'countBuffer', 'gammaGrad', 'betaGrad', 'rows', 'scaled', 'restored']) {
  GIVEN[name] = 'GPUBuffer';
}

/** Names a snippet declares itself (const/let, including destructuring). */
function declared(code: string): Set<string> {
  const names = new Set<string>();
  for (const m of code.matchAll(/\b(?:const|let)\s+(\{[^}]*\}|\[[^\]]*\]|[A-Za-z_$][\w$]*)/g)) {
    for (const n of m[1].replace(/[{}[\]]/g, ' ').split(/[\s,]+/)) {
      const name = n.split(':').pop()!.trim();
      if (name) names.add(name);
    }
  }
  for (const m of code.matchAll(/\bimport\s*\{([^}]*)\}/g)) for (const n of m[1].split(',')) names.add(n.trim().split(/\s+as\s+/).pop()!);
  return names;
}

function prelude(code: string): string {
  const own = declared(code);
  return Object.entries(GIVEN)
    .filter(([name]) => !own.has(name) && new RegExp(`(?<![\\w$.'])${name}(?![\\w$])`).test(code))
    .map(([name, type]) => `declare const ${name}: ${type};\n`)
    .join('');
}

describe('README', () => {
  it('every TypeScript snippet type-checks against the library', () => {
    const readme = readFileSync(join(repo, 'README.md'), 'utf8');
    const snippets = [...readme.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]);
    expect(snippets.length).toBeGreaterThanOrEqual(9);
    const dir = mkdtempSync(join(tmpdir(), 'webgpu-batchnorm-readme-'));
    try {
      const files = snippets.map((code, i) => {
        const file = join(dir, `snippet${i}.ts`);
        writeFileSync(file, `${prelude(code)}${code}\nexport {};\n`);
        return file;
      });
      writeFileSync(
        join(dir, 'tsconfig.json'),
        JSON.stringify({
          compilerOptions: {
            strict: true,
            noEmit: true,
            target: 'ES2022',
            module: 'ESNext',
            moduleResolution: 'Bundler',
            lib: ['ES2022', 'DOM'],
            types: ['@webgpu/types', 'vite/client', 'node'],
            typeRoots: [join(repo, 'node_modules', '@types'), join(repo, 'node_modules')],
            baseUrl: repo,
            paths: { 'webgpu-batchnorm': [join(repo, 'src', 'index.ts')] },
            skipLibCheck: true,
          },
          files,
        }),
      );
      let output = '';
      try {
        execFileSync('node', [join(repo, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', dir], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
      } catch (e) {
        output = (e as { stdout?: string }).stdout ?? String(e);
      }
      // Errors in the library's own files would be caught by the typecheck; only the snippets count here.
      const snippetErrors = output.split('\n').filter((line) => line.includes('snippet'));
      expect(snippetErrors).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
