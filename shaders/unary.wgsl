// Element-wise unary ops and their scalar variants: y[i] = f(x[i]; alpha, beta).
// The op is the override constant OP (see UnaryOp in crates/device/src/kernels/unary.rs), so each op
// compiles to its own pipeline with the dead branches removed.

struct Params {
    n: u32,
    alpha: f32,
    beta: f32,
    _pad: u32,
}

@group(0) @binding(0) var<storage, read> p: Params;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;
// The same buffers seen as vec4 (buffers are allocated in multiples of 16 bytes).
@group(0) @binding(1) var<storage, read_write> y4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> x4: array<vec4<f32>>;

override OP: u32 = 0u;

fn apply(v: f32, a: f32, b: f32) -> f32 {
    return unary_op(OP, v, a, b);
}

// x, y: [n] seen as [ceil(n / 4)] vec4: four elements per invocation. Lanes past n compute garbage
// into the buffer's padding, which nothing reads.
@compute @workgroup_size(256)
fn main4(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let i = (wid.x + nwg.x * (wid.y + nwg.y * wid.z)) * 256u + li;
    if (i * 4u >= p.n) {
        return;
    }
    let v = x4[i];
    let a = p.alpha;
    let b = p.beta;
    y4[i] = vec4<f32>(apply(v.x, a, b), apply(v.y, a, b), apply(v.z, a, b), apply(v.w, a, b));
}
