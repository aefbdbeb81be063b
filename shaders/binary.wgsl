// Element-wise binary ops with NumPy broadcasting, and the ternary `where`.
// The op is the override constant OP (see BinaryOp in crates/device/src/kernels/binary.rs).
// Broadcast inputs come with stride 0 on the broadcast dims; `same` is the fast path when every
// operand is contiguous with the output's shape.

struct Params {
    n: u32,
    rank: u32,
    _p0: u32,
    _p1: u32,
    shape: array<u32, 8>,
    sa: array<u32, 8>,
    sb: array<u32, 8>,
    sc: array<u32, 8>,
}

@group(0) @binding(0) var<storage, read> p: Params;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<storage, read> a: array<f32>;
@group(0) @binding(3) var<storage, read> b: array<f32>;
@group(0) @binding(4) var<storage, read> c: array<f32>;
// The same buffers seen as vec4 for `same` (buffers are allocated in multiples of 16 bytes).
@group(0) @binding(1) var<storage, read_write> y4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> a4: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> b4: array<vec4<f32>>;

override OP: u32 = 0u;
// For broadcast4: whether a (b) is read as vec4s (innermost stride 1) or splat (stride 0).
override A_VEC: bool = false;
override B_VEC: bool = false;

fn powf(x: f32, e: f32) -> f32 {
    if (e == 0.0) {
        return 1.0;
    }
    if (x >= 0.0) {
        return pow(x, e);
    }
    if (fract(e) != 0.0) {
        var nan_bits = 0x7fc00000u;  // a runtime NaN (a constant NaN is a WGSL error)
        return bitcast<f32>(nan_bits);
    }
    let m = pow(-x, e);
    return select(m, -m, fract(e * 0.5) != 0.0);
}

fn apply(u: f32, v: f32) -> f32 {
    switch OP {
        case 0u: { return u + v; }
        case 1u: { return u - v; }
        case 2u: { return u * v; }
        case 3u: { return u / v; }
        case 4u: { return powf(u, v); }
        case 5u: { return max(u, v); }
        case 6u: { return min(u, v); }
        case 7u: { return select(0.0, 1.0, u == v); }
        case 8u: { return select(0.0, 1.0, u != v); }
        case 9u: { return select(0.0, 1.0, u < v); }
        case 10u: { return select(0.0, 1.0, u <= v); }
        case 11u: { return select(0.0, 1.0, u > v); }
        case 12u: { return select(0.0, 1.0, u >= v); }
        default: { return u; }
    }
}

fn linear(wid: vec3<u32>, nwg: vec3<u32>, li: u32) -> u32 {
    return (wid.x + nwg.x * (wid.y + nwg.y * wid.z)) * 256u + li;
}

// a, b, y: [n], all the same shape, seen as [ceil(n / 4)] vec4: four elements per invocation.
// Lanes past n compute garbage into the buffers' padding, which nothing reads.
@compute @workgroup_size(256)
fn same(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let i = linear(wid, nwg, li);
    if (i * 4u >= p.n) {
        return;
    }
    let u = a4[i];
    let v = b4[i];
    y4[i] = vec4<f32>(apply(u.x, v.x), apply(u.y, v.y), apply(u.z, v.z), apply(u.w, v.w));
}

// y: p.shape (rank p.rank); a, b read at strides p.sa, p.sb (0 where broadcast)
@compute @workgroup_size(256)
fn broadcast(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let i = linear(wid, nwg, li);
    if (i >= p.n) {
        return;
    }
    var rem = i;
    var ia = 0u;
    var ib = 0u;
    for (var d = i32(p.rank) - 1; d >= 0; d--) {
        let k = rem % p.shape[d];
        rem = rem / p.shape[d];
        ia += k * p.sa[d];
        ib += k * p.sb[d];
    }
    y[i] = apply(a[ia], b[ib]);
}

// y: p.shape (rank p.rank, innermost dim a multiple of 4); a, b read at strides p.sa, p.sb whose
// innermost entry is 1 (A_VEC / B_VEC: read as vec4) or 0 (one value for all four): four elements
// per invocation, so the index arithmetic is paid once per four (e.g. a bias [1, C, 1] added to
// [N, C, H W], after the launcher merged H and W).
@compute @workgroup_size(256)
fn broadcast4(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let i = linear(wid, nwg, li);
    if (i * 4u >= p.n) {
        return;
    }
    var rem = i * 4u;
    var ia = 0u;
    var ib = 0u;
    for (var d = i32(p.rank) - 1; d >= 0; d--) {
        let k = rem % p.shape[d];
        rem = rem / p.shape[d];
        ia += k * p.sa[d];
        ib += k * p.sb[d];
    }
    var u: vec4<f32>;
    if (A_VEC) {
        u = a4[ia / 4u];
    } else {
        u = vec4<f32>(a4[ia / 4u][ia % 4u]);  // one binding per entry point: read via a4
    }
    var v: vec4<f32>;
    if (B_VEC) {
        v = b4[ib / 4u];
    } else {
        v = vec4<f32>(b4[ib / 4u][ib % 4u]);
    }
    y4[i] = vec4<f32>(apply(u.x, v.x), apply(u.y, v.y), apply(u.z, v.z), apply(u.w, v.w));
}

// y = where(c != 0, a, b); y: p.shape, c/a/b at strides p.sc, p.sa, p.sb
@compute @workgroup_size(256)
fn select3(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let i = linear(wid, nwg, li);
    if (i >= p.n) {
        return;
    }
    var rem = i;
    var ia = 0u;
    var ib = 0u;
    var ic = 0u;
    for (var d = i32(p.rank) - 1; d >= 0; d--) {
        let k = rem % p.shape[d];
        rem = rem / p.shape[d];
        ia += k * p.sa[d];
        ib += k * p.sb[d];
        ic += k * p.sc[d];
    }
    y[i] = select(b[ib], a[ia], c[ic] != 0.0);
}
