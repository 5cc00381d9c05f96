// Tensors (x, dy) of the normalization family stored as IEEE halves packed two per u32 (adapters
// without shader-f16) and read as pairs of words: the host takes this storage where every group's
// segments start at a multiple of 4 elements and hold a multiple of 4, so that the walks of
// normalization/common.wgsl move chunks of 4 halves, one 8-byte load, and store a chunk as its two
// whole words, which no other thread writes (no atomic read-modify-write, no pairing). y and dx
// are normalization/packed_halves.wgsl's, whose one-half stores the kernels that walk channels
// apart still use. The tensor has a multiple of 4 elements: no padding half.

@group(0) @binding(1) var<storage, read> x: array<vec2u>;
@group(0) @binding(3) var<storage, read> dy: array<vec2u>;

// Elements per chunk of the walks (see walk_ahead).
const VEC: u32 = 4u;

fn load_x(e: u32) -> f32 { return half_of(x[e >> 2u][(e >> 1u) & 1u], e); }
fn load_dy(e: u32) -> f32 { return half_of(dy[e >> 2u][(e >> 1u) & 1u], e); }

// A chunk: the 4 consecutive elements from e, a multiple of 4 (one segment's, so one group's).
fn halves_of(words: vec2u) -> array<f32, VEC> {
  let a = unpack2x16float(words.x);
  let b = unpack2x16float(words.y);
  return array(a.x, a.y, b.x, b.y);
}
fn load_x_chunk(e: u32) -> array<f32, VEC> { return halves_of(x[e >> 2u]); }
fn load_dy_chunk(e: u32) -> array<f32, VEC> { return halves_of(dy[e >> 2u]); }
// A chunk's stores, called as store_y_step: two whole words.
fn store_y_chunk(lid: u32, has: bool, e: u32, v: array<f32, VEC>, next: bool, prev: bool) {
  if (has) {
    atomicStore(&y[e >> 1u], pack_f16(v[0], v[1]));
    atomicStore(&y[(e >> 1u) + 1u], pack_f16(v[2], v[3]));
  }
}
fn store_dx_chunk(lid: u32, has: bool, e: u32, v: array<f32, VEC>, next: bool, prev: bool) {
  if (has) {
    atomicStore(&dx[e >> 1u], pack_f16(v[0], v[1]));
    atomicStore(&dx[(e >> 1u) + 1u], pack_f16(v[2], v[3]));
  }
}
