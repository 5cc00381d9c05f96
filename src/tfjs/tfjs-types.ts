/**
 * The parts of TF.js the adapter uses, as types only: the adapter takes the caller's `tf`
 * namespace as an argument and never imports a copy of tfjs-core (two copies would keep two
 * kernel registries, and TF.js would never see our kernels).
 */
import type * as tfc from '@tensorflow/tfjs-core';

export type { Tensor, TensorInfo, KernelConfig, GradConfig, NamedAttrMap } from '@tensorflow/tfjs-core';

/** A tf.layers class's prototype as the adapter patches it: its `call`. */
export interface LayerPrototype {
  call: (this: unknown, inputs: unknown, kwargs: Record<string, unknown>) => unknown;
  constructor: { className?: string };
}

/**
 * What `registerTfjsKernels` and `useDeviceForTfjs` need of `tf`: the `@tensorflow/tfjs` namespace
 * (or `@tensorflow/tfjs-core`'s, with `layers` from `@tensorflow/tfjs-layers` for the layer patches).
 */
export type TfjsNamespace = Pick<
  typeof tfc,
  | 'registerKernel'
  | 'unregisterKernel'
  | 'getKernel'
  | 'registerGradient'
  | 'unregisterGradient'
  | 'getGradient'
  | 'engine'
  | 'env'
  | 'tidy'
  | 'add'
  | 'mul'
  | 'rsqrt'
  | 'findBackend'
  | 'findBackendFactory'
  | 'registerBackend'
  | 'removeBackend'
  | 'setBackend'
  | 'getBackend'
  | 'ready'
> & {
  /** tf.layers: its BatchNormalization and LayerNormalization are patched where present. */
  layers?: {
    batchNormalization(args?: object): object;
    layerNormalization(args?: object): object;
  };
};
