// The data movement of 2-D convolution by explicit GEMM: im2col unfolds the input windows into a
// matrix that the matmul kernel multiplies with the weights, and col2im folds a gradient of that
// matrix back onto the input (each input element gathers its windows in a fixed order, so no atomics
// are needed and the result is deterministic). Shapes, with K = C_in KH KW and P = OH OW:
//   x: [N, C_in, H, W]   col: [N, K, P] with rows ordered (c_in, ky, kx)
//   OH = (H + 2 ph - dh (KH - 1) - 1) / sh + 1, likewise OW.

struct Params {
    n: u32,
    c_in: u32,
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
    dh: u32,
    dw: u32,
    total: u32,   // elements of the output of this entry point
}

@group(0) @binding(0) var<storage, read> p: Params;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read> in0: array<f32>;

fn linear(wid: vec3<u32>, nwg: vec3<u32>, li: u32) -> u32 {
    return (wid.x + nwg.x * (wid.y + nwg.y * wid.z)) * 256u + li;
}

// in0 = x [N, C_in, H, W] -> out = col [N, C_in KH KW, OH OW] (0 where the window is in padding)
@compute @workgroup_size(256)
fn im2col(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let i = linear(wid, nwg, li);
    if (i >= p.total) {
        return;
    }
    let np = p.oh * p.ow;
    let kk = p.c_in * p.kh * p.kw;
    let pix = i % np;
    let k = (i / np) % kk;
    let b = i / (np * kk);
    let kx = k % p.kw;
    let ky = (k / p.kw) % p.kh;
    let ci = k / (p.kw * p.kh);
    let iy = i32((pix / p.ow) * p.sh + ky * p.dh) - i32(p.ph);
    let ix = i32((pix % p.ow) * p.sw + kx * p.dw) - i32(p.pw);
    var v = 0.0;
    if (iy >= 0 && iy < i32(p.h) && ix >= 0 && ix < i32(p.w)) {
        v = in0[((b * p.c_in + ci) * p.h + u32(iy)) * p.w + u32(ix)];
    }
    out[i] = v;
}

// in0 = dcol [N, C_in KH KW, OH OW] -> out = dx [N, C_in, H, W]: each input element sums the
// window positions that read it.
@compute @workgroup_size(256)
fn col2im(
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
    let ci = (i / (p.w * p.h)) % p.c_in;
    let b = i / (p.w * p.h * p.c_in);
    let np = p.oh * p.ow;
    let kk = p.c_in * p.kh * p.kw;
    var acc = 0.0;
    for (var ky = 0u; ky < p.kh; ky++) {
        // oy * sh = iy + ph - ky * dh must be a non-negative multiple of sh below OH * sh.
        let ty = i32(iy + p.ph) - i32(ky * p.dh);
        if (ty < 0 || u32(ty) % p.sh != 0u || u32(ty) / p.sh >= p.oh) {
            continue;
        }
        let oy = u32(ty) / p.sh;
        for (var kx = 0u; kx < p.kw; kx++) {
            let tx = i32(ix + p.pw) - i32(kx * p.dw);
            if (tx < 0 || u32(tx) % p.sw != 0u || u32(tx) / p.sw >= p.ow) {
                continue;
            }
            let ox = u32(tx) / p.sw;
            let k = (ci * p.kh + ky) * p.kw + kx;
            acc += in0[(b * kk + k) * np + oy * p.ow + ox];
        }
    }
    out[i] = acc;
}
