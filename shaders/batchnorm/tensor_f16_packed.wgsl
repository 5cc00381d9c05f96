// Tensors (x, y, dy, dx) stored as IEEE half floats, two per u32 (element 2k in the low half),
// for adapters without shader-f16; arithmetic stays in float32. A slot is one u32, two
// elements, so no two threads ever write the same word. The bytes are those of an array<f16>;
// stores go through pack_f16 (numerics.wgsl), so a NaN or ±Inf never spoils its neighbour.

@group(0) @binding(1) var<storage, read> x: array<u32>;
@group(0) @binding(2) var<storage, read_write> y: array<u32>;
@group(0) @binding(3) var<storage, read> dy: array<u32>;
@group(0) @binding(4) var<storage, read_write> dx: array<u32>;

const SLOT: u32 = 2u;
// The smallest inner a slot kernel meets with this storage (any inner): sizes SLOT_SPAN.
const SLOT_MIN_INNER: u32 = 1u;

fn load_x(e: u32) -> f32 { return unpack2x16float(x[e >> 1u])[e & 1u]; }
fn load_dy(e: u32) -> f32 { return unpack2x16float(dy[e >> 1u])[e & 1u]; }
// Four consecutive elements from e, a multiple of 4 (used where they share a channel).
fn load_x4(e: u32) -> vec4f { return vec4f(unpack2x16float(x[e >> 1u]), unpack2x16float(x[(e >> 1u) + 1u])); }
fn load_dy4(e: u32) -> vec4f { return vec4f(unpack2x16float(dy[e >> 1u]), unpack2x16float(dy[(e >> 1u) + 1u])); }
fn load_x_slot(slot: u32) -> vec4f { return vec4f(unpack2x16float(x[slot]), 0.0, 0.0); }
fn load_dy_slot(slot: u32) -> vec4f { return vec4f(unpack2x16float(dy[slot]), 0.0, 0.0); }
fn store_y_slot(slot: u32, v: vec4f) { y[slot] = pack_f16(v.x, v.y); }
fn store_dx_slot(slot: u32, v: vec4f) { dx[slot] = pack_f16(v.x, v.y); }
// Four consecutive elements from e, a multiple of 4 (channels-last rows of C % 4 == 0 channels):
// two whole words, so no other thread writes them.
fn store_y4(e: u32, v: vec4f) { y[e >> 1u] = pack_f16(v.x, v.y); y[(e >> 1u) + 1u] = pack_f16(v.z, v.w); }
fn store_dx4(e: u32, v: vec4f) { dx[e >> 1u] = pack_f16(v.x, v.y); dx[(e >> 1u) + 1u] = pack_f16(v.z, v.w); }
