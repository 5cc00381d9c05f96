/**
 * Getting a GPUDevice in the browser (navigator.gpu) or in Node (Dawn through the `webgpu` npm
 * package), with SwiftShader as the fallback on machines without a GPU driver.
 */

/** Options for {@link getDevice}. */
export interface GetDeviceOptions {
  /** Passed to requestAdapter. */
  powerPreference?: GPUPowerPreference;
  /**
   * Device limits to request. By default the adapter's own maxStorageBufferBindingSize and
   * maxBufferSize are requested, so large tensors fit when the hardware allows.
   */
  requiredLimits?: Record<string, number>;
  /** Features to request in addition to none; each must be supported by the adapter. */
  requiredFeatures?: GPUFeatureName[];
  /** Device label. */
  label?: string;
}

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

// Dawn crashes if the object returned by create() is garbage-collected while GPU work is in
// flight, so every instance made here stays referenced for the life of the process.
const dawnInstances: GPU[] = [];

function isNode(): boolean {
  return typeof process !== 'undefined' && typeof process.versions?.node === 'string';
}

async function nodeGpu(): Promise<GPUAdapter | null> {
  const webgpuModule = 'webgpu';
  const { create, globals } = await import(/* @vite-ignore */ webgpuModule);
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
    const gpu = create([]) as GPU;
    dawnInstances.push(gpu);
    return gpu.requestAdapter();
  };
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

/** Requests the adapter's largest buffer limits unless the caller asked for specific ones. */
function defaultLimits(adapter: GPUAdapter): Record<string, number> {
  return {
    maxStorageBufferBindingSize: adapter.limits.maxStorageBufferBindingSize,
    maxBufferSize: adapter.limits.maxBufferSize,
  };
}

/**
 * Returns a GPUDevice from `navigator.gpu` in a browser or from Dawn (the `webgpu` package) in
 * Node. In Node, when no Vulkan driver is configured and the system's drivers give no adapter, it
 * falls back to SwiftShader's ICD from Debian's chromium package. Throws an Error saying how to
 * get an adapter when there is none.
 */
export async function getDevice(options: GetDeviceOptions = {}): Promise<GPUDevice> {
  let adapter: GPUAdapter | null;
  if (typeof navigator !== 'undefined' && navigator.gpu) {
    adapter = await navigator.gpu.requestAdapter({ powerPreference: options.powerPreference });
  } else if (isNode()) {
    adapter = await nodeGpu();
  } else {
    throw new Error(`WebGPU is not available here (no navigator.gpu). ${HOW_TO_GET_AN_ADAPTER}`);
  }
  if (!adapter) throw new Error(HOW_TO_GET_AN_ADAPTER);
  return adapter.requestDevice({
    label: options.label ?? 'webgpu-batchnorm device',
    requiredLimits: options.requiredLimits ?? defaultLimits(adapter),
    requiredFeatures: options.requiredFeatures ?? [],
  });
}
