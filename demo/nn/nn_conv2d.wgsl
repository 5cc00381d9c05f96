// 2-D convolution (cross-correlation, as in Keras and PyTorch), NCHW, valid padding, stride 1.
// A dense layer is the same operation with a kernel as large as its input: Dense(100) on the
// [20, 4, 4] feature maps is a [100, 20, 4, 4] kernel giving [100, 1, 1].
//
// One thread per output value. The batch is small and the layers are narrow (MNIST), so a
// direct loop keeps every kernel barrier-free; the weight gradient loops over batch and space.

struct ConvParams {
  batch: u32,
  in_channels: u32,
  height: u32,
  width: u32,
  out_channels: u32,
  kernel_h: u32,
  kernel_w: u32,
  out_h: u32,      // height - kernel_h + 1
  out_w: u32,      // width - kernel_w + 1
  _pad0: u32,
  _pad1: u32,
  _pad2: u32,
}

@group(0) @binding(0) var<uniform> p: ConvParams;
@group(0) @binding(1) var<storage, read> x: array<f32>;              // [N, Ci, H, W]
@group(0) @binding(2) var<storage, read> weight: array<f32>;         // [Co, Ci, KH, KW]
@group(0) @binding(3) var<storage, read> bias: array<f32>;           // [Co]
@group(0) @binding(4) var<storage, read_write> y: array<f32>;        // [N, Co, OH, OW]
@group(0) @binding(5) var<storage, read> dy: array<f32>;             // [N, Co, OH, OW]
@group(0) @binding(6) var<storage, read_write> dweight: array<f32>;  // [Co, Ci, KH, KW]
@group(0) @binding(7) var<storage, read_write> dbias: array<f32>;    // [Co]
@group(0) @binding(8) var<storage, read_write> dx: array<f32>;       // [N, Ci, H, W]

// y[n, co, oy, ox] = bias[co] + sum over ci, ky, kx of x[n, ci, oy + ky, ox + kx] * weight[co, ci, ky, kx]
@compute @workgroup_size(WG)
fn conv2d_forward(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                  @builtin(local_invocation_index) lid: u32) {
  let i = thread_index(wid, nwg, lid);
  let plane = p.out_h * p.out_w;
  if (i >= p.batch * p.out_channels * plane) { return; }
  let ox = i % p.out_w;
  let oy = (i / p.out_w) % p.out_h;
  let co = (i / plane) % p.out_channels;
  let n = i / (plane * p.out_channels);
  var acc = bias[co];
  for (var ci = 0u; ci < p.in_channels; ci++) {
    for (var ky = 0u; ky < p.kernel_h; ky++) {
      let xrow = ((n * p.in_channels + ci) * p.height + oy + ky) * p.width + ox;
      let wrow = ((co * p.in_channels + ci) * p.kernel_h + ky) * p.kernel_w;
      for (var kx = 0u; kx < p.kernel_w; kx++) {
        acc += x[xrow + kx] * weight[wrow + kx];
      }
    }
  }
  y[i] = acc;
}

// Threads [0, Co·Ci·KH·KW) write dweight, the next Co threads dbias; each sums over the batch
// and the output plane.
@compute @workgroup_size(WG)
fn conv2d_param_grad(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                     @builtin(local_invocation_index) lid: u32) {
  let i = thread_index(wid, nwg, lid);
  let weights = p.out_channels * p.in_channels * p.kernel_h * p.kernel_w;
  let plane = p.out_h * p.out_w;
  if (i < weights) {
    let kx = i % p.kernel_w;
    let ky = (i / p.kernel_w) % p.kernel_h;
    let ci = (i / (p.kernel_w * p.kernel_h)) % p.in_channels;
    let co = i / (p.kernel_w * p.kernel_h * p.in_channels);
    var acc = 0.0;
    for (var n = 0u; n < p.batch; n++) {
      let dy_plane = (n * p.out_channels + co) * plane;
      for (var oy = 0u; oy < p.out_h; oy++) {
        let xrow = ((n * p.in_channels + ci) * p.height + oy + ky) * p.width + kx;
        let dyrow = dy_plane + oy * p.out_w;
        for (var ox = 0u; ox < p.out_w; ox++) {
          acc += dy[dyrow + ox] * x[xrow + ox];
        }
      }
    }
    dweight[i] = acc;
  } else if (i < weights + p.out_channels) {
    let co = i - weights;
    var acc = 0.0;
    for (var n = 0u; n < p.batch; n++) {
      let dy_plane = (n * p.out_channels + co) * plane;
      for (var j = 0u; j < plane; j++) {
        acc += dy[dy_plane + j];
      }
    }
    dbias[co] = acc;
  }
}

// dx[n, ci, iy, ix] = sum over co, ky, kx of dy[n, co, iy - ky, ix - kx] * weight[co, ci, ky, kx]
// over the output positions that exist.
@compute @workgroup_size(WG)
fn conv2d_input_grad(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                     @builtin(local_invocation_index) lid: u32) {
  let i = thread_index(wid, nwg, lid);
  let in_plane = p.height * p.width;
  if (i >= p.batch * p.in_channels * in_plane) { return; }
  let ix = i % p.width;
  let iy = (i / p.width) % p.height;
  let ci = (i / in_plane) % p.in_channels;
  let n = i / (in_plane * p.in_channels);
  // Kernel rows ky with 0 <= iy - ky < out_h, columns likewise.
  let ky_first = select(0u, iy + 1u - p.out_h, iy + 1u > p.out_h);
  let ky_end = min(p.kernel_h, iy + 1u);
  let kx_first = select(0u, ix + 1u - p.out_w, ix + 1u > p.out_w);
  let kx_end = min(p.kernel_w, ix + 1u);
  var acc = 0.0;
  for (var co = 0u; co < p.out_channels; co++) {
    let dy_plane = (n * p.out_channels + co) * p.out_h * p.out_w;
    for (var ky = ky_first; ky < ky_end; ky++) {
      let dyrow = dy_plane + (iy - ky) * p.out_w + ix;
      let wrow = ((co * p.in_channels + ci) * p.kernel_h + ky) * p.kernel_w;
      for (var kx = kx_first; kx < kx_end; kx++) {
        acc += dy[dyrow - kx] * weight[wrow + kx];
      }
    }
  }
  dx[i] = acc;
}
