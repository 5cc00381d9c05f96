// Tensors (x, y, dy, dx) stored as float32. A slot -- the unit one thread of an elementwise
// kernel writes -- is one element.

@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(3) var<storage, read> dy: array<f32>;
@group(0) @binding(4) var<storage, read_write> dx: array<f32>;

const SLOT: u32 = 1u;

fn load_x(e: u32) -> f32 { return x[e]; }
fn load_dy(e: u32) -> f32 { return dy[e]; }
fn store_y(slot: u32, v: vec2f) { y[slot] = v.x; }
fn store_dx(slot: u32, v: vec2f) { dx[slot] = v.x; }
