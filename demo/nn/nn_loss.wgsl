// Softmax cross-entropy over the last axis of logits [N, K], averaged over the batch:
// loss_n = logsumexp(logits_n) - logits_n[label_n], and dlogits = (softmax - onehot) / N.

struct LossParams {
  batch: u32,
  classes: u32,
  _pad0: u32,
  _pad1: u32,
}

@group(0) @binding(0) var<uniform> p: LossParams;
@group(0) @binding(1) var<storage, read> logits: array<f32>;           // [N, K]
@group(0) @binding(2) var<storage, read> labels: array<u32>;           // [N], each < K
@group(0) @binding(3) var<storage, read_write> dlogits: array<f32>;    // [N, K]
@group(0) @binding(4) var<storage, read_write> losses: array<f32>;     // [N]: loss of each sample
@group(0) @binding(5) var<storage, read_write> correct: array<u32>;    // [N]: 1 where argmax == label

// One thread per sample (K is small: 10 digits).
@compute @workgroup_size(WG)
fn softmax_cross_entropy(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                         @builtin(local_invocation_index) lid: u32) {
  let n = thread_index(wid, nwg, lid);
  if (n >= p.batch) { return; }
  let row = n * p.classes;
  let label = labels[n];
  var top = logits[row];
  var top_at = 0u;
  for (var k = 1u; k < p.classes; k++) {
    if (logits[row + k] > top) {
      top = logits[row + k];
      top_at = k;
    }
  }
  // Subtracting the max keeps exp() in range.
  var sum = 0.0;
  for (var k = 0u; k < p.classes; k++) {
    sum += exp(logits[row + k] - top);
  }
  let scale = 1.0 / f32(p.batch);
  for (var k = 0u; k < p.classes; k++) {
    let prob = exp(logits[row + k] - top) / sum;
    dlogits[row + k] = (prob - select(0.0, 1.0, k == label)) * scale;
  }
  losses[n] = log(sum) + top - logits[row + label];
  correct[n] = select(0u, 1u, top_at == label);
}
