// Tensors (x, y, dy, dx) stored as float32 and accessed as vec4s, for tensors whose element
// count is a multiple of 4: a slot is four elements, one 16-byte load or store.

@group(0) @binding(1) var<storage, read> x: array<vec4f>;
@group(0) @binding(2) var<storage, read_write> y: array<vec4f>;
@group(0) @binding(3) var<storage, read> dy: array<vec4f>;
@group(0) @binding(4) var<storage, read_write> dx: array<vec4f>;

const SLOT: u32 = 4u;
// The smallest inner a slot kernel meets with this storage, which sizes SLOT_SPAN: the slot
// kernels take it only where inner % 4 == 0 (channels-last vec4 tensors have kernels of their own).
const SLOT_MIN_INNER: u32 = 4u;

fn load_x(e: u32) -> f32 { return x[e >> 2u][e & 3u]; }
fn load_dy(e: u32) -> f32 { return dy[e >> 2u][e & 3u]; }
// Four consecutive elements from e, a multiple of 4 (used where they share a channel).
fn load_x4(e: u32) -> vec4f { return x[e >> 2u]; }
fn load_dy4(e: u32) -> vec4f { return dy[e >> 2u]; }
fn load_x_slot(slot: u32) -> vec4f { return x[slot]; }
fn load_dy_slot(slot: u32) -> vec4f { return dy[slot]; }
fn store_y_slot(slot: u32, v: vec4f) { y[slot] = v; }
fn store_dx_slot(slot: u32, v: vec4f) { dx[slot] = v; }
// Four consecutive elements from e, a multiple of 4 (channels-last rows of C % 4 == 0 channels).
fn store_y4(e: u32, v: vec4f) { y[e >> 2u] = v; }
fn store_dx4(e: u32, v: vec4f) { dx[e >> 2u] = v; }
