/**
 * What turns WebGPU's asynchronous failures into errors of the next call: a lost device, and a
 * validation error of an earlier recorded pass. Layers and the function forms each keep one.
 */
import { readBuffers, type BufferRegion } from './gpu.js';

export class DeviceGuard {
  private lost: GPUDeviceLostInfo | null = null;
  /** A WebGPU validation error of an earlier recorded pass, reported by the next call. */
  private validationError: Error | null = null;
  private destroyedBy: string | null = null;

  /**
   * @param device the device to watch.
   * @param label  prefix of the messages (the layer's label).
   * @param remedy what to create anew after a loss, e.g. 'a new BatchNorm'.
   */
  constructor(
    readonly device: GPUDevice,
    readonly label: string,
    private readonly remedy: string,
  ) {
    // A lost device fails every later call with the reason, instead of WebGPU's silent no-ops.
    device.lost?.then((info) => (this.lost = info)).catch(() => undefined);
  }

  /** Every later call throws that the object was destroyed. */
  markDestroyed(): void {
    this.destroyedBy = `${this.label} was destroyed; create ${this.remedy}`;
  }

  /** Throws if the object was destroyed, an earlier pass failed validation (once), or the device was lost. */
  checkUsable(): void {
    if (this.destroyedBy) throw new Error(this.destroyedBy);
    if (this.validationError) {
      const error = this.validationError;
      this.validationError = null;
      throw error;
    }
    if (this.lost) {
      throw new Error(
        `${this.label}: the GPU device was lost (${this.lost.reason}: ${this.lost.message || 'no message'}); ` +
          `get a new device (getDevice) and create ${this.remedy} on it`,
      );
    }
  }

  /**
   * Records passes inside a validation error scope. WebGPU cannot tell synchronously whether a
   * caller's buffer belongs to this device (or is destroyed); such errors arrive asynchronously
   * and are thrown by the next call, while the caller's encoder fails on finish().
   */
  recordChecked(what: string, record: () => void): void {
    this.device.pushErrorScope('validation');
    try {
      record();
    } finally {
      this.device.popErrorScope().then(
        (error) => {
          if (error && !this.validationError) {
            this.validationError = new Error(
              `${this.label}: an earlier ${what} failed WebGPU validation (are all its buffers from this layer's device, and alive?): ${error.message}`,
            );
          }
        },
        () => undefined, // a lost device is reported by checkUsable
      );
    }
  }

  /** Reads buffers back (see readBuffers); a failure caused by device loss is reported as such. */
  async read(regions: BufferRegion[], encoder?: GPUCommandEncoder): Promise<ArrayBuffer[]> {
    try {
      return await readBuffers(this.device, regions, encoder);
    } catch (error) {
      // The lost promise settles on its own schedule; give it a chance before deciding.
      await new Promise((resolve) => setTimeout(resolve, 0));
      this.checkUsable();
      throw error;
    }
  }
}
