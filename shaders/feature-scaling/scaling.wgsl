// Feature scaling (the lecture notes' first half): per-feature min and max, or mean and sample
// standard deviation, accumulated over any number of batches (`adapt`), then turned into the
// ChannelCoef of a transform, y = ((x - shift) - mean) * scale, and of its inverse, walked as
// batch norm's normalize walks (batchnorm/common.wgsl). Features are the channels of the
// [outer, C, inner] view.
//
// scaling_begin:        one thread per feature; fixes each feature's shift (its first value) on the first batch
// scaling_partials:     one workgroup per (feature, chunk of params.chunk elements) -> partials, merged over the
//                       workgroup by workgroup_reduce (reduce_tree.wgsl or reduce_subgroups.wgsl)
// scaling_accumulate:   one thread per feature; merges this batch's partials into the state
// scale_transform, scale_inverse (and _channels_last_vec4): y from x in one dispatch, batch norm's
//                       normalize grid (see slot_period, group_lanes); each thread makes its
//                       features' coefficients from the state itself (scaling_coef)

// Accumulated over every adapted batch. Moments are of x - shift (see ChannelCoef): a large
// common offset costs no precision. The count is a u32, exact up to 2^32 - 1 samples (a float32
// count stops counting at 2^24 = 16.7M).
struct ScaleState {
  shift: f32,
  mean: f32,
  m2: f32,
  count: u32,
  min: f32,
  max: f32,
  _pad0: f32,
  _pad1: f32,
}

struct ScalingOptions {
  method: u32,      // 0: min-max to [0, 1]; 1: standardization
  correction: f32,  // the variance divides by count - correction (1: sample variance)
  _pad0: u32,
  _pad1: u32,
}

// (mean, M2, n) of x - shift, and (min, max), of one chunk.
struct ScalePartial {
  moments: vec4f,
  range: vec4f,
}

@group(0) @binding(5) var<storage, read_write> partials: array<ScalePartial>;
@group(0) @binding(6) var<storage, read_write> state: array<ScaleState>;
@group(0) @binding(9) var<uniform> options: ScalingOptions;

@compute @workgroup_size(WG)
fn scaling_begin(@builtin(workgroup_id) wid: vec3u,
                 @builtin(num_workgroups) nwg: vec3u,
                 @builtin(local_invocation_index) lid: u32) {
  let c = linear_workgroup(wid, nwg) * WG + lid;
  if (c >= params.channels || state[c].count > 0u) { return; }
  state[c].shift = load_x(channel_element(c, 0u));
}

@compute @workgroup_size(RWG)
fn scaling_partials(@builtin(workgroup_id) wid: vec3u,
                    @builtin(num_workgroups) nwg: vec3u,
                    ids: ReduceIds) {
  let lid = ids.lid;
  let g = linear_workgroup(wid, nwg);
  let chunk = chunk_of(g);
  let c = chunk.x;
  if (c >= params.channels) { return; }
  let start = chunk.y;
  let end = chunk.z;
  let shift = state[c].shift;

  // (mean, M2, n) of x - shift and (min, max).
  var acc = EMPTY_PARTIAL;
  for (var j = start + lid; j < end; j += RWG) {
    let v = load_x(channel_element(c, j));
    acc = Partial(welford(acc.moments, v - shift), merge_range(acc.extra, vec2f(v)));
  }
  let total = workgroup_reduce(acc, ids, REDUCE_MOMENTS_RANGE);
  if (lid == 0u) {
    partials[g] = ScalePartial(vec4f(total.moments, 0.0), vec4f(total.extra, 0.0, 0.0));
  }
}

@compute @workgroup_size(WG)
fn scaling_accumulate(@builtin(workgroup_id) wid: vec3u,
                      @builtin(num_workgroups) nwg: vec3u,
                      @builtin(local_invocation_index) lid: u32) {
  let c = linear_workgroup(wid, nwg) * WG + lid;
  if (c >= params.channels) { return; }
  let s = state[c];
  var mean = s.mean;
  var m2 = s.m2;
  var n = s.count;
  var range = select(EMPTY_RANGE, vec2f(s.min, s.max), n > 0u);
  for (var k = 0u; k < params.chunks; k++) {
    let p = partials[c * params.chunks + k];
    // Chan's merge (as merge() in core/numerics.wgsl) with the counts kept exact as integers; a chunk's
    // count (at most params.chunk, 2048 here) is exact in its f32 partial.
    let nb = u32(p.moments.z);
    if (nb == 0u) { continue; }
    let total = n + nb;
    let delta = p.moments.x - mean;
    let wb = f32(nb) / f32(total);
    mean += delta * wb;
    m2 += p.moments.y + delta * delta * f32(n) * wb;
    n = total;
    range = merge_range(range, p.range.xy);
  }
  state[c] = ScaleState(s.shift, mean, m2, n, range.x, range.y, 0.0, 0.0);
}

// Feature c's coefficients of the transform (inverse false) or of its inverse, from the state. A
// feature with no spread (max == min, or zero variance) is scaled by 1, not divided by zero.
fn scaling_coef(c: u32, inverse: bool) -> ChannelCoef {
  let s = state[c];
  var shift = s.min;
  var mean = 0.0;
  var spread = s.max - s.min;
  if (options.method == 1u) {
    shift = s.shift;
    mean = s.mean;
    spread = sqrt(s.m2 / max(f32(s.count) - options.correction, 1.0));
  }
  // A feature no data was adapted for (count 0: a fresh caller state, or an encodeAdapt not yet
  // submitted) has no statistics: its outputs are NaN, not x passed through unscaled.
  if (s.count == 0u) {
    shift = nan();
  }
  // Min-max over a feature whose max - min exceeds 2^126 (about 8.5e37; or overflows float32)
  // though both ends are finite: the slope of the transform, 1 / (max - min), is below float32's
  // smallest normal (a GPU may flush it to 0, making every y 0), and past float32's range that of
  // the inverse has no value: both give NaN, rather than wrong finite values.
  if (options.method == 0u && !(spread <= 8.507059e37) && is_finite(s.min) && is_finite(s.max)) {
    shift = nan();
  }
  if (inverse) {
    // x = y * spread + (shift + mean)
    let scale = select(spread, 1.0, spread == 0.0);
    return ChannelCoef(0.0, 0.0, 0.0, scale, scale, shift + mean, 0.0, 0.0);
  }
  let scale = select(1.0 / spread, 1.0, spread == 0.0);
  return ChannelCoef(shift, mean, 0.0, scale, scale, 0.0, 0.0, 0.0);
}

fn scale_slots(wid: vec3u, nwg: vec3u, lid: u32, inverse: bool) {
  let t = slot_thread(wid, nwg, lid); // (first slot, stride)
  let slots = slot_count();
  if (t.x >= slots) { return; }
  let c = slot_channels(t.x);
  normalize_slots(t, slots, lane_coef(array(scaling_coef(c.x, inverse), scaling_coef(c.y, inverse), scaling_coef(c.z, inverse), scaling_coef(c.w, inverse))));
}

fn scale_rows4(wid: vec3u, nwg: vec3u, lid: u32, inverse: bool) {
  let g = group_thread(wid, nwg, lid); // (row lane, first channel, lanes)
  if (g.x >= g.z) { return; }
  let c = g.y;
  normalize_rows4(g, lane_coef(array(scaling_coef(c, inverse), scaling_coef(c + 1u, inverse), scaling_coef(c + 2u, inverse), scaling_coef(c + 3u, inverse))));
}

@compute @workgroup_size(WG)
fn scale_transform(@builtin(workgroup_id) wid: vec3u,
                   @builtin(num_workgroups) nwg: vec3u,
                   @builtin(local_invocation_index) lid: u32) {
  scale_slots(wid, nwg, lid, false);
}

@compute @workgroup_size(WG)
fn scale_transform_channels_last_vec4(@builtin(workgroup_id) wid: vec3u,
                                      @builtin(num_workgroups) nwg: vec3u,
                                      @builtin(local_invocation_index) lid: u32) {
  scale_rows4(wid, nwg, lid, false);
}

@compute @workgroup_size(WG)
fn scale_inverse(@builtin(workgroup_id) wid: vec3u,
                 @builtin(num_workgroups) nwg: vec3u,
                 @builtin(local_invocation_index) lid: u32) {
  scale_slots(wid, nwg, lid, true);
}

@compute @workgroup_size(WG)
fn scale_inverse_channels_last_vec4(@builtin(workgroup_id) wid: vec3u,
                                    @builtin(num_workgroups) nwg: vec3u,
                                    @builtin(local_invocation_index) lid: u32) {
  scale_rows4(wid, nwg, lid, true);
}
