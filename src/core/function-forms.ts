/**
 * What the function forms of every family share: their part of a device's context (a holder for
 * their plans, scratch and small buffers, a device guard, and one record table per family, which
 * each family registers under its own name), the keys of their args objects, and
 * {@link releaseFunctionCaches}.
 */
import { deviceContext, releaseDeviceContext } from './context.js';
import { DeviceGuard } from './guard.js';
import { bufferOf, isBufferRange, type TensorBuffer } from './gpu.js';
import { checkArity, checkDevice, checkEncoder, checkObjectArg, describeValue, type KnownKeys } from './validate.js';
import { channelView, type Layout } from './layout.js';

/** The label of the GPU objects the function forms create. */
export const FUNCTION_LABEL = 'webgpu-batchnorm function';

/** The function forms' part of a device's context. */
export interface FunctionsState {
  /** Holds their plans, scratch and buffers until releaseFunctionCaches. */
  readonly holder: object;
  readonly guard: DeviceGuard;
  /** Each family's records between calls (e.g. per `saved` range), by the family's name. */
  readonly records: Map<string, unknown>;
}

const FUNCTIONS = 'function forms';

/** The function forms' state on `device`, created on first use. */
export function functionsState(device: GPUDevice): FunctionsState {
  const slots = deviceContext(device).slots;
  let state = slots.get(FUNCTIONS) as FunctionsState | undefined;
  if (!state) {
    state = { holder: {}, guard: new DeviceGuard(device, FUNCTION_LABEL, 'your buffers'), records: new Map() };
    slots.set(FUNCTIONS, state);
  }
  return state;
}

/** The records `family` keeps in `state`, made by `make` on first use. */
export function familyRecords<T>(state: FunctionsState, family: string, make: () => T): T {
  let records = state.records.get(family) as T | undefined;
  if (records === undefined) state.records.set(family, (records = make()));
  return records;
}

/** A buffer of the function forms, destroyed by releaseFunctionCaches. */
export function ownBuffer(device: GPUDevice, state: FunctionsState, buffer: GPUBuffer): GPUBuffer {
  deviceContext(device).holdings.hold(buffer, state.holder);
  return buffer;
}

/** The entry of `map` for a buffer range and channel count, made by `make` on first use. */
export function keyedByRange<T>(map: WeakMap<GPUBuffer, Map<string, T>>, range: TensorBuffer, C: number, make: () => T): T {
  const buffer = bufferOf(range);
  let perBuffer = map.get(buffer);
  if (!perBuffer) map.set(buffer, (perBuffer = new Map()));
  const key = `${isBufferRange(range) ? (range.offset ?? 0) : 0}:${C}`;
  let entry = perBuffer.get(key);
  if (!entry) perBuffer.set(key, (entry = make()));
  return entry;
}

/** The names the functions' options take (the layers' but buffers, state and label), and why they refuse those. */
export const FUNCTION_OPTION_HINTS: Readonly<Record<string, string>> = {
  buffers: 'the function forms take their buffers as args.buffers',
  state: 'the function forms take the state as args.state',
  label: `the function forms label their GPU objects '${FUNCTION_LABEL}'`,
};

/** The args object of a function (`fn`): its names, with advice for an option or buffer put beside them rather than in args.options or args.buffers. */
export function argsKeys(fn: string, names: string[], options: readonly string[], buffers: readonly string[]): KnownKeys {
  const hints: Record<string, string> = {
    train: 'did you mean training?',
    ...Object.fromEntries(options.map((n) => [n, `an option: args.options.${n}`])),
    ...Object.fromEntries(buffers.map((n) => [n, `a state buffer: args.buffers.${n}`])),
  };
  if (!names.includes('training')) hints.training = 'the backward pass follows the training flag of its forward pass';
  return { names, what: `an argument of ${fn}`, hints };
}

/** The device and encoder of a function call, and its args object with only the names of `keys`. */
export function checkCall(device: unknown, encoder: unknown, args: unknown, keys: KnownKeys): asserts args is Record<string, unknown> {
  checkDevice('device', device);
  checkEncoder('encoder', encoder);
  checkObjectArg('args', args, `an object { ${keys.names.join(', ')} }`, keys);
}

/**
 * Frees what the library keeps for `device` outside its layers: the functions' small buffers,
 * and the plans and scratch only they held; once no layer holds anything on the device, its
 * pipelines too (see releaseDeviceContext). A later call starts afresh; a backward pass then
 * needs its forward pass recorded again.
 */
export function releaseFunctionCaches(device: GPUDevice): void {
  checkArity('releaseFunctionCaches', arguments, ['device']);
  checkDevice('device', device);
  releaseDeviceContext(device);
}

/**
 * The channel count of `shape` in `layout`. The functions take it from the shape; a numFeatures
 * in their options (a preset's) must agree with it.
 */
export function shapeFeatures(options: object, layout: Layout, shape: readonly number[], what: string): number {
  const C = channelView(layout, shape, 'args.shape').channels;
  const given = (options as { numFeatures?: unknown }).numFeatures;
  if (given !== undefined && given !== C) {
    throw new RangeError(`args.options.numFeatures must match the ${C} ${what} of args.shape [${shape.join(', ')}] (or be left out: the shape gives it); got ${describeValue(given)}`);
  }
  return C;
}
