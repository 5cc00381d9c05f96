/**
 * The seeds' MNIST network, trained entirely on WebGPU:
 *
 *   Conv2D(10, 5x5) → BN → ReLU → MaxPool(2) → Conv2D(20, 5x5) → BN → ReLU → MaxPool(2) →
 *   Flatten → Dense(100) → BN → ReLU → Dense(10) → softmax cross-entropy
 *
 * with mini-batch SGD (optionally with momentum). The BN layers are the library's BatchNorm
 * (per feature map after the convolutions, per feature after the dense layer); without
 * `batchNorm` the same network runs with the BN layers left out. Tensors are NCHW float32.
 */
import { BatchNorm } from '../../src/batchnorm/layer.js';
import { mulberry32 } from '../../support/random.js';
import { Usage, createBufferWithData, readBuffers, regionOf, type TensorBuffer } from '../../src/core/gpu.js';
import {
  createSgdHyperparams,
  encodeConv2dBackward,
  encodeConv2dForward,
  encodeMaxPoolBackward,
  encodeMaxPoolForward,
  encodeReluBackward,
  encodeReluForward,
  encodeSgdStep,
  encodeSoftmaxCrossEntropy,
  writeSgdHyperparams,
  type Conv2dShape,
  type SgdHyperparams,
} from './kernels.js';

/** Pixels of one 28x28 grey-scale digit. */
export const IMAGE_SIZE = 28 * 28;
/** Digit classes. */
export const CLASSES = 10;

/** The convolutions and dense layers (a dense layer is a convolution with a kernel as large as its input). */
const CONVS = [
  { name: 'conv2d_1', inChannels: 1, size: 28, outChannels: 10, kernel: 5 },
  { name: 'conv2d_2', inChannels: 10, size: 12, outChannels: 20, kernel: 5 },
  { name: 'dense_1', inChannels: 20, size: 4, outChannels: 100, kernel: 4 },
  { name: 'dense_2', inChannels: 100, size: 1, outChannels: 10, kernel: 1 },
] as const;
/** Blocks Conv/Dense → BN → ReLU (→ MaxPool); the last dense layer feeds the loss directly. */
const BLOCKS = [
  { conv: 0, pool: true },
  { conv: 1, pool: true },
  { conv: 2, pool: false },
] as const;

/** Options of {@link MnistCnn}. */
export interface MnistCnnOptions {
  /** Insert BatchNorm after each convolution and the first dense layer. */
  batchNorm: boolean;
  /** Seed of the Glorot-uniform weight initialization (biases start at 0). Default 1. */
  seed?: number;
  /** SGD learning rate. Default 0.05. */
  lr?: number;
  /** SGD momentum in [0, 1). Default 0 (plain SGD). */
  momentum?: number;
  /** BatchNorm eps. Default 1e-3, the seeds' (Keras's) value. */
  eps?: number;
  /** BatchNorm running-statistics momentum (weight of the new batch). Default 0.1. */
  bnMomentum?: number;
  /** Prefix of every GPU object's label. Default 'MnistCnn'. */
  label?: string;
}

/** One row of {@link MnistCnn.summary}, as Keras prints it. */
export interface SummaryRow {
  name: string;
  type: string;
  /** Output shape without the batch axis, NCHW as stored. */
  outputShape: number[];
  params: number;
  trainableParams: number;
}

/** Loss and accuracy over some samples. */
export interface Metrics {
  loss: number;
  accuracy: number;
  samples: number;
}

/** A trainable tensor: its values, its gradient and its SGD velocity (all float32 on the GPU). */
interface Parameter {
  name: string;
  size: number;
  value: TensorBuffer;
  grad: TensorBuffer;
  velocity: GPUBuffer;
}

/** Activation and gradient buffers for one batch size. */
interface BatchBuffers {
  batch: number;
  x: GPUBuffer;
  labels: GPUBuffer;
  /** Per convolution: its output a; per block: BN output z, ReLU output r, pool output (r without pooling) and argmax. */
  a: GPUBuffer[];
  z: GPUBuffer[];
  r: GPUBuffer[];
  pooled: GPUBuffer[];
  argmax: (GPUBuffer | null)[];
  /** Gradients: of each convolution's input (none for the images), and of a, z and r per block. */
  dInput: (GPUBuffer | null)[];
  da: GPUBuffer[];
  dz: GPUBuffer[];
  dr: GPUBuffer[];
  dlogits: GPUBuffer;
  losses: GPUBuffer;
  correct: GPUBuffer;
}

/**
 * The seeds' CNN on one GPUDevice. {@link encodeTrainStep} records a whole SGD step (forward,
 * loss, backward, update) into the caller's encoder; {@link trainStep} and {@link evaluate}
 * take arrays.
 */
export class MnistCnn {
  readonly device: GPUDevice;
  readonly batchNorm: boolean;
  readonly label: string;
  /** The BatchNorm layers after conv2d_1, conv2d_2 and dense_1 (empty without batchNorm). */
  readonly bnLayers: BatchNorm[];
  private readonly convWeights: Parameter[] = [];
  private readonly convBiases: Parameter[] = [];
  /** Every trainable tensor: the kernels and biases above, then BN's gamma and beta. */
  private readonly parameters: Parameter[] = [];
  private readonly hyper: GPUBuffer;
  private hyperparams: SgdHyperparams;
  private readonly owned: GPUBuffer[] = [];
  private readonly batches = new Map<number, BatchBuffers>();
  private lastTrainBatch: BatchBuffers | null = null;
  private destroyed = false;

  constructor(device: GPUDevice, options: MnistCnnOptions) {
    if (!options || typeof options.batchNorm !== 'boolean') throw new TypeError('options.batchNorm must be a boolean');
    const { seed = 1, lr = 0.05, momentum = 0, eps = 1e-3, bnMomentum = 0.1, label = 'MnistCnn' } = options;
    if (!Number.isSafeInteger(seed)) throw new TypeError(`options.seed must be an integer; got ${String(seed)}`);
    this.device = device;
    this.batchNorm = options.batchNorm;
    this.label = label;
    this.hyperparams = { lr, momentum };
    this.hyper = createSgdHyperparams(device, this.hyperparams, `${label} SGD hyperparameters`);
    this.owned.push(this.hyper);

    const random = mulberry32(seed); // one seed, the same initial weights in every model
    for (const c of CONVS) {
      const fanIn = c.inChannels * c.kernel * c.kernel;
      const fanOut = c.outChannels * c.kernel * c.kernel;
      const limit = Math.sqrt(6 / (fanIn + fanOut)); // Keras's glorot_uniform
      const weight = Float32Array.from({ length: fanIn * c.outChannels }, () => (2 * random() - 1) * limit);
      this.convWeights.push(this.parameter(`${c.name} kernel`, weight));
      this.convBiases.push(this.parameter(`${c.name} bias`, new Float32Array(c.outChannels)));
    }
    this.parameters.push(...this.convWeights, ...this.convBiases);
    this.bnLayers = !this.batchNorm
      ? []
      : BLOCKS.map((b, i) => {
          const c = CONVS[b.conv];
          const bn = new BatchNorm(device, {
            numFeatures: c.outChannels,
            layout: c.size - c.kernel + 1 > 1 ? 'NCHW' : 'NC',
            eps,
            momentum: bnMomentum,
            label: `${label} batch_normalization_${i + 1}`,
          });
          const zeros = new Float32Array(c.outChannels);
          const velocity = (name: string) => this.ownBuffer(`${bn.label} ${name} velocity`, zeros);
          this.parameters.push(
            { name: `batch_normalization_${i + 1} gamma`, size: c.outChannels, value: bn.gamma, grad: bn.gammaGrad, velocity: velocity('gamma') },
            { name: `batch_normalization_${i + 1} beta`, size: c.outChannels, value: bn.beta, grad: bn.betaGrad, velocity: velocity('beta') },
          );
          return bn;
        });
  }

  /** The current learning rate and momentum. */
  get sgd(): SgdHyperparams {
    return { ...this.hyperparams };
  }

  /** Changes the learning rate and/or momentum for steps submitted from now on. */
  setSgd(hyper: Partial<SgdHyperparams>): void {
    this.checkUsable();
    const next = { ...this.hyperparams, ...hyper };
    writeSgdHyperparams(this.device, this.hyper, next); // validates before anything changes
    this.hyperparams = next;
  }

  /** Layers, output shapes and parameter counts, as Keras's model.summary() lists them. */
  summary(): SummaryRow[] {
    const rows: SummaryRow[] = [];
    const row = (name: string, type: string, outputShape: number[], params = 0, trainableParams = params) =>
      rows.push({ name, type, outputShape, params, trainableParams });
    BLOCKS.forEach((b, i) => {
      const c = CONVS[b.conv];
      const out = c.size - c.kernel + 1;
      const shape = out > 1 ? [c.outChannels, out, out] : [c.outChannels];
      const convParams = c.outChannels * c.inChannels * c.kernel * c.kernel + c.outChannels;
      if (i === 2) row('flatten_1', 'Flatten', [c.inChannels * c.size * c.size]);
      row(c.name, out > 1 ? 'Conv2D' : 'Dense', shape, convParams);
      if (this.batchNorm) row(`batch_normalization_${i + 1}`, 'BatchNormalization', shape, 4 * c.outChannels, 2 * c.outChannels);
      row(`activation_${i + 1}`, 'Activation (relu)', shape);
      if (b.pool) row(`max_pooling2d_${i + 1}`, 'MaxPooling2D', [c.outChannels, out / 2, out / 2]);
    });
    const last = CONVS[3];
    row(last.name, 'Dense (softmax)', [last.outChannels], last.outChannels * last.inChannels + last.outChannels);
    return rows;
  }

  /**
   * Records one SGD step on a batch into `encoder`: forward (BN with batch statistics, running
   * statistics updated), softmax cross-entropy, backward, and the update of every parameter.
   * `x` holds [batch, 1, 28, 28] float32 pixels and `labels` [batch] u32 digits; both need
   * STORAGE usage. Read the step's loss with {@link readLastMetrics} after submitting.
   */
  encodeTrainStep(encoder: GPUCommandEncoder, args: { x: GPUBuffer; labels: GPUBuffer; batch: number }): void {
    this.checkUsable();
    checkTrainingBatch(args?.batch, 'args.batch');
    const b = this.batchBuffers(args.batch, 'args.batch');
    this.encodeForward(encoder, b, args.x, args.labels, true);
    this.encodeBackward(encoder, b, args.x);
    this.inPass(encoder, 'SGD step', (pass) => {
      for (const p of this.parameters) {
        encodeSgdStep(this.device, pass, p.size, { hyper: this.hyper, param: p.value, grad: p.grad, velocity: p.velocity });
      }
    });
    this.lastTrainBatch = b;
  }

  /**
   * One SGD step on `images` ([batch·784] pixels in [0, 1]) and their `labels` (digits 0–9):
   * uploads, records and submits. Nothing is read back; see {@link readLastMetrics}.
   */
  trainStep(images: Float32Array, labels: ArrayLike<number>): void {
    this.checkUsable();
    const batch = checkSamples(images, labels);
    checkTrainingBatch(batch, 'labels.length');
    const b = this.batchBuffers(batch, 'labels.length');
    this.upload(b, images, labels);
    const encoder = this.device.createCommandEncoder({ label: `${this.label} train step` });
    this.encodeTrainStep(encoder, { x: b.x, labels: b.labels, batch });
    this.device.queue.submit([encoder.finish()]);
  }

  /** Loss and accuracy of the last submitted training step's batch (before its update). */
  async readLastMetrics(): Promise<Metrics> {
    this.checkUsable();
    const b = this.lastTrainBatch;
    if (!b) throw new Error('readLastMetrics() needs a training step first');
    return this.readMetrics(b, b.batch);
  }

  /**
   * Loss and accuracy on `images`/`labels` in inference mode (BN with running statistics), in
   * batches of `batchSize`; the last batch may be partial.
   */
  async evaluate(images: Float32Array, labels: ArrayLike<number>, batchSize = 500): Promise<Metrics> {
    this.checkUsable();
    const samples = checkSamples(images, labels);
    if (!Number.isSafeInteger(batchSize) || batchSize < 1) throw new RangeError(`batchSize must be a positive integer; got ${String(batchSize)}`);
    let loss = 0;
    let correct = 0;
    for (let start = 0; start < samples; start += batchSize) {
      const n = Math.min(batchSize, samples - start);
      const b = this.batchBuffers(n, 'batchSize');
      this.upload(b, images.subarray(start * IMAGE_SIZE, (start + n) * IMAGE_SIZE), Array.from({ length: n }, (_, i) => labels[start + i]));
      const encoder = this.device.createCommandEncoder({ label: `${this.label} evaluate` });
      this.encodeForward(encoder, b, b.x, b.labels, false);
      const m = await this.readMetrics(b, n, encoder);
      loss += m.loss * n;
      correct += m.accuracy * n;
    }
    return { loss: loss / samples, accuracy: correct / samples, samples };
  }

  /** Parameter values by name (conv/dense kernels and biases, BN gamma and beta). */
  readParameters(): Promise<Record<string, Float32Array>> {
    return this.readNamed((p) => p.value);
  }

  /** Gradients of the last training step by parameter name. */
  readGradients(): Promise<Record<string, Float32Array>> {
    return this.readNamed((p) => p.grad);
  }

  /** Destroys every GPU buffer of the model and its BN layers. */
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    for (const bn of this.bnLayers) bn.destroy();
    for (const buffer of this.owned) buffer.destroy();
    this.owned.length = 0;
    this.batches.clear();
  }

  private encodeForward(encoder: GPUCommandEncoder, b: BatchBuffers, x: GPUBuffer, labels: GPUBuffer, training: boolean): void {
    let input = x;
    BLOCKS.forEach((block, i) => {
      const shape = this.convShape(block.conv, b.batch);
      this.inPass(encoder, `${CONVS[block.conv].name} forward`, (pass) =>
        encodeConv2dForward(this.device, pass, shape, { x: input, weight: this.convWeights[i].value, bias: this.convBiases[i].value, y: b.a[i] }),
      );
      if (this.batchNorm) this.bnLayers[i].encodeForward(encoder, { x: b.a[i], y: b.z[i], shape: this.bnShape(i, b.batch), training });
      this.inPass(encoder, `activation_${i + 1} forward`, (pass) => {
        encodeReluForward(this.device, pass, b.batch * this.blockSize(i), { x: b.z[i], y: b.r[i] });
        if (block.pool) encodeMaxPoolForward(this.device, pass, this.poolShape(i, b.batch), { x: b.r[i], y: b.pooled[i], argmax: b.argmax[i]! });
      });
      input = block.pool ? b.pooled[i] : b.r[i];
    });
    this.inPass(encoder, 'dense_2 forward and loss', (pass) => {
      encodeConv2dForward(this.device, pass, this.convShape(3, b.batch), { x: input, weight: this.convWeights[3].value, bias: this.convBiases[3].value, y: b.a[3] });
      encodeSoftmaxCrossEntropy(this.device, pass, { batch: b.batch, classes: CLASSES }, {
        logits: b.a[3],
        labels,
        dlogits: b.dlogits,
        losses: b.losses,
        correct: b.correct,
      });
    });
  }

  private encodeBackward(encoder: GPUCommandEncoder, b: BatchBuffers, x: GPUBuffer): void {
    const inputOf = (conv: number) => (conv === 0 ? x : b.pooled[conv - 1]);
    const convBackward = (pass: GPUComputePassEncoder, conv: number, dy: GPUBuffer) =>
      encodeConv2dBackward(this.device, pass, this.convShape(conv, b.batch), {
        x: inputOf(conv),
        weight: this.convWeights[conv].value,
        dy,
        dweight: this.convWeights[conv].grad,
        dbias: this.convBiases[conv].grad,
        dx: b.dInput[conv] ?? undefined, // none for the images
      });
    this.inPass(encoder, 'dense_2 backward', (pass) => convBackward(pass, 3, b.dlogits));
    for (let i = BLOCKS.length - 1; i >= 0; i--) {
      const block = BLOCKS[i];
      this.inPass(encoder, `activation_${i + 1} backward`, (pass) => {
        // dr[i] is dInput[i + 1] itself when the block has no pooling.
        if (block.pool) encodeMaxPoolBackward(this.device, pass, this.poolShape(i, b.batch), { argmax: b.argmax[i]!, dy: b.dInput[i + 1]!, dx: b.dr[i] });
        encodeReluBackward(this.device, pass, b.batch * this.blockSize(i), { x: b.z[i], dy: b.dr[i], dx: b.dz[i] });
      });
      if (this.batchNorm) this.bnLayers[i].encodeBackward(encoder, { x: b.a[i], dy: b.dz[i], dx: b.da[i], shape: this.bnShape(i, b.batch) });
      this.inPass(encoder, `${CONVS[block.conv].name} backward`, (pass) => convBackward(pass, i, b.da[i]));
    }
  }

  private async readMetrics(b: BatchBuffers, n: number, encoder?: GPUCommandEncoder): Promise<Metrics> {
    const [lossBytes, correctBytes] = await readBuffers(
      this.device,
      [
        { buffer: b.losses, size: n * 4 },
        { buffer: b.correct, size: n * 4 },
      ],
      encoder,
    );
    const losses = new Float32Array(lossBytes);
    const correct = new Uint32Array(correctBytes);
    let loss = 0;
    let right = 0;
    for (let i = 0; i < n; i++) {
      loss += losses[i];
      right += correct[i];
    }
    return { loss: loss / n, accuracy: right / n, samples: n };
  }

  private async readNamed(pick: (p: Parameter) => TensorBuffer): Promise<Record<string, Float32Array>> {
    this.checkUsable();
    const all = this.parameters;
    const bytes = await readBuffers(
      this.device,
      all.map((p) => regionOf(pick(p), p.size * 4)),
    );
    return Object.fromEntries(all.map((p, i) => [p.name, new Float32Array(bytes[i])]));
  }

  private upload(b: BatchBuffers, images: Float32Array, labels: ArrayLike<number>): void {
    this.device.queue.writeBuffer(b.x, 0, images as Float32Array<ArrayBuffer>);
    this.device.queue.writeBuffer(b.labels, 0, Uint32Array.from(labels));
  }

  /** Activation and gradient buffers for `batch` samples, made on first use. */
  private batchBuffers(batch: number, argName: string): BatchBuffers {
    if (!Number.isSafeInteger(batch) || batch < 1) throw new RangeError(`${argName} must be a positive integer; got ${String(batch)}`);
    let b = this.batches.get(batch);
    if (b) return b;
    const make = (name: string, elements: number) =>
      this.ownBuffer(`${this.label} [${batch}] ${name}`, null, elements, Usage.STORAGE | Usage.COPY_SRC | Usage.COPY_DST);
    // dInput[k]: gradient of convolution k's input, the previous block's (pooled) output.
    const dInput = CONVS.map((c, k) => (k === 0 ? null : make(`${c.name} input grad`, batch * c.inChannels * c.size ** 2)));
    const blocks = BLOCKS.map((block, i) => {
      const n = batch * this.blockSize(i);
      const a = make(`${CONVS[i].name} output`, n);
      const da = make(`${CONVS[i].name} output grad`, n);
      // Without BN, the ReLU reads the convolution's output directly.
      const z = this.batchNorm ? make(`batch_normalization_${i + 1} output`, n) : a;
      const dz = this.batchNorm ? make(`batch_normalization_${i + 1} output grad`, n) : da;
      const r = make(`activation_${i + 1} output`, n);
      // Without pooling, the next convolution's input is r itself.
      const dr = block.pool ? make(`activation_${i + 1} output grad`, n) : dInput[i + 1]!;
      const pooled = block.pool ? make(`max_pooling2d_${i + 1} output`, n / 4) : r;
      const argmax = block.pool ? make(`max_pooling2d_${i + 1} argmax`, n / 4) : null;
      return { a, da, z, dz, r, dr, pooled, argmax };
    });
    b = {
      batch,
      x: make('images', batch * IMAGE_SIZE),
      labels: make('labels', batch),
      a: [...blocks.map((k) => k.a), make('dense_2 output', batch * CLASSES)],
      z: blocks.map((k) => k.z),
      r: blocks.map((k) => k.r),
      pooled: blocks.map((k) => k.pooled),
      argmax: blocks.map((k) => k.argmax),
      dInput,
      da: blocks.map((k) => k.da),
      dz: blocks.map((k) => k.dz),
      dr: blocks.map((k) => k.dr),
      dlogits: make('dense_2 output grad', batch * CLASSES),
      losses: make('losses', batch),
      correct: make('correct', batch),
    };
    this.batches.set(batch, b);
    return b;
  }

  /** Values per sample of block i's convolution output. */
  private blockSize(i: number): number {
    const c = CONVS[BLOCKS[i].conv];
    return c.outChannels * (c.size - c.kernel + 1) ** 2;
  }

  private convShape(conv: number, batch: number): Conv2dShape {
    const c = CONVS[conv];
    return { batch, inChannels: c.inChannels, height: c.size, width: c.size, outChannels: c.outChannels, kernelHeight: c.kernel, kernelWidth: c.kernel };
  }

  private bnShape(i: number, batch: number): number[] {
    const c = CONVS[BLOCKS[i].conv];
    const out = c.size - c.kernel + 1;
    return out > 1 ? [batch, c.outChannels, out, out] : [batch, c.outChannels];
  }

  private poolShape(i: number, batch: number) {
    const c = CONVS[BLOCKS[i].conv];
    const out = c.size - c.kernel + 1;
    return { batch, channels: c.outChannels, height: out, width: out, size: 2 };
  }

  private inPass(encoder: GPUCommandEncoder, what: string, record: (pass: GPUComputePassEncoder) => void): void {
    const pass = encoder.beginComputePass({ label: `${this.label} ${what}` });
    record(pass);
    pass.end();
  }

  private parameter(name: string, data: Float32Array): Parameter {
    const zeros = new Float32Array(data.length);
    return {
      name,
      size: data.length,
      value: this.ownBuffer(`${this.label} ${name}`, data),
      grad: this.ownBuffer(`${this.label} ${name} grad`, zeros),
      velocity: this.ownBuffer(`${this.label} ${name} velocity`, zeros),
    };
  }

  private ownBuffer(label: string, data: Float32Array | null, elements = data?.length ?? 0, usage = Usage.STORAGE | Usage.COPY_SRC | Usage.COPY_DST): GPUBuffer {
    const buffer = data
      ? createBufferWithData(this.device, label, data, usage)
      : this.device.createBuffer({ label, size: Math.max(4, elements * 4), usage });
    this.owned.push(buffer);
    return buffer;
  }

  private checkUsable(): void {
    if (this.destroyed) throw new Error(`${this.label} was destroyed; create a new MnistCnn`);
  }
}

/** The batch size of `images` and `labels` after checking that they agree and hold digits. */
function checkSamples(images: Float32Array, labels: ArrayLike<number>): number {
  if (!(images instanceof Float32Array)) throw new TypeError('images must be a Float32Array of 784 pixels per sample');
  if (!labels || typeof labels.length !== 'number') throw new TypeError('labels must be an array of digits 0-9');
  if (images.length !== labels.length * IMAGE_SIZE) {
    throw new RangeError(`images must hold ${IMAGE_SIZE} pixels for each of the ${labels.length} labels (${labels.length * IMAGE_SIZE}); got ${images.length}`);
  }
  for (let i = 0; i < labels.length; i++) {
    const d = labels[i];
    if (!Number.isInteger(d) || d < 0 || d >= CLASSES) throw new RangeError(`labels[${i}] must be a digit 0-9; got ${String(d)}`);
  }
  return labels.length;
}

function checkTrainingBatch(batch: unknown, argName: string): void {
  if (!Number.isSafeInteger(batch) || (batch as number) < 2) {
    throw new RangeError(`${argName} must be an integer ≥ 2 (batch statistics need 2 samples); got ${String(batch)}`);
  }
}
