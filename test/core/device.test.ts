/**
 * getDevice without any usable driver fails with instructions, rather than returning nothing;
 * bad options fail before any adapter is requested, naming the option.
 *
 * The no-driver check runs in a child process: the bogus driver path then affects no other test,
 * and the Vulkan loader's complaints about it (printed by Dawn straight to stderr, which no
 * VK_LOADER_DEBUG setting silences) are captured there instead of cluttering the test log.
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, it, expect } from 'vitest';
import { getDevice, type GetDeviceOptions } from '../../src/core/device.js';

const HOOKS = new URL('../helpers/ts-hooks.mjs', import.meta.url).href;
const DEVICE = new URL('../../src/core/device.ts', import.meta.url).href;

/** Runs `code` (an ES module that may import .ts files) in a child Node; resolves with its output. */
function runNode(code: string, env: Record<string, string>): Promise<{ error: Error | null; stdout: string; stderr: string }> {
  const script = `import { register } from 'node:module';\nregister(${JSON.stringify(HOOKS)});\n${code}`;
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--input-type=module', '--eval', script],
      { cwd: fileURLToPath(new URL('../..', import.meta.url)), env: { ...process.env, ...env }, timeout: 60_000 },
      (error, stdout, stderr) => resolve({ error, stdout, stderr }),
    );
  });
}

it('says how to get an adapter when none can be found', async () => {
  const { error, stdout, stderr } = await runNode(
    `const { getDevice } = await import(${JSON.stringify(DEVICE)});
     try { await getDevice(); console.log(JSON.stringify({ device: true })); }
     catch (e) { console.log(JSON.stringify({ message: e.message })); }
     process.exit(0);`,
    { VK_ICD_FILENAMES: '/nonexistent/vk_icd.json' },
  );
  expect(error, `child process failed; its stderr:\n${stderr}`).toBeNull();
  const result = JSON.parse(stdout.trim().split('\n').pop() ?? '{}');
  expect(result.message, `child output:\n${stdout}\n${stderr}`).toMatch(/No WebGPU adapter was found.*apt-get install -y chromium libvulkan1/);
});

describe('bad options fail up front, naming the option and the expected value', () => {
  it.each<[string, unknown, RegExp]>([
    ['not an object', 'fast', /^getDevice: options must be an object; got the string 'fast'$/],
    ['null', null, /^getDevice: options must be an object; got null$/],
    ['powerPreference', { powerPreference: 'fast' }, /^getDevice: options.powerPreference must be 'low-power' or 'high-performance'; got the string 'fast'$/],
    ['adapterFeatures', { adapterFeatures: 'yes' }, /options.adapterFeatures must be true or false; got the string 'yes'$/],
    ['adapterLimits', { adapterLimits: 0 }, /options.adapterLimits must be true or false; got 0$/],
    ['requiredFeatures (a string)', { requiredFeatures: 'shader-f16' }, /options.requiredFeatures must be an array of feature names such as \['shader-f16'\]; got the string 'shader-f16'$/],
    ['requiredFeatures (an entry)', { requiredFeatures: ['subgroups', 16] }, /options.requiredFeatures\[1\] must be a feature name such as 'shader-f16'; got 16$/],
    ['requiredLimits (an array)', { requiredLimits: [1] }, /options.requiredLimits must be an object of limit names to numbers .*; got an Array of 1$/],
    ['requiredLimits (a value)', { requiredLimits: { maxBufferSize: '1GiB' } }, /options.requiredLimits.maxBufferSize must be a non-negative safe integer \(≤ 2\^53 − 1\); got the string '1GiB'$/],
    ['dawnFlags (a string)', { dawnFlags: 'backend=null' }, /options.dawnFlags must be an array of 'key=value' strings such as \['disable-dawn-features=timestamp_quantization'\]; got the string 'backend=null'$/],
    ['dawnFlags (no =)', { dawnFlags: ['backend=null', 'verbose'] }, /options.dawnFlags\[1\] must be a 'key=value' string such as 'disable-dawn-features=timestamp_quantization'; got the string 'verbose'$/],
    ['dawnFlags (not a string)', { dawnFlags: [true] }, /options.dawnFlags\[0\] must be a 'key=value' string .*; got true$/],
    ['label', { label: 7 }, /options.label must be a string; got 7$/],
  ])('%s', async (_, options, message) => {
    await expect(getDevice(options as GetDeviceOptions)).rejects.toThrow(message);
  });
});

describe('unknown options are refused, naming the key and the accepted ones', () => {
  const accepted = 'expected one of powerPreference, adapterFeatures, requiredFeatures, adapterLimits, requiredLimits, dawnFlags, label';
  it.each<[string, Record<string, unknown>, string]>([
    ['a misspelling', { powerPrefrence: 'low-power' }, 'options.powerPrefrence is not an option of getDevice'],
    ['another case', { requiredfeatures: ['shader-f16'] }, 'options.requiredfeatures is not an option of getDevice (did you mean requiredFeatures?)'],
    ['a snake_case name', { dawn_flags: ['backend=null'] }, 'options.dawn_flags is not an option of getDevice (did you mean dawnFlags?)'],
    ["WebGPU's requestAdapter option", { forceFallbackAdapter: true }, "options.forceFallbackAdapter is not an option of getDevice (not passed to requestAdapter: in Node, dawnFlags such as 'backend=null' pick Dawn's backend)"],
    ['a short name (limits)', { limits: {} }, 'options.limits is not an option of getDevice (requiredLimits, which override those adapterLimits picks)'],
    ['a short name (features)', { features: ['shader-f16'] }, "options.features is not an option of getDevice (requiredFeatures, requested on top of those adapterFeatures picks)"],
  ])('%s', async (_, options, message) => {
    await expect(getDevice(options as GetDeviceOptions)).rejects.toThrow(new TypeError(`${message}; ${accepted}`));
  });

  it('is checked before the values, and a key set to undefined passes', async () => {
    await expect(getDevice({ label: 7, bogus: 1 } as unknown as GetDeviceOptions)).rejects.toThrow(/^options.bogus is not an option of getDevice;/);
    await expect(getDevice({ powerPreference: 'fast', bogus: undefined } as unknown as GetDeviceOptions)).rejects.toThrow(/options.powerPreference must be/);
  });
});
