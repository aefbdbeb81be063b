// 2-D max and average pooling over planes of [N*C, H, W], forward and backward.
// Backward kernels gather (each input element sums the windows that cover it) so no atomics are
// needed and the result is deterministic. Average pooling counts padding (PyTorch's default).

struct Params {
    planes: u32,
    h: u32,
    w: u32,
    oh: u32,
    ow: u32,
    kh: u32,
    kw: u32,
    sh: u32,
    sw: u32,
    ph: u32,
    pw: u32,
    total: u32,
}

@group(0) @binding(0) var<storage, read> p: Params;
@group(0) @binding(1) var<storage, read_write> fo: array<f32>;
@group(0) @binding(2) var<storage, read_write> arg: array<u32>;
@group(0) @binding(3) var<storage, read> fi: array<f32>;
@group(0) @binding(4) var<storage, read> argi: array<u32>;

// NaN test on the bits: WGSL lets compilers assume floats are never NaN, so `v != v` may be folded
// to false (Mesa's lavapipe does).
fn is_nan(v: f32) -> bool {
    return (bitcast<u32>(v) & 0x7fffffffu) > 0x7f800000u;
}

fn linear(wid: vec3<u32>, nwg: vec3<u32>, li: u32) -> u32 {
    return (wid.x + nwg.x * (wid.y + nwg.y * wid.z)) * 256u + li;
}

// fi = x [P, H, W] -> fo = y [P, OH, OW], arg = index of the max within its plane (y*W + x)
@compute @workgroup_size(256)
fn max_forward(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let i = linear(wid, nwg, li);
    if (i >= p.total) {
        return;
    }
    let ox = i % p.ow;
    let oy = (i / p.ow) % p.oh;
    let pl = i / (p.ow * p.oh);
    var best = 0.0;
    var best_i = 0u;
    var found = false;
    for (var ky = 0u; ky < p.kh; ky++) {
        let iy = i32(oy * p.sh + ky) - i32(p.ph);
        if (iy < 0 || iy >= i32(p.h)) {
            continue;
        }
        for (var kx = 0u; kx < p.kw; kx++) {
            let ix = i32(ox * p.sw + kx) - i32(p.pw);
            if (ix < 0 || ix >= i32(p.w)) {
                continue;
            }
            let j = u32(iy) * p.w + u32(ix);
            let v = fi[pl * p.h * p.w + j];
            // The first maximum wins; a NaN wins and stays, like PyTorch.
            if (!found || (!is_nan(best) && (v > best || is_nan(v)))) {
                best = v;
                best_i = j;
                found = true;
            }
        }
    }
    fo[i] = best;
    arg[i] = best_i;
}

// fi = dy [P, OH, OW], argi = argmax [P, OH, OW] -> fo = dx [P, H, W]
@compute @workgroup_size(256)
fn max_backward(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let i = linear(wid, nwg, li);
    if (i >= p.total) {
        return;
    }
    let ix = i % p.w;
    let iy = (i / p.w) % p.h;
    let pl = i / (p.w * p.h);
    let j = iy * p.w + ix;
    // Windows oy with oy*sh - ph <= iy <= oy*sh - ph + kh - 1.
    let y_hi = (iy + p.ph) / p.sh;
    let y_lo = select(0u, (iy + p.ph - p.kh + 1u + p.sh - 1u) / p.sh, iy + p.ph + 1u > p.kh);
    let x_hi = (ix + p.pw) / p.sw;
    let x_lo = select(0u, (ix + p.pw - p.kw + 1u + p.sw - 1u) / p.sw, ix + p.pw + 1u > p.kw);
    var acc = 0.0;
    for (var oy = y_lo; oy <= min(y_hi, p.oh - 1u); oy++) {
        for (var ox = x_lo; ox <= min(x_hi, p.ow - 1u); ox++) {
            let o = (pl * p.oh + oy) * p.ow + ox;
            if (argi[o] == j) {
                acc += fi[o];
            }
        }
    }
    fo[i] = acc;
}

// fi = x [P, H, W] -> fo = y [P, OH, OW], mean over the KH x KW window (padding counts as 0)
@compute @workgroup_size(256)
fn avg_forward(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let i = linear(wid, nwg, li);
    if (i >= p.total) {
        return;
    }
    let ox = i % p.ow;
    let oy = (i / p.ow) % p.oh;
    let pl = i / (p.ow * p.oh);
    var acc = 0.0;
    for (var ky = 0u; ky < p.kh; ky++) {
        let iy = i32(oy * p.sh + ky) - i32(p.ph);
        if (iy < 0 || iy >= i32(p.h)) {
            continue;
        }
        for (var kx = 0u; kx < p.kw; kx++) {
            let ix = i32(ox * p.sw + kx) - i32(p.pw);
            if (ix >= 0 && ix < i32(p.w)) {
                acc += fi[(pl * p.h + u32(iy)) * p.w + u32(ix)];
            }
        }
    }
    fo[i] = acc / f32(p.kh * p.kw);
}

// fi = dy [P, OH, OW] -> fo = dx [P, H, W]
@compute @workgroup_size(256)
fn avg_backward(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let i = linear(wid, nwg, li);
    if (i >= p.total) {
        return;
    }
    let ix = i % p.w;
    let iy = (i / p.w) % p.h;
    let pl = i / (p.w * p.h);
    let y_hi = (iy + p.ph) / p.sh;
    let y_lo = select(0u, (iy + p.ph - p.kh + 1u + p.sh - 1u) / p.sh, iy + p.ph + 1u > p.kh);
    let x_hi = (ix + p.pw) / p.sw;
    let x_lo = select(0u, (ix + p.pw - p.kw + 1u + p.sw - 1u) / p.sw, ix + p.pw + 1u > p.kw);
    var acc = 0.0;
    for (var oy = y_lo; oy <= min(y_hi, p.oh - 1u); oy++) {
        for (var ox = x_lo; ox <= min(x_hi, p.ow - 1u); ox++) {
            acc += fi[(pl * p.oh + oy) * p.ow + ox];
        }
    }
    fo[i] = acc / f32(p.kh * p.kw);
}
