/**
 * registerTfjsKernels: installs the adapter's kernels, gradients and layer patches on a `tf`
 * namespace, and returns the function that takes every one of them back out.
 */
import { batchNormKernels, fusedBatchNormKernel, BATCHNORM_GRAD_KERNEL, BATCHNORM_KERNEL } from './batch-norm.js';
import { checkBackend } from './backend.js';
import { layerNormKernels, LAYERNORM_GRAD_KERNEL } from './layer-norm.js';
import { batchNormalizationCall, layerNormalizationCall } from './layers.js';
import { AdapterScratch } from './scratch.js';
import type { GradConfig, KernelConfig, LayerPrototype, TfjsNamespace } from './tfjs-types.js';

/** Options of {@link registerTfjsKernels}. */
export interface TfjsKernelOptions {
  /** Run tf.batchNorm (the FusedBatchNorm kernel) on our inference pass where its parameters are per-channel. Default true. */
  fusedBatchNorm?: boolean;
  /** Patch tf.layers.batchNormalization. Default true (where `tf.layers` is present). */
  batchNormalization?: boolean;
  /** Patch tf.layers.layerNormalization. Default true (where `tf.layers` is present). */
  layerNormalization?: boolean;
  /**
   * What a training batch whose statistics are not finite does to a BatchNormalization layer's
   * moving statistics: 'update' (default) folds the NaN in, as plain TF.js does; 'skip' leaves
   * them unchanged.
   */
  nonFiniteBatches?: 'skip' | 'update';
}

const OPTION_NAMES = ['fusedBatchNorm', 'batchNormalization', 'layerNormalization', 'nonFiniteBatches'];
const FUSED_BATCH_NORM = 'FusedBatchNorm';
const TF_MEMBERS = ['registerKernel', 'unregisterKernel', 'getKernel', 'registerGradient', 'unregisterGradient', 'getGradient', 'engine', 'env', 'tidy', 'add', 'mul', 'rsqrt', 'getBackend', 'findBackend'] as const;

function checkOptions(options: unknown): Required<TfjsKernelOptions> & { layersGiven: boolean } {
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw new TypeError(`registerTfjsKernels: options must be an object { ${OPTION_NAMES.join(', ')} }; got ${String(options)}`);
  }
  const o = options as Record<string, unknown>;
  for (const key of Object.keys(o)) {
    if (!OPTION_NAMES.includes(key)) throw new TypeError(`registerTfjsKernels: options.${key} is not an option; the options are ${OPTION_NAMES.join(', ')}`);
  }
  for (const key of ['fusedBatchNorm', 'batchNormalization', 'layerNormalization']) {
    if (o[key] !== undefined && typeof o[key] !== 'boolean') throw new TypeError(`registerTfjsKernels: options.${key} must be true or false; got ${String(o[key])}`);
  }
  if (o.nonFiniteBatches !== undefined && o.nonFiniteBatches !== 'skip' && o.nonFiniteBatches !== 'update') {
    throw new TypeError(`registerTfjsKernels: options.nonFiniteBatches must be 'skip' or 'update'; got ${String(o.nonFiniteBatches)}`);
  }
  return {
    fusedBatchNorm: (o.fusedBatchNorm as boolean | undefined) ?? true,
    batchNormalization: (o.batchNormalization as boolean | undefined) ?? true,
    layerNormalization: (o.layerNormalization as boolean | undefined) ?? true,
    nonFiniteBatches: (o.nonFiniteBatches as 'skip' | 'update' | undefined) ?? 'update',
    layersGiven: o.batchNormalization !== undefined || o.layerNormalization !== undefined,
  };
}

function checkTf(tf: unknown): asserts tf is TfjsNamespace {
  const t = tf as Partial<Record<string, unknown>> | null;
  if (!t || typeof t !== 'object') throw new TypeError(`registerTfjsKernels: tf must be the @tensorflow/tfjs namespace (import * as tf from '@tensorflow/tfjs'); got ${String(tf)}`);
  const missing = TF_MEMBERS.filter((name) => typeof t[name] !== 'function');
  if (missing.length > 0) {
    throw new TypeError(`registerTfjsKernels: tf must be the @tensorflow/tfjs namespace (import * as tf from '@tensorflow/tfjs'); it lacks ${missing.join(', ')}`);
  }
}

/** The prototype of a tf.layers class, from an instance its factory makes. */
function layerPrototype(factory: (args?: object) => object, className: string): LayerPrototype {
  const proto = Object.getPrototypeOf(factory({})) as LayerPrototype;
  if (typeof proto?.call !== 'function' || proto.constructor?.className !== className) {
    throw new Error(`webgpu-batchnorm/tfjs: tf.layers has no ${className} class with a call method to patch (written against @tensorflow/tfjs-layers 4.22)`);
  }
  return proto;
}

/**
 * Puts the library's kernels inside TF.js's `webgpu` backend (see the module comments of
 * batch-norm.ts, layer-norm.ts and layers.ts): a BatchNorm training and inference kernel with
 * its gradient, a LayerNorm kernel with its gradient, FusedBatchNorm (tf.batchNorm) on our
 * inference pass where its parameters are per-channel, and tf.layers' BatchNormalization and
 * LayerNormalization running them. Models built before or after the call use them.
 *
 * @param tf the `@tensorflow/tfjs` namespace, with `@tensorflow/tfjs-backend-webgpu` imported
 *   (or tfjs-core's namespace plus `layers`).
 * @returns `uninstall()`, which restores every kernel, gradient and prototype it changed.
 */
export function registerTfjsKernels(tf: TfjsNamespace, options: TfjsKernelOptions = {}): () => void {
  checkTf(tf);
  const o = checkOptions(options);
  if (tf.getKernel(BATCHNORM_KERNEL, 'webgpu')) {
    throw new Error('registerTfjsKernels: the kernels are already registered on this tf; call the uninstall() the first call returned before registering again');
  }
  const originalFused = tf.getKernel(FUSED_BATCH_NORM, 'webgpu') as KernelConfig | undefined;
  if (!originalFused) {
    throw new Error("registerTfjsKernels: TF.js's webgpu backend is not loaded on this tf: import '@tensorflow/tfjs-backend-webgpu' (in Node, see useDeviceForTfjs) first");
  }
  const current = tf.findBackend('webgpu');
  if (current) checkBackend(current);
  const layers = tf.layers;
  if (o.layersGiven && !layers && (o.batchNormalization || o.layerNormalization)) {
    throw new Error('registerTfjsKernels: options ask for the tf.layers patches, but tf has no layers: pass the @tensorflow/tfjs namespace');
  }

  const scratch = new AdapterScratch();
  const undo: (() => void)[] = [];
  const register = (k: KernelConfig) => {
    tf.registerKernel(k);
    undo.push(() => tf.unregisterKernel(k.kernelName, k.backendName));
  };
  const registerGradient = (g: GradConfig) => {
    tf.registerGradient(g);
    undo.push(() => tf.unregisterGradient(g.kernelName));
  };
  for (const { kernels, gradient } of [batchNormKernels(tf, scratch), layerNormKernels(tf)]) {
    kernels.forEach(register);
    registerGradient(gradient);
  }
  // A gradient of our gradient kernels would be a second-order gradient: say so, rather than
  // TF.js's "gradient function not found".
  for (const [kernelName, layer] of [
    [BATCHNORM_GRAD_KERNEL, 'BatchNormalization'],
    [LAYERNORM_GRAD_KERNEL, 'LayerNormalization'],
  ]) {
    registerGradient({
      kernelName,
      gradFunc: () => {
        throw new Error(`webgpu-batchnorm/tfjs: no second-order gradient through ${layer} (a gradient of its gradient); compute it with plain TF.js, after uninstall()`);
      },
    });
  }
  if (o.fusedBatchNorm) {
    tf.unregisterKernel(FUSED_BATCH_NORM, 'webgpu');
    tf.registerKernel(fusedBatchNormKernel(tf, originalFused, scratch));
    undo.push(() => {
      tf.unregisterKernel(FUSED_BATCH_NORM, 'webgpu');
      tf.registerKernel(originalFused);
    });
  }
  const patch = (proto: LayerPrototype, call: LayerPrototype['call']) => {
    const original = proto.call;
    proto.call = call;
    undo.push(() => {
      proto.call = original;
    });
  };
  if (layers && o.batchNormalization) {
    const proto = layerPrototype(layers.batchNormalization, 'BatchNormalization');
    patch(proto, batchNormalizationCall(tf, proto.call, o.nonFiniteBatches));
  }
  if (layers && o.layerNormalization) {
    const proto = layerPrototype(layers.layerNormalization, 'LayerNormalization');
    patch(proto, layerNormalizationCall(tf, proto.call));
  }

  let installed = true;
  return function uninstall(): void {
    if (!installed) return;
    installed = false;
    for (const step of undo.reverse()) step();
    // The scratch may be in commands TF.js has recorded but not submitted: submit them first
    // (destroying a buffer of a submitted command buffer is fine, of an unsubmitted one not).
    const backend = tf.findBackend('webgpu') as { commandEncoder?: unknown; submitQueue?: () => void } | null;
    if (backend?.commandEncoder && typeof backend.submitQueue === 'function') {
      (backend as { endComputePassEncoder?: () => void }).endComputePassEncoder?.();
      backend.submitQueue();
    }
    scratch.destroy();
  };
}
