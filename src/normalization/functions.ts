/**
 * The normalization family as plain functions of (device, encoder, args): every buffer is the
 * caller's -- x, y (dy, dx), γ and β where learnable, their gradients, InstanceNorm's running
 * statistics, and `saved`, where a forward pass leaves each statistics group's coefficients
 * (NORM_SAVED_BYTES_PER_GROUP bytes per group: N·G groups for GroupNorm, N·C for InstanceNorm,
 * one per row for LayerNorm and RMSNorm) for its backward pass. Nothing is submitted or read back.
 * Between calls they keep, in the device's context, plans, scratch and, per `saved` range, a
 * record of the last forward pass recorded on it (released by releaseFunctionCaches).
 *
 * A backward call takes the same options as the forward call whose `saved` it reads (for
 * InstanceNorm with running statistics, the same `training`): it is refused without a forward
 * pass recorded on its `saved`, or where its layer, shape or an argument its math depends on
 * differs from that forward pass's.
 */
import { NORM_SAVED_BYTES_PER_GROUP } from './kernels.js';
import {
  checkArgsObject,
  checkInstanceTrainable,
  checkNormBackwardAliasing,
  checkNormBackwardTensors,
  checkNormForwardAliasing,
  checkNormForwardTensors,
  checkNormStateBuffers,
  resolveGroupNormOptions,
  resolveInstanceNormOptions,
  resolveLayerNormOptions,
  resolveRMSNormOptions,
  savedBytes,
  trainingFlag,
  type NormActivation,
  type ResolvedNormOptions,
} from './options.js';
import { normPlan, type NormGeometry } from './plan.js';
import { recordNormBackward, recordNormForward } from './record.js';
import type { DType } from '../core/plans.js';
import { bufferName, bufferOf, isBufferRange, inComputePass, type TensorBuffer } from '../core/gpu.js';
import { acquireScratch, acquireSink } from '../core/scratch.js';
import { checkArity, checkDevice, checkEncoder, checkKnownKeys, checkTensorBuffer, describeValue } from '../core/validate.js';
import { channelView, checkLayout, type Layout } from '../core/layout.js';
import { familyRecords, functionsState, type FunctionsState } from '../core/function-forms.js';

export { NORM_SAVED_BYTES_PER_GROUP };

/**
 * A family forward pass recorded on a `saved` range: which layer, the shape, and the arguments
 * its backward pass's math depends on, as messages show them.
 */
interface NormForwardRecord {
  /** 'LayerNorm', 'RMSNorm', 'GroupNorm' or 'InstanceNorm'. */
  kind: string;
  shape: readonly number[];
  /** By argument name ('args.activation'): the forward pass's value as a message shows it ("'relu'", '[4]', 'given'). */
  args: Readonly<Record<string, string>>;
}

/** Per family `saved` buffer (weak: a caller's buffer is not kept alive), per offset: the last forward pass recorded on it. */
function savedForwards(state: FunctionsState): WeakMap<GPUBuffer, Map<number, NormForwardRecord>> {
  return familyRecords(state, 'normalization', () => new WeakMap<GPUBuffer, Map<number, NormForwardRecord>>());
}

/** Options and buffers every family function takes. */
interface NormFunctionCommon {
  /** The forward pass's output; the backward pass reads it: one GroupCoef per statistics group (see the module comment). */
  saved: TensorBuffer;
  /** γ (float32, one entry per γ position); absent: γ = 1. */
  gamma?: TensorBuffer;
  eps?: number;
  activation?: NormActivation;
  dtype?: DType;
}

/** Forward tensors. @inline */
interface ForwardTensors {
  x: TensorBuffer;
  y: TensorBuffer;
  shape: readonly number[];
}

/** Backward tensors, and where to write dγ and dβ (each optional). @inline */
interface BackwardTensors {
  x: TensorBuffer;
  dy: TensorBuffer;
  dx: TensorBuffer;
  shape: readonly number[];
  dgamma?: TensorBuffer;
  dbeta?: TensorBuffer;
}

/** LayerNorm's function arguments besides the tensors. */
export interface LayerNormFunctionArgs extends NormFunctionCommon {
  normalizedShape: number | readonly number[];
  /** β (float32); absent: β = 0. */
  beta?: TensorBuffer;
}
/** RMSNorm's function arguments besides the tensors (no β). */
export interface RMSNormFunctionArgs extends NormFunctionCommon {
  normalizedShape: number | readonly number[];
}
/** GroupNorm's function arguments besides the tensors (numChannels comes from the shape). */
export interface GroupNormFunctionArgs extends NormFunctionCommon {
  numGroups: number;
  layout?: Layout;
  beta?: TensorBuffer;
}
/** InstanceNorm's function arguments besides the tensors (numFeatures comes from the shape). */
export interface InstanceNormFunctionArgs extends NormFunctionCommon {
  layout?: Layout;
  beta?: TensorBuffer;
  /** Running statistics (float32 per channel), both or neither: updated by training passes, used by inference passes. */
  runningMean?: TensorBuffer;
  runningVar?: TensorBuffer;
  momentum?: number;
  nonFiniteBatches?: 'skip' | 'update';
  /** Default true. With running statistics: training updates them, inference normalizes with them. */
  training?: boolean;
}

const COMMON = ['saved', 'gamma', 'eps', 'activation', 'dtype'];
const FORWARD = ['x', 'y', 'shape'];
const BACKWARD = ['x', 'dy', 'dx', 'shape', 'dgamma', 'dbeta'];

type Kind = 'LayerNorm' | 'RMSNorm' | 'GroupNorm' | 'InstanceNorm';

const KIND_KEYS: Record<Kind, string[]> = {
  LayerNorm: ['normalizedShape', 'beta'],
  RMSNorm: ['normalizedShape'],
  GroupNorm: ['numGroups', 'layout', 'beta'],
  InstanceNorm: ['layout', 'beta', 'runningMean', 'runningVar', 'momentum', 'nonFiniteBatches', 'training'],
};

/**
 * The layer options a function call stands for, named `args.*` in messages; the channel count
 * comes from the shape.
 */
function resolve(kind: Kind, a: Record<string, unknown>): ResolvedNormOptions {
  const common = { eps: a.eps, activation: a.activation, dtype: a.dtype } as Record<string, unknown>;
  for (const k of Object.keys(common)) if (common[k] === undefined) delete common[k];
  // null is no default: it reaches checkLayout and is refused.
  const layoutOf = (layout: unknown) => (layout === undefined ? 'NCHW' : layout);
  const channels = (layout: unknown) => {
    const shape = a.shape as readonly number[];
    checkLayout(layoutOf(layout), 'args.layout');
    const C = channelView(layoutOf(layout) as Layout, shape, 'args.shape').channels;
    if (kind === 'GroupNorm' && Number.isSafeInteger(a.numGroups) && Number.isSafeInteger(C) && C % (a.numGroups as number) !== 0) {
      throw new RangeError(
        `args.numGroups (${a.numGroups as number}) must divide the ${C} channels of args.shape [${shape.join(', ')}] (layout '${layoutOf(layout) as string}'); got a remainder of ${C % (a.numGroups as number)}`,
      );
    }
    return C;
  };
  let o: ResolvedNormOptions;
  if (kind === 'LayerNorm') o = resolveLayerNormOptions({ ...common, normalizedShape: a.normalizedShape as number[] }, 'args');
  else if (kind === 'RMSNorm') o = resolveRMSNormOptions({ ...common, normalizedShape: a.normalizedShape as number[] }, 'args');
  else if (kind === 'GroupNorm') {
    o = resolveGroupNormOptions({ ...common, numGroups: a.numGroups as number, numChannels: channels(a.layout), ...(a.layout !== undefined ? { layout: a.layout as Layout } : {}) }, 'args');
  } else {
    const running = a.runningMean !== undefined || a.runningVar !== undefined;
    if (running && (a.runningMean === undefined || a.runningVar === undefined)) {
      throw new TypeError(`args.runningMean and args.runningVar must be given together; got only ${a.runningMean === undefined ? 'runningVar' : 'runningMean'}`);
    }
    const extra = Object.fromEntries(Object.entries({ layout: a.layout, momentum: a.momentum, nonFiniteBatches: a.nonFiniteBatches }).filter(([, v]) => v !== undefined));
    o = resolveInstanceNormOptions({ ...common, ...extra, numFeatures: channels(a.layout), trackRunningStats: running }, 'args');
  }
  // γ and β are read where given; a function's learnable parameters are the buffers it is handed.
  return { ...o, hasGamma: a.gamma !== undefined, hasBeta: a.beta !== undefined, label: 'webgpu-batchnorm function' };
}

function checkParams(device: GPUDevice, o: ResolvedNormOptions, a: Record<string, unknown>, names: string[], geometry: NormGeometry): void {
  const bytes = o.paramSize * 4;
  for (const name of names) {
    const b = a[name] as TensorBuffer | undefined;
    if (b !== undefined) checkTensorBuffer(`args.${name}`, b, bytes, `${o.paramSize} float32`, device);
  }
  checkTensorBuffer('args.saved', a.saved as TensorBuffer, savedBytes(geometry), `${geometry.samples * geometry.groups} statistics groups × ${NORM_SAVED_BYTES_PER_GROUP} bytes`, device);
  // No two parameter buffers may share bytes (γ and β included), as for a layer's options.buffers.
  const given = (name: string) => a[name] as TensorBuffer | undefined;
  checkNormStateBuffers(
    o,
    { gamma: given('gamma'), beta: given('beta'), runningMean: given('runningMean'), runningVar: given('runningVar'), gammaGrad: given('dgamma'), betaGrad: given('dbeta') },
    'args',
    { gammaGrad: 'args.dgamma', betaGrad: 'args.dbeta' },
  );
}

function encodeForward(kind: Kind, device: GPUDevice, encoder: GPUCommandEncoder, args: ForwardTensors & Record<string, unknown>): void {
  checkDevice('device', device);
  checkEncoder('encoder', encoder);
  const state = functionsState(device);
  state.guard.checkUsable();
  checkArgsObject(args, `${FORWARD.join(', ')}, saved, …`);
  checkKnownKeys('args', args, { names: [...FORWARD, ...COMMON, ...KIND_KEYS[kind]], what: `an argument of the ${kind} forward function` });
  const o = resolve(kind, args);
  const training = trainingFlag(args.training, 'args.training');
  const geometry = checkNormForwardTensors(device, o, args, null);
  checkInstanceTrainable(o, geometry, args.shape, training);
  checkParams(device, o, args, ['gamma', 'beta', 'runningMean', 'runningVar'], geometry);
  const { saved, gamma, beta, runningMean, runningVar } = args as Record<string, TensorBuffer | undefined>;
  checkNormForwardAliasing(device, o, geometry, args, { prefix: 'args', buffers: { saved, gamma, beta, runningMean, runningVar } });
  const mode = { useRunning: o.trackRunningStats && !training, updateRunning: o.trackRunningStats && training };
  state.guard.recordChecked(`encode${kind}Forward`, () => {
    const plan = normPlan(device, geometry, o, mode, state.holder);
    inComputePass(encoder, `webgpu-batchnorm ${kind} forward`, (pass) => {
      recordNormForward(device, pass, plan, {
        x: args.x,
        y: args.y,
        saved: args.saved as TensorBuffer,
        gamma: args.gamma as TensorBuffer | undefined,
        beta: args.beta as TensorBuffer | undefined,
        runningMean: args.runningMean as TensorBuffer | undefined,
        runningVar: args.runningVar as TensorBuffer | undefined,
      });
    });
  }, `${o.trackRunningStats ? (training ? 'training ' : 'inference ') : ''}forward of shape [${args.shape.join(', ')}], x ${bufferName(args.x)}, y ${bufferName(args.y)}, saved ${bufferName(args.saved as TensorBuffer)}`);
  // What the backward pass on this saved must repeat (checkRecordedForward).
  const { records, offset } = savedRecords(state, args.saved as TensorBuffer);
  records.set(offset, { kind, shape: [...args.shape], args: backwardDependencies(o, training) });
}

function encodeBackward(kind: Kind, device: GPUDevice, encoder: GPUCommandEncoder, args: BackwardTensors & Record<string, unknown>): void {
  checkDevice('device', device);
  checkEncoder('encoder', encoder);
  const state = functionsState(device);
  state.guard.checkUsable();
  checkArgsObject(args, `${BACKWARD.join(', ')}, saved, …`);
  checkKnownKeys('args', args, { names: [...BACKWARD, ...COMMON, ...KIND_KEYS[kind]], what: `an argument of the ${kind} backward function` });
  if (kind === 'RMSNorm' && args.dbeta !== undefined) throw new TypeError('args.dbeta is not an argument of RMSNorm, which has no β');
  const o = resolve(kind, args);
  const training = trainingFlag(args.training, 'args.training');
  const geometry = checkNormBackwardTensors(device, o, args, { shape: args.shape }, null);
  checkParams(device, o, args, ['gamma', 'beta', 'dgamma', 'dbeta'], geometry);
  const { saved, gamma, beta } = args as Record<string, TensorBuffer | undefined>;
  checkNormBackwardAliasing(o, args, {
    prefix: 'args',
    buffers: { saved, gamma, beta, gammaGrad: args.dgamma, betaGrad: args.dbeta },
    names: { gammaGrad: 'args.dgamma', betaGrad: 'args.dbeta' },
  });
  // The call's own arguments first, then against the forward pass it differentiates.
  checkRecordedForward(kind, state, o, training, args);
  state.guard.recordChecked(`encode${kind}Backward`, () => {
    const plan = normPlan(device, geometry, o, { useRunning: o.trackRunningStats && !training, updateRunning: false }, state.holder);
    const scratch = { partials: acquireScratch(device, plan.partialBytes, state.holder), sink: acquireSink(device, state.holder) };
    inComputePass(encoder, `webgpu-batchnorm ${kind} backward`, (pass) => {
      recordNormBackward(
        device,
        pass,
        plan,
        {
          x: args.x,
          dy: args.dy,
          dx: args.dx,
          saved: args.saved as TensorBuffer,
          gamma: args.gamma as TensorBuffer | undefined,
          beta: args.beta as TensorBuffer | undefined,
          dgamma: args.dgamma,
          dbeta: args.dbeta,
        },
        scratch,
      );
    });
  }, `backward of shape [${args.shape.join(', ')}], x ${bufferName(args.x)}, dy ${bufferName(args.dy)}, dx ${bufferName(args.dx)}, saved ${bufferName(args.saved as TensorBuffer)}`);
}

/** The records of the forward passes on `saved`'s GPUBuffer, by offset, and `saved`'s offset. */
function savedRecords(state: FunctionsState, saved: TensorBuffer): { records: Map<number, NormForwardRecord>; offset: number } {
  const buffer = bufferOf(saved);
  const forwards = savedForwards(state);
  let records = forwards.get(buffer);
  if (!records) forwards.set(buffer, (records = new Map()));
  return { records, offset: isBufferRange(saved) ? (saved.offset ?? 0) : 0 };
}

/**
 * What the backward pass's math takes from the call's arguments, by argument name, as messages
 * show it: where the statistics groups are (normalizedShape; numGroups and layout), the fused
 * activation (whose derivative it applies, recomputing z from x, γ and β), the dtype (how x, dy
 * and dx are stored), whether γ multiplies (given) or is 1, β where the activation reads it, and
 * InstanceNorm's statistics (running, at inference with running statistics; else the instance's).
 * eps is not among them: the backward pass reads 1/sqrt(var + eps) from saved.
 */
function backwardDependencies(o: ResolvedNormOptions, training: boolean): Record<string, string> {
  const deps: Record<string, string> = {};
  if (o.kind === 'layer' || o.kind === 'rms') deps['args.normalizedShape'] = `[${o.normalizedShape.join(', ')}]`;
  if (o.kind === 'group') deps['args.numGroups'] = String(o.numGroups);
  if (o.kind === 'group' || o.kind === 'instance') deps['args.layout'] = `'${o.layout}'`;
  deps['args.activation'] = `'${o.activation}'`;
  deps['args.dtype'] = `'${o.dtype}'`;
  deps['args.gamma'] = o.hasGamma ? 'given' : 'left out';
  if (o.kind !== 'rms' && o.activation !== 'none') deps['args.beta'] = o.hasBeta ? 'given' : 'left out';
  if (o.kind === 'instance') deps.statistics = o.trackRunningStats && !training ? 'running' : 'instance';
  return deps;
}

const AS = 'as in the forward pass recorded on this args.saved';
const WHY = '(a backward pass takes the arguments of its forward pass that its math depends on)';
const AS_FORWARD = `${AS} ${WHY}`;
const ARTICLE: Readonly<Record<string, string>> = { LayerNorm: 'a', RMSNorm: 'an', GroupNorm: 'a', InstanceNorm: 'an' };

/**
 * The backward call `args` of `kind` against the last forward pass recorded on its `saved` (in
 * this process, since the last releaseFunctionCaches): there must be one, of the same layer and
 * shape, with the same arguments where the backward pass's math depends on them
 * ({@link backwardDependencies}). A `saved` filled otherwise cannot be told from one a forward
 * pass left, so it is refused.
 */
function checkRecordedForward(kind: Kind, state: FunctionsState, o: ResolvedNormOptions, training: boolean, args: BackwardTensors & Record<string, unknown>): void {
  const { records, offset } = savedRecords(state, args.saved as TensorBuffer);
  const forward = records.get(offset);
  if (!forward) {
    throw new Error(
      `encode${kind}Backward needs a forward pass recorded on this args.saved first: call encode${kind}Forward with the same saved (buffer and offset) before it; ` +
        'releaseFunctionCaches forgets the recorded passes',
    );
  }
  if (forward.kind !== kind) {
    throw new TypeError(
      `args.saved holds ${ARTICLE[forward.kind]} ${forward.kind} forward pass (the last recorded on it), not ${ARTICLE[kind]} ${kind} one: encode${kind}Backward must follow encode${kind}Forward on the same saved`,
    );
  }
  const shape = (s: readonly number[]) => `[${s.join(', ')}]`;
  if (forward.shape.length !== args.shape.length || forward.shape.some((d, i) => d !== args.shape[i])) {
    throw new RangeError(`args.shape must be ${shape(forward.shape)}, the shape of the forward pass recorded on this args.saved; got ${shape(args.shape)}`);
  }
  const given = backwardDependencies(o, training);
  for (const [name, expected] of Object.entries(forward.args)) {
    const actual = given[name];
    if (actual === expected) continue;
    if (name === 'statistics') {
      if (expected === 'running' && o.trackRunningStats) {
        throw new TypeError(`args.training must be false, ${AS}, which normalized with the running statistics ${WHY}; got ${shown(args.training, 'true')}`);
      }
      if (expected === 'running') {
        throw new TypeError(`args.runningMean and args.runningVar must be given, with args.training false, ${AS}, which normalized with them ${WHY}; got undefined`);
      }
      throw new TypeError(`args.training must be true or left out, ${AS}, which normalized with each instance's own statistics ${WHY}; got false`);
    }
    const argName = name.slice('args.'.length);
    const value = args[argName];
    if (expected === 'given' || expected === 'left out') {
      const what = expected === 'given' ? 'given' : `left out (${argName === 'gamma' ? 'γ = 1' : 'β = 0'})`;
      throw new TypeError(`${name} must be ${what}, ${AS_FORWARD}; got ${describeValue(value)}`);
    }
    throw new TypeError(`${name} must be ${expected}, ${AS_FORWARD}; got ${shown(value, actual)}`);
  }
}

/** A given value as a message shows it; left out: undefined, and the default it stands for. */
function shown(value: unknown, resolved: string | undefined): string {
  return value === undefined ? `undefined (the default, ${resolved})` : Array.isArray(value) ? `[${value.join(', ')}]` : describeValue(value);
}

/** Records LayerNorm's forward pass (see {@link LayerNorm}) on the caller's buffers. */
export function encodeLayerNormForward(device: GPUDevice, encoder: GPUCommandEncoder, args: ForwardTensors & LayerNormFunctionArgs): void {
  checkArity('encodeLayerNormForward', arguments, ['device', 'encoder', 'args']);
  encodeForward('LayerNorm', device, encoder, args as unknown as ForwardTensors & Record<string, unknown>);
}
/** Records LayerNorm's backward pass from the `saved` of its forward pass: dx, and dγ/dβ where given. */
export function encodeLayerNormBackward(device: GPUDevice, encoder: GPUCommandEncoder, args: BackwardTensors & LayerNormFunctionArgs): void {
  checkArity('encodeLayerNormBackward', arguments, ['device', 'encoder', 'args']);
  encodeBackward('LayerNorm', device, encoder, args as unknown as BackwardTensors & Record<string, unknown>);
}
/** Records RMSNorm's forward pass on the caller's buffers. */
export function encodeRMSNormForward(device: GPUDevice, encoder: GPUCommandEncoder, args: ForwardTensors & RMSNormFunctionArgs): void {
  checkArity('encodeRMSNormForward', arguments, ['device', 'encoder', 'args']);
  encodeForward('RMSNorm', device, encoder, args as unknown as ForwardTensors & Record<string, unknown>);
}
/** Records RMSNorm's backward pass: dx, and dγ where given. */
export function encodeRMSNormBackward(device: GPUDevice, encoder: GPUCommandEncoder, args: Omit<BackwardTensors, 'dbeta'> & RMSNormFunctionArgs): void {
  checkArity('encodeRMSNormBackward', arguments, ['device', 'encoder', 'args']);
  encodeBackward('RMSNorm', device, encoder, args as unknown as BackwardTensors & Record<string, unknown>);
}
/** Records GroupNorm's forward pass on the caller's buffers. */
export function encodeGroupNormForward(device: GPUDevice, encoder: GPUCommandEncoder, args: ForwardTensors & GroupNormFunctionArgs): void {
  checkArity('encodeGroupNormForward', arguments, ['device', 'encoder', 'args']);
  encodeForward('GroupNorm', device, encoder, args as unknown as ForwardTensors & Record<string, unknown>);
}
/** Records GroupNorm's backward pass: dx, and dγ/dβ where given. */
export function encodeGroupNormBackward(device: GPUDevice, encoder: GPUCommandEncoder, args: BackwardTensors & GroupNormFunctionArgs): void {
  checkArity('encodeGroupNormBackward', arguments, ['device', 'encoder', 'args']);
  encodeBackward('GroupNorm', device, encoder, args as unknown as BackwardTensors & Record<string, unknown>);
}
/** Records InstanceNorm's forward pass (and, training with running statistics, their update) on the caller's buffers. */
export function encodeInstanceNormForward(device: GPUDevice, encoder: GPUCommandEncoder, args: ForwardTensors & InstanceNormFunctionArgs): void {
  checkArity('encodeInstanceNormForward', arguments, ['device', 'encoder', 'args']);
  encodeForward('InstanceNorm', device, encoder, args as unknown as ForwardTensors & Record<string, unknown>);
}
/** Records InstanceNorm's backward pass: dx, and dγ/dβ where given (`training` as in its forward call). */
export function encodeInstanceNormBackward(device: GPUDevice, encoder: GPUCommandEncoder, args: BackwardTensors & InstanceNormFunctionArgs): void {
  checkArity('encodeInstanceNormBackward', arguments, ['device', 'encoder', 'args']);
  encodeBackward('InstanceNorm', device, encoder, args as unknown as BackwardTensors & Record<string, unknown>);
}
