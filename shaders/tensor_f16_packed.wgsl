// Tensors (x, y, dy, dx) stored as IEEE half floats, two per u32 (element 2k in the low half),
// for adapters without shader-f16; arithmetic stays in float32. A slot is one u32, two
// elements, so no two threads ever write the same word. The bytes are those of an array<f16>.

@group(0) @binding(1) var<storage, read> x: array<u32>;
@group(0) @binding(2) var<storage, read_write> y: array<u32>;
@group(0) @binding(3) var<storage, read> dy: array<u32>;
@group(0) @binding(4) var<storage, read_write> dx: array<u32>;

const SLOT: u32 = 2u;

fn load_x(e: u32) -> f32 { return unpack2x16float(x[e >> 1u])[e & 1u]; }
fn load_dy(e: u32) -> f32 { return unpack2x16float(dy[e >> 1u])[e & 1u]; }
fn store_y(slot: u32, v: vec2f) { y[slot] = pack2x16float(v); }
fn store_dx(slot: u32, v: vec2f) { dx[slot] = pack2x16float(v); }
