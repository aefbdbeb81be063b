// Batched matmul with broadcast batch dims and either operand transposed through its strides:
//   C[b, m, n] = sum_k A[b, m, k] * B[b, k, n]
// A[b, m, k] is read at a_off(b) + m * a_rs + k * a_cs (a transposed operand just swaps a_rs, a_cs),
// likewise B. C is contiguous [batch, M, N].
// No workgroup memory: on lavapipe (and other CPU adapters) barriers are costly and invocations are
// SIMD lanes that load per lane (see shared/KERNELS.md). Each invocation keeps an R x J block of C
// in registers, rows lid.y + 8 i and columns lid.x + 8 j, so per step of k it loads R + J values
// for R J multiply-adds; that ratio is what sets the speed on CPU adapters. The entry points differ
// only in R x J (main_RxJ; a workgroup of 8x8 invocations covers an 8R x 8J tile) and the launcher
// picks one per adapter and shape. They are unrolled by hand (generated, then kept as plain WGSL):
// local arrays indexed in loops end up in memory on CPU adapters.

struct Params {
    m: u32,
    n: u32,
    k: u32,
    batch: u32,
    a_rs: u32,
    a_cs: u32,
    b_rs: u32,
    b_cs: u32,
    tiles_m: u32,
    tiles_n: u32,
    nbd: u32,          // number of batch dims
    _sum_batch: u32,   // read by matmul_subgroup.wgsl only; always 0 for these entry points
    _fold: u32,        // likewise
    _act_a: f32,       // likewise
    _act_b: f32,
    bshape: array<u32, 8>,
    a_bs: array<u32, 8>,   // batch strides of A (0 where broadcast)
    b_bs: array<u32, 8>,
}

@group(0) @binding(0) var<storage, read> p: Params;
@group(0) @binding(1) var<storage, read_write> c: array<f32>;
@group(0) @binding(2) var<storage, read> a: array<f32>;
@group(0) @binding(3) var<storage, read> b: array<f32>;

// a: [batch.., M, K] (strided), b: [batch.., K, N] (strided), c: [batch, M, N]; 8x8 per invocation
@compute @workgroup_size(8, 8)
fn main_8x8(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
) {
    let g = wid.x + nwg.x * (wid.y + nwg.y * wid.z);
    let per_batch = p.tiles_m * p.tiles_n;
    let bi = g / per_batch;
    if (bi >= p.batch) {
        return;
    }
    let t = g % per_batch;
    let row0 = (t / p.tiles_n) * 64u + lid.y;
    let col0 = (t % p.tiles_n) * 64u + lid.x;
    let off = batch_offsets(bi);

    let ar0 = off.x + min(row0 + 0u, p.m - 1u) * p.a_rs;
    let ar1 = off.x + min(row0 + 8u, p.m - 1u) * p.a_rs;
    let ar2 = off.x + min(row0 + 16u, p.m - 1u) * p.a_rs;
    let ar3 = off.x + min(row0 + 24u, p.m - 1u) * p.a_rs;
    let ar4 = off.x + min(row0 + 32u, p.m - 1u) * p.a_rs;
    let ar5 = off.x + min(row0 + 40u, p.m - 1u) * p.a_rs;
    let ar6 = off.x + min(row0 + 48u, p.m - 1u) * p.a_rs;
    let ar7 = off.x + min(row0 + 56u, p.m - 1u) * p.a_rs;
    let bc0 = off.y + min(col0 + 0u, p.n - 1u) * p.b_cs;
    let bc1 = off.y + min(col0 + 8u, p.n - 1u) * p.b_cs;
    let bc2 = off.y + min(col0 + 16u, p.n - 1u) * p.b_cs;
    let bc3 = off.y + min(col0 + 24u, p.n - 1u) * p.b_cs;
    let bc4 = off.y + min(col0 + 32u, p.n - 1u) * p.b_cs;
    let bc5 = off.y + min(col0 + 40u, p.n - 1u) * p.b_cs;
    let bc6 = off.y + min(col0 + 48u, p.n - 1u) * p.b_cs;
    let bc7 = off.y + min(col0 + 56u, p.n - 1u) * p.b_cs;
    var acc0_0 = vec4<f32>();
    var acc0_1 = vec4<f32>();
    var acc1_0 = vec4<f32>();
    var acc1_1 = vec4<f32>();
    var acc2_0 = vec4<f32>();
    var acc2_1 = vec4<f32>();
    var acc3_0 = vec4<f32>();
    var acc3_1 = vec4<f32>();
    var acc4_0 = vec4<f32>();
    var acc4_1 = vec4<f32>();
    var acc5_0 = vec4<f32>();
    var acc5_1 = vec4<f32>();
    var acc6_0 = vec4<f32>();
    var acc6_1 = vec4<f32>();
    var acc7_0 = vec4<f32>();
    var acc7_1 = vec4<f32>();
    for (var kk = 0u; kk < p.k; kk++) {
        let ak = kk * p.a_cs;
        let bk = kk * p.b_rs;
        let b0 = vec4<f32>(b[bc0 + bk], b[bc1 + bk], b[bc2 + bk], b[bc3 + bk]);
        let b1 = vec4<f32>(b[bc4 + bk], b[bc5 + bk], b[bc6 + bk], b[bc7 + bk]);
        let a0 = a[ar0 + ak];
        acc0_0 += a0 * b0;
        acc0_1 += a0 * b1;
        let a1 = a[ar1 + ak];
        acc1_0 += a1 * b0;
        acc1_1 += a1 * b1;
        let a2 = a[ar2 + ak];
        acc2_0 += a2 * b0;
        acc2_1 += a2 * b1;
        let a3 = a[ar3 + ak];
        acc3_0 += a3 * b0;
        acc3_1 += a3 * b1;
        let a4 = a[ar4 + ak];
        acc4_0 += a4 * b0;
        acc4_1 += a4 * b1;
        let a5 = a[ar5 + ak];
        acc5_0 += a5 * b0;
        acc5_1 += a5 * b1;
        let a6 = a[ar6 + ak];
        acc6_0 += a6 * b0;
        acc6_1 += a6 * b1;
        let a7 = a[ar7 + ak];
        acc7_0 += a7 * b0;
        acc7_1 += a7 * b1;
    }
    let c_off = bi * p.m * p.n;
    store4(c_off, row0 + 0u, col0 + 0u, acc0_0);
    store4(c_off, row0 + 0u, col0 + 32u, acc0_1);
    store4(c_off, row0 + 8u, col0 + 0u, acc1_0);
    store4(c_off, row0 + 8u, col0 + 32u, acc1_1);
    store4(c_off, row0 + 16u, col0 + 0u, acc2_0);
    store4(c_off, row0 + 16u, col0 + 32u, acc2_1);
    store4(c_off, row0 + 24u, col0 + 0u, acc3_0);
    store4(c_off, row0 + 24u, col0 + 32u, acc3_1);
    store4(c_off, row0 + 32u, col0 + 0u, acc4_0);
    store4(c_off, row0 + 32u, col0 + 32u, acc4_1);
    store4(c_off, row0 + 40u, col0 + 0u, acc5_0);
    store4(c_off, row0 + 40u, col0 + 32u, acc5_1);
    store4(c_off, row0 + 48u, col0 + 0u, acc6_0);
    store4(c_off, row0 + 48u, col0 + 32u, acc6_1);
    store4(c_off, row0 + 56u, col0 + 0u, acc7_0);
    store4(c_off, row0 + 56u, col0 + 32u, acc7_1);
}

// a: [batch.., M, K] (strided), b: [batch.., K, N] (strided), c: [batch, M, N]; 16x16 per invocation
@compute @workgroup_size(8, 8)
fn main_16x16(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
) {
    let g = wid.x + nwg.x * (wid.y + nwg.y * wid.z);
    let per_batch = p.tiles_m * p.tiles_n;
    let bi = g / per_batch;
    if (bi >= p.batch) {
        return;
    }
    let t = g % per_batch;
    let row0 = (t / p.tiles_n) * 128u + lid.y;
    let col0 = (t % p.tiles_n) * 128u + lid.x;
    let off = batch_offsets(bi);

    let ar0 = off.x + min(row0 + 0u, p.m - 1u) * p.a_rs;
    let ar1 = off.x + min(row0 + 8u, p.m - 1u) * p.a_rs;
    let ar2 = off.x + min(row0 + 16u, p.m - 1u) * p.a_rs;
    let ar3 = off.x + min(row0 + 24u, p.m - 1u) * p.a_rs;
    let ar4 = off.x + min(row0 + 32u, p.m - 1u) * p.a_rs;
    let ar5 = off.x + min(row0 + 40u, p.m - 1u) * p.a_rs;
    let ar6 = off.x + min(row0 + 48u, p.m - 1u) * p.a_rs;
    let ar7 = off.x + min(row0 + 56u, p.m - 1u) * p.a_rs;
    let ar8 = off.x + min(row0 + 64u, p.m - 1u) * p.a_rs;
    let ar9 = off.x + min(row0 + 72u, p.m - 1u) * p.a_rs;
    let ar10 = off.x + min(row0 + 80u, p.m - 1u) * p.a_rs;
    let ar11 = off.x + min(row0 + 88u, p.m - 1u) * p.a_rs;
    let ar12 = off.x + min(row0 + 96u, p.m - 1u) * p.a_rs;
    let ar13 = off.x + min(row0 + 104u, p.m - 1u) * p.a_rs;
    let ar14 = off.x + min(row0 + 112u, p.m - 1u) * p.a_rs;
    let ar15 = off.x + min(row0 + 120u, p.m - 1u) * p.a_rs;
    let bc0 = off.y + min(col0 + 0u, p.n - 1u) * p.b_cs;
    let bc1 = off.y + min(col0 + 8u, p.n - 1u) * p.b_cs;
    let bc2 = off.y + min(col0 + 16u, p.n - 1u) * p.b_cs;
    let bc3 = off.y + min(col0 + 24u, p.n - 1u) * p.b_cs;
    let bc4 = off.y + min(col0 + 32u, p.n - 1u) * p.b_cs;
    let bc5 = off.y + min(col0 + 40u, p.n - 1u) * p.b_cs;
    let bc6 = off.y + min(col0 + 48u, p.n - 1u) * p.b_cs;
    let bc7 = off.y + min(col0 + 56u, p.n - 1u) * p.b_cs;
    let bc8 = off.y + min(col0 + 64u, p.n - 1u) * p.b_cs;
    let bc9 = off.y + min(col0 + 72u, p.n - 1u) * p.b_cs;
    let bc10 = off.y + min(col0 + 80u, p.n - 1u) * p.b_cs;
    let bc11 = off.y + min(col0 + 88u, p.n - 1u) * p.b_cs;
    let bc12 = off.y + min(col0 + 96u, p.n - 1u) * p.b_cs;
    let bc13 = off.y + min(col0 + 104u, p.n - 1u) * p.b_cs;
    let bc14 = off.y + min(col0 + 112u, p.n - 1u) * p.b_cs;
    let bc15 = off.y + min(col0 + 120u, p.n - 1u) * p.b_cs;
    var acc0_0 = vec4<f32>();
    var acc0_1 = vec4<f32>();
    var acc0_2 = vec4<f32>();
    var acc0_3 = vec4<f32>();
    var acc1_0 = vec4<f32>();
    var acc1_1 = vec4<f32>();
    var acc1_2 = vec4<f32>();
    var acc1_3 = vec4<f32>();
    var acc2_0 = vec4<f32>();
    var acc2_1 = vec4<f32>();
    var acc2_2 = vec4<f32>();
    var acc2_3 = vec4<f32>();
    var acc3_0 = vec4<f32>();
    var acc3_1 = vec4<f32>();
    var acc3_2 = vec4<f32>();
    var acc3_3 = vec4<f32>();
    var acc4_0 = vec4<f32>();
    var acc4_1 = vec4<f32>();
    var acc4_2 = vec4<f32>();
    var acc4_3 = vec4<f32>();
    var acc5_0 = vec4<f32>();
    var acc5_1 = vec4<f32>();
    var acc5_2 = vec4<f32>();
    var acc5_3 = vec4<f32>();
    var acc6_0 = vec4<f32>();
    var acc6_1 = vec4<f32>();
    var acc6_2 = vec4<f32>();
    var acc6_3 = vec4<f32>();
    var acc7_0 = vec4<f32>();
    var acc7_1 = vec4<f32>();
    var acc7_2 = vec4<f32>();
    var acc7_3 = vec4<f32>();
    var acc8_0 = vec4<f32>();
    var acc8_1 = vec4<f32>();
    var acc8_2 = vec4<f32>();
    var acc8_3 = vec4<f32>();
    var acc9_0 = vec4<f32>();
    var acc9_1 = vec4<f32>();
    var acc9_2 = vec4<f32>();
    var acc9_3 = vec4<f32>();
    var acc10_0 = vec4<f32>();
    var acc10_1 = vec4<f32>();
    var acc10_2 = vec4<f32>();
    var acc10_3 = vec4<f32>();
    var acc11_0 = vec4<f32>();
    var acc11_1 = vec4<f32>();
    var acc11_2 = vec4<f32>();
    var acc11_3 = vec4<f32>();
    var acc12_0 = vec4<f32>();
    var acc12_1 = vec4<f32>();
    var acc12_2 = vec4<f32>();
    var acc12_3 = vec4<f32>();
    var acc13_0 = vec4<f32>();
    var acc13_1 = vec4<f32>();
    var acc13_2 = vec4<f32>();
    var acc13_3 = vec4<f32>();
    var acc14_0 = vec4<f32>();
    var acc14_1 = vec4<f32>();
    var acc14_2 = vec4<f32>();
    var acc14_3 = vec4<f32>();
    var acc15_0 = vec4<f32>();
    var acc15_1 = vec4<f32>();
    var acc15_2 = vec4<f32>();
    var acc15_3 = vec4<f32>();
    for (var kk = 0u; kk < p.k; kk++) {
        let ak = kk * p.a_cs;
        let bk = kk * p.b_rs;
        let b0 = vec4<f32>(b[bc0 + bk], b[bc1 + bk], b[bc2 + bk], b[bc3 + bk]);
        let b1 = vec4<f32>(b[bc4 + bk], b[bc5 + bk], b[bc6 + bk], b[bc7 + bk]);
        let b2 = vec4<f32>(b[bc8 + bk], b[bc9 + bk], b[bc10 + bk], b[bc11 + bk]);
        let b3 = vec4<f32>(b[bc12 + bk], b[bc13 + bk], b[bc14 + bk], b[bc15 + bk]);
        let a0 = a[ar0 + ak];
        acc0_0 += a0 * b0;
        acc0_1 += a0 * b1;
        acc0_2 += a0 * b2;
        acc0_3 += a0 * b3;
        let a1 = a[ar1 + ak];
        acc1_0 += a1 * b0;
        acc1_1 += a1 * b1;
        acc1_2 += a1 * b2;
        acc1_3 += a1 * b3;
        let a2 = a[ar2 + ak];
        acc2_0 += a2 * b0;
        acc2_1 += a2 * b1;
        acc2_2 += a2 * b2;
        acc2_3 += a2 * b3;
        let a3 = a[ar3 + ak];
        acc3_0 += a3 * b0;
        acc3_1 += a3 * b1;
        acc3_2 += a3 * b2;
        acc3_3 += a3 * b3;
        let a4 = a[ar4 + ak];
        acc4_0 += a4 * b0;
        acc4_1 += a4 * b1;
        acc4_2 += a4 * b2;
        acc4_3 += a4 * b3;
        let a5 = a[ar5 + ak];
        acc5_0 += a5 * b0;
        acc5_1 += a5 * b1;
        acc5_2 += a5 * b2;
        acc5_3 += a5 * b3;
        let a6 = a[ar6 + ak];
        acc6_0 += a6 * b0;
        acc6_1 += a6 * b1;
        acc6_2 += a6 * b2;
        acc6_3 += a6 * b3;
        let a7 = a[ar7 + ak];
        acc7_0 += a7 * b0;
        acc7_1 += a7 * b1;
        acc7_2 += a7 * b2;
        acc7_3 += a7 * b3;
        let a8 = a[ar8 + ak];
        acc8_0 += a8 * b0;
        acc8_1 += a8 * b1;
        acc8_2 += a8 * b2;
        acc8_3 += a8 * b3;
        let a9 = a[ar9 + ak];
        acc9_0 += a9 * b0;
        acc9_1 += a9 * b1;
        acc9_2 += a9 * b2;
        acc9_3 += a9 * b3;
        let a10 = a[ar10 + ak];
        acc10_0 += a10 * b0;
        acc10_1 += a10 * b1;
        acc10_2 += a10 * b2;
        acc10_3 += a10 * b3;
        let a11 = a[ar11 + ak];
        acc11_0 += a11 * b0;
        acc11_1 += a11 * b1;
        acc11_2 += a11 * b2;
        acc11_3 += a11 * b3;
        let a12 = a[ar12 + ak];
        acc12_0 += a12 * b0;
        acc12_1 += a12 * b1;
        acc12_2 += a12 * b2;
        acc12_3 += a12 * b3;
        let a13 = a[ar13 + ak];
        acc13_0 += a13 * b0;
        acc13_1 += a13 * b1;
        acc13_2 += a13 * b2;
        acc13_3 += a13 * b3;
        let a14 = a[ar14 + ak];
        acc14_0 += a14 * b0;
        acc14_1 += a14 * b1;
        acc14_2 += a14 * b2;
        acc14_3 += a14 * b3;
        let a15 = a[ar15 + ak];
        acc15_0 += a15 * b0;
        acc15_1 += a15 * b1;
        acc15_2 += a15 * b2;
        acc15_3 += a15 * b3;
    }
    let c_off = bi * p.m * p.n;
    store4(c_off, row0 + 0u, col0 + 0u, acc0_0);
    store4(c_off, row0 + 0u, col0 + 32u, acc0_1);
    store4(c_off, row0 + 0u, col0 + 64u, acc0_2);
    store4(c_off, row0 + 0u, col0 + 96u, acc0_3);
    store4(c_off, row0 + 8u, col0 + 0u, acc1_0);
    store4(c_off, row0 + 8u, col0 + 32u, acc1_1);
    store4(c_off, row0 + 8u, col0 + 64u, acc1_2);
    store4(c_off, row0 + 8u, col0 + 96u, acc1_3);
    store4(c_off, row0 + 16u, col0 + 0u, acc2_0);
    store4(c_off, row0 + 16u, col0 + 32u, acc2_1);
    store4(c_off, row0 + 16u, col0 + 64u, acc2_2);
    store4(c_off, row0 + 16u, col0 + 96u, acc2_3);
    store4(c_off, row0 + 24u, col0 + 0u, acc3_0);
    store4(c_off, row0 + 24u, col0 + 32u, acc3_1);
    store4(c_off, row0 + 24u, col0 + 64u, acc3_2);
    store4(c_off, row0 + 24u, col0 + 96u, acc3_3);
    store4(c_off, row0 + 32u, col0 + 0u, acc4_0);
    store4(c_off, row0 + 32u, col0 + 32u, acc4_1);
    store4(c_off, row0 + 32u, col0 + 64u, acc4_2);
    store4(c_off, row0 + 32u, col0 + 96u, acc4_3);
    store4(c_off, row0 + 40u, col0 + 0u, acc5_0);
    store4(c_off, row0 + 40u, col0 + 32u, acc5_1);
    store4(c_off, row0 + 40u, col0 + 64u, acc5_2);
    store4(c_off, row0 + 40u, col0 + 96u, acc5_3);
    store4(c_off, row0 + 48u, col0 + 0u, acc6_0);
    store4(c_off, row0 + 48u, col0 + 32u, acc6_1);
    store4(c_off, row0 + 48u, col0 + 64u, acc6_2);
    store4(c_off, row0 + 48u, col0 + 96u, acc6_3);
    store4(c_off, row0 + 56u, col0 + 0u, acc7_0);
    store4(c_off, row0 + 56u, col0 + 32u, acc7_1);
    store4(c_off, row0 + 56u, col0 + 64u, acc7_2);
    store4(c_off, row0 + 56u, col0 + 96u, acc7_3);
    store4(c_off, row0 + 64u, col0 + 0u, acc8_0);
    store4(c_off, row0 + 64u, col0 + 32u, acc8_1);
    store4(c_off, row0 + 64u, col0 + 64u, acc8_2);
    store4(c_off, row0 + 64u, col0 + 96u, acc8_3);
    store4(c_off, row0 + 72u, col0 + 0u, acc9_0);
    store4(c_off, row0 + 72u, col0 + 32u, acc9_1);
    store4(c_off, row0 + 72u, col0 + 64u, acc9_2);
    store4(c_off, row0 + 72u, col0 + 96u, acc9_3);
    store4(c_off, row0 + 80u, col0 + 0u, acc10_0);
    store4(c_off, row0 + 80u, col0 + 32u, acc10_1);
    store4(c_off, row0 + 80u, col0 + 64u, acc10_2);
    store4(c_off, row0 + 80u, col0 + 96u, acc10_3);
    store4(c_off, row0 + 88u, col0 + 0u, acc11_0);
    store4(c_off, row0 + 88u, col0 + 32u, acc11_1);
    store4(c_off, row0 + 88u, col0 + 64u, acc11_2);
    store4(c_off, row0 + 88u, col0 + 96u, acc11_3);
    store4(c_off, row0 + 96u, col0 + 0u, acc12_0);
    store4(c_off, row0 + 96u, col0 + 32u, acc12_1);
    store4(c_off, row0 + 96u, col0 + 64u, acc12_2);
    store4(c_off, row0 + 96u, col0 + 96u, acc12_3);
    store4(c_off, row0 + 104u, col0 + 0u, acc13_0);
    store4(c_off, row0 + 104u, col0 + 32u, acc13_1);
    store4(c_off, row0 + 104u, col0 + 64u, acc13_2);
    store4(c_off, row0 + 104u, col0 + 96u, acc13_3);
    store4(c_off, row0 + 112u, col0 + 0u, acc14_0);
    store4(c_off, row0 + 112u, col0 + 32u, acc14_1);
    store4(c_off, row0 + 112u, col0 + 64u, acc14_2);
    store4(c_off, row0 + 112u, col0 + 96u, acc14_3);
    store4(c_off, row0 + 120u, col0 + 0u, acc15_0);
    store4(c_off, row0 + 120u, col0 + 32u, acc15_1);
    store4(c_off, row0 + 120u, col0 + 64u, acc15_2);
    store4(c_off, row0 + 120u, col0 + 96u, acc15_3);
}

// a: [batch.., M, K] (strided), b: [batch.., K, N] (strided), c: [batch, M, N]; 16x32 per invocation
@compute @workgroup_size(8, 8)
fn main_16x32(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
) {
    let g = wid.x + nwg.x * (wid.y + nwg.y * wid.z);
    let per_batch = p.tiles_m * p.tiles_n;
    let bi = g / per_batch;
    if (bi >= p.batch) {
        return;
    }
    let t = g % per_batch;
    let row0 = (t / p.tiles_n) * 128u + lid.y;
    let col0 = (t % p.tiles_n) * 256u + lid.x;
    let off = batch_offsets(bi);

    let ar0 = off.x + min(row0 + 0u, p.m - 1u) * p.a_rs;
    let ar1 = off.x + min(row0 + 8u, p.m - 1u) * p.a_rs;
    let ar2 = off.x + min(row0 + 16u, p.m - 1u) * p.a_rs;
    let ar3 = off.x + min(row0 + 24u, p.m - 1u) * p.a_rs;
    let ar4 = off.x + min(row0 + 32u, p.m - 1u) * p.a_rs;
    let ar5 = off.x + min(row0 + 40u, p.m - 1u) * p.a_rs;
    let ar6 = off.x + min(row0 + 48u, p.m - 1u) * p.a_rs;
    let ar7 = off.x + min(row0 + 56u, p.m - 1u) * p.a_rs;
    let ar8 = off.x + min(row0 + 64u, p.m - 1u) * p.a_rs;
    let ar9 = off.x + min(row0 + 72u, p.m - 1u) * p.a_rs;
    let ar10 = off.x + min(row0 + 80u, p.m - 1u) * p.a_rs;
    let ar11 = off.x + min(row0 + 88u, p.m - 1u) * p.a_rs;
    let ar12 = off.x + min(row0 + 96u, p.m - 1u) * p.a_rs;
    let ar13 = off.x + min(row0 + 104u, p.m - 1u) * p.a_rs;
    let ar14 = off.x + min(row0 + 112u, p.m - 1u) * p.a_rs;
    let ar15 = off.x + min(row0 + 120u, p.m - 1u) * p.a_rs;
    let bc0 = off.y + min(col0 + 0u, p.n - 1u) * p.b_cs;
    let bc1 = off.y + min(col0 + 8u, p.n - 1u) * p.b_cs;
    let bc2 = off.y + min(col0 + 16u, p.n - 1u) * p.b_cs;
    let bc3 = off.y + min(col0 + 24u, p.n - 1u) * p.b_cs;
    let bc4 = off.y + min(col0 + 32u, p.n - 1u) * p.b_cs;
    let bc5 = off.y + min(col0 + 40u, p.n - 1u) * p.b_cs;
    let bc6 = off.y + min(col0 + 48u, p.n - 1u) * p.b_cs;
    let bc7 = off.y + min(col0 + 56u, p.n - 1u) * p.b_cs;
    let bc8 = off.y + min(col0 + 64u, p.n - 1u) * p.b_cs;
    let bc9 = off.y + min(col0 + 72u, p.n - 1u) * p.b_cs;
    let bc10 = off.y + min(col0 + 80u, p.n - 1u) * p.b_cs;
    let bc11 = off.y + min(col0 + 88u, p.n - 1u) * p.b_cs;
    let bc12 = off.y + min(col0 + 96u, p.n - 1u) * p.b_cs;
    let bc13 = off.y + min(col0 + 104u, p.n - 1u) * p.b_cs;
    let bc14 = off.y + min(col0 + 112u, p.n - 1u) * p.b_cs;
    let bc15 = off.y + min(col0 + 120u, p.n - 1u) * p.b_cs;
    let bc16 = off.y + min(col0 + 128u, p.n - 1u) * p.b_cs;
    let bc17 = off.y + min(col0 + 136u, p.n - 1u) * p.b_cs;
    let bc18 = off.y + min(col0 + 144u, p.n - 1u) * p.b_cs;
    let bc19 = off.y + min(col0 + 152u, p.n - 1u) * p.b_cs;
    let bc20 = off.y + min(col0 + 160u, p.n - 1u) * p.b_cs;
    let bc21 = off.y + min(col0 + 168u, p.n - 1u) * p.b_cs;
    let bc22 = off.y + min(col0 + 176u, p.n - 1u) * p.b_cs;
    let bc23 = off.y + min(col0 + 184u, p.n - 1u) * p.b_cs;
    let bc24 = off.y + min(col0 + 192u, p.n - 1u) * p.b_cs;
    let bc25 = off.y + min(col0 + 200u, p.n - 1u) * p.b_cs;
    let bc26 = off.y + min(col0 + 208u, p.n - 1u) * p.b_cs;
    let bc27 = off.y + min(col0 + 216u, p.n - 1u) * p.b_cs;
    let bc28 = off.y + min(col0 + 224u, p.n - 1u) * p.b_cs;
    let bc29 = off.y + min(col0 + 232u, p.n - 1u) * p.b_cs;
    let bc30 = off.y + min(col0 + 240u, p.n - 1u) * p.b_cs;
    let bc31 = off.y + min(col0 + 248u, p.n - 1u) * p.b_cs;
    var acc0_0 = vec4<f32>();
    var acc0_1 = vec4<f32>();
    var acc0_2 = vec4<f32>();
    var acc0_3 = vec4<f32>();
    var acc0_4 = vec4<f32>();
    var acc0_5 = vec4<f32>();
    var acc0_6 = vec4<f32>();
    var acc0_7 = vec4<f32>();
    var acc1_0 = vec4<f32>();
    var acc1_1 = vec4<f32>();
    var acc1_2 = vec4<f32>();
    var acc1_3 = vec4<f32>();
    var acc1_4 = vec4<f32>();
    var acc1_5 = vec4<f32>();
    var acc1_6 = vec4<f32>();
    var acc1_7 = vec4<f32>();
    var acc2_0 = vec4<f32>();
    var acc2_1 = vec4<f32>();
    var acc2_2 = vec4<f32>();
    var acc2_3 = vec4<f32>();
    var acc2_4 = vec4<f32>();
    var acc2_5 = vec4<f32>();
    var acc2_6 = vec4<f32>();
    var acc2_7 = vec4<f32>();
    var acc3_0 = vec4<f32>();
    var acc3_1 = vec4<f32>();
    var acc3_2 = vec4<f32>();
    var acc3_3 = vec4<f32>();
    var acc3_4 = vec4<f32>();
    var acc3_5 = vec4<f32>();
    var acc3_6 = vec4<f32>();
    var acc3_7 = vec4<f32>();
    var acc4_0 = vec4<f32>();
    var acc4_1 = vec4<f32>();
    var acc4_2 = vec4<f32>();
    var acc4_3 = vec4<f32>();
    var acc4_4 = vec4<f32>();
    var acc4_5 = vec4<f32>();
    var acc4_6 = vec4<f32>();
    var acc4_7 = vec4<f32>();
    var acc5_0 = vec4<f32>();
    var acc5_1 = vec4<f32>();
    var acc5_2 = vec4<f32>();
    var acc5_3 = vec4<f32>();
    var acc5_4 = vec4<f32>();
    var acc5_5 = vec4<f32>();
    var acc5_6 = vec4<f32>();
    var acc5_7 = vec4<f32>();
    var acc6_0 = vec4<f32>();
    var acc6_1 = vec4<f32>();
    var acc6_2 = vec4<f32>();
    var acc6_3 = vec4<f32>();
    var acc6_4 = vec4<f32>();
    var acc6_5 = vec4<f32>();
    var acc6_6 = vec4<f32>();
    var acc6_7 = vec4<f32>();
    var acc7_0 = vec4<f32>();
    var acc7_1 = vec4<f32>();
    var acc7_2 = vec4<f32>();
    var acc7_3 = vec4<f32>();
    var acc7_4 = vec4<f32>();
    var acc7_5 = vec4<f32>();
    var acc7_6 = vec4<f32>();
    var acc7_7 = vec4<f32>();
    var acc8_0 = vec4<f32>();
    var acc8_1 = vec4<f32>();
    var acc8_2 = vec4<f32>();
    var acc8_3 = vec4<f32>();
    var acc8_4 = vec4<f32>();
    var acc8_5 = vec4<f32>();
    var acc8_6 = vec4<f32>();
    var acc8_7 = vec4<f32>();
    var acc9_0 = vec4<f32>();
    var acc9_1 = vec4<f32>();
    var acc9_2 = vec4<f32>();
    var acc9_3 = vec4<f32>();
    var acc9_4 = vec4<f32>();
    var acc9_5 = vec4<f32>();
    var acc9_6 = vec4<f32>();
    var acc9_7 = vec4<f32>();
    var acc10_0 = vec4<f32>();
    var acc10_1 = vec4<f32>();
    var acc10_2 = vec4<f32>();
    var acc10_3 = vec4<f32>();
    var acc10_4 = vec4<f32>();
    var acc10_5 = vec4<f32>();
    var acc10_6 = vec4<f32>();
    var acc10_7 = vec4<f32>();
    var acc11_0 = vec4<f32>();
    var acc11_1 = vec4<f32>();
    var acc11_2 = vec4<f32>();
    var acc11_3 = vec4<f32>();
    var acc11_4 = vec4<f32>();
    var acc11_5 = vec4<f32>();
    var acc11_6 = vec4<f32>();
    var acc11_7 = vec4<f32>();
    var acc12_0 = vec4<f32>();
    var acc12_1 = vec4<f32>();
    var acc12_2 = vec4<f32>();
    var acc12_3 = vec4<f32>();
    var acc12_4 = vec4<f32>();
    var acc12_5 = vec4<f32>();
    var acc12_6 = vec4<f32>();
    var acc12_7 = vec4<f32>();
    var acc13_0 = vec4<f32>();
    var acc13_1 = vec4<f32>();
    var acc13_2 = vec4<f32>();
    var acc13_3 = vec4<f32>();
    var acc13_4 = vec4<f32>();
    var acc13_5 = vec4<f32>();
    var acc13_6 = vec4<f32>();
    var acc13_7 = vec4<f32>();
    var acc14_0 = vec4<f32>();
    var acc14_1 = vec4<f32>();
    var acc14_2 = vec4<f32>();
    var acc14_3 = vec4<f32>();
    var acc14_4 = vec4<f32>();
    var acc14_5 = vec4<f32>();
    var acc14_6 = vec4<f32>();
    var acc14_7 = vec4<f32>();
    var acc15_0 = vec4<f32>();
    var acc15_1 = vec4<f32>();
    var acc15_2 = vec4<f32>();
    var acc15_3 = vec4<f32>();
    var acc15_4 = vec4<f32>();
    var acc15_5 = vec4<f32>();
    var acc15_6 = vec4<f32>();
    var acc15_7 = vec4<f32>();
    for (var kk = 0u; kk < p.k; kk++) {
        let ak = kk * p.a_cs;
        let bk = kk * p.b_rs;
        let b0 = vec4<f32>(b[bc0 + bk], b[bc1 + bk], b[bc2 + bk], b[bc3 + bk]);
        let b1 = vec4<f32>(b[bc4 + bk], b[bc5 + bk], b[bc6 + bk], b[bc7 + bk]);
        let b2 = vec4<f32>(b[bc8 + bk], b[bc9 + bk], b[bc10 + bk], b[bc11 + bk]);
        let b3 = vec4<f32>(b[bc12 + bk], b[bc13 + bk], b[bc14 + bk], b[bc15 + bk]);
        let b4 = vec4<f32>(b[bc16 + bk], b[bc17 + bk], b[bc18 + bk], b[bc19 + bk]);
        let b5 = vec4<f32>(b[bc20 + bk], b[bc21 + bk], b[bc22 + bk], b[bc23 + bk]);
        let b6 = vec4<f32>(b[bc24 + bk], b[bc25 + bk], b[bc26 + bk], b[bc27 + bk]);
        let b7 = vec4<f32>(b[bc28 + bk], b[bc29 + bk], b[bc30 + bk], b[bc31 + bk]);
        let a0 = a[ar0 + ak];
        acc0_0 += a0 * b0;
        acc0_1 += a0 * b1;
        acc0_2 += a0 * b2;
        acc0_3 += a0 * b3;
        acc0_4 += a0 * b4;
        acc0_5 += a0 * b5;
        acc0_6 += a0 * b6;
        acc0_7 += a0 * b7;
        let a1 = a[ar1 + ak];
        acc1_0 += a1 * b0;
        acc1_1 += a1 * b1;
        acc1_2 += a1 * b2;
        acc1_3 += a1 * b3;
        acc1_4 += a1 * b4;
        acc1_5 += a1 * b5;
        acc1_6 += a1 * b6;
        acc1_7 += a1 * b7;
        let a2 = a[ar2 + ak];
        acc2_0 += a2 * b0;
        acc2_1 += a2 * b1;
        acc2_2 += a2 * b2;
        acc2_3 += a2 * b3;
        acc2_4 += a2 * b4;
        acc2_5 += a2 * b5;
        acc2_6 += a2 * b6;
        acc2_7 += a2 * b7;
        let a3 = a[ar3 + ak];
        acc3_0 += a3 * b0;
        acc3_1 += a3 * b1;
        acc3_2 += a3 * b2;
        acc3_3 += a3 * b3;
        acc3_4 += a3 * b4;
        acc3_5 += a3 * b5;
        acc3_6 += a3 * b6;
        acc3_7 += a3 * b7;
        let a4 = a[ar4 + ak];
        acc4_0 += a4 * b0;
        acc4_1 += a4 * b1;
        acc4_2 += a4 * b2;
        acc4_3 += a4 * b3;
        acc4_4 += a4 * b4;
        acc4_5 += a4 * b5;
        acc4_6 += a4 * b6;
        acc4_7 += a4 * b7;
        let a5 = a[ar5 + ak];
        acc5_0 += a5 * b0;
        acc5_1 += a5 * b1;
        acc5_2 += a5 * b2;
        acc5_3 += a5 * b3;
        acc5_4 += a5 * b4;
        acc5_5 += a5 * b5;
        acc5_6 += a5 * b6;
        acc5_7 += a5 * b7;
        let a6 = a[ar6 + ak];
        acc6_0 += a6 * b0;
        acc6_1 += a6 * b1;
        acc6_2 += a6 * b2;
        acc6_3 += a6 * b3;
        acc6_4 += a6 * b4;
        acc6_5 += a6 * b5;
        acc6_6 += a6 * b6;
        acc6_7 += a6 * b7;
        let a7 = a[ar7 + ak];
        acc7_0 += a7 * b0;
        acc7_1 += a7 * b1;
        acc7_2 += a7 * b2;
        acc7_3 += a7 * b3;
        acc7_4 += a7 * b4;
        acc7_5 += a7 * b5;
        acc7_6 += a7 * b6;
        acc7_7 += a7 * b7;
        let a8 = a[ar8 + ak];
        acc8_0 += a8 * b0;
        acc8_1 += a8 * b1;
        acc8_2 += a8 * b2;
        acc8_3 += a8 * b3;
        acc8_4 += a8 * b4;
        acc8_5 += a8 * b5;
        acc8_6 += a8 * b6;
        acc8_7 += a8 * b7;
        let a9 = a[ar9 + ak];
        acc9_0 += a9 * b0;
        acc9_1 += a9 * b1;
        acc9_2 += a9 * b2;
        acc9_3 += a9 * b3;
        acc9_4 += a9 * b4;
        acc9_5 += a9 * b5;
        acc9_6 += a9 * b6;
        acc9_7 += a9 * b7;
        let a10 = a[ar10 + ak];
        acc10_0 += a10 * b0;
        acc10_1 += a10 * b1;
        acc10_2 += a10 * b2;
        acc10_3 += a10 * b3;
        acc10_4 += a10 * b4;
        acc10_5 += a10 * b5;
        acc10_6 += a10 * b6;
        acc10_7 += a10 * b7;
        let a11 = a[ar11 + ak];
        acc11_0 += a11 * b0;
        acc11_1 += a11 * b1;
        acc11_2 += a11 * b2;
        acc11_3 += a11 * b3;
        acc11_4 += a11 * b4;
        acc11_5 += a11 * b5;
        acc11_6 += a11 * b6;
        acc11_7 += a11 * b7;
        let a12 = a[ar12 + ak];
        acc12_0 += a12 * b0;
        acc12_1 += a12 * b1;
        acc12_2 += a12 * b2;
        acc12_3 += a12 * b3;
        acc12_4 += a12 * b4;
        acc12_5 += a12 * b5;
        acc12_6 += a12 * b6;
        acc12_7 += a12 * b7;
        let a13 = a[ar13 + ak];
        acc13_0 += a13 * b0;
        acc13_1 += a13 * b1;
        acc13_2 += a13 * b2;
        acc13_3 += a13 * b3;
        acc13_4 += a13 * b4;
        acc13_5 += a13 * b5;
        acc13_6 += a13 * b6;
        acc13_7 += a13 * b7;
        let a14 = a[ar14 + ak];
        acc14_0 += a14 * b0;
        acc14_1 += a14 * b1;
        acc14_2 += a14 * b2;
        acc14_3 += a14 * b3;
        acc14_4 += a14 * b4;
        acc14_5 += a14 * b5;
        acc14_6 += a14 * b6;
        acc14_7 += a14 * b7;
        let a15 = a[ar15 + ak];
        acc15_0 += a15 * b0;
        acc15_1 += a15 * b1;
        acc15_2 += a15 * b2;
        acc15_3 += a15 * b3;
        acc15_4 += a15 * b4;
        acc15_5 += a15 * b5;
        acc15_6 += a15 * b6;
        acc15_7 += a15 * b7;
    }
    let c_off = bi * p.m * p.n;
    store4(c_off, row0 + 0u, col0 + 0u, acc0_0);
    store4(c_off, row0 + 0u, col0 + 32u, acc0_1);
    store4(c_off, row0 + 0u, col0 + 64u, acc0_2);
    store4(c_off, row0 + 0u, col0 + 96u, acc0_3);
    store4(c_off, row0 + 0u, col0 + 128u, acc0_4);
    store4(c_off, row0 + 0u, col0 + 160u, acc0_5);
    store4(c_off, row0 + 0u, col0 + 192u, acc0_6);
    store4(c_off, row0 + 0u, col0 + 224u, acc0_7);
    store4(c_off, row0 + 8u, col0 + 0u, acc1_0);
    store4(c_off, row0 + 8u, col0 + 32u, acc1_1);
    store4(c_off, row0 + 8u, col0 + 64u, acc1_2);
    store4(c_off, row0 + 8u, col0 + 96u, acc1_3);
    store4(c_off, row0 + 8u, col0 + 128u, acc1_4);
    store4(c_off, row0 + 8u, col0 + 160u, acc1_5);
    store4(c_off, row0 + 8u, col0 + 192u, acc1_6);
    store4(c_off, row0 + 8u, col0 + 224u, acc1_7);
    store4(c_off, row0 + 16u, col0 + 0u, acc2_0);
    store4(c_off, row0 + 16u, col0 + 32u, acc2_1);
    store4(c_off, row0 + 16u, col0 + 64u, acc2_2);
    store4(c_off, row0 + 16u, col0 + 96u, acc2_3);
    store4(c_off, row0 + 16u, col0 + 128u, acc2_4);
    store4(c_off, row0 + 16u, col0 + 160u, acc2_5);
    store4(c_off, row0 + 16u, col0 + 192u, acc2_6);
    store4(c_off, row0 + 16u, col0 + 224u, acc2_7);
    store4(c_off, row0 + 24u, col0 + 0u, acc3_0);
    store4(c_off, row0 + 24u, col0 + 32u, acc3_1);
    store4(c_off, row0 + 24u, col0 + 64u, acc3_2);
    store4(c_off, row0 + 24u, col0 + 96u, acc3_3);
    store4(c_off, row0 + 24u, col0 + 128u, acc3_4);
    store4(c_off, row0 + 24u, col0 + 160u, acc3_5);
    store4(c_off, row0 + 24u, col0 + 192u, acc3_6);
    store4(c_off, row0 + 24u, col0 + 224u, acc3_7);
    store4(c_off, row0 + 32u, col0 + 0u, acc4_0);
    store4(c_off, row0 + 32u, col0 + 32u, acc4_1);
    store4(c_off, row0 + 32u, col0 + 64u, acc4_2);
    store4(c_off, row0 + 32u, col0 + 96u, acc4_3);
    store4(c_off, row0 + 32u, col0 + 128u, acc4_4);
    store4(c_off, row0 + 32u, col0 + 160u, acc4_5);
    store4(c_off, row0 + 32u, col0 + 192u, acc4_6);
    store4(c_off, row0 + 32u, col0 + 224u, acc4_7);
    store4(c_off, row0 + 40u, col0 + 0u, acc5_0);
    store4(c_off, row0 + 40u, col0 + 32u, acc5_1);
    store4(c_off, row0 + 40u, col0 + 64u, acc5_2);
    store4(c_off, row0 + 40u, col0 + 96u, acc5_3);
    store4(c_off, row0 + 40u, col0 + 128u, acc5_4);
    store4(c_off, row0 + 40u, col0 + 160u, acc5_5);
    store4(c_off, row0 + 40u, col0 + 192u, acc5_6);
    store4(c_off, row0 + 40u, col0 + 224u, acc5_7);
    store4(c_off, row0 + 48u, col0 + 0u, acc6_0);
    store4(c_off, row0 + 48u, col0 + 32u, acc6_1);
    store4(c_off, row0 + 48u, col0 + 64u, acc6_2);
    store4(c_off, row0 + 48u, col0 + 96u, acc6_3);
    store4(c_off, row0 + 48u, col0 + 128u, acc6_4);
    store4(c_off, row0 + 48u, col0 + 160u, acc6_5);
    store4(c_off, row0 + 48u, col0 + 192u, acc6_6);
    store4(c_off, row0 + 48u, col0 + 224u, acc6_7);
    store4(c_off, row0 + 56u, col0 + 0u, acc7_0);
    store4(c_off, row0 + 56u, col0 + 32u, acc7_1);
    store4(c_off, row0 + 56u, col0 + 64u, acc7_2);
    store4(c_off, row0 + 56u, col0 + 96u, acc7_3);
    store4(c_off, row0 + 56u, col0 + 128u, acc7_4);
    store4(c_off, row0 + 56u, col0 + 160u, acc7_5);
    store4(c_off, row0 + 56u, col0 + 192u, acc7_6);
    store4(c_off, row0 + 56u, col0 + 224u, acc7_7);
    store4(c_off, row0 + 64u, col0 + 0u, acc8_0);
    store4(c_off, row0 + 64u, col0 + 32u, acc8_1);
    store4(c_off, row0 + 64u, col0 + 64u, acc8_2);
    store4(c_off, row0 + 64u, col0 + 96u, acc8_3);
    store4(c_off, row0 + 64u, col0 + 128u, acc8_4);
    store4(c_off, row0 + 64u, col0 + 160u, acc8_5);
    store4(c_off, row0 + 64u, col0 + 192u, acc8_6);
    store4(c_off, row0 + 64u, col0 + 224u, acc8_7);
    store4(c_off, row0 + 72u, col0 + 0u, acc9_0);
    store4(c_off, row0 + 72u, col0 + 32u, acc9_1);
    store4(c_off, row0 + 72u, col0 + 64u, acc9_2);
    store4(c_off, row0 + 72u, col0 + 96u, acc9_3);
    store4(c_off, row0 + 72u, col0 + 128u, acc9_4);
    store4(c_off, row0 + 72u, col0 + 160u, acc9_5);
    store4(c_off, row0 + 72u, col0 + 192u, acc9_6);
    store4(c_off, row0 + 72u, col0 + 224u, acc9_7);
    store4(c_off, row0 + 80u, col0 + 0u, acc10_0);
    store4(c_off, row0 + 80u, col0 + 32u, acc10_1);
    store4(c_off, row0 + 80u, col0 + 64u, acc10_2);
    store4(c_off, row0 + 80u, col0 + 96u, acc10_3);
    store4(c_off, row0 + 80u, col0 + 128u, acc10_4);
    store4(c_off, row0 + 80u, col0 + 160u, acc10_5);
    store4(c_off, row0 + 80u, col0 + 192u, acc10_6);
    store4(c_off, row0 + 80u, col0 + 224u, acc10_7);
    store4(c_off, row0 + 88u, col0 + 0u, acc11_0);
    store4(c_off, row0 + 88u, col0 + 32u, acc11_1);
    store4(c_off, row0 + 88u, col0 + 64u, acc11_2);
    store4(c_off, row0 + 88u, col0 + 96u, acc11_3);
    store4(c_off, row0 + 88u, col0 + 128u, acc11_4);
    store4(c_off, row0 + 88u, col0 + 160u, acc11_5);
    store4(c_off, row0 + 88u, col0 + 192u, acc11_6);
    store4(c_off, row0 + 88u, col0 + 224u, acc11_7);
    store4(c_off, row0 + 96u, col0 + 0u, acc12_0);
    store4(c_off, row0 + 96u, col0 + 32u, acc12_1);
    store4(c_off, row0 + 96u, col0 + 64u, acc12_2);
    store4(c_off, row0 + 96u, col0 + 96u, acc12_3);
    store4(c_off, row0 + 96u, col0 + 128u, acc12_4);
    store4(c_off, row0 + 96u, col0 + 160u, acc12_5);
    store4(c_off, row0 + 96u, col0 + 192u, acc12_6);
    store4(c_off, row0 + 96u, col0 + 224u, acc12_7);
    store4(c_off, row0 + 104u, col0 + 0u, acc13_0);
    store4(c_off, row0 + 104u, col0 + 32u, acc13_1);
    store4(c_off, row0 + 104u, col0 + 64u, acc13_2);
    store4(c_off, row0 + 104u, col0 + 96u, acc13_3);
    store4(c_off, row0 + 104u, col0 + 128u, acc13_4);
    store4(c_off, row0 + 104u, col0 + 160u, acc13_5);
    store4(c_off, row0 + 104u, col0 + 192u, acc13_6);
    store4(c_off, row0 + 104u, col0 + 224u, acc13_7);
    store4(c_off, row0 + 112u, col0 + 0u, acc14_0);
    store4(c_off, row0 + 112u, col0 + 32u, acc14_1);
    store4(c_off, row0 + 112u, col0 + 64u, acc14_2);
    store4(c_off, row0 + 112u, col0 + 96u, acc14_3);
    store4(c_off, row0 + 112u, col0 + 128u, acc14_4);
    store4(c_off, row0 + 112u, col0 + 160u, acc14_5);
    store4(c_off, row0 + 112u, col0 + 192u, acc14_6);
    store4(c_off, row0 + 112u, col0 + 224u, acc14_7);
    store4(c_off, row0 + 120u, col0 + 0u, acc15_0);
    store4(c_off, row0 + 120u, col0 + 32u, acc15_1);
    store4(c_off, row0 + 120u, col0 + 64u, acc15_2);
    store4(c_off, row0 + 120u, col0 + 96u, acc15_3);
    store4(c_off, row0 + 120u, col0 + 128u, acc15_4);
    store4(c_off, row0 + 120u, col0 + 160u, acc15_5);
    store4(c_off, row0 + 120u, col0 + 192u, acc15_6);
    store4(c_off, row0 + 120u, col0 + 224u, acc15_7);
}

// (offset of A, offset of B) for batch index bi, broadcasting batch dims with stride 0.
fn batch_offsets(bi: u32) -> vec2<u32> {
    var off = vec2<u32>(0u, 0u);
    var rem = bi;
    for (var d = i32(p.nbd) - 1; d >= 0; d--) {
        let idx = rem % p.bshape[d];
        rem = rem / p.bshape[d];
        off += idx * vec2<u32>(p.a_bs[d], p.b_bs[d]);
    }
    return off;
}

// Writes C[r, col0 + 8 q] = v[q] for q < 4, skipping positions past the matrix.
fn store4(c_off: u32, r: u32, col0: u32, v: vec4<f32>) {
    if (r >= p.m) {
        return;
    }
    let base = c_off + r * p.n;
    for (var q = 0u; q < 4u; q++) {
        if (col0 + 8u * q < p.n) {
            c[base + col0 + 8u * q] = v[q];
        }
    }
}
