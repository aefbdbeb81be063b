// Optimiser updates that move eight f32 per storage access (words, see words.wgsl), for devices
// with wide storage access (kernels/optim.rs picks them there): the same update as optim.wgsl's
// entry of the same name without the 8, through the same function, so the same bits. The buffers
// are optim.wgsl's, seen as words (lanes past n update the padding, which nothing reads).
// Compiled after words.wgsl and optim.wgsl (see Kernel::source).

@group(0) @binding(1) var<storage, read_write> w8: array<vec4<u64>>;
@group(0) @binding(2) var<storage, read> g8: array<vec4<u64>>;
@group(0) @binding(3) var<storage, read_write> s08: array<vec4<u64>>;
@group(0) @binding(4) var<storage, read_write> s18: array<vec4<u64>>;

// w, g, s0 (m), s1 (v): [n] as [ceil(n / 8)] words; optim.wgsl's adam, a word per access.
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
    s08[i] = word(l.m, u.m);
    s18[i] = word(l.v, u.v);
    w8[i] = word(l.w, u.w);
}
