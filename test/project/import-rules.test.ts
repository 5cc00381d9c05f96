/**
 * The import rules of the library (.dependency-cruiser.cjs, run in CI by `npm run lint:imports`)
 * hold for src/, and each rule fails when an import that breaks it is planted in a scratch copy of
 * src/: an upward import from core, a family importing another, interop reaching a family's
 * internals, a cycle through a type-only import, the library importing test code, core taking
 * a family's WGSL, and the TF.js adapter (src/tfjs/) reaching past the public API.
 */
import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { appendFileSync, cpSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const repo = resolve(import.meta.dirname, '../..');
const depcruise = join(repo, 'node_modules', 'dependency-cruiser', 'bin', 'dependency-cruise.mjs');

interface Violation {
  rule: { name: string };
  from: string;
  to: string;
}

/** The violations dependency-cruiser finds in `root`'s src/ with the project's rules. */
function violations(root: string): Violation[] {
  let out: string;
  try {
    out = execFileSync(process.execPath, [depcruise, 'src', '--config', '.dependency-cruiser.cjs', '--output-type', 'json'], { cwd: root, encoding: 'utf8', maxBuffer: 1 << 26 });
  } catch (e) {
    // Exit code = the number of errors; the JSON report is still on stdout.
    out = (e as { stdout: string }).stdout;
  }
  return (JSON.parse(out) as { summary: { violations: Violation[] } }).summary.violations;
}

describe('import rules', () => {
  it('src/ has no violation', () => {
    expect(violations(repo)).toEqual([]);
  }, 60_000);

  it('each rule fails on a planted import', () => {
    const scratch = mkdtempSync(join(tmpdir(), 'import-rules-'));
    try {
      for (const name of ['src', 'shaders', 'test', '.dependency-cruiser.cjs', 'tsconfig.json', 'package.json']) cpSync(join(repo, name), join(scratch, name), { recursive: true });
      symlinkSync(join(repo, 'node_modules'), join(scratch, 'node_modules'), 'dir');
      const plant = (file: string, line: string) => appendFileSync(join(scratch, file), `\n${line}\n`);
      plant('src/core/gpu.ts', "export { BatchNorm as PlantedUpward } from '../batchnorm/layer.js';");
      plant('src/batchnorm/record.ts', "export type { NormGeometry as PlantedAcross } from '../normalization/plan.js';");
      plant('src/interop/folding.ts', "export { recordForward as PlantedInternal } from '../batchnorm/record.js';");
      plant('src/core/gpu.ts', "export type { KnownKeys as PlantedTypeCycle } from './validate.js';");
      plant('src/normalization/reference.ts', "export { testDevice as PlantedTest } from '../../test/helpers/gpu.js';");
      plant('src/core/shaders.ts', "import plantedWgsl from '../../shaders/batchnorm/common.wgsl?raw'; export { plantedWgsl };");
      plant('src/tfjs/batch-norm.ts', "export { recordForward as PlantedPastTheApi } from '../batchnorm/record.js';");
      const found = violations(scratch).map((v) => `${v.rule.name}: ${v.from} → ${v.to}`);
      expect(found).toContain('core-imports-no-family: src/core/gpu.ts → src/batchnorm/layer.ts');
      expect(found).toContain('batchnorm-imports-core: src/batchnorm/record.ts → src/normalization/plan.ts');
      expect(found).toContain('interop-imports-public-modules: src/interop/folding.ts → src/batchnorm/record.ts');
      expect(found).toContain('library-imports-no-support-code: src/normalization/reference.ts → test/helpers/gpu.ts');
      expect(found).toContain('shaders-by-family: src/core/shaders.ts → shaders/batchnorm/common.wgsl');
      expect(found).toContain('adapter-imports-public-api: src/tfjs/batch-norm.ts → src/batchnorm/record.ts');
      expect(found.some((v) => v.startsWith('no-circular: ') && v.includes('src/core/validate.ts'))).toBe(true);
    } finally {
      rmSync(scratch, { recursive: true, force: true });
    }
  }, 120_000);
});
