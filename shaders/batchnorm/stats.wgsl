// Training statistics: per-channel mean and biased variance by Welford accumulation per thread and
// Chan's merge of (mean, M2, n) partials (workgroup_reduce: reduce_tree.wgsl, or
// reduce_subgroups.wgsl where the device has subgroups) -- never E[x^2] - E[x]^2, which cancels
// catastrophically when the mean is large against the spread. Values are taken relative to the
// channel's first value (see ChannelCoef).
//
// partial_stats:  one workgroup per (channel, chunk of CHUNK elements) -> partials[channel * chunks + chunk]
//                 (partial_stats_channels_last and _vec4: the same for inner == 1, see there);
//                 also clears the non-finite flag for this pass
// finalize_stats: one workgroup per channel; merges its partials into coef, flags non-finite
//                 batches, and stores the channel's weight of this batch in the running update
// update_running: one thread per channel; running statistics and num_batches_tracked, unless the
//                 batch was flagged
//
// Each dispatch only reads what an earlier one wrote: the flag is cleared, set and read in three
// dispatches, and num_batches_tracked is read by finalize_stats (for the cumulative average) and
// bumped by update_running.

@group(0) @binding(5) var<storage, read_write> partials: array<vec4f>;
@group(0) @binding(6) var<storage, read> gamma: array<f32>;
@group(0) @binding(7) var<storage, read> beta: array<f32>;
@group(0) @binding(8) var<storage, read_write> running_mean: array<f32>;
@group(0) @binding(9) var<storage, read_write> running_var: array<f32>;
@group(0) @binding(10) var<storage, read_write> batches_tracked: array<u32>;
@group(0) @binding(11) var<storage, read_write> coef: array<vec4f>; // ChannelCoef planes (batchnorm/common.wgsl)
// Set when any channel of the current training pass has a non-finite mean or variance.
@group(0) @binding(12) var<storage, read_write> non_finite: atomic<u32>;

fn coef_field(f: u32, c: u32) -> f32 {
  let s = plane_slot(f, c);
  return coef[s.x][s.y];
}

// The first thread of a pass's partial reduction clears the non-finite flag of the last pass.
fn clear_non_finite(wid: vec3u, nwg: vec3u, lid: u32) {
  if (linear_workgroup(wid, nwg) == 0u && lid == 0u) {
    atomicStore(&non_finite, 0u);
  }
}

@compute @workgroup_size(RWG)
fn partial_stats(@builtin(workgroup_id) wid: vec3u,
                 @builtin(num_workgroups) nwg: vec3u,
                 ids: ReduceIds) {
  let lid = ids.lid;
  clear_non_finite(wid, nwg, lid);
  let g = linear_workgroup(wid, nwg);
  let chunk = chunk_of(g);
  let c = chunk.x;
  if (c >= params.channels) { return; }
  let start = chunk.y;
  let end = chunk.z;
  let shift = load_x(channel_element(c, 0u));

  var acc = vec3f(0.0); // (mean, M2, n) of x - shift
  if (params.inner % 4u == 0u) {
    // Runs of 4 contiguous elements of the channel: each run's exact (mean, M2) is merged in by
    // Chan's formula, one division per 4 elements. (count and CHUNK are multiples of 4 here.)
    for (var j = start + 4u * lid; j < end; j += 4u * RWG) {
      let v = load_x4(channel_element(c, j)) - shift;
      let m = (v.x + v.y + v.z + v.w) * 0.25;
      let d = v - m;
      acc = merge(acc, vec3f(m, dot(d, d), 4.0));
    }
  } else {
    for (var j = start + lid; j < end; j += RWG) {
      acc = welford(acc, load_x(channel_element(c, j)) - shift);
    }
  }
  let total = workgroup_reduce(Partial(acc, vec2f(0.0)), ids, REDUCE_MOMENTS).moments;
  if (lid == 0u) {
    partials[g] = vec4f(total, 0.0);
  }
}

// Channels-last variant of partial_stats (inner == 1, so element (row o, channel c) is at
// o * channels + c): each thread runs Welford's update down one channel over a block of ROWS
// rows; neighbouring threads read neighbouring channels, and no barrier is needed. One
// workgroup per (tile of RWG channels, block of rows); partials[channel * chunks + block].
@compute @workgroup_size(RWG)
fn partial_stats_channels_last(@builtin(workgroup_id) wid: vec3u,
                               @builtin(num_workgroups) nwg: vec3u,
                               @builtin(local_invocation_index) lid: u32) {
  clear_non_finite(wid, nwg, lid);
  let item = channels_last_item(wid, nwg, lid);
  let c = item.x;
  let block = item.y;
  if (block >= params.chunks || c >= params.channels) { return; }
  let start = block * ROWS;
  let end = min(start + ROWS, params.outer);
  let shift = load_x(c);

  var acc = vec3f(0.0);
  for (var o = start; o < end; o++) {
    acc = welford(acc, load_x(o * params.channels + c) - shift);
  }
  partials[c * params.chunks + block] = vec4f(acc, 0.0);
}

var<workgroup> group_moments: array<Moments4, WG>;

// Channels-last variant for C % 4 == 0 (see RowTile): each thread reduces one channel group over
// its lane's runs of 4 rows -- each run's exact (mean, M2) per channel merged in by Chan's formula,
// one division per 16 elements -- then the lanes are merged in a tree. partials[channel * chunks + block].
@compute @workgroup_size(WG)
fn partial_stats_channels_last_vec4(@builtin(workgroup_id) wid: vec3u,
                                    @builtin(num_workgroups) nwg: vec3u,
                                    @builtin(local_invocation_index) lid: u32) {
  clear_non_finite(wid, nwg, lid);
  let t = row_tile(wid, nwg, lid);
  var acc = Moments4(vec4f(0.0), vec4f(0.0), 0.0);
  if (tile_in_range(t)) {
    let c = 4u * t.group;
    let shift = load_x4(c);
    var r = t.start + 4u * t.lane;
    for (; r + 4u <= t.end; r += 4u * tile_lanes()) {
      let e = r * params.channels + c;
      let v0 = load_x4(e) - shift;
      let v1 = load_x4(e + params.channels) - shift;
      let v2 = load_x4(e + 2u * params.channels) - shift;
      let v3 = load_x4(e + 3u * params.channels) - shift;
      let m = (v0 + v1 + v2 + v3) * 0.25;
      let d0 = v0 - m;
      let d1 = v1 - m;
      let d2 = v2 - m;
      let d3 = v3 - m;
      acc = merge4(acc, Moments4(m, d0 * d0 + d1 * d1 + d2 * d2 + d3 * d3, 4.0));
    }
    // The last rows of a tensor whose row count is not a multiple of 4: Welford's update.
    for (; r < t.end; r++) {
      let v = load_x4(r * params.channels + c) - shift;
      let n = acc.n + 1.0;
      let delta = v - acc.mean;
      let mean = acc.mean + delta / n;
      acc = Moments4(mean, acc.m2 + delta * (v - mean), n);
    }
  }
  group_moments[lid] = acc;
  workgroupBarrier();
  for (var stride = first_lane_stride(); stride > 0u; stride /= 2u) {
    if (tree_takes(t, stride)) {
      group_moments[lid] = merge4(group_moments[lid], group_moments[lid + stride * t.width]);
    }
    workgroupBarrier();
  }
  if (tile_in_range(t) && t.lane == 0u) {
    let m = group_moments[lid];
    for (var k = 0u; k < 4u; k++) {
      partials[(4u * t.group + k) * params.chunks + t.block] = vec4f(m.mean[k], m.m2[k], m.n, 0.0);
    }
  }
}

@compute @workgroup_size(RWG)
fn finalize_stats(@builtin(workgroup_id) wid: vec3u,
                  @builtin(num_workgroups) nwg: vec3u,
                  ids: ReduceIds) {
  let lid = ids.lid;
  let c = linear_workgroup(wid, nwg);
  if (c >= params.channels) { return; }

  var acc = vec3f(0.0);
  for (var k = lid; k < params.chunks; k += RWG) {
    acc = merge(acc, partials[c * params.chunks + k].xyz);
  }
  let total = workgroup_reduce(Partial(acc, vec2f(0.0)), ids, REDUCE_MOMENTS).moments;
  if (lid != 0u) { return; }

  let shift = load_x(channel_element(c, 0u));
  var mean = total.x;
  var variance = total.y / f32(params.count);
  if (!(is_finite(shift) && is_finite(mean) && is_finite(variance))) {
    // NaN or Inf anywhere in the channel: its statistics and outputs are NaN, whatever the
    // hardware does with infinities.
    mean = nan();
    variance = nan();
    if (params.update_running == 1u) {
      atomicOr(&non_finite, 1u);
    }
  }
  let invstd = inverseSqrt(variance + params.eps);
  let fields = coef_fields(ChannelCoef(shift, mean, variance, invstd, gamma[c] * invstd, beta[c], 0.0, 0.0));
  for (var f = 0u; f < 6u; f++) {
    let s = plane_slot(f, c);
    coef[s.x][s.y] = fields[f];
  }
  // The batch's weight in the running update: momentum, or 1 / (batches + 1) for the cumulative
  // average, read here because update_running bumps the count in its own dispatch.
  var factor = params.momentum;
  if (factor < 0.0) {
    factor = 1.0 / f32(batches_tracked[0] + 1u);
  }
  let s = plane_slot(COEF_FACTOR, c);
  coef[s.x][s.y] = factor;
}

// running = (1 - f) * running + f * batch (f: the factor finalize_stats stored), with the unbiased
// (PyTorch) or biased (Keras) batch variance as Params selects; and num_batches_tracked + 1. A
// batch flagged non-finite changes neither, unless Params says to update anyway.
@compute @workgroup_size(WG)
fn update_running(@builtin(workgroup_id) wid: vec3u,
                  @builtin(num_workgroups) nwg: vec3u,
                  @builtin(local_invocation_index) lid: u32) {
  let c = linear_workgroup(wid, nwg) * WG + lid;
  if (atomicLoad(&non_finite) != 0u && params.update_non_finite == 0u) { return; }
  if (c == 0u) {
    batches_tracked[0] = batches_tracked[0] + 1u;
  }
  if (c >= params.channels) { return; }
  let f = coef_field(COEF_FACTOR, c);
  let shift = coef_field(COEF_SHIFT, c);
  let mean = coef_field(COEF_MEAN, c);
  let variance = coef_field(COEF_VARIANCE, c);
  let n = f32(params.count);
  let unbias = select(1.0, n / (n - 1.0), params.unbiased_running == 1u);
  // Written out rather than mix(): WGSL leaves mix's formula to the backend, and
  // running + f * (batch - running) (SwiftShader's) rounds to the spacing of numbers near the
  // old value, which loses the new value when it is far smaller (momentum 1, the cumulative
  // average's first step, a large drop). Each product here rounds relative to itself.
  running_mean[c] = (1.0 - f) * running_mean[c] + f * (shift + mean);
  running_var[c] = (1.0 - f) * running_var[c] + f * (variance * unbias);
}
