// Tensors (x, y, dy, dx) of the normalization family stored as float32 and bound as vec4s: the
// host takes this storage where every group's segments start at a multiple of 4 elements and hold
// a multiple of 4 (a LayerNorm row of 1024 features, a GroupNorm plane of 64×64), so that the
// walks of normalization/common.wgsl move 4 consecutive elements of a segment, one 16-byte load
// or store (VEC). Single elements (a group's shift, the kernels that walk channels apart) are a
// vec4's component.

@group(0) @binding(1) var<storage, read> x: array<vec4f>;
@group(0) @binding(2) var<storage, read_write> y: array<vec4f>;
@group(0) @binding(3) var<storage, read> dy: array<vec4f>;
@group(0) @binding(4) var<storage, read_write> dx: array<vec4f>;

// Elements per chunk of the walks (see walk_ahead).
const VEC: u32 = 4u;

fn load_x(e: u32) -> f32 { return x[e >> 2u][e & 3u]; }
fn load_dy(e: u32) -> f32 { return dy[e >> 2u][e & 3u]; }
fn store_y(e: u32, v: f32) { y[e >> 2u][e & 3u] = v; }
fn store_dx(e: u32, v: f32) { dx[e >> 2u][e & 3u] = v; }
// A chunk: the VEC consecutive elements from e, a multiple of 4, which the walks of
// normalization/common.wgsl give one thread in one batch (one segment's, so one group's).
fn load_x_chunk(e: u32) -> array<f32, VEC> {
  let v = x[e >> 2u];
  return array(v.x, v.y, v.z, v.w);
}
fn load_dy_chunk(e: u32) -> array<f32, VEC> {
  let v = dy[e >> 2u];
  return array(v.x, v.y, v.z, v.w);
}
// A chunk's stores, called as store_y_step; no other thread writes its 16 bytes.
fn store_y_chunk(lid: u32, has: bool, e: u32, v: array<f32, VEC>, next: bool, prev: bool) {
  if (has) { y[e >> 2u] = vec4f(v[0], v[1], v[2], v[3]); }
}
fn store_dx_chunk(lid: u32, has: bool, e: u32, v: array<f32, VEC>, next: bool, prev: bool) {
  if (has) { dx[e >> 2u] = vec4f(v[0], v[1], v[2], v[3]); }
}

// The stores of a walk's step, which every thread of the workgroup calls together (see
// normalization/tensor_f32.wgsl); each element is its own 4 bytes.
fn store_y_step(lid: u32, has: bool, e: u32, v: f32, next: bool, prev: bool) { if (has) { store_y(e, v); } }
fn store_dx_step(lid: u32, has: bool, e: u32, v: f32, next: bool, prev: bool) { if (has) { store_dx(e, v); } }
