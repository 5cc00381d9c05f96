/**
 * TensorFlow.js with its WebGPU backend, the peer most WebGPU apps would use: tf.batchNorm for
 * inference, tf.moments + tf.batchNorm (+ the running-statistics update) for a training forward
 * pass, tf.grads of that for forward+backward. Timed by wall clock from the call to
 * onSubmittedWorkDone on TF.js's own device.
 *
 * tf.batchNorm broadcasts its per-channel tensors over the last axis only (a [1, C, 1, 1] mean
 * gives wrong results for NCHW, on every TF.js backend), so channels-first tensors go through
 * tf.transpose to channels-last and back, as a TF.js user has to write it.
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import '@tensorflow/tfjs-backend-webgpu';
import type { WebGPUBackend } from '@tensorflow/tfjs-backend-webgpu';
import { channelAxis, type Layout } from '../src/core/layout.js';
import type { Mode } from './cases.js';
import { summarize, type Summary } from './timing.js';

/** Switches TF.js to WebGPU; resolves with its backend. */
export async function initTfjs(): Promise<WebGPUBackend> {
  const ok = await tf.setBackend('webgpu');
  if (!ok) throw new Error('TF.js could not initialize its WebGPU backend');
  await tf.ready();
  return tf.backend() as WebGPUBackend;
}

/** One tensor case in TF.js. */
export class TfjsCase {
  private readonly x: tf.Tensor;
  private readonly dy: tf.Tensor;
  private readonly scale: tf.Tensor;
  private readonly offset: tf.Tensor;
  private readonly runningMean: tf.Tensor;
  private readonly runningVar: tf.Tensor;
  /** Permutation to channels-last, and back; null when the channel axis is already last. */
  private readonly toLast: number[] | null;
  private readonly fromLast: number[] | null;
  /** Axes reduced in the channels-last tensor: all but the last. */
  private readonly axes: number[];
  private readonly count: number;

  constructor(
    private readonly backend: WebGPUBackend,
    layout: Layout,
    shape: number[],
    x: Float32Array,
    dy: Float32Array,
    running: { mean: Float64Array; variance: Float64Array },
    private readonly eps: number,
    private readonly momentum: number,
  ) {
    const axis = channelAxis(layout);
    const rank = shape.length;
    const C = shape[axis];
    if (axis === rank - 1) {
      this.toLast = this.fromLast = null;
    } else {
      this.toLast = [...shape.keys()].filter((i) => i !== axis).concat(axis);
      this.fromLast = [...shape.keys()].map((i) => this.toLast!.indexOf(i));
    }
    this.axes = [...Array(rank - 1).keys()];
    this.count = shape.reduce((p, d) => p * d, 1) / C;
    this.x = tf.tensor(x, shape);
    this.dy = tf.tensor(dy, shape);
    this.scale = tf.ones([C]);
    this.offset = tf.zeros([C]);
    this.runningMean = tf.tensor(Float32Array.from(running.mean), [C]);
    this.runningVar = tf.tensor(Float32Array.from(running.variance), [C]);
  }

  private channelsLast(t: tf.Tensor): tf.Tensor {
    return this.toLast ? tf.transpose(t, this.toLast) : t;
  }

  private original(t: tf.Tensor): tf.Tensor {
    return this.fromLast ? tf.transpose(t, this.fromLast) : t;
  }

  private trainingForward(x: tf.Tensor, scale: tf.Tensor, offset: tf.Tensor) {
    const xl = this.channelsLast(x);
    const { mean, variance } = tf.moments(xl, this.axes);
    const y = this.original(tf.batchNorm(xl, mean, variance, offset, scale, this.eps));
    return { y, mean, variance };
  }

  /** Runs `mode` once; returns what it keeps (to read back or dispose). */
  run(mode: Mode): tf.Tensor[] {
    if (mode === 'inference') {
      return [tf.tidy(() => this.original(tf.batchNorm(this.channelsLast(this.x), this.runningMean, this.runningVar, this.offset, this.scale, this.eps)))];
    }
    if (mode === 'training forward') {
      return tf.tidy(() => {
        const { y, mean, variance } = this.trainingForward(this.x, this.scale, this.offset);
        const m = this.momentum;
        const newMean = tf.add(tf.mul(this.runningMean, 1 - m), tf.mul(mean, m));
        const newVar = tf.add(tf.mul(this.runningVar, 1 - m), tf.mul(variance, (m * this.count) / (this.count - 1)));
        return [y, newMean, newVar];
      });
    }
    const grads = tf.grads((x: tf.Tensor, s: tf.Tensor, o: tf.Tensor) => this.trainingForward(x, s, o).y);
    return grads([this.x, this.scale, this.offset], this.dy);
  }

  /** Wall time of `mode`: `warmup` unmeasured runs, then `iterations` measured. */
  async time(mode: Mode, iterations: number, warmup = 1): Promise<Summary> {
    const times: number[] = [];
    for (let i = 0; i < warmup + iterations; i++) {
      const start = performance.now();
      const out = this.run(mode);
      await this.finish();
      const ms = performance.now() - start;
      tf.dispose(out);
      if (i >= warmup) times.push(ms);
    }
    return summarize(times);
  }

  /**
   * Submits what TF.js has recorded and waits for the GPU, as TF.js does before a readback
   * (it may have submitted everything already).
   */
  private async finish(): Promise<void> {
    this.backend.endComputePassEncoder();
    if ((this.backend as unknown as { commandEncoder: GPUCommandEncoder | null }).commandEncoder) this.backend.submitQueue();
    await this.backend.device.queue.onSubmittedWorkDone();
  }

  /** The output to check: y, or dx for forward+backward. */
  async output(mode: Mode): Promise<Float32Array> {
    const out = this.run(mode);
    const data = (await out[0].data()) as Float32Array;
    tf.dispose(out);
    return data;
  }

  dispose(): void {
    tf.dispose([this.x, this.dy, this.scale, this.offset, this.runningMean, this.runningVar]);
  }
}
