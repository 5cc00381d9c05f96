// Training statistics: per-channel mean and biased variance by Welford accumulation per thread and
// Chan's pairwise merge of (mean, M2, n) partials -- never E[x^2] - E[x]^2, which cancels
// catastrophically when the mean is large against the spread.
//
// partial_stats:  one workgroup per (channel, chunk of CHUNK elements) -> partials[channel * chunks + chunk]
// finalize_stats: one workgroup per channel; merges that channel's partials, writes the normalize
//                 coefficients and, when training, updates the running statistics.
// count_batch:    one thread; bumps num_batches_tracked after finalize_stats has read it.

@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> partials: array<vec4f>;
@group(0) @binding(3) var<storage, read> gamma: array<f32>;
@group(0) @binding(4) var<storage, read> beta: array<f32>;
@group(0) @binding(5) var<storage, read_write> running_mean: array<f32>;
@group(0) @binding(6) var<storage, read_write> running_var: array<f32>;
@group(0) @binding(7) var<storage, read_write> batches_tracked: array<u32>;
// Per channel: (mean, gamma * invstd, beta, invstd) of the last forward pass.
@group(0) @binding(8) var<storage, read_write> coef: array<vec4f>;

var<workgroup> moments: array<vec3f, RWG>;

// Chan et al.: merge two (mean, M2, n) summaries.
fn merge(a: vec3f, b: vec3f) -> vec3f {
  if (b.z == 0.0) { return a; }
  if (a.z == 0.0) { return b; }
  let n = a.z + b.z;
  let delta = b.x - a.x;
  let wb = b.z / n;
  return vec3f(a.x + delta * wb, a.y + b.y + delta * delta * a.z * wb, n);
}

fn reduce_moments(lid: u32) {
  for (var stride = RWG / 2u; stride > 0u; stride = stride / 2u) {
    if (lid < stride) {
      moments[lid] = merge(moments[lid], moments[lid + stride]);
    }
    workgroupBarrier();
  }
}

@compute @workgroup_size(RWG)
fn partial_stats(@builtin(workgroup_id) wid: vec3u,
                 @builtin(num_workgroups) nwg: vec3u,
                 @builtin(local_invocation_index) lid: u32) {
  let g = linear_workgroup(wid, nwg);
  let c = g / params.chunks;
  if (c >= params.channels) { return; }
  let start = (g - c * params.chunks) * CHUNK;
  let end = min(start + CHUNK, params.count);

  var acc = vec3f(0.0); // Welford: (mean, M2, n)
  for (var j = start + lid; j < end; j += RWG) {
    let v = x[channel_element(c, j)];
    acc.z += 1.0;
    let d = v - acc.x;
    acc.x += d / acc.z;
    acc.y += d * (v - acc.x);
  }
  moments[lid] = acc;
  workgroupBarrier();
  reduce_moments(lid);
  if (lid == 0u) {
    partials[g] = vec4f(moments[0], 0.0);
  }
}

@compute @workgroup_size(RWG)
fn finalize_stats(@builtin(workgroup_id) wid: vec3u,
                  @builtin(num_workgroups) nwg: vec3u,
                  @builtin(local_invocation_index) lid: u32) {
  let c = linear_workgroup(wid, nwg);
  if (c >= params.channels) { return; }

  var acc = vec3f(0.0);
  for (var k = lid; k < params.chunks; k += RWG) {
    acc = merge(acc, partials[c * params.chunks + k].xyz);
  }
  moments[lid] = acc;
  workgroupBarrier();
  reduce_moments(lid);
  if (lid != 0u) { return; }

  let mean = moments[0].x;
  let m2 = moments[0].y;
  let n = f32(params.count);
  let variance = m2 / n;
  let invstd = inverseSqrt(variance + params.eps);
  coef[c] = vec4f(mean, gamma[c] * invstd, beta[c], invstd);

  if (params.update_running == 1u) {
    // PyTorch semantics: running = (1 - f) * running + f * batch, with the unbiased batch variance.
    var f = params.momentum;
    if (f < 0.0) {
      f = 1.0 / f32(batches_tracked[0] + 1u);
    }
    running_mean[c] = mix(running_mean[c], mean, f);
    running_var[c] = mix(running_var[c], m2 / (n - 1.0), f);
  }
}

@compute @workgroup_size(1)
fn count_batch() {
  batches_tracked[0] = batches_tracked[0] + 1u;
}
