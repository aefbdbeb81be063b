// 2-D convolution (cross-correlation, as in PyTorch) with stride, padding, dilation and groups, and
// its two backward kernels. One invocation computes one output element, summing in a fixed order.
//   x: [N, C_in, H, W], w: [C_out, C_in / groups, KH, KW], y: [N, C_out, OH, OW]
//   OH = (H + 2 ph - dh (KH - 1) - 1) / sh + 1, likewise OW.

struct Params {
    n: u32,
    c_in: u32,
    h: u32,
    w: u32,
    c_out: u32,
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
    groups: u32,
    total: u32,   // elements of the output of this entry point
    _p0: u32,
    _p1: u32,
    _p2: u32,
}

@group(0) @binding(0) var<storage, read> p: Params;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read> in0: array<f32>;
@group(0) @binding(3) var<storage, read> in1: array<f32>;

fn linear(wid: vec3<u32>, nwg: vec3<u32>, li: u32) -> u32 {
    return (wid.x + nwg.x * (wid.y + nwg.y * wid.z)) * 256u + li;
}

// in0 = x [N, C_in, H, W], in1 = w [C_out, C_in/g, KH, KW], out = y [N, C_out, OH, OW]
@compute @workgroup_size(256)
fn forward(
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
    let co = (i / (p.ow * p.oh)) % p.c_out;
    let b = i / (p.ow * p.oh * p.c_out);
    let cpg = p.c_in / p.groups;
    let ci0 = (co / (p.c_out / p.groups)) * cpg;
    var acc = 0.0;
    for (var c = 0u; c < cpg; c++) {
        let x_base = (b * p.c_in + ci0 + c) * p.h * p.w;
        let w_base = (co * cpg + c) * p.kh * p.kw;
        for (var ky = 0u; ky < p.kh; ky++) {
            let iy = i32(oy * p.sh + ky * p.dh) - i32(p.ph);
            if (iy < 0 || iy >= i32(p.h)) {
                continue;
            }
            for (var kx = 0u; kx < p.kw; kx++) {
                let ix = i32(ox * p.sw + kx * p.dw) - i32(p.pw);
                if (ix < 0 || ix >= i32(p.w)) {
                    continue;
                }
                acc += in0[x_base + u32(iy) * p.w + u32(ix)] * in1[w_base + ky * p.kw + kx];
            }
        }
    }
    out[i] = acc;
}

// in0 = dy [N, C_out, OH, OW], in1 = w [C_out, C_in/g, KH, KW], out = dx [N, C_in, H, W]
@compute @workgroup_size(256)
fn backward_input(
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
    let cpg = p.c_in / p.groups;
    let opg = p.c_out / p.groups;
    let g = ci / cpg;
    let c = ci % cpg;
    var acc = 0.0;
    for (var o = 0u; o < opg; o++) {
        let co = g * opg + o;
        let dy_base = (b * p.c_out + co) * p.oh * p.ow;
        let w_base = (co * cpg + c) * p.kh * p.kw;
        for (var ky = 0u; ky < p.kh; ky++) {
            // oy * sh = iy + ph - ky * dh must be a non-negative multiple of sh below OH * sh.
            let ty = i32(iy + p.ph) - i32(ky * p.dh);
            if (ty < 0 || u32(ty) % p.sh != 0u) {
                continue;
            }
            let oy = u32(ty) / p.sh;
            if (oy >= p.oh) {
                continue;
            }
            for (var kx = 0u; kx < p.kw; kx++) {
                let tx = i32(ix + p.pw) - i32(kx * p.dw);
                if (tx < 0 || u32(tx) % p.sw != 0u) {
                    continue;
                }
                let ox = u32(tx) / p.sw;
                if (ox >= p.ow) {
                    continue;
                }
                acc += in0[dy_base + oy * p.ow + ox] * in1[w_base + ky * p.kw + kx];
            }
        }
    }
    out[i] = acc;
}

// in0 = dy [N, C_out, OH, OW], in1 = x [N, C_in, H, W], out = dw [C_out, C_in/g, KH, KW]
@compute @workgroup_size(256)
fn backward_weight(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let i = linear(wid, nwg, li);
    if (i >= p.total) {
        return;
    }
    let cpg = p.c_in / p.groups;
    let kx = i % p.kw;
    let ky = (i / p.kw) % p.kh;
    let c = (i / (p.kw * p.kh)) % cpg;
    let co = i / (p.kw * p.kh * cpg);
    let ci = (co / (p.c_out / p.groups)) * cpg + c;
    var acc = 0.0;
    for (var b = 0u; b < p.n; b++) {
        let dy_base = (b * p.c_out + co) * p.oh * p.ow;
        let x_base = (b * p.c_in + ci) * p.h * p.w;
        for (var oy = 0u; oy < p.oh; oy++) {
            let iy = i32(oy * p.sh + ky * p.dh) - i32(p.ph);
            if (iy < 0 || iy >= i32(p.h)) {
                continue;
            }
            for (var ox = 0u; ox < p.ow; ox++) {
                let ix = i32(ox * p.sw + kx * p.dw) - i32(p.pw);
                if (ix < 0 || ix >= i32(p.w)) {
                    continue;
                }
                acc += in0[dy_base + oy * p.ow + ox] * in1[x_base + u32(iy) * p.w + u32(ix)];
            }
        }
    }
    out[i] = acc;
}
