// Wide storage access: element-wise ops, row sums, softmax and strided copies that move eight f32
// per storage access, the buffers seen as array<vec4<u64>> ("words" of 32 bytes, see words.wgsl).
// Meant for CPU adapters (lavapipe), whose storage loads and stores cost a loop over the SIMD lanes
// per access whatever its width (wgrad bench, same run: c = a * b on 4M floats 3.7-4.1 ms here, 4.8-5.3 ms with vec4).
// Needs SHADER_INT64; the launcher (kernels/wide.rs) picks these entries only where the device has
// it, and each entry does exactly what its twin in unary.wgsl, binary.wgsl, reduce.wgsl or
// movement.wgsl does, in the same order, so results are the same bits.
// The element-wise op tables come from elementwise.wgsl, the word helpers from words.wgsl, the
// copy's tiles from copy_tiles.wgsl (see Kernel::source).

// unary8, binary8 and fill8
struct EwParams {
    n: u32,
    word: u32,      // fill8: the 32-bit pattern to fill with
    _p1: u32,
    _p2: u32,
    // unary8: (alpha, beta) of OP; binary8: scalars of the fused epilogue (a0, b0, a1, b1)
    s: vec4<f32>,
}

// sum_rows8: the layout of reduce.wgsl's Params
struct ReduceParams {
    outer: u32,
    len: u32,
    inner: u32,
    chunk: u32,
    nchunk: u32,
    scale: f32,
    total: u32,
    _p0: u32,
}

@group(0) @binding(0) var<storage, read> p: EwParams;
@group(0) @binding(0) var<storage, read> rp: ReduceParams;
@group(0) @binding(1) var<storage, read_write> y8: array<vec4<u64>>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<storage, read> a8: array<vec4<u64>>;
@group(0) @binding(3) var<storage, read> b8: array<vec4<u64>>;

// unary8, binary8: the op's code (elementwise.wgsl); softmax_rows8: 0 softmax, 1 log-softmax.
override OP: u32 = 0u;
const NO_OP: u32 = 255u;
override POST0: u32 = NO_OP;
override POST1: u32 = NO_OP;

fn linear(wid: vec3<u32>, nwg: vec3<u32>, li: u32) -> u32 {
    return (wid.x + nwg.x * (wid.y + nwg.y * wid.z)) * 256u + li;
}

fn un4(v: vec4<f32>, a: f32, b: f32) -> vec4<f32> {
    return vec4<f32>(unary_op(OP, v.x, a, b), unary_op(OP, v.y, a, b), unary_op(OP, v.z, a, b), unary_op(OP, v.w, a, b));
}

// binary.wgsl's apply: OP, then the fused POST0 and POST1.
fn bin(u: f32, v: f32, s: vec4<f32>) -> f32 {
    var r = binary_op(OP, u, v);
    if (POST0 != NO_OP) {
        r = unary_op(POST0, r, s.x, s.y);
    }
    if (POST1 != NO_OP) {
        r = unary_op(POST1, r, s.z, s.w);
    }
    return r;
}

fn bin4(u: vec4<f32>, v: vec4<f32>, s: vec4<f32>) -> vec4<f32> {
    return vec4<f32>(bin(u.x, v.x, s), bin(u.y, v.y, s), bin(u.z, v.z, s), bin(u.w, v.w, s));
}

// x (a8), y: [n] seen as [ceil(n / 8)] words, two per invocation (the parameter loads and index
// arithmetic paid once per two: measured 14-17% faster than one); y = OP(x; alpha, beta). Lanes
// past n compute garbage into the buffers' padding, which nothing reads.
@compute @workgroup_size(256)
fn unary8(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let i = linear(wid, nwg, li) * 2u;
    let n = p.n;
    if (i * 8u >= n) {
        return;
    }
    let s = p.s;
    let w = a8[i];
    y8[i] = word(un4(lo(w), s.x, s.y), un4(hi(w), s.x, s.y));
    if ((i + 1u) * 8u < n) {
        let w1 = a8[i + 1u];
        y8[i + 1u] = word(un4(lo(w1), s.x, s.y), un4(hi(w1), s.x, s.y));
    }
}

// a, b, y: [n], one shape, seen as [ceil(n / 8)] words, two per invocation as in unary8;
// y = POST1(POST0(OP(a, b))).
@compute @workgroup_size(256)
fn binary8(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let i = linear(wid, nwg, li) * 2u;
    let n = p.n;
    if (i * 8u >= n) {
        return;
    }
    let s = p.s;
    let u = a8[i];
    let v = b8[i];
    y8[i] = word(bin4(lo(u), lo(v), s), bin4(hi(u), hi(v), s));
    if ((i + 1u) * 8u < n) {
        let u1 = a8[i + 1u];
        let v1 = b8[i + 1u];
        y8[i + 1u] = word(bin4(lo(u1), lo(v1), s), bin4(hi(u1), hi(v1), s));
    }
}

// y (y8): [n] as [ceil(n / 8)] words, every element p.word: fill.wgsl's `fill` with a word per
// store. Lanes past n write the buffer's padding, which nothing reads.
@compute @workgroup_size(256)
fn fill8(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let i = linear(wid, nwg, li);
    if (i * 8u < p.n) {
        let w = u64(p.word);
        y8[i] = vec4<u64>(w | (w << 32u));
    }
}

// x (a8): [outer, len] -> y: [outer, nchunk], sums of chunks of rp.chunk (len and chunk multiples
// of 8). reduce.wgsl's sum_rows4 with two vec4 per load: the same four accumulators fed with the
// same vec4s in the same order.
@compute @workgroup_size(256)
fn sum_rows8(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let t = linear(wid, nwg, li);
    if (t >= rp.total) {
        return;
    }
    let c = t % rp.nchunk;
    let o = t / rp.nchunk;
    let j0 = c * rp.chunk;
    let j1 = min(rp.len, j0 + rp.chunk);
    let base = (o * rp.len + j0) / 8u;
    let count = (j1 - j0) / 4u;   // vec4s
    var a0 = vec4<f32>();
    var a1 = vec4<f32>();
    var a2 = vec4<f32>();
    var a3 = vec4<f32>();
    var j = 0u;
    for (; j + 4u <= count; j += 4u) {
        let w0 = a8[base + j / 2u];
        let w1 = a8[base + j / 2u + 1u];
        a0 += lo(w0);
        a1 += hi(w0);
        a2 += lo(w1);
        a3 += hi(w1);
    }
    // The rest (count % 4 vec4s, an even number) all go to a0, as in sum_rows4.
    for (; j < count; j += 2u) {
        let w = a8[base + j / 2u];
        a0 += lo(w);
        a0 += hi(w);
    }
    let acc = (a0 + a1) + (a2 + a3);
    y[t] = ((acc.x + acc.y) + (acc.z + acc.w)) * rp.scale;
}

// x (a8), y (y8): [outer, len] with len a multiple of 8 (rp.total = outer rows), softmax (OP 0)
// or log-softmax (OP 1) of each row: reduce.wgsl's softmax_rows4 with two vec4 per access, the
// same vec4s in the same order (the low half of a word, then the high half).
@compute @workgroup_size(256)
fn softmax_rows8(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let t = linear(wid, nwg, li);
    if (t >= rp.total) {
        return;
    }
    let len8 = rp.len / 8u;
    let base = t * len8;
    let w0 = a8[base];
    var m4 = max(lo(w0), hi(w0));
    for (var j = 1u; j < len8; j++) {
        let w = a8[base + j];
        m4 = max(max(m4, lo(w)), hi(w));
    }
    let m = max(max(m4.x, m4.y), max(m4.z, m4.w));
    var s4 = vec4<f32>();
    for (var j = 0u; j < len8; j++) {
        let w = a8[base + j];
        s4 += exp(lo(w) - m);
        s4 += exp(hi(w) - m);
    }
    let s = (s4.x + s4.y) + (s4.z + s4.w);
    if (OP == 0u) {
        let r = 1.0 / s;
        for (var j = 0u; j < len8; j++) {
            let w = a8[base + j];
            y8[base + j] = word(exp(lo(w) - m) * r, exp(hi(w) - m) * r);
        }
    } else {
        let ls = m + log(s);
        for (var j = 0u; j < len8; j++) {
            let w = a8[base + j];
            y8[base + j] = word(lo(w) - ls, hi(w) - ls);
        }
    }
}

// copy8: the strided copy of copy_tiles.wgsl, eight elements (one word) per access, in one of two
// layouts the launcher checks (kernels/wide.rs `copy`):
// 0: the tile's rows are words in both arrays (isc = osc = 1; cols, offsets and every other stride
//    multiples of 8), one word per row of the tile;
// 1: a transpose: the tile's columns are words of x and its rows words of y (isr = osc = 1; rows,
//    cols, offsets and every other stride multiples of 8, so all tiles are whole).
override COPY_MODE: u32 = 0u;
@group(0) @binding(0) var<storage, read> cp: CopyParams;

// Element i (32 bits) of a word, in the low half.
fn elem(w: vec4<u64>, i: u32) -> u64 {
    return (w[i / 2u] >> (32u * (i % 2u))) & 0xfffffffflu;
}

// Word i of the transpose of the 8 x 8 block whose columns are w0 .. w7: element i of each.
fn row_of(w0: vec4<u64>, w1: vec4<u64>, w2: vec4<u64>, w3: vec4<u64>, w4: vec4<u64>, w5: vec4<u64>, w6: vec4<u64>, w7: vec4<u64>, i: u32) -> vec4<u64> {
    return vec4<u64>(
        elem(w0, i) | (elem(w1, i) << 32u),
        elem(w2, i) | (elem(w3, i) << 32u),
        elem(w4, i) | (elem(w5, i) << 32u),
        elem(w6, i) | (elem(w7, i) << 32u),
    );
}

// x (a8) -> y (y8), tile t per invocation (cp.head.x tiles).
@compute @workgroup_size(256)
fn copy8(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let t = linear(wid, nwg, li);
    let head = cp.head;
    if (t >= head.x) {
        return;
    }
    let sh = array<vec4<u32>, 2>(cp.shape[0], select(vec4<u32>(), cp.shape[1], RANK > 4u));
    let is = array<vec4<u32>, 2>(cp.is[0], select(vec4<u32>(), cp.is[1], RANK > 4u));
    let os = array<vec4<u32>, 2>(cp.os[0], select(vec4<u32>(), cp.os[1], RANK > 4u));
    let tl = copy_tile(head, sh, is, os, t, array<vec4<u32>, 2>(), sh);
    var s = tl.src / 8u;
    var d = tl.dst / 8u;
    let ir = tl.isr / 8u;
    let orow = tl.osr / 8u;
    if (COPY_MODE == 0u) {
        for (var i = 0u; i < tl.nr; i++) {
            y8[d] = a8[s];
            s += ir;
            d += orow;
        }
        return;
    }
    let ic = tl.isc / 8u;
    let w0 = a8[s];
    let w1 = a8[s + ic];
    let w2 = a8[s + 2u * ic];
    let w3 = a8[s + 3u * ic];
    let w4 = a8[s + 4u * ic];
    let w5 = a8[s + 5u * ic];
    let w6 = a8[s + 6u * ic];
    let w7 = a8[s + 7u * ic];
    y8[d] = row_of(w0, w1, w2, w3, w4, w5, w6, w7, 0u);
    y8[d + orow] = row_of(w0, w1, w2, w3, w4, w5, w6, w7, 1u);
    y8[d + 2u * orow] = row_of(w0, w1, w2, w3, w4, w5, w6, w7, 2u);
    y8[d + 3u * orow] = row_of(w0, w1, w2, w3, w4, w5, w6, w7, 3u);
    y8[d + 4u * orow] = row_of(w0, w1, w2, w3, w4, w5, w6, w7, 4u);
    y8[d + 5u * orow] = row_of(w0, w1, w2, w3, w4, w5, w6, w7, 5u);
    y8[d + 6u * orow] = row_of(w0, w1, w2, w3, w4, w5, w6, w7, 6u);
    y8[d + 7u * orow] = row_of(w0, w1, w2, w3, w4, w5, w6, w7, 7u);
}
