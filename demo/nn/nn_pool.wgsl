// Max pooling over size x size windows with stride size (Keras MaxPooling2D((2, 2))), NCHW.
// Rows and columns past the last whole window are dropped, as Keras does with 'valid' padding.

struct PoolParams {
  planes: u32,   // N * C
  height: u32,
  width: u32,
  size: u32,
  out_h: u32,    // height / size
  out_w: u32,    // width / size
  _pad0: u32,
  _pad1: u32,
}

@group(0) @binding(0) var<uniform> p: PoolParams;
@group(0) @binding(1) var<storage, read> x: array<f32>;            // [N, C, H, W]
@group(0) @binding(2) var<storage, read_write> y: array<f32>;      // [N, C, OH, OW]
@group(0) @binding(3) var<storage, read_write> argmax: array<u32>; // per output: iy * W + ix of its max
@group(0) @binding(4) var<storage, read> winner: array<u32>;       // argmax of the forward pass
@group(0) @binding(5) var<storage, read> dy: array<f32>;           // [N, C, OH, OW]
@group(0) @binding(6) var<storage, read_write> dx: array<f32>;     // [N, C, H, W]

// One thread per output; the first maximum in row-major window order wins ties.
@compute @workgroup_size(WG)
fn max_pool_forward(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                    @builtin(local_invocation_index) lid: u32) {
  let i = thread_index(wid, nwg, lid);
  let out_plane = p.out_h * p.out_w;
  if (i >= p.planes * out_plane) { return; }
  let ox = i % p.out_w;
  let oy = (i / p.out_w) % p.out_h;
  let base = (i / out_plane) * p.height * p.width;
  var best_at = (oy * p.size) * p.width + ox * p.size;
  var best = x[base + best_at];
  for (var ky = 0u; ky < p.size; ky++) {
    for (var kx = 0u; kx < p.size; kx++) {
      let at = (oy * p.size + ky) * p.width + ox * p.size + kx;
      let v = x[base + at];
      if (v > best) {
        best = v;
        best_at = at;
      }
    }
  }
  y[i] = best;
  argmax[i] = best_at;
}

// One thread per input: its window's gradient if it was the window's max, else 0.
@compute @workgroup_size(WG)
fn max_pool_backward(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                     @builtin(local_invocation_index) lid: u32) {
  let i = thread_index(wid, nwg, lid);
  let in_plane = p.height * p.width;
  if (i >= p.planes * in_plane) { return; }
  let at = i % in_plane;
  let oy = (at / p.width) / p.size;
  let ox = (at % p.width) / p.size;
  var g = 0.0;
  if (oy < p.out_h && ox < p.out_w) {
    let o = (i / in_plane) * p.out_h * p.out_w + oy * p.out_w + ox;
    if (winner[o] == at) { g = dy[o]; }
  }
  dx[i] = g;
}
