/**
 * LayerNorm as TF.js kernels on its webgpu backend, running encodeLayerNormForward/Backward on
 * TF.js's device, buffers and command encoder (instead of the four full-size tiled tensors of
 * mean, variance, γ and β that tf.layers.layerNormalization builds for tf.batchNorm):
 *
 * - `webgpu-batchnorm/LayerNorm`: inputs [x, gamma?, beta?] (γ and β over the trailing
 *   `normalizedDims` axes, absent where `scale` or `center` is false) → [y, saved], `saved`
 *   (4 float32 per normalized row) being what the backward pass reads;
 * - `webgpu-batchnorm/LayerNormGrad`, wired with registerGradient: [dx, dγ?, dβ?] in one pass.
 */
import { encodeLayerNormBackward, encodeLayerNormForward, NORM_SAVED_BYTES_PER_GROUP } from '../index.js';
import { kernelInputs, optionalParams, outputTensor, recordOnBackend, runGradKernel, sizeOf } from './backend.js';
import type { GradConfig, KernelConfig, Tensor, TensorInfo, TfjsNamespace } from './tfjs-types.js';

export const LAYERNORM_KERNEL = 'webgpu-batchnorm/LayerNorm';
export const LAYERNORM_GRAD_KERNEL = 'webgpu-batchnorm/LayerNormGrad';

/** The attributes of the LayerNorm kernels. */
export interface LayerNormAttrs {
  /** How many trailing axes are normalized (1 ≤ normalizedDims ≤ rank). */
  normalizedDims: number;
  epsilon: number;
  scale: boolean;
  center: boolean;
}

function split(shape: readonly number[], normalizedDims: number) {
  const normalizedShape = shape.slice(shape.length - normalizedDims);
  return { normalizedShape, rows: sizeOf(shape) / Math.max(1, sizeOf(normalizedShape)) };
}

/** The LayerNorm forward kernel, its gradient kernel and the gradient. */
export function layerNormKernels(tf: TfjsNamespace): { kernels: KernelConfig[]; gradient: GradConfig } {
  const forward: KernelConfig = {
    kernelName: LAYERNORM_KERNEL,
    backendName: 'webgpu',
    kernelFunc: ({ inputs, backend: b, attrs }) => {
      const a = attrs as unknown as LayerNormAttrs;
      const { backend, list, buf, params } = kernelInputs(b, inputs, a, 1);
      const x = list[0];
      const { normalizedShape, rows } = split(x.shape, a.normalizedDims);
      const xb = buf(x, 'x');
      const y = outputTensor(backend, x.shape);
      const saved = outputTensor(backend, [(rows * NORM_SAVED_BYTES_PER_GROUP) / 4]);
      recordOnBackend(tf, backend, list, [y, saved], (encoder) =>
        encodeLayerNormForward(backend.device, encoder, {
          x: xb,
          y: buf(y, 'y'),
          shape: x.shape,
          saved: buf(saved, 'saved'),
          normalizedShape,
          eps: a.epsilon,
          ...params,
        }),
      );
      return [y, saved];
    },
  };

  const backward: KernelConfig = {
    kernelName: LAYERNORM_GRAD_KERNEL,
    backendName: 'webgpu',
    kernelFunc: ({ inputs, backend: b, attrs }) => {
      const a = attrs as unknown as LayerNormAttrs;
      const { backend, list, buf, gamma, beta, params } = kernelInputs(b, inputs, a, 3);
      const [x, dy, saved] = list;
      const { normalizedShape } = split(x.shape, a.normalizedDims);
      const [xb, dyb, savedB] = [buf(x, 'x'), buf(dy, 'dy'), buf(saved, 'saved')];
      const dx = outputTensor(backend, x.shape);
      const dgamma = gamma ? outputTensor(backend, gamma.shape) : null;
      const dbeta = beta ? outputTensor(backend, beta.shape) : null;
      const outputs = [dx, dgamma, dbeta].filter((t): t is TensorInfo => t !== null);
      recordOnBackend(tf, backend, list, outputs, (encoder) =>
        encodeLayerNormBackward(backend.device, encoder, {
          x: xb,
          dy: dyb,
          dx: buf(dx, 'dx'),
          shape: x.shape,
          saved: savedB,
          normalizedShape,
          eps: a.epsilon,
          ...params,
          ...(dgamma && { dgamma: buf(dgamma, 'dγ') }),
          ...(dbeta && { dbeta: buf(dbeta, 'dβ') }),
        }),
      );
      return outputs;
    },
  };

  const gradient: GradConfig = {
    kernelName: LAYERNORM_KERNEL,
    saveAllInputs: true,
    outputsToSave: [false, true],
    gradFunc: (dys, saved, attrs) => {
      const a = attrs as unknown as LayerNormAttrs;
      const dy = (Array.isArray(dys) ? dys[0] : dys) as Tensor;
      const x = saved[0];
      const { gamma, beta } = optionalParams(saved, 1, a);
      const [dx, ...rest] = runGradKernel(tf, LAYERNORM_GRAD_KERNEL, [x, dy, saved[saved.length - 1]], gamma, beta, attrs);
      const d = optionalParams(rest, 0, a);
      const out: Record<string, () => Tensor> = { 0: () => dx };
      let i = 1;
      if (d.gamma) out[i++] = () => d.gamma!;
      if (d.beta) out[i++] = () => d.beta!;
      return out;
    },
  };

  return { kernels: [forward, backward], gradient };
}
