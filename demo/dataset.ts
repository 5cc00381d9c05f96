/**
 * The demo's data set: the `mnist` package's 10,000 digits shuffled once with a fixed seed, of
 * which the last VALIDATION_SIZE are held out for validation, and seeded mini-batches that
 * visit every training sample once per epoch.
 */
import { IMAGE_SIZE } from './nn/mnist-cnn.js';
import { mulberry32 } from '../support/random.js';

/** Samples held out for validation. */
export const VALIDATION_SIZE = 2000;
const SPLIT_SEED = 20261123;

/** Images as float32 pixels in [0, 1] (784 per sample) and their digits. */
export interface Samples {
  images: Float32Array;
  labels: Uint8Array;
  count: number;
}

/** Training and validation samples from the digit bytes (pixels, then one label per sample). */
export function splitDigits(bytes: Uint8Array, count: number): { train: Samples; validation: Samples } {
  if (bytes.length !== count * (IMAGE_SIZE + 1)) throw new RangeError(`expected ${count * (IMAGE_SIZE + 1)} bytes of digits; got ${bytes.length}`);
  const order = shuffled(count, mulberry32(SPLIT_SEED));
  const take = (indices: number[]): Samples => {
    const images = new Float32Array(indices.length * IMAGE_SIZE);
    const labels = new Uint8Array(indices.length);
    indices.forEach((s, i) => {
      for (let p = 0; p < IMAGE_SIZE; p++) images[i * IMAGE_SIZE + p] = bytes[s * IMAGE_SIZE + p] / 255;
      labels[i] = bytes[count * IMAGE_SIZE + s];
    });
    return { images, labels, count: indices.length };
  };
  return { train: take(order.slice(0, count - VALIDATION_SIZE)), validation: take(order.slice(count - VALIDATION_SIZE)) };
}

/** The first `count` samples. */
export function firstSamples(s: Samples, count: number): Samples {
  const n = Math.min(count, s.count);
  return { images: s.images.subarray(0, n * IMAGE_SIZE), labels: s.labels.subarray(0, n), count: n };
}

/**
 * Mini-batches of `batchSize` samples for ever: each epoch is a fresh seeded permutation, so two
 * models fed by iterators of one seed see the same data in the same order. A last partial batch
 * of an epoch is dropped.
 */
export function* batches(s: Samples, batchSize: number, seed: number): Generator<{ images: Float32Array; labels: Uint8Array; epoch: number; step: number }> {
  const random = mulberry32(seed);
  const perEpoch = Math.floor(s.count / batchSize);
  if (perEpoch < 1) throw new RangeError(`batchSize ${batchSize} is larger than the ${s.count} training samples`);
  for (let epoch = 0; ; epoch++) {
    const order = shuffled(s.count, random);
    for (let step = 0; step < perEpoch; step++) {
      const images = new Float32Array(batchSize * IMAGE_SIZE);
      const labels = new Uint8Array(batchSize);
      for (let i = 0; i < batchSize; i++) {
        const from = order[step * batchSize + i];
        images.set(s.images.subarray(from * IMAGE_SIZE, (from + 1) * IMAGE_SIZE), i * IMAGE_SIZE);
        labels[i] = s.labels[from];
      }
      yield { images, labels, epoch, step };
    }
  }
}

function shuffled(n: number, random: () => number): number[] {
  const order = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [order[i], order[j]] = [order[j], order[i]];
  }
  return order;
}
