// InstanceNorm's running statistics with trackRunningStats: one training step's update, after
// norm_forward has saved every instance's statistics. One workgroup.

@group(0) @binding(5) var<storage, read> saved: array<vec4f>;
@group(0) @binding(8) var<storage, read_write> running_mean: array<f32>;
@group(0) @binding(9) var<storage, read_write> running_var: array<f32>;

var<workgroup> non_finite: atomic<u32>;

// PyTorch's InstanceNorm running update (referenceInstanceNormRunningStats): for each channel c,
// running = (1 − m)·running + m·(mean over samples of the instance statistic), the variance
// unbiased (count / (count − 1)). Under nonFiniteBatches 'skip' a batch with any NaN or ±Inf
// instance changes nothing: one workgroup sees every instance's flag before any write.
@compute @workgroup_size(WG)
fn norm_update_running(@builtin(local_invocation_index) lid: u32) {
  if (lid == 0u) { atomicStore(&non_finite, 0u); }
  workgroupBarrier();
  var finite = true;
  for (var r = lid; r < params.rows; r += WG) {
    let s = saved[r];
    finite = finite && is_finite(s.x + s.y) && is_finite(s.w);
  }
  if (!finite) { atomicOr(&non_finite, 1u); }
  workgroupBarrier();
  // No barrier follows: threads may leave independently.
  if (atomicLoad(&non_finite) != 0u && params.update_non_finite == 0u) { return; }
  let samples = params.rows / params.groups;
  let n = f32(params.count);
  let unbias = n / (n - 1.0);
  let m = params.momentum;
  for (var c = lid; c < params.groups; c += WG) {
    var mean = 0.0;
    var variance = 0.0;
    for (var s = 0u; s < samples; s++) {
      let k = saved[s * params.groups + c];
      mean += k.x + k.y;
      variance += k.w;
    }
    mean /= f32(samples);
    variance = variance * unbias / f32(samples);
    running_mean[c] = (1.0 - m) * running_mean[c] + m * mean;
    running_var[c] = (1.0 - m) * running_var[c] + m * variance;
  }
}
