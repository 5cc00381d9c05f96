/**
 * Argument checks shared by the layer's entry points. Each failure throws an error that names
 * the argument, the expected value and the actual one.
 */
import { Usage, bufferOf, isBufferRange, type TensorBuffer } from './gpu.js';

/** `name` with its indefinite article: 'an Array', 'a Float32Array', 'a Uint16Array'. */
function withArticle(name: string): string {
  return `${/^[AEIO]/i.test(name) ? 'an' : 'a'} ${name}`;
}

/**
 * A value as an error message's "got …" shows it, type included, so that `'16'` and `16` read
 * differently: "the string '16'", "16", "undefined", "an Array of 2", "a Float32Array of 8",
 * "an ArrayBuffer of 32 bytes", "an object", "a GPUBuffer" (other objects by constructor name).
 */
export function describeValue(value: unknown): string {
  switch (typeof value) {
    case 'string':
      return `the string '${value.length > 40 ? `${value.slice(0, 40)}…` : value}'`;
    case 'bigint':
      return `the bigint ${value}n`;
    case 'symbol':
      return value.toString();
    case 'function':
      return value.name ? `the function ${value.name}` : 'a function';
    case 'object':
      break;
    default: // number, boolean, undefined
      return String(value);
  }
  if (value === null) return 'null';
  if (Array.isArray(value)) return `an Array of ${value.length}`;
  if (value instanceof ArrayBuffer) return `an ArrayBuffer of ${value.byteLength} bytes`;
  const name = (Object.getPrototypeOf(value) as { constructor?: { name?: string } } | null)?.constructor?.name;
  if (ArrayBuffer.isView(value) && 'length' in value) return `${withArticle(name ?? 'typed array')} of ${(value as unknown as ArrayLike<unknown>).length}`;
  return !name || name === 'Object' ? 'an object' : withArticle(name);
}

/** Whether `value` holds data on the CPU: an array, a typed array, a DataView or an ArrayBuffer. */
function isHostData(value: unknown): boolean {
  return Array.isArray(value) || ArrayBuffer.isView(value) || value instanceof ArrayBuffer;
}

/** GPUBufferUsage's flags by name, for messages (as layer.ts's usage check names them). */
const USAGE_NAMES: readonly [string, number][] = [
  ['MAP_READ', 0x1],
  ['MAP_WRITE', 0x2],
  ['COPY_SRC', 0x4],
  ['COPY_DST', 0x8],
  ['INDEX', 0x10],
  ['VERTEX', 0x20],
  ['UNIFORM', 0x40],
  ['STORAGE', 0x80],
  ['INDIRECT', 0x100],
  ['QUERY_RESOLVE', 0x200],
];

/** A usage value as its flags: '0x84 (COPY_SRC | STORAGE)'. */
export function usageText(usage: number): string {
  const names = USAGE_NAMES.filter(([, bit]) => usage & bit).map(([name]) => name);
  return `0x${usage.toString(16)} (${names.join(' | ') || 'none'})`;
}

/**
 * Whether `value` is a plain object (`{ … }`, or Object.create(null)): not an array, a Map or
 * another class's instance, whose entries Object.entries would not see.
 */
export function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value) as object | null;
  // Object.prototype of any realm: its own prototype is null.
  return proto === null || Object.getPrototypeOf(proto) === null;
}

/** float32's smallest normal number, 2^-126: GPUs flush smaller (subnormal) values to 0. */
export const FLOAT32_MIN_NORMAL = 2 ** -126;

/** float32's largest finite number. */
export const FLOAT32_MAX = 3.4028234663852886e38;

/**
 * An eps the GPU kernels add in float32: a finite number > 0 whose float32 value is a normal
 * number. GPUs flush subnormal float32 values (below 2^-126) to 0, so such an eps would leave a
 * constant channel or row at 0 / sqrt(0) = NaN; beyond float32's range it would be Infinity.
 */
export function checkGpuEps(argName: string, eps: unknown): asserts eps is number {
  if (typeof eps !== 'number' || !Number.isFinite(eps) || eps <= 0) throw new RangeError(`${argName} must be a finite number > 0; got ${describeValue(eps)}`);
  const f = Math.fround(eps);
  if (f < FLOAT32_MIN_NORMAL) {
    throw new RangeError(
      `${argName} must be at least 2^-126 (${FLOAT32_MIN_NORMAL}), float32's smallest normal number: the GPU computes in float32 and flushes a smaller (subnormal) eps to 0, which gives NaN for a constant channel or row; got ${eps}`,
    );
  }
  if (!Number.isFinite(f)) {
    throw new RangeError(`${argName} must be at most ${FLOAT32_MAX}, float32's largest number: the GPU computes in float32, where ${eps} is not a float32 (it would be Infinity); got ${eps}`);
  }
}

/** The keys an object argument may have: their names, what one is ('an option of BatchNorm'), and advice on some others. */
export interface KnownKeys {
  names: readonly string[];
  what: string;
  hints?: Readonly<Record<string, string>>;
}

/**
 * Throws unless every key of the object `value` (`argName`) is one of `keys.names`, since an
 * unknown key (a misspelling, another framework's name) would otherwise be silently ignored.
 * Keys whose value is undefined say nothing and pass. The error names the key and the accepted
 * ones, with its hint if `keys.hints` has one, else the accepted name it differs from only in
 * case and underscores (`track_running_stats` for `trackRunningStats`).
 */
export function checkKnownKeys(argName: string, value: object, keys: KnownKeys): void {
  const squash = (name: string) => name.replace(/_/g, '').toLowerCase();
  for (const [key, v] of Object.entries(value)) {
    if (v === undefined || keys.names.includes(key)) continue;
    const similar = keys.names.find((name) => squash(name) === squash(key));
    const hint = keys.hints && Object.hasOwn(keys.hints, key) ? keys.hints[key] : similar ? `did you mean ${similar}?` : '';
    throw new TypeError(`${argName}.${key} is not ${keys.what}${hint ? ` (${hint})` : ''}; expected one of ${keys.names.join(', ')}`);
  }
}

/**
 * Advice on names a pass's arguments object does not take: a layer's options (given to its
 * constructor), and the array API's words for the tensors.
 */
export function passArgHints(layerOptions: readonly string[]): Readonly<Record<string, string>> {
  return {
    ...Object.fromEntries(layerOptions.map((n) => [n, `${n} is an option of the layer, given to its constructor, not an argument of a pass`])),
    train: 'did you mean training?',
    input: 'the input tensor is x',
    output: 'the output tensor is y (dx in a backward pass)',
  };
}

/**
 * Throws if the caller gave a buffer for a parameter the layer holds fixed (`fixed[name]` says
 * why, null where it is learnable): the kernels and getState would read the buffer's contents,
 * not the fixed value. `fixedBy` names what keeps the fixed value ('layer', 'function').
 */
export function checkFixedParams(
  prefix: string,
  given: Readonly<Record<string, TensorBuffer | undefined>>,
  fixed: Readonly<Record<string, string | null>>,
  fixedBy = 'layer',
): void {
  for (const [name, why] of Object.entries(fixed)) {
    if (why && given[name] !== undefined) {
      throw new TypeError(`${prefix}.${name} cannot be given: ${why}, and the ${fixedBy} keeps that value itself; leave it out, or make it learnable`);
    }
  }
}

/**
 * The error of a method that got arguments beyond its `names` (other than trailing undefined),
 * or null: a second options object, say, would otherwise be ignored without a word.
 */
export function arityError(method: string, args: ArrayLike<unknown>, names: readonly string[]): TypeError | null {
  for (let i = args.length - 1; i >= names.length; i--) {
    if (args[i] === undefined) continue;
    const takes = names.length === 0 ? 'no arguments' : `${names.length} argument${names.length === 1 ? '' : 's'} (${names.join(', ')})`;
    return new TypeError(`${method}() takes ${takes}; got ${describeValue(args[i])} as argument ${i + 1}`);
  }
  return null;
}

/** Throws {@link arityError}'s error, if any. */
export function checkArity(method: string, args: ArrayLike<unknown>, names: readonly string[]): void {
  const error = arityError(method, args, names);
  if (error) throw error;
}

/** The keys of a range of a GPUBuffer. */
const RANGE_KEYS: KnownKeys = { names: ['buffer', 'offset', 'size'], what: 'a key of a range { buffer, offset, size }' };

/**
 * A caller's tensor argument: a GPUBuffer, or a range `{ buffer, offset, size }` of one, of at
 * least `bytes` bytes, with STORAGE usage. A range's offset must be a multiple of the device's
 * minStorageBufferOffsetAlignment (256 where no device is given, WebGPU's default limit), its
 * size a multiple of 4, and it has no other key. Where the global GPUBuffer class exists, the
 * buffer must be one of its instances.
 */
export function checkTensorBuffer(argName: string, arg: TensorBuffer, bytes: number, what: string, device?: GPUDevice): void {
  // A Float32Array has a .buffer too (an ArrayBuffer): name the array, not its .buffer.
  if (isHostData(arg)) {
    throw new TypeError(
      `${argName} must be a GPUBuffer or a range { buffer, offset, size } of one; got ${describeValue(arg)}: ` +
        'write the data into a GPUBuffer with STORAGE usage (device.queue.writeBuffer), or pass arrays to the array API (forward, transform)',
    );
  }
  const range = arg && isBufferRange(arg) ? arg : null;
  // A misspelt key (ofset, length) would otherwise be ignored and the range taken from 0.
  if (range) checkKnownKeys(argName, range, RANGE_KEYS);
  const buffer = bufferOf(arg);
  const name = range ? `${argName}.buffer` : argName;
  // Where WebGPU's classes are globals (a browser; Node once getDevice has run), only a real
  // GPUBuffer passes: an object that merely has size and usage would fail later inside WebGPU.
  const GPUBufferClass = (globalThis as { GPUBuffer?: unknown }).GPUBuffer;
  if (
    !buffer ||
    typeof buffer !== 'object' ||
    typeof buffer.size !== 'number' ||
    typeof buffer.usage !== 'number' ||
    (typeof GPUBufferClass === 'function' && !(buffer instanceof GPUBufferClass))
  ) {
    throw new TypeError(`${name} must be a GPUBuffer (or ${argName} a range { buffer, offset, size } of one); got ${describeValue(buffer)}`);
  }
  let available = buffer.size;
  if (range) {
    const offset = range.offset ?? 0;
    const align = device?.limits.minStorageBufferOffsetAlignment ?? 256;
    if (!Number.isSafeInteger(offset) || offset < 0 || offset % align !== 0) {
      throw new RangeError(`${argName}.offset must be a multiple of ${align} (the device's minStorageBufferOffsetAlignment); got ${describeValue(offset)}`);
    }
    const size = range.size ?? buffer.size - offset;
    if (!Number.isSafeInteger(size) || size < 0 || offset + size > buffer.size) {
      throw new RangeError(`${argName}: offset ${offset} + size ${describeValue(size)} exceeds its buffer's ${buffer.size} bytes`);
    }
    if (size % 4 !== 0) throw new RangeError(`${argName}.size must be a multiple of 4 (WebGPU binds storage in 4-byte words); got ${size}`);
    available = size;
  }
  if (available < bytes) {
    throw new RangeError(`${argName} must hold at least ${bytes} bytes (${what}); got ${available}`);
  }
  if ((buffer.usage & Usage.STORAGE) === 0) {
    throw new TypeError(`${name} must have GPUBufferUsage.STORAGE in its usage; got usage ${usageText(buffer.usage)}`);
  }
}

/**
 * A tensor must fit one storage binding of this device, and its element indices must fit the
 * kernels' u32 arithmetic.
 */
export function checkTensorFits(device: GPUDevice, argName: string, shape: readonly number[], elements: number, bytes: number): void {
  // A tensor is bound whole, and the array API makes a buffer of its size: both limits apply.
  const limits = device.limits;
  const [name, limit] =
    limits.maxBufferSize < limits.maxStorageBufferBindingSize ? ['maxBufferSize', limits.maxBufferSize] : ['maxStorageBufferBindingSize', limits.maxStorageBufferBindingSize];
  if (bytes > limit) {
    throw new RangeError(
      `${argName} [${shape.join(', ')}] needs ${bytes} bytes per tensor, more than this device's ${name} of ${limit} bytes; ` +
        'split the batch, or request a larger limit from the adapter (getDevice requests the adapter maximum by default)',
    );
  }
  if (elements >= 2 ** 31) {
    throw new RangeError(`${argName} [${shape.join(', ')}] has ${elements} elements; at most 2^31 - 1 are supported`);
  }
}

/** A per-channel state array: array-like of `length` numbers. */
export function checkStateArray(argName: string, value: unknown, length: number, sizeName = 'numFeatures'): asserts value is ArrayLike<number> {
  if (value === null || typeof value !== 'object' || typeof (value as ArrayLike<number>).length !== 'number') {
    throw new TypeError(`${argName} must be an array of ${length} numbers; got ${describeValue(value)}`);
  }
  const actual = (value as ArrayLike<number>).length;
  if (actual !== length) throw new RangeError(`${argName} must have ${length} elements (${sizeName}); got ${actual}`);
}

/** What {@link checkStateValues} requires of each value, and why a non-finite one is refused. */
export interface StateValueRule {
  /** Refuse NaN and ±Inf (after rounding to float32); `nonFiniteHint` ends the message. */
  finite: boolean;
  nonFiniteHint?: string;
  /** Refuse values below 0 (a variance), finite or not. */
  nonNegative?: boolean;
}

/**
 * The values of a per-channel state array (`argName`, already of the right length) as float32,
 * after checking each: a number, non-negative where `rule` says so, and finite in float32 where it
 * says so (a float64 beyond float32's range would become ±Inf on upload).
 */
export function checkStateValues(argName: string, values: ArrayLike<number>, rule: StateValueRule): Float32Array<ArrayBuffer> {
  const data = new Float32Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const v = values[i] as unknown;
    if (typeof v !== 'number') throw new TypeError(`${argName}[${i}] must be a number; got ${describeValue(v)}`);
    if (rule.nonNegative && v < 0) throw new RangeError(`${argName}[${i}] must be >= 0 (a variance); got ${v}`);
    data[i] = v;
    if (rule.finite && !Number.isFinite(data[i])) {
      const overflow = Number.isFinite(v) ? `, beyond float32's range (±${3.4028234663852886e38})` : '';
      throw new RangeError(`${argName}[${i}] must be finite; got ${v}${overflow}${rule.nonFiniteHint ? ` (${rule.nonFiniteHint})` : ''}`);
    }
  }
  return data;
}

/** Throws unless `value` is a boolean (not 'false', not 0 or 1); undefined gives `fallback` where one is given. */
export function checkBoolean(argName: string, value: unknown, fallback?: boolean): boolean {
  if (value === undefined && fallback !== undefined) return fallback;
  if (typeof value !== 'boolean') throw new TypeError(`${argName} must be a boolean; got ${describeValue(value)}`);
  return value;
}

/** A label option: a string; undefined gives `fallback`. */
export function checkLabel(argName: string, value: unknown, fallback: string): string {
  if (value === undefined) return fallback;
  if (typeof value !== 'string') throw new TypeError(`${argName} must be a string; got ${describeValue(value)}`);
  return value;
}

/** Throws unless `device` is a GPUDevice (has createBuffer and createCommandEncoder). */
export function checkDevice(argName: string, device: unknown): asserts device is GPUDevice {
  const d = device as Partial<GPUDevice> | null;
  if (!d || typeof d !== 'object' || typeof d.createBuffer !== 'function' || typeof d.createCommandEncoder !== 'function') {
    throw new TypeError(`${argName} must be a GPUDevice; got ${describeValue(device)}`);
  }
}

/** Throws unless `encoder` is a GPUCommandEncoder (has beginComputePass and finish), such as device.createCommandEncoder() returns. */
export function checkEncoder(argName: string, encoder: unknown): asserts encoder is GPUCommandEncoder {
  const e = encoder as Partial<GPUCommandEncoder> | null;
  if (!e || typeof e !== 'object' || typeof e.beginComputePass !== 'function' || typeof e.finish !== 'function') {
    throw new TypeError(`${argName} must be a GPUCommandEncoder (device.createCommandEncoder()); got ${describeValue(encoder)}`);
  }
}

/**
 * Throws unless `args` (`argName`) is an object, not an array, whose every key is one of
 * `keys.names` ({@link checkKnownKeys}); `expected` describes it in the message ('an object { x, y, shape }').
 */
export function checkObjectArg(argName: string, args: unknown, expected: string, keys?: KnownKeys): asserts args is Record<string, unknown> {
  if (args === null || typeof args !== 'object' || Array.isArray(args)) throw new TypeError(`${argName} must be ${expected}; got ${describeValue(args)}`);
  if (keys) checkKnownKeys(argName, args, keys);
}

/** Advice on names a call's options object does not take. */
const CALL_OPTION_HINTS: Readonly<Record<string, string>> = {
  train: 'did you mean training?',
  trainingMode: 'did you mean training?',
  training_mode: "ONNX's training_mode is training here",
  mode: "training: true or false (PyTorch's train() / eval())",
  eval: 'training: false',
  inference: 'training: false',
};

/**
 * The per-call options of a layer's array API, `{ training }` (`argName`, usually 'options'),
 * checked: an object with no other key (a layer option such as momentum named as one, since
 * it would otherwise be silently ignored), `training` a boolean. Returns the training flag.
 * With `trainingDefault`, the options and training may be left out (the family's forward);
 * without, both are required (BatchNorm's forward). `what` names the call in the message
 * ('an option of BatchNorm.forward'); `layerOptions` are the layer's constructor options,
 * which get a hint pointing there.
 */
export function checkCallOptions(
  argName: string,
  options: unknown,
  spec: { what: string; layerOptions?: readonly string[]; trainingDefault?: boolean },
): boolean {
  const optional = spec.trainingDefault !== undefined;
  if (options === undefined && optional) return spec.trainingDefault!;
  const hints: Record<string, string> = { ...CALL_OPTION_HINTS };
  for (const name of spec.layerOptions ?? []) if (name !== 'training') hints[name] = `${name} is an option of the layer, given to its constructor; a call takes only training`;
  checkObjectArg(argName, options, `an object { training${optional ? '?' : ''} }`, { names: ['training'], what: spec.what, hints });
  const training = options.training;
  if (training === undefined && optional) return spec.trainingDefault!;
  if (typeof training !== 'boolean') throw new TypeError(`${argName}.training must be a boolean; got ${describeValue(training)}`);
  return training;
}

/** A tensor argument and the bytes a pass uses of it, from its offset. */
export type UsedRange = readonly [TensorBuffer | undefined, number];

/** [start, end) bytes of the first `bytes` of a tensor argument in its GPUBuffer. */
function extentOf(arg: TensorBuffer, bytes: number): [number, number] {
  const start = isBufferRange(arg) ? (arg.offset ?? 0) : 0;
  return [start, start + bytes];
}

/**
 * Throws unless the bytes a pass writes through `written` ([name, buffer, bytes used]) overlap
 * none of the bytes used of each of `others` (by name; undefined ones are skipped): the pass
 * would overwrite what it reads or another of its results. Ranges of one GPUBuffer that do not
 * overlap pass (see checkSeparateOutput for what WebGPU forbids within one dispatch).
 */
export function checkNoOverlap(written: readonly [string, TensorBuffer, number], others: Readonly<Record<string, UsedRange>>): void {
  const [name, arg, bytes] = written;
  const [start, end] = extentOf(arg, bytes);
  for (const [otherName, [other, otherBytes]] of Object.entries(others)) {
    if (other === undefined || bufferOf(other) !== bufferOf(arg)) continue;
    const [s, e] = extentOf(other, otherBytes);
    if (start < e && s < end) {
      throw new TypeError(
        `${name} must not overlap ${otherName}, which the same pass reads or writes; got bytes [${start}, ${end}) of the GPUBuffer that holds ${otherName} at bytes [${s}, ${e})`,
      );
    }
  }
}

/**
 * Throws unless no two of `entries` (by name; undefined ones are skipped) overlap: each state
 * buffer needs bytes of its own, since setState and the passes write each separately (γ and β
 * in one range would hold whichever was written last). Ranges of one GPUBuffer side by side pass.
 */
export function checkDisjoint(entries: Readonly<Record<string, UsedRange>>): void {
  const list = Object.entries(entries).filter(([, [arg]]) => arg !== undefined) as [string, readonly [TensorBuffer, number]][];
  for (let i = 0; i < list.length; i++) {
    const [name, [arg, bytes]] = list[i];
    const [start, end] = extentOf(arg, bytes);
    for (let j = i + 1; j < list.length; j++) {
      const [otherName, [other, otherBytes]] = list[j];
      if (bufferOf(other) !== bufferOf(arg)) continue;
      const [s, e] = extentOf(other, otherBytes);
      if (start < e && s < end) {
        throw new TypeError(
          `${name} must not overlap ${otherName}: each state buffer needs bytes of its own (setState and the passes write them separately); got bytes [${start}, ${end}) of the GPUBuffer that holds ${otherName} at bytes [${s}, ${e})`,
        );
      }
    }
  }
}

/*
 * Checks of the CPU reference functions' arguments (src/reference), which take plain arrays and
 * a ChannelView rather than buffers.
 */

/** Throws unless `value` is an object (not null, not an array); `expected` says which ('an object { gamma, beta, eps }'). */
export function checkObject(argName: string, value: unknown, expected: string): asserts value is Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new TypeError(`${argName} must be ${expected}; got ${describeValue(value)}`);
}

/**
 * Throws unless every key of a reference function's parameters object `value` (`argName`) is one
 * of `own` (what `fn` reads) or `carried` (fields of the library's own results and state, such
 * as referenceStats' count, which may come along in a spread and are not read). Keys whose value
 * is undefined pass. The error names the key, `fn`'s parameters, and `hints[key]` where given.
 */
export function checkParamKeys(
  argName: string,
  value: Record<string, unknown>,
  fn: string,
  own: readonly string[],
  carried: readonly string[] = [],
  hints: Readonly<Record<string, string>> = {},
): void {
  const squash = (name: string) => name.replace(/_/g, '').toLowerCase();
  for (const [key, v] of Object.entries(value)) {
    if (v === undefined || own.includes(key) || carried.includes(key)) continue;
    const similar = own.find((name) => squash(name) === squash(key));
    const hint = Object.hasOwn(hints, key) ? hints[key] : similar ? `did you mean ${similar}?` : '';
    const also = carried.length > 0 ? ` (${carried.join(', ')} may come along unread)` : '';
    throw new TypeError(`${argName}.${key} is not a parameter of ${fn}${hint ? ` (${hint})` : ''}; expected ${own.join(', ')}${also}`);
  }
}

/**
 * Throws unless `data` is an array or typed array (of `length` elements where given) whose
 * entries are numbers. A typed array's are by construction; an Array's are checked one by one.
 */
export function checkNumbers(argName: string, data: unknown, length?: number): asserts data is ArrayLike<number> {
  const a = data as ArrayLike<unknown> | null;
  if (a === null || typeof a !== 'object' || !Number.isSafeInteger(a.length) || a.length < 0 || data instanceof ArrayBuffer || data instanceof DataView) {
    throw new TypeError(`${argName} must be an array of ${length ?? ''}${length === undefined ? '' : ' '}numbers; got ${describeValue(data)}`);
  }
  if (length !== undefined && a.length !== length) throw new RangeError(`${argName} must have ${length} elements; got ${a.length}`);
  if (Array.isArray(a)) {
    // An index loop: forEach would skip the holes of a sparse array ([1, , 3]).
    for (let i = 0; i < a.length; i++) {
      const v = a[i];
      if (typeof v !== 'number') throw new TypeError(`${argName}[${i}] must be a number; got ${describeValue(v)}`);
    }
  }
}

/** An eps the CPU reference takes as given, 0 included: a finite number ≥ 0. */
export function checkNonNegativeEps(argName: string, eps: unknown): asserts eps is number {
  if (typeof eps !== 'number' || !Number.isFinite(eps) || eps < 0) throw new RangeError(`${argName} must be a finite number >= 0; got ${describeValue(eps)}`);
}

/** Throws unless `value` is one of the strings `allowed`. */
export function checkOneOf<T extends string>(argName: string, value: unknown, allowed: readonly T[]): asserts value is T {
  if (typeof value !== 'string' || !allowed.includes(value as T)) {
    const names = allowed.map((a) => `'${a}'`);
    const list = names.length > 1 ? `${names.slice(0, -1).join(', ')} or ${names[names.length - 1]}` : names[0];
    throw new TypeError(`${argName} must be ${list}; got ${describeValue(value)}`);
  }
}

/** A momentum in [0, 1], or null where `nullMeans` says what null means. */
export function checkMomentum(argName: string, momentum: unknown, nullMeans?: string): asserts momentum is number | null {
  if (momentum === null && nullMeans) return;
  if (typeof momentum !== 'number' || !(momentum >= 0 && momentum <= 1)) {
    throw new RangeError(`${argName} must be a number in [0, 1]${nullMeans ? ` or null (${nullMeans})` : ''}; got ${describeValue(momentum)}`);
  }
}

/** A count: a safe integer ≥ `min`. */
export function checkInteger(argName: string, value: unknown, min: number, why = ''): asserts value is number {
  if (!Number.isSafeInteger(value) || (value as number) < min) {
    throw new RangeError(`${argName} must be an integer >= ${min}${why ? ` (${why})` : ''}; got ${describeValue(value)}`);
  }
}
