// Tensors (x, dy) of the normalization family stored as IEEE halves packed two per u32 (adapters
// without shader-f16), read one half at a time (groups that start anywhere); y and dx are stored
// by normalization/packed_halves.wgsl. The padding half of an odd tensor's last word is written
// as 0 by the store of the last element.

@group(0) @binding(1) var<storage, read> x: array<u32>;
@group(0) @binding(3) var<storage, read> dy: array<u32>;

fn load_x(e: u32) -> f32 { return half_of(x[e >> 1u], e); }
fn load_dy(e: u32) -> f32 { return half_of(dy[e >> 1u], e); }
