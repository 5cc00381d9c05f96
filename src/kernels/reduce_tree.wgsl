// Workgroup-wide reductions of the RWG threads of a reduction kernel, for devices without the
// `subgroups` feature: a tree in workgroup memory, log2(RWG) barriers. reduce_subgroups.wgsl
// defines the same functions with subgroup operations; a module includes one of the two.
// Every thread of the workgroup must call them (they hold barriers); the result is the
// workgroup's on thread 0 (on the others, a part of it).

var<workgroup> wg_moments: array<vec3f, RWG>;
var<workgroup> wg_sums: array<vec2f, RWG>;
var<workgroup> wg_range: array<vec2f, RWG>;

// Chan's merge of every thread's (mean, M2, n) summary (merge() in common.wgsl), pairwise.
fn workgroup_moments(acc: vec3f, lid: u32) -> vec3f {
  wg_moments[lid] = acc;
  workgroupBarrier();
  for (var stride = RWG / 2u; stride > 0u; stride = stride / 2u) {
    if (lid < stride) {
      wg_moments[lid] = merge(wg_moments[lid], wg_moments[lid + stride]);
    }
    workgroupBarrier();
  }
  return wg_moments[0];
}

// The sum of every thread's pair of sums.
fn workgroup_sums(acc: vec2f, lid: u32) -> vec2f {
  wg_sums[lid] = acc;
  workgroupBarrier();
  for (var stride = RWG / 2u; stride > 0u; stride = stride / 2u) {
    if (lid < stride) {
      wg_sums[lid] += wg_sums[lid + stride];
    }
    workgroupBarrier();
  }
  return wg_sums[0];
}

// workgroup_moments, and the (min, max) of every thread's (min, max), in one tree.
fn workgroup_moments_range(acc: MomentsRange, lid: u32) -> MomentsRange {
  wg_moments[lid] = acc.moments;
  wg_range[lid] = acc.range;
  workgroupBarrier();
  for (var stride = RWG / 2u; stride > 0u; stride = stride / 2u) {
    if (lid < stride) {
      wg_moments[lid] = merge(wg_moments[lid], wg_moments[lid + stride]);
      wg_range[lid] = merge_range(wg_range[lid], wg_range[lid + stride]);
    }
    workgroupBarrier();
  }
  return MomentsRange(wg_moments[0], wg_range[0]);
}
