// The data movement of 2-D convolution by explicit GEMM: im2col unfolds the input windows into a
// matrix that the matmul kernel multiplies with the weights, and col2im folds a gradient of that
// matrix back onto the input (each input element gathers its windows in a fixed order, so no atomics
// are needed and the result is deterministic). Shapes, with G groups of CG = C_in / G channels,
// KG = CG KH KW rows per group, padded with zero rows to KP >= KG, and P = OH OW:
//   x: [N, C_in, H, W]   col: [N, G, KP, P] with rows ordered (c, ky, kx) within a group
//   OH = (H + 2 ph - dh (KH - 1) - 1) / sh + 1, likewise OW.
// The geometry is override constants: a pipeline is built per convolution shape, and every division
// below is by a constant, which compilers turn into multiplies (on lavapipe a division by a runtime
// value is scalarised, and each read of a storage-buffer parameter is a loop over the SIMD lanes).
// KP rounds KG up to a multiple of 4 where the matmul's vec4 kernels need it (see conv.rs).

override C_IN: u32;
override CG: u32;
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
override DH: u32;
override DW: u32;
override KP: u32;

struct Params {
    n: u32,       // samples in this call
    _p0: u32,
    _p1: u32,
    _p2: u32,
}

@group(0) @binding(0) var<storage, read> p: Params;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read> in0: array<f32>;
// col seen as vec4, for im2col4.
@group(0) @binding(1) var<storage, read_write> out4: array<vec4<f32>>;

fn linear(wid: vec3<u32>, nwg: vec3<u32>, li: u32) -> u32 {
    return (wid.x + nwg.x * (wid.y + nwg.y * wid.z)) * 256u + li;
}

// in0 = x [N, C_in, H, W] -> out = col [N, G, KP, P] (0 where the window is in padding, and in the
// KP - KG pad rows). One invocation per (sample, channel, output pixel) writes that pixel's KH KW
// rows; the last channel of each group also zeroes the pad rows.
@compute @workgroup_size(256)
fn im2col(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let i = linear(wid, nwg, li);
    let np = OH * OW;
    if (i >= p.n * C_IN * np) {
        return;
    }
    let pix = i % np;
    let bc = i / np;   // sample * C_IN + channel
    let cl = bc % CG;  // channel within its group
    let bg = bc / CG;  // sample * G + group
    let oy = pix / OW;
    let ox = pix % OW;
    let row0 = bg * KP + cl * KH * KW;
    for (var ky = 0u; ky < KH; ky++) {
        let iy = i32(oy * SH + ky * DH) - i32(PH);
        let y_in = iy >= 0 && iy < i32(H);
        for (var kx = 0u; kx < KW; kx++) {
            let ix = i32(ox * SW + kx * DW) - i32(PW);
            var v = 0.0;
            if (y_in && ix >= 0 && ix < i32(W)) {
                v = in0[(bc * H + u32(iy)) * W + u32(ix)];
            }
            out[(row0 + ky * KW + kx) * np + pix] = v;
        }
    }
    if (cl == CG - 1u) {
        for (var r = CG * KH * KW; r < KP; r++) {
            out[(bg * KP + r) * np + pix] = 0.0;
        }
    }
}

// im2col with four neighbouring output pixels per invocation, for P a multiple of 4: each of the
// KH KW rows gets one vec4 store instead of four stores. in0 = x [N, C_in, H, W] -> out4 = col
// [N, G, KP, P / 4] of vec4.
@compute @workgroup_size(256)
fn im2col4(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let i = linear(wid, nwg, li);
    let np = OH * OW;
    let nq = np / 4u;
    if (i >= p.n * C_IN * nq) {
        return;
    }
    let pix0 = (i % nq) * 4u;
    let bc = i / nq;
    let cl = bc % CG;
    let bg = bc / CG;
    let pix = vec4<u32>(pix0) + vec4<u32>(0u, 1u, 2u, 3u);
    let oy = vec4<i32>(pix / OW);
    let ox = vec4<i32>(pix % OW);
    let row0 = bg * KP + cl * KH * KW;
    let base = i32(bc * H * W);
    for (var ky = 0u; ky < KH; ky++) {
        let iy = oy * i32(SH) + i32(ky * DH) - i32(PH);
        let y_in = (iy >= vec4<i32>(0)) & (iy < vec4<i32>(i32(H)));
        for (var kx = 0u; kx < KW; kx++) {
            let ix = ox * i32(SW) + i32(kx * DW) - i32(PW);
            let inside = y_in & (ix >= vec4<i32>(0)) & (ix < vec4<i32>(i32(W)));
            // Reads at index 0 stand in for the padding, and are replaced by zeros.
            let at = vec4<u32>(select(vec4<i32>(0), vec4<i32>(base) + iy * i32(W) + ix, inside));
            let v = vec4<f32>(in0[at.x], in0[at.y], in0[at.z], in0[at.w]);
            out4[((row0 + ky * KW + kx) * np + pix0) / 4u] = select(vec4<f32>(), v, inside);
        }
    }
    if (cl == CG - 1u) {
        for (var r = CG * KH * KW; r < KP; r++) {
            out4[((bg * KP + r) * np + pix0) / 4u] = vec4<f32>();
        }
    }
}

// in0 = dcol [N, G, KP, P] -> out = dx [N, C_in, H, W]: each input element sums the window
// positions that read it (the pad rows are never read).
@compute @workgroup_size(256)
fn col2im(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let i = linear(wid, nwg, li);
    if (i >= p.n * C_IN * H * W) {
        return;
    }
    let ix = i % W;
    let iy = (i / W) % H;
    let bc = i / (W * H);
    let cl = bc % CG;
    let bg = bc / CG;
    let np = OH * OW;
    let row0 = bg * KP + cl * KH * KW;
    var acc = 0.0;
    for (var ky = 0u; ky < KH; ky++) {
        // oy * sh = iy + ph - ky * dh must be a non-negative multiple of sh below OH * sh.
        let ty = i32(iy + PH) - i32(ky * DH);
        if (ty < 0 || u32(ty) % SH != 0u || u32(ty) / SH >= OH) {
            continue;
        }
        let oy = u32(ty) / SH;
        for (var kx = 0u; kx < KW; kx++) {
            let tx = i32(ix + PW) - i32(kx * DW);
            if (tx < 0 || u32(tx) % SW != 0u || u32(tx) / SW >= OW) {
                continue;
            }
            let ox = u32(tx) / SW;
            acc += in0[(row0 + ky * KW + kx) * np + oy * OW + ox];
        }
    }
    out[i] = acc;
}
