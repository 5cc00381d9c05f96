/**
 * What turns WebGPU's asynchronous failures into errors of the next call: a lost device, and a
 * validation error of an earlier recorded pass. Layers and the function forms each keep one.
 */
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
    const lost = this.lostError();
    if (lost) throw lost;
  }

  /** The error every call gives once the device is lost, or null while it is not. */
  private lostError(): Error | null {
    if (!this.lost) return null;
    return new Error(
      `${this.label}: the GPU device was lost (${this.lost.reason}: ${this.lost.message || 'no message'}); ` +
        `get a new device (getDevice) and create ${this.remedy} on it`,
    );
  }

  /**
   * Records passes inside a validation error scope. WebGPU cannot tell synchronously whether a
   * caller's buffer belongs to this device (or is destroyed); such errors arrive asynchronously
   * and are thrown by the next call, while the caller's encoder fails on finish(). `recorded`
   * says what the call recorded (mode, shape, buffers), so that the late error names its call.
   */
  recordChecked(what: string, record: () => void, recorded?: string): void {
    this.device.pushErrorScope('validation');
    try {
      record();
    } finally {
      this.device.popErrorScope().then(
        (error) => {
          if (error) {
            this.deferError(
              new Error(
                `${this.label}: an earlier ${what}${recorded ? ` (${recorded})` : ''} failed WebGPU validation ` +
                  `(are all its buffers from this layer's device, and alive, and its encoder not finished?): ${error.message}`,
              ),
            );
          }
        },
        () => undefined, // a lost device is reported by checkUsable
      );
    }
  }

  /** Keeps `error` (the first one only) for the next call to throw: a failure no promise was waiting for. */
  deferError(error: Error): void {
    this.validationError ??= error;
  }

  /** Awaits `promise`; a failure caused by device loss is reported as such. */
  async settle<T>(promise: Promise<T>): Promise<T> {
    try {
      return await promise;
    } catch (error) {
      // The lost promise settles on its own schedule; give it a chance before deciding.
      await new Promise((resolve) => setTimeout(resolve, 0));
      throw this.lostError() ?? error;
    }
  }
}
