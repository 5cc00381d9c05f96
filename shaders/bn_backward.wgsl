// Backward pass. With x_hat = (x - mean) * invstd and y = gamma * x_hat + beta:
//   dbeta  = sum(dy)            dgamma = sum(dy * x_hat) = invstd * sum(dy * (x - mean))
//   dx     = gamma * invstd * (dy - sum(dy) / n - x_hat * sum(dy * x_hat) / n)   (batch statistics)
//   dx     = gamma * invstd * dy                                                 (running statistics)
// written per channel as dx = k * dy - (x - mean) * q - p so that no large offset cancels.
//
// partial_grad_sums: one workgroup per (channel, chunk) -> partials[g] = (sum dy, sum dy * (x - mean))
// finalize_grads:    one workgroup per channel -> dgamma, dbeta and grad_coef = (mean, k, q, p)
// input_grad:        one thread per element -> dx

@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> dy: array<f32>;
// Per channel (mean, gamma * invstd, beta, invstd), written by the forward pass.
@group(0) @binding(3) var<storage, read> coef: array<vec4f>;
@group(0) @binding(4) var<storage, read_write> partials: array<vec4f>;

@group(0) @binding(5) var<storage, read> gamma: array<f32>;
@group(0) @binding(6) var<storage, read_write> dgamma: array<f32>;
@group(0) @binding(7) var<storage, read_write> dbeta: array<f32>;
@group(0) @binding(8) var<storage, read_write> grad_coef: array<vec4f>;

@group(0) @binding(9) var<storage, read> grad_coef_in: array<vec4f>;
@group(0) @binding(10) var<storage, read_write> dx: array<f32>;

var<workgroup> sums: array<vec2f, RWG>;

fn reduce_sums(lid: u32) {
  for (var stride = RWG / 2u; stride > 0u; stride = stride / 2u) {
    if (lid < stride) {
      sums[lid] += sums[lid + stride];
    }
    workgroupBarrier();
  }
}

@compute @workgroup_size(RWG)
fn partial_grad_sums(@builtin(workgroup_id) wid: vec3u,
                     @builtin(num_workgroups) nwg: vec3u,
                     @builtin(local_invocation_index) lid: u32) {
  let g = linear_workgroup(wid, nwg);
  let c = g / params.chunks;
  if (c >= params.channels) { return; }
  let start = (g - c * params.chunks) * CHUNK;
  let end = min(start + CHUNK, params.count);
  let mean = coef[c].x;

  var acc = vec2f(0.0);
  for (var j = start + lid; j < end; j += RWG) {
    let e = channel_element(c, j);
    let g_out = dy[e];
    acc += vec2f(g_out, g_out * (x[e] - mean));
  }
  sums[lid] = acc;
  workgroupBarrier();
  reduce_sums(lid);
  if (lid == 0u) {
    partials[g] = vec4f(sums[0], 0.0, 0.0);
  }
}

@compute @workgroup_size(RWG)
fn finalize_grads(@builtin(workgroup_id) wid: vec3u,
                  @builtin(num_workgroups) nwg: vec3u,
                  @builtin(local_invocation_index) lid: u32) {
  let c = linear_workgroup(wid, nwg);
  if (c >= params.channels) { return; }

  var acc = vec2f(0.0);
  for (var k = lid; k < params.chunks; k += RWG) {
    acc += partials[c * params.chunks + k].xy;
  }
  sums[lid] = acc;
  workgroupBarrier();
  reduce_sums(lid);
  if (lid != 0u) { return; }

  let sum_dy = sums[0].x;
  let sum_dy_xmu = sums[0].y;
  let mean = coef[c].x;
  let invstd = coef[c].w;
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
  grad_coef[c] = vec4f(mean, k, q, p);
}

@compute @workgroup_size(WG)
fn input_grad(@builtin(workgroup_id) wid: vec3u,
              @builtin(num_workgroups) nwg: vec3u,
              @builtin(local_invocation_index) lid: u32) {
  let e = linear_workgroup(wid, nwg) * WG + lid;
  if (e >= params.total) { return; }
  let k = grad_coef_in[channel_of(e)];
  dx[e] = k.y * dy[e] - (x[e] - k.x) * k.z - k.w;
}
