/**
 * webgpu-batchnorm/tfjs over time and at its edges:
 * - 100 training steps of a BatchNormalization and of a LayerNormalization model with the adapter:
 *   tf.memory()'s numTensors and numDataIds do not grow, neither do TF.js's GPU bytes nor the
 *   number of buffers the library created after warm-up, and no uncaptured GPU error occurs;
 * - two models trained at once (fits not awaited in turn) end as each does trained alone;
 * - uninstall() restores every kernel, gradient and prototype (identical objects), after which
 *   no pass of ours runs and plain TF.js's failures are back;
 * - the guard: a webgpu backend without a member the adapter relies on fails loudly, naming it,
 *   at install and at the next call; bad arguments to registerTfjsKernels and useDeviceForTfjs
 *   are refused with the argument named;
 * - plain TF.js where ours does not apply (another backend, LayerNormalization over a leading
 *   axis, epsilon 0, a training batch of one sample), `training: 1` read as TF.js reads it, a
 *   second-order gradient refused with its reason, and nonFiniteBatches: 'update' (TF.js's NaN)
 *   and 'skip' (unchanged).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerTfjsKernels, useDeviceForTfjs } from '../../src/tfjs/index.js';
import { checkBackend } from '../../src/tfjs/backend.js';
import { expectClose, randn } from '../helpers/data.js';
import { ourPasses, tf, tfjsOnDevice, values } from './setup.js';

let device: GPUDevice;
let gpuErrors: string[];

beforeAll(async () => {
  ({ device, gpuErrors } = await tfjsOnDevice());
});

afterAll(() => {
  expect(gpuErrors, 'uncaptured GPU errors').toEqual([]);
});

function convModel() {
  const m = tf.sequential();
  m.add(tf.layers.conv2d({ inputShape: [6, 6, 2], filters: 3, kernelSize: 3, useBias: false }));
  m.add(tf.layers.batchNormalization({}));
  m.add(tf.layers.reLU());
  m.add(tf.layers.flatten());
  m.add(tf.layers.dense({ units: 2 }));
  return m;
}

function layerNormModel() {
  const m = tf.sequential();
  m.add(tf.layers.dense({ inputShape: [8], units: 6 }));
  m.add(tf.layers.layerNormalization({}));
  m.add(tf.layers.dense({ units: 2 }));
  return m;
}

/** Counts the buffers the library creates (every one labelled 'webgpu-batchnorm…'; TF.js labels none) while installed. */
function countBuffers() {
  const create = device.createBuffer;
  let count = 0;
  device.createBuffer = function (this: GPUDevice, d: GPUBufferDescriptor) {
    if (d.label?.startsWith('webgpu-batchnorm')) count++;
    return create.call(this, d);
  };
  return { count: () => count, restore: () => (device.createBuffer = create) };
}

describe('100 training steps with the adapter', () => {
  for (const [name, build, inputShape] of [
    ['conv2d → batchNormalization → reLU → dense', convModel, [6, 6, 2]],
    ['dense → layerNormalization → dense', layerNormModel, [8]],
  ] as const) {
    it(`${name}: no growth of tensors, data ids, GPU bytes or buffers; no GPU error`, async () => {
      const model = build();
      model.compile({ optimizer: tf.train.sgd(0.01), loss: 'meanSquaredError' });
      const xs = tf.tensor(randn(4 * inputShape.reduce((p: number, d: number) => p * d, 1), 1), [4, ...inputShape]);
      const ys = tf.tensor(randn(8, 2), [4, 2]);
      const uninstall = registerTfjsKernels(tf);
      const passes = ourPasses();
      const buffers = countBuffers();
      try {
        const sample: { tensors: number; dataIds: number; bytes: number; buffers: number }[] = [];
        for (let step = 0; step < 100; step++) {
          await model.trainOnBatch(xs, ys);
          if (step === 9 || step === 99) {
            const m = tf.memory() as tf.MemoryInfo & { numBytesInGPUAllocated?: number };
            sample.push({ tensors: m.numTensors, dataIds: m.numDataBuffers, bytes: m.numBytesInGPUAllocated ?? m.numBytes, buffers: buffers.count() });
          }
        }
        expect(ourPasses() - passes, 'passes of ours: forward and backward per step').toBeGreaterThanOrEqual(200);
        expect(sample[1].tensors, 'numTensors').toBe(sample[0].tensors);
        expect(sample[1].dataIds, 'numDataBuffers').toBe(sample[0].dataIds);
        expect((tf.engine().backend as unknown as { numDataIds(): number }).numDataIds(), 'backend numDataIds').toBeLessThanOrEqual(sample[0].dataIds);
        expect(sample[1].bytes, 'TF.js GPU bytes allocated').toBe(sample[0].bytes);
        expect(sample[0].buffers, 'buffers of ours created in the first 10 steps').toBeGreaterThan(0);
        expect(sample[1].buffers, 'buffers of ours created from step 10 to 100').toBe(sample[0].buffers);
      } finally {
        buffers.restore();
        uninstall();
      }
      tf.dispose([xs, ys]);
      model.dispose();
    });
  }
});

describe('calls that interleave', () => {
  it('two models trained at once end as each trained alone', async () => {
    const data = (seed: number) => ({ xs: tf.tensor(randn(5 * 72, seed), [5, 6, 6, 2]), ys: tf.tensor(randn(10, seed + 1), [5, 2]) });
    const a = { model: convModel(), ...data(1) };
    const b = { model: convModel(), ...data(2) };
    const inits = [a, b].map((m) => m.model.getWeights().map((w) => w.clone()));
    const fit = (m: typeof a, init: tf.Tensor[]) => {
      m.model.setWeights(init);
      m.model.compile({ optimizer: tf.train.sgd(0.05), loss: 'meanSquaredError' });
      return m.model.fit(m.xs, m.ys, { epochs: 3, batchSize: 5, shuffle: false, verbose: 0 });
    };
    const uninstall = registerTfjsKernels(tf);
    try {
      await fit(a, inits[0]);
      await fit(b, inits[1]);
      const alone = await Promise.all([a, b].map((m) => Promise.all(m.model.getWeights().map(values))));
      // Both fits in flight: their steps interleave at every await.
      await Promise.all([fit(a, inits[0]), fit(b, inits[1])]);
      const together = await Promise.all([a, b].map((m) => Promise.all(m.model.getWeights().map(values))));
      for (const m of [0, 1]) for (const [i, w] of together[m].entries()) expect(Array.from(w), `model ${m} weight ${i}`).toEqual(Array.from(alone[m][i]));
    } finally {
      uninstall();
    }
    for (const m of [a, b]) {
      tf.dispose([m.xs, m.ys]);
      m.model.dispose();
    }
    tf.dispose(inits.flat());
  });
});

describe('uninstall()', () => {
  it('restores every kernel, gradient and prototype; plain TF.js runs again', async () => {
    const proto = (layer: object) => Object.getPrototypeOf(layer) as { call: unknown };
    const bnProto = proto(tf.layers.batchNormalization({}));
    const lnProto = proto(tf.layers.layerNormalization({}));
    const before = { fused: tf.getKernel('FusedBatchNorm', 'webgpu'), bnCall: bnProto.call, lnCall: lnProto.call };
    const uninstall = registerTfjsKernels(tf);
    expect(tf.getKernel('FusedBatchNorm', 'webgpu')).not.toBe(before.fused);
    expect(bnProto.call).not.toBe(before.bnCall);
    expect(lnProto.call).not.toBe(before.lnCall);
    expect(tf.getGradient('webgpu-batchnorm/BatchNorm')).toBeDefined();
    uninstall();
    uninstall(); // a second call does nothing
    expect(tf.getKernel('FusedBatchNorm', 'webgpu')).toBe(before.fused);
    expect(bnProto.call).toBe(before.bnCall);
    expect(lnProto.call).toBe(before.lnCall);
    for (const name of ['webgpu-batchnorm/BatchNorm', 'webgpu-batchnorm/BatchNormGrad', 'webgpu-batchnorm/LayerNorm', 'webgpu-batchnorm/LayerNormGrad']) {
      expect(tf.getKernel(name, 'webgpu'), name).toBeUndefined();
    }
    expect(tf.getGradient('webgpu-batchnorm/BatchNorm')).toBeUndefined();
    expect(tf.getGradient('webgpu-batchnorm/LayerNorm')).toBeUndefined();

    const passes = ourPasses();
    const model = convModel();
    model.compile({ optimizer: tf.train.sgd(0.05), loss: 'meanSquaredError' });
    await model.fit(tf.ones([2, 6, 6, 2]), tf.ones([2, 2]), { epochs: 1, verbose: 0 });
    expect(tf.tidy(() => tf.batchNorm(tf.ones([4, 3]), tf.zeros([3]), tf.ones([3]))).shape).toEqual([4, 3]);
    expect(ourPasses(), 'passes of ours after uninstall').toBe(passes);
    // Plain TF.js's own failure is back.
    const noScale = tf.sequential({ layers: [tf.layers.batchNormalization({ inputShape: [3], scale: false })] });
    noScale.compile({ optimizer: 'sgd', loss: 'meanSquaredError' });
    await expect(noScale.fit(tf.ones([2, 3]), tf.ones([2, 3]), { verbose: 0 })).rejects.toThrow(/reading 'read'/);
    // And it installs again.
    registerTfjsKernels(tf)();
    model.dispose();
    noScale.dispose();
  });
});

describe('the guard and bad arguments', () => {
  it("a webgpu backend without a member the adapter relies on fails loudly, naming it", async () => {
    expect(() => checkBackend({})).toThrow(/lacks uploadToGPU\(\), makeTensorInfo\(\), .*device \(a GPUDevice\), tensorMap\.get\(\), commandQueueOwnedIds, dispatchCountInPass, commandEncoder/);
    const backend = tf.findBackend('webgpu') as unknown as Record<string, unknown>;
    backend.uploadToGPU = undefined; // as if a TF.js upgrade renamed it
    try {
      expect(() => registerTfjsKernels(tf)).toThrow(/webgpu backend lacks uploadToGPU\(\), which the adapter relies on \(written against @tensorflow\/tfjs-backend-webgpu 4\.22\)/);
    } finally {
      delete backend.uploadToGPU;
    }
    const uninstall = registerTfjsKernels(tf);
    const layer = tf.layers.batchNormalization({});
    const x = tf.ones([4, 3]);
    layer.apply(x); // builds the layer
    backend.makeTensorInfo = undefined;
    try {
      expect(() => layer.apply(x, { training: true })).toThrow(/webgpu backend lacks makeTensorInfo\(\)/);
    } finally {
      delete backend.makeTensorInfo;
      uninstall();
    }
    x.dispose();
  });

  it('registerTfjsKernels refuses a tf without its functions, unknown or mistyped options, and a second install', () => {
    expect(() => registerTfjsKernels({} as typeof tf)).toThrow(/tf must be the @tensorflow\/tfjs namespace .*it lacks registerKernel, unregisterKernel/);
    expect(() => registerTfjsKernels(undefined as unknown as typeof tf)).toThrow(/tf must be the @tensorflow\/tfjs namespace/);
    expect(() => registerTfjsKernels(tf, { fused: true } as never)).toThrow('registerTfjsKernels: options.fused is not an option; the options are fusedBatchNorm, batchNormalization, layerNormalization, nonFiniteBatches');
    expect(() => registerTfjsKernels(tf, { nonFiniteBatches: 'nan' } as never)).toThrow("options.nonFiniteBatches must be 'skip' or 'update'; got nan");
    expect(() => registerTfjsKernels(tf, { batchNormalization: 1 } as never)).toThrow('options.batchNormalization must be true or false; got 1');
    expect(() => registerTfjsKernels(tf, null as never)).toThrow(/options must be an object/);
    const uninstall = registerTfjsKernels(tf);
    try {
      expect(() => registerTfjsKernels(tf)).toThrow(/already registered on this tf; call the uninstall\(\) the first call returned/);
    } finally {
      uninstall();
    }
  });

  it('useDeviceForTfjs refuses what is not a device, and unknown options', async () => {
    await expect(useDeviceForTfjs(tf, {} as GPUDevice)).rejects.toThrow('useDeviceForTfjs: device must be a GPUDevice (getDevice()); got [object Object]');
    await expect(useDeviceForTfjs(tf, device, { backend: 1 } as never)).rejects.toThrow('useDeviceForTfjs: options.backend is not an option; the only option is WebGPUBackend');
    await expect(useDeviceForTfjs({} as typeof tf, device)).rejects.toThrow(/tf must be the @tensorflow\/tfjs namespace/);
  });
});

describe('where plain TF.js keeps the work', () => {
  it('another backend, a LayerNormalization over a leading axis, epsilon 0: plain TF.js, no pass of ours', async () => {
    const x = tf.tensor(randn(60, 3), [3, 4, 5]);
    const layers = [
      tf.layers.layerNormalization({ axis: 1 }),
      tf.layers.batchNormalization({ epsilon: 0 }),
      tf.layers.layerNormalization({ epsilon: 0 }),
    ];
    const plainOut = await Promise.all(layers.map((l) => values(l.apply(x, { training: true }) as tf.Tensor)));
    const uninstall = registerTfjsKernels(tf);
    const passes = ourPasses();
    try {
      const ours = await Promise.all(layers.map((l) => values(l.apply(x, { training: true }) as tf.Tensor)));
      expect(ours).toEqual(plainOut);
      // On the CPU backend the patched layers call their own code.
      await tf.setBackend('cpu');
      const cpu = tf.layers.batchNormalization({});
      const y = cpu.apply(tf.tensor(randn(12, 4), [4, 3]), { training: true }) as tf.Tensor;
      expect(y.shape).toEqual([4, 3]);
      expect(ourPasses()).toBe(passes);
    } finally {
      await tf.setBackend('webgpu');
      uninstall();
    }
    x.dispose();
  });

  it('a last batch of one sample trains as in plain TF.js (its own call, y = β); training: 1 trains as TF.js reads it', async () => {
    const build = () => tf.sequential({ layers: [tf.layers.dense({ inputShape: [4], units: 3 }), tf.layers.batchNormalization({})] });
    const model = build();
    const init = model.getWeights().map((w) => w.clone());
    const xs = tf.tensor(randn(33 * 4, 7), [33, 4]);
    const ys = tf.tensor(randn(33 * 3, 8), [33, 3]);
    const fit = async () => {
      model.setWeights(init);
      model.compile({ optimizer: tf.train.sgd(0.05), loss: 'meanSquaredError' });
      await model.fit(xs, ys, { epochs: 1, batchSize: 32, shuffle: false, verbose: 0 });
      return Promise.all(model.getWeights().map(values));
    };
    const plainWeights = await fit();
    const layer = tf.layers.batchNormalization({});
    const x = tf.tensor(randn(12, 9), [4, 3]);
    const plainY = await values(layer.apply(x, { training: 1 } as never) as tf.Tensor);
    const uninstall = registerTfjsKernels(tf);
    try {
      const passes = ourPasses();
      const ours = await fit();
      expect(ourPasses(), 'the 32-sample batch ran on ours').toBeGreaterThan(passes);
      ours.forEach((w, i) => expectClose(w, plainWeights[i], { rtol: 1e-5, atol: 1e-5 }, `weight ${i}`));
      expectClose(await values(layer.apply(x, { training: 1 } as never) as tf.Tensor), plainY, { rtol: 1e-5, atol: 1e-5 }, 'y with training: 1');
    } finally {
      uninstall();
    }
    tf.dispose([...init, xs, ys, x]);
    model.dispose();
  });

  it('a second-order gradient through our kernels fails, saying so', () => {
    const uninstall = registerTfjsKernels(tf);
    try {
      const layer = tf.layers.batchNormalization({});
      const f = (x: tf.Tensor) => tf.sum(tf.square(layer.apply(x, { training: true }) as tf.Tensor));
      expect(() => tf.tidy(() => tf.grad((x: tf.Tensor) => tf.sum(tf.grad(f)(x)))(tf.tensor(randn(12, 10), [4, 3])))).toThrow(
        'webgpu-batchnorm/tfjs: no second-order gradient through BatchNormalization (a gradient of its gradient); compute it with plain TF.js, after uninstall()',
      );
    } finally {
      uninstall();
    }
  });

  it("nonFiniteBatches: 'update' folds a NaN batch into the moving statistics as TF.js does; 'skip' leaves them", async () => {
    const batch = new Float32Array(12).map((_, i) => (i === 4 ? NaN : i));
    for (const mode of ['update', 'skip'] as const) {
      const layer = tf.layers.batchNormalization({});
      const x = tf.tensor(batch, [4, 3]);
      layer.apply(x); // builds the layer
      const uninstall = registerTfjsKernels(tf, { nonFiniteBatches: mode });
      try {
        tf.dispose(layer.apply(x, { training: true }) as tf.Tensor);
      } finally {
        uninstall();
      }
      const [mean, variance] = await Promise.all(layer.getWeights().slice(2).map(values));
      // Channel 1 holds the NaN; channels 0 and 2 train as usual (momentum 0.99 from 0 and 1).
      if (mode === 'update') {
        expect(Number.isNaN(mean[1]) && Number.isNaN(variance[1])).toBe(true);
        expectClose([mean[0], mean[2]], [0.01 * 4.5, 0.01 * 6.5], { rtol: 1e-6, atol: 1e-7 }, 'moving mean');
      } else {
        expect(Array.from(mean)).toEqual([0, 0, 0]);
        expect(Array.from(variance)).toEqual([1, 1, 1]);
      }
      x.dispose();
    }
  });
});
