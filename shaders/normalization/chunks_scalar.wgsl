// The walks' chunks for the storages accessed one element at a time (normalization/tensor_f32,
// tensor_f16, tensor_f16_packed): a chunk is one element, stored through store_y_step and
// store_dx_step (which pair packed halves). normalization/tensor_f32x4.wgsl has chunks of 4.

const VEC: u32 = 1u;

fn load_x_chunk(e: u32) -> array<f32, VEC> { return array(load_x(e)); }
fn load_dy_chunk(e: u32) -> array<f32, VEC> { return array(load_dy(e)); }
fn store_y_chunk(lid: u32, has: bool, e: u32, v: array<f32, VEC>, next: bool, prev: bool) { store_y_step(lid, has, e, v[0], next, prev); }
fn store_dx_chunk(lid: u32, has: bool, e: u32, v: array<f32, VEC>, next: bool, prev: bool) { store_dx_step(lid, has, e, v[0], next, prev); }
