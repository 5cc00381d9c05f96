// Workgroup size and indexing shared by every kernel (batch norm, feature scaling and the
// normalization family).

// Threads per workgroup of every kernel but the RWG-wide reductions: batch norm's and feature
// scaling's elementwise and per-channel kernels, and every kernel of the normalization family.
const WG: u32 = 256u;
// Threads per workgroup of batch norm's and feature scaling's reduction kernels (workgroup_reduce:
// reduce_tree.wgsl, reduce_subgroups.wgsl): a 64-wide tree needs 6 barriers, and small channels
// (a dense layer's few rows) leave fewer threads idle.
const RWG: u32 = 64u;

// Large dispatches are split over x and y (maxComputeWorkgroupsPerDimension is 65535 on many
// adapters); this folds the 2-D workgroup id back into one linear index.
fn linear_workgroup(wid: vec3u, nwg: vec3u) -> u32 {
  return wid.x + wid.y * nwg.x;
}
