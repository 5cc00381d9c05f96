// Workgroup-wide reductions of the RWG threads of a reduction kernel with subgroup operations,
// for devices with the `subgroups` feature (the module source begins with `enable subgroups;`);
// the same functions as reduce_tree.wgsl. Correct for any subgroup size (4 on SwiftShader, 32 on
// NVIDIA, up to 128), for subgroups with inactive invocations, and whatever the mapping of
// local_invocation_index to subgroups, which WGSL leaves open: each subgroup reduces its active
// invocations with subgroupAdd/Min/Max, one invocation per subgroup (subgroupElect) leaves the
// result in workgroup memory, and after one barrier every subgroup reduces those RWG slots,
// each active invocation taking every active-count-th slot. Every thread must call them; the
// result is the workgroup's on every thread.
//
// Chan's merge of n summaries in its k-way form -- n = sum n_i, mean = sum n_i mean_i / n,
// M2 = sum (M2_i + n_i (mean_i - mean)^2) -- is the pairwise one applied to all at once: sums of
// shifted means and of non-negative terms, never E[x^2] - E[x]^2.

var<workgroup> wg_moments: array<vec3f, RWG>;
var<workgroup> wg_sums: array<vec2f, RWG>;
var<workgroup> wg_range: array<vec2f, RWG>;

// Chan's merge of the (mean, M2, n) summaries of the subgroup's active invocations.
fn subgroup_moments(a: vec3f) -> vec3f {
  let n = subgroupAdd(a.z);
  let mean = subgroupAdd(a.z * a.x) / max(n, 1.0); // n == 0: every summary empty, mean 0
  let d = a.x - mean;
  return vec3f(mean, subgroupAdd(a.y + a.z * d * d), n);
}

fn subgroup_range(r: vec2f) -> vec2f {
  return vec2f(subgroupMin(r.x), subgroupMax(r.y));
}

// (rank among the subgroup's active invocations, their count): the slots of the second step
// this invocation takes are rank, rank + count, ...
fn subgroup_slots() -> vec2u {
  return vec2u(subgroupExclusiveAdd(1u), subgroupAdd(1u));
}

fn workgroup_moments(acc: vec3f, lid: u32) -> vec3f {
  let s = subgroup_moments(acc);
  wg_moments[lid] = select(vec3f(0.0), s, subgroupElect());
  workgroupBarrier();
  let slots = subgroup_slots();
  var t = vec3f(0.0);
  for (var k = slots.x; k < RWG; k += slots.y) {
    t = merge(t, wg_moments[k]);
  }
  return subgroup_moments(t);
}

fn workgroup_sums(acc: vec2f, lid: u32) -> vec2f {
  let s = subgroupAdd(acc);
  wg_sums[lid] = select(vec2f(0.0), s, subgroupElect());
  workgroupBarrier();
  let slots = subgroup_slots();
  var t = vec2f(0.0);
  for (var k = slots.x; k < RWG; k += slots.y) {
    t += wg_sums[k];
  }
  return subgroupAdd(t);
}

fn workgroup_moments_range(acc: MomentsRange, lid: u32) -> MomentsRange {
  let moments = subgroup_moments(acc.moments);
  let range = subgroup_range(acc.range);
  let leader = subgroupElect();
  wg_moments[lid] = select(vec3f(0.0), moments, leader);
  wg_range[lid] = select(EMPTY_RANGE, range, leader);
  workgroupBarrier();
  let slots = subgroup_slots();
  var t = MomentsRange(vec3f(0.0), EMPTY_RANGE);
  for (var k = slots.x; k < RWG; k += slots.y) {
    t = MomentsRange(merge(t.moments, wg_moments[k]), merge_range(t.range, wg_range[k]));
  }
  return MomentsRange(subgroup_moments(t.moments), subgroup_range(t.range));
}
