// Training statistics: per-channel mean and biased variance by Welford accumulation per thread and
// Chan's merge of (mean, M2, n) partials (workgroup_reduce: reduce_tree.wgsl, or
// reduce_subgroups.wgsl where the device has subgroups) -- never E[x^2] - E[x]^2, which cancels
// catastrophically when the mean is large against the spread. Values are taken relative to the
// channel's first value (see ChannelCoef).
//
// partial_stats:  one workgroup per (channel, chunk of params.chunk elements) -> partials[channel * chunks + chunk]
//                 = (mean, M2, n) (partial_stats_channels_last and _vec4: the same for inner == 1,
//                 see there); also clears the non-finite flag for this pass. The thread that
//                 writes partials[0] also puts the batch's weight in the running update (the
//                 factor) in partials[0].w, from num_batches_tracked, which it alone reads, and
//                 under nonFiniteBatches 'update' counts the batch there and then. Behind the
//                 partials: each channel's (gamma, beta), copied (see store_partial).
// finalize_stats: one workgroup per channel; merges its partials into coef and flags non-finite
//                 batches -- the whole-batch decision of nonFiniteBatches: 'skip', which
//                 normalize_update (normalize.wgsl) reads. Where no such decision is needed,
//                 normalize_batch merges the partials itself and this dispatch is not recorded.

@group(0) @binding(5) var<storage, read_write> partials: array<vec4f>;
@group(0) @binding(6) var<storage, read> gamma: array<f32>;
@group(0) @binding(7) var<storage, read> beta: array<f32>;
@group(0) @binding(10) var<storage, read_write> batches_tracked: array<u32>;
@group(0) @binding(11) var<storage, read_write> coef: array<vec4f>; // ChannelCoef planes (batchnorm/common.wgsl)
// Set when any channel of the current training pass has a non-finite mean or variance.
@group(0) @binding(12) var<storage, read_write> non_finite: atomic<u32>;

// The first thread of a pass's partial reduction clears the non-finite flag of the last pass.
fn clear_non_finite(wid: vec3u, nwg: vec3u, lid: u32) {
  if (linear_workgroup(wid, nwg) == 0u && lid == 0u) {
    atomicStore(&non_finite, 0u);
  }
}

// partials[0], by the one thread that writes it: with this batch's weight in the running update
// (momentum, or 1 / (batches + 1) for the cumulative average) as w. Where no whole-batch decision
// follows (nonFiniteBatches 'update'), the batch counts now: nothing after reads the count.
fn store_first_partial(moments: vec3f) {
  let batches = batches_tracked[0];
  var factor = params.momentum;
  if (factor < 0.0) {
    factor = 1.0 / f32(batches + 1u);
  }
  partials[0] = vec4f(moments, factor);
  if (params.update_running == 1u && params.update_non_finite == 1u) {
    batches_tracked[0] = batches + 1u;
  }
}

// A partial of the statistics into partials[i]. The thread that writes a channel's first partial
// also copies its gamma and beta behind the partials (partials[channels * chunks + c]), so that
// normalize_batch reads no caller buffer but x: the running statistics it writes may share a
// GPUBuffer with gamma and beta (WebGPU refuses a buffer bound read-only and writable in one dispatch).
fn store_partial(i: u32, moments: vec3f) {
  if (i == 0u) {
    store_first_partial(moments);
  } else {
    partials[i] = vec4f(moments, 0.0);
  }
  let c = i / params.chunks;
  if (i == c * params.chunks) {
    partials[params.channels * params.chunks + c] = vec4f(gamma[c], beta[c], 0.0, 0.0);
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
    // Chan's formula, one division per 4 elements. (count and params.chunk are multiples of 4 here.)
    for (var j = start + 4u * lid; j < end; j += 4u * RWG) {
      let v = load_x4(channel_element(c, j)) - shift;
      let m = (v.x + v.y + v.z + v.w) * 0.25;
      let d = v - m;
      acc = merge(acc, vec3f(m, dot(d, d), 4.0));
    }
  } else {
    // Welford's update within runs of RUN values, each run merged in by Chan's formula: a long
    // chunk (MERGE_ELEMENTS_PER_READ may lengthen them) rounds like a short one.
    for (var j0 = start + lid; j0 < end; j0 += RUN * RWG) {
      var run = vec3f(0.0);
      for (var j = j0; j < min(j0 + RUN * RWG, end); j += RWG) {
        run = welford(run, load_x(channel_element(c, j)) - shift);
      }
      acc = merge(acc, run);
    }
  }
  let total = workgroup_reduce(Partial(acc, vec2f(0.0)), ids, REDUCE_MOMENTS).moments;
  if (lid == 0u) {
    store_partial(g, total);
  }
}

// Channels-last variant of partial_stats (inner == 1, so element (row o, channel c) is at
// o * channels + c): each thread runs Welford's update down one channel over a block of
// params.chunk rows; neighbouring threads read neighbouring channels, and no barrier is needed. One
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
  let start = block * params.chunk;
  let end = min(start + params.chunk, params.outer);
  let shift = load_x(c);

  var acc = vec3f(0.0);
  for (var o0 = start; o0 < end; o0 += RUN) {
    var run = vec3f(0.0);
    for (var o = o0; o < min(o0 + RUN, end); o++) {
      run = welford(run, load_x(o * params.channels + c) - shift);
    }
    acc = merge(acc, run);
  }
  store_partial(c * params.chunks + block, acc);
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
      store_partial((4u * t.group + k) * params.chunks + t.block, vec3f(m.mean[k], m.m2[k], m.n));
    }
  }
}

// Channel c's coefficients into the coef planes (the same store as normalize.wgsl's, whose coef
// has another binding).
fn store_coef(c: u32, k: ChannelCoef) {
  let fields = coef_fields(k);
  for (var f = 0u; f < 7u; f++) {
    let s = plane_slot(f, c);
    coef[s.x][s.y] = fields[f];
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

  let k = batch_coef(load_x(channel_element(c, 0u)), total, gamma[c], beta[c], partials[0].w);
  if (is_nan(k.variance) && params.update_running == 1u) {
    atomicOr(&non_finite, 1u);
  }
  store_coef(c, k);
}
