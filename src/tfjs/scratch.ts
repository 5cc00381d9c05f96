/**
 * The adapter's own small buffers: the function forms take every state buffer, and TF.js has no
 * tensor for some of them (numBatchesTracked; dγ/dβ where γ or β is fixed; the running statistics
 * a backward pass does not read; `saved` of FusedBatchNorm, which has no backward of ours). One
 * set per device and size, zero-filled, destroyed by uninstall().
 */
export class AdapterScratch {
  private readonly buffers = new Map<GPUDevice, Map<string, GPUBuffer>>();

  /** The buffer named `name` of `bytes` bytes on `device` (one per name and size). */
  get(device: GPUDevice, name: string, bytes: number): GPUBuffer {
    let perDevice = this.buffers.get(device);
    if (!perDevice) this.buffers.set(device, (perDevice = new Map()));
    const key = `${name}:${bytes}`;
    let buffer = perDevice.get(key);
    if (!buffer) {
      buffer = device.createBuffer({
        label: `webgpu-batchnorm/tfjs ${name} (${bytes} bytes)`,
        size: Math.max(4, Math.ceil(bytes / 4) * 4),
        usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC,
      });
      perDevice.set(key, buffer);
    }
    return buffer;
  }

  /** Destroys every buffer (after the GPU is done with them: a destroyed buffer in a submitted command buffer fails its submit). */
  destroy(): void {
    for (const perDevice of this.buffers.values()) for (const b of perDevice.values()) b.destroy();
    this.buffers.clear();
  }
}
