// Workgroup-wide reductions of the RWG threads of a reduction kernel with subgroup operations,
// for devices with the `subgroups` feature (the module source begins with `enable subgroups;`):
// reduce_tree.wgsl's workgroup_reduce, with the same results bit for bit on full subgroups.
//
// The tree's levels whose stride is at least the subgroup size S stay in workgroup memory; the
// S slots left are merged by subgroupShuffleXor, without barriers: invocation i of a full
// subgroup reads slot i, and at the step of mask m invocation 0 merges invocation m's value into
// its own, exactly as the tree's slot 0 takes in slot m, so invocation 0 ends with the tree's
// result, which subgroupBroadcastFirst hands to the others. Slots are read by
// subgroup_invocation_id, not local_invocation_index, so this holds whatever the mapping of
// invocations to subgroups (which WGSL leaves open), for any S up to RWG (4 on SwiftShader, 32 on
// NVIDIA). Barriers: the tree's 7 become 2 (workgroupUniformLoad of S) + log2(RWG / S): 3 for
// S = 32, 6 for S = 4. A subgroup that is not full, or wider than RWG, merges the slots one by
// one instead. Every thread must call it (it holds barriers); the result is the workgroup's
// on every thread.

// The entry point's invocation ids (its last parameter), passed on to the reductions.
struct ReduceIds {
  @builtin(local_invocation_index) lid: u32,
  @builtin(subgroup_size) size: u32,
  @builtin(subgroup_invocation_id) lane: u32,
}

var<workgroup> wg_partials: array<Partial, RWG>;
var<workgroup> wg_width: u32;

// Slots the subgroup stage merges: the subgroup size, at most RWG, as thread 0 sees it, made
// workgroup-uniform (the tree's loop holds barriers). workgroupUniformLoad synchronizes the
// workgroup, so the slots written before it are visible after it.
fn subgroup_width(ids: ReduceIds) -> u32 {
  if (ids.lid == 0u) {
    wg_width = min(ids.size, RWG);
  }
  return workgroupUniformLoad(&wg_width);
}

// Whether every invocation of the calling subgroup is active and it is no wider than RWG, so
// that its invocations 0 .. S - 1 read the S slots.
fn subgroup_full(ids: ReduceIds) -> bool {
  return subgroupAdd(1u) == ids.size && ids.size <= RWG;
}

// The subgroup stage branches on subgroup_full(), which is the same on every invocation of a
// subgroup; WGSL's analysis cannot see that, hence the diagnostic off.
@diagnostic(off, subgroup_uniformity)
fn workgroup_reduce(acc: Partial, ids: ReduceIds, kind: u32) -> Partial {
  wg_partials[ids.lid] = acc;
  let width = subgroup_width(ids);
  for (var stride = RWG / 2u; stride >= width; stride = stride / 2u) {
    if (ids.lid < stride) {
      wg_partials[ids.lid] = combine(wg_partials[ids.lid], wg_partials[ids.lid + stride], kind);
    }
    workgroupBarrier();
  }
  var v = EMPTY_PARTIAL;
  if (subgroup_full(ids)) {
    v = wg_partials[ids.lane];
    for (var m = width / 2u; m > 0u; m = m / 2u) {
      v = combine(v, Partial(subgroupShuffleXor(v.moments, m), subgroupShuffleXor(v.extra, m)), kind);
    }
  } else {
    for (var k = 0u; k < width; k++) {
      v = combine(v, wg_partials[k], kind);
    }
  }
  return Partial(subgroupBroadcastFirst(v.moments), subgroupBroadcastFirst(v.extra));
}
