// Tensors (x, y, dy, dx) of the normalization family stored as IEEE halves packed two per u32
// (adapters without shader-f16). Two elements of one word may belong to two groups, written by
// two workgroups: a store clears and sets only its own half, with atomics, so neither write can
// undo the other whatever their order. The padding half of an odd tensor's last word is written
// as 0 by the store of the last element.

@group(0) @binding(1) var<storage, read> x: array<u32>;
@group(0) @binding(2) var<storage, read_write> y: array<atomic<u32>>;
@group(0) @binding(3) var<storage, read> dy: array<u32>;
@group(0) @binding(4) var<storage, read_write> dx: array<atomic<u32>>;

fn half_of(word: u32, e: u32) -> f32 {
  return unpack2x16float(word)[e & 1u];
}
fn load_x(e: u32) -> f32 { return half_of(x[e >> 1u], e); }
fn load_dy(e: u32) -> f32 { return half_of(dy[e >> 1u], e); }

// The half of v, placed in element e's half of a word, and the mask of the other half.
fn half_bits(e: u32, v: f32) -> vec2u {
  let bits = f16_bits(v);
  if ((e & 1u) == 0u) { return vec2u(bits, 0xffff0000u); }
  return vec2u(bits << 16u, 0x0000ffffu);
}
fn store_y(e: u32, v: f32) {
  let h = half_bits(e, v);
  if (e + 1u == params.total && (e & 1u) == 0u) { atomicStore(&y[e >> 1u], h.x); return; }
  atomicAnd(&y[e >> 1u], h.y);
  atomicOr(&y[e >> 1u], h.x);
}
fn store_dx(e: u32, v: f32) {
  let h = half_bits(e, v);
  if (e + 1u == params.total && (e & 1u) == 0u) { atomicStore(&dx[e >> 1u], h.x); return; }
  atomicAnd(&dx[e >> 1u], h.y);
  atomicOr(&dx[e >> 1u], h.x);
}
