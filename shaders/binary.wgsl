// Element-wise binary ops with NumPy broadcasting, and the ternary `where`.
// The op is the override constant OP (see BinaryOp in crates/device/src/kernels/binary.rs).
// Broadcast inputs come with stride 0 on the broadcast dims; `same` is the fast path when every
// operand is contiguous with the output's shape.

struct Params {
    n: u32,
    rank: u32,
    _p0: u32,
    _p1: u32,
    post: vec4<f32>,   // scalars of the fused unary ops (see apply)
    shape: array<u32, 8>,
    sa: array<u32, 8>,
    sb: array<u32, 8>,
    sc: array<u32, 8>,
}

@group(0) @binding(0) var<storage, read> p: Params;
// The same parameters read as vec4s, four values per storage access (`broadcast4`).
struct ParamsV {
    head: vec4<u32>,   // n, rank
    post: vec4<f32>,
    shape: array<vec4<u32>, 2>,
    sa: array<vec4<u32>, 2>,
    sb: array<vec4<u32>, 2>,
    sc: array<vec4<u32>, 2>,
}
@group(0) @binding(0) var<storage, read> pv: ParamsV;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<storage, read> a: array<f32>;
@group(0) @binding(3) var<storage, read> b: array<f32>;
@group(0) @binding(4) var<storage, read> c: array<f32>;
// The same buffers seen as vec4 for `same` (buffers are allocated in multiples of 16 bytes).
@group(0) @binding(1) var<storage, read_write> y4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> a4: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> b4: array<vec4<f32>>;

override OP: u32 = 0u;
// For broadcast4: whether a (b) is read as vec4s (innermost stride 1) or splat (stride 0), and the
// rank (p.rank), so the index loop unrolls over registers.
override A_VEC: bool = false;
override B_VEC: bool = false;
override RANK: u32 = 1u;

// The fused epilogue: up to two unary ops applied to each result (POST0 then POST1, UnaryOp
// codes; NO_OP skips), with their scalars in s = p.post (a0, b0, a1, b1): relu(a * b + 1) is one
// pass over memory instead of three.
const NO_OP: u32 = 255u;
override POST0: u32 = NO_OP;
override POST1: u32 = NO_OP;

fn apply(u: f32, v: f32, s: vec4<f32>) -> f32 {
    var r = binary_op(OP, u, v);
    if (POST0 != NO_OP) {
        r = unary_op(POST0, r, s.x, s.y);
    }
    if (POST1 != NO_OP) {
        r = unary_op(POST1, r, s.z, s.w);
    }
    return r;
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
    let s = p.post;
    y4[i] = vec4<f32>(apply(u.x, v.x, s), apply(u.y, v.y, s), apply(u.z, v.z, s), apply(u.w, v.w, s));
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
    y[i] = apply(a[ia], b[ib], p.post);
}

// y: p.shape (rank p.rank, innermost dim a multiple of 4); a, b read at strides p.sa, p.sb whose
// innermost entry is 1 (A_VEC / B_VEC: read as vec4) or 0 (one value for all four): four elements
// per vec4, two vec4s per invocation (the parameter loads paid once per eight elements; e.g. a bias
// [1, C, 1] added to [N, C, H W], after the launcher merged H and W).
@compute @workgroup_size(256)
fn broadcast4(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let i = linear(wid, nwg, li) * 2u;
    let n = pv.head.x;
    if (i * 4u >= n) {
        return;
    }
    // Dims 0-3 and 4-7 of the shape and strides, loaded once each, and used for two vec4s.
    let sh = array<vec4<u32>, 2>(pv.shape[0], select(vec4<u32>(), pv.shape[1], RANK > 4u));
    let sa = array<vec4<u32>, 2>(pv.sa[0], select(vec4<u32>(), pv.sa[1], RANK > 4u));
    let sb = array<vec4<u32>, 2>(pv.sb[0], select(vec4<u32>(), pv.sb[1], RANK > 4u));
    let s = pv.post;
    broadcast4_at(i, sh, sa, sb, s);
    if ((i + 1u) * 4u < n) {
        broadcast4_at(i + 1u, sh, sa, sb, s);
    }
}

// broadcast4's output vec4 i.
fn broadcast4_at(
    i: u32,
    sh: array<vec4<u32>, 2>,
    sa: array<vec4<u32>, 2>,
    sb: array<vec4<u32>, 2>,
    s: vec4<f32>,
) {
    var rem = i * 4u;
    var ia = 0u;
    var ib = 0u;
    for (var d = i32(RANK) - 1; d >= 0; d--) {
        let q = u32(d) / 4u;
        let r = u32(d) % 4u;
        let k = rem % sh[q][r];
        rem = rem / sh[q][r];
        ia += k * sa[q][r];
        ib += k * sb[q][r];
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
    y4[i] = vec4<f32>(apply(u.x, v.x, s), apply(u.y, v.y, s), apply(u.z, v.z, s), apply(u.w, v.w, s));
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
