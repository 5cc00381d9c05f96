// Mini-batch SGD with optional momentum, PyTorch's form:
//   velocity = momentum * velocity + grad;  param -= lr * velocity
// With momentum 0 this is plain SGD (velocity is then just the gradient).

struct SgdShape {
  count: u32,
  _pad0: u32,
  _pad1: u32,
  _pad2: u32,
}

// Written by the host between steps (the learning-rate control).
struct SgdHyper {
  lr: f32,
  momentum: f32,
  _pad0: f32,
  _pad1: f32,
}

@group(0) @binding(0) var<uniform> shape: SgdShape;
@group(0) @binding(1) var<uniform> hyper: SgdHyper;
@group(0) @binding(2) var<storage, read_write> param: array<f32>;
@group(0) @binding(3) var<storage, read> grad: array<f32>;
@group(0) @binding(4) var<storage, read_write> velocity: array<f32>;

@compute @workgroup_size(WG)
fn sgd_step(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
            @builtin(local_invocation_index) lid: u32) {
  let i = thread_index(wid, nwg, lid);
  if (i >= shape.count) { return; }
  let v = hyper.momentum * velocity[i] + grad[i];
  velocity[i] = v;
  param[i] -= hyper.lr * v;
}
