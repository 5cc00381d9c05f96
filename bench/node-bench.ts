/**
 * `npm run bench:node`: the benchmark in Node through Dawn (the `webgpu` package) on whatever
 * adapter getDevice finds: a GPU driver where there is one, SwiftShader otherwise. The same
 * implementations as the browser benchmark (webgpu-batchnorm, the two-pass baseline, the copy
 * roofline: here the fastest of several copy kernels), each output checked against the float64
 * reference, and optionally PyTorch on the same cases (bench/pytorch_peer.py).
 *
 * The normalization family has cases of its own (FAMILY_CASES in cases.ts): LayerNorm,
 * RMSNorm, GroupNorm and InstanceNorm of this library against a two-pass family baseline
 * (family-baseline.wgsl) and the same copies, in two modes, forward and backward alone (bench/family.ts).
 *
 * Method: Dawn's timestamp quantization off; per case and mode, a warm-up of at least
 * --warmup-ms with the implementations interleaved; then --samples rounds, each timing every
 * implementation once (order rotated each round): K repetitions recorded into one encoder between
 * two timestamp writes, K chosen per implementation so that one sample holds at least
 * --min-sample-ms of GPU work. Times are per call (sample / K); medians and minima; ratios on GPU
 * time. The clock state WebGPU cannot read is checked through the copies: a case and mode whose
 * copy ran below 80 % of the fastest comparable copy is re-sampled after all cases (up to
 * --resample times) and marked "slow clock?" if it stays there; nvidia-smi's clocks, where there
 * is one, are recorded before and after. A micro-benchmark of chained one-thread dispatches gives
 * the cost of one dependent dispatch on the adapter, in the header.
 *
 * TF.js rows (cases-tfjs.ts, `--cases tfjs`, part of the default run and of --quick): plain
 * TF.js on its webgpu backend against the same TF.js after registerTfjsKernels, a
 * BatchNormalization layer and a conv2d → BN → reLU training step, timed by wall clock, their
 * outputs checked against each other; TF.js is imported only then, and where it is not installed
 * the rows are skipped (a failure where --cases named tfjs or tfjs-quick).
 *
 * This file is the entry: main() runs the cases and writes the results. Its parts, in bench/node/:
 * cli.ts (options, --help), rows.ts (the row and names they share), sampling.ts (K and the
 * interleaved samples), case-run.ts, cases-batchnorm.ts, cases-family.ts and cases-tfjs.ts
 * (running one case), clock-check.ts (re-sampling rows of a slow copy), dispatch-cost.ts (the
 * micro-benchmark), peer-pytorch.ts (bench/pytorch_peer.py), report.ts (the table) and
 * metadata.ts (commit, driver, clocks).
 *
 * bench/node.mjs builds this file with vite and calls main(); run `npm run bench:node -- --help`.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { getDevice } from '../src/core/device.js';
import { COPY_VARIANTS, CopyKernels } from './baseline.js';
import { familyModes, type BenchCase } from './cases.js';
import { GpuTimer } from './timing.js';
import { benchBatchNormCase } from './node/cases-batchnorm.js';
import { benchFamilyCase } from './node/cases-family.js';
import type { CaseContext } from './node/case-run.js';
import { TFJS_MISSING, benchTfjs, tfjsCaseName, type TfjsResult } from './node/cases-tfjs.js';
import { SLOW_COPY_SHARE, resampleLines, resampleSlowRows, type ClockCheck } from './node/clock-check.js';
import { USAGE, parseOptions, type Options } from './node/cli.js';
import { dispatchCostLine, measureDispatchCost, type DispatchCost } from './node/dispatch-cost.js';
import { adapterSlug, fmtClocks, gitCommit, nvidiaClocks, nvidiaDriver, packageVersion } from './node/metadata.js';
import { runPeer, type PeerResult } from './node/peer-pytorch.js';
import { fmtErr, fmtGBs, fmtMs, makeTable, makeTfjsTable, readCompare, rooflineCheck } from './node/report.js';
import { BASELINE, EPS, MOMENTUM, OURS, caseModes, caseName, modesOf, type NodeRow } from './node/rows.js';
import { K_MARGIN } from './node/sampling.js';

const DAWN_FLAGS = ['disable-dawn-features=timestamp_quantization'];

/** Runs one case (BatchNorm's or the family's) in the selected modes: its rows. */
export function runCase(ctx: CaseContext, c: BenchCase): Promise<NodeRow[]> {
  return (c.norm ? benchFamilyCase : benchBatchNormCase)(ctx, c);
}

/** Runs the case and mode of a row again (checked and timed): its new rows. */
export function rerunRow(ctx: CaseContext, row: NodeRow): Promise<NodeRow[]> {
  const c = ctx.o.cases.find((c) => caseName(c) === caseName(row));
  if (!c) throw new Error(`no case ${caseName(row)} among --cases`);
  return runCase({ ...ctx, o: { ...ctx.o, modes: modesOf(row.mode) } }, c);
}

/** Runs the benchmark; resolves with the process exit code. */
export async function main(argv: string[]): Promise<number> {
  let o: Options;
  try {
    o = parseOptions(argv);
  } catch (e) {
    console.error(`bench:node: ${(e as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (o.help) {
    console.log(USAGE);
    return 0;
  }
  const compare = o.compare ? readCompare(o.compare) : null;
  const started = Date.now();
  const clocksBefore = nvidiaClocks();
  const log = (line: string) => console.log(`${((Date.now() - started) / 1000).toFixed(0).padStart(5)} s  ${line}`);

  const device = await getDevice({ dawnFlags: DAWN_FLAGS, label: 'bench:node device' });
  const gpuErrors: string[] = [];
  device.addEventListener('uncapturederror', (e) => gpuErrors.push((e as GPUUncapturedErrorEvent).error.message));
  const info = device.adapterInfo;
  const adapter = { vendor: info.vendor, architecture: info.architecture, device: info.device, description: info.description };
  const adapterName = [info.vendor, info.architecture, info.description].filter(Boolean).join(' ') || 'unknown adapter';
  const driver = nvidiaDriver() ?? info.description ?? null;
  const slug = adapterSlug(info);
  const timer = new GpuTimer(device);
  const copies = new CopyKernels(device);
  const commit = gitCommit();
  const copyNames = Object.keys(COPY_VARIANTS);
  const total = o.cases.reduce((sum, c) => sum + caseModes(c, o.modes).length, 0) * (2 + copyNames.length);
  log(`adapter: ${adapterName}${driver && driver !== info.description ? ` (${driver})` : ''}; timing: ${timer.method}; Dawn flags: ${DAWN_FLAGS.join(' ')}; commit ${commit}`);
  if (clocksBefore) log(`GPU clocks (nvidia-smi): ${fmtClocks(clocksBefore)}`);
  log(`${o.cases.length} cases x their modes (${o.modes.join(', ')}; family: ${familyModes(o.modes).join(', ') || 'none'})${o.tfjs ? `, ${o.tfjs.cases.length} TF.js cases` : ''}; ${o.checkOnly ? 'outputs checked, nothing timed (--check-only)' : `${o.samples} samples of >= ${o.minSampleMs} ms each, ${o.warmupMs} ms warm-up`}; implementations: ${OURS}, ${BASELINE}, ${copyNames.join(', ')}`);

  let step = 0;
  const rowLine = (r: NodeRow) => {
    const t = r.gpu ?? r.wall;
    const check = r.impl.startsWith('copy') ? (r.maxError === 0 ? 'exact' : `${r.maxError} words differ`) : `max error ${fmtErr(r.maxError)}`;
    return (
      `${caseName(r)} · ${r.mode} · ${r.impl}: ` +
      (t ? `${fmtMs(t.medianMs)} ms (min ${fmtMs(t.minMs)}, K=${r.k}${r.gpu ? '' : ', wall'}), ${fmtGBs(r.gbPerS)} GB/s, ` : 'not timed, ') +
      `${check}${r.ok ? '' : ' OFF THE REFERENCE'}${r.error ? ` (${r.error})` : ''}`
    );
  };
  const ctx: CaseContext = { device, timer, copies, o, progress: (r) => log(`[${++step}/${total}] ${rowLine(r)}`), gpuErrors };
  const rows: NodeRow[] = [];
  let failure: string | null = null;
  for (const c of o.cases) {
    try {
      const caseRows = await runCase(ctx, c);
      for (const r of caseRows.filter((r) => r.error?.startsWith('skipped'))) log(`${caseName(c)} · ${r.mode}: ${r.error}`);
      step += caseRows.filter((r) => r.error?.startsWith('skipped')).length * (2 + copyNames.length);
      rows.push(...caseRows);
    } catch (e) {
      failure = `${caseName(c)}: ${(e as Error).stack ?? e}`;
      log(`error in ${failure}`);
      break;
    }
  }

  // Rows whose copy ran slow (a slower clock state), timed again: clock-check.ts. Not on a CPU
  // adapter by default: it has no clock states, and its copies vary with the CPU's load.
  const resample = o.resample ?? (info.isFallbackAdapter ? 0 : 2);
  let clockCheck: ClockCheck | null = null;
  if (!o.checkOnly && !failure && rows.length) {
    const at = Date.now();
    try {
      clockCheck = await resampleSlowRows(rows, resample, (r, attempt) => rerunRow({ ...ctx, progress: (row) => log(`re-sample ${attempt}: ${rowLine(row)}`) }, r));
      clockCheck.ms = Date.now() - at;
      log(`clock check: ${clockCheck.resampled.length} row(s) re-sampled (up to ${resample}×), ${clockCheck.slow.length} with a copy below ${100 * SLOW_COPY_SHARE} % of the fastest copy of at most its bytes; ${clockCheck.ms} ms`);
    } catch (e) {
      failure = `re-sampling: ${(e as Error).stack ?? e}`;
      log(`error in ${failure}`);
    }
  }

  // The cost of one dependent dispatch, measured last, with the GPU warm from the cases.
  let dispatchCost: DispatchCost | null = null;
  if (!o.checkOnly && !failure) {
    const at = Date.now();
    try {
      dispatchCost = await measureDispatchCost(device, timer, { n: o.quick ? 32 : 64, samples: o.quick ? 9 : 15, warmupMs: Math.min(o.warmupMs, 300) });
      if (gpuErrors.length) throw new Error(gpuErrors.splice(0).join('; '));
      log(`${dispatchCostLine(dispatchCost)}; ${Date.now() - at} ms`);
    } catch (e) {
      failure = `dispatch cost: ${(e as Error).stack ?? e}`;
      log(`error in ${failure}`);
    }
  }
  timer.destroy();

  // The TF.js rows, last: TF.js's backend is rebuilt on this device and keeps its buffers.
  let tfjs: TfjsResult | null = null;
  if (o.tfjs && !failure) {
    try {
      tfjs = await benchTfjs({ device, o, log, gpuErrors }, o.tfjs);
      if (!tfjs.available) {
        if (o.tfjs.required) failure = `${TFJS_MISSING}, but --cases asked for them (it is a devDependency: npm install)`;
        else log(TFJS_MISSING);
      }
    } catch (e) {
      failure = `TF.js rows: ${(e as Error).stack ?? e}`;
      log(`error in ${failure}`);
    }
  }

  let peer: PeerResult | null = null;
  if (o.peer === 'pytorch' && !failure) {
    log(`PyTorch peer: ${o.python} bench/pytorch_peer.py${o.torchCompile ? ' (with torch.compile)' : ''}`);
    peer = await runPeer(o);
    log(peer.available ? `PyTorch peer: torch ${peer.torch}, CUDA ${peer.cuda}, cuDNN ${peer.cudnn}, ${peer.device}` : `PyTorch peer: not run: ${peer.reason}`);
    if (peer.error) log(`PyTorch peer stopped early: ${peer.error}`);
  }

  const clocksAfter = nvidiaClocks();
  const gpuClocks = clocksBefore || clocksAfter ? { before: clocksBefore, after: clocksAfter } : null;
  const clockLine = gpuClocks ? `GPU clocks (nvidia-smi) before: ${gpuClocks.before ? fmtClocks(gpuClocks.before) : 'not read'}; after: ${gpuClocks.after ? fmtClocks(gpuClocks.after) : 'not read'}.` : '';
  const clockNotes = clockCheck ? resampleLines(clockCheck) : [];
  const clockTitle = `Re-sampled, up to ${resample}× (the copy below ${100 * SLOW_COPY_SHARE} % of the fastest copy of at most its bytes):`;
  const tfjsTable = tfjs?.rows.length ? makeTfjsTable(tfjs.rows) : '';
  const table = [rows.length || !tfjsTable ? makeTable(rows, peer, compare) : '', tfjsTable && `${rows.length ? 'TF.js: plain against registerTfjsKernels (wall time per call until the GPU is done):\n\n' : ''}${tfjsTable}`]
    .filter(Boolean)
    .join('\n\n');
  const peerNote = !peer ? '' : peer.available ? `PyTorch ${peer.torch} (CUDA ${peer.cuda}, cuDNN ${peer.cudnn}) on ${peer.device}.${peer.error ? ` It stopped early: ${peer.error}.` : ''}` : `PyTorch peer not run: ${peer.reason}.`;
  const roofline = rooflineCheck(rows, peer);
  // The peer's rows that failed or missed its float64 check (not a failure of this run).
  const peerProblems = (peer?.available ? (peer.rows ?? []) : [])
    .filter((p) => p.error || !p.ok)
    .map((p) => `${caseName(p)} ${p.mode} ${p.impl}: ${p.error ?? `off its reference, max error ${p.maxError}`}`);
  const bad = rows.filter((r) => !r.ok);
  const result = {
    adapter: { ...adapter, name: adapterName, driver, features: [...device.features].sort(), slug },
    timing: timer.method,
    dawnFlags: DAWN_FLAGS,
    commit,
    date: new Date().toISOString(),
    node: process.version,
    webgpu: packageVersion('webgpu'),
    gpuClocks,
    dispatchCost,
    machine: { cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model, memoryGiB: Math.round(os.totalmem() / 2 ** 30), platform: `${os.platform()} ${os.release()}` },
    method: {
      samples: o.samples,
      minSampleMs: o.minSampleMs,
      warmupMs: o.warmupMs,
      tolerance: o.tolerance,
      eps: EPS,
      momentum: MOMENTUM,
      kMargin: K_MARGIN,
      resample,
      note: 'times per call (sample / K), medians and minima of interleaved samples; GPU time from timestamp queries; rows whose copy ran below 80 % of the fastest copy of at most its bytes re-sampled (clockCheck)',
    },
    options: { cases: o.cases.map((c) => caseName(c)), tfjs: o.tfjs && { cases: o.tfjs.cases.map((c) => tfjsCaseName(c)), required: o.tfjs.required }, modes: o.modes, familyModes: familyModes(o.modes), quick: o.quick, peer: o.peer, torchCompile: o.torchCompile, checkOnly: o.checkOnly },
    rows,
    clockCheck,
    peer,
    rooflineCheck: roofline,
    peerProblems,
    failure,
    offReference: bad.map((r) => `${caseName(r)} ${r.mode} ${r.impl}: ${r.error ?? `max error ${r.maxError}`}`),
    tfjs,
    table,
  };

  console.log(`\n${adapterName}; ${result.machine.cpus} CPUs, ${result.machine.cpuModel}; commit ${commit}; ${result.date}`);
  if (clockLine) console.log(clockLine);
  if (dispatchCost) console.log(`${dispatchCostLine(dispatchCost)}.`);
  if (rows.length) console.log(`GPU time per call (${timer.method}), median and min of ${o.samples}; roofline × = time / fastest copy's time; "vs" columns: other time / ours (> 1: ours faster).`);
  if (tfjsTable) console.log(`TF.js rows: wall time per call until the GPU is done, median of ${o.samples}; vs TF.js = plain TF.js's time / the adapter's (> 1: the adapter faster).`);
  console.log('');
  console.log(table);
  if (clockNotes.length) console.log(`\n${clockTitle}\n${clockNotes.map((l) => `  ${l}`).join('\n')}`);
  if (peerNote) console.log(`\n${peerNote}`);
  if (roofline.length) console.log(`\nRoofline check against PyTorch's copy (tensors >= 25 MB):\n${roofline.map((l) => `  ${l}`).join('\n')}`);
  if (peerProblems.length) console.log(`\nPyTorch rows not timed or off their reference:\n${peerProblems.map((l) => `  ${l}`).join('\n')}`);

  const outPath = o.out ? resolve(o.out) : process.env.OUT ? join(process.env.OUT, `results-node-${slug}.json`) : resolve(`bench/results-node-${slug}.json`);
  mkdirSync(dirname(outPath), { recursive: true });
  writeFileSync(outPath, `${JSON.stringify(result, null, 2)}\n`);
  const mdPath = outPath.replace(/\.json$/, '') + '.md';
  const mdHeader = [
    `${driver ? `Driver: ${driver}. ` : ''}Commit ${commit}, ${result.date}, Node ${process.version}, webgpu ${result.webgpu}${tfjs?.version ? `, @tensorflow/tfjs ${tfjs.version}` : ''}.${tfjs && !tfjs.available ? ` ${TFJS_MISSING}.` : ''}${peerNote ? ` ${peerNote}` : ''}`,
    clockLine,
    dispatchCost ? `${dispatchCostLine(dispatchCost)}.` : '',
  ].filter(Boolean);
  const mdList = (title: string, lines: string[]) => (lines.length ? `\n${title}\n\n${lines.map((l) => `- ${l}`).join('\n')}\n` : '');
  writeFileSync(
    mdPath,
    `# bench:node on ${adapterName}\n\n${mdHeader.join('\n\n')}\n\n${table}\n` +
      mdList(clockTitle, clockNotes) +
      mdList("Roofline check against PyTorch's copy (tensors >= 25 MB):", roofline) +
      mdList('PyTorch rows not timed or off their reference:', peerProblems),
  );
  console.log(`\nwrote ${outPath} and ${mdPath}`);

  if (failure) {
    console.error(`bench:node: FAILED: ${failure}`);
    return 1;
  }
  if (tfjs?.problems.length) {
    console.error(`bench:node: FAILED: ${tfjs.problems.length} TF.js row(s) off plain TF.js (tolerance ${o.tolerance}), leaking or not run:\n  ${tfjs.problems.join('\n  ')}`);
    return 1;
  }
  if (bad.length) {
    console.error(`bench:node: FAILED: ${bad.length} output(s) off the reference (tolerance ${o.tolerance}):\n  ${result.offReference.join('\n  ')}`);
    return 1;
  }
  log(`all ${rows.filter((r) => r.maxError !== null).length} outputs match the reference${tfjs?.rows.length ? `; TF.js + adapter agrees with plain TF.js in all ${tfjs.rows.length / 2} TF.js rows` : ''}`);
  return 0;
}
