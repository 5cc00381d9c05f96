// The straightforward two-pass version of the normalization family that a user would write
// first, as bench:node's baseline for the family rows (the analogue of baseline.wgsl): one
// workgroup per group reduces it with a shared-memory tree (mean first, then the squared
// deviations; RMS norm: mean 0, so the second pass is mean(x²)), then one thread per element
// normalizes. Backward likewise: one workgroup per group sums dy and dy·x̂, then one thread per
// element. gamma = 1, beta = 0; no dgamma or dbeta.
//
// A group's elements: `contiguous` (LayerNorm and RMSNorm rows, channels-first GroupNorm and
// InstanceNorm): group k holds elements k·size .. (k+1)·size − 1. Otherwise channels last: group
// k = n·groups_per_sample + g holds, for every spatial position s of sample n, the channels
// g·per_group .. (g+1)·per_group − 1.

struct Shape {
  groups: u32,            // groups in the tensor
  size: u32,              // elements per group
  total: u32,             // elements in the tensor
  contiguous: u32,        // 1: contiguous groups; 0: channels last
  spatial: u32,           // channels last: spatial positions per sample
  channels: u32,          // channels last: channels
  per_group: u32,         // channels last: channels per group
  groups_per_sample: u32, // channels last: groups per sample
  eps: f32,
  center: f32,            // 1: subtract the mean; 0: RMS norm
  _pad0: u32,
  _pad1: u32,
}

@group(0) @binding(0) var<uniform> shape: Shape;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(3) var<storage, read_write> stats: array<vec2f>;   // (mean, invstd)
@group(0) @binding(5) var<storage, read> dy: array<f32>;
@group(0) @binding(6) var<storage, read_write> dx: array<f32>;
@group(0) @binding(7) var<storage, read_write> grads: array<vec2f>;   // (sum dy, sum dy * x_hat)
@group(0) @binding(8) var<storage, read> stats_in: array<vec2f>;

var<workgroup> tree: array<f32, 256>;

// Element i (in 0 .. size) of group k.
fn element(k: u32, i: u32) -> u32 {
  if (shape.contiguous == 1u) { return k * shape.size + i; }
  let n = k / shape.groups_per_sample;
  let g = k - n * shape.groups_per_sample;
  let s = i / shape.per_group;
  let j = i - s * shape.per_group;
  return (n * shape.spatial + s) * shape.channels + g * shape.per_group + j;
}

// The group of element e.
fn group_of(e: u32) -> u32 {
  if (shape.contiguous == 1u) { return e / shape.size; }
  let n = e / (shape.spatial * shape.channels);
  let c = e % shape.channels;
  return n * shape.groups_per_sample + c / shape.per_group;
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
fn group_stats(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
               @builtin(local_invocation_index) lid: u32) {
  let k = wid.x + wid.y * nwg.x;
  if (k >= shape.groups) { return; }
  var s = 0.0;
  if (shape.center != 0.0) {
    for (var i = lid; i < shape.size; i += 256u) { s += x[element(k, i)]; }
  }
  let mean = tree_sum(lid, s) / f32(shape.size);
  var q = 0.0;
  for (var i = lid; i < shape.size; i += 256u) { let d = x[element(k, i)] - mean; q += d * d; }
  let variance = tree_sum(lid, q) / f32(shape.size);
  if (lid == 0u) { stats[k] = vec2f(mean, inverseSqrt(variance + shape.eps)); }
}

@compute @workgroup_size(256)
fn normalize(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
             @builtin(local_invocation_index) lid: u32) {
  let e = (wid.x + wid.y * nwg.x) * 256u + lid;
  if (e >= shape.total) { return; }
  let s = stats_in[group_of(e)];
  y[e] = (x[e] - s.x) * s.y;
}

@compute @workgroup_size(256)
fn group_grads(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
               @builtin(local_invocation_index) lid: u32) {
  let k = wid.x + wid.y * nwg.x;
  if (k >= shape.groups) { return; }
  let s = stats_in[k];
  var a = 0.0;
  var b = 0.0;
  for (var i = lid; i < shape.size; i += 256u) {
    let e = element(k, i);
    a += dy[e];
    b += dy[e] * (x[e] - s.x) * s.y;
  }
  let sum_dy = tree_sum(lid, a);
  let sum_dy_xhat = tree_sum(lid, b);
  if (lid == 0u) { grads[k] = vec2f(sum_dy, sum_dy_xhat); }
}

@compute @workgroup_size(256)
fn input_grad(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
              @builtin(local_invocation_index) lid: u32) {
  let e = (wid.x + wid.y * nwg.x) * 256u + lid;
  if (e >= shape.total) { return; }
  let k = group_of(e);
  let s = stats_in[k];
  let g = grads[k];
  let n = f32(shape.size);
  let xhat = (x[e] - s.x) * s.y;
  dx[e] = s.y * (dy[e] - shape.center * g.x / n - xhat * g.y / n);
}
