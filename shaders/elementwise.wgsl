// Element-wise op tables shared by the unary and binary families: the launchers compile this file
// in front of unary.wgsl and binary.wgsl (see Kernel::source), so each op is defined once. The ops
// are selected by override constants in the families, so every switch below folds to one case.

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

// UnaryOp `op` (its code in crates/device/src/kernels/unary.rs) with scalars a, b.
fn unary_op(op: u32, v: f32, a: f32, b: f32) -> f32 {
    switch op {
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
        case 23u: { return clamp(v, a, b); }
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

// BinaryOp `op` (its code in crates/device/src/kernels/binary.rs).
fn binary_op(op: u32, u: f32, v: f32) -> f32 {
    switch op {
        case 0u: { return u + v; }
        case 1u: { return u - v; }
        case 2u: { return u * v; }
        case 3u: { return u / v; }
        case 4u: { return powf(u, v); }
        case 5u: { return max(u, v); }
        case 6u: { return min(u, v); }
        case 7u: { return select(0.0, 1.0, u == v); }
        case 8u: { return select(0.0, 1.0, u != v); }
        case 9u: { return select(0.0, 1.0, u < v); }
        case 10u: { return select(0.0, 1.0, u <= v); }
        case 11u: { return select(0.0, 1.0, u > v); }
        case 12u: { return select(0.0, 1.0, u >= v); }
        default: { return u; }
    }
}
