// What both packed storages of the normalization family (IEEE halves two per u32, adapters without
// shader-f16: normalization/tensor_f16_packed.wgsl, tensor_f16_packed_x4.wgsl) share: a half of a
// word, and the stores of y and dx. Two elements of one word may belong to two groups, written by two
// workgroups: a store of one half clears and sets only its own half, with atomics, so neither
// write can undo the other whatever their order. The walks' stores (store_y_step, store_dx_step)
// pair neighbouring threads instead: where one thread holds an even element and the next thread
// the odd one of the same word, the first writes the whole word (both values, one plain store)
// and the second nothing; only a word whose other half is not in this step of this workgroup
// (a group's or segment's edge, a thread row's end) is stored by halves; where no step can pair
// (segments of one element: pair_stores 0) there is no pairing and no barrier. Walks in chunks of
// 4 halves (tensor_f16_packed_x4.wgsl) store a chunk's two whole words themselves. The padding
// half of an odd tensor's last word is written as 0 by the store of the last element.

@group(0) @binding(2) var<storage, read_write> y: array<atomic<u32>>;
@group(0) @binding(4) var<storage, read_write> dx: array<atomic<u32>>;

// Element e's half of its word.
fn half_of(word: u32, e: u32) -> f32 {
  return unpack2x16float(word)[e & 1u];
}

// The half of v, placed in element e's half of a word, and the mask of the other half.
fn half_bits(e: u32, v: f32) -> vec2u {
  let bits = f16_bits(v);
  if ((e & 1u) == 0u) { return vec2u(bits, 0xffff0000u); }
  return vec2u(bits << 16u, 0x0000ffffu);
}
fn store_y(e: u32, v: f32) {
  let h = half_bits(e, v);
  if (e + 1u == params.total && (e & 1u) == 0u) { atomicStore(&y[e >> 1u], h.x); return; }
  atomicAnd(&y[e >> 1u], h.y);
  atomicOr(&y[e >> 1u], h.x);
}
fn store_dx(e: u32, v: f32) {
  let h = half_bits(e, v);
  if (e + 1u == params.total && (e & 1u) == 0u) { atomicStore(&dx[e >> 1u], h.x); return; }
  atomicAnd(&dx[e >> 1u], h.y);
  atomicOr(&dx[e >> 1u], h.x);
}

// Each thread's value of the current step, for the previous thread to pair with it. Two halves
// used in turn, so one barrier a step suffices: a step's writes go to the half the step before
// last read, and every thread has passed the last step's barrier after its reads of that half.
var<workgroup> stage: array<f32, 2u * WG>;
var<private> stage_half: u32 = 0u;

// Publishes this thread's value of the step; returns its index in stage (the next thread's is + 1).
fn paired_step(lid: u32, v: f32) -> u32 {
  let at = stage_half * WG + lid;
  stage_half ^= 1u;
  stage[at] = v;
  workgroupBarrier();
  return at;
}
// The stores of a walk's step, which every thread of the workgroup calls together (uniform
// control flow): element e gets v where `has`. `next`: the next thread of the workgroup holds
// e + 1 in this step; `prev`: the previous one holds e - 1 (the kernels keep the two consistent).
fn store_y_step(lid: u32, has: bool, e: u32, v: f32, next: bool, prev: bool) {
  if (params.pair_stores == 0u) {
    if (has) { store_y(e, v); }
    return;
  }
  let at = paired_step(lid, v);
  if (!has) { return; }
  let odd = (e & 1u) == 1u;
  if (!odd && next) {
    atomicStore(&y[e >> 1u], pack_f16(v, stage[at + 1u]));
  } else if (!(odd && prev)) {
    store_y(e, v);
  }
}
fn store_dx_step(lid: u32, has: bool, e: u32, v: f32, next: bool, prev: bool) {
  if (params.pair_stores == 0u) {
    if (has) { store_dx(e, v); }
    return;
  }
  let at = paired_step(lid, v);
  if (!has) { return; }
  let odd = (e & 1u) == 1u;
  if (!odd && next) {
    atomicStore(&dx[e >> 1u], pack_f16(v, stage[at + 1u]));
  } else if (!(odd && prev)) {
    store_dx(e, v);
  }
}
