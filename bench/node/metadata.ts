/**
 * bench:node's metadata of a run: the adapter's file name, the commit, the NVIDIA driver, its
 * clocks (nvidia-smi, before and after the run: WebGPU cannot read them) and package versions
 * that go into the results JSON and markdown.
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

/** The GPU's clocks as nvidia-smi reports them ("1980 MHz", "P0", temperature in °C). */
export interface GpuClocks {
  sm: string;
  mem: string;
  maxSm: string;
  maxMem: string;
  pstate: string;
  temperatureC: string;
}

const CLOCK_FIELDS = ['clocks.sm', 'clocks.mem', 'clocks.max.sm', 'clocks.max.mem', 'pstate', 'temperature.gpu'];

/** One line of `nvidia-smi --query-gpu=<CLOCK_FIELDS> --format=csv,noheader`, or null if it is not one. */
export function parseNvidiaClocks(line: string): GpuClocks | null {
  const f = line.split(',').map((s) => s.trim());
  if (f.length !== CLOCK_FIELDS.length) return null;
  const [sm, mem, maxSm, maxMem, pstate, temperatureC] = f;
  return { sm, mem, maxSm, maxMem, pstate, temperatureC };
}

/** The first NVIDIA GPU's clocks now, or null without nvidia-smi (or when it fails or hangs). */
export function nvidiaClocks(): GpuClocks | null {
  try {
    const out = execFileSync('nvidia-smi', [`--query-gpu=${CLOCK_FIELDS.join(',')}`, '--format=csv,noheader'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 5_000 });
    return parseNvidiaClocks(out.trim().split('\n')[0]);
  } catch {
    return null;
  }
}

/** Clocks in a line: SM 1980 of 1980 MHz, memory 3201 of 3201 MHz, P0, 34 °C. */
export function fmtClocks(c: GpuClocks): string {
  const of = (now: string, max: string) => `${now.replace(/ MHz$/, '')} of ${max}`;
  return `SM ${of(c.sm, c.maxSm)}, memory ${of(c.mem, c.maxMem)}, ${c.pstate}, ${c.temperatureC} °C`;
}

/** An installed package's version, or null. */
export function packageVersion(name: string): string | null {
  const path = resolve('node_modules', name, 'package.json');
  return existsSync(path) ? (JSON.parse(readFileSync(path, 'utf8')) as { version: string }).version : null;
}
