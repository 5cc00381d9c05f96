// Normalize-scale-shift: y = ((x - shift) - mean) * (gamma * invstd) + beta, with the per-channel
// coefficients folded into one ChannelCoef. Subtracting before scaling (rather than
// y = x * scale + offset) keeps full precision when the mean is large against the spread. A fused
// activation (ACTIVATION, core/activations.wgsl) follows.
//
// Each kernel comes in two grids: a fixed grid of threads over slots (1, 2 or 4 elements, see the
// tensor_*.wgsl storages), each keeping one slot's channels (see slot_period); and, suffixed
// _channels_last_vec4, channels-last with C % 4 == 0, one thread per (channel group, row lane).
// normalize_running, normalize_running_channels_last_vec4: inference in one dispatch: each
//                    thread computes its channels' coefficients from the running statistics
//                    (running_coef), and workgroup 0 alone writes them all to `coef` for a
//                    backward pass and the layer's statistics.
// normalize_batch, normalize_batch_channels_last_vec4: a training pass's second and last
//                    dispatch, after partial_stats (stats.wgsl). Each workgroup merges the partials
//                    of the channels it touches itself (merged_moments: a fixed order, so every
//                    workgroup gets the same bits), and one designated workgroup per channel writes
//                    its ChannelCoef to `coef` and updates its running statistics
//                    (num_batches_tracked was read and counted in the first dispatch).
// normalize_update, normalize_update_channels_last_vec4: the last of three dispatches under
//                    nonFiniteBatches: 'skip', after finalize_stats stored the coefficients in
//                    `coef` and flagged a non-finite batch: as normalize_batch, but with the
//                    finished coefficients, and the running update only where no channel was flagged.
//
// No workgroup waits for another inside a dispatch (WGSL's barriers are workgroup-scoped): what a
// designated workgroup writes -- coef, running statistics, num_batches_tracked -- is read by no
// other thread of the same dispatch.

// Inference reads the running statistics (read-only bindings: they may share a GPUBuffer with
// gamma and beta); a training pass updates them through running_mean_update and
// running_var_update (bindings 14 and 15), and takes gamma and beta from behind the partials.
@group(0) @binding(5) var<storage, read> running_mean: array<f32>;
@group(0) @binding(6) var<storage, read> running_var: array<f32>;
@group(0) @binding(7) var<storage, read> gamma: array<f32>;
@group(0) @binding(8) var<storage, read> beta: array<f32>;
// ChannelCoef planes (batchnorm/common.wgsl).
@group(0) @binding(9) var<storage, read_write> coef: array<vec4f>;
// partial_stats' (mean, M2, n) per (channel, chunk): partials[channel * chunks + chunk]; the
// batch's factor in partials[0].w; (gamma, beta) of channel c in partials[channels * chunks + c].
@group(0) @binding(11) var<storage, read> partials: array<vec4f>;
@group(0) @binding(12) var<storage, read_write> batches_tracked: array<u32>;
// finalize_stats' flag: some channel of this batch had non-finite statistics.
@group(0) @binding(13) var<storage, read> non_finite: array<u32>;
@group(0) @binding(14) var<storage, read_write> running_mean_update: array<f32>;
@group(0) @binding(15) var<storage, read_write> running_var_update: array<f32>;

// Channel c's coefficients from the running statistics: shift 0, the running mean and variance.
fn running_coef(c: u32) -> ChannelCoef {
  let variance = running_var[c];
  let invstd = inverseSqrt(variance + params.eps);
  return ChannelCoef(running_mean[c], 0.0, variance, invstd, gamma[c] * invstd, beta[c], 0.0, 0.0);
}

fn store_coef(c: u32, k: ChannelCoef) {
  let fields = coef_fields(k);
  for (var f = 0u; f < 7u; f++) {
    let s = plane_slot(f, c);
    coef[s.x][s.y] = fields[f];
  }
}

// Workgroup 0's share of the one-dispatch inference: every channel's coefficients into `coef`.
// No thread of the dispatch reads `coef`, so no other workgroup waits for them.
fn store_running_coefs(wid: vec3u, nwg: vec3u, lid: u32) {
  if (linear_workgroup(wid, nwg) != 0u) { return; }
  for (var c = lid; c < params.channels; c += WG) {
    store_coef(c, running_coef(c));
  }
}

@compute @workgroup_size(WG)
fn normalize_running(@builtin(workgroup_id) wid: vec3u,
                     @builtin(num_workgroups) nwg: vec3u,
                     @builtin(local_invocation_index) lid: u32) {
  store_running_coefs(wid, nwg, lid);
  let t = slot_thread(wid, nwg, lid); // (first slot, stride)
  let slots = slot_count();
  if (t.x >= slots) { return; }
  let c = slot_channels(t.x);
  normalize_slots(t, slots, lane_coef(array(running_coef(c.x), running_coef(c.y), running_coef(c.z), running_coef(c.w))));
}

@compute @workgroup_size(WG)
fn normalize_running_channels_last_vec4(@builtin(workgroup_id) wid: vec3u,
                                        @builtin(num_workgroups) nwg: vec3u,
                                        @builtin(local_invocation_index) lid: u32) {
  store_running_coefs(wid, nwg, lid);
  let g = group_thread(wid, nwg, lid); // (row lane, first channel, lanes)
  if (g.x >= g.z) { return; }
  let c = g.y;
  normalize_rows4(g, lane_coef(array(running_coef(c), running_coef(c + 1u), running_coef(c + 2u), running_coef(c + 3u))));
}

// Channel c's (mean, M2, n) of x - shift over the batch, from its partials merged always in the
// same order (MERGE_RUN in common.wgsl), so that every workgroup that merges the channel gets the
// same bits.

fn merged_moments(c: u32) -> vec3f {
  let base = c * params.chunks;
  var total = vec3f(0.0);
  for (var r = 0u; r < params.chunks; r += MERGE_RUN) {
    let end = min(r + MERGE_RUN, params.chunks);
    var a0 = vec3f(0.0);
    var a1 = vec3f(0.0);
    var a2 = vec3f(0.0);
    var a3 = vec3f(0.0);
    var k = r;
    for (; k + 4u <= end; k += 4u) {
      a0 = merge(a0, partials[base + k].xyz);
      a1 = merge(a1, partials[base + k + 1u].xyz);
      a2 = merge(a2, partials[base + k + 2u].xyz);
      a3 = merge(a3, partials[base + k + 3u].xyz);
    }
    if (k < end) { a0 = merge(a0, partials[base + k].xyz); }
    if (k + 1u < end) { a1 = merge(a1, partials[base + k + 1u].xyz); }
    if (k + 2u < end) { a2 = merge(a2, partials[base + k + 2u].xyz); }
    total = merge(total, merge(merge(a0, a1), merge(a2, a3)));
  }
  return total;
}

// Channel c's coefficients of this batch, from its partials (normalize_batch).
fn batch_coef_of(c: u32) -> ChannelCoef {
  let affine = partials[params.channels * params.chunks + c]; // (gamma, beta), copied by partial_stats
  return batch_coef(load_x(channel_element(c, 0u)), merged_moments(c), affine.x, affine.y, partials[0].w);
}

// Channel c's coefficients as finalize_stats stored them (normalize_update).
fn stored_coef(c: u32) -> ChannelCoef {
  return ChannelCoef(coef_field(COEF_SHIFT, c), coef_field(COEF_MEAN, c), coef_field(COEF_VARIANCE, c), coef_field(COEF_INVSTD, c),
                     coef_field(COEF_SCALE, c), coef_field(COEF_BETA, c), coef_field(COEF_FACTOR, c), 0.0);
}

fn coef_field(f: u32, c: u32) -> f32 {
  let s = plane_slot(f, c);
  return coef[s.x][s.y];
}

// Channel c's running statistics moved towards the batch's: running = (1 - f) * running + f * batch
// (f: the batch's factor), with the unbiased (PyTorch) or biased (Keras) batch variance as Params selects.
fn update_running(c: u32, k: ChannelCoef) {
  let n = f32(params.count);
  let unbias = select(1.0, n / (n - 1.0), params.unbiased_running == 1u);
  // Written out rather than mix(): WGSL leaves mix's formula to the backend, and
  // running + f * (batch - running) (SwiftShader's) rounds to the spacing of numbers near the
  // old value, which loses the new value when it is far smaller (momentum 1, the cumulative
  // average's first step, a large drop). Each product here rounds relative to itself.
  running_mean_update[c] = (1.0 - k.factor) * running_mean_update[c] + k.factor * (k.shift + k.mean);
  running_var_update[c] = (1.0 - k.factor) * running_var_update[c] + k.factor * (k.variance * unbias);
}

// normalize_batch's part for channel c in its designated workgroup: its coefficients and, in a
// training pass that keeps them, its running statistics (nonFiniteBatches 'update', so whatever
// the batch holds). partial_stats has counted the batch already.
fn finish_batch_channel(c: u32, k: ChannelCoef) {
  store_coef(c, k);
  if (params.update_running == 1u) {
    update_running(c, k);
  }
}

// normalize_update's part: the running statistics and num_batches_tracked, unless the batch was
// flagged non-finite (nonFiniteBatches 'skip').
fn counts_batch() -> bool {
  return params.update_running == 1u && non_finite[0] == 0u;
}

fn count_batch() {
  if (counts_batch()) {
    batches_tracked[0] = batches_tracked[0] + 1u;
  }
}

// (shift, mean, scale, beta) of each channel of the workgroup's span (workgroup_channels).
var<workgroup> span_coefs: array<vec4f, SLOT_SPAN>;

fn span_entry(k: ChannelCoef) -> vec4f {
  return vec4f(k.shift, k.mean, k.scale, k.beta);
}

// The slot grid's training walk, once span_coefs holds the workgroup's channels: normalize_slots.
fn normalize_span(wid: vec3u, nwg: vec3u, lid: u32, span: vec2u) {
  workgroupBarrier();
  let t = slot_thread(wid, nwg, lid); // (first slot, stride)
  let slots = slot_count();
  if (t.x >= slots) { return; }
  let c = slot_channels(t.x);
  // Lane l of each field from the channel of the slot's element l.
  let m = transpose(mat4x4f(span_coefs[span_index(span, c.x)], span_coefs[span_index(span, c.y)],
                            span_coefs[span_index(span, c.z)], span_coefs[span_index(span, c.w)]));
  normalize_slots(t, slots, ChannelCoef4(m[0], m[1], m[2], m[3]));
}

// Each channel of the workgroup's span is merged by one of its threads.
@compute @workgroup_size(WG)
fn normalize_batch(@builtin(workgroup_id) wid: vec3u,
                   @builtin(num_workgroups) nwg: vec3u,
                   @builtin(local_invocation_index) lid: u32) {
  let span = workgroup_channels(wid, nwg);
  let w = linear_workgroup(wid, nwg);
  for (var i = lid; i < span.y; i += WG) {
    let c = span_channel(span, i);
    let k = batch_coef_of(c);
    span_coefs[i] = span_entry(k);
    if (designated_workgroup(c) == w) {
      finish_batch_channel(c, k);
    }
  }
  normalize_span(wid, nwg, lid, span);
}

// (mean, scale) of each channel of a channels-last vec4 workgroup's span (workgroup_groups); each
// thread takes its channels' shift (their first row) and beta itself.
fn batch_beta(c: u32) -> f32 {
  return partials[params.channels * params.chunks + c].y;
}

var<workgroup> group_coefs: array<vec2f, GROUP_SPAN>;

// As normalize_batch, over the workgroup's channel groups.
@compute @workgroup_size(WG)
fn normalize_batch_channels_last_vec4(@builtin(workgroup_id) wid: vec3u,
                                      @builtin(num_workgroups) nwg: vec3u,
                                      @builtin(local_invocation_index) lid: u32) {
  let span = workgroup_groups(wid, nwg);
  let w = linear_workgroup(wid, nwg);
  for (var i = lid; i < span.y; i += WG) {
    let c = span_channel(span, i);
    let k = batch_coef_of(c);
    group_coefs[i] = vec2f(k.mean, k.scale);
    if (group_designated_workgroup(c) == w) {
      finish_batch_channel(c, k);
    }
  }
  workgroupBarrier();
  let g = group_thread(wid, nwg, lid); // (row lane, first channel, lanes)
  if (g.x >= g.z) { return; }
  let c = g.y;
  let i = span_index(span, c); // the group's four channels are i .. i + 3: spans start at a group
  normalize_rows4(g, ChannelCoef4(load_x4(c), vec4f(group_coefs[i].x, group_coefs[i + 1u].x, group_coefs[i + 2u].x, group_coefs[i + 3u].x),
                                  vec4f(group_coefs[i].y, group_coefs[i + 1u].y, group_coefs[i + 2u].y, group_coefs[i + 3u].y),
                                  vec4f(batch_beta(c), batch_beta(c + 1u), batch_beta(c + 2u), batch_beta(c + 3u))));
}

@compute @workgroup_size(WG)
fn normalize_update(@builtin(workgroup_id) wid: vec3u,
                    @builtin(num_workgroups) nwg: vec3u,
                    @builtin(local_invocation_index) lid: u32) {
  let span = workgroup_channels(wid, nwg);
  let w = linear_workgroup(wid, nwg);
  for (var i = lid; i < span.y; i += WG) {
    let c = span_channel(span, i);
    let k = stored_coef(c);
    span_coefs[i] = span_entry(k);
    if (designated_workgroup(c) == w && counts_batch()) {
      update_running(c, k);
    }
  }
  if (w == 0u && lid == 0u) {
    count_batch();
  }
  normalize_span(wid, nwg, lid, span);
}

@compute @workgroup_size(WG)
fn normalize_update_channels_last_vec4(@builtin(workgroup_id) wid: vec3u,
                                       @builtin(num_workgroups) nwg: vec3u,
                                       @builtin(local_invocation_index) lid: u32) {
  let g = group_thread(wid, nwg, lid); // (row lane, first channel, lanes)
  if (g.x >= g.z) { return; }
  var k: array<ChannelCoef, 4>;
  for (var l = 0u; l < 4u; l++) {
    k[l] = stored_coef(g.y + l);
    if (g.x == 0u && counts_batch()) {
      update_running(g.y + l, k[l]);
    }
  }
  if (g.x == 0u && g.y == 0u) {
    count_batch();
  }
  normalize_rows4(g, lane_coef(k));
}
