// Tensors (x, y, dy, dx) stored as native f16, on adapters with shader-f16; arithmetic stays in
// float32. The bytes are those of tensor_f16_packed.wgsl, and a slot is likewise two elements
// (one 32-bit word), so the host side is the same for both. An odd tensor's last word has a
// padding half, which is written as 0.
enable f16;

@group(0) @binding(1) var<storage, read> x: array<f16>;
@group(0) @binding(2) var<storage, read_write> y: array<f16>;
@group(0) @binding(3) var<storage, read> dy: array<f16>;
@group(0) @binding(4) var<storage, read_write> dx: array<f16>;

const SLOT: u32 = 2u;
// The smallest inner a slot kernel meets with this storage (any inner): sizes SLOT_SPAN.
const SLOT_MIN_INNER: u32 = 1u;

fn load_x(e: u32) -> f32 { return f32(x[e]); }
fn load_dy(e: u32) -> f32 { return f32(dy[e]); }
// Four consecutive elements from e, a multiple of 4 (used where they share a channel).
fn load_x4(e: u32) -> vec4f { return vec4f(f32(x[e]), f32(x[e + 1u]), f32(x[e + 2u]), f32(x[e + 3u])); }
fn load_dy4(e: u32) -> vec4f { return vec4f(f32(dy[e]), f32(dy[e + 1u]), f32(dy[e + 2u]), f32(dy[e + 3u])); }
fn load_x_slot(slot: u32) -> vec4f { return vec4f(f32(x[2u * slot]), f32(x[2u * slot + 1u]), 0.0, 0.0); }
fn load_dy_slot(slot: u32) -> vec4f { return vec4f(f32(dy[2u * slot]), f32(dy[2u * slot + 1u]), 0.0, 0.0); }
fn store_y_slot(slot: u32, v: vec4f) {
  y[2u * slot] = f16(v.x);
  y[2u * slot + 1u] = f16(v.y);
}
fn store_dx_slot(slot: u32, v: vec4f) {
  dx[2u * slot] = f16(v.x);
  dx[2u * slot + 1u] = f16(v.y);
}
// Four consecutive elements from e, a multiple of 4 (channels-last rows of C % 4 == 0 channels).
fn store_y4(e: u32, v: vec4f) { y[e] = f16(v.x); y[e + 1u] = f16(v.y); y[e + 2u] = f16(v.z); y[e + 3u] = f16(v.w); }
fn store_dx4(e: u32, v: vec4f) { dx[e] = f16(v.x); dx[e + 1u] = f16(v.y); dx[e + 2u] = f16(v.z); dx[e + 3u] = f16(v.w); }
