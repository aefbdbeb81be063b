#!/usr/bin/env python3
"""Regenerates the register-blocked entry points of shaders/matmul.wgsl (main_RxJ), and
shaders/matmul_subgroup.wgsl and shaders/matmul_wide.wgsl whole.

The WGSL is kept in the repository as plain, valid WGSL; this script only saves typing the
unrolled bodies. It keeps the file's header (comments, Params, bindings) up to the first entry
point and rewrites the rest. Add a variant to `variants` and to VARIANTS in
crates/device/src/kernels/matmul.rs together.
"""
import pathlib

variants = [(8, 8), (16, 16), (16, 32)]
PATH = pathlib.Path(__file__).resolve().parent.parent / 'shaders' / 'matmul.wgsl'
s = PATH.read_text()
head = s[:s.index("// a: [batch.., M, K] (strided)")]
out = [head.rstrip() + "\n"]
for R, J in variants:
    L = []
    L.append(f"""// a: [batch.., M, K] (strided), b: [batch.., K, N] (strided), c: [batch, M, N]; {R}x{J} per invocation
@compute @workgroup_size(8, 8)
fn main_{R}x{J}(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
) {{
    let g = wid.x + nwg.x * (wid.y + nwg.y * wid.z);
    let per_batch = p.tiles_m * p.tiles_n;
    let bi = g / per_batch;
    if (bi >= p.batch) {{
        return;
    }}
    let t = g % per_batch;
    let row0 = (t / p.tiles_n) * {8*R}u + lid.y;
    let col0 = (t % p.tiles_n) * {8*J}u + lid.x;
    let off = batch_offsets(bi);
""")
    for r in range(R):
        L.append(f"    let ar{r} = off.x + min(row0 + {8*r}u, p.m - 1u) * p.a_rs;")
    for j in range(J):
        L.append(f"    let bc{j} = off.y + min(col0 + {8*j}u, p.n - 1u) * p.b_cs;")
    for r in range(R):
        for h in range(J//4):
            L.append(f"    var acc{r}_{h} = vec4<f32>();")
    L.append("    for (var kk = 0u; kk < p.k; kk++) {")
    L.append("        let ak = kk * p.a_cs;")
    L.append("        let bk = kk * p.b_rs;")
    for h in range(J//4):
        L.append(f"        let b{h} = vec4<f32>(" + ", ".join(f"b[bc{4*h+q} + bk]" for q in range(4)) + ");")
    for r in range(R):
        L.append(f"        let a{r} = a[ar{r} + ak];")
        for h in range(J//4):
            L.append(f"        acc{r}_{h} += a{r} * b{h};")
    L.append("    }")
    L.append("    let c_off = bi * p.m * p.n;")
    for r in range(R):
        for h in range(J//4):
            L.append(f"    store4(c_off, row0 + {8*r}u, col0 + {32*h}u, acc{r}_{h});")
    L.append("}\n")
    out.append("\n".join(L))
out.append("""// (offset of A, offset of B) for batch index bi, broadcasting batch dims with stride 0.
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
""")
PATH.write_text("\n".join(out))

def sg_head(name, la, lb, rt, sm, sn, kstep):
    """The opening of a subgroup entry point, up to the batch loop: indices, the lane's rows and
    columns, the accumulators (shared by matmul_subgroup.wgsl and matmul_wide.wgsl; `kstep` is
    the k values per load of A, 4 or 8)."""
    tm, tn = sm * rt, 32 * sn
    a_shape = "[batch.., M, K]" if la == "n" else "[batch.., K, M]"
    b_shape = "[batch.., K, N]" if lb == "n" else "[batch.., N, K]"
    L = [f"""// a: {a_shape}, b: {b_shape}, c: [batch, M, N]; a {tm} x {tn} tile per workgroup
@compute @workgroup_size({8 * sm * sn})
fn {name}_{la}{lb}(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {{
    let g = wid.x + nwg.x * (wid.y + nwg.y * wid.z);
    let per_batch = p.tiles_m * p.tiles_n;
    // Output matrix bi: the product of batch bi, or (summing) the sum of the products of batches
    // b0 .. b1 - 1, the bi-th range of p.sum_batch.
    let bi = g / per_batch;
    let summing = p.sum_batch != 0u;
    let b0 = select(bi, bi * p.sum_batch, summing);
    let b1 = select(bi + 1u, min(b0 + p.sum_batch, p.batch), summing);
    if (b0 >= p.batch) {{
        return;
    }}
    let t = g % per_batch;
    let s = li / 8u;
    let l = li % 8u;
    let m = p.m;
    let k{kstep}n = p.k / {kstep}u;
    let n4 = p.n / 4u;
    // Folded (p.fold batches of B and C side by side along N, one A), the tiles of one column
    // come one after another, so that they share its B in cache.
    let folded = p.fold > 1u;
    let tr = select(t / p.tiles_n, t % p.tiles_m, folded);
    let tc = select(t % p.tiles_n, t / p.tiles_m, folded);
    let rb = tr * {tm}u + (s / {sn}u) * {rt}u;  // first row of this subgroup
    let gc = tc * {tn // 4}u + (s % {sn}u) * 8u + l;  // this lane's 4 columns: 4 gc .. 4 gc + 3
    // Folded, the lane's batch fb and its columns 4 cg .. 4 cg + 3 in that batch.
    let fb = select(0u, min(gc / n4, p.fold - 1u), folded);
    let cg = select(gc, gc % n4, folded);"""]
    for r in range(rt):
        L.append(f"    var acc{r} = vec4<f32>();")
    L.append("    for (var bs = b0; bs < b1; bs++) {")
    return L


def sg_tail(rt):
    """The end of a subgroup entry point: the batch loop closed, the lane's RT x 4 block stored
    through the epilogue."""
    L = ["    }", "    if (gc < max(p.fold, 1u) * n4) {", "        let c0 = ((bi + fb) * m + rb) * n4 + cg;",
         "        var cbias = vec4<f32>();", "        if (BIAS == 2u) {", "            cbias = vec4<f32>(bias[4u * cg], bias[4u * cg + 1u], bias[4u * cg + 2u], bias[4u * cg + 3u]);", "        }"]
    for r in range(rt):
        L.append(f"        if (rb + {r}u < m) {{")
        L.append(f"            c4[c0 + {r}u * n4] = epilogue(acc{r}, rb + {r}u, cbias);")
        L.append("        }")
    L.append("    }")
    L.append("}\n")
    return L


# ---- shaders/matmul_subgroup.wgsl: the subgroup-broadcast entry points (CPU adapters) ----
SG_PATH = PATH.parent / 'matmul_subgroup.wgsl'
# (name, RT, SM, SN): every lane keeps RT x 4 outputs; a subgroup covers RT x 32; the workgroup's
# subgroups stand SM along M by SN along N, an (SM RT) x (32 SN) tile.
SG_TILES = [("sg8", 8, 4, 2), ("sg16", 16, 4, 2), ("sg32", 32, 4, 2), ("sg64", 64, 4, 2), ("sg64w", 64, 1, 8), ("sg64s", 64, 1, 1), ("sg32s", 32, 1, 1)]
# The parameters of both subgroup families (the layout of Params in kernels/matmul.rs).
SG_PARAMS = """struct Params {
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
    sum_batch: u32,    // > 0: C[i] = the sum of the products of batches i sum_batch .. (i + 1) sum_batch - 1
    fold: u32,         // > 1: that many batches of B and C folded into N, A broadcast over them
    act_a: f32,        // the scalars of the epilogue's ACT
    act_b: f32,
    bshape: array<u32, 8>,
    a_bs: array<u32, 8>,   // batch strides of A (0 where broadcast)
    b_bs: array<u32, 8>,
}
"""
BATCH_OFFSETS = """// (offset of A, offset of B) in f32 for batch index bi, broadcasting batch dims with stride 0.
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
"""

# The epilogue of both subgroup families: what is applied to C before it is stored.
SG_EPILOGUE = """
// The epilogue: C = ACT(product + bias), the bias bias[row] (BIAS 1: conv's, one per output
// channel) or bias[col] (BIAS 2: a linear layer's, one per output feature) or none (BIAS 0, and
// binding 4 is then bound to any buffer), with ACT the UnaryOp code of relu, leaky_relu, elu,
// sigmoid or tanh (the activations add_act fuses), or NO_OP. A layer's bias and activation thus
// cost no pass over its output of their own. Override constants, so that without an epilogue the
// stores compile to what they were without one (as parameters the branches cost matmul_1024
// 5-10%). Its own short table, not elementwise.wgsl's: inlined into every store of an unrolled
// entry point before the constants fold, the whole table made a pipeline take 0.8 s to build.
const NO_OP: u32 = 255u;
override BIAS: u32 = 0u;
override ACT: u32 = NO_OP;
@group(0) @binding(4) var<storage, read> bias: array<f32>;

// v: columns 4 cb .. 4 cb + 3 of row `row`; cbias: the column bias of those columns (BIAS 2).
fn epilogue(v: vec4<f32>, row: u32, cbias: vec4<f32>) -> vec4<f32> {
    var r = v;
    if (BIAS == 1u) {
        r += vec4<f32>(bias[row]);
    } else if (BIAS == 2u) {
        r += cbias;
    }
    switch ACT {
        case 11u: { r = max(r, vec4<f32>()); }                                       // relu
        case 12u: { r = select(p.act_a * r, r, r > vec4<f32>()); }                     // leaky_relu
        case 13u: { r = select(p.act_a * (exp(r) - 1.0), r, r > vec4<f32>()); }        // elu
        case 15u: {                                                                    // sigmoid
            let e = exp(-abs(r));
            r = select(e / (1.0 + e), 1.0 / (1.0 + e), r >= vec4<f32>());
        }
        case 16u: {                                                                    // tanh
            let e = exp(-2.0 * abs(r));
            r = sign(r) * (1.0 - e) / (1.0 + e);
        }
        default: {}
    }
    return r;
}
"""
SG_HEADER = """// Batched matmul for adapters whose subgroups are 8 lanes of one SIMD register (lavapipe and
// other CPU adapters), with vec4 loads and subgroup broadcasts:
//   C[b, m, n] = sum_k A[b, m, k] * B[b, k, n]
// Generated by scripts/gen_matmul.py; the launcher (crates/device/src/kernels/matmul.rs) uses these
// entry points only when the subgroup size is exactly 8, K and N are multiples of 4, and so is M when
// A is stored transposed, so that every vec4 below is aligned.
// Why: on lavapipe every storage load runs a loop over the SIMD lanes, so loads, not arithmetic,
// set the speed (see shared/KERNELS.md). Here the 8 lanes of a subgroup share RT rows of C: each
// lane loads RT/8 of the rows' A values (vec4s along k, or along m when A is transposed) and the
// others receive them by subgroupBroadcast, a register shuffle; each lane loads its own 4 columns of
// B as vec4s. Per 4 steps of k a lane issues RT/8 + 4 vec4 loads for 16 RT multiply-adds.
// A workgroup is 8 subgroups, 4 along M by 2 along N: a (4 RT) x 64 tile of C; the "w" (wide)
// variant stands them 1 x 8: an RT x 256 tile, for products with few rows and many columns; the
// "s" (short) variants are one subgroup, an RT x 32 tile, for products of at most RT rows.
// One A times a batch of B (conv's weights times every sample's columns) can run folded: the
// batches of B and C stand side by side along N, so a partial tile is left only at the end of all
// of them rather than at the end of each (conv2's 196 columns per sample would fill 77% of 256).
// Entry points: sg{RT}[w|s]_{a}{b}, a/b = n (as stored) or t (transposed).

""" + SG_PARAMS + """
@group(0) @binding(0) var<storage, read> p: Params;
@group(0) @binding(1) var<storage, read_write> c4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> a4: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> b4: array<vec4<f32>>;
""" + SG_EPILOGUE + """
""" + BATCH_OFFSETS
SWZ = "xyzw"
sg = [SG_HEADER]
for NAME, RT, SM, SN in SG_TILES:
    for la in "nt":
        for lb in "nt":
            L = sg_head(NAME, la, lb, RT, SM, SN, 4)
            body_start = len(L)
            L.append("    let off = vec2<u32>(batch_offsets(bs).x, batch_offsets(bs + fb).y) / 4u;")
            # A addressing
            if la == "n":
                for q in range(RT // 8):
                    L.append(f"    let ar{q} = off.x + min(rb + l + {8*q}u, m - 1u) * k4n;")
            else:
                groups = RT // 4
                lanes = min(8, groups)
                for q in range((groups + 7) // 8):
                    lane = "l" if lanes == 8 else f"l % {lanes}u"
                    L.append(f"    let ag{q} = off.x + min(rb / 4u + {lane} + {8*q}u, m / 4u - 1u);")
                L.append("    let m4 = m / 4u;")
            # B addressing
            if lb == "n":
                L.append("    let bc = off.y + min(cg, n4 - 1u);")
            else:
                for cc in range(4):
                    L.append(f"    let bc{cc} = off.y + min(4u * cg + {cc}u, p.n - 1u) * k4n;")
            L.append("    for (var k4 = 0u; k4 < k4n; k4++) {")
            if la == "n":
                for q in range(RT // 8):
                    L.append(f"        let av{q} = a4[ar{q} + k4];")
            else:
                for q in range((RT // 4 + 7) // 8):
                    for kq in range(4):
                        L.append(f"        let av{q}_{kq} = a4[ag{q} + (4u * k4 + {kq}u) * m4];")
            if lb == "n":
                for kq in range(4):
                    L.append(f"        let b{kq} = b4[bc + (4u * k4 + {kq}u) * n4];")
            else:
                for cc in range(4):
                    L.append(f"        let bt{cc} = b4[bc{cc} + k4];")
                for kq in range(4):
                    L.append(f"        let b{kq} = vec4<f32>(bt0.{SWZ[kq]}, bt1.{SWZ[kq]}, bt2.{SWZ[kq]}, bt3.{SWZ[kq]});")
            if la == "n":
                for r in range(RT):
                    q, i = divmod(r, 8)
                    L.append(f"        let x{r} = subgroupBroadcast(av{q}, {i}u);")
                    L.append(f"        acc{r} += x{r}.x * b0 + x{r}.y * b1 + x{r}.z * b2 + x{r}.w * b3;")
            else:
                for gi in range(RT // 4):
                    q, i = divmod(gi, 8)
                    for kq in range(4):
                        L.append(f"        let w{gi}_{kq} = subgroupBroadcast(av{q}_{kq}, {i}u);")
                    for cc in range(4):
                        r = 4 * gi + cc
                        L.append(f"        acc{r} += w{gi}_0.{SWZ[cc]} * b0 + w{gi}_1.{SWZ[cc]} * b1 + w{gi}_2.{SWZ[cc]} * b2 + w{gi}_3.{SWZ[cc]} * b3;")
            L.append("    }")
            L[body_start:] = ["    " + x for x in L[body_start:]]
            L += sg_tail(RT)
            sg.append("\n".join(L))
SG_PATH.write_text("\n".join(sg))

# ---- shaders/matmul_wide.wgsl: the subgroup kernels with A (and B when transposed) read as words ----
W_PATH = PATH.parent / 'matmul_wide.wgsl'
W_TILES = [("sg16", 16, 4, 2), ("sg32", 32, 4, 2), ("sg64", 64, 4, 2), ("sg64w", 64, 1, 8)]
W_HEADER = """// Batched matmul for CPU adapters with 8-lane subgroups and 64-bit integers: matmul_subgroup.wgsl's
// kernels with A read as words of eight f32 along k (vec4<u64>, see words.wgsl), and B too when it is
// stored transposed ([N, K], so also contiguous along k):
//   C[b, m, n] = sum_k A[b, m, k] * B[b, k, n]
// Generated by scripts/gen_matmul.py; the launcher (crates/device/src/kernels/matmul.rs) uses these
// entry points only on devices with wide storage access, for A as stored ([M, K]), K a multiple of 8
// and N of 4, so every word and vec4 below is aligned.
// Why: a storage access on lavapipe costs a loop over the SIMD lanes whatever its width. Per 8
// steps of k a lane issues RT/8 word loads of A and 8 vec4 loads of B (4 word loads when B is
// transposed) for 32 RT multiply-adds, where the vec4 kernels issue RT/4 + 8.
// Entry points: sg{RT}[w]_n{b}, b = n (B as stored) or t (transposed).
// The word helpers (lo, hi) come from words.wgsl (see Kernel::source).

""" + SG_PARAMS + """
@group(0) @binding(0) var<storage, read> p: Params;
@group(0) @binding(1) var<storage, read_write> c4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> a8: array<vec4<u64>>;
@group(0) @binding(3) var<storage, read> b4: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> b8: array<vec4<u64>>;
""" + SG_EPILOGUE + """
""" + BATCH_OFFSETS
wsrc = [W_HEADER]
for NAME, RT, SM, SN in W_TILES:
    for lb in "nt":
        L = sg_head(NAME, "n", lb, RT, SM, SN, 8)
        body_start = len(L)
        L.append("    let off = vec2<u32>(batch_offsets(bs).x, batch_offsets(bs + fb).y);")
        for q in range(RT // 8):
            L.append(f"    let ar{q} = off.x / 8u + min(rb + l + {8*q}u, m - 1u) * k8n;")
        if lb == "n":
            L.append("    let bc = off.y / 4u + min(cg, n4 - 1u);")
        else:
            for cc in range(4):
                L.append(f"    let bc{cc} = off.y / 8u + min(4u * cg + {cc}u, p.n - 1u) * k8n;")
        L.append("    for (var k8 = 0u; k8 < k8n; k8++) {")
        for q in range(RT // 8):
            L.append(f"        let aw{q} = a8[ar{q} + k8];")
            L.append(f"        let al{q} = lo(aw{q});")
            L.append(f"        let ah{q} = hi(aw{q});")
        if lb == "n":
            for kq in range(8):
                L.append(f"        let bv{kq} = b4[bc + (8u * k8 + {kq}u) * n4];")
        else:
            for cc in range(4):
                L.append(f"        let bw{cc} = b8[bc{cc} + k8];")
                L.append(f"        let bl{cc} = lo(bw{cc});")
                L.append(f"        let bh{cc} = hi(bw{cc});")
            for kq in range(8):
                half = "bl" if kq < 4 else "bh"
                c = SWZ[kq % 4]
                L.append(f"        let bv{kq} = vec4<f32>({half}0.{c}, {half}1.{c}, {half}2.{c}, {half}3.{c});")
        for r in range(RT):
            q, i = divmod(r, 8)
            L.append(f"        let x{r} = subgroupBroadcast(al{q}, {i}u);")
            L.append(f"        let y{r} = subgroupBroadcast(ah{q}, {i}u);")
            L.append(f"        acc{r} += x{r}.x * bv0 + x{r}.y * bv1 + x{r}.z * bv2 + x{r}.w * bv3"
                     f" + y{r}.x * bv4 + y{r}.y * bv5 + y{r}.z * bv6 + y{r}.w * bv7;")
        L.append("    }")
        L[body_start:] = ["    " + x for x in L[body_start:]]
        L += sg_tail(RT)
        wsrc.append("\n".join(L))
W_PATH.write_text("\n".join(wsrc))
