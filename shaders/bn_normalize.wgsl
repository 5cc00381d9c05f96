// Normalize-scale-shift, y = (x - mean) * (gamma * invstd) + beta, with the per-channel
// coefficients folded into one vec4 per channel. Subtracting the mean first (rather than using
// y = x * scale + shift) keeps full precision when |mean| is large against the spread.
//
// coef_from_running: one thread per channel; coefficients from the running (population) statistics.
// normalize:         one thread per element.

@group(0) @binding(1) var<storage, read> running_mean: array<f32>;
@group(0) @binding(2) var<storage, read> running_var: array<f32>;
@group(0) @binding(3) var<storage, read> gamma: array<f32>;
@group(0) @binding(4) var<storage, read> beta: array<f32>;
@group(0) @binding(5) var<storage, read_write> coef: array<vec4f>;

@group(0) @binding(6) var<storage, read> x: array<f32>;
@group(0) @binding(7) var<storage, read_write> y: array<f32>;
@group(0) @binding(8) var<storage, read> coef_in: array<vec4f>;

@compute @workgroup_size(WG)
fn coef_from_running(@builtin(workgroup_id) wid: vec3u,
                     @builtin(num_workgroups) nwg: vec3u,
                     @builtin(local_invocation_index) lid: u32) {
  let c = linear_workgroup(wid, nwg) * WG + lid;
  if (c >= params.channels) { return; }
  let invstd = inverseSqrt(running_var[c] + params.eps);
  coef[c] = vec4f(running_mean[c], gamma[c] * invstd, beta[c], invstd);
}

@compute @workgroup_size(WG)
fn normalize(@builtin(workgroup_id) wid: vec3u,
             @builtin(num_workgroups) nwg: vec3u,
             @builtin(local_invocation_index) lid: u32) {
  let e = linear_workgroup(wid, nwg) * WG + lid;
  if (e >= params.total) { return; }
  let k = coef_in[channel_of(e)];
  y[e] = (x[e] - k.x) * k.y + k.z;
}
