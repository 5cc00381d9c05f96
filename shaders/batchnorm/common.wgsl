// Shared by every batch-norm kernel and feature scaling's: the host builds each shader as
// batchnorm/tensor_<storage>.wgsl + core/numerics.wgsl + core/workgroups.wgsl
// (+ core/activations.wgsl) + batchnorm/common.wgsl (+ the workgroup reduction:
// core/reduce_partial.wgsl and core/reduce_tree.wgsl or core/reduce_subgroups.wgsl) + the kernel
// file (src/batchnorm/kernels.ts, src/feature-scaling/kernels.ts).
//
// Every layout is viewed as [outer, channels, inner] (row-major): element (o, c, i) lives at
// (o * channels + c) * inner + i, and per-channel statistics reduce over o and i.

struct Params {
  outer: u32,
  channels: u32,
  inner: u32,
  count: u32,          // elements per channel: outer * inner
  chunks: u32,         // partial-reduction workgroups per channel
  total: u32,          // outer * channels * inner
  eps: f32,
  momentum: f32,       // weight of the new batch; < 0 selects the cumulative moving average
  update_running: u32, // 1: training step that updates the running statistics
  batch_stats: u32,    // 1: the forward pass normalized with batch statistics (backward flows through them)
  update_non_finite: u32, // 1: update the running statistics even from a batch with NaN or Inf
  unbiased_running: u32,  // 1: the running variance takes the unbiased batch variance n/(n-1) (PyTorch); 0: biased (Keras)
  chunk: u32,          // elements of a channel per chunked partial workgroup, or rows per channels-last block
  _pad0: u32,          // to a multiple of 16 bytes (a uniform)
  _pad1: u32,
  _pad2: u32,
}

// Per-channel coefficients of a forward pass. Data is reduced and normalized relative to `shift`,
// one value of the channel itself: x - shift is exact in float32 when the channel's values are
// close to each other (Sterbenz), so a large common offset costs no precision.
//
// In a buffer (`saved`, 8 floats per channel) they are planes: field f of channel c is float
// f * channels + c, read and written as array<vec4f>, so that one field of four consecutive
// channels (C % 4 == 0) is one vec4 and a warp's loads of it are contiguous.
struct ChannelCoef {
  shift: f32,
  mean: f32,      // mean of x - shift
  variance: f32,  // biased variance the pass normalized with
  invstd: f32,    // 1 / sqrt(variance + eps)
  scale: f32,     // gamma * invstd
  beta: f32,
  factor: f32,    // training: this batch's weight in the running update (momentum, or 1 / (batches + 1))
  _pad1: f32,
}

@group(0) @binding(0) var<uniform> params: Params;

// Values a partial-reduction thread accumulates in one run before merging the run into its total,
// so that its rounding grows with RUN plus the number of runs, not with the chunk's length.
const RUN: u32 = 64u;

// Channels-last partial reductions (one workgroup per tile of RWG channels and block of
// params.chunk rows): the thread's (channel, block).
fn channels_last_item(wid: vec3u, nwg: vec3u, lid: u32) -> vec2u {
  let g = linear_workgroup(wid, nwg);
  let tiles = (params.channels + RWG - 1u) / RWG;
  let block = g / tiles;
  return vec2u((g - block * tiles) * RWG + lid, block);
}

// Channels-last tensors (inner == 1) of C % 4 == 0 channels go four channels at a time: a channel
// group is 4 consecutive channels of a row, one vec4 at element row * channels + 4 * group.
//
// Their elementwise kernels run a fixed number of threads, a multiple of the G = C / 4 groups:
// thread t keeps group t % G (and its coefficients) for every row it visits, rows t / G,
// t / G + lanes, ..., so no element pays an integer division.
fn group_lanes(nwg: vec3u) -> u32 {
  return (nwg.x * nwg.y * WG) / (params.channels / 4u);
}

// An elementwise channels-last thread's (row lane, first channel, lanes); lane >= lanes: none.
fn group_thread(wid: vec3u, nwg: vec3u, lid: u32) -> vec3u {
  let t = linear_workgroup(wid, nwg) * WG + lid;
  let groups = params.channels / 4u;
  let lanes = group_lanes(nwg);
  let lane = t / groups;
  return vec3u(lane, 4u * (t - lane * groups), lanes);
}

// A channel group's forward coefficients (ChannelCoef's fields the elementwise kernels read), as
// vectors over its four channels, or over a slot's lanes (lane_coef).
struct ChannelCoef4 {
  shift: vec4f,
  mean: vec4f,
  scale: vec4f,
  beta: vec4f,
}

// The coefficients of a slot's elements, lane l from its channel's (slot_channels).
fn lane_coef(k: array<ChannelCoef, 4>) -> ChannelCoef4 {
  return ChannelCoef4(vec4f(k[0].shift, k[1].shift, k[2].shift, k[3].shift), vec4f(k[0].mean, k[1].mean, k[2].mean, k[3].mean),
                       vec4f(k[0].scale, k[1].scale, k[2].scale, k[3].scale), vec4f(k[0].beta, k[1].beta, k[2].beta, k[3].beta));
}

// Fields of ChannelCoef kept in a buffer, in plane order.
const COEF_SHIFT: u32 = 0u;
const COEF_MEAN: u32 = 1u;
const COEF_VARIANCE: u32 = 2u;
const COEF_INVSTD: u32 = 3u;
const COEF_SCALE: u32 = 4u;
const COEF_BETA: u32 = 5u;
const COEF_FACTOR: u32 = 6u;

// Where field f of channel c lives in a planar coefficient buffer of `fields` planes over
// params.channels channels: (vec4 index, component).
fn plane_slot(f: u32, c: u32) -> vec2u {
  let i = f * params.channels + c;
  return vec2u(i >> 2u, i & 3u);
}

// The vec4 of field f for channels c .. c + 3 (c % 4 == 0, channels % 4 == 0).
fn plane_group(f: u32, c: u32) -> u32 {
  return (f * params.channels + c) >> 2u;
}

// The fields of a ChannelCoef kept in a buffer (COEF_SHIFT .. COEF_FACTOR), in plane order.
fn coef_fields(k: ChannelCoef) -> array<f32, 7> {
  return array<f32, 7>(k.shift, k.mean, k.variance, k.invstd, k.scale, k.beta, k.factor);
}

// A training pass's coefficients of a channel from its first value (the shift), the (mean, M2, n)
// of x - shift over the whole batch, gamma, beta and the batch's weight in the running update.
// NaN or Inf anywhere in the channel (or a variance past float32's range) makes its statistics
// and outputs NaN, whatever the hardware does with infinities.
fn batch_coef(shift: f32, total: vec3f, g: f32, b: f32, factor: f32) -> ChannelCoef {
  var mean = total.x;
  var variance = total.y / f32(params.count);
  if (!(is_finite(shift) && is_finite(mean) && is_finite(variance))) {
    mean = nan();
    variance = nan();
  }
  let invstd = inverseSqrt(variance + params.eps);
  return ChannelCoef(shift, mean, variance, invstd, g * invstd, b, factor, 0.0);
}

// Their reductions: a workgroup of WG threads covers a tile of `width` = min(G, RWG) groups and
// tile_lanes() row lanes, over one block of rows (params.chunks blocks per channel).
struct RowTile {
  group: u32,  // the thread's channel group (>= G: none)
  width: u32,  // groups per tile
  lane: u32,   // the thread's row lane (>= tile_lanes(): none)
  block: u32,  // >= params.chunks: the dispatch's overshoot
  start: u32,  // the block's rows [start, end)
  end: u32,
}

// Row lanes of a reduction tile; a function of the uniform params alone, so that loops bounded
// by it may hold barriers.
fn tile_lanes() -> u32 {
  return WG / min(params.channels / 4u, RWG);
}

// Whether a reduction thread has a channel group, a row lane and a block to reduce.
fn tile_in_range(t: RowTile) -> bool {
  return t.group < params.channels / 4u && t.lane < tile_lanes() && t.block < params.chunks;
}

// The first stride of the tree that merges a tile's lanes: the largest power of two below them.
fn first_lane_stride() -> u32 {
  var stride = 1u;
  while (stride < tile_lanes()) { stride *= 2u; }
  return stride / 2u;
}

// Whether the thread's lane takes in lane + stride at this step of the tree.
fn tree_takes(t: RowTile, stride: u32) -> bool {
  return t.lane < stride && t.lane + stride < tile_lanes();
}

fn row_tile(wid: vec3u, nwg: vec3u, lid: u32) -> RowTile {
  let groups = params.channels / 4u;
  let width = min(groups, RWG);
  let tiles = (groups + width - 1u) / width;
  let g = linear_workgroup(wid, nwg);
  let block = g / tiles;
  let lane = lid / width;
  // Rows per block: the blocks split the rows evenly, in runs of 4.
  let rows = ((params.outer + params.chunks - 1u) / params.chunks + 3u) & ~3u;
  let start = min(block * rows, params.outer);
  return RowTile((g - block * tiles) * width + lid - lane * width, width, lane, block, start, min(start + rows, params.outer));
}

// Chunked partial reductions (one workgroup per (channel, chunk of params.chunk elements)):
// workgroup g's (channel, first element, end) within the channel. A channel >= channels is overshoot.
fn chunk_of(g: u32) -> vec3u {
  let c = g / params.chunks;
  let start = (g - c * params.chunks) * params.chunk;
  return vec3u(c, start, min(start + params.chunk, params.count));
}

// Buffer index of the j-th element (0 <= j < count) of channel c.
fn channel_element(c: u32, j: u32) -> u32 {
  let o = j / params.inner;
  let i = j - o * params.inner;
  return (o * params.channels + c) * params.inner + i;
}

// The slot kernels (normalize and input_grad outside channels-last C % 4 == 0) run a fixed grid
// too, so that no element pays an integer division. The channels of the slots repeat with a
// period of P = C * inner / gcd(C * inner, SLOT) slots (one row of the [outer, C, inner] view, or
// two where a row is an odd number of halves), so a thread t < T = lanes * P takes the slots
// t, t + T, t + 2T, ...: the same channels at the same offsets, row after row. It finds its
// slot's channels once (slot_channels), keeps their coefficients, and walks.
fn slot_period() -> u32 {
  let row = params.channels * params.inner;
  return row / min(SLOT, row & (0u - row)); // SLOT is a power of two: gcd = the lowest set bit, at most SLOT
}

// A slot thread's (first slot, slot stride T); first slot >= slot_count(): none. The host
// dispatches at least one period of threads; T is never 0, so a thread's loop always ends.
fn slot_thread(wid: vec3u, nwg: vec3u, lid: u32) -> vec2u {
  let p = slot_period();
  return vec2u(linear_workgroup(wid, nwg) * WG + lid, max((nwg.x * nwg.y * WG) / p, 1u) * p);
}

fn slot_count() -> u32 {
  return (params.total + SLOT - 1u) / SLOT;
}

// The channels of a slot kernel's workgroup: its threads' first slots are consecutive (slot_thread),
// so their elements are one run of WG * SLOT elements and their channels one cyclic run of at
// most SLOT_SPAN channels -- (first channel, count). The training kernels merge these channels'
// partials once per workgroup into workgroup memory, index span_index.
const SLOT_SPAN: u32 = WG * SLOT / SLOT_MIN_INNER + 1u;

fn workgroup_channels(wid: vec3u, nwg: vec3u) -> vec2u {
  let e = linear_workgroup(wid, nwg) * WG * SLOT;
  let first_run = e / params.inner;
  let last_run = (e + WG * SLOT - 1u) / params.inner;
  return vec2u(first_run % params.channels, min(params.channels, last_run - first_run + 1u));
}

// Where channel c of a workgroup's span (workgroup_channels) sits in its workgroup memory.
fn span_index(span: vec2u, c: u32) -> u32 {
  return select(c - span.x, c + params.channels - span.x, c < span.x);
}

// The channel of span index i.
fn span_channel(span: vec2u, i: u32) -> u32 {
  let c = span.x + i;
  return select(c, c - params.channels, c >= params.channels);
}

// The channels of a channels-last vec4 workgroup: its threads are consecutive (group_thread), so
// their channel groups are one cyclic run of min(G, WG) groups -- as channels (first channel,
// count), count <= GROUP_SPAN; span_index and span_channel apply.
const GROUP_SPAN: u32 = 4u * WG;

fn workgroup_groups(wid: vec3u, nwg: vec3u) -> vec2u {
  let groups = params.channels / 4u;
  return vec2u(4u * ((linear_workgroup(wid, nwg) * WG) % groups), 4u * min(groups, WG));
}

// The one workgroup of a channels-last vec4 kernel that writes channel c's per-channel results:
// the one of its group's row-lane-0 thread (thread c / 4).
fn group_designated_workgroup(c: u32) -> u32 {
  return c / 4u / WG;
}

// The one workgroup of a slot kernel that writes channel c's per-channel results (the statistics,
// the running update, dgamma and dbeta): the one whose first slots hold the channel's first
// element (c * inner, in slot (c * inner) / SLOT of the first row). Every dispatch has it: the
// host dispatches at least one period of slots.
fn designated_workgroup(c: u32) -> u32 {
  return (c * params.inner) / SLOT / WG;
}

// The channel of each element of `slot` (lanes from SLOT on repeat the first): the thread's only
// integer divisions, then one step at a time (a half slot may straddle two channels).
fn slot_channels(slot: u32) -> vec4u {
  let e = slot * SLOT;
  let run = e / params.inner;
  var c = run % params.channels;
  var i = e - run * params.inner;
  var channels = vec4u(c);
  for (var k = 1u; k < SLOT; k++) {
    i += 1u;
    if (i == params.inner) {
      i = 0u;
      c += 1u;
      if (c == params.channels) { c = 0u; }
    }
    channels[k] = c;
  }
  return channels;
}

// The slot's values with the lanes past the tensor's end set to 0 (the padding half of an odd
// tensor's last word is written as 0).
fn slot_tail(slot: u32, v: vec4f) -> vec4f {
  let first = slot * SLOT;
  if (first + SLOT <= params.total) { return v; }
  return select(v, vec4f(0.0), vec4u(first) + vec4u(0u, 1u, 2u, 3u) >= vec4u(params.total));
}

// The order in which the last dispatch of a pass merges a channel's partials (merged_moments,
// summed_grads), the same in every workgroup that merges the channel: runs of MERGE_RUN partials
// (four interleaved chains each, then pairwise), the runs in turn, so no value passes through
// more than about MERGE_RUN / 4 + chunks / MERGE_RUN roundings.
const MERGE_RUN: u32 = 32u;

// The elementwise walks of normalize (batchnorm/normalize.wgsl) and of feature scaling's
// transform (feature-scaling/scaling.wgsl), with the fused activation (ACTIVATION).
//
// The elementwise walks (normalize, input_grad) go over a thread's units (slots or rows) from
// its last down, four per iteration with every load issued before the first store (for all the
// compiler knows a store may alias the loads, so it would not hoist them): four 16-byte loads in
// flight per thread, as PyTorch's channels-last kernels keep, where one left a large tensor short
// of saturating memory. Downwards, because the pass before (the statistics, the partial gradient
// sums) read the last rows last: the L2's worth of x it left is read first. Neither the order
// nor the grouping changes a value.
//
// How many of the units first, first + stride, ... fall below end.
fn walk_length(first: u32, stride: u32, end: u32) -> u32 {
  return select(0u, (end - 1u - first) / stride + 1u, first < end);
}

// Four of a thread's units, as columns: rows `step` elements apart from e, or slots `stride`
// apart; the four loads are issued together, before any store of the walk.
fn load_x_rows(e: u32, step: u32) -> mat4x4f {
  return mat4x4f(load_x4(e), load_x4(e + step), load_x4(e + 2u * step), load_x4(e + 3u * step));
}
fn load_dy_rows(e: u32, step: u32) -> mat4x4f {
  return mat4x4f(load_dy4(e), load_dy4(e + step), load_dy4(e + 2u * step), load_dy4(e + 3u * step));
}
fn load_x_slots(slot: u32, stride: u32) -> mat4x4f {
  return mat4x4f(load_x_slot(slot), load_x_slot(slot + stride), load_x_slot(slot + 2u * stride), load_x_slot(slot + 3u * stride));
}
fn load_dy_slots(slot: u32, stride: u32) -> mat4x4f {
  return mat4x4f(load_dy_slot(slot), load_dy_slot(slot + stride), load_dy_slot(slot + 2u * stride), load_dy_slot(slot + 3u * stride));
}

// The slot grid's walk: thread t (first slot, stride) normalizes its slot of every row it visits
// with its slot's coefficients k, kept in registers.
fn normalize_slots(t: vec2u, slots: u32, k: ChannelCoef4) {
  var left = walk_length(t.x, t.y, slots);
  for (; left >= 4u; left -= 4u) {
    let slot = t.x + (left - 4u) * t.y; // the lowest of the four
    let xs = load_x_slots(slot, t.y);
    store_y_slot(slot, slot_tail(slot, normalized4(xs[0], k)));
    store_y_slot(slot + t.y, slot_tail(slot + t.y, normalized4(xs[1], k)));
    store_y_slot(slot + 2u * t.y, slot_tail(slot + 2u * t.y, normalized4(xs[2], k)));
    store_y_slot(slot + 3u * t.y, slot_tail(slot + 3u * t.y, normalized4(xs[3], k)));
  }
  for (; left > 0u; left--) {
    let slot = t.x + (left - 1u) * t.y;
    store_y_slot(slot, slot_tail(slot, normalized4(load_x_slot(slot), k)));
  }
}

// The channels-last vec4 walk: thread g (row lane, first channel, lanes) normalizes its four
// channels of every row it visits with their coefficients k.
fn normalize_rows4(g: vec3u, k: ChannelCoef4) {
  let step = g.z * params.channels; // elements between the thread's rows
  var left = walk_length(g.x, g.z, params.outer);
  for (; left >= 4u; left -= 4u) {
    let e = (g.x + (left - 4u) * g.z) * params.channels + g.y; // the lowest of the four rows
    let xs = load_x_rows(e, step);
    store_y4(e, normalized4(xs[0], k));
    store_y4(e + step, normalized4(xs[1], k));
    store_y4(e + 2u * step, normalized4(xs[2], k));
    store_y4(e + 3u * step, normalized4(xs[3], k));
  }
  for (; left > 0u; left--) {
    let e = (g.x + (left - 1u) * g.z) * params.channels + g.y;
    store_y4(e, normalized4(load_x4(e), k));
  }
}

// y of four values with their coefficients k (then the fused activation).
fn normalized4(v: vec4f, k: ChannelCoef4) -> vec4f {
  return activate4(((v - k.shift) - k.mean) * k.scale + k.beta);
}

// (mean, M2) of four channels over n values each (a channel group of a channels-last tensor).
struct Moments4 {
  mean: vec4f,
  m2: vec4f,
  n: f32,
}

// merge() for a channel group: its channels have the same count.
fn merge4(a: Moments4, b: Moments4) -> Moments4 {
  if (b.n == 0.0) { return a; }
  if (a.n == 0.0) { return b; }
  let n = a.n + b.n;
  let delta = b.mean - a.mean;
  let wb = b.n / n;
  return Moments4(a.mean + delta * wb, a.m2 + b.m2 + delta * delta * (a.n * wb), n);
}
