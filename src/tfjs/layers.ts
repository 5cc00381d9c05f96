/**
 * The tf.layers patches: BatchNormalization's and LayerNormalization's `call` run our kernels on
 * the webgpu backend, and the layer's own `call` (plain TF.js) everywhere else: another backend,
 * an input that is not float32, an empty batch, an epsilon or momentum the library refuses, a
 * training batch with one value per channel, or a LayerNormalization whose axes are not the
 * trailing ones.
 *
 * BatchNormalization, any axis: training normalizes with the batch statistics and writes the
 * moving mean and variance our kernel updated (Keras's momentum, biased variance) back to the
 * layer's variables; inference normalizes with them. `scale: false` and `center: false` train
 * (plain TF.js 4.22 reads the missing γ/β and throws), as does axis 1 (its gradient throws
 * "Size(…) must match the product of shape 1,C,1,1").
 */
import { BATCHNORM_KERNEL, supportedAttrs, type BatchNormAttrs } from './batch-norm.js';
import { LAYERNORM_KERNEL, type LayerNormAttrs } from './layer-norm.js';
import type { LayerPrototype, NamedAttrMap, Tensor, TfjsNamespace } from './tfjs-types.js';

/** A tf.layers variable, as the patches use it. */
interface LayerVariable {
  read(): Tensor;
  write(value: Tensor): unknown;
}

/** The fields of a built BatchNormalization layer the patch reads. */
interface BatchNormalizationLayer {
  axis: number;
  momentum: number;
  epsilon: number;
  center: boolean;
  scale: boolean;
  gamma?: LayerVariable;
  beta?: LayerVariable;
  movingMean: LayerVariable;
  movingVariance: LayerVariable;
}

/** The fields of a built LayerNormalization layer the patch reads. */
interface LayerNormalizationLayer {
  axis: number | number[];
  epsilon: number;
  center: boolean;
  scale: boolean;
  gamma?: LayerVariable | null;
  beta?: LayerVariable | null;
}

/** The one input tensor of a layer call, or null where there is not exactly one. */
function oneTensor(inputs: unknown): Tensor | null {
  const t = Array.isArray(inputs) ? (inputs.length === 1 ? inputs[0] : null) : inputs;
  const shape = (t as Partial<Tensor> | null)?.shape;
  return t && Array.isArray(shape) ? (t as Tensor) : null;
}

/** Whether our kernels can take `x` on the current backend. */
function onWebGPU(tf: TfjsNamespace, x: Tensor): boolean {
  return tf.getBackend() === 'webgpu' && x.dtype === 'float32' && x.size > 0;
}

/** BatchNormalization.prototype.call running our BatchNorm kernel. */
export function batchNormalizationCall(tf: TfjsNamespace, original: LayerPrototype['call'], nonFiniteBatches: 'skip' | 'update'): LayerPrototype['call'] {
  return function call(this: unknown, inputs, kwargs) {
    const layer = this as BatchNormalizationLayer;
    const x = oneTensor(inputs);
    const rank = x?.shape.length ?? 0;
    const axis = layer.axis >= 0 ? layer.axis : layer.axis + rank;
    const attrs: BatchNormAttrs = {
      axis,
      epsilon: layer.epsilon,
      momentum: layer.momentum,
      scale: layer.scale,
      center: layer.center,
      // Truthy, as TF.js's own call reads it.
      training: Boolean(kwargs?.training),
      nonFiniteBatches,
    };
    if (!x || !onWebGPU(tf, x) || axis < 0 || axis >= rank || !supportedAttrs(attrs)) return original.call(this, inputs, kwargs);
    // One value per channel (a last batch of one sample): the library refuses to train on it, as
    // PyTorch does; TF.js normalizes it to β.
    if (attrs.training && x.size === x.shape[axis]) return original.call(this, inputs, kwargs);
    return tf.tidy(() => {
      const list = [x, layer.movingMean.read(), layer.movingVariance.read()];
      if (layer.scale) list.push(layer.gamma!.read());
      if (layer.center) list.push(layer.beta!.read());
      const out = tf.engine().runKernel(BATCHNORM_KERNEL, list as never, attrs as unknown as NamedAttrMap) as Tensor[];
      if (attrs.training) {
        layer.movingMean.write(out[2]);
        layer.movingVariance.write(out[3]);
      }
      return out[0];
    });
  };
}

/** LayerNormalization.prototype.call running our LayerNorm kernel where its axes are the trailing ones. */
export function layerNormalizationCall(tf: TfjsNamespace, original: LayerPrototype['call']): LayerPrototype['call'] {
  return function call(this: unknown, inputs, kwargs) {
    const layer = this as LayerNormalizationLayer;
    const x = oneTensor(inputs);
    const rank = x?.shape.length ?? 0;
    const axes = [...new Set(([] as number[]).concat(layer.axis).map((a) => (a < 0 ? a + rank : a)))].sort((p, q) => p - q);
    const trailing = axes.length > 0 && axes.every((a, i) => a === rank - axes.length + i);
    const attrs: LayerNormAttrs = { normalizedDims: axes.length, epsilon: layer.epsilon, scale: layer.scale, center: layer.center };
    if (!x || !onWebGPU(tf, x) || !trailing || !supportedAttrs({ epsilon: layer.epsilon, momentum: 0 })) return original.call(this, inputs, kwargs);
    return tf.tidy(() => {
      const list = [x];
      if (layer.scale) list.push(layer.gamma!.read());
      if (layer.center) list.push(layer.beta!.read());
      return (tf.engine().runKernel(LAYERNORM_KERNEL, list as never, attrs as unknown as NamedAttrMap) as Tensor[])[0];
    });
  };
}
