/**
 * Batch norm as TF.js kernels on its webgpu backend, running the library's function forms
 * (encodeBatchNormForward/Backward) on TF.js's device, buffers and command encoder:
 *
 * - `webgpu-batchnorm/BatchNorm`: inputs [x, movingMean, movingVariance, gamma?, beta?] (an
 *   array: γ and β are absent where fixed, and TF.js saves inputs for the gradient by name only
 *   when all are present). Training: outputs [y, saved, newMovingMean, newMovingVariance], the
 *   batch statistics folded into copies of the moving ones by our running-statistics kernel
 *   (Keras momentum, biased variance). Inference: [y, saved], normalized with the moving ones.
 *   `saved` (8 float32 per channel) is what the backward pass reads.
 * - `webgpu-batchnorm/BatchNormGrad`, wired with registerGradient: [dx, dγ, dβ] in one pass (at
 *   inference the gradient of the moving statistics follows from dγ and dβ).
 * - `FusedBatchNorm` (tf.batchNorm) for inference where mean, variance, scale and offset are
 *   per-channel over one axis; anything else goes to the kernel it replaced.
 *
 * Every layout is a view [outer, C, inner]: the last axis is layout NC over [M, C], any other
 * axis NCL over [outer, C, inner] (axis 1 of NCHW is NCL over [N, C, H·W]).
 */
import { encodeBatchNormBackward, encodeBatchNormForward, kerasOptions, SAVED_BYTES_PER_FEATURE, type BatchNormFunctionOptions } from '../index.js';
import { checkBackend, inGPUBuffers, kernelInputs, optionalParams, outputTensor, paramBuffers, recordOnBackend, runGradKernel, sizeOf, tensorBuffer, type WebGPUBackendLike } from './backend.js';
import type { AdapterScratch } from './scratch.js';
import type { GradConfig, KernelConfig, Tensor, TensorInfo, TfjsNamespace } from './tfjs-types.js';

export const BATCHNORM_KERNEL = 'webgpu-batchnorm/BatchNorm';
export const BATCHNORM_GRAD_KERNEL = 'webgpu-batchnorm/BatchNormGrad';
const FLOATS_PER_SAVED = SAVED_BYTES_PER_FEATURE / 4;

/** The attributes of the BatchNorm kernels. */
export interface BatchNormAttrs {
  /** The channel axis, 0 ≤ axis < rank. */
  axis: number;
  epsilon: number;
  /** Keras's momentum: the weight of the old moving value. */
  momentum: number;
  scale: boolean;
  center: boolean;
  training: boolean;
  nonFiniteBatches: 'skip' | 'update';
}

/** The [outer, C, inner] view of `shape` around `axis` as the function forms take it: layout and shape. */
function axisView(shape: readonly number[], axis: number): { layout: 'NC' | 'NCL'; shape: number[]; C: number } {
  const C = shape[axis];
  const outer = sizeOf(shape.slice(0, axis));
  const inner = sizeOf(shape.slice(axis + 1));
  return inner === 1 ? { layout: 'NC', shape: [outer, C], C } : { layout: 'NCL', shape: [outer, C, inner], C };
}

/** The function forms' options for `attrs` on a view of `C` channels in `layout`: Keras's semantics through the kerasOptions preset. */
function functionOptions(attrs: BatchNormAttrs, layout: 'NC' | 'NCL', C: number): BatchNormFunctionOptions {
  const o = kerasOptions({
    numFeatures: C,
    rank: layout === 'NC' ? 2 : 3,
    axis: layout === 'NC' ? -1 : 1,
    momentum: attrs.momentum,
    epsilon: attrs.epsilon,
    center: attrs.center,
    scale: attrs.scale,
  });
  return { ...o, nonFiniteBatches: attrs.nonFiniteBatches };
}

/** Whether the library takes these attributes (else the layer keeps TF.js's own path). */
export function supportedAttrs(attrs: Pick<BatchNormAttrs, 'epsilon' | 'momentum'>): boolean {
  return Number.isFinite(attrs.epsilon) && attrs.epsilon > 0 && Number.isFinite(attrs.momentum) && attrs.momentum >= 0 && attrs.momentum <= 1;
}

/**
 * The state buffers a forward pass takes but TF.js has no tensor for: numBatchesTracked (Keras's
 * momentum never reads it) and dγ/dβ (a forward pass does not write them).
 */
function forwardScratch(scratch: AdapterScratch, device: GPUDevice, C: number) {
  return {
    numBatchesTracked: scratch.get(device, 'numBatchesTracked', 4),
    gammaGrad: scratch.get(device, 'unused dγ', C * 4),
    betaGrad: scratch.get(device, 'unused dβ', C * 4),
  };
}

/** The BatchNorm forward kernel and its gradient kernel. */
export function batchNormKernels(tf: TfjsNamespace, scratch: AdapterScratch): { kernels: KernelConfig[]; gradient: GradConfig } {
  const forward: KernelConfig = {
    kernelName: BATCHNORM_KERNEL,
    backendName: 'webgpu',
    kernelFunc: ({ inputs, backend: b, attrs }) => {
      const a = attrs as unknown as BatchNormAttrs;
      const { backend, list, buf, params } = kernelInputs(b, inputs, a, 3);
      const [x, movingMean, movingVariance] = list;
      const view = axisView(x.shape, a.axis);
      const device = backend.device;
      const [xb, meanB, varB] = [buf(x, 'x'), buf(movingMean, 'movingMean'), buf(movingVariance, 'movingVariance')];
      const y = outputTensor(backend, x.shape);
      const saved = outputTensor(backend, [view.C * FLOATS_PER_SAVED]);
      const outputs = a.training ? [y, saved, outputTensor(backend, [view.C]), outputTensor(backend, [view.C])] : [y, saved];
      const [yb, savedB] = [buf(y, 'y'), buf(saved, 'saved')];
      recordOnBackend(tf, backend, list, outputs, (encoder) => {
        let runningMean = meanB;
        let runningVar = varB;
        if (a.training) {
          // The moving statistics are inputs (tensors are immutable): the update goes into copies.
          runningMean = buf(outputs[2], 'newMovingMean');
          runningVar = buf(outputs[3], 'newMovingVariance');
          encoder.copyBufferToBuffer(meanB.buffer, 0, runningMean.buffer, 0, view.C * 4);
          encoder.copyBufferToBuffer(varB.buffer, 0, runningVar.buffer, 0, view.C * 4);
        }
        encodeBatchNormForward(device, encoder, {
          x: xb,
          y: yb,
          shape: view.shape,
          training: a.training,
          buffers: {
            ...params,
            runningMean,
            runningVar,
            ...forwardScratch(scratch, device, view.C),
            saved: savedB,
          },
          options: functionOptions(a, view.layout, view.C),
        });
      });
      return outputs;
    },
  };

  const backward: KernelConfig = {
    kernelName: BATCHNORM_GRAD_KERNEL,
    backendName: 'webgpu',
    kernelFunc: ({ inputs, backend: b, attrs }) => {
      const a = attrs as unknown as BatchNormAttrs;
      const { backend, list, buf, params } = kernelInputs(b, inputs, a, 3);
      const [x, dy, saved] = list;
      const view = axisView(x.shape, a.axis);
      const device = backend.device;
      const [xb, dyb, savedB] = [buf(x, 'x'), buf(dy, 'dy'), buf(saved, 'saved')];
      // dγ and dβ always: the inference gradient of the moving statistics is made of them.
      const outputs = [outputTensor(backend, x.shape), outputTensor(backend, [view.C]), outputTensor(backend, [view.C])];
      const [dx, dgamma, dbeta] = outputs;
      recordOnBackend(tf, backend, list, outputs, (encoder) => {
        encodeBatchNormBackward(device, encoder, {
          x: xb,
          dy: dyb,
          dx: buf(dx, 'dx'),
          shape: view.shape,
          buffers: {
            ...params,
            runningMean: scratch.get(device, 'unread running mean', view.C * 4),
            runningVar: scratch.get(device, 'unread running variance', view.C * 4),
            numBatchesTracked: scratch.get(device, 'numBatchesTracked', 4),
            gammaGrad: buf(dgamma, 'dγ'),
            betaGrad: buf(dbeta, 'dβ'),
            saved: savedB,
          },
          options: functionOptions(a, view.layout, view.C),
        });
      });
      return outputs;
    },
  };

  const gradient: GradConfig = {
    kernelName: BATCHNORM_KERNEL,
    saveAllInputs: true,
    outputsToSave: [false, true],
    gradFunc: (dys, saved, attrs) => {
      const a = attrs as unknown as BatchNormAttrs;
      const dy = (Array.isArray(dys) ? dys[0] : dys) as Tensor;
      const [x, movingMean, movingVariance] = saved;
      const { gamma, beta } = optionalParams(saved, 3, a);
      const [dx, dgamma, dbeta] = runGradKernel(tf, BATCHNORM_GRAD_KERNEL, [x, dy, saved[saved.length - 1]], gamma, beta, attrs);
      // In training, the moving statistics do not reach y.
      const zeros = (t: Tensor) => () => tf.engine().runKernel('ZerosLike', { x: t }) as Tensor;
      const out: Record<string, () => Tensor> = { 0: () => dx, 1: zeros(movingMean), 2: zeros(movingVariance) };
      if (!a.training) {
        // At inference y = γ·(x − μ)·s + β with s = 1/sqrt(σ² + ε) from the moving statistics:
        // dL/dμ = −γ·s·Σdy = −γ·s·dβ and dL/dσ² = −½·γ·s²·Σdy·x̂ = −½·γ·s²·dγ.
        const s = () => tf.rsqrt(tf.add(movingVariance, a.epsilon));
        const gs = () => (gamma ? tf.mul(gamma, s()) : s());
        out[1] = () => tf.mul(gs(), tf.mul(dbeta, -1));
        out[2] = () => tf.mul(tf.mul(gs(), s()), tf.mul(dgamma, -0.5));
      }
      let i = 3;
      if (gamma) out[i++] = () => dgamma;
      if (beta) out[i++] = () => dbeta;
      return out;
    },
  };

  return { kernels: [forward, backward], gradient };
}

/**
 * The channel axis of per-channel parameters `params` of an input of shape `xShape` (tf.batchNorm
 * hands its kernel x as 4D): each broadcasts (aligned right, as TF.js broadcasts) to 1 on every
 * axis but one axis k, where it has xShape[k] entries ([C] for the last axis, [1, C, 1, 1] for
 * axis 1); null where they are anything else (elementwise, scalars, or along different axes).
 */
export function perChannelAxis(xShape: readonly number[], params: readonly (readonly number[])[]): number | null {
  const rank = xShape.length;
  let axis: number | null = null;
  for (const p of params) {
    if (p.length > rank) return null;
    const aligned = [...Array(rank - p.length).fill(1), ...p] as number[];
    const wide = aligned.flatMap((d, i) => (d !== 1 ? [i] : []));
    // A scalar (or all ones) is no channel axis: left to TF.js.
    const a = wide.length === 1 ? wide[0] : -1;
    if (a < 0 || aligned[a] !== xShape[a] || (axis !== null && a !== axis)) return null;
    axis = a;
  }
  return axis;
}

/**
 * FusedBatchNorm (tf.batchNorm) on our inference pass where its parameters are per-channel;
 * `original` (the kernel it replaced) otherwise. Its gradient stays TF.js's (registered by name,
 * from the saved inputs).
 */
export function fusedBatchNormKernel(tf: TfjsNamespace, original: KernelConfig, scratch: AdapterScratch): KernelConfig {
  return {
    ...original,
    kernelFunc: (args) => {
      const { inputs, backend, attrs } = args;
      const { x, mean, variance, scale, offset } = inputs as Record<string, TensorInfo | null | undefined>;
      const epsilon = Number((attrs as { varianceEpsilon?: number }).varianceEpsilon);
      const params = [mean, variance, scale, offset].filter((t): t is TensorInfo => t != null);
      const axis = x && mean && variance ? perChannelAxis(x.shape, params.map((t) => t.shape)) : null;
      checkBackend(backend);
      // One tensor passed twice (tf.batchNorm(x, s, s, s, s)) is one buffer, which the function
      // forms refuse to bind twice: TF.js's own kernel takes it.
      const shared = new Set([x, ...params].map((t) => t?.dataId)).size !== params.length + 1;
      if (axis === null || shared || !supportedAttrs({ epsilon, momentum: 0 }) || sizeOf(x!.shape) === 0 || !inGPUBuffers(backend, [x!, ...params])) {
        return original.kernelFunc(args);
      }
      return inference(tf, backend, scratch, { x: x!, mean: mean!, variance: variance!, scale, offset, axis, epsilon });
    },
  };
}

function inference(
  tf: TfjsNamespace,
  backend: WebGPUBackendLike,
  scratch: AdapterScratch,
  t: { x: TensorInfo; mean: TensorInfo; variance: TensorInfo; scale?: TensorInfo | null; offset?: TensorInfo | null; axis: number; epsilon: number },
): TensorInfo {
  const view = axisView(t.x.shape, t.axis);
  const device = backend.device;
  const buf = (u: TensorInfo, name: string) => tensorBuffer(backend, u, name);
  const attrs: BatchNormAttrs = { axis: t.axis, epsilon: t.epsilon, momentum: 0.99, scale: !!t.scale, center: !!t.offset, training: false, nonFiniteBatches: 'update' };
  const [xb, meanB, varB] = [buf(t.x, 'x'), buf(t.mean, 'mean'), buf(t.variance, 'variance')];
  const y = outputTensor(backend, t.x.shape);
  const inputs = [t.x, t.mean, t.variance, ...(t.scale ? [t.scale] : []), ...(t.offset ? [t.offset] : [])];
  recordOnBackend(tf, backend, inputs, [y], (encoder) =>
    encodeBatchNormForward(device, encoder, {
      x: xb,
      y: buf(y, 'y'),
      shape: view.shape,
      training: false,
      buffers: {
        ...paramBuffers(buf, t.scale, t.offset),
        runningMean: meanB,
        runningVar: varB,
        ...forwardScratch(scratch, device, view.C),
        saved: scratch.get(device, 'unused saved', view.C * SAVED_BYTES_PER_FEATURE),
      },
      options: functionOptions(attrs, view.layout, view.C),
    }),
  );
  return y;
}
