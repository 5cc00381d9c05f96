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
// input_grad:        a fixed grid of threads over slots (1, 2 or 4 elements), each keeping one
//                    slot's channels (see slot_period) -> dx. Each workgroup first sums the
//                    partials of the channels it touches itself, in a fixed order (summed_grads),
//                    into dx's coefficients in workgroup memory; one designated workgroup per
//                    channel writes its dgamma and dbeta (see normalize_batch, normalize.wgsl).
//                    (input_grad_channels_last_vec4: one thread per (channel group, row lane),
//                    the same over the workgroup's channel groups)

// The forward pass's coefficients (ChannelCoef planes, batchnorm/common.wgsl).
@group(0) @binding(5) var<storage, read> coef: array<vec4f>;
@group(0) @binding(6) var<storage, read_write> partials: array<vec4f>;
@group(0) @binding(7) var<storage, read> gamma: array<f32>;
@group(0) @binding(8) var<storage, read_write> dgamma: array<f32>;
@group(0) @binding(9) var<storage, read_write> dbeta: array<f32>;

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
    // Sums within runs of RUN values, then of the runs (as partial_stats).
    for (var j0 = start + lid; j0 < end; j0 += RUN * RWG) {
      var run = vec2f(0.0);
      for (var j = j0; j < min(j0 + RUN * RWG, end); j += RWG) {
        let e = channel_element(c, j);
        let xe = load_x(e);
        let g_out = activation_gate(load_dy(e), xe, c);
        // x - mean as (x - shift) - mean (see ChannelCoef).
        run += vec2f(g_out, g_out * ((xe - shift) - mean));
      }
      acc += run;
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
  let start = block * params.chunk;
  let end = min(start + params.chunk, params.outer);
  let shift = coef_field(COEF_SHIFT, c);
  let mean = coef_field(COEF_MEAN, c);

  var acc = vec2f(0.0);
  for (var o0 = start; o0 < end; o0 += RUN) {
    var run = vec2f(0.0);
    for (var o = o0; o < min(o0 + RUN, end); o++) {
      let e = o * params.channels + c;
      let xe = load_x(e);
      let g_out = activation_gate(load_dy(e), xe, c);
      run += vec2f(g_out, g_out * ((xe - shift) - mean));
    }
    acc += run;
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

// One row's (dy, dy·(x − mean)) of a channel group, dy through the fused activation's gate.
fn grad_terms(dy: vec4f, x: vec4f, k: ChannelCoef4) -> mat2x4f {
  let g = group_gate(dy, x, k);
  return mat2x4f(g, g * ((x - k.shift) - k.mean));
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
  var sums = mat2x4f(); // (Σ dy, Σ dy·(x − mean)) of the thread's four channels
  if (tile_in_range(t)) {
    let c = 4u * t.group;
    let k = load_coef4(c);
    // Four of the thread's rows per iteration, their eight loads issued first, summed in the
    // order of one row at a time (the same bits as a walk of one row per iteration).
    let lanes = tile_lanes();
    let step = lanes * params.channels;
    var r = t.start + t.lane;
    for (; r + 3u * lanes < t.end; r += 4u * lanes) {
      let e = r * params.channels + c;
      let xs = load_x_rows(e, step);
      let dys = load_dy_rows(e, step);
      sums += grad_terms(dys[0], xs[0], k);
      sums += grad_terms(dys[1], xs[1], k);
      sums += grad_terms(dys[2], xs[2], k);
      sums += grad_terms(dys[3], xs[3], k);
    }
    for (; r < t.end; r += lanes) {
      let e = r * params.channels + c;
      sums += grad_terms(load_dy4(e), load_x4(e), k);
    }
  }
  group_sum_dy[lid] = sums[0];
  group_sum_dyx[lid] = sums[1];
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

// Channel c's (sum dy, sum dy * (x - mean)), from its partials summed always in the same order
// (MERGE_RUN in common.wgsl, as merged_moments in normalize.wgsl), so every workgroup that sums
// the channel gets the same bits.

fn summed_grads(c: u32) -> vec2f {
  let base = c * params.chunks;
  var total = vec2f(0.0);
  for (var r = 0u; r < params.chunks; r += MERGE_RUN) {
    let end = min(r + MERGE_RUN, params.chunks);
    var a0 = vec2f(0.0);
    var a1 = vec2f(0.0);
    var a2 = vec2f(0.0);
    var a3 = vec2f(0.0);
    var k = r;
    for (; k + 4u <= end; k += 4u) {
      a0 += partials[base + k].xy;
      a1 += partials[base + k + 1u].xy;
      a2 += partials[base + k + 2u].xy;
      a3 += partials[base + k + 3u].xy;
    }
    if (k < end) { a0 += partials[base + k].xy; }
    if (k + 1u < end) { a1 += partials[base + k + 1u].xy; }
    if (k + 2u < end) { a2 += partials[base + k + 2u].xy; }
    total += (a0 + a1) + (a2 + a3);
  }
  return total;
}

// Channel c's dx coefficients (k, q, p - mean * q, shift): dx = k * dy - (x - shift) * q - (p - mean * q).
// Its designated writer also stores dgamma and dbeta.
fn channel_grad(c: u32, designated: bool) -> vec4f {
  let total = summed_grads(c);
  let sum_dy = total.x;
  let sum_dy_xmu = total.y;
  let invstd = coef_field(COEF_INVSTD, c);
  if (designated) {
    dbeta[c] = sum_dy;
    dgamma[c] = sum_dy_xmu * invstd;
  }
  let k = gamma[c] * invstd;
  var q = 0.0;
  var p = 0.0;
  if (params.batch_stats == 1u) {
    let n = f32(params.count);
    q = k * invstd * invstd * sum_dy_xmu / n;
    p = k * sum_dy / n;
  }
  return vec4f(k, q, p - coef_field(COEF_MEAN, c) * q, coef_field(COEF_SHIFT, c));
}

// dx's coefficients (k, q, p', shift) of each channel of the workgroup's span (workgroup_channels).
var<workgroup> span_grads: array<vec4f, SLOT_SPAN>;

// One thread per slot of each period of slots (see slot_period), like normalize.
@compute @workgroup_size(WG)
fn input_grad(@builtin(workgroup_id) wid: vec3u,
              @builtin(num_workgroups) nwg: vec3u,
              @builtin(local_invocation_index) lid: u32) {
  let span = workgroup_channels(wid, nwg);
  let w = linear_workgroup(wid, nwg);
  for (var i = lid; i < span.y; i += WG) {
    let c = span_channel(span, i);
    span_grads[i] = channel_grad(c, designated_workgroup(c) == w);
  }
  workgroupBarrier();
  let t = slot_thread(wid, nwg, lid); // (first slot, stride)
  let slots = slot_count();
  if (t.x >= slots) { return; }
  let c = slot_channels(t.x);
  let k = lane_coef(array(load_coef(c.x), load_coef(c.y), load_coef(c.z), load_coef(c.w)));
  let m = transpose(mat4x4f(span_grads[span_index(span, c.x)], span_grads[span_index(span, c.y)],
                            span_grads[span_index(span, c.z)], span_grads[span_index(span, c.w)]));
  let g = GradCoef(m[0], m[1], m[2], m[3]); // lane l from the channel of the slot's element l
  // Downwards, four slots per iteration, their eight loads first (walk_length in common.wgsl).
  var left = walk_length(t.x, t.y, slots);
  for (; left >= 4u; left -= 4u) {
    let slot = t.x + (left - 4u) * t.y; // the lowest of the four
    let xs = load_x_slots(slot, t.y);
    let dys = load_dy_slots(slot, t.y);
    store_dx_slot(slot, slot_tail(slot, group_dx(g, k, dys[0], xs[0])));
    store_dx_slot(slot + t.y, slot_tail(slot + t.y, group_dx(g, k, dys[1], xs[1])));
    store_dx_slot(slot + 2u * t.y, slot_tail(slot + 2u * t.y, group_dx(g, k, dys[2], xs[2])));
    store_dx_slot(slot + 3u * t.y, slot_tail(slot + 3u * t.y, group_dx(g, k, dys[3], xs[3])));
  }
  for (; left > 0u; left--) {
    let slot = t.x + (left - 1u) * t.y;
    store_dx_slot(slot, slot_tail(slot, group_dx(g, k, load_dy_slot(slot), load_x_slot(slot))));
  }
}

// dx's (k, q, p') of each channel of a channels-last vec4 workgroup's span (workgroup_groups);
// each thread takes its channels' shift from `coef` itself.
var<workgroup> group_kq: array<vec2f, GROUP_SPAN>;
var<workgroup> group_p: array<f32, GROUP_SPAN>;

// Channels-last with C % 4 == 0 (see group_lanes): as input_grad, over the workgroup's channel
// groups; the thread's four channels' coefficients are kept for every row it visits.
@compute @workgroup_size(WG)
fn input_grad_channels_last_vec4(@builtin(workgroup_id) wid: vec3u,
                                 @builtin(num_workgroups) nwg: vec3u,
                                 @builtin(local_invocation_index) lid: u32) {
  let span = workgroup_groups(wid, nwg);
  let w = linear_workgroup(wid, nwg);
  for (var i = lid; i < span.y; i += WG) {
    let c = span_channel(span, i);
    let t = channel_grad(c, group_designated_workgroup(c) == w);
    group_kq[i] = t.xy;
    group_p[i] = t.z;
  }
  workgroupBarrier();
  let g = group_thread(wid, nwg, lid); // (row lane, first channel, lanes)
  if (g.x >= g.z) { return; }
  let c = g.y;
  let k = load_coef4(c);
  let i = span_index(span, c); // the group's four channels are i .. i + 3: spans start at a group
  // dx = k * dy - (x - shift) * q - p', per channel: one vec4 per coefficient.
  let t = GradCoef(vec4f(group_kq[i].x, group_kq[i + 1u].x, group_kq[i + 2u].x, group_kq[i + 3u].x),
                   vec4f(group_kq[i].y, group_kq[i + 1u].y, group_kq[i + 2u].y, group_kq[i + 3u].y),
                   vec4f(group_p[i], group_p[i + 1u], group_p[i + 2u], group_p[i + 3u]), k.shift);
  // Downwards, four rows per iteration, their eight loads first (walk_length in common.wgsl).
  let step = g.z * params.channels;
  var left = walk_length(g.x, g.z, params.outer);
  for (; left >= 4u; left -= 4u) {
    let e = (g.x + (left - 4u) * g.z) * params.channels + c; // the lowest of the four rows
    let xs = load_x_rows(e, step);
    let dys = load_dy_rows(e, step);
    store_dx4(e, group_dx(t, k, dys[0], xs[0]));
    store_dx4(e + step, group_dx(t, k, dys[1], xs[1]));
    store_dx4(e + 2u * step, group_dx(t, k, dys[2], xs[2]));
    store_dx4(e + 3u * step, group_dx(t, k, dys[3], xs[3]));
  }
  for (; left > 0u; left--) {
    let e = (g.x + (left - 1u) * g.z) * params.channels + c;
    store_dx4(e, group_dx(t, k, load_dy4(e), load_x4(e)));
  }
}

// dx of a channel group's four values: k * dy - (x - shift) * q - p', per channel.
fn group_dx(t: GradCoef, k: ChannelCoef4, dy: vec4f, v: vec4f) -> vec4f {
  return t.k * group_gate(dy, v, k) - stats_term(v, t.shift, t.q) - t.p;
}
