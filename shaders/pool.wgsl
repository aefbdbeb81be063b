// 2-D max and average pooling over planes of [N*C, H, W], forward and backward.
// Backward kernels gather (each input element sums the windows that cover it) so no atomics are
// needed and the result is deterministic. Average pooling counts padding (PyTorch's default).
//
// The geometry is override constants: a pipeline is built per pooling shape, and every division
// below is by a constant, which compilers turn into multiplies (on lavapipe a division by a runtime
// value is scalarised, and each read of a storage-buffer parameter is a loop over the SIMD lanes).
// Window KH x KW, stride SH, SW, padding PH, PW; OH = (H + 2 PH - KH) / SH + 1, likewise OW.
//
// Each invocation handles a segment of SEG = 4 consecutive elements of one row (of y forward, of
// dx backward), held in vec4s, so the index arithmetic, the check against p.total and the loads
// that neighbouring elements share (overlapping windows forward; backward, a window that covers
// several inputs) happen once per segment. On lavapipe every storage access is a loop over the SIMD
// lanes, so the `_v4` entry points also move whole vec4s where the alignment allows it (see
// pool.rs): the forward reads the input rows as vec4s (W % 4 == 0 and PW == 0), the backward
// writes dx as vec4s (W % 4 == 0). Every element still sees its windows in the same order as a
// one-element-per-invocation kernel: results are bit-identical between the variants.
override H: u32;
override W: u32;
override OH: u32;
override OW: u32;
override KH: u32;
override KW: u32;
override SH: u32;
override SW: u32;
override PH: u32;
override PW: u32;

const SEG: u32 = 4u;
const LANE = vec4<u32>(0u, 1u, 2u, 3u);
// Segments per output row (forward) and per input row (backward).
override SEG_O: u32 = (OW + SEG - 1u) / SEG;
override SEG_I: u32 = (W + SEG - 1u) / SEG;
// Forward: the input columns that a segment's windows span, and in vec4s.
override NC: u32 = (SEG - 1u) * SW + KW;
override NC4: u32 = (NC + 3u) / 4u;
// Backward: the most windows that cover one input row, and that cover a segment's columns.
override NY: u32 = (KH + SH - 1u) / SH;
override NXS: u32 = (SEG + KW - 2u) / SW + 1u;

struct Params {
    planes: u32, // P = N * C in this call
    total: u32,  // segments: P * OH * SEG_O forward, P * H * SEG_I backward
    _p0: u32,
    _p1: u32,
}

@group(0) @binding(0) var<storage, read> p: Params;
@group(0) @binding(1) var<storage, read_write> fo: array<f32>;
@group(0) @binding(2) var<storage, read_write> arg: array<u32>;
@group(0) @binding(3) var<storage, read> fi: array<f32>;
@group(0) @binding(4) var<storage, read> argi: array<u32>;
// The same buffers seen as vec4s by the `_v4` entry points (buffers are allocated in multiples of
// 16 bytes).
@group(0) @binding(1) var<storage, read_write> fo4: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> fi4: array<vec4<f32>>;

// NaN test on the bits: WGSL lets compilers assume floats are never NaN, so `v != v` may be folded
// to false (Mesa's lavapipe does).
fn is_nan(v: f32) -> bool {
    return (bitcast<u32>(v) & 0x7fffffffu) > 0x7f800000u;
}

fn is_nan4(v: vec4<f32>) -> vec4<bool> {
    return (bitcast<vec4<u32>>(v) & vec4(0x7fffffffu)) > vec4(0x7f800000u);
}

fn linear(wid: vec3<u32>, nwg: vec3<u32>, li: u32) -> u32 {
    return (wid.x + nwg.x * (wid.y + nwg.y * wid.z)) * 256u + li;
}

// Stores the elements of a segment that lie inside its row of n: fo[at + s] for x0 + s < n.
fn store4(at: u32, x0: u32, n: u32, v: vec4<f32>) {
    fo[at] = v.x;
    if (x0 + 1u < n) {
        fo[at + 1u] = v.y;
    }
    if (x0 + 2u < n) {
        fo[at + 2u] = v.z;
    }
    if (x0 + 3u < n) {
        fo[at + 3u] = v.w;
    }
}

// ---------------------------------------------------------------------------------------------
// Forward: segment t is outputs ox0 .. ox0 + 3 of output row r = pl * OH + oy. Their windows span
// the NC input columns ox0*SW - PW + c, c < NC, of input rows oy*SH - PH + ky, ky < KH; output s
// covers c in [s*SW, s*SW + KW).

struct OutSeg {
    r: u32,
    ox0: u32,
    oy: u32,
    plane: u32, // offset of plane pl in x
}

fn out_seg(t: u32) -> OutSeg {
    let r = t / SEG_O;
    return OutSeg(r, (t % SEG_O) * SEG, r % OH, (r / OH) * H * W);
}

// Input row ky of the segment's windows, or -1 in the padding.
fn in_row(s: OutSeg, ky: u32) -> i32 {
    let iy = i32(s.oy * SH + ky) - i32(PH);
    return select(-1, iy, iy >= 0 && iy < i32(H));
}

// Input column c of the segment's span, or W and above in the padding (u32 wraps on the left).
fn in_col(s: OutSeg, c: u32) -> u32 {
    return s.ox0 * SW + c - PW;
}

// Which of the 4 windows hold span column c.
fn covers(c: u32) -> vec4<bool> {
    let kx = vec4(i32(c)) - vec4<i32>(LANE * SW);
    return (kx >= vec4(0)) & (kx < vec4(i32(KW)));
}

struct MaxState {
    best: vec4<f32>,
    best_i: vec4<u32>,
    found: vec4<bool>,
}

// Offers x[iy, ix] = v, span column c, to the 4 windows. Windows see (ky, kx) in order, so the
// first maximum wins; a NaN wins and stays, like PyTorch.
fn max_take(st: ptr<function, MaxState>, c: u32, iy: u32, ix: u32, v: f32) {
    if (ix >= W) {
        return;
    }
    let vv = vec4(v);
    let take = covers(c)
        & (!(*st).found | (!is_nan4((*st).best) & ((vv > (*st).best) | vec4(is_nan(v)))));
    (*st).best = select((*st).best, vv, take);
    (*st).best_i = select((*st).best_i, vec4(iy * W + ix), take);
    (*st).found = (*st).found | take;
}

fn max_store(s: OutSeg, st: MaxState) {
    let o = s.r * OW + s.ox0;
    store4(o, s.ox0, OW, st.best);
    arg[o] = st.best_i.x;
    if (s.ox0 + 1u < OW) {
        arg[o + 1u] = st.best_i.y;
    }
    if (s.ox0 + 2u < OW) {
        arg[o + 2u] = st.best_i.z;
    }
    if (s.ox0 + 3u < OW) {
        arg[o + 3u] = st.best_i.w;
    }
}

// Adds x[.., ix] = v, span column c, to the sums of the windows that hold it.
fn avg_take(acc: ptr<function, vec4<f32>>, c: u32, ix: u32, v: f32) {
    if (ix < W) {
        *acc = select(*acc, *acc + vec4(v), covers(c));
    }
}

fn avg_store(s: OutSeg, acc: vec4<f32>) {
    store4(s.r * OW + s.ox0, s.ox0, OW, acc / f32(KH * KW));
}

// fi = x [P, H, W] -> fo = y [P, OH, OW], arg = index of the max within its plane (y*W + x).
// One invocation per segment of 4 outputs of a row: P * OH * SEG_O.
@compute @workgroup_size(256)
fn max_forward(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let t = linear(wid, nwg, li);
    if (t >= p.total) {
        return;
    }
    let s = out_seg(t);
    var st = MaxState(vec4(0.0), vec4(0u), vec4(false));
    for (var ky = 0u; ky < KH; ky++) {
        let iy = in_row(s, ky);
        if (iy < 0) {
            continue;
        }
        for (var c = 0u; c < NC; c++) {
            let ix = in_col(s, c);
            if (ix < W) {
                max_take(&st, c, u32(iy), ix, fi[s.plane + u32(iy) * W + ix]);
            }
        }
    }
    max_store(s, st);
}

// As max_forward, reading x as vec4s: needs W % 4 == 0 and PW == 0 so that every span starts on a
// vec4 (span columns past the row's end are read and ignored).
@compute @workgroup_size(256)
fn max_forward_v4(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let t = linear(wid, nwg, li);
    if (t >= p.total) {
        return;
    }
    let s = out_seg(t);
    var st = MaxState(vec4(0.0), vec4(0u), vec4(false));
    for (var ky = 0u; ky < KH; ky++) {
        let iy = in_row(s, ky);
        if (iy < 0) {
            continue;
        }
        let at = (s.plane + u32(iy) * W + s.ox0 * SW) / 4u;
        for (var q = 0u; q < NC4; q++) {
            let v = fi4[at + q];
            let c = 4u * q;
            let ix = in_col(s, c);
            max_take(&st, c, u32(iy), ix, v.x);
            max_take(&st, c + 1u, u32(iy), ix + 1u, v.y);
            max_take(&st, c + 2u, u32(iy), ix + 2u, v.z);
            max_take(&st, c + 3u, u32(iy), ix + 3u, v.w);
        }
    }
    max_store(s, st);
}

// fi = x [P, H, W] -> fo = y [P, OH, OW], mean over the KH x KW window (padding counts as 0).
// One invocation per segment of 4 outputs of a row: P * OH * SEG_O.
@compute @workgroup_size(256)
fn avg_forward(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let t = linear(wid, nwg, li);
    if (t >= p.total) {
        return;
    }
    let s = out_seg(t);
    var acc = vec4(0.0);
    for (var ky = 0u; ky < KH; ky++) {
        let iy = in_row(s, ky);
        if (iy < 0) {
            continue;
        }
        for (var c = 0u; c < NC; c++) {
            let ix = in_col(s, c);
            if (ix < W) {
                avg_take(&acc, c, ix, fi[s.plane + u32(iy) * W + ix]);
            }
        }
    }
    avg_store(s, acc);
}

// As avg_forward, reading x as vec4s (W % 4 == 0 and PW == 0, as max_forward_v4).
@compute @workgroup_size(256)
fn avg_forward_v4(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let t = linear(wid, nwg, li);
    if (t >= p.total) {
        return;
    }
    let s = out_seg(t);
    var acc = vec4(0.0);
    for (var ky = 0u; ky < KH; ky++) {
        let iy = in_row(s, ky);
        if (iy < 0) {
            continue;
        }
        let at = (s.plane + u32(iy) * W + s.ox0 * SW) / 4u;
        for (var q = 0u; q < NC4; q++) {
            let v = fi4[at + q];
            let c = 4u * q;
            let ix = in_col(s, c);
            avg_take(&acc, c, ix, v.x);
            avg_take(&acc, c + 1u, ix + 1u, v.y);
            avg_take(&acc, c + 2u, ix + 2u, v.z);
            avg_take(&acc, c + 3u, ix + 3u, v.w);
        }
    }
    avg_store(s, acc);
}

// ---------------------------------------------------------------------------------------------
// Backward: segment t is inputs ix0 .. ix0 + 3 of input row r = pl * H + iy. The windows that can
// cover them are oy in [y0, y0 + NY) (those with oy*SH - PH <= iy <= oy*SH - PH + KH - 1 end at
// (iy + PH) / SH) and ox in [x0, x0 + NXS), visited in ascending order, so each input sums its
// windows in the same order as one invocation per input would.

struct InSeg {
    ix0: u32,
    iy: u32,
    pl: u32,
    y0: i32,
    x0: i32,
}

fn in_seg(t: u32) -> InSeg {
    let r = t / SEG_I;
    let ix0 = (t % SEG_I) * SEG;
    let iy = r % H;
    let y0 = i32((iy + PH) / SH) - i32(NY) + 1;
    let x0 = i32((ix0 + SEG - 1u + PW) / SW) - i32(NXS) + 1;
    return InSeg(ix0, iy, r / H, y0, x0);
}

// fi = dy, argi = argmax -> dx of segment t. A window whose argmax is one of ours covers it, so
// only the extents (and windows ending left of the segment) need checking.
fn max_backward_seg(t: u32) -> vec4<f32> {
    let s = in_seg(t);
    let j = vec4(s.iy * W + s.ix0) + LANE;
    var acc = vec4(0.0);
    for (var a = 0u; a < NY; a++) {
        let oy = s.y0 + i32(a);
        if (oy < 0 || oy >= i32(OH)) {
            continue;
        }
        for (var b = 0u; b < NXS; b++) {
            let ox = s.x0 + i32(b);
            if (ox < 0 || ox >= i32(OW) || u32(ox) * SW + KW <= s.ix0 + PW) {
                continue;
            }
            let o = (s.pl * OH + u32(oy)) * OW + u32(ox);
            let hit = vec4(argi[o]) == j;
            if (any(hit)) {
                acc = select(acc, acc + vec4(fi[o]), hit);
            }
        }
    }
    return acc;
}

// fi = dy -> dx of segment t.
fn avg_backward_seg(t: u32) -> vec4<f32> {
    let s = in_seg(t);
    let ty = s.iy + PH;
    // Column of each input relative to window ox = 0.
    let tx = vec4<i32>(vec4(s.ix0 + PW) + LANE);
    var acc = vec4(0.0);
    for (var a = 0u; a < NY; a++) {
        let oy = s.y0 + i32(a);
        if (oy < 0 || oy >= i32(OH) || ty - u32(oy) * SH >= KH) {
            continue;
        }
        for (var b = 0u; b < NXS; b++) {
            let ox = s.x0 + i32(b);
            if (ox < 0 || ox >= i32(OW)) {
                continue;
            }
            let kx = tx - vec4(ox * i32(SW));
            let cover = (kx >= vec4(0)) & (kx < vec4(i32(KW)));
            if (any(cover)) {
                acc = select(acc, acc + vec4(fi[(s.pl * OH + u32(oy)) * OW + u32(ox)]), cover);
            }
        }
    }
    return acc / f32(KH * KW);
}

// fi = dy [P, OH, OW], argi = argmax [P, OH, OW] -> fo = dx [P, H, W].
// One invocation per segment of 4 inputs of a row: P * H * SEG_I.
@compute @workgroup_size(256)
fn max_backward(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let t = linear(wid, nwg, li);
    if (t >= p.total) {
        return;
    }
    let ix0 = (t % SEG_I) * SEG;
    store4((t / SEG_I) * W + ix0, ix0, W, max_backward_seg(t));
}

// As max_backward, writing dx as vec4s: needs W % 4 == 0 (segment t is then vec4 t of dx).
@compute @workgroup_size(256)
fn max_backward_v4(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let t = linear(wid, nwg, li);
    if (t >= p.total) {
        return;
    }
    fo4[t] = max_backward_seg(t);
}

// fi = dy [P, OH, OW] -> fo = dx [P, H, W].
// One invocation per segment of 4 inputs of a row: P * H * SEG_I.
@compute @workgroup_size(256)
fn avg_backward(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let t = linear(wid, nwg, li);
    if (t >= p.total) {
        return;
    }
    let ix0 = (t % SEG_I) * SEG;
    store4((t / SEG_I) * W + ix0, ix0, W, avg_backward_seg(t));
}

// As avg_backward, writing dx as vec4s (W % 4 == 0).
@compute @workgroup_size(256)
fn avg_backward_v4(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let t = linear(wid, nwg, li);
    if (t >= p.total) {
        return;
    }
    fo4[t] = avg_backward_seg(t);
}
