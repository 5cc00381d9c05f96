// Shared by the training demo's layer kernels (nn_*.wgsl): the host builds each shader as
// nn_common.wgsl + the kernel file. Tensors are float32, row-major, NCHW.

// Threads per workgroup.
const WG: u32 = 256u;

// The thread's linear index. Dispatches over maxComputeWorkgroupsPerDimension workgroups are
// split over x and y by the host; the overshoot past the last element returns early.
fn thread_index(wid: vec3u, nwg: vec3u, lid: u32) -> u32 {
  return (wid.x + wid.y * nwg.x) * WG + lid;
}
