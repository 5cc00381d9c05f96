// Backward pass. With x_hat = (x - mean) * invstd and y = gamma * x_hat + beta:
//   dbeta  = sum(dy)            dgamma = sum(dy * x_hat) = invstd * sum(dy * (x - mean))
//   dx     = gamma * invstd * (dy - sum(dy) / n - x_hat * sum(dy * x_hat) / n)   (batch statistics)
//   dx     = gamma * invstd * dy                                                 (running statistics)
// written per channel as dx = k * dy - (x - shift) * q - (p - mean * q): x - shift is exact for
// values near the channel's offset and mean (relative to shift) is small, so no large offset
// cancels (see ChannelCoef).
//
// partial_grad_sums: one workgroup per (channel, chunk) -> partials[g] = (sum dy, sum dy * (x - mean)),
//                    summed over the workgroup by workgroup_reduce (reduce_tree.wgsl or reduce_subgroups.wgsl)
//                    (partial_grad_sums_channels_last and _vec4: the same for inner == 1)
// finalize_grads:    one workgroup per channel -> dgamma, dbeta and grad_coef
// input_grad:        a fixed grid of threads over slots (1, 2 or 4 elements), each keeping one
//                    slot's channels (see slot_period) -> dx
//                    (input_grad_channels_last_vec4: one thread per (channel group, row lane))

// The forward pass's coefficients (ChannelCoef planes, batchnorm/common.wgsl).
@group(0) @binding(5) var<storage, read> coef: array<vec4f>;
@group(0) @binding(6) var<storage, read_write> partials: array<vec4f>;
@group(0) @binding(7) var<storage, read> gamma: array<f32>;
@group(0) @binding(8) var<storage, read_write> dgamma: array<f32>;
@group(0) @binding(9) var<storage, read_write> dbeta: array<f32>;
// Per channel (k, q, p - mean * q, shift): dx = k * dy - (x - shift) * q - (p - mean * q), as
// four planes like the ChannelCoef planes.
@group(0) @binding(10) var<storage, read_write> grad_coef: array<vec4f>;
@group(0) @binding(11) var<storage, read> grad_coef_in: array<vec4f>;

fn coef_field(f: u32, c: u32) -> f32 {
  let s = plane_slot(f, c);
  return coef[s.x][s.y];
}

// The fields the backward kernels read.
fn load_coef(c: u32) -> ChannelCoef {
  return ChannelCoef(coef_field(COEF_SHIFT, c), coef_field(COEF_MEAN, c), 0.0, coef_field(COEF_INVSTD, c),
                     coef_field(COEF_SCALE, c), coef_field(COEF_BETA, c), 0.0, 0.0);
}

// dx = k * dy - (x - shift) * q - p' per lane: a channel group's, or a slot's lane by lane.
struct GradCoef {
  k: vec4f,
  q: vec4f,
  p: vec4f,
  shift: vec4f,
}

// The dx coefficients of the channels of a slot's elements, lane by lane (slot_channels).
fn slot_grad_coef(channels: vec4u) -> GradCoef {
  var t: array<vec4f, 4>;
  for (var f = 0u; f < 4u; f++) {
    for (var l = 0u; l < 4u; l++) {
      let s = plane_slot(f, channels[l]);
      t[f][l] = grad_coef_in[s.x][s.y];
    }
  }
  return GradCoef(t[0], t[1], t[2], t[3]);
}

// (x - shift) * q, dx's term through the batch statistics. At inference there is none (q = 0),
// and a non-finite x must not turn it into NaN: there dx = k * dy does not depend on x.
fn stats_term(v: vec4f, shift: vec4f, q: vec4f) -> vec4f {
  return select(vec4f(0.0), (v - shift) * q, params.batch_stats == 1u);
}

// With a fused activation, the gradient with respect to the normalized value z (see
// activation_grad4): z is recomputed from x exactly as normalize computed it.
fn activation_gate(dy: f32, x: f32, c: u32) -> f32 {
  if (ACTIVATION == 0u) { return dy; }
  return activation_gate4(vec4f(dy), vec4f(x), c).x;
}

fn activation_gate4(dy: vec4f, x: vec4f, c: u32) -> vec4f {
  if (ACTIVATION == 0u) { return dy; }
  let k = load_coef(c);
  return activation_grad4(dy, ((x - k.shift) - k.mean) * k.scale + k.beta);
}

@compute @workgroup_size(RWG)
fn partial_grad_sums(@builtin(workgroup_id) wid: vec3u,
                     @builtin(num_workgroups) nwg: vec3u,
                     ids: ReduceIds) {
  let lid = ids.lid;
  let g = linear_workgroup(wid, nwg);
  let chunk = chunk_of(g);
  let c = chunk.x;
  if (c >= params.channels) { return; }
  let start = chunk.y;
  let end = chunk.z;
  let shift = coef_field(COEF_SHIFT, c);
  let mean = coef_field(COEF_MEAN, c);

  var acc = vec2f(0.0);
  if (params.inner % 4u == 0u) {
    // Runs of 4 contiguous elements of the channel (as in partial_stats).
    for (var j = start + 4u * lid; j < end; j += 4u * RWG) {
      let e = channel_element(c, j);
      let xs = load_x4(e);
      let g_out = activation_gate4(load_dy4(e), xs, c);
      let centered = (xs - shift) - mean;
      acc += vec2f(g_out.x + g_out.y + g_out.z + g_out.w, dot(g_out, centered));
    }
  } else {
    for (var j = start + lid; j < end; j += RWG) {
      let e = channel_element(c, j);
      let xe = load_x(e);
      let g_out = activation_gate(load_dy(e), xe, c);
      // x - mean as (x - shift) - mean (see ChannelCoef).
      acc += vec2f(g_out, g_out * ((xe - shift) - mean));
    }
  }
  let total = workgroup_reduce(Partial(vec3f(0.0), acc), ids, REDUCE_SUMS).extra;
  if (lid == 0u) {
    partials[g] = vec4f(total, 0.0, 0.0);
  }
}

// Channels-last variant of partial_grad_sums (inner == 1), laid out like
// partial_stats_channels_last.
@compute @workgroup_size(RWG)
fn partial_grad_sums_channels_last(@builtin(workgroup_id) wid: vec3u,
                                   @builtin(num_workgroups) nwg: vec3u,
                                   @builtin(local_invocation_index) lid: u32) {
  let item = channels_last_item(wid, nwg, lid);
  let c = item.x;
  let block = item.y;
  if (block >= params.chunks || c >= params.channels) { return; }
  let start = block * ROWS;
  let end = min(start + ROWS, params.outer);
  let shift = coef_field(COEF_SHIFT, c);
  let mean = coef_field(COEF_MEAN, c);

  var acc = vec2f(0.0);
  for (var o = start; o < end; o++) {
    let e = o * params.channels + c;
    let xe = load_x(e);
    let g_out = activation_gate(load_dy(e), xe, c);
    acc += vec2f(g_out, g_out * ((xe - shift) - mean));
  }
  partials[c * params.chunks + block] = vec4f(acc, 0.0, 0.0);
}

fn load_coef4(c: u32) -> ChannelCoef4 {
  return ChannelCoef4(coef[plane_group(COEF_SHIFT, c)], coef[plane_group(COEF_MEAN, c)],
                   coef[plane_group(COEF_SCALE, c)], coef[plane_group(COEF_BETA, c)]);
}

// activation_gate4 for a channel group.
fn group_gate(dy: vec4f, x: vec4f, k: ChannelCoef4) -> vec4f {
  if (ACTIVATION == 0u) { return dy; }
  return activation_grad4(dy, ((x - k.shift) - k.mean) * k.scale + k.beta);
}

var<workgroup> group_sum_dy: array<vec4f, WG>;
var<workgroup> group_sum_dyx: array<vec4f, WG>;

// Channels-last variant for C % 4 == 0, laid out like partial_stats_channels_last_vec4: each
// thread sums one channel group over its lane's rows, then the lanes are summed in a tree.
@compute @workgroup_size(WG)
fn partial_grad_sums_channels_last_vec4(@builtin(workgroup_id) wid: vec3u,
                                        @builtin(num_workgroups) nwg: vec3u,
                                        @builtin(local_invocation_index) lid: u32) {
  let t = row_tile(wid, nwg, lid);
  var sum_dy = vec4f(0.0);
  var sum_dyx = vec4f(0.0);
  if (tile_in_range(t)) {
    let c = 4u * t.group;
    let k = load_coef4(c);
    for (var r = t.start + t.lane; r < t.end; r += tile_lanes()) {
      let e = r * params.channels + c;
      let xs = load_x4(e);
      let g = group_gate(load_dy4(e), xs, k);
      sum_dy += g;
      sum_dyx += g * ((xs - k.shift) - k.mean);
    }
  }
  group_sum_dy[lid] = sum_dy;
  group_sum_dyx[lid] = sum_dyx;
  workgroupBarrier();
  for (var stride = first_lane_stride(); stride > 0u; stride /= 2u) {
    if (tree_takes(t, stride)) {
      group_sum_dy[lid] += group_sum_dy[lid + stride * t.width];
      group_sum_dyx[lid] += group_sum_dyx[lid + stride * t.width];
    }
    workgroupBarrier();
  }
  if (tile_in_range(t) && t.lane == 0u) {
    for (var k = 0u; k < 4u; k++) {
      partials[(4u * t.group + k) * params.chunks + t.block] = vec4f(group_sum_dy[lid][k], group_sum_dyx[lid][k], 0.0, 0.0);
    }
  }
}

@compute @workgroup_size(RWG)
fn finalize_grads(@builtin(workgroup_id) wid: vec3u,
                  @builtin(num_workgroups) nwg: vec3u,
                  ids: ReduceIds) {
  let lid = ids.lid;
  let c = linear_workgroup(wid, nwg);
  if (c >= params.channels) { return; }

  var acc = vec2f(0.0);
  for (var k = lid; k < params.chunks; k += RWG) {
    acc += partials[c * params.chunks + k].xy;
  }
  let total = workgroup_reduce(Partial(vec3f(0.0), acc), ids, REDUCE_SUMS).extra;
  if (lid != 0u) { return; }

  let sum_dy = total.x;
  let sum_dy_xmu = total.y;
  let invstd = coef_field(COEF_INVSTD, c);
  dbeta[c] = sum_dy;
  dgamma[c] = sum_dy_xmu * invstd;

  let k = gamma[c] * invstd;
  var q = 0.0;
  var p = 0.0;
  if (params.batch_stats == 1u) {
    let n = f32(params.count);
    q = k * invstd * invstd * sum_dy_xmu / n;
    p = k * sum_dy / n;
  }
  let t = vec4f(k, q, p - coef_field(COEF_MEAN, c) * q, coef_field(COEF_SHIFT, c));
  for (var f = 0u; f < 4u; f++) {
    let s = plane_slot(f, c);
    grad_coef[s.x][s.y] = t[f];
  }
}

// One thread per slot of each period of slots (see slot_period), like normalize.
@compute @workgroup_size(WG)
fn input_grad(@builtin(workgroup_id) wid: vec3u,
              @builtin(num_workgroups) nwg: vec3u,
              @builtin(local_invocation_index) lid: u32) {
  let t = slot_thread(wid, nwg, lid); // (first slot, stride)
  let slots = slot_count();
  if (t.x >= slots) { return; }
  let c = slot_channels(t.x);
  let k = lane_coef(array(load_coef(c.x), load_coef(c.y), load_coef(c.z), load_coef(c.w)));
  let g = slot_grad_coef(c);
  for (var slot = t.x; slot < slots; slot += t.y) {
    let v = load_x_slot(slot);
    store_dx_slot(slot, slot_tail(slot, g.k * group_gate(load_dy_slot(slot), v, k) - stats_term(v, g.shift, g.q) - g.p));
  }
}

// Channels-last with C % 4 == 0 (see group_lanes): the thread's four channels' coefficients are
// loaded once and kept for every row it visits.
@compute @workgroup_size(WG)
fn input_grad_channels_last_vec4(@builtin(workgroup_id) wid: vec3u,
                                 @builtin(num_workgroups) nwg: vec3u,
                                 @builtin(local_invocation_index) lid: u32) {
  let g = group_thread(wid, nwg, lid); // (row lane, first channel, lanes)
  if (g.x >= g.z) { return; }
  let c = g.y;
  let k = load_coef4(c);
  // dx = k * dy - (x - shift) * q - p', per channel (see finalize_grads): one vec4 per plane.
  let t = GradCoef(grad_coef_in[plane_group(0u, c)], grad_coef_in[plane_group(1u, c)],
                   grad_coef_in[plane_group(2u, c)], grad_coef_in[plane_group(3u, c)]);
  for (var r = g.x; r < params.outer; r += g.z) {
    let e = r * params.channels + c;
    let v = load_x4(e);
    store_dx4(e, t.k * group_gate(load_dy4(e), v, k) - stats_term(v, t.shift, t.q) - t.p);
  }
}
