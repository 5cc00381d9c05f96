// The straightforward two-pass batch norm a user would write first, as the benchmark's baseline:
// one workgroup per channel reduces it with a shared-memory tree (mean first, then the squared
// deviations), then one thread per element normalizes. Backward likewise. gamma = 1, beta = 0.

struct Shape {
  outer: u32,
  channels: u32,
  inner: u32,
  count: u32, // outer * inner
  total: u32,
  eps: f32,
  momentum: f32,
  _pad: u32,
}

@group(0) @binding(0) var<uniform> shape: Shape;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(3) var<storage, read_write> stats: array<vec2f>;   // (mean, invstd)
@group(0) @binding(4) var<storage, read_write> running: array<vec2f>; // (mean, var)
@group(0) @binding(5) var<storage, read> dy: array<f32>;
@group(0) @binding(6) var<storage, read_write> dx: array<f32>;
@group(0) @binding(7) var<storage, read_write> grads: array<vec2f>;   // (sum dy, sum dy * x_hat)
@group(0) @binding(8) var<storage, read> stats_in: array<vec2f>;

var<workgroup> tree: array<f32, 256>;

fn element(c: u32, j: u32) -> u32 {
  let o = j / shape.inner;
  return (o * shape.channels + c) * shape.inner + (j - o * shape.inner);
}

fn tree_sum(lid: u32, v: f32) -> f32 {
  tree[lid] = v;
  workgroupBarrier();
  for (var s = 128u; s > 0u; s = s / 2u) {
    if (lid < s) { tree[lid] += tree[lid + s]; }
    workgroupBarrier();
  }
  let total = tree[0];
  workgroupBarrier();
  return total;
}

@compute @workgroup_size(256)
fn channel_stats(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                 @builtin(local_invocation_index) lid: u32) {
  let c = wid.x + wid.y * nwg.x;
  if (c >= shape.channels) { return; }
  var s = 0.0;
  for (var j = lid; j < shape.count; j += 256u) { s += x[element(c, j)]; }
  let mean = tree_sum(lid, s) / f32(shape.count);
  var q = 0.0;
  for (var j = lid; j < shape.count; j += 256u) { let d = x[element(c, j)] - mean; q += d * d; }
  let variance = tree_sum(lid, q) / f32(shape.count);
  if (lid == 0u) {
    stats[c] = vec2f(mean, inverseSqrt(variance + shape.eps));
    let n = f32(shape.count);
    running[c] = mix(running[c], vec2f(mean, variance * n / (n - 1.0)), shape.momentum);
  }
}

@compute @workgroup_size(256)
fn stats_from_running(@builtin(global_invocation_id) gid: vec3u) {
  let c = gid.x;
  if (c >= shape.channels) { return; }
  stats[c] = vec2f(running[c].x, inverseSqrt(running[c].y + shape.eps));
}

@compute @workgroup_size(256)
fn normalize(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
             @builtin(local_invocation_index) lid: u32) {
  let e = (wid.x + wid.y * nwg.x) * 256u + lid;
  if (e >= shape.total) { return; }
  let s = stats_in[(e / shape.inner) % shape.channels];
  y[e] = (x[e] - s.x) * s.y;
}

@compute @workgroup_size(256)
fn channel_grads(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                 @builtin(local_invocation_index) lid: u32) {
  let c = wid.x + wid.y * nwg.x;
  if (c >= shape.channels) { return; }
  let s = stats_in[c];
  var a = 0.0;
  var b = 0.0;
  for (var j = lid; j < shape.count; j += 256u) {
    let e = element(c, j);
    a += dy[e];
    b += dy[e] * (x[e] - s.x) * s.y;
  }
  let sum_dy = tree_sum(lid, a);
  let sum_dy_xhat = tree_sum(lid, b);
  if (lid == 0u) { grads[c] = vec2f(sum_dy, sum_dy_xhat); }
}

@compute @workgroup_size(256)
fn input_grad(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
              @builtin(local_invocation_index) lid: u32) {
  let e = (wid.x + wid.y * nwg.x) * 256u + lid;
  if (e >= shape.total) { return; }
  let c = (e / shape.inner) % shape.channels;
  let s = stats_in[c];
  let g = grads[c];
  let n = f32(shape.count);
  let xhat = (x[e] - s.x) * s.y;
  dx[e] = s.y * (dy[e] - g.x / n - xhat * g.y / n);
}
