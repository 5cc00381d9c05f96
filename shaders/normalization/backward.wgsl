// Backward pass of the normalization family, from the coefficients its forward pass saved.
//
// With x̂ the normalized input, z = γ·x̂ + β, dz = dL/dz (through the fused activation) and
// g = γ·dz, per group of n elements:
//   dx = invstd · (g − mean(g) − x̂·mean(g·x̂))   (RMSNorm: no mean(g) term);
//   normalized with running statistics (InstanceNorm inference): dx = invstd · g.
// norm_backward: 2^lane_bits threads per group (Lanes); two walks over it (the sums, then dx).
// dγ = Σ dz·x̂ and dβ = Σ dz per γ entry are partial sums over blocks of the
// [a_outer, a_count, a_inner] view (NormParams), taken in the same walk as dx per block of rows
// (LayerNorm, RMSNorm: norm_backward_columns) or per (sample, channel) (channels-first groups:
// norm_backward_planes; channels-last groups: norm_backward_channels); norm_affine_partials_rows
// reads x and dy again for them where none applies (rows over MAX_COLUMNS · WG values, groups of
// more channels than that, GroupNorm without spatial axes). norm_affine_finalize adds a γ entry's
// partials in a fixed order, so the result does not depend on scheduling.

@group(0) @binding(5) var<storage, read> saved: array<vec4f>;
@group(0) @binding(8) var<storage, read_write> partials: array<vec2f>;
@group(0) @binding(9) var<storage, read_write> dgamma: array<f32>;
@group(0) @binding(10) var<storage, read_write> dbeta: array<f32>;

var<workgroup> sums: array<vec2f, WG>;
// The first CACHE_STEPS (x, dy) of each thread's walk in norm_backward, kept on chip between the
// sums and dx (see normalization/forward.wgsl).
override CACHE_STEPS: u32 = 1u;
var<workgroup> cache_x: array<f32, WG * CACHE_STEPS>;
var<workgroup> cache_dy: array<f32, WG * CACHE_STEPS>;

// γ entries a tile of the rows kernel covers, one per thread column.
const AFFINE_WIDTH: u32 = 64u;

// (dz, x̂) of one element with γ entry p.
fn grad_z(k: GroupCoef, v: f32, dyv: f32, p: u32) -> vec2f {
  let xh = normalized(k, v);
  return vec2f(activation_grad(dyv, xh * gamma_at(p) + beta_at(p)), xh);
}

// (x, dy) of element e in step j of a thread's second walk: from the cache where the first walk
// kept them (j < cached), else from memory.
fn xdy_at(lid: u32, j: u32, cached: u32, e: u32) -> vec2f {
  if (j < cached) { return vec2f(cache_x[lid + j * WG], cache_dy[lid + j * WG]); }
  return vec2f(load_x(e), load_dy(e));
}

// (x, dy) of a batch of the second walk, its first step step j of the thread's walk: a chunk that
// lies wholly in the steps the first walk cached (before `cached`) from the cache, else from
// memory.
fn xdy_ahead(lid: u32, s: WalkSteps, j: u32, cached: u32) -> array<vec2f, IN_FLIGHT> {
  var v: array<vec2f, IN_FLIGHT>;
  for (var c = 0u; c < LOADS_IN_FLIGHT; c++) {
    if (c * VEC < s.n) {
      if (j + (c + 1u) * VEC <= cached) {
        for (var k = 0u; k < VEC; k++) {
          let at = lid + (j + c * VEC + k) * WG;
          v[c * VEC + k] = vec2f(cache_x[at], cache_dy[at]);
        }
      } else {
        let qx = load_x_chunk(s.e[c]);
        let qdy = load_dy_chunk(s.e[c]);
        for (var k = 0u; k < VEC; k++) { v[c * VEC + k] = vec2f(qx[k], qdy[k]); }
      }
    }
  }
  return v;
}

// The first walk's batch: the steps of a thread's walk (the batch's first being step j) that the
// cache holds kept there.
fn cache_ahead(lid: u32, j: u32, n: u32, vs: array<vec2f, IN_FLIGHT>) {
  for (var u = 0u; u < IN_FLIGHT; u++) {
    if (u < n && j + u < CACHE_STEPS) {
      cache_x[lid + (j + u) * WG] = vs[u].x;
      cache_dy[lid + (j + u) * WG] = vs[u].y;
    }
  }
}

// dx of an element with (x, dy) = xdy and γ entry p; means = (mean(γ·dz), mean(γ·dz·x̂)) of its group.
fn dx_of(k: GroupCoef, xdy: vec2f, p: u32, means: vec2f) -> f32 {
  let z = grad_z(k, xdy.x, xdy.y, p);
  return k.invstd * (z.x * gamma_at(p) - means.x - z.y * means.y);
}

@compute @workgroup_size(WG)
fn norm_backward(@builtin(workgroup_id) wid: vec3u,
                 @builtin(num_workgroups) nwg: vec3u,
                 @builtin(local_invocation_index) lid: u32) {
  let t = lanes_of(wid, nwg, lid);
  let k = to_coef(saved[min(t.group, params.rows - 1u)]);
  var s = vec2f(0.0);
  let cached = select(CACHE_STEPS, 0u, params.use_running == 1u);
  if (params.use_running == 0u && t.in_range) {
    // IN_FLIGHT steps at a time, every load first (see walk_ahead).
    var w = walk_start(t.lane);
    for (var j = 0u; j < walk_steps(); j += IN_FLIGHT) {
      let ahead = walk_ahead(t.start, t.g, &w);
      let vs = load_xdy_ahead(ahead);
      cache_ahead(lid, j, ahead.n, vs);
      for (var u = 0u; u < IN_FLIGHT; u++) {
        if (u < ahead.n) {
          let p = step_param(ahead, u);
          let z = grad_z(k, vs[u].x, vs[u].y, p);
          let gz = z.x * gamma_at(p);
          s += vec2f(gz, gz * z.y);
        }
      }
    }
  }
  sums[lid] = s;
  workgroupBarrier();
  for (var stride = (1u << params.lane_bits) / 2u; stride > 0u; stride >>= 1u) {
    if (t.lane < stride) { sums[lid] += sums[lid + stride]; }
    workgroupBarrier();
  }
  let inv_n = 1.0 / f32(params.count);
  let total = sums[t.first];
  let mean_g = select(total.x * inv_n, 0.0, RMS == 1u);
  let mean_gx = total.y * inv_n;
  // Every thread takes every step (the stores may pair threads), IN_FLIGHT at a time with every
  // load first; step j is the cache's step j.
  var w = walk_start(t.lane);
  for (var j0 = 0u; j0 < walk_steps(); j0 += IN_FLIGHT) {
    let ahead = walk_ahead(t.start, t.g, &w);
    var vs: array<vec2f, IN_FLIGHT>;
    if (t.in_range) { vs = xdy_ahead(lid, ahead, j0, cached); }
    var out: array<f32, IN_FLIGHT>;
    for (var u = 0u; u < IN_FLIGHT; u++) {
      if (u < ahead.n) { out[u] = dx_of(k, vs[u], step_param(ahead, u), vec2f(mean_g, mean_gx)); }
    }
    store_dx_ahead(lid, t.lane, ahead, t.in_range, out);
  }
}

// Columns of a row a thread of norm_backward_columns keeps dγ/dβ sums for: rows of up to
// MAX_COLUMNS · WG values (8192 at 256 lanes); the host sends longer rows to norm_backward.
const MAX_COLUMNS: u32 = 32u;

// LayerNorm and RMSNorm (rows of one group, a γ entry per position): workgroup w takes the
// batches of WG >> lane_bits rows w, w + W, w + 2W, ... (W = a_blocks workgroups). A thread's
// columns are run_offset(lane, j) in every row it takes, so it keeps their (Σ dz·x̂, Σ dz) in
// registers across rows: x and dy are read once for dx, dγ and dβ. At the end the workgroup
// merges its row slots' sums in a tree and writes them as partial w.
@compute @workgroup_size(WG)
fn norm_backward_columns(@builtin(workgroup_id) wid: vec3u,
                         @builtin(num_workgroups) nwg: vec3u,
                         @builtin(local_invocation_index) lid: u32) {
  let lanes = 1u << params.lane_bits;
  let lane = lid & (lanes - 1u);
  let slot = lid >> params.lane_bits;
  let slots = WG >> params.lane_bits;
  let w = linear_workgroup(wid, nwg);
  // The overshoot of a 2-D grid.
  if (w >= params.a_blocks) { return; }
  let steps = walk_steps();
  let batches = (params.rows + slots - 1u) / slots;
  var acc: array<vec2f, MAX_COLUMNS>;
  for (var b = w; b < batches; b += params.a_blocks) {
    let r = b * slots + slot;
    let in_range = r < params.rows;
    let k = to_coef(saved[min(r, params.rows - 1u)]);
    let start = r * params.sample_stride;
    var s = vec2f(0.0);
    if (in_range) {
      // IN_FLIGHT columns at a time, every load first (see walk_ahead).
      for (var j0 = 0u; j0 < steps; j0 += IN_FLIGHT) {
        let ahead = run_ahead(start, params.count, lane, j0);
        let vs = load_xdy_ahead(ahead);
        cache_ahead(lid, j0, ahead.n, vs);
        for (var u = 0u; u < IN_FLIGHT; u++) {
          if (u < ahead.n) {
            let col = step_param(ahead, u);
            let z = grad_z(k, vs[u].x, vs[u].y, col);
            acc[j0 + u] += vec2f(z.x * z.y, z.x);
            let gz = z.x * gamma_at(col);
            s += vec2f(gz, gz * z.y);
          }
        }
      }
    }
    sums[lid] = s;
    workgroupBarrier();
    for (var stride = lanes / 2u; stride > 0u; stride >>= 1u) {
      if (lane < stride) { sums[lid] += sums[lid + stride]; }
      workgroupBarrier();
    }
    let total = sums[lid - lane];
    let inv_n = 1.0 / f32(params.count);
    let mean_g = select(total.x * inv_n, 0.0, RMS == 1u);
    let mean_gx = total.y * inv_n;
    // Every thread takes every step (the stores may pair threads), IN_FLIGHT at a time with
    // every load first.
    for (var j0 = 0u; j0 < steps; j0 += IN_FLIGHT) {
      let ahead = run_ahead(start, params.count, lane, j0);
      var vs: array<vec2f, IN_FLIGHT>;
      if (in_range) { vs = xdy_ahead(lid, ahead, j0, CACHE_STEPS); }
      var out: array<f32, IN_FLIGHT>;
      for (var u = 0u; u < IN_FLIGHT; u++) {
        if (u < ahead.n) { out[u] = dx_of(k, vs[u], step_param(ahead, u), vec2f(mean_g, mean_gx)); }
      }
      store_dx_ahead(lid, lane, ahead, in_range, out);
    }
    // The next batch rewrites sums.
    workgroupBarrier();
  }
  for (var j = 0u; j < MAX_COLUMNS; j++) {
    if (j >= steps) { break; }
    sums[lid] = acc[j];
    workgroupBarrier();
    for (var stride = slots / 2u; stride > 0u; stride >>= 1u) {
      if (slot < stride) { sums[lid] += sums[lid + stride * lanes]; }
      workgroupBarrier();
    }
    let col = run_offset(lane, j);
    if (slot == 0u && col < params.count) { partials[w * params.count + col] = sums[lid]; }
    workgroupBarrier();
  }
}

// Channels-first GroupNorm and InstanceNorm (a_inner > 1): a group's segments are whole channel
// planes of one sample, so the γ/β sums of each (sample, channel) come out of the same walk:
// the lanes take one plane at a time, merge its (Σ dz·x̂, Σ dz) in a tree, and lane 0 writes them
// as that sample's partial (block n of the affine view) and folds them, times γ, into the group's
// sums. dγ and dβ then need no second read of x and dy: norm_affine_finalize adds the N partials.
@compute @workgroup_size(WG)
fn norm_backward_planes(@builtin(workgroup_id) wid: vec3u,
                        @builtin(num_workgroups) nwg: vec3u,
                        @builtin(local_invocation_index) lid: u32) {
  let t = lanes_of(wid, nwg, lid);
  let k = to_coef(saved[min(t.group, params.rows - 1u)]);
  // A plane's walk: the run of seg_len elements in chunks (run_ahead).
  let plane_steps = run_steps(params.seg_len);
  var group_sums = vec2f(0.0);  // lane 0: (Σ γ·dz, Σ γ·dz·x̂)
  var j = 0u;
  for (var seg = 0u; seg < params.segs; seg++) {
    let c = t.g * params.aff_group + seg;
    let plane = t.start + seg * params.seg_stride;
    var s = vec2f(0.0);
    if (t.in_range) {
      // IN_FLIGHT steps at a time, every load first (see walk_ahead).
      for (var q0 = 0u; q0 < plane_steps; q0 += IN_FLIGHT) {
        let ahead = run_ahead(plane, params.seg_len, t.lane, q0);
        let vs = load_xdy_ahead(ahead);
        cache_ahead(lid, j, ahead.n, vs);
        j += ahead.n;
        for (var u = 0u; u < IN_FLIGHT; u++) {
          if (u < ahead.n) {
            let z = grad_z(k, vs[u].x, vs[u].y, c);
            s += vec2f(z.x * z.y, z.x);
          }
        }
      }
    }
    sums[lid] = s;
    workgroupBarrier();
    for (var stride = (1u << params.lane_bits) / 2u; stride > 0u; stride >>= 1u) {
      if (t.lane < stride) { sums[lid] += sums[lid + stride]; }
      workgroupBarrier();
    }
    if (t.in_range && t.lane == 0u) {
      let plane_sums = sums[lid];
      partials[t.n * params.a_count + c] = plane_sums;
      group_sums += gamma_at(c) * vec2f(plane_sums.y, plane_sums.x);
    }
    workgroupBarrier();
  }
  if (t.lane == 0u) { sums[lid] = group_sums; }
  workgroupBarrier();
  let inv_n = 1.0 / f32(params.count);
  let total = select(sums[t.first], vec2f(0.0), params.use_running == 1u);
  let mean_g = total.x * inv_n;
  let mean_gx = total.y * inv_n;
  // Every thread takes every step of every plane (the stores may pair threads), IN_FLIGHT at a
  // time with every load first.
  j = 0u;
  for (var seg = 0u; seg < params.segs; seg++) {
    let c = t.g * params.aff_group + seg;
    let plane = t.start + seg * params.seg_stride;
    for (var q0 = 0u; q0 < plane_steps; q0 += IN_FLIGHT) {
      let ahead = run_ahead(plane, params.seg_len, t.lane, q0);
      var vs: array<vec2f, IN_FLIGHT>;
      if (t.in_range) {
        vs = xdy_ahead(lid, ahead, j, CACHE_STEPS);
        j += ahead.n;
      }
      var out: array<f32, IN_FLIGHT>;
      for (var u = 0u; u < IN_FLIGHT; u++) {
        if (u < ahead.n) { out[u] = dx_of(k, vs[u], c, vec2f(mean_g, mean_gx)); }
      }
      store_dx_ahead(lid, t.lane, ahead, t.in_range, out);
    }
  }
}

// Channels-last groups (GroupNorm and InstanceNorm over NHWC-like layouts): a group's segments
// are its positions, each the group's seg_len = C/G contiguous channels. Its lanes form `slots`
// rows of width = row_width lanes (chosen by the host, at most seg_len, so that few lanes idle):
// lane l takes the channels c = l % width + j·width (j < cols) at positions l / width, + slots,
// + 2·slots, ..., so a thread keeps the same channels through the walk and their (Σ dz·x̂, Σ dz)
// in registers, and neighbouring lanes read neighbouring channels.
// A tree over the slots gives each (sample, channel)'s sums: lane 0 of the slot row writes them as
// that sample's partial (block n of the affine view, as norm_backward_planes) and folds them,
// times γ, into the group's sums for dx. x and dy are read once for dx, dγ and dβ (the host takes
// this kernel where cols <= MAX_COLUMNS).
@compute @workgroup_size(WG)
fn norm_backward_channels(@builtin(workgroup_id) wid: vec3u,
                          @builtin(num_workgroups) nwg: vec3u,
                          @builtin(local_invocation_index) lid: u32) {
  let t = lanes_of(wid, nwg, lid);
  let k = to_coef(saved[min(t.group, params.rows - 1u)]);
  let lanes = 1u << params.lane_bits;
  let width = params.row_width;
  let slots = lanes / width;
  let cols = (params.seg_len + width - 1u) / width;
  let slot = t.lane / width;
  let col = t.lane - slot * width;
  // The lanes past slots · width (seg_len not dividing the lanes) take no element.
  let walks = t.in_range && slot < slots;
  let first_param = t.g * params.aff_group + col;
  var acc: array<vec2f, MAX_COLUMNS>;
  var j = 0u;
  if (walks) {
    // The thread's (position, column) steps in order, LOADS_IN_FLIGHT at a time, every load first (see
    // walk_ahead). Its columns c are those with col + c·width < seg_len.
    let own_cols = (params.seg_len - col + width - 1u) / width;
    var seg = slot;
    var c = 0u;
    while (seg < params.segs) {
      var vs: array<vec2f, LOADS_IN_FLIGHT>;
      var cs: array<u32, LOADS_IN_FLIGHT>;
      var n = 0u;
      for (var u = 0u; u < LOADS_IN_FLIGHT; u++) {
        if (seg < params.segs) {
          let e = t.start + seg * params.seg_stride + col + c * width;
          vs[u] = vec2f(load_x(e), load_dy(e));
          cs[u] = c;
          n = u + 1u;
          c++;
          if (c == own_cols) {
            c = 0u;
            seg += slots;
          }
        }
      }
      for (var u = 0u; u < LOADS_IN_FLIGHT; u++) {
        if (u >= n) { break; }
        if (j < CACHE_STEPS) {
          cache_x[lid + j * WG] = vs[u].x;
          cache_dy[lid + j * WG] = vs[u].y;
        }
        j++;
        let z = grad_z(k, vs[u].x, vs[u].y, first_param + cs[u] * width);
        acc[cs[u]] += vec2f(z.x * z.y, z.x);
      }
    }
  }
  // Each channel's sums over the slots, in a tree whose shape depends only on the plan.
  var top = 1u;
  while (top < slots) { top *= 2u; }
  var group_sums = vec2f(0.0);  // lanes of slot 0: (Σ γ·dz, Σ γ·dz·x̂) of their channels
  for (var c = 0u; c < cols; c++) {
    sums[lid] = acc[c];
    workgroupBarrier();
    for (var stride = top / 2u; stride > 0u; stride >>= 1u) {
      if (slot < stride && slot + stride < slots) { sums[lid] += sums[lid + stride * width]; }
      workgroupBarrier();
    }
    let channel = col + c * width;
    if (t.in_range && slot == 0u && channel < params.seg_len) {
      let s = sums[lid];
      let a = first_param + c * width;
      partials[t.n * params.a_count + a] = s;
      group_sums += gamma_at(a) * vec2f(s.y, s.x);
    }
    workgroupBarrier();
  }
  sums[lid] = group_sums;
  workgroupBarrier();
  for (var stride = lanes / 2u; stride > 0u; stride >>= 1u) {
    if (t.lane < stride) { sums[lid] += sums[lid + stride]; }
    workgroupBarrier();
  }
  let inv_n = 1.0 / f32(params.count);
  let total = select(sums[t.first], vec2f(0.0), params.use_running == 1u);
  let mean_g = select(total.x * inv_n, 0.0, RMS == 1u);
  let mean_gx = total.y * inv_n;
  // Every thread takes every (row, column) step (the stores may pair threads: the lanes of a slot
  // row hold consecutive channels of one position), LOADS_IN_FLIGHT at a time with every load first.
  let rows = (params.segs + slots - 1u) / slots;
  j = 0u;
  var q = 0u;  // the (row, column) of step s0 + u
  var c = 0u;
  for (var s0 = 0u; s0 < rows * cols; s0 += LOADS_IN_FLIGHT) {
    var vs: array<vec2f, LOADS_IN_FLIGHT>;
    var es: array<u32, LOADS_IN_FLIGHT>;
    var cs: array<u32, LOADS_IN_FLIGHT>;
    var hs: array<bool, LOADS_IN_FLIGHT>;
    for (var u = 0u; u < LOADS_IN_FLIGHT; u++) {
      let seg = slot + q * slots;
      let offset = col + c * width;
      hs[u] = walks && q < rows && seg < params.segs && offset < params.seg_len;
      es[u] = t.start + seg * params.seg_stride + offset;
      cs[u] = c;
      if (hs[u]) {
        vs[u] = xdy_at(lid, j, CACHE_STEPS, es[u]);
        j++;
      }
      c++;
      if (c == cols) {
        c = 0u;
        q++;
      }
    }
    for (var u = 0u; u < LOADS_IN_FLIGHT; u++) {
      let has = hs[u];
      let offset = col + cs[u] * width;
      var out = 0.0;
      if (has) { out = dx_of(k, vs[u], first_param + cs[u] * width, vec2f(mean_g, mean_gx)); }
      store_dx_step(lid, has, es[u], out, has && col + 1u < width && offset + 1u < params.seg_len, has && col > 0u);
    }
  }
}

// One element's (dz·x̂, dz), for the γ entry a of the affine view, its group's coefficients k.
fn affine_terms(k: GroupCoef, e: u32, a: u32) -> vec2f {
  let t = grad_z(k, load_x(e), load_dy(e), a);
  return vec2f(t.x * t.y, t.x);
}

// a_inner == 1 (LayerNorm, RMSNorm, channels-last GroupNorm and InstanceNorm): a workgroup is a
// tile of AFFINE_WIDTH consecutive γ entries (coalesced loads along a row) by WG / width row
// lanes, over one block of rows; the lanes are merged in a tree.
@compute @workgroup_size(WG)
fn norm_affine_partials_rows(@builtin(workgroup_id) wid: vec3u,
                             @builtin(num_workgroups) nwg: vec3u,
                             @builtin(local_invocation_index) lid: u32) {
  let width = min(params.a_count, AFFINE_WIDTH);
  let lanes = WG / width;
  let tiles = (params.a_count + width - 1u) / width;
  let wg = linear_workgroup(wid, nwg);
  let block = wg / tiles;
  let lane = lid / width;
  let a = (wg - block * tiles) * width + lid - lane * width;
  var s = vec2f(0.0);
  if (a < params.a_count && lane < lanes && block < params.a_blocks) {
    let first = block * params.a_block_rows + lane;
    let end = min((block + 1u) * params.a_block_rows, params.a_outer);
    // The sample of row o, o / rps, kept without a division per row.
    let rps = params.a_rows_per_sample;
    var n = first / rps;
    var rem = first - n * rps;
    let dn = lanes / rps;
    let dr = lanes - dn * rps;
    let g = a / params.a_per_group;
    for (var o = first; o < end; o += lanes) {
      s += affine_terms(to_coef(saved[n * params.groups + g]), o * params.a_count + a, a);
      n += dn;
      rem += dr;
      if (rem >= rps) {
        rem -= rps;
        n += 1u;
      }
    }
  }
  sums[lid] = s;
  workgroupBarrier();
  var stride = 1u;
  while (stride < lanes) { stride *= 2u; }
  for (stride /= 2u; stride > 0u; stride /= 2u) {
    if (lane < stride && lane + stride < lanes) { sums[lid] += sums[lid + stride * width]; }
    workgroupBarrier();
  }
  if (lane == 0u && a < params.a_count && block < params.a_blocks) {
    partials[block * params.a_count + a] = sums[lid];
  }
}

// FINALIZE_LANES threads per γ entry, so that the partials (up to a_blocks · a_count of them,
// e.g. 32 MB for a LayerNorm over 4096 features) are read by four times as many threads as there
// are entries: lane l adds blocks l, l + FINALIZE_LANES, ... in order, and the lanes' sums merge
// in a fixed tree. A workgroup takes WG / FINALIZE_LANES consecutive entries (coalesced reads).
const FINALIZE_LANES: u32 = 4u;

@compute @workgroup_size(WG)
fn norm_affine_finalize(@builtin(workgroup_id) wid: vec3u,
                        @builtin(num_workgroups) nwg: vec3u,
                        @builtin(local_invocation_index) lid: u32) {
  let width = WG / FINALIZE_LANES;
  let lane = lid / width;
  let a = linear_workgroup(wid, nwg) * width + lid - lane * width;
  var s = vec2f(0.0);
  if (a < params.a_count) {
    for (var b = lane; b < params.a_blocks; b += FINALIZE_LANES) {
      s += partials[b * params.a_count + a];
    }
  }
  sums[lid] = s;
  workgroupBarrier();
  if (lane > 0u || a >= params.a_count) { return; }
  let total = (sums[lid] + sums[lid + width]) + (sums[lid + 2u * width] + sums[lid + 3u * width]);
  // Both are written; an absent one is bound to a sink (src/normalization/record.ts).
  dgamma[a] = total.x;
  dbeta[a] = total.y;
}
