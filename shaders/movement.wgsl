// Data movement on 32-bit words (any dtype): strided copy (transpose, permute, broadcast, slice,
// concat, pad), index_select, gather, and their deterministic scatter-add counterparts (each output
// gathers the sources that land on it, in index order, so no float atomics are needed).

struct Params {
    n: u32,         // elements to produce
    rank: u32,      // copy: dims of the iteration shape
    in_off: u32,    // copy: first input word
    out_off: u32,   // copy: first output word
    // copy: iteration shape and strides. Index ops: shape = [outer, src_dim, idx_dim, inner].
    shape: array<u32, 8>,
    is: array<u32, 8>,
    os: array<u32, 8>,
}

@group(0) @binding(0) var<storage, read> p: Params;
// The same parameters read as vec4s, four per storage access (`copy`).
struct ParamsV {
    head: vec4<u32>,   // n, rank, in_off, out_off
    shape: array<vec4<u32>, 2>,
    is: array<vec4<u32>, 2>,
    os: array<vec4<u32>, 2>,
}
@group(0) @binding(0) var<storage, read> pv: ParamsV;

// copy: p.rank, so the index loop unrolls over registers.
override RANK: u32 = 1u;
@group(0) @binding(1) var<storage, read_write> y: array<u32>;
@group(0) @binding(2) var<storage, read> x: array<u32>;
@group(0) @binding(3) var<storage, read> idx: array<u32>;
@group(0) @binding(4) var<storage, read> base: array<u32>;

fn linear(wid: vec3<u32>, nwg: vec3<u32>, li: u32) -> u32 {
    return (wid.x + nwg.x * (wid.y + nwg.y * wid.z)) * 256u + li;
}

// y[out_off + sum k_d os_d] = x[in_off + sum k_d is_d] for k over p.shape
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
    var rem = t;
    var src = head.z;
    var dst = head.w;
    for (var d = i32(RANK) - 1; d >= 0; d--) {
        let q = u32(d) / 4u;
        let r = u32(d) % 4u;
        let k = rem % sh[q][r];
        rem = rem / sh[q][r];
        src += k * is[q][r];
        dst += k * os[q][r];
    }
    y[dst] = x[src];
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
