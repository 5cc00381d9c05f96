/**
 * bench:node's TF.js rows: plain TF.js on its webgpu backend ("TF.js") against the same TF.js
 * after registerTfjsKernels ("TF.js + adapter", webgpu-batchnorm/tfjs), in this process, on the
 * bench's own device (useDeviceForTfjs), written the way a TF.js user writes them:
 *
 * - a tf.layers.batchNormalization layer applied to an NHWC tensor: training forward
 *   (`layer.apply(x, { training: true })`) and forward+backward (`tf.variableGrads` of
 *   sum(y · w), w a fixed random tensor, with respect to x, γ and β: the gradient of a plain
 *   sum(y) with respect to x is zero, which would check nothing);
 * - a training step of conv2d (3×3, same padding, no bias) → batchNormalization → reLU with a
 *   mean-squared-error loss: one `tf.train.sgd(…).minimize(…)` over the model's weights.
 *
 * Each call is timed by wall clock from the call until the GPU is done (TF.js's open compute
 * pass ended, its command encoder submitted, then onSubmittedWorkDone), the two implementations
 * interleaved call by call (the adapter registered before its calls and uninstalled after them,
 * outside the timed span); median and min after a warm-up. Before timing, both run from the same
 * weights, and their outputs (y and the new moving statistics; every gradient, and the step's
 * loss) must agree within --tolerance relative to each output's size, max |adapter − plain| /
 * max |plain| (the step's gradients are small, of a mean over every element: an absolute measure,
 * or one against 1 + |plain|, would check little there); the adapter must have run its own
 * kernels, and no tensor may be left behind across the timed calls.
 *
 * TF.js is imported only here, dynamically, when these rows are asked for (the GPU machine's
 * packed node_modules has no @tensorflow): without it the rows are skipped, or the run fails
 * where `--cases tfjs` asked for them (see loadTfjs).
 */
import type * as TF from '@tensorflow/tfjs';
import { BATCHNORM_GRAD_KERNEL, BATCHNORM_KERNEL } from '../../src/tfjs/batch-norm.js';
import { registerTfjsKernels, useDeviceForTfjs, type WebGPUBackendClass } from '../../src/tfjs/index.js';
import { normalSamples } from '../../support/random.js';
import type { TfjsCase, TfjsMode, TfjsSelection } from '../cases.js';
import { summarize, type Summary } from '../timing.js';
import type { Options } from './cli.js';

type Tf = typeof TF;

/** The two implementations' names in the rows and the table. */
export const TFJS = 'TF.js';
export const TFJS_ADAPTER = 'TF.js + adapter';

/** One implementation in one TF.js case and mode; times are per call. */
export interface TfjsRow {
  case: string;
  kind: TfjsCase['kind'];
  shape: number[];
  filters?: number;
  mode: TfjsMode;
  impl: typeof TFJS | typeof TFJS_ADAPTER;
  /** Wall time per call, until the GPU is done; null with --check-only. */
  wall: Summary | null;
  /** The adapter's row: max |adapter − plain| / max |plain| of each output (diffs), and the largest of them; the plain row: null. */
  maxRelDiff: number | null;
  diffs?: Record<string, number>;
  /** Tensors alive after the timed calls minus before them (0: nothing leaked). */
  leakedTensors: number;
  ok: boolean;
  error?: string;
}

/** The TF.js rows of a run, or why there are none. */
export interface TfjsResult {
  available: boolean;
  reason?: string;
  /** @tensorflow/tfjs's version. */
  version?: string;
  /** How the rows were timed and checked, in words. */
  method?: string;
  rows: TfjsRow[];
  /** The rows that disagree, leak or did not run, one line each (a failure of the run). */
  problems: string[];
}

/** A case's name: `BatchNormalization NHWC [8,32,32,32]`, `conv2d 3x3 → BN → reLU step NHWC [8,32,32,16] → 32`. */
export function tfjsCaseName(c: TfjsCase, separator = ','): string {
  const dims = `[${c.shape.join(separator)}]`;
  return c.kind === 'layer' ? `BatchNormalization NHWC ${dims}` : `conv2d 3x3 → BN → reLU step NHWC ${dims} → ${c.filters}`;
}

/** The modes a TF.js case runs in for a selection of bench modes: the layer's training ones; the step with forward+backward. */
export function tfjsModes(c: TfjsCase, modes: readonly string[]): TfjsMode[] {
  if (c.kind === 'step') return modes.includes('forward+backward') ? ['training step'] : [];
  return (['training forward', 'forward+backward'] as const).filter((m) => modes.includes(m));
}

export const TFJS_MISSING = 'TF.js rows skipped: @tensorflow/tfjs not installed';

/** Whether an import error says that the package (not something inside it) is missing. */
export function isMissingPackage(error: unknown, name: string): boolean {
  const e = error as { code?: string; message?: string } | null;
  const message = String(e?.message ?? error);
  return (
    (e?.code === 'ERR_MODULE_NOT_FOUND' || e?.code === 'MODULE_NOT_FOUND' || /Cannot find (package|module)|Failed to (load|resolve)/i.test(message)) &&
    message.includes(name)
  );
}

/**
 * TF.js and its webgpu backend class, imported from node_modules (bench/node.mjs keeps
 * @tensorflow/* external, so both resolve to the one @tensorflow/tfjs-core that
 * @tensorflow/tfjs uses); null where @tensorflow/tfjs or @tensorflow/tfjs-backend-webgpu is not
 * installed. Any other import error is thrown.
 */
export async function loadTfjs(): Promise<{ tf: Tf; WebGPUBackend: WebGPUBackendClass } | null> {
  let tf: Tf;
  let WebGPUBackend: WebGPUBackendClass;
  try {
    tf = await import('@tensorflow/tfjs');
    ({ WebGPUBackend } = await import('@tensorflow/tfjs-backend-webgpu'));
  } catch (e) {
    if (isMissingPackage(e, '@tensorflow/')) return null;
    throw e;
  }
  // The backend's kernels register into the tfjs-core its module imported: they must be in tf's registry.
  if (!tf.getKernel('FusedBatchNorm', 'webgpu')) {
    throw new Error('@tensorflow/tfjs-backend-webgpu registered its kernels in another copy of @tensorflow/tfjs-core than @tensorflow/tfjs uses (two copies in node_modules, or one bundled)');
  }
  return { tf, WebGPUBackend };
}

/** The WebGPUBackend members used to wait for the GPU (TF.js 4.22's, as bench/tfjs-peer.ts). */
interface BackendQueue {
  endComputePassEncoder(): void;
  submitQueue(): void;
  commandEncoder: GPUCommandEncoder | null;
}

/**
 * The difference of `a` from `b` relative to b's size: max |a − b| / max |b| over the elements
 * (b all zeros: max |a − b|; a NaN or a length that differs: Infinity).
 */
export function maxRelDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Infinity;
  let diff = 0;
  let size = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (!(d <= diff)) diff = Number.isNaN(d) ? Infinity : d;
    size = Math.max(size, Math.abs(b[i]));
  }
  return size > 0 ? diff / size : diff;
}

/** What one case and mode runs: the call to time, and what the agreement check reads. */
interface Bench {
  /** Back to the initial weights and moving statistics. */
  reset(): void;
  /** One call as a user writes it; returns the tensors it made (disposed by the caller). */
  call(): TF.Tensor[];
  /** One call from the initial state, its outputs read back by name. */
  outputs(): Promise<Record<string, Float32Array>>;
  /** The adapter's kernels that must run in this mode. */
  kernels: string[];
}

/** A case's models, tensors and per-mode calls; dispose() frees them all. */
function makeCase(tf: Tf, c: TfjsCase): { bench(mode: TfjsMode): Bench; dispose(): void } {
  const n = c.shape.reduce((p, d) => p * d, 1);
  const C = c.shape[3];
  const keep: TF.Tensor[] = [];
  const kept = <T extends TF.Tensor>(t: T) => (keep.push(t), t);
  const read = async (t: TF.Tensor) => Float32Array.from((await t.data()) as Float32Array);
  const x = kept(tf.tensor(normalSamples(n, 11, 1, 2), c.shape));

  if (c.kind === 'layer') {
    const layer = tf.layers.batchNormalization({});
    tf.dispose(layer.apply(x, { training: false }) as TF.Tensor); // builds γ, β and the moving statistics
    const init = [normalSamples(C, 12, 1, 0.2), normalSamples(C, 13, 0, 0.2), normalSamples(C, 14, 0.5, 0.2), Float32Array.from(normalSamples(C, 15, 1, 0.2), Math.abs)].map(
      (v) => kept(tf.tensor(v, [C])),
    );
    const [gamma, beta, movingMean, movingVariance] = layer.weights.map((w) => w.read() as TF.Variable);
    const xVar = tf.variable(x, true);
    const w = kept(tf.tensor(normalSamples(n, 16, 0, 1), c.shape));
    const forward = (input: TF.Tensor) => layer.apply(input, { training: true }) as TF.Tensor;
    const loss = () => tf.sum(tf.mul(forward(xVar), w)) as TF.Scalar;
    const vars = [xVar, gamma, beta];
    const moving = async () => ({ movingMean: await read(movingMean), movingVariance: await read(movingVariance) });
    return {
      bench: (mode) => ({
        reset: () => layer.setWeights(init),
        call: () => {
          if (mode === 'training forward') return [tf.tidy(() => forward(x))];
          const { value, grads } = tf.variableGrads(loss, vars);
          return [value, ...Object.values(grads)];
        },
        outputs: async () => {
          layer.setWeights(init);
          if (mode === 'training forward') {
            const y = tf.tidy(() => forward(x));
            const out = { y: await read(y), ...(await moving()) };
            y.dispose();
            return out;
          }
          // Not the loss: a float32 sum of n products that mostly cancel, it magnifies y's rounding
          // (compared in training forward) by √n against a result near 0.
          const { value, grads } = tf.variableGrads(loss, vars);
          const out = { dx: await read(grads[xVar.name]), dgamma: await read(grads[gamma.name]), dbeta: await read(grads[beta.name]), ...(await moving()) };
          tf.dispose([value, ...Object.values(grads)]);
          return out;
        },
        kernels: mode === 'training forward' ? [BATCHNORM_KERNEL] : [BATCHNORM_KERNEL, BATCHNORM_GRAD_KERNEL],
      }),
      dispose: () => {
        layer.dispose();
        xVar.dispose();
        tf.dispose(keep);
      },
    };
  }

  const [N, H, W] = c.shape;
  const F = c.filters!;
  const model = tf.sequential({
    layers: [
      tf.layers.conv2d({ inputShape: [H, W, C], filters: F, kernelSize: 3, padding: 'same', useBias: false, kernelInitializer: tf.initializers.glorotNormal({ seed: 17 }) }),
      tf.layers.batchNormalization({}),
      tf.layers.reLU(),
    ],
  });
  const init = model.getWeights().map((t) => kept(t.clone()));
  const target = kept(tf.tensor(normalSamples(N * H * W * F, 18, 0.5, 1), [N, H, W, F]));
  const optimizer = tf.train.sgd(0.01);
  const vars = model.trainableWeights.map((v) => v.read() as TF.Variable);
  const bn = model.layers[1];
  const [movingMean, movingVariance] = bn.nonTrainableWeights.map((v) => v.read());
  const loss = () => tf.losses.meanSquaredError(target, model.apply(x, { training: true }) as TF.Tensor) as TF.Scalar;
  return {
    bench: () => ({
      reset: () => model.setWeights(init),
      call: () => {
        optimizer.minimize(loss, false, vars);
        return [];
      },
      outputs: async () => {
        model.setWeights(init);
        const { value, grads } = tf.variableGrads(loss, vars);
        const out: Record<string, Float32Array> = { loss: await read(value) };
        for (const v of vars) out[`d${v.name.split('/').pop()}`] = await read(grads[v.name]);
        out.movingMean = await read(movingMean);
        out.movingVariance = await read(movingVariance);
        tf.dispose([value, ...Object.values(grads)]);
        return out;
      },
      kernels: [BATCHNORM_KERNEL, BATCHNORM_GRAD_KERNEL],
    }),
    dispose: () => {
      model.dispose();
      optimizer.dispose();
      tf.dispose(keep);
    },
  };
}

/** Runs f, recording the name of every kernel TF.js's engine runs meanwhile. */
async function kernelNames<T>(tf: Tf, f: () => Promise<T>): Promise<{ result: T; names: Set<string> }> {
  const engine = tf.engine() as unknown as { runKernel: (name: string, ...rest: unknown[]) => unknown };
  const names = new Set<string>();
  const own = Object.prototype.hasOwnProperty.call(engine, 'runKernel');
  const original = engine.runKernel;
  engine.runKernel = function (this: unknown, name: string, ...rest: unknown[]) {
    names.add(name);
    return original.call(this, name, ...rest);
  };
  try {
    return { result: await f(), names };
  } finally {
    if (own) engine.runKernel = original;
    else delete (engine as Partial<typeof engine>).runKernel;
  }
}

/** What the TF.js rows run with. */
export interface TfjsContext {
  device: GPUDevice;
  o: Options;
  log: (line: string) => void;
  gpuErrors: string[];
}

/**
 * The TF.js rows of `selection` on ctx.device: TF.js's webgpu backend is rebuilt on that device
 * (useDeviceForTfjs), each case and mode checked, then timed. Resolves with available: false
 * where TF.js is not installed (the caller decides whether that fails the run).
 */
export async function benchTfjs(ctx: TfjsContext, selection: TfjsSelection): Promise<TfjsResult> {
  const { device, o, log } = ctx;
  const loaded = await loadTfjs();
  if (!loaded) return { available: false, reason: TFJS_MISSING, rows: [], problems: [] };
  const { tf, WebGPUBackend } = loaded;
  const backend = (await useDeviceForTfjs(tf, device, { WebGPUBackend })) as unknown as BackendQueue;
  const finish = async () => {
    backend.endComputePassEncoder();
    if (backend.commandEncoder) backend.submitQueue();
    await device.queue.onSubmittedWorkDone();
  };
  let uninstall: (() => void) | null = null;
  const useAdapter = (on: boolean) => {
    if (on && !uninstall) uninstall = registerTfjsKernels(tf);
    else if (!on && uninstall) {
      uninstall();
      uninstall = null;
    }
  };
  const version = tf.version.tfjs;
  log(`TF.js ${version} on its webgpu backend, on this device: ${TFJS} and ${TFJS_ADAPTER} (registerTfjsKernels), interleaved call by call`);

  const rows: TfjsRow[] = [];
  const problems: string[] = [];
  try {
    for (const c of selection.cases) {
      const made = makeCase(tf, c);
      try {
        for (const mode of tfjsModes(c, o.modes)) {
          const b = made.bench(mode);
          const base = { case: tfjsCaseName(c), kind: c.kind, shape: c.shape, ...(c.filters !== undefined && { filters: c.filters }), mode };
          const plainRow: TfjsRow = { ...base, impl: TFJS, wall: null, maxRelDiff: null, leakedTensors: 0, ok: true };
          const oursRow: TfjsRow = { ...base, impl: TFJS_ADAPTER, wall: null, maxRelDiff: null, leakedTensors: 0, ok: true };
          const fail = (row: TfjsRow, error: string) => {
            row.ok = false;
            row.error = row.error ? `${row.error}; ${error}` : error;
          };

          // Agreement, from the same initial state; and the adapter's kernels must have run.
          useAdapter(false);
          const plain = await kernelNames(tf, b.outputs);
          useAdapter(true);
          const ours = await kernelNames(tf, b.outputs);
          useAdapter(false);
          const diffs: Record<string, number> = {};
          for (const [name, values] of Object.entries(plain.result)) diffs[name] = maxRelDiff(ours.result[name] ?? [], values);
          oursRow.diffs = diffs;
          oursRow.maxRelDiff = Math.max(...Object.values(diffs));
          if (!(oursRow.maxRelDiff <= o.tolerance)) {
            fail(oursRow, `disagrees with plain TF.js: ${Object.entries(diffs).filter(([, d]) => !(d <= o.tolerance)).map(([k, d]) => `${k} ${d.toExponential(1)}`).join(', ')} (tolerance ${o.tolerance})`);
          }
          const missing = b.kernels.filter((k) => !ours.names.has(k));
          if (missing.length) fail(oursRow, `the adapter's ${missing.join(', ')} did not run`);
          if (b.kernels.some((k) => plain.names.has(k))) fail(plainRow, "plain TF.js ran the adapter's kernels");

          if (!o.checkOnly) {
            b.reset();
            const times: Record<string, number[]> = { [TFJS]: [], [TFJS_ADAPTER]: [] };
            const timeOne = async (adapter: boolean) => {
              useAdapter(adapter);
              const started = performance.now();
              const out = b.call();
              await finish();
              const ms = performance.now() - started;
              tf.dispose(out);
              useAdapter(false);
              return ms;
            };
            // Warm-up: at least two calls each (the first compiles TF.js's pipelines) and --warmup-ms.
            const warmStart = performance.now();
            for (let i = 0; i < 2 || (performance.now() - warmStart < o.warmupMs && i < 50); i++) {
              await timeOne(i % 2 === 0);
              await timeOne(i % 2 !== 0);
            }
            const before = tf.memory().numTensors;
            for (let i = 0; i < o.samples; i++) {
              const order = i % 2 === 0 ? [false, true] : [true, false];
              for (const adapter of order) times[adapter ? TFJS_ADAPTER : TFJS].push(await timeOne(adapter));
            }
            const leaked = tf.memory().numTensors - before;
            plainRow.wall = summarize(times[TFJS]);
            oursRow.wall = summarize(times[TFJS_ADAPTER]);
            for (const row of [plainRow, oursRow]) {
              row.leakedTensors = leaked;
              if (leaked !== 0) fail(row, `${leaked} tensors left behind over ${2 * o.samples} calls`);
            }
          }
          if (ctx.gpuErrors.length) for (const row of [plainRow, oursRow]) fail(row, ctx.gpuErrors.join('; '));
          ctx.gpuErrors.length = 0;
          for (const row of [plainRow, oursRow]) {
            rows.push(row);
            if (!row.ok) problems.push(`${row.case} ${row.mode} ${row.impl}: ${row.error}`);
            const t = row.wall;
            const ratio = row.impl === TFJS_ADAPTER && plainRow.wall && t ? `, ${(plainRow.wall.medianMs / t.medianMs).toFixed(2)}× TF.js` : '';
            log(
              `${row.case} · ${mode} · ${row.impl}: ${t ? `${t.medianMs.toFixed(2)} ms (min ${t.minMs.toFixed(2)}, wall)${ratio}` : 'not timed'}` +
                `${row.maxRelDiff !== null ? `, max rel. diff vs TF.js ${row.maxRelDiff.toExponential(1)}` : ''}${row.ok ? '' : ` FAILED (${row.error})`}`,
            );
          }
        }
      } finally {
        useAdapter(false);
        made.dispose();
      }
    }
  } finally {
    useAdapter(false);
    await finish();
  }
  const method =
    `wall time per call, from the call until TF.js's work is submitted and onSubmittedWorkDone resolves; median and min of ${o.samples} calls per implementation, ` +
    `interleaved call by call (the adapter registered before each of its calls, uninstalled after), after a warm-up of at least 2 calls each and ${o.warmupMs} ms; ` +
    `agreement: max |adapter - plain| / max |plain| <= ${o.tolerance} for every output, from the same initial weights`;
  return { available: true, version, method, rows, problems };
}
