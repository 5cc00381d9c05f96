// Normalize-scale-shift: y = ((x - shift) - mean) * (gamma * invstd) + beta, with the per-channel
// coefficients folded into one ChannelCoef. Subtracting before scaling (rather than
// y = x * scale + offset) keeps full precision when the mean is large against the spread. A fused
// activation (ACTIVATION, core/activations.wgsl) follows.
//
// normalize:         a fixed grid of threads over slots (1, 2 or 4 elements, see the tensor_*.wgsl
//                    storages), each keeping one slot's channels (see slot_period).
// normalize_channels_last_vec4: channels-last with C % 4 == 0; one thread per (channel group, row lane).
// normalize_running, normalize_running_channels_last_vec4: inference in one dispatch. As the two
//                    above, but each thread computes its channels' coefficients from the running
//                    statistics (running_coef), and workgroup 0 alone writes them all to `coef`
//                    for a backward pass and the layer's statistics.

@group(0) @binding(5) var<storage, read> running_mean: array<f32>;
@group(0) @binding(6) var<storage, read> running_var: array<f32>;
@group(0) @binding(7) var<storage, read> gamma: array<f32>;
@group(0) @binding(8) var<storage, read> beta: array<f32>;
// ChannelCoef planes (batchnorm/common.wgsl).
@group(0) @binding(9) var<storage, read_write> coef: array<vec4f>;
@group(0) @binding(10) var<storage, read> coef_in: array<vec4f>;

fn coef_in_field(f: u32, c: u32) -> f32 {
  let s = plane_slot(f, c);
  return coef_in[s.x][s.y];
}

// The fields normalize reads.
fn load_coef_in(c: u32) -> ChannelCoef {
  return ChannelCoef(coef_in_field(COEF_SHIFT, c), coef_in_field(COEF_MEAN, c), 0.0, 0.0,
                     coef_in_field(COEF_SCALE, c), coef_in_field(COEF_BETA, c), 0.0, 0.0);
}

// Channel c's coefficients from the running statistics: shift 0, the running mean and variance.
fn running_coef(c: u32) -> ChannelCoef {
  let variance = running_var[c];
  let invstd = inverseSqrt(variance + params.eps);
  return ChannelCoef(running_mean[c], 0.0, variance, invstd, gamma[c] * invstd, beta[c], 0.0, 0.0);
}

fn store_coef(c: u32, k: ChannelCoef) {
  let fields = coef_fields(k);
  for (var f = 0u; f < 6u; f++) {
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

// The slot grid's walk: thread t (first slot, stride) normalizes its slot of every row it visits
// with its slot's coefficients k, kept in registers.
fn normalize_slots(t: vec2u, slots: u32, k: ChannelCoef4) {
  for (var slot = t.x; slot < slots; slot += t.y) {
    store_y_slot(slot, slot_tail(slot, activate4(((load_x_slot(slot) - k.shift) - k.mean) * k.scale + k.beta)));
  }
}

// The channels-last vec4 walk: thread g (row lane, first channel, lanes) normalizes its four
// channels of every row it visits with their coefficients k.
fn normalize_rows4(g: vec3u, k: ChannelCoef4) {
  for (var r = g.x; r < params.outer; r += g.z) {
    let e = r * params.channels + g.y;
    store_y4(e, activate4(((load_x4(e) - k.shift) - k.mean) * k.scale + k.beta));
  }
}

// One thread per slot of each period of slots (see slot_period): its slot's coefficients are
// loaded once and kept for every row it visits.
@compute @workgroup_size(WG)
fn normalize(@builtin(workgroup_id) wid: vec3u,
             @builtin(num_workgroups) nwg: vec3u,
             @builtin(local_invocation_index) lid: u32) {
  let t = slot_thread(wid, nwg, lid); // (first slot, stride)
  let slots = slot_count();
  if (t.x >= slots) { return; }
  let c = slot_channels(t.x);
  normalize_slots(t, slots, lane_coef(array(load_coef_in(c.x), load_coef_in(c.y), load_coef_in(c.z), load_coef_in(c.w))));
}

// Channels-last with C % 4 == 0 (see group_lanes): the thread's four channels' coefficients are
// loaded once and kept for every row it visits.
@compute @workgroup_size(WG)
fn normalize_channels_last_vec4(@builtin(workgroup_id) wid: vec3u,
                                @builtin(num_workgroups) nwg: vec3u,
                                @builtin(local_invocation_index) lid: u32) {
  let g = group_thread(wid, nwg, lid); // (row lane, first channel, lanes)
  if (g.x >= g.z) { return; }
  let c = g.y;
  normalize_rows4(g, ChannelCoef4(coef_in[plane_group(COEF_SHIFT, c)], coef_in[plane_group(COEF_MEAN, c)],
                                  coef_in[plane_group(COEF_SCALE, c)], coef_in[plane_group(COEF_BETA, c)]));
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
