// Forward pass of the normalization family.
//
// norm_forward: 2^lane_bits threads per statistics group (Lanes). They reduce the group's elements --
// shifted data in Welford summaries merged by Chan's formula (RMSNorm: a compensated sum of
// squares) -- merge the summaries in a tree, write the group's coefficients to `saved`, and
// normalize the same elements (just read, so mostly still in cache) in one dispatch.
// InstanceNorm's running update is normalization/running.wgsl.

@group(0) @binding(5) var<storage, read_write> saved: array<vec4f>;
// Read only with use_running (InstanceNorm inference); otherwise x is bound here.
@group(0) @binding(8) var<storage, read> running_mean: array<f32>;
@group(0) @binding(9) var<storage, read> running_var: array<f32>;

var<workgroup> tree: array<vec3f, WG>;
// Each group's coefficients, at its first thread.
var<workgroup> coefs: array<vec4f, WG>;
// The first CACHE_STEPS values of each thread's walk, kept on chip between the reduction and the
// normalization (thread lid's step j at lid + j * WG: its own slots, so no barrier), so that a
// group that fits is read from memory once. CACHE_STEPS is set from the device's workgroup
// storage limit (src/normalization/record.ts).
override CACHE_STEPS: u32 = 1u;
var<workgroup> cache_x: array<f32, WG * CACHE_STEPS>;

// Neumaier's compensated sums (sum, compensation, count), of squares for RMSNorm: mean(x²)
// keeps float32 precision over a long row, and the tree merges them pairwise.
fn merge_compensated(a: vec3f, b: vec3f) -> vec3f {
  let t = a.x + b.x;
  let err = select((b.x - t) + a.x, (a.x - t) + b.x, abs(a.x) >= abs(b.x));
  return vec3f(t, a.y + b.y + err, a.z + b.z);
}

fn add_compensated(acc: vec3f, v: f32) -> vec3f {
  return merge_compensated(acc, vec3f(v, 0.0, 1.0));
}

// Two of a group's summaries merged in the tree: Chan's merge of (mean, M2, n), or (RMSNorm) the
// compensated sums of squares.
fn merge_summaries(a: vec3f, b: vec3f) -> vec3f {
  if (RMS == 1u) { return merge_compensated(a, b); }
  return merge(a, b);
}

// The group's coefficients from its merged summary (see GroupCoef); NaN when it held NaN or ±Inf,
// so that exactly its outputs are NaN.
fn group_coef(shift: f32, s: vec3f) -> vec4f {
  let bad = !is_finite(s.x) || !is_finite(s.y);
  let n = f32(params.count);
  var mean = s.x;
  var variance = s.y / n;
  if (RMS == 1u) {
    mean = 0.0;
    variance = (s.x + s.y) / n;
  }
  if (bad) {
    mean = nan();
    variance = nan();
  }
  return vec4f(shift, mean, 1.0 / sqrt(variance + params.eps), variance);
}

@compute @workgroup_size(WG)
fn norm_forward(@builtin(workgroup_id) wid: vec3u,
                @builtin(num_workgroups) nwg: vec3u,
                @builtin(local_invocation_index) lid: u32) {
  let t = lanes_of(wid, nwg, lid);
  if (params.use_running == 1u) {
    // InstanceNorm inference with running statistics: group t.g is channel t.g.
    if (t.in_range && t.lane == 0u) {
      let variance = running_var[t.g];
      coefs[t.first] = vec4f(0.0, running_mean[t.g], 1.0 / sqrt(variance + params.eps), variance);
      saved[t.group] = coefs[t.first];
    }
  } else {
    var shift = 0.0;
    var acc = vec3f(0.0);
    var finite = true;
    if (t.in_range) {
      if (RMS == 0u) { shift = load_x(t.start); }
      var w = walk_start(t.lane);
      for (var j = 0u; j < walk_steps(); j += IN_FLIGHT) {
        let ahead = walk_ahead(t.start, t.g, &w);
        let vs = load_x_ahead(ahead);
        for (var u = 0u; u < IN_FLIGHT; u++) {
          if (u >= ahead.n) { break; }
          let v = vs[u];
          if (j + u < CACHE_STEPS) { cache_x[lid + (j + u) * WG] = v; }
          finite = finite && is_finite(v);
          if (RMS == 1u) {
            acc = add_compensated(acc, v * v);
          } else {
            acc = welford(acc, v - shift);
          }
        }
      }
    }
    // A NaN summary marks a group with NaN or ±Inf: every merge carries it to the root.
    if (!finite) { acc.x = nan(); }
    tree[lid] = acc;
    workgroupBarrier();
    for (var stride = (1u << params.lane_bits) / 2u; stride > 0u; stride >>= 1u) {
      if (t.lane < stride) { tree[lid] = merge_summaries(tree[lid], tree[lid + stride]); }
      workgroupBarrier();
    }
    if (t.in_range && t.lane == 0u) {
      coefs[t.first] = group_coef(shift, tree[lid]);
      saved[t.group] = coefs[t.first];
    }
  }
  workgroupBarrier();
  let k = to_coef(coefs[t.first]);
  // With running statistics nothing was cached.
  let cached = select(CACHE_STEPS, 0u, params.use_running == 1u);
  // Every thread takes every step (the stores may pair threads), IN_FLIGHT at a time with every
  // load first; step j is the cache's step j.
  var w = walk_start(t.lane);
  for (var j0 = 0u; j0 < walk_steps(); j0 += IN_FLIGHT) {
    let ahead = walk_ahead(t.start, t.g, &w);
    var vs: array<f32, IN_FLIGHT>;
    if (t.in_range) { vs = x_ahead(lid, ahead, j0, cached); }
    var out: array<f32, IN_FLIGHT>;
    for (var u = 0u; u < IN_FLIGHT; u++) {
      if (u < ahead.n) {
        let p = step_param(ahead, u);
        out[u] = activate(normalized(k, vs[u]) * gamma_at(p) + beta_at(p));
      }
    }
    store_y_ahead(lid, t.lane, ahead, t.in_range, out);
  }
}

// x of a batch of the second walk, its first step step j of the thread's walk: a chunk that lies
// wholly in the steps the first walk cached (before `cached`) from the cache, else from memory.
fn x_ahead(lid: u32, s: WalkSteps, j: u32, cached: u32) -> array<f32, IN_FLIGHT> {
  var v: array<f32, IN_FLIGHT>;
  for (var c = 0u; c < LOADS_IN_FLIGHT; c++) {
    if (c * VEC < s.n) {
      if (j + (c + 1u) * VEC <= cached) {
        for (var k = 0u; k < VEC; k++) { v[c * VEC + k] = cache_x[lid + (j + c * VEC + k) * WG]; }
      } else {
        let q = load_x_chunk(s.e[c]);
        for (var k = 0u; k < VEC; k++) { v[c * VEC + k] = q[k]; }
      }
    }
  }
  return v;
}
