// Tensors (x, y, dy, dx) of the normalization family stored as float32, accessed one element at
// a time: a group's elements start anywhere (a LayerNorm row of odd length, a GroupNorm group of
// a channels-last tensor), so no wider access is aligned for every group.

@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(3) var<storage, read> dy: array<f32>;
@group(0) @binding(4) var<storage, read_write> dx: array<f32>;

fn load_x(e: u32) -> f32 { return x[e]; }
fn load_dy(e: u32) -> f32 { return dy[e]; }
fn store_y(e: u32, v: f32) { y[e] = v; }
fn store_dx(e: u32, v: f32) { dx[e] = v; }

// The stores of a walk's step, which every thread of the workgroup calls together (uniform
// control flow): element e gets v where `has`; `next` and `prev` say whether the neighbouring
// threads hold e + 1 and e - 1 (normalization/tensor_f16_packed.wgsl pairs them).
// Here each element is its own word.
fn store_y_step(lid: u32, has: bool, e: u32, v: f32, next: bool, prev: bool) { if (has) { store_y(e, v); } }
fn store_dx_step(lid: u32, has: bool, e: u32, v: f32, next: bool, prev: bool) { if (has) { store_dx(e, v); } }
