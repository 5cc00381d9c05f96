/**
 * The examples run as a user runs them, against the built package (dist/): the normalize check,
 * and a two-layer network trained in the caller's own encoder with the caller's own kernels,
 * parameter arena and SGD (BN's γ/β living in that arena).
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { resolve } from 'node:path';

const repo = resolve(import.meta.dirname, '../..');
const node = (file: string) => execFileSync('node', [file], { cwd: repo, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

beforeAll(() => {
  execFileSync('npx', ['vite', 'build', '--logLevel', 'warn'], { cwd: repo, stdio: 'ignore' });
}, 120_000);

describe('examples/', () => {
  it('normalize.mjs matches the float64 reference', () => {
    expect(node('examples/normalize.mjs')).toContain('OK: the GPU matches the float64 reference');
  });

  it('two-layer-training.mjs trains in one encoder per step: the loss falls more than 10x', () => {
    const out = node('examples/two-layer-training.mjs');
    const losses = [...out.matchAll(/mse ([0-9.]+)/g)].map((m) => Number(m[1]));
    expect(losses.length).toBe(7);
    expect(losses[losses.length - 1]).toBeLessThan(losses[0] / 10);
    expect(out).toContain('BN: 300 batches tracked');
    expect(out).toContain('OK: one encoder and one submit per step');
  });
});
