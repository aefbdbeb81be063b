// Reductions along one axis of a tensor viewed as [outer, len, inner]. Each invocation owns one
// output and walks its part of the axis in index order, so the same input gives the same bits on
// every run. Long axes are split in chunks (output [outer, nchunk, inner]) and reduced again by the
// launcher: a two-stage reduction with a fixed shape-determined order.

struct Params {
    outer: u32,
    len: u32,
    inner: u32,
    chunk: u32,
    nchunk: u32,
    scale: f32,     // sum: multiplies the result (mean = sum * 1/len)
    total: u32,     // outputs (reductions) or rows (softmax family)
    _p0: u32,
}

@group(0) @binding(0) var<storage, read> p: Params;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
// The output seen as vec4, for `softmax_rows4`.
@group(0) @binding(1) var<storage, read_write> y4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> yi: array<u32>;
@group(0) @binding(3) var<storage, read> x: array<f32>;
// The input seen as vec4, for `sum_rows4` and `softmax_rows4`.
@group(0) @binding(3) var<storage, read> x4: array<vec4<f32>>;
// Class labels (u32, checked < len by the launcher) and the upstream gradient (one element), for
// the cross-entropy entries.
@group(0) @binding(4) var<storage, read> labels: array<u32>;
@group(0) @binding(5) var<storage, read> upstream: array<f32>;

// 0 sum, 1 max, 2 min (reduce); 0 argmax, 1 argmin (arg); 0 softmax, 1 log_softmax (softmax)
override OP: u32 = 0u;

// NaN test on the bits: WGSL lets compilers assume floats are never NaN, so `v != v` may be folded
// to false (Mesa's lavapipe does, inside max/min selects).
fn is_nan(v: f32) -> bool {
    return (bitcast<u32>(v) & 0x7fffffffu) > 0x7f800000u;
}

fn linear(wid: vec3<u32>, nwg: vec3<u32>, li: u32) -> u32 {
    return (wid.x + nwg.x * (wid.y + nwg.y * wid.z)) * 256u + li;
}

// x: [outer, len, inner] -> y: [outer, nchunk, inner]
@compute @workgroup_size(256)
fn reduce(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let t = linear(wid, nwg, li);
    if (t >= p.total) {
        return;
    }
    let i = t % p.inner;
    let c = (t / p.inner) % p.nchunk;
    let o = t / (p.inner * p.nchunk);
    let j0 = c * p.chunk;
    let j1 = min(p.len, j0 + p.chunk);
    let base = o * p.len * p.inner + i;
    // max/min start from the chunk's first element (the launcher never makes an empty chunk).
    var acc = select(x[base + j0 * p.inner], 0.0, OP == 0u);
    for (var j = select(j0 + 1u, j0, OP == 0u); j < j1; j++) {
        let v = x[base + j * p.inner];
        if (OP == 0u) {
            acc += v;
        } else if (OP == 1u) {
            // A NaN already in acc stays; a NaN in v replaces acc (NaN propagates, like PyTorch).
            acc = select(select(max(acc, v), v, is_nan(v)), acc, is_nan(acc));
        } else {
            acc = select(select(min(acc, v), v, is_nan(v)), acc, is_nan(acc));
        }
    }
    if (OP == 0u) {
        acc *= p.scale;
    }
    y[t] = acc;
}

// x: [outer, len, inner] -> yi: [outer, inner] u32, index of the first max (OP 0) or min (OP 1)
@compute @workgroup_size(256)
fn arg(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let t = linear(wid, nwg, li);
    if (t >= p.total) {
        return;
    }
    let i = t % p.inner;
    let o = t / p.inner;
    let base = o * p.len * p.inner + i;
    var best = x[base];
    var best_j = 0u;
    for (var j = 1u; j < p.len; j++) {
        let v = x[base + j * p.inner];
        let better = select(v > best, v < best, OP == 1u);
        if (!is_nan(best) && (better || is_nan(v))) {
            best = v;
            best_j = j;
        }
    }
    yi[t] = best_j;
}

// x, y: [outer, len, inner]; softmax (OP 0) or log-softmax (OP 1) along len, max-subtracted
@compute @workgroup_size(256)
fn softmax(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let t = linear(wid, nwg, li);
    if (t >= p.total) {
        return;
    }
    // Parameters read once: the loops below would reload them around every store.
    let len = p.len;
    let inner = p.inner;
    let i = t % inner;
    let o = t / inner;
    let base = o * len * inner + i;
    var m = x[base];
    for (var j = 1u; j < len; j++) {
        m = max(m, x[base + j * inner]);
    }
    var s = 0.0;
    for (var j = 0u; j < len; j++) {
        s += exp(x[base + j * inner] - m);
    }
    if (OP == 0u) {
        let r = 1.0 / s;
        for (var j = 0u; j < len; j++) {
            let k = base + j * inner;
            y[k] = exp(x[k] - m) * r;
        }
    } else {
        let ls = m + log(s);
        for (var j = 0u; j < len; j++) {
            let k = base + j * inner;
            y[k] = x[k] - ls;
        }
    }
}

// x, y: [outer, len] with len a multiple of 4 (inner = 1), seen as vec4: `softmax` of each row with
// a quarter of the storage accesses (the row max and sum taken over four lanes, then across them).
@compute @workgroup_size(256)
fn softmax_rows4(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let t = linear(wid, nwg, li);
    if (t >= p.total) {
        return;
    }
    let len4 = p.len / 4u;
    let base = t * len4;
    var m4 = x4[base];
    for (var j = 1u; j < len4; j++) {
        m4 = max(m4, x4[base + j]);
    }
    let m = max(max(m4.x, m4.y), max(m4.z, m4.w));
    var s4 = vec4<f32>();
    for (var j = 0u; j < len4; j++) {
        s4 += exp(x4[base + j] - m);
    }
    let s = (s4.x + s4.y) + (s4.z + s4.w);
    if (OP == 0u) {
        let r = 1.0 / s;
        for (var j = 0u; j < len4; j++) {
            y4[base + j] = exp(x4[base + j] - m) * r;
        }
    } else {
        let ls = m + log(s);
        for (var j = 0u; j < len4; j++) {
            y4[base + j] = x4[base + j] - ls;
        }
    }
}

// x: [outer, len, inner] -> y: [outer, inner], log(sum(exp(x))) along len, max-subtracted
@compute @workgroup_size(256)
fn logsumexp(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let t = linear(wid, nwg, li);
    if (t >= p.total) {
        return;
    }
    let i = t % p.inner;
    let o = t / p.inner;
    y[t] = logsumexp_at(o * p.len * p.inner + i, p.inner);
}

// log(sum(exp(x[base + j stride], j < p.len))), max-subtracted. A max of -inf means every element
// is -inf; +inf makes the sum +inf (not inf - inf = NaN): either way the result is the max. Tested
// on the bits, as WGSL lets compilers assume floats are finite.
fn logsumexp_at(base: u32, stride: u32) -> f32 {
    var m = x[base];
    for (var j = 1u; j < p.len; j++) {
        m = max(m, x[base + j * stride]);
    }
    if ((bitcast<u32>(m) & 0x7fffffffu) >= 0x7f800000u) {
        return m;
    }
    var s = 0.0;
    for (var j = 0u; j < p.len; j++) {
        s += exp(x[base + j * stride] - m);
    }
    return m + log(s);
}

// Softmax cross-entropy of each row: x: [rows, len] logits, labels: [rows] -> y: [rows],
// y = logsumexp(x_r) - x_r[label_r] (NaN for a label out of range). One invocation per row.
@compute @workgroup_size(256)
fn xent(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let t = linear(wid, nwg, li);
    if (t >= p.total) {
        return;
    }
    let base = t * p.len;
    let label = labels[t];
    if (label >= p.len) {
        // Only labels computed on the device can get here (uploaded ones are checked): NaN.
        var nan_bits = 0x7fc00000u;
        y[t] = bitcast<f32>(nan_bits);
        return;
    }
    y[t] = logsumexp_at(base, 1u) - x[base + label];
}

// Its gradient: x: [rows, len], labels: [rows], upstream: [1] -> y: [rows, len],
// y = (softmax(x_r) - onehot(label_r)) * upstream[0] * p.scale. One invocation per row.
@compute @workgroup_size(256)
fn xent_grad(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let t = linear(wid, nwg, li);
    if (t >= p.total) {
        return;
    }
    let base = t * p.len;
    let lse = logsumexp_at(base, 1u);
    let g = upstream[0] * p.scale;
    let label = labels[t];
    for (var j = 0u; j < p.len; j++) {
        let hot = select(0.0, 1.0, j == label);
        y[base + j] = (exp(x[base + j] - lse) - hot) * g;
    }
}

// Sum of contiguous rows, four elements per load: x: [outer, len] (inner = 1, len and chunk
// multiples of 4) -> y: [outer, nchunk]. Four vec4 running sums fed in turn (independent adds keep
// lavapipe's per-lane loads overlapping), combined at the end in a fixed order, so the result is
// still a function of the shape only.
@compute @workgroup_size(256)
fn sum_rows4(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let t = linear(wid, nwg, li);
    if (t >= p.total) {
        return;
    }
    let c = t % p.nchunk;
    let o = t / p.nchunk;
    let j0 = c * p.chunk;
    let j1 = min(p.len, j0 + p.chunk);
    let base = (o * p.len + j0) / 4u;
    let count = (j1 - j0) / 4u;
    var a0 = vec4<f32>();
    var a1 = vec4<f32>();
    var a2 = vec4<f32>();
    var a3 = vec4<f32>();
    var j = 0u;
    for (; j + 4u <= count; j += 4u) {
        a0 += x4[base + j];
        a1 += x4[base + j + 1u];
        a2 += x4[base + j + 2u];
        a3 += x4[base + j + 3u];
    }
    for (; j < count; j++) {
        a0 += x4[base + j];
    }
    let acc = (a0 + a1) + (a2 + a3);
    y[t] = ((acc.x + acc.y) + (acc.z + acc.w)) * p.scale;
}
