/**
 * How error messages show what they received: the value with its type, so that '16' and 16 read
 * differently; unknown keys named with the accepted ones; state values checked one by one.
 */
import { describe, expect, it } from 'vitest';
import { checkKnownKeys, checkStateValues, describeValue } from '../../src/core/validate.js';

describe('describeValue', () => {
  it.each([
    ['16', "the string '16'"],
    [16, '16'],
    [NaN, 'NaN'],
    [-Infinity, '-Infinity'],
    [undefined, 'undefined'],
    [null, 'null'],
    [true, 'true'],
    [3n, 'the bigint 3n'],
    [[1, 2], 'an Array of 2'],
    [new Float32Array(8), 'a Float32Array of 8'],
    [new Uint16Array(3), 'a Uint16Array of 3'],
    [new Int32Array(1), 'an Int32Array of 1'],
    [new ArrayBuffer(32), 'an ArrayBuffer of 32 bytes'],
    [{ a: 1 }, 'an object'],
    [Object.create(null), 'an object'],
    [new Map(), 'a Map'],
    [function layer() {}, 'the function layer'],
  ])('%s', (value, expected) => {
    expect(describeValue(value)).toBe(expected);
  });

  it('shortens a long string', () => {
    expect(describeValue('x'.repeat(100))).toBe(`the string '${'x'.repeat(40)}…'`);
  });
});

describe('checkKnownKeys', () => {
  const keys = { names: ['numFeatures', 'trackRunningStats'], what: 'an option of Thing', hints: { epsilon: 'eps here' } };

  it('names the unknown key and the accepted ones, with a hint or a near name', () => {
    expect(() => checkKnownKeys('options', { numFeatures: 1, trainable: true }, keys)).toThrow(
      'options.trainable is not an option of Thing; expected one of numFeatures, trackRunningStats',
    );
    expect(() => checkKnownKeys('options', { epsilon: 1 }, keys)).toThrow('options.epsilon is not an option of Thing (eps here); expected one of');
    expect(() => checkKnownKeys('options', { track_running_stats: false }, keys)).toThrow(
      'options.track_running_stats is not an option of Thing (did you mean trackRunningStats?)',
    );
  });

  it('passes known keys, keys set to undefined, and symbols', () => {
    expect(() => checkKnownKeys('options', { numFeatures: 1, trainable: undefined, [Symbol('mark')]: 1 }, keys)).not.toThrow();
  });
});

describe('checkStateValues', () => {
  it('returns float32 values; names the entry that is not a number, negative or not finite', () => {
    expect(checkStateValues('state.gamma', [1, 2.5], { finite: true })).toEqual(Float32Array.of(1, 2.5));
    expect(() => checkStateValues('state.gamma', [1, 2, 3, NaN], { finite: true })).toThrow('state.gamma[3] must be finite; got NaN');
    expect(() => checkStateValues('state.beta', [1e39], { finite: true })).toThrow(/state.beta\[0\] must be finite; got 1e\+39, beyond float32's range/);
    expect(() => checkStateValues('state.gamma', [1, '2' as unknown as number], { finite: true })).toThrow("state.gamma[1] must be a number; got the string '2'");
    expect(() => checkStateValues('state.runningVar', [1, -1], { finite: true, nonNegative: true })).toThrow('state.runningVar[1] must be >= 0 (a variance); got -1');
    expect(() => checkStateValues('state.runningVar', [-Infinity], { finite: false, nonNegative: true })).toThrow(/must be >= 0/);
    expect(checkStateValues('state.runningVar', [NaN, Infinity], { finite: false, nonNegative: true })).toEqual(Float32Array.of(NaN, Infinity));
  });
});
