//! Element-wise, constructor, random, matmul, conv and pooling kernels against f64 CPU references,
//! on every adapter (see `common::on_each_device`).
//!
//! Tolerances are stated at each check. They rest on the Vulkan / WGSL precision rules: + - * are
//! correctly rounded (error <= u |result|, u = 2^-24), division <= 2.5 ulp, exp <= 3 + 2|x| ulp,
//! log <= 3 ulp (2^-21 absolute on [0.5, 2]), sqrt / inverseSqrt a few ulp, sin / cos <= 2^-11
//! absolute on [-pi, pi], pow inherited from exp2(y log2 x). Sums use the rigorous bound of
//! `common::Acc::bound`.

mod common;

use common::*;
use rand::RngExt;
use wgrad_device::{
    BinaryOp, Conv2dParams, Device, Distribution, GpuArray, Pool2dParams, Transpose, UnaryOp,
    threefry2x32,
};

// =============================================================================================
// Unary

/// Every UnaryOp variant maps to a distinct number: the match has no wildcard, so a new variant
/// fails to compile here until the test covers it.
fn unary_id(op: UnaryOp) -> usize {
    use UnaryOp::*;
    match op {
        Neg => 0,
        Abs => 1,
        Sign => 2,
        Exp => 3,
        Log => 4,
        Sqrt => 5,
        Rsqrt => 6,
        Recip => 7,
        Square => 8,
        Sin => 9,
        Cos => 10,
        Relu => 11,
        LeakyRelu(_) => 12,
        Elu(_) => 13,
        Gelu => 14,
        Sigmoid => 15,
        Tanh => 16,
        Softplus => 17,
        AddScalar(_) => 18,
        MulScalar(_) => 19,
        PowScalar(_) => 20,
        MaxScalar(_) => 21,
        MinScalar(_) => 22,
        Clamp(..) => 23,
        GtScalar(_) => 24,
        GeScalar(_) => 25,
        LtScalar(_) => 26,
        LeScalar(_) => 27,
        EqScalar(_) => 28,
        NeScalar(_) => 29,
        ScalarPow(_) => 30,
    }
}
const UNARY_VARIANTS: usize = 31;

/// x^e with PyTorch's rule for negative bases (defined for integer e only).
fn pow_ref(b: f64, e: f64) -> f64 {
    if e == 0.0 {
        1.0
    } else if b < 0.0 && e.fract() != 0.0 {
        f64::NAN
    } else {
        b.powf(e)
    }
}

fn unary_ref(op: UnaryOp, x: f64) -> f64 {
    use UnaryOp::*;
    let s = |v: f32| f64::from(v);
    let gelu_c = (2.0 / std::f64::consts::PI).sqrt();
    let b = |c: bool| if c { 1.0 } else { 0.0 };
    match op {
        Neg => -x,
        Abs => x.abs(),
        Sign => {
            if x == 0.0 {
                0.0
            } else {
                x.signum()
            }
        }
        Exp => x.exp(),
        Log => x.ln(),
        Sqrt => x.sqrt(),
        Rsqrt => 1.0 / x.sqrt(),
        Recip => 1.0 / x,
        Square => x * x,
        Sin => x.sin(),
        Cos => x.cos(),
        Relu => x.max(0.0),
        LeakyRelu(a) => {
            if x > 0.0 {
                x
            } else {
                s(a) * x
            }
        }
        Elu(a) => {
            if x > 0.0 {
                x
            } else {
                s(a) * x.exp_m1()
            }
        }
        Gelu => 0.5 * x * (1.0 + (gelu_c * (x + 0.044715 * x.powi(3))).tanh()),
        Sigmoid => 1.0 / (1.0 + (-x).exp()),
        Tanh => x.tanh(),
        Softplus => x.max(0.0) + (-x.abs()).exp().ln_1p(),
        AddScalar(a) => x + s(a),
        MulScalar(a) => x * s(a),
        PowScalar(a) => pow_ref(x, s(a)),
        MaxScalar(a) => x.max(s(a)),
        MinScalar(a) => x.min(s(a)),
        Clamp(lo, hi) => x.clamp(s(lo), s(hi)),
        GtScalar(a) => b(x > s(a)),
        GeScalar(a) => b(x >= s(a)),
        LtScalar(a) => b(x < s(a)),
        LeScalar(a) => b(x <= s(a)),
        EqScalar(a) => b(x == s(a)),
        NeScalar(a) => b(x != s(a)),
        ScalarPow(a) => pow_ref(s(a), x),
    }
}

/// One unary case: the op, its input values, and (rtol, atol) with the reason.
struct UnaryCase {
    op: UnaryOp,
    x: Vec<f32>,
    rtol: f64,
    atol: f64,
}

fn unary_cases(n: usize) -> Vec<UnaryCase> {
    use UnaryOp::*;
    let mut r = rng(11);
    let mut wide = |lo: f32, hi: f32, extra: &[f32]| {
        let mut v = uniform(&mut r, n, lo, hi);
        v.extend_from_slice(extra);
        v
    };
    let general = wide(-6.0, 6.0, &[0.0, -0.0, 1.0, -1.0, 1e-3, -1e-3]);
    let positive = wide(0.05, 8.0, &[1.0, 0.5, 2.0, 7.99]);
    let pi = std::f32::consts::PI;
    let trig = wide(-pi, pi, &[0.0, pi / 2.0, -pi / 2.0, pi, -pi]);
    let mut away = wide(-5.0, 5.0, &[1.0, -1.0, 0.1]);
    for v in &mut away {
        if v.abs() < 0.1 {
            *v += 0.2f32.copysign(*v);
        }
    }
    let bases = wide(0.1, 3.0, &[1.0, 2.0]);
    let ints = (-6..=6).map(|i| i as f32).collect::<Vec<_>>();
    let ints_and_frac = wide(-3.0, 3.0, &ints);
    let mut r2 = rng(12);
    let discrete = from_set(&mut r2, n, &[-1.0, -0.5, 0.0, 0.5, 1.0, 1.5]);
    let neg_bases = wide(-3.0, 3.0, &[-2.0, -1.0, 0.5]);

    // Tolerances:
    //  EXACT: one correctly rounded operation (or none): |err| <= u |y|; 2e-7 > u = 6e-8.
    //  CMP: comparisons / selects are exact.
    //  DIV_SQRT: division <= 2.5 ulp, sqrt / inverseSqrt a few ulp: 1e-6 relative (~8 ulp).
    //  EXP_LOG: exp over |x| <= 6 is <= 15 ulp (9e-7); log 3 ulp or 2^-21 = 4.8e-7 absolute near 1.
    //  SINCOS: Vulkan's minimum precision, 2^-11 absolute on [-pi, pi].
    //  COMPOSED: tanh / sigmoid / gelu / softplus / elu are built from exp; tanh_s(v) = (1-e)/(1+e)
    //    loses ~1 ulp of 1 absolute to cancellation for small |v|, softplus uses log(1 + e) not
    //    log1p: a few ulp of 1 absolute (<= 1e-6) plus ~1e-5 relative from exp's 15 ulp chained.
    //  POW: exp2(y log2 x): error ~ (3 + 2|y log2 x|) ulp of exp2 plus log2's error times |y|;
    //    for |y log2 x| <= 8 that is < 1e-5 relative.
    const EXACT: (f64, f64) = (2e-7, 0.0);
    const CMP: (f64, f64) = (0.0, 0.0);
    const DIV_SQRT: (f64, f64) = (1e-6, 0.0);
    const EXP_LOG: (f64, f64) = (2e-6, 1e-6);
    const SINCOS: (f64, f64) = (0.0, 4.9e-4);
    const COMPOSED: (f64, f64) = (1e-5, 2e-6);
    const POW: (f64, f64) = (1e-5, 1e-6);

    let case = |op, x: &Vec<f32>, (rtol, atol): (f64, f64)| UnaryCase {
        op,
        x: x.clone(),
        rtol,
        atol,
    };
    vec![
        case(Neg, &general, EXACT),
        case(Abs, &general, EXACT),
        case(Sign, &general, CMP),
        case(Exp, &general, EXP_LOG),
        case(Log, &positive, EXP_LOG),
        case(Sqrt, &positive, DIV_SQRT),
        case(Rsqrt, &positive, DIV_SQRT),
        case(Recip, &away, DIV_SQRT),
        case(Square, &general, EXACT),
        case(Sin, &trig, SINCOS),
        case(Cos, &trig, SINCOS),
        case(Relu, &general, EXACT),
        case(LeakyRelu(0.01), &general, EXACT),
        case(LeakyRelu(0.2), &general, EXACT),
        case(Elu(1.0), &general, COMPOSED),
        case(Elu(0.5), &general, COMPOSED),
        case(Gelu, &general, COMPOSED),
        case(Sigmoid, &general, COMPOSED),
        case(Tanh, &general, COMPOSED),
        case(Softplus, &wide(-20.0, 20.0, &[0.0, -30.0, 30.0]), COMPOSED),
        case(AddScalar(0.1), &general, EXACT),
        case(MulScalar(-2.5), &general, EXACT),
        case(PowScalar(2.0), &neg_bases, POW),
        case(PowScalar(3.0), &neg_bases, POW),
        case(PowScalar(0.5), &neg_bases, POW), // negative bases: NaN
        case(PowScalar(-1.5), &bases, POW),
        case(PowScalar(0.0), &neg_bases, CMP), // x^0 = 1 for every x
        case(MaxScalar(0.25), &general, EXACT),
        case(MinScalar(0.25), &general, EXACT),
        case(Clamp(-0.5, 1.25), &general, EXACT),
        case(GtScalar(0.5), &discrete, CMP),
        case(GeScalar(0.5), &discrete, CMP),
        case(LtScalar(0.5), &discrete, CMP),
        case(LeScalar(0.5), &discrete, CMP),
        case(EqScalar(0.5), &discrete, CMP),
        case(NeScalar(0.5), &discrete, CMP),
        case(ScalarPow(2.5), &wide(-3.0, 3.0, &[0.0, 1.0]), POW),
        case(ScalarPow(-2.0), &ints_and_frac, POW), // NaN at fractional exponents
    ]
}

#[test]
fn unary_every_op() {
    let cases = unary_cases(1000);
    let mut covered = [false; UNARY_VARIANTS];
    for c in &cases {
        covered[unary_id(c.op)] = true;
    }
    let missing: Vec<usize> = (0..UNARY_VARIANTS).filter(|&i| !covered[i]).collect();
    assert!(
        missing.is_empty(),
        "unary variants without a case: {missing:?}"
    );

    on_each_device("unary_every_op", |dev| {
        for c in &cases {
            let want: Vec<f64> = c.x.iter().map(|&v| unary_ref(c.op, f64::from(v))).collect();
            let x = up(dev, &c.x, &[c.x.len()])?;
            let y = x.unary(c.op)?;
            check_shape(&format!("{:?}", c.op), &y, &[c.x.len()])?;
            check_close(&format!("{:?}", c.op), &down(&y)?, &want, c.rtol, c.atol)?;
        }
        // Awkward shapes: empty, 0-d, size-1, a prime number of elements over several workgroups.
        let mut r = rng(13);
        for shape in [vec![0], vec![], vec![1], vec![3, 0, 2], vec![7, 1, 149]] {
            let xs = uniform(&mut r, numel(&shape), -2.0, 2.0);
            let y = up(dev, &xs, &shape)?.unary(UnaryOp::MulScalar(3.0))?;
            check_shape("unary shape", &y, &shape)?;
            let want: Vec<f64> = xs.iter().map(|&v| f64::from(v) * 3.0).collect();
            check_close(
                &format!("mul_scalar {shape:?}"),
                &down(&y)?,
                &want,
                2e-7,
                0.0,
            )?;
        }
        Ok(())
    });
}

// =============================================================================================
// Binary and where

fn binary_id(op: BinaryOp) -> usize {
    use BinaryOp::*;
    match op {
        Add => 0,
        Sub => 1,
        Mul => 2,
        Div => 3,
        Pow => 4,
        Max => 5,
        Min => 6,
        Eq => 7,
        Ne => 8,
        Lt => 9,
        Le => 10,
        Gt => 11,
        Ge => 12,
    }
}
const ALL_BINARY: [BinaryOp; 13] = [
    BinaryOp::Add,
    BinaryOp::Sub,
    BinaryOp::Mul,
    BinaryOp::Div,
    BinaryOp::Pow,
    BinaryOp::Max,
    BinaryOp::Min,
    BinaryOp::Eq,
    BinaryOp::Ne,
    BinaryOp::Lt,
    BinaryOp::Le,
    BinaryOp::Gt,
    BinaryOp::Ge,
];

fn binary_ref(op: BinaryOp, u: f64, v: f64) -> f64 {
    use BinaryOp::*;
    let b = |c: bool| if c { 1.0 } else { 0.0 };
    match op {
        Add => u + v,
        Sub => u - v,
        Mul => u * v,
        Div => u / v,
        Pow => pow_ref(u, v),
        Max => u.max(v),
        Min => u.min(v),
        Eq => b(u == v),
        Ne => b(u != v),
        Lt => b(u < v),
        Le => b(u <= v),
        Gt => b(u > v),
        Ge => b(u >= v),
    }
}

/// Inputs for `op`: (a, b) values and (rtol, atol).
/// Tolerances: + - * max min: one correct rounding (<= u = 6e-8 relative; 2e-7 asserted);
/// division <= 2.5 ulp (1e-6); pow as in the unary POW case (1e-5); comparisons exact.
fn binary_inputs(
    op: BinaryOp,
    r: &mut rand::rngs::StdRng,
    na: usize,
    nb: usize,
) -> (Vec<f32>, Vec<f32>, f64, f64) {
    use BinaryOp::*;
    match op {
        Add | Sub | Mul | Max | Min => (
            uniform(r, na, -4.0, 4.0),
            uniform(r, nb, -4.0, 4.0),
            2e-7,
            0.0,
        ),
        Div => {
            let mut b = uniform(r, nb, 0.1, 4.0);
            for v in b.iter_mut().step_by(2) {
                *v = -*v;
            }
            (uniform(r, na, -4.0, 4.0), b, 1e-6, 0.0)
        }
        Pow => {
            // Positive bases with any exponent, and negative bases with integer exponents (some
            // fractional ones too, which must give NaN).
            let a = uniform(r, na, -3.0, 3.0);
            let b: Vec<f32> = (0..nb)
                .map(|i| {
                    if i % 3 == 2 {
                        r.random_range(-2.0f32..2.0)
                    } else {
                        r.random_range(-3i32..=3) as f32
                    }
                })
                .collect();
            (a, b, 1e-5, 1e-6)
        }
        Eq | Ne | Lt | Le | Gt | Ge => {
            let set = [-1.0, 0.0, 0.5, 1.0];
            (from_set(r, na, &set), from_set(r, nb, &set), 0.0, 0.0)
        }
    }
}

#[test]
fn binary_every_op_with_broadcasting() {
    let mut covered = [false; 13];
    for op in ALL_BINARY {
        covered[binary_id(op)] = true;
    }
    assert!(covered.iter().all(|&c| c));

    // (a, b): broadcasting in both directions, rank extension, 0-d, empty and size-1 dims, and
    // equal shapes (the `same` fast path), some over several 256-wide workgroups. The last group
    // has an innermost dim (after merging) that is a multiple of 4: the four-per-invocation
    // `broadcast4` path, with each operand read as vec4s or splat.
    let shapes: Vec<(Vec<usize>, Vec<usize>)> = vec![
        (vec![3, 5, 8], vec![5, 1]),
        (vec![3, 1, 8], vec![5, 8]),
        (vec![5, 1], vec![3, 5, 8]),
        (vec![7, 3, 4, 5], vec![1, 3, 1, 1]), // a conv bias: [N, C, H W] + [1, C, 1]
        (vec![2, 1, 12], vec![1, 1]),
        (vec![1, 1], vec![9, 260]),
        (vec![3, 1, 5], vec![4, 5]),
        (vec![4, 5], vec![3, 1, 5]),
        (vec![1], vec![7]),
        (vec![7], vec![1]),
        (vec![0, 3], vec![1, 3]),
        (vec![], vec![2, 3]),
        (vec![5, 1], vec![1, 6]),
        (vec![37, 1, 13], vec![11, 1]),
        (vec![2, 1, 3, 1, 2], vec![4, 1, 5, 1]),
        (vec![2, 3, 4], vec![2, 3, 4]),
        (vec![1031], vec![1031]),
        (vec![], vec![]),
        (vec![0], vec![0]),
    ];
    on_each_device("binary_every_op_with_broadcasting", |dev| {
        let mut r = rng(21);
        for op in ALL_BINARY {
            for (sa, sb) in &shapes {
                let out_shape = broadcast(sa, sb).unwrap();
                let (a, b, rtol, atol) = binary_inputs(op, &mut r, numel(sa), numel(sb));
                let want: Vec<f64> = (0..numel(&out_shape))
                    .map(|i| {
                        let idx = unravel(i, &out_shape);
                        binary_ref(
                            op,
                            f64::from(a[bcast_index(&idx, sa)]),
                            f64::from(b[bcast_index(&idx, sb)]),
                        )
                    })
                    .collect();
                let y = up(dev, &a, sa)?.binary(op, &up(dev, &b, sb)?)?;
                let what = format!("{op:?} {sa:?} with {sb:?}");
                check_shape(&what, &y, &out_shape)?;
                check_close(&what, &down(&y)?, &want, rtol, atol)?;
            }
        }
        Ok(())
    });
}

#[test]
fn binary_then_fuses_up_to_two_unary_ops() {
    // (a, b) on each path: same shape, broadcast4 (innermost dim a multiple of 4, splat and
    // vec4 reads) and the general broadcast; fused chains with scalars in both slots.
    let shapes: Vec<(Vec<usize>, Vec<usize>)> = vec![
        (vec![1031], vec![1031]),
        (vec![7, 3, 8], vec![1, 3, 1]),
        (vec![37, 1, 13], vec![11, 1]),
    ];
    let chains: Vec<(BinaryOp, Vec<UnaryOp>)> = vec![
        (BinaryOp::Mul, vec![UnaryOp::AddScalar(1.0), UnaryOp::Relu]),
        (BinaryOp::Add, vec![UnaryOp::Clamp(-0.5, 0.25)]),
        (
            BinaryOp::Sub,
            vec![UnaryOp::LeakyRelu(0.1), UnaryOp::MulScalar(-3.0)],
        ),
        (BinaryOp::Max, vec![]),
    ];
    on_each_device("binary_then_fuses_up_to_two_unary_ops", |dev| {
        let mut r = rng(23);
        for (op, post) in &chains {
            for (sa, sb) in &shapes {
                let out_shape = broadcast(sa, sb).unwrap();
                let a = uniform(&mut r, numel(sa), -2.0, 2.0);
                let b = uniform(&mut r, numel(sb), -2.0, 2.0);
                let want: Vec<f64> = (0..numel(&out_shape))
                    .map(|i| {
                        let idx = unravel(i, &out_shape);
                        let u = f64::from(a[bcast_index(&idx, sa)]);
                        let v = f64::from(b[bcast_index(&idx, sb)]);
                        // Each step rounds to f32 on the device.
                        post.iter()
                            .fold(f64::from(binary_ref(*op, u, v) as f32), |x, &f| {
                                f64::from(unary_ref(f, x) as f32)
                            })
                    })
                    .collect();
                let y = up(dev, &a, sa)?.binary_then(*op, &up(dev, &b, sb)?, post)?;
                let what = format!("{op:?} then {post:?}, {sa:?} with {sb:?}");
                check_shape(&what, &y, &out_shape)?;
                check_close(&what, &down(&y)?, &want, 4.0 * U, 4.0 * U)?;
            }
        }
        let a = up(dev, &[1.0, 2.0], &[2])?;
        let three = [UnaryOp::Relu, UnaryOp::Neg, UnaryOp::Abs];
        assert!(a.binary_then(BinaryOp::Add, &a, &three).is_err());
        Ok(())
    });
}

#[test]
fn where_broadcasts_all_three() {
    // (cond, a, b) shapes. The condition holds 0, -0 (false) and 1, -1, 2 (true).
    let cases: Vec<[Vec<usize>; 3]> = vec![
        [vec![3, 1, 5], vec![4, 5], vec![1]],
        [vec![4, 5], vec![4, 5], vec![4, 5]],
        [vec![1], vec![7], vec![7]],
        [vec![6, 1], vec![1, 9], vec![]],
        [vec![0, 3], vec![1, 3], vec![3]],
        [vec![2, 1, 300], vec![2, 7, 1], vec![300]],
    ];
    on_each_device("where_broadcasts_all_three", |dev| {
        let mut r = rng(31);
        for [sc, sa, sb] in &cases {
            let c = from_set(&mut r, numel(sc), &[0.0, -0.0, 1.0, -1.0, 2.0]);
            let a = uniform(&mut r, numel(sa), -1.0, 1.0);
            let b = uniform(&mut r, numel(sb), 5.0, 6.0);
            let out_shape = broadcast(&broadcast(sc, sa).unwrap(), sb).unwrap();
            let want: Vec<f32> = (0..numel(&out_shape))
                .map(|i| {
                    let idx = unravel(i, &out_shape);
                    if c[bcast_index(&idx, sc)] != 0.0 {
                        a[bcast_index(&idx, sa)]
                    } else {
                        b[bcast_index(&idx, sb)]
                    }
                })
                .collect();
            let y = up(dev, &c, sc)?.where_(&up(dev, &a, sa)?, &up(dev, &b, sb)?)?;
            let what = format!("where {sc:?} {sa:?} {sb:?}");
            check_shape(&what, &y, &out_shape)?;
            // A select copies one operand: bit-exact.
            check_bits(&what, &down(&y)?, &want)?;
        }
        Ok(())
    });
}

// =============================================================================================
// Constructors

#[test]
fn full_zeros_arange_one_hot() {
    on_each_device("full_zeros_arange_one_hot", |dev| {
        for shape in [
            vec![],
            vec![0],
            vec![1],
            vec![257],
            vec![3, 0, 2],
            vec![5, 7, 11],
        ] {
            let f = GpuArray::full(dev, &shape, -2.75)?;
            check_shape("full", &f, &shape)?;
            check_bits(
                &format!("full {shape:?}"),
                &down(&f)?,
                &vec![-2.75; numel(&shape)],
            )?;
            let z = GpuArray::zeros(dev, &shape)?;
            check_bits(
                &format!("zeros {shape:?}"),
                &down(&z)?,
                &vec![0.0; numel(&shape)],
            )?;
        }
        // A pooled buffer that held data is fully overwritten by zeros (no stale values).
        drop(GpuArray::full(dev, &[300], 9.0)?.to_vec::<f32>()?);
        check_bits(
            "zeros after reuse",
            &down(&GpuArray::zeros(dev, &[300])?)?,
            &[0.0; 300],
        )?;

        // arange: start + i * step, one multiply and one add (maybe fused): 2 roundings of the
        // result's magnitude, <= 2u relative to max(|start|, |i step|); 4e-7 * that asserted.
        for (start, step, n) in [
            (0.0f32, 1.0f32, 0usize),
            (3.0, 0.5, 1),
            (-1.5, 0.25, 1000),
            (10.0, -0.1, 257),
        ] {
            let a = GpuArray::arange(dev, start, step, n)?;
            check_shape("arange", &a, &[n])?;
            let want: Vec<f64> = (0..n)
                .map(|i| f64::from(start) + i as f64 * f64::from(step))
                .collect();
            let scale = |i: usize| f64::from(start).abs().max(i as f64 * f64::from(step).abs());
            check_with(
                &format!("arange({start}, {step}, {n})"),
                &down(&a)?,
                &want,
                |i, _| 4e-7 * scale(i),
            )?;
        }

        // one_hot: exact 0/1.
        for (labels, classes) in [
            (vec![0u32, 4, 2, 4, 0], 5usize),
            (vec![], 3),
            (vec![0, 0], 1),
            (vec![6, 299, 0], 300),
        ] {
            let l = up_u32(dev, &labels, &[labels.len()])?;
            let y = l.one_hot(classes)?;
            check_shape("one_hot", &y, &[labels.len(), classes])?;
            let mut want = vec![0.0f32; labels.len() * classes];
            for (i, &c) in labels.iter().enumerate() {
                want[i * classes + c as usize] = 1.0;
            }
            check_bits(
                &format!("one_hot {labels:?} x {classes}"),
                &down(&y)?,
                &want,
            )?;
        }
        Ok(())
    });
}

// =============================================================================================
// Random

#[test]
fn threefry_host_matches_known_vectors() {
    // Random123's known-answer tests for threefry2x32_20 (also JAX's test_threefry_2x32).
    assert_eq!(threefry2x32([0, 0], [0, 0]), [0x6b20_0159, 0x99ba_4efe]);
    assert_eq!(
        threefry2x32([0xffff_ffff, 0xffff_ffff], [0xffff_ffff, 0xffff_ffff]),
        [0x1cb9_96fc, 0xbb00_2be7]
    );
    assert_eq!(
        threefry2x32([0x1319_8a2e, 0x0370_7344], [0x243f_6a88, 0x85a3_08d3]),
        [0xc492_3a9c, 0x483d_f7a0]
    );
}

/// The host reference of the uniform kernel, in f32 as the kernel computes it.
fn uniform_ref(seed: u64, offset: u32, i: u32, low: f32, high: f32) -> f32 {
    let r = threefry2x32([seed as u32, (seed >> 32) as u32], [i, offset]);
    let u = (r[0] >> 8) as f32 * (1.0 / 16_777_216.0);
    low + (high - low) * u
}

#[test]
fn random_uniform_matches_host_threefry_bits() {
    on_each_device("random_uniform_matches_host_threefry_bits", |dev| {
        // A seed with both key words non-zero, several offsets, n not a multiple of 256.
        for (seed, offset, n, low, high) in [
            (0x0123_4567_89ab_cdefu64, 0u32, 1000usize, 0.0f32, 1.0f32),
            (42, 7, 777, 0.0, 1.0),
            (0xdead_beef_0000_0001, 0xffff_ffff, 300, -2.0, 3.0),
            (7, 1, 513, -1.0, 1.0),
            (3, 0, 0, 0.0, 1.0),
        ] {
            let y = GpuArray::random(dev, &[n], Distribution::Uniform { low, high }, seed, offset)?;
            let got = down(&y)?;
            let want: Vec<f32> = (0..n as u32)
                .map(|i| uniform_ref(seed, offset, i, low, high))
                .collect();
            check_bits(
                &format!("uniform seed {seed:#x} offset {offset} [{low}, {high})"),
                &got,
                &want,
            )?;
            if let Some(v) = got.iter().find(|&&v| !(v >= low && v < high)) {
                return fail(format!("uniform value {v} outside [{low}, {high})"));
            }
        }
        // Shape does not matter, only the element index.
        let a = GpuArray::random(
            dev,
            &[6, 7],
            Distribution::Uniform {
                low: 0.0,
                high: 1.0,
            },
            9,
            3,
        )?;
        let want: Vec<f32> = (0..42).map(|i| uniform_ref(9, 3, i, 0.0, 1.0)).collect();
        check_bits("uniform [6, 7]", &down(&a)?, &want)?;
        Ok(())
    });
}

#[test]
fn random_normal_and_bernoulli_statistics() {
    on_each_device("random_normal_and_bernoulli_statistics", |dev| {
        let n = 200_000usize;
        let nf = n as f64;
        // Normal(mean 1.5, std 2): sample mean within 5 standard errors (std / sqrt n), sample std
        // within 5 standard errors of a std estimate (std / sqrt(2n)); P(false failure) < 1e-6.
        let (mean, std) = (1.5f32, 2.0f32);
        let y = down(&GpuArray::random(
            dev,
            &[n],
            Distribution::Normal { mean, std },
            1234,
            0,
        )?)?;
        if y.iter().any(|v| !v.is_finite()) {
            return fail("normal produced a non-finite value");
        }
        let m = y.iter().map(|&v| f64::from(v)).sum::<f64>() / nf;
        let s = (y.iter().map(|&v| (f64::from(v) - m).powi(2)).sum::<f64>() / (nf - 1.0)).sqrt();
        let (me, se) = (5.0 * 2.0 / nf.sqrt(), 5.0 * 2.0 / (2.0 * nf).sqrt());
        if (m - 1.5).abs() > me || (s - 2.0).abs() > se {
            return fail(format!(
                "normal: mean {m} (want 1.5 +- {me}), std {s} (want 2 +- {se})"
            ));
        }
        // Shape of the distribution: P(|z| < 1) = 0.6827, P(|z| < 2) = 0.9545, 5 binomial std errs.
        for (k, p) in [(1.0, 0.682_689_5), (2.0, 0.954_499_7)] {
            let frac = y
                .iter()
                .filter(|&&v| ((f64::from(v) - 1.5) / 2.0).abs() < k)
                .count() as f64
                / nf;
            let tol = 5.0 * (p * (1.0 - p) / nf).sqrt();
            if (frac - p).abs() > tol {
                return fail(format!("normal: P(|z| < {k}) = {frac}, want {p} +- {tol}"));
            }
        }
        // Reproducible; another offset gives another stream.
        let again = down(&GpuArray::random(
            dev,
            &[n],
            Distribution::Normal { mean, std },
            1234,
            0,
        )?)?;
        check_bits("normal repeat", &again, &y)?;
        let other = down(&GpuArray::random(
            dev,
            &[n],
            Distribution::Normal { mean, std },
            1234,
            1,
        )?)?;
        if other.iter().zip(&y).filter(|(a, b)| a == b).count() > 10 {
            return fail("normal: offset 1 repeats offset 0");
        }

        // Bernoulli(p): only 0/1, rate within 5 binomial standard errors; the 0/1 pattern is the
        // host's `unit(x0) < p` exactly.
        for p in [0.3f32, 0.0, 1.0, 0.9] {
            let y = down(&GpuArray::random(
                dev,
                &[n],
                Distribution::Bernoulli { p },
                99,
                5,
            )?)?;
            if y.iter().any(|&v| v != 0.0 && v != 1.0) {
                return fail("bernoulli produced a value other than 0 and 1");
            }
            let rate = y.iter().filter(|&&v| v == 1.0).count() as f64 / nf;
            let tol = 5.0 * (f64::from(p) * (1.0 - f64::from(p)) / nf).sqrt();
            if (rate - f64::from(p)).abs() > tol {
                return fail(format!("bernoulli({p}): rate {rate}, want {p} +- {tol}"));
            }
            let want: Vec<f32> = (0..2000u32)
                .map(|i| {
                    if uniform_ref(99, 5, i, 0.0, 1.0) < p {
                        1.0
                    } else {
                        0.0
                    }
                })
                .collect();
            check_bits(&format!("bernoulli({p}) pattern"), &y[..2000], &want)?;
        }
        Ok(())
    });
}

// =============================================================================================
// Matmul

/// C = op(A) @ op(B) in f64, with error bounds, batch dims broadcast.
fn matmul_ref(
    a: &[f32],
    sa: &[usize],
    ta: bool,
    b: &[f32],
    sb: &[usize],
    tb: bool,
) -> (Vec<usize>, Vec<Acc>) {
    let (ra, ca) = (sa[sa.len() - 2], sa[sa.len() - 1]);
    let (rb, cb) = (sb[sb.len() - 2], sb[sb.len() - 1]);
    let (m, k) = if ta { (ca, ra) } else { (ra, ca) };
    let (k2, n) = if tb { (cb, rb) } else { (rb, cb) };
    assert_eq!(k, k2);
    let ba = &sa[..sa.len() - 2];
    let bb = &sb[..sb.len() - 2];
    let batch = broadcast(ba, bb).unwrap();
    let mut out = Vec::new();
    for bi in 0..numel(&batch) {
        let idx = unravel(bi, &batch);
        let oa = bcast_index(&idx, ba) * ra * ca;
        let ob = bcast_index(&idx, bb) * rb * cb;
        for i in 0..m {
            for j in 0..n {
                let mut acc = Acc::default();
                for kk in 0..k {
                    let av = if ta {
                        a[oa + kk * ca + i]
                    } else {
                        a[oa + i * ca + kk]
                    };
                    let bv = if tb {
                        b[ob + j * cb + kk]
                    } else {
                        b[ob + kk * cb + j]
                    };
                    acc.add(f64::from(av) * f64::from(bv));
                }
                out.push(acc);
            }
        }
    }
    let mut shape = batch;
    shape.extend([m, n]);
    (shape, out)
}

#[test]
fn matmul_shapes_transposes_and_batches() {
    // (batch of A, batch of B, M, K, N)
    type Case = (Vec<usize>, Vec<usize>, usize, usize, usize);
    let cases: Vec<Case> = vec![
        (vec![], vec![], 33, 65, 17),
        (vec![], vec![], 32, 32, 32),
        (vec![], vec![], 67, 31, 129),
        (vec![], vec![], 1, 40, 1),
        (vec![], vec![], 1, 7, 45),
        (vec![], vec![], 45, 7, 1),
        (vec![], vec![], 1, 1, 1),
        (vec![], vec![], 5, 0, 3), // K = 0: zeros
        (vec![], vec![], 0, 4, 3), // M = 0: empty
        (vec![], vec![], 4, 3, 0), // N = 0: empty
        (vec![3], vec![3], 9, 13, 35),
        (vec![2, 1], vec![3], 5, 7, 4), // batch [2, 3]
        (vec![4], vec![], 9, 6, 11),    // B shared by every batch
        (vec![], vec![1, 5], 3, 33, 2), // A shared, batch [1, 5]
        (vec![2, 1, 3], vec![1, 4, 1], 17, 5, 33),
        (vec![0], vec![1], 3, 3, 3), // empty batch
        // Over a million multiply-adds with N (or M) not a multiple of 4: padded to the subgroup
        // kernels where the adapter has them (a classifier layer), sliced back.
        (vec![2], vec![], 64, 1000, 10),
        (vec![], vec![], 10, 3136, 66),
    ];
    on_each_device("matmul_shapes_transposes_and_batches", |dev| {
        let mut r = rng(41);
        for (ba, bb, m, k, n) in &cases {
            for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
                let mut sa = ba.clone();
                sa.extend(if ta { [*k, *m] } else { [*m, *k] });
                let mut sb = bb.clone();
                sb.extend(if tb { [*n, *k] } else { [*k, *n] });
                let a = uniform(&mut r, numel(&sa), -1.0, 1.0);
                let b = uniform(&mut r, numel(&sb), -1.0, 1.0);
                let (shape, want) = matmul_ref(&a, &sa, ta, &b, &sb, tb);
                let t = |x: bool| if x { Transpose::Yes } else { Transpose::No };
                let c = up(dev, &a, &sa)?.matmul(&up(dev, &b, &sb)?, t(ta), t(tb))?;
                let what = format!(
                    "matmul {sa:?}{} @ {sb:?}{}",
                    if ta { "^T" } else { "" },
                    if tb { "^T" } else { "" }
                );
                check_shape(&what, &c, &shape)?;
                // K-term f32 dot products: the rigorous gamma_(K+1) sum|a b| bound (Acc::bound).
                check_acc(&what, &down(&c)?, &want, 0.0)?;
            }
        }
        Ok(())
    });
}

// =============================================================================================
// Conv2d

/// Forward, input-gradient and weight-gradient references: each forward term
/// x[b, ci, iy, ix] * w[co, c, ky, kx] contributes to y[b, co, oy, ox]; the adjoint terms
/// dy * w and dy * x land on dx and dw.
fn conv_ref(
    x: &[f32],
    xs: [usize; 4],
    w: &[f32],
    ws: [usize; 4],
    dy: &[f32],
    p: &Conv2dParams,
) -> ([usize; 4], Vec<Acc>, Vec<Acc>, Vec<Acc>) {
    let [n, cin, h, wd] = xs;
    let [cout, cpg, kh, kw] = ws;
    let g = p.groups;
    let opg = cout / g;
    let oh = (h + 2 * p.padding.0 - p.dilation.0 * (kh - 1) - 1) / p.stride.0 + 1;
    let ow = (wd + 2 * p.padding.1 - p.dilation.1 * (kw - 1) - 1) / p.stride.1 + 1;
    let mut y = vec![Acc::default(); n * cout * oh * ow];
    let mut dx = vec![Acc::default(); x.len()];
    let mut dw = vec![Acc::default(); w.len()];
    for b in 0..n {
        for co in 0..cout {
            let ci0 = (co / opg) * cpg;
            for oy in 0..oh {
                for ox in 0..ow {
                    let yi = ((b * cout + co) * oh + oy) * ow + ox;
                    for c in 0..cpg {
                        for ky in 0..kh {
                            let iy = (oy * p.stride.0 + ky * p.dilation.0) as isize
                                - p.padding.0 as isize;
                            if iy < 0 || iy >= h as isize {
                                continue;
                            }
                            for kx in 0..kw {
                                let ix = (ox * p.stride.1 + kx * p.dilation.1) as isize
                                    - p.padding.1 as isize;
                                if ix < 0 || ix >= wd as isize {
                                    continue;
                                }
                                let xi = ((b * cin + ci0 + c) * h + iy as usize) * wd + ix as usize;
                                let wi = ((co * cpg + c) * kh + ky) * kw + kx;
                                y[yi].add(f64::from(x[xi]) * f64::from(w[wi]));
                                dx[xi].add(f64::from(dy[yi]) * f64::from(w[wi]));
                                dw[wi].add(f64::from(dy[yi]) * f64::from(x[xi]));
                            }
                        }
                    }
                }
            }
        }
    }
    ([n, cout, oh, ow], y, dx, dw)
}

#[test]
fn conv2d_forward_and_backward() {
    let cp = |s: (usize, usize), p: (usize, usize), d: (usize, usize), g: usize| Conv2dParams {
        stride: s,
        padding: p,
        dilation: d,
        groups: g,
    };
    // (x shape, w shape, params)
    let cases: Vec<([usize; 4], [usize; 4], Conv2dParams)> = vec![
        ([2, 3, 7, 9], [4, 3, 3, 3], cp((1, 1), (0, 0), (1, 1), 1)),
        ([2, 3, 8, 7], [5, 3, 3, 3], cp((2, 2), (1, 1), (1, 1), 1)), // stride 2, padding 1
        ([1, 2, 9, 9], [3, 2, 3, 3], cp((1, 1), (2, 2), (2, 2), 1)), // dilation 2
        ([2, 4, 6, 5], [6, 2, 3, 2], cp((2, 1), (1, 0), (1, 2), 2)), // groups 2, mixed
        ([2, 4, 9, 8], [4, 2, 3, 3], cp((2, 2), (1, 1), (1, 1), 2)), // groups 2, stride 2, pad 1
        ([1, 3, 5, 5], [3, 1, 3, 3], cp((1, 1), (1, 1), (1, 1), 3)), // depthwise
        ([1, 6, 5, 4], [9, 2, 2, 3], cp((1, 2), (1, 1), (2, 1), 3)), // groups 3, C_out/g = 3
        ([3, 5, 1, 1], [2, 5, 1, 1], cp((1, 1), (0, 0), (1, 1), 1)), // 1x1 on 1x1
        ([1, 1, 10, 11], [1, 1, 2, 2], cp((3, 3), (0, 0), (1, 1), 1)), // stride > kernel: gaps
        ([1, 2, 3, 3], [2, 2, 5, 5], cp((1, 1), (1, 1), (1, 1), 1)), // kernel = padded input
        ([1, 1, 17, 19], [2, 1, 4, 5], cp((3, 2), (2, 1), (2, 3), 1)),
        ([2, 2, 31, 37], [3, 2, 3, 3], cp((1, 1), (1, 1), (1, 1), 1)), // > 256 outputs per plane
        // OH OW a multiple of 4: col gets zero rows up to a multiple of 4 (9 -> 12, 18 -> 20)
        // where the adapter has the vec4 subgroup matmul, as in the CNN's layers.
        ([2, 1, 8, 8], [4, 1, 3, 3], cp((1, 1), (1, 1), (1, 1), 1)),
        ([3, 2, 6, 6], [8, 2, 3, 3], cp((1, 1), (1, 1), (1, 1), 1)),
        // P a multiple of 4 (im2col4, four pixels per invocation) with OW not one: a group of four
        // spans two rows; dilation 2 and padding 2.
        ([1, 2, 10, 10], [3, 2, 3, 3], cp((1, 1), (2, 2), (2, 2), 1)),
    ];
    on_each_device("conv2d_forward_and_backward", |dev| {
        let mut r = rng(51);
        for (xs, ws, p) in &cases {
            let x = uniform(&mut r, numel(xs), -1.0, 1.0);
            let w = uniform(&mut r, numel(ws), -1.0, 1.0);
            let probe_ys = {
                let oh =
                    (xs[2] + 2 * p.padding.0 - p.dilation.0 * (ws[2] - 1) - 1) / p.stride.0 + 1;
                let ow =
                    (xs[3] + 2 * p.padding.1 - p.dilation.1 * (ws[3] - 1) - 1) / p.stride.1 + 1;
                [xs[0], ws[0], oh, ow]
            };
            let dy = uniform(&mut r, numel(&probe_ys), -1.0, 1.0);
            let (ys, y_ref, dx_ref, dw_ref) = conv_ref(&x, *xs, &w, *ws, &dy, p);
            assert_eq!(ys, probe_ys);
            let what = format!("conv2d x {xs:?} w {ws:?} {p:?}");
            let (xg, wg, dyg) = (up(dev, &x, xs)?, up(dev, &w, ws)?, up(dev, &dy, &ys)?);
            // Each output is a sum of products (at most C_in/g * KH * KW, N * OH * OW or
            // C_out/g * KH * KW terms): the rigorous gamma_(n+1) bound of Acc::bound.
            let y = xg.conv2d(&wg, p)?;
            check_shape(&what, &y, &ys)?;
            check_acc(&format!("{what} forward"), &down(&y)?, &y_ref, 0.0)?;
            // With a bias and leaky_relu (in the matmul's store with one group, after it with
            // more): one more term per output, and an activation that moves no value by more
            // than it moves its input, plus one rounding.
            let bias = uniform(&mut r, ws[0], -1.0, 1.0);
            let plane = ys[2] * ys[3];
            let fused_ref: Vec<Acc> = y_ref
                .iter()
                .enumerate()
                .map(|(i, a)| {
                    let mut a = *a;
                    a.add(f64::from(bias[i / plane % ws[0]]));
                    let v = if a.v > 0.0 { a.v } else { 0.1 * a.v };
                    Acc {
                        v,
                        abs: a.abs,
                        n: a.n + 1,
                    }
                })
                .collect();
            let fused = xg.conv2d_bias_act(
                &wg,
                Some(&up(dev, &bias, &[ws[0]])?),
                Some(UnaryOp::LeakyRelu(0.1)),
                p,
            )?;
            check_shape(&what, &fused, &ys)?;
            check_acc(
                &format!("{what} bias + leaky_relu"),
                &down(&fused)?,
                &fused_ref,
                0.0,
            )?;
            let dx = dyg.conv2d_backward_input(&wg, xs, p)?;
            check_shape(&what, &dx, xs)?;
            check_acc(&format!("{what} backward_input"), &down(&dx)?, &dx_ref, 0.0)?;
            let dw = dyg.conv2d_backward_weight(&xg, ws, p)?;
            check_shape(&what, &dw, ws)?;
            check_acc(
                &format!("{what} backward_weight"),
                &down(&dw)?,
                &dw_ref,
                0.0,
            )?;
        }
        Ok(())
    });
}

// =============================================================================================
// Pooling

struct PoolRef {
    shape: [usize; 4],
    max: Vec<f32>,
    arg: Vec<u32>,
    dx_max: Vec<Acc>,
    avg: Vec<Acc>,
    dx_avg: Vec<Acc>,
}

/// Max pooling takes the first maximum in window order (ky, then kx) and ignores padding; average
/// pooling divides by KH * KW (padding counted as zeros, PyTorch's count_include_pad).
fn pool_ref(x: &[f32], xs: [usize; 4], pp: &Pool2dParams, dy: &[f32]) -> PoolRef {
    let [n, c, h, w] = xs;
    let (kh, kw) = pp.kernel;
    let oh = (h + 2 * pp.padding.0 - kh) / pp.stride.0 + 1;
    let ow = (w + 2 * pp.padding.1 - kw) / pp.stride.1 + 1;
    let area = (kh * kw) as f64;
    let total = n * c * oh * ow;
    let mut r = PoolRef {
        shape: [n, c, oh, ow],
        max: vec![0.0; total],
        arg: vec![0; total],
        dx_max: vec![Acc::default(); x.len()],
        avg: vec![Acc::default(); total],
        dx_avg: vec![Acc::default(); x.len()],
    };
    for pl in 0..n * c {
        for oy in 0..oh {
            for ox in 0..ow {
                let o = (pl * oh + oy) * ow + ox;
                let mut best: Option<(f32, usize)> = None;
                for ky in 0..kh {
                    let iy = (oy * pp.stride.0 + ky) as isize - pp.padding.0 as isize;
                    if iy < 0 || iy >= h as isize {
                        continue;
                    }
                    for kx in 0..kw {
                        let ix = (ox * pp.stride.1 + kx) as isize - pp.padding.1 as isize;
                        if ix < 0 || ix >= w as isize {
                            continue;
                        }
                        let j = iy as usize * w + ix as usize;
                        let v = x[pl * h * w + j];
                        if best.is_none_or(|(b, _)| v > b) {
                            best = Some((v, j));
                        }
                        r.avg[o].add(f64::from(v) / area);
                        r.dx_avg[pl * h * w + j].add(f64::from(dy[o]) / area);
                    }
                }
                let (b, j) = best.expect("every window holds an input element");
                r.max[o] = b;
                r.arg[o] = j as u32;
                r.dx_max[pl * h * w + j].add(f64::from(dy[o]));
            }
        }
    }
    r
}

#[test]
fn pool2d_max_and_avg_forward_backward() {
    let pp = |k: (usize, usize), s: (usize, usize), p: (usize, usize)| Pool2dParams {
        kernel: k,
        stride: s,
        padding: p,
    };
    let cases: Vec<([usize; 4], Pool2dParams)> = vec![
        ([2, 3, 8, 8], Pool2dParams::square(2)),
        ([1, 2, 7, 9], pp((3, 3), (2, 2), (1, 1))), // padding
        ([2, 2, 6, 5], pp((2, 2), (1, 1), (0, 0))), // overlapping windows
        ([1, 3, 5, 7], pp((3, 2), (1, 2), (1, 1))),
        ([3, 1, 1, 1], pp((1, 1), (1, 1), (0, 0))),
        ([1, 1, 4, 4], pp((4, 4), (4, 4), (2, 2))), // padding = half the window
        ([2, 3, 19, 23], pp((3, 3), (2, 2), (1, 1))), // > 256 elements per plane
        ([1, 2, 10, 11], pp((2, 2), (3, 3), (1, 0))), // stride > window: uncovered inputs get 0
        // W % 4 == 0 (and PW == 0): the forward reads x as vec4s, the backward writes dx as vec4s;
        // outputs per row not a multiple of 4, overlapping windows, spans past the row's end.
        ([2, 2, 9, 8], pp((3, 3), (1, 1), (0, 0))),
        ([1, 3, 8, 12], pp((2, 3), (2, 3), (1, 0))),
        ([1, 2, 6, 20], pp((2, 2), (5, 5), (1, 0))), // stride > window
        ([2, 1, 7, 16], pp((5, 5), (3, 3), (2, 2))), // PW > 0: scalar forward, vec4 backward
        ([1, 2, 5, 4], pp((1, 4), (1, 1), (0, 0))),
    ];
    on_each_device("pool2d_max_and_avg_forward_backward", |dev| {
        let mut r = rng(61);
        for (xs, p) in &cases {
            // Values from a small set: ties in most windows. A second pass uses all-negative inputs,
            // where a padded zero must never win.
            for set in [&[0.0f32, 1.0, 2.0][..], &[-3.0, -2.0, -1.5][..]] {
                let x = from_set(&mut r, numel(xs), set);
                let oh = (xs[2] + 2 * p.padding.0 - p.kernel.0) / p.stride.0 + 1;
                let ow = (xs[3] + 2 * p.padding.1 - p.kernel.1) / p.stride.1 + 1;
                let dy = uniform(&mut r, xs[0] * xs[1] * oh * ow, -1.0, 1.0);
                let rf = pool_ref(&x, *xs, p, &dy);
                let what = format!("pool x {xs:?} {p:?} values {set:?}");
                let xg = up(dev, &x, xs)?;
                let (y, arg) = xg.max_pool2d(p)?;
                check_shape(&what, &y, &rf.shape)?;
                check_shape(&what, &arg, &rf.shape)?;
                check_bits(&format!("{what} max"), &down(&y)?, &rf.max)?;
                check_eq(
                    &format!("{what} argmax (first on ties)"),
                    &down_u32(&arg)?,
                    &rf.arg,
                )?;
                let dyg = up(dev, &dy, &rf.shape)?;
                let dx = dyg.max_pool2d_backward(&arg, xs, p)?;
                check_shape(&what, &dx, xs)?;
                // A sum of the dy of the windows whose max is this element: Acc bound.
                check_acc(
                    &format!("{what} max backward"),
                    &down(&dx)?,
                    &rf.dx_max,
                    0.0,
                )?;

                let ya = xg.avg_pool2d(p)?;
                check_shape(&what, &ya, &rf.shape)?;
                // A sum of KH*KW terms, then one division (<= 2.5 ulp: 3u relative).
                check_acc(&format!("{what} avg"), &down(&ya)?, &rf.avg, 3.0 * U)?;
                let dxa = dyg.avg_pool2d_backward(xs, p)?;
                check_acc(
                    &format!("{what} avg backward"),
                    &down(&dxa)?,
                    &rf.dx_avg,
                    3.0 * U,
                )?;
            }
        }
        Ok(())
    });
}

// =============================================================================================
// A dispatch over more than 65535 workgroups

#[test]
fn folded_dispatch_over_65535_workgroups() {
    on_each_device("folded_dispatch_over_65535_workgroups", |dev: &Device| {
        // 65535 workgroups of 256 cover 16,776,960 elements; 1000 more need a second row of the
        // folded (x, y, z) grid.
        let n = 65_535 * 256 + 1000;
        let limit = dev.info().limits.max_compute_workgroups_per_dimension as usize;
        if limit * 256 >= n {
            // Still worth running (it is cheap), but it would not exercise the fold.
            eprintln!("note: this adapter allows {limit} workgroups per dimension; no fold needed");
        }
        if (n * 4) as u64 > dev.max_binding_bytes() {
            return Err(Flow::Skip(format!(
                "needs {} byte bindings, max is {}",
                n * 4,
                dev.max_binding_bytes()
            )));
        }
        // arange, then unary AddScalar (four or eight elements per invocation: not folded here),
        // then `where`, one element per invocation: folded. Below 2^24 every value is exact; above
        // it host and kernel do the same two correctly rounded steps (i to f32, then + 0.5), so
        // the comparison is exact everywhere.
        let y = GpuArray::arange(dev, 0.0, 1.0, n)?.unary(UnaryOp::AddScalar(0.5))?;
        let cond = GpuArray::full(dev, &[n], 1.0)?;
        let y = cond.where_(&y, &GpuArray::zeros(dev, &[1])?)?;
        let got = down(&y)?;
        if got.len() != n {
            return fail(format!("got {} values, want {n}", got.len()));
        }
        let edge = 65_535 * 256;
        let mut r = rng(71);
        let mut probes: Vec<usize> = vec![0, 1, 255, 256, edge - 1, edge, edge + 1, n - 1];
        probes.extend((0..64).map(|_| r.random_range(0..n)));
        for i in probes {
            let want = (i as f32) + 0.5;
            if got[i] != want {
                return fail(format!("element {i}: got {}, want {want}", got[i]));
            }
        }
        // Counting: no element was skipped or written twice, the total of a fill is exact.
        let ones = GpuArray::full(dev, &[n], 1.0)?;
        let count = ones.reduce_all(wgrad_device::ReduceOp::Sum)?;
        check_bits("count of a fill", &down(&count)?, &[n as f32])?;
        Ok(())
    });
}
