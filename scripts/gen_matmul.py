#!/usr/bin/env python3
"""Regenerates the register-blocked entry points of shaders/matmul.wgsl (main_RxJ).

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
