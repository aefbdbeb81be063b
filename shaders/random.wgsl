// Counter-based random numbers: Threefry-2x32 with 20 rounds (Salmon et al. 2011, the generator JAX
// uses). Element i of a draw with key (k0, k1) is a pure function of (k0, k1, i, p.offset), so the same
// seed gives the same bits on every adapter; integer arithmetic only up to the float conversion.

struct Params {
    n: u32,
    k0: u32,
    k1: u32,
    offset: u32,  // second counter word, lets one key serve many draws
    a: f32,       // uniform: low;  normal: mean;  bernoulli: p
    b: f32,       // uniform: high; normal: std
    _p0: u32,
    _p1: u32,
}

@group(0) @binding(0) var<storage, read> p: Params;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;

fn rotl(x: u32, r: u32) -> u32 {
    return (x << r) | (x >> (32u - r));
}

// One Threefry round: x0 += x1; x1 = rotl(x1, r) ^ x0.
fn tf_round(x: vec2<u32>, r: u32) -> vec2<u32> {
    let x0 = x.x + x.y;
    return vec2<u32>(x0, rotl(x.y, r) ^ x0);
}

// 20 rounds in 5 groups of 4, a key injection after each group. Written out rather than looped: a
// loop indexing constant arrays (rotations, key schedule) keeps them in per-lane memory on CPU
// adapters, which made normal() about 7x slower on lavapipe.
fn threefry(k0: u32, k1: u32, c0: u32, c1: u32) -> vec2<u32> {
    let k2 = k0 ^ k1 ^ 0x1BD11BDAu;
    var x = vec2<u32>(c0 + k0, c1 + k1);
    x = tf_round(tf_round(tf_round(tf_round(x, 13u), 15u), 26u), 6u);
    x += vec2<u32>(k1, k2 + 1u);
    x = tf_round(tf_round(tf_round(tf_round(x, 17u), 29u), 16u), 24u);
    x += vec2<u32>(k2, k0 + 2u);
    x = tf_round(tf_round(tf_round(tf_round(x, 13u), 15u), 26u), 6u);
    x += vec2<u32>(k0, k1 + 3u);
    x = tf_round(tf_round(tf_round(tf_round(x, 17u), 29u), 16u), 24u);
    x += vec2<u32>(k1, k2 + 4u);
    x = tf_round(tf_round(tf_round(tf_round(x, 13u), 15u), 26u), 6u);
    x += vec2<u32>(k2, k0 + 5u);
    return x;
}

// [0, 1) from the top 24 bits: exact in f32.
fn unit(bits: u32) -> f32 {
    return f32(bits >> 8u) * 5.9604644775390625e-8;
}

fn linear(wid: vec3<u32>, nwg: vec3<u32>, li: u32) -> u32 {
    return (wid.x + nwg.x * (wid.y + nwg.y * wid.z)) * 256u + li;
}

// y: [n], uniform on [a, b)
@compute @workgroup_size(256)
fn uniform(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let i = linear(wid, nwg, li);
    if (i < p.n) {
        let r = threefry(p.k0, p.k1, i, p.offset);
        y[i] = p.a + (p.b - p.a) * unit(r.x);
    }
}

// y: [n], normal with mean a and std b (Box-Muller on both words of one block)
@compute @workgroup_size(256)
fn normal(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let i = linear(wid, nwg, li);
    if (i < p.n) {
        let r = threefry(p.k0, p.k1, i, p.offset);
        let u1 = f32((r.x >> 8u) + 1u) * 5.9604644775390625e-8;  // (0, 1]
        let u2 = unit(r.y);
        let z = sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
        y[i] = p.a + p.b * z;
    }
}

// y: [n], 1 with probability a, else 0
@compute @workgroup_size(256)
fn bernoulli(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let i = linear(wid, nwg, li);
    if (i < p.n) {
        let r = threefry(p.k0, p.k1, i, p.offset);
        y[i] = select(0.0, 1.0, unit(r.x) < p.a);
    }
}
