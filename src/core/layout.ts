/**
 * Tensor layouts and their [outer, C, inner] view.
 *
 * Batch norm keeps one mean and variance per channel (per feature map for convolutions) and
 * reduces over every other axis. Every supported layout is a row-major tensor whose channel axis
 * splits the remaining axes into an `outer` block before it and an `inner` block after it.
 */
import { describeValue } from './validate.js';

/**
 * Supported tensor layouts. `NC` is a dense layer's (batch, features); `NCL`, `NCHW` and `NCDHW`
 * are PyTorch's channels-first 1-D, 2-D and 3-D convolutions; `NLC`, `NHWC` and `NDHWC` are
 * the channels-last ones (Keras's default, `axis=-1`).
 */
export type Layout = 'NC' | 'NCL' | 'NLC' | 'NCHW' | 'NHWC' | 'NCDHW' | 'NDHWC';

/** A tensor seen as [outer, channels, inner]; statistics reduce over outer and inner. */
export interface ChannelView {
  /** Product of the axes before the channel axis. */
  outer: number;
  /** Size of the channel axis. */
  channels: number;
  /** Product of the axes after the channel axis. */
  inner: number;
}

const AXES: Record<Layout, { rank: number; channelAxis: number }> = {
  NC: { rank: 2, channelAxis: 1 },
  NCL: { rank: 3, channelAxis: 1 },
  NLC: { rank: 3, channelAxis: 2 },
  NCHW: { rank: 4, channelAxis: 1 },
  NHWC: { rank: 4, channelAxis: 3 },
  NCDHW: { rank: 5, channelAxis: 1 },
  NDHWC: { rank: 5, channelAxis: 4 },
};

/** Every layout name, in a stable order. */
export const LAYOUTS = Object.keys(AXES) as Layout[];

/** Throws unless `layout` names a supported layout. */
export function checkLayout(layout: unknown, argName = 'layout'): asserts layout is Layout {
  if (typeof layout !== 'string' || !(layout in AXES)) {
    throw new TypeError(`${argName} must be one of ${LAYOUTS.map((l) => `'${l}'`).join(', ')}; got ${describeValue(layout)}`);
  }
}

/** The layout of a tensor of `rank` dimensions whose channel axis is `axis` (negative counts from the end), or undefined where none is supported. */
export function findLayout(rank: number, axis: number): Layout | undefined {
  const a = axis < 0 ? rank + axis : axis;
  return LAYOUTS.find((l) => AXES[l].rank === rank && AXES[l].channelAxis === a);
}

/**
 * The layout of a tensor of `rank` dimensions (2 to 5) whose channel axis is `axis` (negative
 * counts from the end, as Keras's axis=-1): layoutFor(4, -1) is 'NHWC'. Throws, naming the
 * axes a supported layout of that rank has, where there is none.
 */
export function layoutFor(rank: number, axis: number): Layout {
  const ranks = [...new Set(LAYOUTS.map((l) => AXES[l].rank))];
  if (!Number.isSafeInteger(rank) || !ranks.includes(rank)) throw new RangeError(`layoutFor: rank must be ${ranks.join(', ')} (a supported layout's rank); got ${describeValue(rank)}`);
  const layout = Number.isSafeInteger(axis) ? findLayout(rank, axis) : undefined;
  if (!layout) {
    const options = LAYOUTS.filter((l) => AXES[l].rank === rank);
    const axes = options.map((l) => `${AXES[l].channelAxis} or ${AXES[l].channelAxis - rank} ('${l}')`).join(', ');
    throw new RangeError(`layoutFor: axis must be the channel axis of a supported rank-${rank} layout, ${axes}; got ${describeValue(axis)}`);
  }
  return layout;
}

/** The position of the channel axis in a shape of this layout. */
export function channelAxis(layout: Layout): number {
  checkLayout(layout);
  return AXES[layout].channelAxis;
}

/**
 * The [outer, C, inner] view of `shape` in `layout`. Throws a TypeError naming `argName` when the
 * shape has the wrong rank or a dimension that is not a positive integer.
 */
export function channelView(layout: Layout, shape: readonly number[], argName = 'shape'): ChannelView {
  checkLayout(layout);
  const { rank, channelAxis: axis } = AXES[layout];
  if (!Array.isArray(shape) || shape.length !== rank) {
    throw new TypeError(`${argName} must have ${rank} dimensions for layout '${layout}'; got ${Array.isArray(shape) ? `[${shape.join(', ')}]` : describeValue(shape)}`);
  }
  // An index loop: forEach would skip the holes of a sparse array ([2, 2, , 2]).
  for (let i = 0; i < shape.length; i++) {
    const d = shape[i];
    if (!Number.isSafeInteger(d) || d < 1) {
      throw new TypeError(`${argName}[${i}] must be a positive integer; got ${describeValue(d)} in [${shape.join(', ')}]`);
    }
  }
  const product = (dims: readonly number[]) => dims.reduce((a, b) => a * b, 1);
  return { outer: product(shape.slice(0, axis)), channels: shape[axis], inner: product(shape.slice(axis + 1)) };
}

/** Number of elements in a view. */
export function viewSize(view: ChannelView): number {
  checkView(view);
  return view.outer * view.channels * view.inner;
}

/** Throws unless `view` is a ChannelView { outer, channels, inner } of positive integers. */
export function checkView(view: unknown, argName = 'view'): asserts view is ChannelView {
  const v = view as Partial<ChannelView> | null;
  const ok = v !== null && typeof v === 'object' && [v.outer, v.channels, v.inner].every((d) => Number.isSafeInteger(d) && (d as number) >= 1);
  if (!ok) {
    const got = v !== null && typeof v === 'object' ? `{ outer: ${describeValue(v.outer)}, channels: ${describeValue(v.channels)}, inner: ${describeValue(v.inner)} }` : describeValue(view);
    throw new TypeError(`${argName} must be a ChannelView { outer, channels, inner } of positive integers (see channelView(layout, shape)); got ${got}`);
  }
}
