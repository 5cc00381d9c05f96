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
import { checkBackend, outputTensor, recordOnBackend, sizeOf, tensorBuffer } from './backend.js';
import type { GradConfig, KernelConfig, NamedAttrMap, Tensor, TensorInfo, TfjsNamespace } from './tfjs-types.js';

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

function params<T>(list: readonly T[], first: number, a: LayerNormAttrs) {
  let i = first;
  const gamma = a.scale ? list[i++] : undefined;
  const beta = a.center ? list[i++] : undefined;
  return { gamma, beta };
}

/** The LayerNorm forward kernel, its gradient kernel and the gradient. */
export function layerNormKernels(tf: TfjsNamespace): { kernels: KernelConfig[]; gradient: GradConfig } {
  const forward: KernelConfig = {
    kernelName: LAYERNORM_KERNEL,
    backendName: 'webgpu',
    kernelFunc: ({ inputs, backend, attrs }) => {
      checkBackend(backend);
      const a = attrs as unknown as LayerNormAttrs;
      const list = inputs as unknown as TensorInfo[];
      const x = list[0];
      const { gamma, beta } = params(list, 1, a);
      const { normalizedShape, rows } = split(x.shape, a.normalizedDims);
      const buf = (t: TensorInfo, name: string) => tensorBuffer(backend, t, name);
      const xb = buf(x, 'x');
      const gammaB = gamma && buf(gamma, 'gamma');
      const betaB = beta && buf(beta, 'beta');
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
          ...(gammaB && { gamma: gammaB }),
          ...(betaB && { beta: betaB }),
        }),
      );
      return [y, saved];
    },
  };

  const backward: KernelConfig = {
    kernelName: LAYERNORM_GRAD_KERNEL,
    backendName: 'webgpu',
    kernelFunc: ({ inputs, backend, attrs }) => {
      checkBackend(backend);
      const a = attrs as unknown as LayerNormAttrs;
      const list = inputs as unknown as TensorInfo[];
      const [x, dy, saved] = list;
      const { gamma, beta } = params(list, 3, a);
      const { normalizedShape } = split(x.shape, a.normalizedDims);
      const buf = (t: TensorInfo, name: string) => tensorBuffer(backend, t, name);
      const [xb, dyb, savedB] = [buf(x, 'x'), buf(dy, 'dy'), buf(saved, 'saved')];
      const gammaB = gamma && buf(gamma, 'gamma');
      const betaB = beta && buf(beta, 'beta');
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
          ...(gammaB && { gamma: gammaB }),
          ...(betaB && { beta: betaB }),
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
      const { gamma, beta } = params(saved, 1, a);
      const savedRows = saved[saved.length - 1];
      // One backward pass gives dx, dγ and dβ: run it once, here, and hand out its outputs.
      const grads = tf.engine().runKernel(LAYERNORM_GRAD_KERNEL, [x, dy, savedRows, ...(gamma ? [gamma] : []), ...(beta ? [beta] : [])] as never, attrs as NamedAttrMap) as Tensor[];
      const [dx, ...rest] = grads;
      const d = params(rest, 0, a);
      const out: Record<string, () => Tensor> = { 0: () => dx };
      let i = 1;
      if (d.gamma) out[i++] = () => d.gamma!;
      if (d.beta) out[i++] = () => d.beta!;
      return out;
    },
  };

  return { kernels: [forward, backward], gradient };
}
