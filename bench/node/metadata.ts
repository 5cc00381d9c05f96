/**
 * bench:node's metadata of a run: the adapter's file name, the commit, the NVIDIA driver and
 * package versions that go into the results JSON and markdown.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';

/** A file-name-safe name of the adapter, e.g. google-swiftshader or nvidia-hopper. */
export function adapterSlug(info: { vendor?: string; architecture?: string; description?: string }): string {
  const parts = [info.vendor, info.architecture].filter((s) => s && s.length > 0) as string[];
  const raw = parts.length ? parts.join('-') : info.description || 'unknown';
  return raw.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '') || 'unknown';
}

/** The commit benchmarked: BENCH_COMMIT, else git's short HEAD (noting uncommitted changes). */
export function gitCommit(): string {
  if (process.env.BENCH_COMMIT) return process.env.BENCH_COMMIT;
  try {
    const run = (args: string[]) => execFileSync('git', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    const head = run(['rev-parse', '--short', 'HEAD']);
    return run(['status', '--porcelain', '--untracked-files=no']) ? `${head} + uncommitted changes` : head;
  } catch {
    return 'unknown (set BENCH_COMMIT)';
  }
}


/** The NVIDIA GPU's name and driver version from nvidia-smi, or null without one. */
export function nvidiaDriver(): string | null {
  try {
    return execFileSync('nvidia-smi', ['--query-gpu=name,driver_version', '--format=csv,noheader'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 10_000 })
      .trim()
      .split('\n')[0];
  } catch {
    return null;
  }
}

/** An installed package's version, or null. */
export function packageVersion(name: string): string | null {
  const path = resolve('node_modules', name, 'package.json');
  return existsSync(path) ? (JSON.parse(readFileSync(path, 'utf8')) as { version: string }).version : null;
}
