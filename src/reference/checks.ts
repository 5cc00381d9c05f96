/**
 * Argument checks of the CPU reference functions: each failure names the argument, the expected
 * value and what it got, instead of a TypeError from deep inside a loop or a silent NaN.
 */
import { describe } from '../runtime/validate.js';
import type { ChannelView } from '../tensor/layout.js';

/** Throws unless `value` is an object (not null, not an array); `expected` says which ('an object { gamma, beta, eps }'). */
export function checkObject(argName: string, value: unknown, expected: string): asserts value is Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new TypeError(`${argName} must be ${expected}; got ${describe(value)}`);
}

/**
 * Throws unless `data` is an array or typed array (of `length` elements where given) whose
 * entries are numbers. A typed array's are by construction; an Array's are checked one by one.
 */
export function checkNumbers(argName: string, data: unknown, length?: number): asserts data is ArrayLike<number> {
  const a = data as ArrayLike<unknown> | null;
  if (a === null || typeof a !== 'object' || !Number.isSafeInteger(a.length) || a.length < 0 || data instanceof ArrayBuffer || data instanceof DataView) {
    throw new TypeError(`${argName} must be an array of ${length ?? ''}${length === undefined ? '' : ' '}numbers; got ${describe(data)}`);
  }
  if (length !== undefined && a.length !== length) throw new RangeError(`${argName} must have ${length} elements; got ${a.length}`);
  if (Array.isArray(a)) {
    a.forEach((v, i) => {
      if (typeof v !== 'number') throw new TypeError(`${argName}[${i}] must be a number; got ${describe(v)}`);
    });
  }
}

/** Throws unless `view` is a ChannelView { outer, channels, inner } of positive integers. */
export function checkView(view: unknown, argName = 'view'): asserts view is ChannelView {
  const v = view as Partial<ChannelView> | null;
  const ok = v !== null && typeof v === 'object' && [v.outer, v.channels, v.inner].every((d) => Number.isSafeInteger(d) && (d as number) >= 1);
  if (!ok) {
    const got = v !== null && typeof v === 'object' ? `{ outer: ${describe(v.outer)}, channels: ${describe(v.channels)}, inner: ${describe(v.inner)} }` : describe(view);
    throw new TypeError(`${argName} must be a ChannelView { outer, channels, inner } of positive integers (see channelView(layout, shape)); got ${got}`);
  }
}

/** The reference takes eps as given, 0 included: a finite number ≥ 0. */
export function checkEps(argName: string, eps: unknown): asserts eps is number {
  if (typeof eps !== 'number' || !Number.isFinite(eps) || eps < 0) throw new RangeError(`${argName} must be a finite number >= 0; got ${describe(eps)}`);
}

/** Throws unless `value` is one of the strings `allowed`. */
export function checkOneOf<T extends string>(argName: string, value: unknown, allowed: readonly T[]): asserts value is T {
  if (typeof value !== 'string' || !allowed.includes(value as T)) {
    const names = allowed.map((a) => `'${a}'`);
    const list = names.length > 1 ? `${names.slice(0, -1).join(', ')} or ${names[names.length - 1]}` : names[0];
    throw new TypeError(`${argName} must be ${list}; got ${describe(value)}`);
  }
}

/** A momentum in [0, 1], or null where `nullMeans` says what null means. */
export function checkMomentum(argName: string, momentum: unknown, nullMeans?: string): asserts momentum is number | null {
  if (momentum === null && nullMeans) return;
  if (typeof momentum !== 'number' || !(momentum >= 0 && momentum <= 1)) {
    throw new RangeError(`${argName} must be a number in [0, 1]${nullMeans ? ` or null (${nullMeans})` : ''}; got ${describe(momentum)}`);
  }
}

/** A count: a safe integer ≥ `min`. */
export function checkCount(argName: string, value: unknown, min: number, why = ''): asserts value is number {
  if (!Number.isSafeInteger(value) || (value as number) < min) {
    throw new RangeError(`${argName} must be an integer >= ${min}${why ? ` (${why})` : ''}; got ${describe(value)}`);
  }
}

/** Throws unless `value` is a boolean. */
export function checkFlag(argName: string, value: unknown): asserts value is boolean {
  if (typeof value !== 'boolean') throw new TypeError(`${argName} must be a boolean; got ${describe(value)}`);
}
