// The roofline reference: copies that move bytes and do nothing else. `copy` (one vec4 per
// thread) is the browser benchmark's; bench:node times every entry point here and takes the
// fastest, so that the roofline is the limit this GPU reaches through WebGPU, not one kernel's.
@group(0) @binding(0) var<storage, read> src: array<vec4f>;
@group(0) @binding(1) var<storage, read_write> dst: array<vec4f>;

// One vec4 per thread.
@compute @workgroup_size(256)
fn copy(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * nwg.x) * 256u + lid;
  if (i < arrayLength(&dst)) {
    dst[i] = src[i];
  }
}

// Four vec4 per thread, 256 apart (each load coalesced), all loads issued before the stores.
@compute @workgroup_size(256)
fn copy_x4(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
           @builtin(local_invocation_index) lid: u32) {
  let base = (wid.x + wid.y * nwg.x) * 1024u + lid;
  let n = arrayLength(&dst);
  if (base + 768u < n) {
    let a = src[base];
    let b = src[base + 256u];
    let c = src[base + 512u];
    let d = src[base + 768u];
    dst[base] = a;
    dst[base + 256u] = b;
    dst[base + 512u] = c;
    dst[base + 768u] = d;
  } else {
    for (var i = base; i < n; i += 256u) { dst[i] = src[i]; }
  }
}

// Eight vec4 per thread, likewise.
@compute @workgroup_size(256)
fn copy_x8(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
           @builtin(local_invocation_index) lid: u32) {
  let base = (wid.x + wid.y * nwg.x) * 2048u + lid;
  let n = arrayLength(&dst);
  if (base + 1792u < n) {
    var v: array<vec4f, 8>;
    for (var k = 0u; k < 8u; k++) { v[k] = src[base + k * 256u]; }
    for (var k = 0u; k < 8u; k++) { dst[base + k * 256u] = v[k]; }
  } else {
    for (var i = base; i < n; i += 256u) { dst[i] = src[i]; }
  }
}

// Grid-stride: a fixed grid (a few waves of workgroups) loops over the buffer.
@compute @workgroup_size(256)
fn copy_grid(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
             @builtin(local_invocation_index) lid: u32) {
  let threads = nwg.x * nwg.y * 256u;
  let n = arrayLength(&dst);
  for (var i = (wid.x + wid.y * nwg.x) * 256u + lid; i < n; i += threads) {
    dst[i] = src[i];
  }
}
