/**
 * A device proxy that records what the GPU is asked to do: every compute dispatch with its
 * pipeline label, workgroup counts and bound buffers (binding number, bound size, and the bytes
 * of uniform buffers). Nothing needs to be submitted: the log is written as passes are recorded.
 */

/** One line per dispatch: `label [x,y,z] binding:size[=uniform hex] ...`; '--' between passes. */
export interface DispatchRecorder {
  device: GPUDevice;
  /** The lines recorded since the last take(); clears them. */
  take(): string[];
}

const UNIFORM = 0x0040;

function hex(bytes: ArrayBuffer): string {
  return Array.from(new Uint8Array(bytes), (b) => b.toString(16).padStart(2, '0')).join('');
}

/** Wraps `device` so that every compute pass recorded through it is logged. */
export function recordingDevice(device: GPUDevice): DispatchRecorder {
  const log: string[] = [];
  const uniformBytes = new WeakMap<GPUBuffer, string>();
  const bindGroups = new WeakMap<GPUBindGroup, string>();

  const describeEntry = (entry: GPUBindGroupEntry): string => {
    const resource = entry.resource as GPUBufferBinding | GPUBuffer;
    const binding = 'buffer' in resource ? resource : { buffer: resource as GPUBuffer };
    const offset = binding.offset ?? 0;
    const size = binding.size ?? binding.buffer.size - offset;
    const uniform = uniformBytes.get(binding.buffer);
    return `${entry.binding}:${size}${uniform ? `=${uniform}` : ''}`;
  };

  const wrapPass = (pass: GPUComputePassEncoder): GPUComputePassEncoder => {
    let pipeline = '';
    let group = '';
    return new Proxy(pass, {
      get(target, prop) {
        if (prop === 'setPipeline') {
          return (p: GPUComputePipeline) => {
            pipeline = p.label;
            target.setPipeline(p);
          };
        }
        if (prop === 'setBindGroup') {
          return (index: number, bg: GPUBindGroup) => {
            group = bindGroups.get(bg) ?? '?';
            target.setBindGroup(index, bg);
          };
        }
        if (prop === 'dispatchWorkgroups') {
          return (x: number, y = 1, z = 1) => {
            log.push(`${pipeline} [${x},${y},${z}] ${group}`);
            target.dispatchWorkgroups(x, y, z);
          };
        }
        if (prop === 'end') {
          return () => {
            log.push('--');
            target.end();
          };
        }
        const value = Reflect.get(target, prop, target);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
  };

  const wrapEncoder = (encoder: GPUCommandEncoder): GPUCommandEncoder =>
    new Proxy(encoder, {
      get(target, prop) {
        if (prop === 'beginComputePass') return (d?: GPUComputePassDescriptor) => wrapPass(target.beginComputePass(d));
        const value = Reflect.get(target, prop, target);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });

  const proxy = new Proxy(device, {
    get(target, prop) {
      if (prop === 'createBuffer') {
        return (descriptor: GPUBufferDescriptor) => {
          const buffer = target.createBuffer(descriptor);
          if (descriptor.mappedAtCreation && descriptor.usage & UNIFORM) {
            // Capture the uniform's bytes as they are when it is unmapped.
            const getMappedRange = buffer.getMappedRange.bind(buffer);
            const unmap = buffer.unmap.bind(buffer);
            let range: ArrayBuffer | null = null;
            buffer.getMappedRange = (...args: Parameters<GPUBuffer['getMappedRange']>) => (range = getMappedRange(...args));
            buffer.unmap = () => {
              if (range) uniformBytes.set(buffer, hex(range.slice(0)));
              unmap();
            };
          }
          return buffer;
        };
      }
      if (prop === 'createBindGroup') {
        return (descriptor: GPUBindGroupDescriptor) => {
          const group = target.createBindGroup(descriptor);
          const entries = [...(descriptor.entries as Iterable<GPUBindGroupEntry>)].sort((a, b) => a.binding - b.binding);
          bindGroups.set(group, entries.map(describeEntry).join(' '));
          return group;
        };
      }
      if (prop === 'createCommandEncoder') return (d?: GPUCommandEncoderDescriptor) => wrapEncoder(target.createCommandEncoder(d));
      const value = Reflect.get(target, prop, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  return { device: proxy, take: () => log.splice(0) };
}

/** An uninitialized STORAGE buffer of at least `bytes` (16 at least), for recording passes that never run. */
export function blankBuffer(device: GPUDevice, bytes: number): GPUBuffer {
  return device.createBuffer({ size: Math.max(16, Math.ceil(bytes / 4) * 4), usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST });
}

/** Every state buffer of the batch-norm function forms for `C` channels, blank. */
export function blankStateBuffers(device: GPUDevice, C: number, savedBytesPerFeature: number) {
  return {
    gamma: blankBuffer(device, C * 4),
    beta: blankBuffer(device, C * 4),
    runningMean: blankBuffer(device, C * 4),
    runningVar: blankBuffer(device, C * 4),
    numBatchesTracked: blankBuffer(device, 4),
    gammaGrad: blankBuffer(device, C * 4),
    betaGrad: blankBuffer(device, C * 4),
    saved: blankBuffer(device, C * savedBytesPerFeature),
  };
}
