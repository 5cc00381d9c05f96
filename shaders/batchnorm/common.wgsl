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

// Elements of one channel that one partial-reduction workgroup (RWG threads) covers (32 per thread).
const CHUNK: u32 = 2048u;
// Channels-last reductions (inner == 1): a workgroup covers RWG consecutive channels, one per
// thread, over a block of this many rows.
const ROWS: u32 = 256u;

// Channels-last partial reductions (one workgroup per tile of RWG channels and block of ROWS
// rows): the thread's (channel, block).
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

fn coef_fields(k: ChannelCoef) -> array<f32, 6> {
  return array<f32, 6>(k.shift, k.mean, k.variance, k.invstd, k.scale, k.beta);
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

// Chunked partial reductions (one workgroup per (channel, chunk of CHUNK elements)): workgroup
// g's (channel, first element, end) within the channel. A channel >= channels is overshoot.
fn chunk_of(g: u32) -> vec3u {
  let c = g / params.chunks;
  let start = (g - c * params.chunks) * CHUNK;
  return vec3u(c, start, min(start + CHUNK, params.count));
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
