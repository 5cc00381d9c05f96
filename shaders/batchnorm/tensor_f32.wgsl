// Tensors (x, y, dy, dx) stored as float32. A slot -- the unit one thread of an elementwise
// kernel writes -- is one element.

@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(3) var<storage, read> dy: array<f32>;
@group(0) @binding(4) var<storage, read_write> dx: array<f32>;

const SLOT: u32 = 1u;
// The smallest inner a slot kernel meets with this storage (any inner): sizes SLOT_SPAN.
const SLOT_MIN_INNER: u32 = 1u;

fn load_x(e: u32) -> f32 { return x[e]; }
fn load_dy(e: u32) -> f32 { return dy[e]; }
// Four consecutive elements from e, a multiple of 4 (used where they share a channel).
fn load_x4(e: u32) -> vec4f { return vec4f(x[e], x[e + 1u], x[e + 2u], x[e + 3u]); }
fn load_dy4(e: u32) -> vec4f { return vec4f(dy[e], dy[e + 1u], dy[e + 2u], dy[e + 3u]); }
fn load_x_slot(slot: u32) -> vec4f { return vec4f(x[slot], 0.0, 0.0, 0.0); }
fn load_dy_slot(slot: u32) -> vec4f { return vec4f(dy[slot], 0.0, 0.0, 0.0); }
fn store_y_slot(slot: u32, v: vec4f) { y[slot] = v.x; }
fn store_dx_slot(slot: u32, v: vec4f) { dx[slot] = v.x; }
// Four consecutive elements from e, a multiple of 4 (channels-last rows of C % 4 == 0 channels).
fn store_y4(e: u32, v: vec4f) { y[e] = v.x; y[e + 1u] = v.y; y[e + 2u] = v.z; y[e + 3u] = v.w; }
fn store_dx4(e: u32, v: vec4f) { dx[e] = v.x; dx[e + 1u] = v.y; dx[e + 2u] = v.z; dx[e + 3u] = v.w; }
