// Shared by the normalization family's kernels (LayerNorm, RMSNorm, GroupNorm, InstanceNorm): the
// host builds each shader as normalization/tensor_<storage>.wgsl + core/numerics.wgsl +
// core/workgroups.wgsl + core/activations.wgsl + normalization/common.wgsl + the kernel file
// (src/normalization/kernels.ts).
//
// A statistics *group* is what shares one mean and variance: a LayerNorm/RMSNorm row, a
// (sample, group of C/G channels) of GroupNorm, a (sample, channel) of InstanceNorm. Every group
// of every layout is `segs` segments of `seg_len` contiguous elements, `seg_stride` apart:
//   group (n, g) starts at n * sample_stride + g * group_stride;
//   channels-first GroupNorm: a segment is one channel's spatial plane (segs = C/G);
//   channels-last GroupNorm: a segment is the group's C/G channels of one position (segs = spatial);
//   LayerNorm: one segment, the row.
// The γ/β entry of the element at (segment k, offset j) of group g is
//   g * aff_group + k * aff_seg + j * aff_elem.

struct NormParams {
  groups: u32,          // G: statistics groups per sample
  rows: u32,            // N * G: statistics groups in the tensor (one workgroup each)
  segs: u32,
  seg_len: u32,
  seg_stride: u32,
  group_stride: u32,
  sample_stride: u32,
  count: u32,           // elements per group: segs * seg_len
  step_seg: u32,        // WG / seg_len and WG % seg_len: a thread's step to its next element
  step_elem: u32,
  aff_group: u32,
  aff_seg: u32,
  aff_elem: u32,
  total: u32,           // elements in the tensor
  eps: f32,
  momentum: f32,        // InstanceNorm's running statistics: weight of the new batch
  has_gamma: u32,       // 0: γ = 1 (the gamma binding is not read)
  has_beta: u32,        // 0: β = 0
  use_running: u32,     // 1: normalize with running_mean/var of the group's channel (InstanceNorm inference)
  update_non_finite: u32, // 1: a batch with NaN or Inf still updates the running statistics
  // The γ/β gradients see the tensor as [a_outer, a_count, a_inner] (a_count γ entries): element
  // (o, a, i) at (o * a_count + a) * a_inner + i belongs to sample o / a_rows_per_sample and group
  // a / a_per_group. Partial sums are taken over a_blocks blocks of a_block_rows values of o.
  a_outer: u32,
  a_count: u32,
  a_inner: u32,
  a_rows_per_sample: u32,
  a_per_group: u32,
  a_blocks: u32,
  a_block_rows: u32,
  lane_bits: u32,       // log2 of the threads per group (a power of two <= WG): WG >> lane_bits groups per workgroup
  pair_stores: u32,     // 1: packed halves whose segments hold 2+ elements, so neighbouring threads may share a word (store_y_step)
  row_width: u32,       // norm_backward_channels: lanes per row of a group's lanes (see there)
  _pad2: u32,
  _pad3: u32,
}

@group(0) @binding(0) var<uniform> params: NormParams;

// 1: RMSNorm: no mean is subtracted; the statistic is mean(x²).
override RMS: u32 = 0u;

// The rows kernels (norm_forward, norm_backward) give each statistics group 2^lane_bits threads
// (its lanes), so that a workgroup holds WG >> lane_bits short groups (a LayerNorm over 64
// features) or one long one. A thread's group, its lane, and its first thread in the workgroup.
// (The tree loops take their bound from params directly: uniformity analysis would not see
// through the struct.)
struct Lanes {
  group: u32,     // r = n * G + g (>= params.rows: the dispatch's overshoot, no group)
  lane: u32,
  first: u32,     // the group's first thread in the workgroup
  in_range: bool,
  start: u32,     // buffer index of the group's first element
  n: u32,         // sample
  g: u32,         // group within the sample
}

fn lanes_of(wid: vec3u, nwg: vec3u, lid: u32) -> Lanes {
  let lane = lid & ((1u << params.lane_bits) - 1u);
  let r = linear_workgroup(wid, nwg) * (WG >> params.lane_bits) + (lid >> params.lane_bits);
  let n = r / params.groups;
  let g = r - n * params.groups;
  return Lanes(r, lane, lid - lane, r < params.rows, n * params.sample_stride + g * params.group_stride, n, g);
}

// A thread's position in its group: segment and offset within it. A group's lanes walk it in
// chunks of VEC consecutive elements of one segment (one element, or 4 with
// normalization/tensor_f32x4.wgsl, whose segments start at and hold multiples of 4), a lane's
// chunks 2^lane_bits chunks apart, without an integer division per element: from a chunk to the
// lane's next one, step_seg segments and step_elem elements (2^lane_bits · VEC elements).
struct Walk {
  seg: u32,
  elem: u32,
}

fn walk_start(lane: u32) -> Walk {
  let first = lane * VEC;
  let s = first / params.seg_len;
  return Walk(s, first - s * params.seg_len);
}

fn walk_next(w: Walk) -> Walk {
  var seg = w.seg + params.step_seg;
  var elem = w.elem + params.step_elem;
  if (elem >= params.seg_len) {
    elem -= params.seg_len;
    seg += 1u;
  }
  return Walk(seg, elem);
}

// A step's chunks are consecutive in the group (lane l holds the l-th from the step's first), so
// the next lane holds this chunk's last element + 1 where it lies in the same segment, and the
// previous lane its first element - 1 where this one is not a segment's first (see store_y_step).
fn walk_pairs_next(lane: u32, elem: u32) -> bool {
  return lane + 1u < (1u << params.lane_bits) && elem + 1u < params.seg_len;
}

fn walk_pairs_prev(lane: u32, elem: u32) -> bool {
  return lane > 0u && elem > 0u;
}

// Steps (elements) of a thread's walk over `len` elements in chunks: the same for every thread
// of a workgroup, so that a walk may hold a barrier (the paired stores of packed halves).
fn run_steps(len: u32) -> u32 {
  let span = (1u << params.lane_bits) * VEC;
  return (len + span - 1u) / span * VEC;
}

// Steps of a thread's walk over a whole group.
fn walk_steps() -> u32 {
  return run_steps(params.count);
}

// The walks take LOADS_IN_FLIGHT chunks (IN_FLIGHT steps) at a time, every load issued before the
// first is used: a loop that uses each value before loading the next keeps one load in flight a
// thread, and a GPU needs several to cover its memory latency (4 loads of 16 bytes, as PyTorch's
// vectorized kernels, in chunks of 4). The sums still take the values in walk order, so the
// results are those of a one-step walk. The loops over a batch have constant bounds, so that a
// compiler can unroll them and keep the batch's arrays in registers.
const LOADS_IN_FLIGHT: u32 = 4u;
const IN_FLIGHT: u32 = LOADS_IN_FLIGHT * VEC;

// The next LOADS_IN_FLIGHT chunks of a walk: each chunk's first element, its γ entry and its
// offset in its segment, the γ entries between a chunk's elements, and how many steps lie in the
// group (a prefix of whole chunks: a walk past the end stays past it).
struct WalkSteps {
  e: array<u32, LOADS_IN_FLIGHT>,
  p: array<u32, LOADS_IN_FLIGHT>,
  elem: array<u32, LOADS_IN_FLIGHT>,
  p_step: u32,
  n: u32,
}

// The γ entry of step u of a batch.
fn step_param(s: WalkSteps, u: u32) -> u32 {
  return s.p[u / VEC] + (u % VEC) * s.p_step;
}

// The next batch of a walk from *w (which it advances).
fn walk_ahead(start: u32, g: u32, w: ptr<function, Walk>) -> WalkSteps {
  var s: WalkSteps;
  s.n = 0u;
  s.p_step = params.aff_elem;
  for (var c = 0u; c < LOADS_IN_FLIGHT; c++) {
    if ((*w).seg < params.segs) {
      s.e[c] = walk_element(start, *w);
      s.p[c] = walk_param(g, *w);
      s.elem[c] = (*w).elem;
      s.n = (c + 1u) * VEC;
    }
    *w = walk_next(*w);
  }
  return s;
}

// Offset of step j of lane `lane` in a walk over one contiguous run of elements (a row, a plane)
// in the same chunks: chunk j / VEC of the lane, element j % VEC of it.
fn run_offset(lane: u32, j: u32) -> u32 {
  return ((j / VEC) * (1u << params.lane_bits) + lane) * VEC + j % VEC;
}

// The batch from step j0 (a multiple of IN_FLIGHT) of such a walk over `len` elements from
// `start`; the γ entry of a step is its offset in the run (a LayerNorm row's).
fn run_ahead(start: u32, len: u32, lane: u32, j0: u32) -> WalkSteps {
  var s: WalkSteps;
  s.n = 0u;
  s.p_step = 1u;
  for (var c = 0u; c < LOADS_IN_FLIGHT; c++) {
    let i = run_offset(lane, j0 + c * VEC);
    s.e[c] = start + i;
    s.p[c] = i;
    s.elem[c] = i;
    if (i < len) { s.n = (c + 1u) * VEC; }
  }
  return s;
}

// The values of a batch, a chunk per load (steps past s.n are not read).
fn load_x_ahead(s: WalkSteps) -> array<f32, IN_FLIGHT> {
  var v: array<f32, IN_FLIGHT>;
  for (var c = 0u; c < LOADS_IN_FLIGHT; c++) {
    if (c * VEC < s.n) {
      let q = load_x_chunk(s.e[c]);
      for (var k = 0u; k < VEC; k++) { v[c * VEC + k] = q[k]; }
    }
  }
  return v;
}

fn load_xdy_ahead(s: WalkSteps) -> array<vec2f, IN_FLIGHT> {
  var v: array<vec2f, IN_FLIGHT>;
  for (var c = 0u; c < LOADS_IN_FLIGHT; c++) {
    if (c * VEC < s.n) {
      let qx = load_x_chunk(s.e[c]);
      let qdy = load_dy_chunk(s.e[c]);
      for (var k = 0u; k < VEC; k++) { v[c * VEC + k] = vec2f(qx[k], qdy[k]); }
    }
  }
  return v;
}

// The stores of a batch, which every thread of the workgroup calls together (uniform control
// flow: packed halves pair threads): step u gets v[u] where `has` and u < s.n.
fn store_y_ahead(lid: u32, lane: u32, s: WalkSteps, has: bool, v: array<f32, IN_FLIGHT>) {
  for (var c = 0u; c < LOADS_IN_FLIGHT; c++) {
    var q: array<f32, VEC>;
    for (var k = 0u; k < VEC; k++) { q[k] = v[c * VEC + k]; }
    let h = has && c * VEC < s.n;
    store_y_chunk(lid, h, s.e[c], q, h && walk_pairs_next(lane, s.elem[c] + VEC - 1u), h && walk_pairs_prev(lane, s.elem[c]));
  }
}

fn store_dx_ahead(lid: u32, lane: u32, s: WalkSteps, has: bool, v: array<f32, IN_FLIGHT>) {
  for (var c = 0u; c < LOADS_IN_FLIGHT; c++) {
    var q: array<f32, VEC>;
    for (var k = 0u; k < VEC; k++) { q[k] = v[c * VEC + k]; }
    let h = has && c * VEC < s.n;
    store_dx_chunk(lid, h, s.e[c], q, h && walk_pairs_next(lane, s.elem[c] + VEC - 1u), h && walk_pairs_prev(lane, s.elem[c]));
  }
}

fn walk_element(start: u32, w: Walk) -> u32 {
  return start + w.seg * params.seg_stride + w.elem;
}

fn walk_param(g: u32, w: Walk) -> u32 {
  return g * params.aff_group + w.seg * params.aff_seg + w.elem * params.aff_elem;
}

// A group's coefficients, as kept in `saved` (one vec4f per group): the shift (one value of the
// group: x - shift is exact for values near it), the mean of x - shift, 1 / sqrt(var + eps) (invstd)
// and the biased variance. RMSNorm: (0, 0, 1 / sqrt(mean(x²) + eps), mean(x²)).
struct GroupCoef {
  shift: f32,
  mean: f32,
  invstd: f32,
  variance: f32,
}

fn to_coef(v: vec4f) -> GroupCoef {
  return GroupCoef(v.x, v.y, v.z, v.w);
}

// x̂ of one element.
fn normalized(k: GroupCoef, v: f32) -> f32 {
  if (RMS == 1u) { return v * k.invstd; }
  return ((v - k.shift) - k.mean) * k.invstd;
}

@group(0) @binding(6) var<storage, read> gamma: array<f32>;
@group(0) @binding(7) var<storage, read> beta: array<f32>;

fn gamma_at(p: u32) -> f32 {
  if (params.has_gamma == 0u) { return 1.0; }
  return gamma[p];
}

fn beta_at(p: u32) -> f32 {
  if (params.has_beta == 0u) { return 0.0; }
  return beta[p];
}
