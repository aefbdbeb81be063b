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

fn threefry(k0: u32, k1: u32, c0: u32, c1: u32) -> vec2<u32> {
    let ks = array<u32, 3>(k0, k1, k0 ^ k1 ^ 0x1BD11BDAu);
    let rot = array<u32, 8>(13u, 15u, 26u, 6u, 17u, 29u, 16u, 24u);
    var x0 = c0 + ks[0];
    var x1 = c1 + ks[1];
    for (var i = 0u; i < 20u; i++) {
        x0 += x1;
        x1 = rotl(x1, rot[i % 8u]);
        x1 ^= x0;
        if (i % 4u == 3u) {
            let s = i / 4u + 1u;
            x0 += ks[s % 3u];
            x1 += ks[(s + 1u) % 3u] + s;
        }
    }
    return vec2<u32>(x0, x1);
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
