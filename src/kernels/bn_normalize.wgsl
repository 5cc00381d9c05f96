// Normalize-scale-shift: y = ((x - shift) - mean) * (gamma * invstd) + beta, with the per-channel
// coefficients folded into one ChannelCoef. Subtracting before scaling (rather than
// y = x * scale + offset) keeps full precision when the mean is large against the spread. A fused
// activation (ACTIVATION, common.wgsl) follows.
//
// coef_from_running: one thread per channel; coefficients from the running (population) statistics.
// normalize:         one thread per slot (1, 2 or 4 elements, see the tensor_*.wgsl storages).
// normalize_channels_last_vec4: channels-last with C % 4 == 0; one thread per (channel group, row lane).

@group(0) @binding(5) var<storage, read> running_mean: array<f32>;
@group(0) @binding(6) var<storage, read> running_var: array<f32>;
@group(0) @binding(7) var<storage, read> gamma: array<f32>;
@group(0) @binding(8) var<storage, read> beta: array<f32>;
// ChannelCoef planes (common.wgsl).
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

@compute @workgroup_size(WG)
fn coef_from_running(@builtin(workgroup_id) wid: vec3u,
                     @builtin(num_workgroups) nwg: vec3u,
                     @builtin(local_invocation_index) lid: u32) {
  let c = linear_workgroup(wid, nwg) * WG + lid;
  if (c >= params.channels) { return; }
  let variance = running_var[c];
  let invstd = inverseSqrt(variance + params.eps);
  let fields = coef_fields(ChannelCoef(running_mean[c], 0.0, variance, invstd, gamma[c] * invstd, beta[c], 0.0, 0.0));
  for (var f = 0u; f < 6u; f++) {
    let s = plane_slot(f, c);
    coef[s.x][s.y] = fields[f];
  }
}

@compute @workgroup_size(WG)
fn normalize(@builtin(workgroup_id) wid: vec3u,
             @builtin(num_workgroups) nwg: vec3u,
             @builtin(local_invocation_index) lid: u32) {
  let slot = linear_workgroup(wid, nwg) * WG + lid;
  let first = slot * SLOT;
  if (first >= params.total) { return; }
  let v = load_x_slot(slot);
  var out = vec4f(0.0);
  if (SLOT == 1u) {
    let k = load_coef_in(channel_of(first));
    out.x = ((v.x - k.shift) - k.mean) * k.scale + k.beta;
  } else if (params.inner % SLOT == 0u) {
    // The slot's elements share one channel: one set of coefficients, vector arithmetic.
    let k = load_coef_in(channel_of(first));
    out = ((v - k.shift) - k.mean) * k.scale + k.beta;
  } else {
    for (var k = 0u; k < SLOT; k++) {
      let e = first + k;
      if (e < params.total) {
        let kc = load_coef_in(channel_of(e));
        out[k] = ((v[k] - kc.shift) - kc.mean) * kc.scale + kc.beta;
      }
    }
  }
  store_y(slot, activate4(out));
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
  let k = GroupCoef(coef_in[plane_group(COEF_SHIFT, c)], coef_in[plane_group(COEF_MEAN, c)],
                    coef_in[plane_group(COEF_SCALE, c)], coef_in[plane_group(COEF_BETA, c)]);
  for (var r = g.x; r < params.outer; r += g.z) {
    let e = r * params.channels + c;
    store_y4(e, activate4(((load_x4(e) - k.shift) - k.mean) * k.scale + k.beta));
  }
}
