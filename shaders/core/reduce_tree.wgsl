// Workgroup-wide reductions of the RWG threads of a reduction kernel (workgroup_reduce), for
// devices without the `subgroups` feature: a tree in workgroup memory, log2(RWG) barriers.
// reduce_subgroups.wgsl defines the same with subgroup operations; a module includes one of the
// two. Every thread of the workgroup must call it (it holds barriers); the result is the
// workgroup's on thread 0 (on the others, a part of it).

// The entry point's invocation ids (its last parameter), passed on to the reductions.
struct ReduceIds {
  @builtin(local_invocation_index) lid: u32,
}

var<workgroup> wg_partials: array<Partial, RWG>;

// Every thread's partial combined as `kind` says (combine() in reduce_partial.wgsl), pairwise.
fn workgroup_reduce(acc: Partial, ids: ReduceIds, kind: u32) -> Partial {
  let lid = ids.lid;
  wg_partials[lid] = acc;
  workgroupBarrier();
  for (var stride = RWG / 2u; stride > 0u; stride = stride / 2u) {
    if (lid < stride) {
      wg_partials[lid] = combine(wg_partials[lid], wg_partials[lid + stride], kind);
    }
    workgroupBarrier();
  }
  return wg_partials[0];
}
