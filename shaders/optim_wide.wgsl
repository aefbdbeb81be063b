// Optimiser updates that move eight f32 per storage access (words, see words.wgsl), for devices
// with wide storage access (kernels/optim.rs picks them there): each entry is optim.wgsl's entry
// of the same name without the 8, through the same update function on each half of a word, so
// the same bits. The buffers are optim.wgsl's, seen as words: [n] as [ceil(n / 8)] (lanes past n
// update the padding, which nothing reads). Compiled after words.wgsl and optim.wgsl (see
// Kernel::source).

@group(0) @binding(1) var<storage, read_write> w8: array<vec4<u64>>;
@group(0) @binding(2) var<storage, read> g8: array<vec4<u64>>;
@group(0) @binding(3) var<storage, read_write> s08: array<vec4<u64>>;
@group(0) @binding(4) var<storage, read_write> s18: array<vec4<u64>>;

@compute @workgroup_size(256)
fn sgd8(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let i = flat_index(wid, nwg, li);
    let h = hyper();
    if (i * 8u >= h.n) {
        return;
    }
    let w = w8[i];
    let g = g8[i];
    w8[i] = word(sgd_update(lo(w), lo(g), h).w, sgd_update(hi(w), hi(g), h).w);
}

@compute @workgroup_size(256)
fn one_state8(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let i = flat_index(wid, nwg, li);
    let h = hyper();
    if (i * 8u >= h.n) {
        return;
    }
    let w = w8[i];
    let g = g8[i];
    let s = s08[i];
    let l = one_state_update(lo(w), lo(g), lo(s), h);
    let u = one_state_update(hi(w), hi(g), hi(s), h);
    s08[i] = word(l.s0, u.s0);
    w8[i] = word(l.w, u.w);
}

@compute @workgroup_size(256)
fn adam8(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let i = flat_index(wid, nwg, li);
    let h = hyper();
    if (i * 8u >= h.n) {
        return;
    }
    let w = w8[i];
    let g = g8[i];
    let m = s08[i];
    let v = s18[i];
    let l = adam_update(lo(w), lo(g), lo(m), lo(v), h);
    let u = adam_update(hi(w), hi(g), hi(m), hi(v), h);
    s08[i] = word(l.s0, u.s0);
    s18[i] = word(l.s1, u.s1);
    w8[i] = word(l.w, u.w);
}
