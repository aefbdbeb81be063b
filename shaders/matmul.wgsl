// Batched matmul with broadcast batch dims and either operand transposed through its strides:
//   C[b, m, n] = sum_k A[b, m, k] * B[b, k, n]
// A[b, m, k] is read at a_off(b) + m * a_rs + k * a_cs (a transposed operand just swaps a_rs, a_cs),
// likewise B. C is contiguous [batch, M, N].
// Each invocation keeps a 4x4 block of C in registers and uses no workgroup memory: on lavapipe (and
// other CPU adapters) barriers are costly and invocations are SIMD lanes, see shared/KERNELS.md.
// A workgroup of 8x8 invocations covers a 32x32 tile of C.

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
    _p0: u32,
    bshape: array<u32, 8>,
    a_bs: array<u32, 8>,   // batch strides of A (0 where broadcast)
    b_bs: array<u32, 8>,
}

@group(0) @binding(0) var<storage, read> p: Params;
@group(0) @binding(1) var<storage, read_write> c: array<f32>;
@group(0) @binding(2) var<storage, read> a: array<f32>;
@group(0) @binding(3) var<storage, read> b: array<f32>;

// a: [batch.., M, K] (strided), b: [batch.., K, N] (strided), c: [batch, M, N]
@compute @workgroup_size(8, 8)
fn main(
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
    let row0 = (t / p.tiles_n) * 32u + lid.y * 4u;
    let col0 = (t % p.tiles_n) * 32u + lid.x * 4u;

    var a_off = 0u;
    var b_off = 0u;
    var rem = bi;
    for (var d = i32(p.nbd) - 1; d >= 0; d--) {
        let idx = rem % p.bshape[d];
        rem = rem / p.bshape[d];
        a_off += idx * p.a_bs[d];
        b_off += idx * p.b_bs[d];
    }

    // Clamp out-of-range rows/cols for loads (their results are never stored).
    var ar: array<u32, 4>;
    var bc: array<u32, 4>;
    for (var i = 0u; i < 4u; i++) {
        ar[i] = a_off + min(row0 + i, p.m - 1u) * p.a_rs;
        bc[i] = b_off + min(col0 + i, p.n - 1u) * p.b_cs;
    }

    var acc: array<vec4<f32>, 4>;
    for (var kk = 0u; kk < p.k; kk++) {
        let ak = kk * p.a_cs;
        let bk = kk * p.b_rs;
        let bv = vec4<f32>(b[bc[0] + bk], b[bc[1] + bk], b[bc[2] + bk], b[bc[3] + bk]);
        acc[0] += a[ar[0] + ak] * bv;
        acc[1] += a[ar[1] + ak] * bv;
        acc[2] += a[ar[2] + ak] * bv;
        acc[3] += a[ar[3] + ak] * bv;
    }

    let c_off = bi * p.m * p.n;
    for (var i = 0u; i < 4u; i++) {
        let r = row0 + i;
        if (r < p.m) {
            for (var j = 0u; j < 4u; j++) {
                if (col0 + j < p.n) {
                    c[c_off + r * p.n + col0 + j] = acc[i][j];
                }
            }
        }
    }
}
