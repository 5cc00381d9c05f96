/**
 * bench:node's micro-benchmark of the cost of one dependent dispatch on the adapter, what bounds
 * small tensors: a one-thread kernel that adds 1 to one word, dispatched N times in one compute
 * pass and N times each in a pass of its own, every dispatch reading the word the previous one
 * wrote (so they run one after another), timed with the bench's GpuTimer. Per dispatch:
 * (time(N) − time(1)) / (N − 1), on the medians of interleaved samples.
 */
import { summarize, type GpuTimer } from '../timing.js';

const BUMP_WGSL = /* wgsl */ `
@group(0) @binding(0) var<storage, read_write> word: array<u32>;

@compute @workgroup_size(1)
fn bump() {
  word[0] = word[0] + 1u;
}
`;

/** The micro-benchmark's result, in µs per dispatch. */
export interface DispatchCost {
  /** Dispatches in the long chain. */
  n: number;
  samples: number;
  timing: GpuTimer['method'];
  /** Per dependent dispatch within one compute pass. */
  onePassUs: number;
  /** Per dispatch in a compute pass of its own. */
  perPassUs: number;
}

/** Chains of `n` dispatches (and of 1), `samples` interleaved rounds after a warm-up of at least `warmupMs` (and 2 rounds). */
export interface DispatchCostOptions {
  n: number;
  samples: number;
  warmupMs: number;
}

/** Times chains of 1 and `n` dependent dispatches, in one pass and in a pass each. */
export async function measureDispatchCost(device: GPUDevice, timer: GpuTimer, { n, samples, warmupMs }: DispatchCostOptions): Promise<DispatchCost> {
  const module = device.createShaderModule({ label: 'dispatch cost', code: BUMP_WGSL });
  const pipeline = device.createComputePipeline({ label: 'dispatch cost', layout: 'auto', compute: { module, entryPoint: 'bump' } });
  const word = device.createBuffer({ label: 'dispatch cost word', size: 16, usage: GPUBufferUsage.STORAGE });
  const bindGroup = device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries: [{ binding: 0, resource: { buffer: word } }] });
  const dispatch = (pass: GPUComputePassEncoder) => {
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, bindGroup);
    pass.dispatchWorkgroups(1);
  };
  const onePass = (count: number) => (e: GPUCommandEncoder) => {
    const pass = e.beginComputePass({ label: 'dispatch chain' });
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, bindGroup);
    for (let i = 0; i < count; i++) pass.dispatchWorkgroups(1);
    pass.end();
  };
  const ownPasses = (count: number) => (e: GPUCommandEncoder) => {
    for (let i = 0; i < count; i++) {
      const pass = e.beginComputePass({ label: 'dispatch pass' });
      dispatch(pass);
      pass.end();
    }
  };
  const chains = [onePass(1), onePass(n), ownPasses(1), ownPasses(n)];
  const times: number[][] = chains.map(() => []);
  try {
    const started = performance.now();
    for (let round = 0; round < 2 || performance.now() - started < warmupMs; round++) for (const chain of chains) await timer.sample(chain);
    for (let round = 0; round < samples; round++) {
      for (let j = 0; j < chains.length; j++) {
        const s = await timer.sample(chains[j]);
        times[j].push(s.gpuMs ?? s.wallMs);
      }
    }
  } finally {
    word.destroy();
  }
  const [one, chain, ownOne, passes] = times.map((t) => summarize(t).medianMs);
  const perDispatchUs = (long: number, short: number) => ((long - short) * 1000) / (n - 1);
  return { n, samples, timing: timer.method, onePassUs: perDispatchUs(chain, one), perPassUs: perDispatchUs(passes, ownOne) };
}

/** The line of the header: "dispatch cost: 2.1 µs per dependent dispatch in one pass, 2.4 µs per pass (N = 64, ...)". */
export function dispatchCostLine(d: DispatchCost): string {
  const us = (v: number) => (Math.abs(v) >= 10 ? v.toFixed(0) : Math.abs(v) >= 1 ? v.toFixed(1) : v.toFixed(2));
  return `dispatch cost: ${us(d.onePassUs)} µs per dependent dispatch in one pass, ${us(d.perPassUs)} µs per pass (N = ${d.n}, medians of ${d.samples}, ${d.timing})`;
}
