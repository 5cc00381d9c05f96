// Tensors (x, y, dy, dx) of the normalization family stored as native f16 (adapters with
// shader-f16), one element at a time; arithmetic stays in float32. An odd tensor's padding half
// (the bytes are those of normalization/tensor_f16_packed.wgsl) is written as 0.
enable f16;

@group(0) @binding(1) var<storage, read> x: array<f16>;
@group(0) @binding(2) var<storage, read_write> y: array<f16>;
@group(0) @binding(3) var<storage, read> dy: array<f16>;
@group(0) @binding(4) var<storage, read_write> dx: array<f16>;

fn load_x(e: u32) -> f32 { return f32(x[e]); }
fn load_dy(e: u32) -> f32 { return f32(dy[e]); }
fn store_y(e: u32, v: f32) {
  y[e] = f16(v);
  if (e + 1u == params.total && (e & 1u) == 0u) { y[e + 1u] = 0.0h; }
}
fn store_dx(e: u32, v: f32) {
  dx[e] = f16(v);
  if (e + 1u == params.total && (e & 1u) == 0u) { dx[e + 1u] = 0.0h; }
}

// The stores of a walk's step, which every thread of the workgroup calls together (uniform
// control flow): element e gets v where `has`; `next` and `prev` say whether the neighbouring
// threads hold e + 1 and e - 1 (normalization/tensor_f16_packed.wgsl pairs them).
// Native halves are stored one at a time.
fn store_y_step(lid: u32, has: bool, e: u32, v: f32, next: bool, prev: bool) { if (has) { store_y(e, v); } }
fn store_dx_step(lid: u32, has: bool, e: u32, v: f32, next: bool, prev: bool) { if (has) { store_dx(e, v); } }
