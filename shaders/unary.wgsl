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

// x^e with PyTorch's rule for negative bases: defined when e is an integer, NaN otherwise.
fn powf(b: f32, e: f32) -> f32 {
    if (e == 0.0) {
        return 1.0;
    }
    if (b >= 0.0) {
        return pow(b, e);
    }
    if (fract(e) != 0.0) {
        var nan_bits = 0x7fc00000u;  // a runtime NaN (a constant NaN is a WGSL error)
        return bitcast<f32>(nan_bits);
    }
    let m = pow(-b, e);
    return select(m, -m, fract(e * 0.5) != 0.0);
}

// tanh that does not overflow for large |v|.
fn tanh_s(v: f32) -> f32 {
    let e = exp(-2.0 * abs(v));
    return sign(v) * (1.0 - e) / (1.0 + e);
}

fn sigmoid_s(v: f32) -> f32 {
    let e = exp(-abs(v));
    return select(e / (1.0 + e), 1.0 / (1.0 + e), v >= 0.0);
}

fn apply(v: f32) -> f32 {
    let a = p.alpha;
    switch OP {
        case 0u: { return -v; }
        case 1u: { return abs(v); }
        case 2u: { return sign(v); }
        case 3u: { return exp(v); }
        case 4u: { return log(v); }
        case 5u: { return sqrt(v); }
        case 6u: { return inverseSqrt(v); }
        case 7u: { return 1.0 / v; }
        case 8u: { return v * v; }
        case 9u: { return sin(v); }
        case 10u: { return cos(v); }
        case 11u: { return max(v, 0.0); }
        case 12u: { return select(a * v, v, v > 0.0); }                       // leaky_relu(alpha)
        case 13u: { return select(a * (exp(v) - 1.0), v, v > 0.0); }          // elu(alpha)
        case 14u: {                                                           // gelu, tanh form
            let u = 0.7978845608028654 * (v + 0.044715 * v * v * v);
            return 0.5 * v * (1.0 + tanh_s(u));
        }
        case 15u: { return sigmoid_s(v); }
        case 16u: { return tanh_s(v); }
        case 17u: { return max(v, 0.0) + log(1.0 + exp(-abs(v))); }           // softplus
        case 18u: { return v + a; }                                           // add_scalar
        case 19u: { return v * a; }                                           // mul_scalar
        case 20u: { return powf(v, a); }                                      // pow_scalar
        case 21u: { return max(v, a); }
        case 22u: { return min(v, a); }
        case 23u: { return clamp(v, a, p.beta); }
        case 24u: { return select(0.0, 1.0, v > a); }
        case 25u: { return select(0.0, 1.0, v >= a); }
        case 26u: { return select(0.0, 1.0, v < a); }
        case 27u: { return select(0.0, 1.0, v <= a); }
        case 28u: { return select(0.0, 1.0, v == a); }
        case 29u: { return select(0.0, 1.0, v != a); }
        case 30u: { return powf(a, v); }                                      // scalar ** x
        default: { return v; }
    }
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
    y4[i] = vec4<f32>(apply(v.x), apply(v.y), apply(v.z), apply(v.w));
}
