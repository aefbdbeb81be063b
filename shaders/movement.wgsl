// Data movement on 32-bit words (any dtype): strided copy (transpose, permute, broadcast, slice,
// concat, pad), index_select, gather, and their deterministic scatter-add counterparts (each output
// gathers the sources that land on it, in index order, so no float atomics are needed).

struct Params {
    n: u32,         // elements to produce (copy: tiles)
    rank: u32,      // copy: dims of the iteration shape
    in_off: u32,    // copy: first input word
    out_off: u32,   // copy: first output word
    // copy: iteration shape and strides. Index ops: shape = [outer, src_dim, idx_dim, inner].
    shape: array<u32, 8>,
    is: array<u32, 8>,
    os: array<u32, 8>,
}

@group(0) @binding(0) var<storage, read> p: Params;
// The same parameters read as vec4s, four per storage access (`copy`; CopyParams is in
// copy_tiles.wgsl, which the launcher puts in front of this file).
@group(0) @binding(0) var<storage, read> pv: CopyParams;

@group(0) @binding(1) var<storage, read_write> y: array<u32>;
@group(0) @binding(2) var<storage, read> x: array<u32>;
@group(0) @binding(3) var<storage, read> idx: array<u32>;
@group(0) @binding(4) var<storage, read> base: array<u32>;

fn linear(wid: vec3<u32>, nwg: vec3<u32>, li: u32) -> u32 {
    return (wid.x + nwg.x * (wid.y + nwg.y * wid.z)) * 256u + li;
}

// The strided copy (see copy_tiles.wgsl), one element per access: y[...] = x[...] over tile t.
// (On [2048, 2048] transposed on lavapipe, one element per invocation took 30 ms, tiles 9.5.)
@compute @workgroup_size(256)
fn copy(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let t = linear(wid, nwg, li);
    let head = pv.head;
    if (t >= head.x) {
        return;
    }
    // Dims 0-3 and 4-7 of the shape and strides, loaded once each.
    let sh = array<vec4<u32>, 2>(pv.shape[0], select(vec4<u32>(), pv.shape[1], RANK > 4u));
    let is = array<vec4<u32>, 2>(pv.is[0], select(vec4<u32>(), pv.is[1], RANK > 4u));
    let os = array<vec4<u32>, 2>(pv.os[0], select(vec4<u32>(), pv.os[1], RANK > 4u));
    let tl = copy_tile(head, sh, is, os, t, array<vec4<u32>, 2>(), sh);
    var src = tl.src;
    var dst = tl.dst;
    if (tl.nr == TILE_ROWS && tl.nc == TILE_COLS) {
        // A whole tile: constant trip counts, unrolled.
        for (var i = 0u; i < TILE_ROWS; i++) {
            for (var j = 0u; j < TILE_COLS; j++) {
                y[dst + j * tl.osc] = x[src + j * tl.isc];
            }
            src += tl.isr;
            dst += tl.osr;
        }
        return;
    }
    for (var i = 0u; i < tl.nr; i++) {
        for (var j = 0u; j < tl.nc; j++) {
            y[dst + j * tl.osc] = x[src + j * tl.isc];
        }
        src += tl.isr;
        dst += tl.osr;
    }
}

// pad: the copy's parameters over the output's shape, x's strides and in_off = -sum lo_d is_d
// (wrapping, so that x's element k - lo is read at in_off + sum k_d is_d), then where x lies in
// each output dim, [lo_d, lo_d + len_d), and the fill value's bits.
struct PadParams {
    copy: CopyParams,
    lo: array<vec4<u32>, 2>,
    len: array<vec4<u32>, 2>,
    value: vec4<u32>,
}
@group(0) @binding(0) var<storage, read> pp: PadParams;

// y [out shape] = x placed at lo in every dim, the value elsewhere: one pass over y's tiles (a
// fill and a copy took two dispatches).
@compute @workgroup_size(256)
fn pad(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let t = linear(wid, nwg, li);
    let head = pp.copy.head;
    if (t >= head.x) {
        return;
    }
    let sh = array<vec4<u32>, 2>(pp.copy.shape[0], select(vec4<u32>(), pp.copy.shape[1], RANK > 4u));
    let is = array<vec4<u32>, 2>(pp.copy.is[0], select(vec4<u32>(), pp.copy.is[1], RANK > 4u));
    let os = array<vec4<u32>, 2>(pp.copy.os[0], select(vec4<u32>(), pp.copy.os[1], RANK > 4u));
    let lo = array<vec4<u32>, 2>(pp.lo[0], select(vec4<u32>(), pp.lo[1], RANK > 4u));
    let len = array<vec4<u32>, 2>(pp.len[0], select(vec4<u32>(), pp.len[1], RANK > 4u));
    let tl = copy_tile(head, sh, is, os, t, lo, len);
    let value = pp.value.x;
    let c = RANK - 1u;
    let r = select(0u, RANK - 2u, RANK > 1u);
    let lo_c = at(lo, c);
    let len_c = at(len, c);
    let lo_r = select(0u, at(lo, r), RANK > 1u);
    let len_r = select(1u, at(len, r), RANK > 1u);
    var src = tl.src;
    var dst = tl.dst;
    for (var i = 0u; i < tl.nr; i++) {
        let row_inside = tl.inside && tl.r0 + i - lo_r < len_r;
        for (var j = 0u; j < tl.nc; j++) {
            var v = value;
            if (row_inside && tl.c0 + j - lo_c < len_c) {
                v = x[src + j * tl.isc];
            }
            y[dst + j * tl.osc] = v;
        }
        src += tl.isr;
        dst += tl.osr;
    }
}

// x: [outer, src_dim, inner], idx: [idx_dim] -> y: [outer, idx_dim, inner]
@compute @workgroup_size(256)
fn index_select(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let t = linear(wid, nwg, li);
    if (t >= p.n) {
        return;
    }
    let inner = p.shape[3];
    let i = t % inner;
    let j = (t / inner) % p.shape[2];
    let o = t / (inner * p.shape[2]);
    let r = idx[j];
    // Out-of-range indices (only possible for device-computed indices) read as 0.
    y[t] = select(0u, x[(o * p.shape[1] + r) * inner + i], r < p.shape[1]);
}

// x: [outer, src_dim, inner], idx: [outer, idx_dim, inner] -> y: [outer, idx_dim, inner]
@compute @workgroup_size(256)
fn gather(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let t = linear(wid, nwg, li);
    if (t >= p.n) {
        return;
    }
    let inner = p.shape[3];
    let i = t % inner;
    let o = t / (inner * p.shape[2]);
    let r = idx[t];
    y[t] = select(0u, x[(o * p.shape[1] + r) * inner + i], r < p.shape[1]);
}

// Backward of index_select: x: [outer, idx_dim, inner], idx: [idx_dim]
//   -> y[o, r, i] = sum over j with idx[j] == r of x[o, j, i];  y: [outer, src_dim, inner] (f32)
@compute @workgroup_size(256)
fn index_add(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let t = linear(wid, nwg, li);
    if (t >= p.n) {
        return;
    }
    let inner = p.shape[3];
    let i = t % inner;
    let r = (t / inner) % p.shape[1];
    let o = t / (inner * p.shape[1]);
    var acc = 0.0;
    for (var j = 0u; j < p.shape[2]; j++) {
        if (idx[j] == r) {
            acc += bitcast<f32>(x[(o * p.shape[2] + j) * inner + i]);
        }
    }
    y[t] = bitcast<u32>(acc);
}

// Scatter-add (backward of gather): base, y: [outer, src_dim, inner]; x, idx: [outer, idx_dim, inner]
//   y[o, r, i] = base[o, r, i] + sum over j with idx[o, j, i] == r of x[o, j, i]   (f32)
@compute @workgroup_size(256)
fn scatter_add(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let t = linear(wid, nwg, li);
    if (t >= p.n) {
        return;
    }
    let inner = p.shape[3];
    let i = t % inner;
    let r = (t / inner) % p.shape[1];
    let o = t / (inner * p.shape[1]);
    var acc = bitcast<f32>(base[t]);
    for (var j = 0u; j < p.shape[2]; j++) {
        let k = (o * p.shape[2] + j) * inner + i;
        if (idx[k] == r) {
            acc += bitcast<f32>(x[k]);
        }
    }
    y[t] = bitcast<u32>(acc);
}
