// Words: eight f32 as one vec4<u64>, the widest storage access WGSL has (needs SHADER_INT64). Shared
// by the families that move words (wide.wgsl, matmul_wide.wgsl, and the generated fused kernels):
// on CPU adapters (lavapipe) a storage access costs a loop over the SIMD lanes whatever its width,
// so a word access moves twice what a vec4<f32> one does for the same cost.

// The first four f32 of a word and the last four (little-endian: f32 2k is the low half of u64 k).
fn split(v: u64) -> vec2<f32> {
    return bitcast<vec2<f32>>(vec2<u32>(u32(v & 0xfffffffflu), u32(v >> 32u)));
}

fn lo(w: vec4<u64>) -> vec4<f32> {
    return vec4<f32>(split(w.x), split(w.y));
}

fn hi(w: vec4<u64>) -> vec4<f32> {
    return vec4<f32>(split(w.z), split(w.w));
}

fn join(a: f32, b: f32) -> u64 {
    return u64(bitcast<u32>(a)) | (u64(bitcast<u32>(b)) << 32u);
}

fn word(l: vec4<f32>, h: vec4<f32>) -> vec4<u64> {
    return vec4<u64>(join(l.x, l.y), join(l.z, l.w), join(h.x, h.y), join(h.z, h.w));
}

