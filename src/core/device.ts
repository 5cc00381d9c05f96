/**
 * Getting a GPUDevice in the browser (navigator.gpu) or in Node (Dawn through the `webgpu` npm
 * package), with SwiftShader as the fallback on machines without a GPU driver.
 */
import { checkArity, checkKnownKeys, describeValue, type KnownKeys } from './validate.js';

/** Options for {@link getDevice}. */
export interface GetDeviceOptions {
  /** Passed to requestAdapter: 'low-power' or 'high-performance'. */
  powerPreference?: GPUPowerPreference;
  /**
   * Whether to request each of the optional features the kernels can use ('shader-f16', so that
   * float16 tensors use native f16 kernels; 'subgroups'; 'timestamp-query') that the adapter
   * offers. Default true; false requests none of them, only `requiredFeatures`.
   */
  adapterFeatures?: boolean;
  /** Features to request on top of the adapter's ones; each must be offered by the adapter. */
  requiredFeatures?: GPUFeatureName[];
  /**
   * Whether to request the adapter's maxStorageBufferBindingSize, maxBufferSize,
   * maxComputeWorkgroupStorageSize, maxComputeInvocationsPerWorkgroup and maxComputeWorkgroupSizeX
   * where it offers more than WebGPU's defaults, so large tensors and workgroups fit. Default
   * true; false keeps WebGPU's defaults, except for `requiredLimits`.
   */
  adapterLimits?: boolean;
  /**
   * Device limits to request, each overriding the one `adapterLimits` would pick. A max... limit
   * may not exceed the adapter's, a min... limit may not be below it; neither may be weaker than
   * WebGPU's default (a max... limit below it, a min... limit above it), which every device has.
   */
  requiredLimits?: Record<string, number>;
  /**
   * Node only: Dawn instance flags, each `key=value`, passed to `create()` of the `webgpu`
   * package, such as 'disable-dawn-features=timestamp_quantization' (without which Dawn rounds
   * timestamps down to multiples of 65536 ns) or 'backend=null'. Ignored where navigator.gpu is
   * used: a browser takes such flags on its command line.
   */
  dawnFlags?: string[];
  /** Device label. */
  label?: string;
}

// Every name of GetDeviceOptions (the satisfies clause keeps the list complete), with advice on
// names that read like one.
const OPTION_KEYS: KnownKeys = {
  names: Object.keys({
    powerPreference: 0,
    adapterFeatures: 0,
    requiredFeatures: 0,
    adapterLimits: 0,
    requiredLimits: 0,
    dawnFlags: 0,
    label: 0,
  } satisfies Record<keyof GetDeviceOptions, 0>),
  what: 'an option of getDevice',
  hints: {
    features: 'requiredFeatures, requested on top of those adapterFeatures picks',
    limits: 'requiredLimits, which override those adapterLimits picks',
    flags: 'dawnFlags',
    forceFallbackAdapter: "not passed to requestAdapter: in Node, dawnFlags such as 'backend=null' pick Dawn's backend",
  },
};

// The optional features the kernels can use, requested wherever the adapter offers them.
const ADAPTER_FEATURES: readonly GPUFeatureName[] = ['shader-f16', 'subgroups', 'timestamp-query'];

// The limits requested at the adapter's value where it exceeds WebGPU's default (the value here):
// buffer sizes for large tensors, workgroup memory and size for the kernels.
const ADAPTER_LIMITS: Readonly<Record<string, number>> = {
  maxStorageBufferBindingSize: 134217728,
  maxBufferSize: 268435456,
  maxComputeWorkgroupStorageSize: 16384,
  maxComputeInvocationsPerWorkgroup: 256,
  maxComputeWorkgroupSizeX: 256,
};

// WebGPU's default limits (the spec's "Limits" table), which every device has at least: a
// requested value below a max... default (above a min... default) would silently get the default.
// Limits newer than this table are passed through unchecked.
const DEFAULT_LIMITS: Readonly<Record<string, number>> = {
  maxTextureDimension1D: 8192,
  maxTextureDimension2D: 8192,
  maxTextureDimension3D: 2048,
  maxTextureArrayLayers: 256,
  maxBindGroups: 4,
  maxBindGroupsPlusVertexBuffers: 24,
  maxBindingsPerBindGroup: 1000,
  maxDynamicUniformBuffersPerPipelineLayout: 8,
  maxDynamicStorageBuffersPerPipelineLayout: 4,
  maxSampledTexturesPerShaderStage: 16,
  maxSamplersPerShaderStage: 16,
  maxStorageBuffersPerShaderStage: 8,
  maxStorageTexturesPerShaderStage: 4,
  maxUniformBuffersPerShaderStage: 12,
  maxUniformBufferBindingSize: 65536,
  maxStorageBufferBindingSize: 134217728,
  minUniformBufferOffsetAlignment: 256,
  minStorageBufferOffsetAlignment: 256,
  maxVertexBuffers: 8,
  maxBufferSize: 268435456,
  maxVertexAttributes: 16,
  maxVertexBufferArrayStride: 2048,
  maxInterStageShaderVariables: 16,
  maxColorAttachments: 8,
  maxColorAttachmentBytesPerSample: 32,
  maxComputeWorkgroupStorageSize: 16384,
  maxComputeInvocationsPerWorkgroup: 256,
  maxComputeWorkgroupSizeX: 256,
  maxComputeWorkgroupSizeY: 256,
  maxComputeWorkgroupSizeZ: 64,
  maxComputeWorkgroupsPerDimension: 65535,
};

// Where Debian/Ubuntu packages put SwiftShader's Vulkan ICD (chromium ships it).
const SWIFTSHADER_ICDS = [
  '/usr/lib/chromium/vk_swiftshader_icd.json',
  '/usr/lib/chromium-browser/vk_swiftshader_icd.json',
  '/usr/lib64/chromium-browser/vk_swiftshader_icd.json',
];

// Where the Vulkan loader looks for the system's drivers on Linux.
const SYSTEM_ICD_DIRS = ['/etc/vulkan/icd.d', '/usr/share/vulkan/icd.d', '/usr/local/share/vulkan/icd.d'];

const HOW_TO_GET_AN_ADAPTER =
  'No WebGPU adapter was found. On a headless Linux machine without a GPU driver, install ' +
  "Debian's chromium (SwiftShader's Vulkan driver) and the Vulkan loader: " +
  '`apt-get install -y chromium libvulkan1`, or point VK_ICD_FILENAMES at a Vulkan ICD json. ' +
  'In a browser, use one with WebGPU enabled, served from http://localhost or https.';

// Devices getDevice labelled itself, numbered so that WebGPU's messages tell them apart
// ("Device X cannot be used with Device Y").
let devicesLabelled = 0;

// Dawn crashes if the object returned by create() is garbage-collected while GPU work is in
// flight, so every instance made here stays referenced for the life of the process.
const dawnInstances: GPU[] = [];

function isNode(): boolean {
  return typeof process !== 'undefined' && typeof process.versions?.node === 'string';
}

/** Throws a TypeError naming the option, the expected value and the actual one. */
function checkOptions(options: GetDeviceOptions): void {
  const fail = (name: string, expected: string, value: unknown) => {
    throw new TypeError(`getDevice: options.${name} must be ${expected}; got ${describeValue(value)}`);
  };
  if (options === null || typeof options !== 'object') throw new TypeError(`getDevice: options must be an object; got ${describeValue(options)}`);
  checkKnownKeys('options', options, OPTION_KEYS);
  const { powerPreference, adapterFeatures, requiredFeatures, adapterLimits, requiredLimits, dawnFlags, label } = options;
  if (powerPreference !== undefined && powerPreference !== 'low-power' && powerPreference !== 'high-performance') {
    fail('powerPreference', "'low-power' or 'high-performance'", powerPreference);
  }
  if (adapterFeatures !== undefined && typeof adapterFeatures !== 'boolean') fail('adapterFeatures', 'true or false', adapterFeatures);
  if (requiredFeatures !== undefined) {
    if (!Array.isArray(requiredFeatures)) fail('requiredFeatures', "an array of feature names such as ['shader-f16']", requiredFeatures);
    // Index loops: forEach would skip the holes of a sparse array.
    for (let i = 0; i < requiredFeatures.length; i++) {
      if (typeof requiredFeatures[i] !== 'string') fail(`requiredFeatures[${i}]`, "a feature name such as 'shader-f16'", requiredFeatures[i]);
    }
  }
  if (adapterLimits !== undefined && typeof adapterLimits !== 'boolean') fail('adapterLimits', 'true or false', adapterLimits);
  if (requiredLimits !== undefined) {
    if (requiredLimits === null || typeof requiredLimits !== 'object' || Array.isArray(requiredLimits)) {
      fail('requiredLimits', 'an object of limit names to numbers such as { maxComputeWorkgroupStorageSize: 32768 }', requiredLimits);
    }
    for (const [name, value] of Object.entries(requiredLimits)) {
      // A key set to undefined says nothing, as everywhere else.
      if (value !== undefined && (!Number.isSafeInteger(value) || value < 0)) fail(`requiredLimits.${name}`, 'a non-negative safe integer (≤ 2^53 − 1)', value);
      if (value === undefined || !Object.hasOwn(DEFAULT_LIMITS, name)) continue;
      const fallback = DEFAULT_LIMITS[name];
      // A request weaker than WebGPU's default gets the default instead: say so rather than hand out a device with another limit.
      const weaker = name.startsWith('min') ? value > fallback : value < fallback;
      if (weaker) {
        throw new RangeError(
          `getDevice: options.requiredLimits.${name} must be ${name.startsWith('min') ? 'at most' : 'at least'} WebGPU's default ${fallback}, which every device has (a weaker request would get the default); got ${value}`,
        );
      }
    }
  }
  if (dawnFlags !== undefined) {
    const example = 'disable-dawn-features=timestamp_quantization';
    if (!Array.isArray(dawnFlags)) fail('dawnFlags', `an array of 'key=value' strings such as ['${example}']`, dawnFlags);
    for (let i = 0; i < dawnFlags.length; i++) {
      const flag: unknown = dawnFlags[i];
      if (typeof flag !== 'string' || !flag.includes('=')) fail(`dawnFlags[${i}]`, `a 'key=value' string such as '${example}'`, flag);
    }
  }
  if (label !== undefined && typeof label !== 'string') fail('label', 'a string', label);
}

async function nodeGpu(flags: string[], powerPreference?: GPUPowerPreference): Promise<GPUAdapter | null> {
  const webgpuModule = 'webgpu';
  // An optional peer dependency (browsers never load it): say what to install when it is missing.
  const { create, globals } = await import(/* @vite-ignore */ webgpuModule).catch((error: { code?: string; message?: string }) => {
    if (error?.code !== 'ERR_MODULE_NOT_FOUND' || !error.message?.includes(`'${webgpuModule}'`)) throw error;
    const message = "getDevice: WebGPU in Node needs the 'webgpu' package (Dawn), an optional peer dependency: npm install webgpu";
    throw new Error(message, { cause: error });
  });
  // Dawn's GPUBufferUsage, GPUMapMode, ... constants, which browsers define globally.
  Object.assign(globalThis, globals);
  const env = process.env;
  if (!env.XDG_RUNTIME_DIR) {
    // Vulkan's window-system code warns on every start without it; a private (0700) dir per
    // user silences that.
    const { mkdirSync } = await import(/* @vite-ignore */ 'node:fs');
    const { tmpdir } = await import(/* @vite-ignore */ 'node:os');
    const dir = `${tmpdir()}/webgpu-batchnorm-xdg-${process.getuid?.() ?? 'user'}`;
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    env.XDG_RUNTIME_DIR = dir;
  }
  const tryCreate = async () => {
    const gpu = create(flags) as GPU;
    dawnInstances.push(gpu);
    return gpu.requestAdapter({ powerPreference });
  };
  // A backend other than Vulkan (e.g. 'backend=null') needs no Vulkan driver.
  if (flags.some((flag) => flag.startsWith('backend=') && flag !== 'backend=vulkan')) return tryCreate();
  const { existsSync, readdirSync } = await import(/* @vite-ignore */ 'node:fs');
  const driverConfigured = Boolean(env.VK_ICD_FILENAMES || env.VK_DRIVER_FILES);
  // Try the system's drivers first, unless there are none to try (which only makes Vulkan warn).
  const systemDrivers = SYSTEM_ICD_DIRS.some((dir) => existsSync(dir) && readdirSync(dir).some((f) => f.endsWith('.json')));
  if (driverConfigured || systemDrivers || process.platform !== 'linux') {
    const adapter = await tryCreate();
    if (adapter || driverConfigured) return adapter;
  }
  // No usable driver among the system's: fall back to SwiftShader if it is installed.
  const icd = SWIFTSHADER_ICDS.find((path) => existsSync(path));
  if (!icd) return null;
  env.VK_ICD_FILENAMES = icd;
  return tryCreate();
}

/** Names as a message lists them: ['a', 'b']. */
function list(names: readonly string[]): string {
  return `[${names.map((name) => `'${name}'`).join(', ')}]`;
}

/** The features to request: the adapter's useful ones (unless turned off) plus the caller's. */
function featuresFor(adapter: GPUAdapter, options: GetDeviceOptions): GPUFeatureName[] {
  const offered = adapter.features;
  for (const feature of options.requiredFeatures ?? []) {
    if (!offered.has(feature)) {
      throw new Error(
        `getDevice: options.requiredFeatures names '${feature}', which this adapter does not offer; it offers ${list([...offered].sort())}`,
      );
    }
  }
  const wanted = options.adapterFeatures === false ? [] : ADAPTER_FEATURES.filter((feature) => offered.has(feature));
  return [...new Set([...wanted, ...(options.requiredFeatures ?? [])])];
}

/** The names of a GPUSupportedLimits' limits (its attributes, on its prototype), in the order it has them. */
function limitNames(limits: GPUSupportedLimits): string[] {
  const names: string[] = [];
  // for...in sees the attributes WebIDL defines on the prototype, where Object.keys sees none.
  for (const name in limits) if (typeof (limits as unknown as Record<string, unknown>)[name] === 'number') names.push(name);
  return names.length > 0 ? names : Object.keys(DEFAULT_LIMITS);
}

/** The limits to request: the adapter's larger ones (unless turned off), then the caller's. */
function limitsFor(adapter: GPUAdapter, options: GetDeviceOptions): Record<string, number> {
  const supported = adapter.limits as unknown as Record<string, number | undefined>;
  const limits: Record<string, number> = {};
  if (options.adapterLimits !== false) {
    for (const [name, fallback] of Object.entries(ADAPTER_LIMITS)) {
      const value = supported[name];
      if (value !== undefined && value > fallback) limits[name] = value;
    }
  }
  for (const [name, value] of Object.entries(options.requiredLimits ?? {})) {
    if (value === undefined) continue;
    const adapterValue = supported[name];
    if (typeof adapterValue !== 'number') {
      throw new Error(`getDevice: options.requiredLimits.${name} is not a limit this adapter has; its limits are ${limitNames(adapter.limits).join(', ')}`);
    }
    // min... limits (alignments) are better when smaller.
    const better = name.startsWith('min') ? value < adapterValue : value > adapterValue;
    if (better) {
      throw new RangeError(
        `getDevice: options.requiredLimits.${name} must be ${name.startsWith('min') ? 'at least' : 'at most'} the adapter's ${adapterValue}; got ${value}`,
      );
    }
    limits[name] = value;
  }
  return limits;
}

/**
 * Returns a GPUDevice from `navigator.gpu` in a browser or from Dawn (the `webgpu` package) in
 * Node. In Node, when no Vulkan driver is configured and the system's drivers give no adapter, it
 * falls back to SwiftShader's ICD from Debian's chromium package. By default the device has every
 * one of 'shader-f16', 'subgroups' and 'timestamp-query' that the adapter offers, and the adapter's
 * larger buffer and workgroup limits. Throws an Error saying how to get an adapter when there is
 * none, and a TypeError naming the option for a bad option value.
 */
export async function getDevice(options: GetDeviceOptions = {}): Promise<GPUDevice> {
  checkArity('getDevice', arguments, ['options']);
  checkOptions(options);
  let adapter: GPUAdapter | null;
  if (typeof navigator !== 'undefined' && navigator.gpu) {
    adapter = await navigator.gpu.requestAdapter({ powerPreference: options.powerPreference });
  } else if (isNode()) {
    adapter = await nodeGpu(options.dawnFlags ?? [], options.powerPreference);
  } else {
    throw new Error(`WebGPU is not available here (no navigator.gpu). ${HOW_TO_GET_AN_ADAPTER}`);
  }
  if (!adapter) throw new Error(HOW_TO_GET_AN_ADAPTER);
  return adapter.requestDevice({
    label: options.label ?? `webgpu-batchnorm device ${++devicesLabelled}`,
    requiredFeatures: featuresFor(adapter, options),
    requiredLimits: limitsFor(adapter, options),
  });
}
