/**
 * The training demo's two schedules and which one the page runs by default: the full experiment
 * on a GPU adapter, and a short one on a CPU adapter (SwiftShader, llvmpipe, WARP), where the
 * full one takes a quarter of an hour. `?schedule=full` or `?schedule=short` picks one; URL
 * parameters (lr, batch, steps, ...) override single settings of either.
 */

/** The settings a schedule fixes; `train` and `validation` are sample counts (Infinity: all). */
export interface Schedule {
  lr: number;
  momentum: number;
  batch: number;
  epochs: number;
  /** A cap on the steps (0: the epochs decide). */
  steps: number;
  train: number;
  validation: number;
  logEvery: number;
  evalFirst: number;
  evalEvery: number;
  seed: number;
}

export type ScheduleName = 'full' | 'short';

/**
 * The full experiment (the page's defaults before the short schedule existed): 2 epochs of the
 * 8,000 training digits in batches of 32 (500 steps), learning rate 0.1, validated on the 2,000
 * held-out digits at step 10, every 50 steps and at the end.
 */
export const FULL_SCHEDULE: Readonly<Schedule> = Object.freeze({
  lr: 0.1,
  momentum: 0,
  batch: 32,
  epochs: 2,
  steps: 0,
  train: Infinity,
  validation: Infinity,
  logEvery: 10,
  evalFirst: 10,
  evalEvery: 50,
  seed: 1,
});

/**
 * The short schedule for CPU adapters: the full experiment's first 50 steps (same initial weights,
 * same mini-batches, same learning rate), validated on 500 of the held-out digits at steps 10, 20,
 * 40 and 50. About 2 minutes on SwiftShader, with batch norm far ahead at equal steps (the
 * README's "The training demo" has the numbers).
 */
export const SHORT_SCHEDULE: Readonly<Schedule> = Object.freeze({
  ...FULL_SCHEDULE,
  steps: 50,
  validation: 500,
  logEvery: 5,
  evalEvery: 20,
});

export const SCHEDULES: Readonly<Record<ScheduleName, Readonly<Schedule>>> = Object.freeze({ full: FULL_SCHEDULE, short: SHORT_SCHEDULE });

/** The URL parameters that override one setting of the schedule. */
export const SCHEDULE_PARAMS = ['lr', 'momentum', 'batch', 'epochs', 'steps', 'train', 'validation', 'logEvery', 'evalFirst', 'evalEvery', 'seed'] as const satisfies readonly (keyof Schedule)[];

/** What an adapter says about itself: GPUAdapterInfo, with `type` where the browser has it. */
export type AdapterDescription = Partial<Pick<GPUAdapterInfo, 'vendor' | 'architecture' | 'device' | 'description' | 'isFallbackAdapter'>> & {
  type?: string;
};

/** Software rasterizers that run WebGPU on the CPU, by the names they give in adapterInfo. */
const CPU_ADAPTER_NAMES = /swiftshader|llvmpipe|lavapipe|softpipe|\bwarp\b|microsoft basic render/i;

/**
 * Whether the adapter runs on the CPU: `type` 'cpu' where the browser reports a type, otherwise a
 * fallback adapter, or a software renderer by name (chromium's SwiftShader reports vendor
 * 'google', architecture 'swiftshader', isFallbackAdapter true, and no type).
 */
export function isCpuAdapter(info: AdapterDescription | undefined | null): boolean {
  if (!info) return false;
  if (typeof info.type === 'string' && info.type !== '' && info.type !== 'unknown') return info.type === 'cpu';
  if (info.isFallbackAdapter === true) return true;
  return CPU_ADAPTER_NAMES.test([info.vendor, info.architecture, info.device, info.description].filter(Boolean).join(' '));
}

/** The schedule the page runs, why, and the settings after the URL's overrides. */
export interface ScheduleChoice {
  name: ScheduleName;
  /** 'url': ?schedule= asked for it; 'adapter': the default for this adapter. */
  chosenBy: 'url' | 'adapter';
  cpuAdapter: boolean;
  /** The URL parameters that overrode settings of the schedule. */
  overrides: string[];
  settings: Schedule;
}

/**
 * Picks the schedule: `schedule=full|short` in the URL, else short on a CPU adapter and full on
 * a GPU; then applies the URL's numeric overrides.
 */
export function chooseSchedule(query: URLSearchParams, adapter: AdapterDescription | undefined | null): ScheduleChoice {
  const cpuAdapter = isCpuAdapter(adapter);
  const asked = query.get('schedule');
  const name: ScheduleName = asked === 'full' || asked === 'short' ? asked : cpuAdapter ? 'short' : 'full';
  const settings: Schedule = { ...SCHEDULES[name] };
  const overrides: string[] = [];
  for (const key of SCHEDULE_PARAMS) {
    const value = query.get(key);
    if (value === null || value.trim() === '' || !Number.isFinite(Number(value))) continue;
    settings[key] = Number(value);
    overrides.push(key);
  }
  return { name, chosenBy: asked === name ? 'url' : 'adapter', cpuAdapter, overrides, settings };
}

/**
 * How a schedule reads: "150 steps of 16 digits at learning rate 0.3, validated on 1,000
 * held-out digits", or "2 epochs of 8,000 digits in batches of 32 (500 steps) at ...".
 */
export function describeSchedule(s: Schedule, trainSamples: number, validationSamples: number): string {
  const perEpoch = Math.floor(trainSamples / s.batch);
  const planned = perEpoch * s.epochs;
  const what =
    s.steps > 0 && s.steps < planned
      ? `${s.steps} steps of ${s.batch} digits`
      : `${s.epochs} epoch${s.epochs === 1 ? '' : 's'} of ${trainSamples.toLocaleString('en-US')} digits in batches of ${s.batch} (${planned} steps)`;
  return (
    `${what} at learning rate ${s.lr}` +
    `${s.momentum > 0 ? ` with momentum ${s.momentum}` : ''}, validated on ${validationSamples.toLocaleString('en-US')} held-out digits`
  );
}

/**
 * Points of validation accuracy by which batch norm must end ahead of the run without it, at equal
 * steps: at least 2 on the short schedule (SwiftShader gives 17.0: 91.2 % against 74.2 %); on the
 * full one, ahead at all (97.4 % against 95.6 % there: the run without batch norm catches up over
 * 500 steps).
 */
export const REQUIRED_MARGIN: Readonly<Record<ScheduleName, number>> = Object.freeze({ short: 2, full: 0 });

/** The notes' result checked on a finished session: is batch norm ahead at the end? */
export interface ResultCheck {
  /** Batch norm's final validation accuracy minus the other run's, in points (a diverged run counts as 0 %). */
  margin: number;
  /** The step both runs ended at. */
  step: number;
  /** False when URL parameters changed the schedule: then nothing is required. */
  checked: boolean;
  /** The margin required (0: ahead at all). */
  required: number;
  ok: boolean;
  text: string;
}

/** Checks a finished session's result against {@link REQUIRED_MARGIN}. */
export function checkResult(
  choice: { name: ScheduleName; overrides: readonly string[] },
  runs: readonly { batchNorm: boolean; valAccuracy: number; diverged: boolean }[],
  step: number,
): ResultCheck {
  const accuracy = (r: (typeof runs)[number] | undefined) => (!r || r.diverged || !Number.isFinite(r.valAccuracy) ? 0 : r.valAccuracy);
  // Accuracies are counts over the validation digits: round away float noise (0.937 - 0.868).
  const margin = Math.round(1e6 * 100 * (accuracy(runs.find((r) => r.batchNorm)) - accuracy(runs.find((r) => !r.batchNorm)))) / 1e6;
  const required = REQUIRED_MARGIN[choice.name];
  const checked = choice.overrides.length === 0;
  const ok = !checked || (margin > 0 && margin >= required);
  const verdict = `batch norm ${margin >= 0 ? 'ahead' : 'behind'} by ${Math.abs(margin).toFixed(1)} points of validation accuracy at step ${step}`;
  const need = required > 0 ? `at least ${required} points ahead` : 'ahead';
  const text = checked
    ? `${verdict}: ${ok ? 'as the notes say' : 'NOT as the notes say'} (the ${choice.name} schedule requires ${need})`
    : `${verdict} (not checked: URL parameters changed ${choice.overrides.join(', ')})`;
  return { margin, step, checked, required, ok, text };
}
