// What a workgroup reduction merges (workgroup_reduce: reduce_tree.wgsl, or reduce_subgroups.wgsl
// where the device has subgroups), used by batch norm's and feature scaling's reduction kernels:
// a thread's Partial and the kinds of merges. The reductions run RWG threads (workgroups.wgsl).

// The (min, max) of no value.
const EMPTY_RANGE = vec2f(3.4e38, -3.4e38);

// NaN wins, as in the float64 reference (WGSL leaves min and max of a NaN to the implementation,
// and some drop it): a feature whose data holds a NaN has NaN min and max.
fn merge_range(a: vec2f, b: vec2f) -> vec2f {
  if (is_nan(a.x) || is_nan(a.y) || is_nan(b.x) || is_nan(b.y)) { return vec2f(nan()); }
  return vec2f(min(a.x, b.x), max(a.y, b.y));
}

// A thread's part of a workgroup reduction: a (mean, M2, n) summary and a pair, combined as the
// reduction's kind says.
struct Partial {
  moments: vec3f,
  extra: vec2f,
}

const EMPTY_PARTIAL = Partial(vec3f(0.0), EMPTY_RANGE);

// Kinds of workgroup reductions: Chan's merge of the moments; plain sums of the pairs; both the
// merge and the (min, max) of the pairs.
const REDUCE_MOMENTS: u32 = 0u;
const REDUCE_SUMS: u32 = 1u;
const REDUCE_MOMENTS_RANGE: u32 = 2u;

fn combine(a: Partial, b: Partial, kind: u32) -> Partial {
  if (kind == REDUCE_SUMS) { return Partial(a.moments, a.extra + b.extra); }
  if (kind == REDUCE_MOMENTS_RANGE) { return Partial(merge(a.moments, b.moments), merge_range(a.extra, b.extra)); }
  return Partial(merge(a.moments, b.moments), a.extra);
}
