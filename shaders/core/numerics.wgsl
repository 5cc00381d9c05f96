// Numerics shared by every kernel (batch norm, feature scaling and the normalization family):
// finite tests, NaN, IEEE half bits, and the Welford / Chan summaries of shifted data.

// Finite test on the bits: WGSL has no isnan/isinf, and compilers may fold v != v away.
fn is_finite(v: f32) -> bool {
  return (bitcast<u32>(v) & 0x7f800000u) != 0x7f800000u;
}

// NaN test on the bits (v != v may be folded away).
fn is_nan(v: f32) -> bool {
  return (bitcast<u32>(v) & 0x7fffffffu) > 0x7f800000u;
}

// A quiet NaN made at run time (a NaN constant expression is a shader-creation error).
var<private> nan_bits: u32 = 0x7fc00000u;
fn nan() -> f32 {
  return bitcast<f32>(nan_bits);
}

// The IEEE half bits of v, NaN and ±Infinity included: pack2x16float leaves its whole result
// indeterminate when a component is not a finite half, which would also spoil the other half of
// a packed word. NaN stays NaN (sign kept), and |v| >= 65520 (which rounds past 65504) is ±Inf.
fn f16_bits(v: f32) -> u32 {
  let bits = bitcast<u32>(v);
  let sign = (bits >> 16u) & 0x8000u;
  let magnitude = bits & 0x7fffffffu;
  if (magnitude > 0x7f800000u) { return sign | 0x7e00u; }
  if (magnitude >= 0x477ff000u) { return sign | 0x7c00u; }
  return pack2x16float(vec2f(v, 0.0)) & 0xffffu;
}

// Two elements as one word of halves, the first in the low half.
fn pack_f16(a: f32, b: f32) -> u32 {
  return f16_bits(a) | (f16_bits(b) << 16u);
}

// Chan et al.: merge two (mean, M2, n) summaries.
fn merge(a: vec3f, b: vec3f) -> vec3f {
  if (b.z == 0.0) { return a; }
  if (a.z == 0.0) { return b; }
  let n = a.z + b.z;
  let delta = b.x - a.x;
  let wb = b.z / n;
  return vec3f(a.x + delta * wb, a.y + b.y + delta * delta * a.z * wb, n);
}

// Welford's update of a (mean, M2, n) summary with one value.
fn welford(acc: vec3f, v: f32) -> vec3f {
  let n = acc.z + 1.0;
  let mean = acc.x + (v - acc.x) / n;
  return vec3f(mean, acc.y + (v - acc.x) * (v - mean), n);
}

// The logistic sigmoid of z for z >= 0 given e = exp(-|z|), and of -|z| as e / (1 + e): exp of a
// non-positive argument never overflows (WGSL leaves overflow indeterminate), and each branch
// divides by 1 + e in [1, 2].
fn sigmoid4(z: vec4f) -> vec4f {
  let e = exp(-abs(z));
  let r = 1.0 / (1.0 + e);
  return select(e * r, r, z >= vec4f(0.0));
}

// Finite test of each component (is_finite on a vec4).
fn is_finite4(v: vec4f) -> vec4<bool> {
  return (bitcast<vec4u>(v) & vec4u(0x7f800000u)) != vec4u(0x7f800000u);
}

// NaN test of each component (is_nan on a vec4).
fn is_nan4(v: vec4f) -> vec4<bool> {
  return (bitcast<vec4u>(v) & vec4u(0x7fffffffu)) > vec4u(0x7f800000u);
}
