// Training a two-layer network in your own command encoder, with your own kernels and buffers:
//
//   x [64, 8] → your Dense(8 → 32) → BatchNorm(32, fused ReLU) → your Dense(32 → 1) → MSE loss
//
// Everything a step does is recorded into one GPUCommandEncoder and submitted once; the library
// only records its passes. All parameters live in one parameter arena and all gradients in one
// gradient arena (BN's γ, β and their gradients are ranges of them, via options.buffers), so one
// SGD dispatch of yours updates the whole network. The loss is read back every 50 steps.
// Run with `npm run example` (it builds dist/ first).
import { BatchNorm, getDevice } from '../dist/webgpu-batchnorm.js';

const [BATCH, INPUTS, HIDDEN] = [64, 8, 32];
const STEPS = 300;
const LR = 0.05;

// Your kernels: a dense layer (forward, parameter gradients, input gradient), MSE, SGD.
const WGSL = /* wgsl */ `
struct Dims { batch: u32, inputs: u32, outputs: u32, _pad: u32 }
@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read> x: array<f32>;        // [batch, inputs]
@group(0) @binding(2) var<storage, read> w: array<f32>;        // [outputs, inputs]
@group(0) @binding(3) var<storage, read> b: array<f32>;        // [outputs]
@group(0) @binding(4) var<storage, read_write> y: array<f32>;  // [batch, outputs]
@group(0) @binding(5) var<storage, read> dy: array<f32>;       // [batch, outputs]
@group(0) @binding(6) var<storage, read_write> dw: array<f32>;
@group(0) @binding(7) var<storage, read_write> db: array<f32>;
@group(0) @binding(8) var<storage, read_write> dx: array<f32>; // [batch, inputs]

@compute @workgroup_size(64) fn dense_forward(@builtin(global_invocation_id) id: vec3u) {
  if (id.x >= dims.batch * dims.outputs) { return; }
  let n = id.x / dims.outputs;
  let o = id.x % dims.outputs;
  var acc = b[o];
  for (var k = 0u; k < dims.inputs; k++) { acc += x[n * dims.inputs + k] * w[o * dims.inputs + k]; }
  y[id.x] = acc;
}

@compute @workgroup_size(64) fn dense_param_grads(@builtin(global_invocation_id) id: vec3u) {
  let weights = dims.outputs * dims.inputs;
  if (id.x < weights) {
    let o = id.x / dims.inputs;
    let k = id.x % dims.inputs;
    var acc = 0.0;
    for (var n = 0u; n < dims.batch; n++) { acc += dy[n * dims.outputs + o] * x[n * dims.inputs + k]; }
    dw[id.x] = acc;
  } else if (id.x < weights + dims.outputs) {
    let o = id.x - weights;
    var acc = 0.0;
    for (var n = 0u; n < dims.batch; n++) { acc += dy[n * dims.outputs + o]; }
    db[o] = acc;
  }
}

@compute @workgroup_size(64) fn dense_input_grads(@builtin(global_invocation_id) id: vec3u) {
  if (id.x >= dims.batch * dims.inputs) { return; }
  let n = id.x / dims.inputs;
  let k = id.x % dims.inputs;
  var acc = 0.0;
  for (var o = 0u; o < dims.outputs; o++) { acc += dy[n * dims.outputs + o] * w[o * dims.inputs + k]; }
  dx[id.x] = acc;
}

// MSE: y holds predictions, x the targets; dy <- d(mean loss)/dy, dx <- each sample's squared error.
@compute @workgroup_size(64) fn mse(@builtin(global_invocation_id) id: vec3u) {
  if (id.x >= dims.batch) { return; }
  let err = y[id.x] - x[id.x];
  dw[id.x] = 2.0 * err / f32(dims.batch);
  dx[id.x] = err * err;
}

// SGD over the whole arena: y holds the parameters, dy their gradients (dims.batch = count).
@compute @workgroup_size(64) fn sgd(@builtin(global_invocation_id) id: vec3u) {
  if (id.x >= dims.batch) { return; }
  y[id.x] -= bitcast<f32>(dims._pad) * dy[id.x];
}
`;

const device = await getDevice();
const align = device.limits.minStorageBufferOffsetAlignment;
const STORAGE = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
const module = device.createShaderModule({ label: 'my layers', code: WGSL });
const pipeline = (entryPoint) => device.createComputePipeline({ label: entryPoint, layout: 'auto', compute: { module, entryPoint } });
const kernels = Object.fromEntries(['dense_forward', 'dense_param_grads', 'dense_input_grads', 'mse', 'sgd'].map((k) => [k, pipeline(k)]));

// One parameter arena and one gradient arena with the same layout: each tensor at an aligned offset.
const sizes = { w1: HIDDEN * INPUTS, b1: HIDDEN, gamma: HIDDEN, beta: HIDDEN, w2: HIDDEN, b2: 1 };
const offsets = {};
let arenaBytes = 0;
for (const [name, n] of Object.entries(sizes)) {
  offsets[name] = arenaBytes;
  arenaBytes += Math.ceil((n * 4) / align) * align;
}
const paramArena = device.createBuffer({ label: 'parameters', size: arenaBytes, usage: STORAGE });
const gradArena = device.createBuffer({ label: 'gradients', size: arenaBytes, usage: STORAGE });
const param = (name) => ({ buffer: paramArena, offset: offsets[name], size: sizes[name] * 4 });
const grad = (name) => ({ buffer: gradArena, offset: offsets[name], size: sizes[name] * 4 });

// Seeded initial weights; γ = 1, β = 0.
let seed = 7;
const random = () => ((seed = (seed * 1664525 + 1013904223) >>> 0) / 2 ** 32) * 2 - 1;
const init = { w1: Float32Array.from({ length: sizes.w1 }, () => random() / Math.sqrt(INPUTS)), gamma: new Float32Array(HIDDEN).fill(1), w2: Float32Array.from({ length: HIDDEN }, () => random() / Math.sqrt(HIDDEN)) };
for (const [name, data] of Object.entries(init)) device.queue.writeBuffer(paramArena, offsets[name], data);

// The library's layer on your buffers: γ, β and their gradients are ranges of the arenas.
const bn = new BatchNorm(device, {
  numFeatures: HIDDEN,
  layout: 'NC',
  activation: 'relu',
  buffers: { gamma: param('gamma'), beta: param('beta'), gammaGrad: grad('gamma'), betaGrad: grad('beta') },
});

// Data: a fixed batch and a nonlinear target to fit.
const xData = Float32Array.from({ length: BATCH * INPUTS }, random);
const target = Float32Array.from({ length: BATCH }, (_, n) => Math.tanh(xData[n * INPUTS] * 2 - xData[n * INPUTS + 1]) + xData[n * INPUTS + 2] ** 2);
const buffer = (label, n, data) => {
  const b = device.createBuffer({ label, size: n * 4, usage: STORAGE });
  if (data) device.queue.writeBuffer(b, 0, data);
  return b;
};
const x = buffer('x', BATCH * INPUTS, xData);
const targets = buffer('targets', BATCH, target);
const [h, hRelu, pred, dPred, dHRelu, dH, losses] = [
  ['h', BATCH * HIDDEN], ['relu(bn(h))', BATCH * HIDDEN], ['prediction', BATCH], ['d prediction', BATCH],
  ['d relu(bn(h))', BATCH * HIDDEN], ['d h', BATCH * HIDDEN], ['losses', BATCH],
].map(([label, n]) => buffer(label, n));
const dims = (batch, inputs, outputs, extra = 0) => {
  const b = device.createBuffer({ size: 16, usage: GPUBufferUsage.UNIFORM, mappedAtCreation: true });
  new Uint32Array(b.getMappedRange()).set([batch, inputs, outputs, extra]);
  b.unmap();
  return b;
};
const [dims1, dims2, dimsLoss] = [dims(BATCH, INPUTS, HIDDEN), dims(BATCH, HIDDEN, 1), dims(BATCH, 1, 1)];
const dimsSgd = dims(arenaBytes / 4, 0, 0, new Uint32Array(Float32Array.of(LR).buffer)[0]);

const dispatch = (pass, kernel, threads, entries) => {
  pass.setPipeline(kernels[kernel]);
  pass.setBindGroup(0, device.createBindGroup({
    layout: kernels[kernel].getBindGroupLayout(0),
    entries: Object.entries(entries).map(([binding, r]) => ({ binding: Number(binding), resource: r.buffer ? r : { buffer: r } })),
  }));
  pass.dispatchWorkgroups(Math.ceil(threads / 64));
};

/** Records one training step into `encoder`: your passes and the library's, in order. */
function encodeStep(encoder) {
  let pass = encoder.beginComputePass({ label: 'dense 1' });
  dispatch(pass, 'dense_forward', BATCH * HIDDEN, { 0: dims1, 1: x, 2: param('w1'), 3: param('b1'), 4: h });
  pass.end();
  bn.encodeForward(encoder, { x: h, y: hRelu, shape: [BATCH, HIDDEN], training: true });
  pass = encoder.beginComputePass({ label: 'dense 2, loss and its backward' });
  dispatch(pass, 'dense_forward', BATCH, { 0: dims2, 1: hRelu, 2: param('w2'), 3: param('b2'), 4: pred });
  dispatch(pass, 'mse', BATCH, { 0: dimsLoss, 1: targets, 4: pred, 6: dPred, 8: losses });
  dispatch(pass, 'dense_param_grads', HIDDEN + 1, { 0: dims2, 1: hRelu, 5: dPred, 6: grad('w2'), 7: grad('b2') });
  dispatch(pass, 'dense_input_grads', BATCH * HIDDEN, { 0: dims2, 2: param('w2'), 5: dPred, 8: dHRelu });
  pass.end();
  bn.encodeBackward(encoder, { x: h, dy: dHRelu, dx: dH, shape: [BATCH, HIDDEN] }); // applies the ReLU mask itself
  pass = encoder.beginComputePass({ label: 'dense 1 backward and SGD' });
  dispatch(pass, 'dense_param_grads', HIDDEN * INPUTS + HIDDEN, { 0: dims1, 1: x, 5: dH, 6: grad('w1'), 7: grad('b1') });
  dispatch(pass, 'sgd', arenaBytes / 4, { 0: dimsSgd, 4: paramArena, 5: gradArena }); // every parameter, BN's included
  pass.end();
}

async function meanLoss(encoder) {
  const staging = device.createBuffer({ size: BATCH * 4, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  encoder.copyBufferToBuffer(losses, 0, staging, 0, BATCH * 4);
  device.queue.submit([encoder.finish()]);
  await staging.mapAsync(GPUMapMode.READ);
  const values = new Float32Array(staging.getMappedRange());
  const mean = values.reduce((a, b) => a + b, 0) / BATCH;
  staging.destroy();
  return mean;
}

const history = [];
for (let step = 1; step <= STEPS; step++) {
  const encoder = device.createCommandEncoder({ label: `step ${step}` });
  encodeStep(encoder);
  if (step === 1 || step % 50 === 0) {
    const loss = await meanLoss(encoder); // the loss of this step's forward pass
    history.push(loss);
    console.log(`step ${String(step).padStart(3)}: mse ${loss.toFixed(5)}`);
  } else {
    device.queue.submit([encoder.finish()]);
  }
}
const state = await bn.getState();
console.log(`BN: ${state.numBatchesTracked} batches tracked, γ[0] = ${state.gamma[0].toFixed(4)} (trained by your SGD in the arena)`);
bn.destroy();
const [first, last] = [history[0], history[history.length - 1]];
if (!(last < first / 10) || state.numBatchesTracked !== STEPS || state.gamma[0] === 1) {
  console.error(`FAILED: the loss went from ${first} to ${last}`);
  process.exit(1);
}
console.log(`OK: one encoder and one submit per step; the loss fell ${(first / last).toFixed(0)}x`);
