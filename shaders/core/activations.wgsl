// The activation fused after a normalization's affine transform, written once for batch norm
// (four channels or lanes at a time) and the normalization family (one element at a time, through
// the vec4 functions). Non-finite values behave as in the float64 reference
// (referenceActivation, referenceActivationGrad): IEEE arithmetic, made explicit rather than left
// to the hardware.
//
// 0 none; 1 ReLU, y = max(z, 0), its mask applied to dy in backward; 2 SiLU, y = z * sigmoid(z),
// dy multiplied by its derivative in backward. A pipeline constant rather than a uniform field,
// so that pipelines without it carry no per-element test (a uniform field cost 20 % on (N,C)
// batch-norm inference on SwiftShader).
override ACTIVATION: u32 = 0u;

// The fused activation of z (ACTIVATION). ReLU keeps NaN: WGSL leaves max(NaN, 0) to the
// implementation (0 on some GPUs), and the reference's max(NaN, 0) is NaN, so a non-finite channel
// or group stays visible in y. SiLU of a non-finite z is z * sigmoid(z) in IEEE arithmetic: +Inf
// stays +Inf, -Inf and NaN give NaN; sigmoid4 (numerics.wgsl) never overflows.
fn activate4(z: vec4f) -> vec4f {
  if (ACTIVATION == 1u) { return select(max(z, vec4f(0.0)), z, is_nan4(z)); }
  if (ACTIVATION == 2u) {
    let inf_or_nan = select(vec4f(nan()), z, z > vec4f(0.0));
    return select(inf_or_nan, z * sigmoid4(z), is_finite4(z));
  }
  return z;
}

// dy times the activation's derivative at z, the gradient with respect to z: ReLU lets dy through
// where z > 0 (not where z is NaN); SiLU's derivative is sigmoid(z) * (1 + z * (1 - sigmoid(z))),
// NaN where z is not finite.
fn activation_grad4(dy: vec4f, z: vec4f) -> vec4f {
  if (ACTIVATION == 1u) { return select(vec4f(0.0), dy, z > vec4f(0.0)); }
  if (ACTIVATION == 2u) {
    // sigmoid(z) and 1 - sigmoid(z) = sigmoid(-z), each without cancellation (see sigmoid4).
    let e = exp(-abs(z));
    let r = 1.0 / (1.0 + e);
    let positive = z >= vec4f(0.0);
    let s = select(e * r, r, positive);
    let s_neg = select(r, e * r, positive);
    return select(vec4f(nan()), dy * (s * (1.0 + z * s_neg)), is_finite4(z));
  }
  return dy;
}

// activate4 of one value.
fn activate(z: f32) -> f32 {
  return activate4(vec4f(z)).x;
}

// activation_grad4 of one value.
fn activation_grad(dy: f32, z: f32) -> f32 {
  return activation_grad4(vec4f(dy), vec4f(z)).x;
}
