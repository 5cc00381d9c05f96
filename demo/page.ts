/**
 * What every demo page does the same way: find its elements, escape text for HTML, name its
 * adapter, and show a failure (no WebGPU, a lost device, an error) in its status box and state.
 */
import { browserDevice, escapeHtml, NoWebGpu } from './no-webgpu.js';

export { escapeHtml };

/** The element with this id. */
export const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;

/** The device's adapter as the pages show it: vendor, architecture, description. */
export function adapterName(device: GPUDevice): string {
  const info = device.adapterInfo;
  return [info?.vendor, info?.architecture, info?.description].filter(Boolean).join(' ') || 'unknown adapter';
}

/** How a page reports a failure: the kind for its published state, HTML for the visitor, a short message. */
export type ShowFailure = (kind: 'no-webgpu' | 'error', html: string, message: string) => void;

/** A page's ShowFailure: sets `state`'s status and message and turns `box` into the failure notice. */
export function failureShower(state: { status: string; message?: string }, box: HTMLElement): ShowFailure {
  return (kind, html, message) => {
    state.status = kind;
    state.message = message;
    box.innerHTML = html;
    box.className = 'status fail';
  };
}

/**
 * The page's device (browserDevice), or null once `fail` has told the visitor there is no WebGPU;
 * a later loss of the device is shown through `fail` too.
 */
export async function pageDevice(label: string, fail: ShowFailure): Promise<GPUDevice | null> {
  let device: GPUDevice;
  try {
    device = await browserDevice(label);
  } catch (e) {
    if (!(e instanceof NoWebGpu)) throw e;
    fail('no-webgpu', e.html, e.message);
    return null;
  }
  device.lost.then((lost) => lost.reason !== 'destroyed' && fail('error', `<strong>The GPU device was lost:</strong> ${escapeHtml(lost.message)}`, lost.message));
  return device;
}
