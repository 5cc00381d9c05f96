/**
 * Getting the pages' GPUDevice, and what to tell a visitor whose browser gives none: which
 * browsers have WebGPU, which flag turns it on, and that the page needs https or localhost.
 * (getDevice's own message is written for Node and headless Linux machines: apt-get and Vulkan
 * drivers, nothing a browser visitor can act on.)
 */
import { getDevice } from '../src/index.js';

/** Why there is no device: no WebGPU API, no secure context, no adapter, or the device request failed. */
export type NoWebGpuReason = 'no-api' | 'insecure' | 'no-adapter' | 'no-device';

/** Thrown by {@link browserDevice}: `html` is the visitor-facing explanation, `message` a short one. */
export class NoWebGpu extends Error {
  constructor(
    readonly reason: NoWebGpuReason,
    readonly html: string,
    message: string,
  ) {
    super(message);
    this.name = 'NoWebGpu';
  }
}

const WHERE_IT_RUNS =
  '<p>WebGPU ships in <strong>Chrome and Edge 113 or later</strong> on Windows, macOS and ChromeOS (Chrome 121+ on Android), ' +
  'in <strong>Safari 26</strong> (macOS, iOS and iPadOS 26), and in <strong>Firefox 141 or later on Windows</strong>; on other ' +
  'systems Firefox has it in Nightly or behind <code>dom.webgpu.enabled</code> in <code>about:config</code>. ' +
  '<strong>On Linux</strong>, Chrome needs it switched on: open <code>chrome://flags/#enable-unsafe-webgpu</code>, set it to ' +
  'Enabled (with <code>chrome://flags/#enable-vulkan</code>) and relaunch. The page must be served over <strong>https</strong> or ' +
  'from <strong>localhost</strong>: WebGPU exists only in secure contexts.</p>';

const NO_ADAPTER_HINTS =
  '<p>Usually the GPU or its driver is on the browser\'s blocklist, or hardware acceleration is off (Chrome and Edge: ' +
  'Settings → System → "Use graphics acceleration when available"). <code>chrome://gpu</code> shows WebGPU\'s status; ' +
  '<code>chrome://flags/#enable-unsafe-webgpu</code> lifts the blocklist.</p>';

/** `text` safe inside HTML text and attribute values. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);
}

/** The explanation for a visitor, as HTML. `detail` is an error message worth showing (a failed device request). */
export function noWebGpuHtml(reason: NoWebGpuReason, detail?: string): string {
  switch (reason) {
    case 'insecure':
      return (
        `<strong>This browser has no WebGPU on this page:</strong> it is served over plain http from ${escapeHtml(location.host)}, ` +
        `and WebGPU exists only in secure contexts. Open it over https, or serve it from localhost.${WHERE_IT_RUNS}`
      );
    case 'no-api':
      return `<strong>This browser has no WebGPU.</strong> The demo runs on your GPU through WebGPU.${WHERE_IT_RUNS}`;
    case 'no-adapter':
      return `<strong>WebGPU is on in this browser, but it offered no GPU adapter.</strong>${NO_ADAPTER_HINTS}${WHERE_IT_RUNS}`;
    case 'no-device':
      return `<strong>WebGPU found a GPU adapter, but the device request failed:</strong> ${escapeHtml(detail ?? 'unknown error')}${NO_ADAPTER_HINTS}`;
  }
}

/** getDevice() in the browser, or a {@link NoWebGpu} that says what the visitor can do about it. */
export async function browserDevice(label: string): Promise<GPUDevice> {
  if (!('gpu' in navigator)) {
    const reason = window.isSecureContext ? 'no-api' : 'insecure';
    throw new NoWebGpu(reason, noWebGpuHtml(reason), reason === 'insecure' ? 'not a secure context: no navigator.gpu' : 'navigator.gpu is missing');
  }
  try {
    return await getDevice({ label });
  } catch (e) {
    // getDevice's message is for Node users; ask the browser itself whether there is an adapter.
    const adapter = await navigator.gpu.requestAdapter().catch(() => null);
    if (!adapter) throw new NoWebGpu('no-adapter', noWebGpuHtml('no-adapter'), 'navigator.gpu.requestAdapter() gave no adapter');
    const message = (e as Error).message;
    throw new NoWebGpu('no-device', noWebGpuHtml('no-device', message), message);
  }
}
