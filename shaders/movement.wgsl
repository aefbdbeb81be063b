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
    if (t >= p.n) {
        return;
    }
    var rem = t;
    var src = p.in_off;
    var dst = p.out_off;
    for (var d = i32(p.rank) - 1; d >= 0; d--) {
        let k = rem % p.shape[d];
        rem = rem / p.shape[d];
        src += k * p.is[d];
        dst += k * p.os[d];
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
