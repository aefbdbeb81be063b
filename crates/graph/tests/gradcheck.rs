//! Every differentiable op passes `gradcheck` (first order) and a second-order check (gradcheck of
//! its gradient), including broadcasting cases; losses of small models match finite differences.
//!
//! Each op `op(xs)` is checked through `sum(op(xs)^2 * w)` for fixed weights w: the square makes the
//! second derivative non-zero for linear ops too, so every backward rule is itself differentiated.
//! Step 1e-2 in f32: truncation error O(eps^2 f''') ~ 1e-4 relative and rounding
//! O(ulp |f| / eps) ~ 1e-5, so a tolerance of 1e-2 (relative to max(1, |numeric|)) leaves margin
//! while still catching any wrong rule (those are off by O(1)).

use anyhow::Result;
use wgrad_device::threefry2x32;
use wgrad_graph::{
    Conv2dParams, Device, Pool2dParams, Tensor, Transpose, UnaryOp, grad, gradcheck, no_grad,
};

type F = Box<dyn Fn(&[Tensor]) -> wgrad_graph::Result<Tensor>>;
type UnaryFn = fn(&Tensor) -> wgrad_graph::Result<Tensor>;
type BinaryFn = fn(&Tensor, &Tensor) -> wgrad_graph::Result<Tensor>;

const EPS: f32 = 1e-2;
const TOL: f32 = 1e-2;

/// Deterministic test values in [lo, hi), kept at least `gap` away from 0 (kinks of relu/abs).
fn values(n: usize, seed: u32, lo: f32, hi: f32, gap: f32) -> Vec<f32> {
    (0..n)
        .map(|i| {
            let [a, _] = threefry2x32([seed, 7], [i as u32, 0]);
            let mut v = lo + (hi - lo) * ((a >> 8) as f32 / (1u32 << 24) as f32);
            if v.abs() < gap {
                v = if v < 0.0 { -gap - v.abs() } else { gap + v };
            }
            v
        })
        .collect()
}

fn t(dev: &Device, shape: &[usize], seed: u32, lo: f32, hi: f32) -> Result<Tensor> {
    let n = shape.iter().product();
    Ok(Tensor::from_vec(values(n, seed, lo, hi, 0.05), shape, dev)?)
}

fn squared(f: impl Fn(&[Tensor]) -> wgrad_graph::Result<Tensor> + 'static) -> F {
    Box::new(move |xs| {
        let y = f(xs)?;
        y.mul(&y)?.sum_all()
    })
}

/// The gradient of `f` as a function (flattened and concatenated), for the second-order check.
fn gradient_of(f: &F) -> impl Fn(&[Tensor]) -> wgrad_graph::Result<Tensor> + '_ {
    move |xs: &[Tensor]| {
        let y = f(xs)?;
        let gs = grad(&y, &xs.iter().collect::<Vec<_>>(), true)?;
        let flat: Vec<Tensor> = gs
            .iter()
            .map(|g| g.reshape(&[g.numel()]))
            .collect::<wgrad_graph::Result<_>>()?;
        Tensor::concat(&flat.iter().collect::<Vec<_>>(), 0)
    }
}

fn check(
    name: &str,
    f: F,
    inputs: Vec<Tensor>,
    second_order: bool,
    worst: &mut Vec<(String, f32, f32)>,
) -> Result<()> {
    let r1 = gradcheck(&f, &inputs, EPS, TOL)?;
    assert!(r1.passed, "{name}: {r1}");
    let mut e2 = f32::NAN;
    if second_order {
        let r2 = gradcheck(gradient_of(&f), &inputs, EPS, TOL)?;
        assert!(r2.passed, "{name} (second order): {r2}");
        e2 = r2.max_err;
    }
    worst.push((name.to_string(), r1.max_err, e2));
    Ok(())
}

#[test]
fn every_op_passes_first_and_second_order_gradcheck() -> Result<()> {
    let dev = Device::new()?;
    let d = &dev;
    let mut worst = Vec::new();

    // Element-wise unary ops on inputs in their smooth domain.
    let unary: Vec<(&str, UnaryFn, f32, f32)> = vec![
        ("neg", |x| x.neg(), -2.0, 2.0),
        ("abs", |x| x.abs(), -2.0, 2.0),
        ("exp", |x| x.exp(), -1.0, 1.0),
        ("log", |x| x.log(), 0.5, 2.0),
        ("sqrt", |x| x.sqrt(), 0.5, 2.0),
        ("rsqrt", |x| x.rsqrt(), 0.5, 2.0),
        ("recip", |x| x.recip(), 0.5, 2.0),
        ("square", |x| x.square(), -2.0, 2.0),
        ("sin", |x| x.sin(), -2.0, 2.0),
        ("cos", |x| x.cos(), -2.0, 2.0),
        ("relu", |x| x.relu(), -2.0, 2.0),
        ("leaky_relu", |x| x.leaky_relu(0.1), -2.0, 2.0),
        ("elu", |x| x.elu(1.0), -2.0, 2.0),
        ("gelu", |x| x.gelu(), -2.0, 2.0),
        ("sigmoid", |x| x.sigmoid(), -3.0, 3.0),
        ("tanh", |x| x.tanh(), -2.0, 2.0),
        ("softplus", |x| x.softplus(), -2.0, 2.0),
        ("add_scalar", |x| x.add_scalar(1.5), -2.0, 2.0),
        ("mul_scalar", |x| x.mul_scalar(-0.7), -2.0, 2.0),
        ("powf(3)", |x| x.powf(3.0), -1.5, 1.5),
        ("powf(0.5)", |x| x.powf(0.5), 0.5, 2.0),
        ("clamp", |x| x.clamp(-0.5, 0.5), -2.0, 2.0),
        ("max_scalar", |x| x.max_scalar(0.3), -2.0, 2.0),
        ("min_scalar", |x| x.min_scalar(0.3), -2.0, 2.0),
    ];
    // Clamp and the scalar max/min get inputs at least 2 eps away from their kinks (+-0.5, 0.3).
    let off_kinks = [-1.7, -0.9, -0.3, 0.1, 0.45, 0.8, 1.3, -0.2, 0.25, 1.9];
    for (i, (name, op, lo, hi)) in unary.into_iter().enumerate() {
        let x = if ["clamp", "max_scalar", "min_scalar"].contains(&name) {
            Tensor::from_vec(off_kinks.to_vec(), &[2, 5], d)?
        } else {
            t(d, &[2, 5], 100 + i as u32, lo, hi)?
        };
        check(
            name,
            squared(move |xs| op(&xs[0])),
            vec![x],
            true,
            &mut worst,
        )?;
    }

    // Binary ops with broadcasting: [2, 3, 1] with [3, 4] -> [2, 3, 4].
    let binary: Vec<(&str, BinaryFn, f32, f32)> = vec![
        ("add (broadcast)", |a, b| a.add(b), -2.0, 2.0),
        ("sub (broadcast)", |a, b| a.sub(b), -2.0, 2.0),
        ("mul (broadcast)", |a, b| a.mul(b), -2.0, 2.0),
        ("div (broadcast)", |a, b| a.div(b), 0.5, 2.0),
        ("pow (broadcast)", |a, b| a.pow(b), 0.5, 2.0),
        ("maximum (broadcast)", |a, b| a.maximum(b), -2.0, 2.0),
        ("minimum (broadcast)", |a, b| a.minimum(b), -2.0, 2.0),
    ];
    for (i, (name, op, lo, hi)) in binary.into_iter().enumerate() {
        let a = t(d, &[2, 3, 1], 200 + i as u32, lo, hi)?;
        let b = t(d, &[3, 4], 300 + i as u32, lo, hi)?;
        check(
            name,
            squared(move |xs| op(&xs[0], &xs[1])),
            vec![a, b],
            true,
            &mut worst,
        )?;
    }
    // add_act: a fused bias + activation, a bias [3, 1] broadcast over [2, 3, 4]. |a| >= 0.6
    // and |b| <= 0.5 keep a + b off the kinks of relu and leaky_relu.
    let acts: Vec<(&str, UnaryOp)> = vec![
        ("add_act relu", UnaryOp::Relu),
        ("add_act leaky_relu", UnaryOp::LeakyRelu(0.1)),
        ("add_act elu", UnaryOp::Elu(1.0)),
        ("add_act sigmoid", UnaryOp::Sigmoid),
        ("add_act tanh", UnaryOp::Tanh),
        ("add_act gelu (unfused)", UnaryOp::Gelu),
    ];
    for (i, (name, act)) in acts.into_iter().enumerate() {
        let a = Tensor::from_vec(values(24, 400 + i as u32, -2.0, 2.0, 0.6), &[2, 3, 4], d)?;
        let b = t(d, &[3, 1], 410 + i as u32, -0.5, 0.5)?;
        // Same values as the unfused composition.
        let fused = a.add_act(&b, act)?.to_vec()?;
        let plain = a.add(&b)?.unary(act)?.to_vec()?;
        for (u, v) in fused.iter().zip(&plain) {
            assert!(
                (u - v).abs() <= 1e-6 * v.abs().max(1.0),
                "{name}: {u} vs {v}"
            );
        }
        check(
            name,
            squared(move |xs| xs[0].add_act(&xs[1], act)),
            vec![a, b],
            true,
            &mut worst,
        )?;
    }
    {
        let a = t(d, &[3, 4], 11, -2.0, 2.0)?;
        let b = t(d, &[3, 4], 12, -2.0, 2.0)?;
        check(
            "mul (same shape)",
            squared(|xs| xs[0].mul(&xs[1])),
            vec![a, b],
            true,
            &mut worst,
        )?;
        let cond = Tensor::from_vec(vec![1.0, 0.0, 1.0, 0.0], &[4], d)?;
        let a = t(d, &[3, 4], 13, -2.0, 2.0)?;
        let b = t(d, &[1], 14, -2.0, 2.0)?;
        check(
            "where",
            squared(move |xs| cond.where_(&xs[0], &xs[1])),
            vec![a, b],
            true,
            &mut worst,
        )?;
        let a = t(d, &[3, 4], 15, -2.0, 2.0)?;
        let b = t(d, &[3, 4], 16, -2.0, 2.0)?;
        check(
            "operators (&a * &b - &a)",
            squared(|xs| &(&xs[0] * &xs[1])? - &xs[0]),
            vec![a, b],
            true,
            &mut worst,
        )?;
    }

    // Matmul: plain, batched with a broadcast batch dim, every transpose combination, 1-D operands.
    {
        let a = t(d, &[3, 4], 20, -1.0, 1.0)?;
        let b = t(d, &[4, 5], 21, -1.0, 1.0)?;
        check(
            "matmul",
            squared(|xs| xs[0].matmul(&xs[1])),
            vec![a, b],
            true,
            &mut worst,
        )?;
        let a = t(d, &[2, 3, 4], 22, -1.0, 1.0)?;
        let b = t(d, &[4, 2], 23, -1.0, 1.0)?;
        check(
            "matmul (batched, broadcast)",
            squared(|xs| xs[0].matmul(&xs[1])),
            vec![a, b],
            true,
            &mut worst,
        )?;
        for (ta, tb) in [
            (Transpose::Yes, Transpose::No),
            (Transpose::No, Transpose::Yes),
            (Transpose::Yes, Transpose::Yes),
        ] {
            let sa = if ta == Transpose::Yes { [4, 3] } else { [3, 4] };
            let sb = if tb == Transpose::Yes { [5, 4] } else { [4, 5] };
            let a = t(d, &sa, 24, -1.0, 1.0)?;
            let b = t(d, &sb, 25, -1.0, 1.0)?;
            check(
                &format!("matmul_t({ta:?}, {tb:?})"),
                squared(move |xs| xs[0].matmul_t(&xs[1], ta, tb)),
                vec![a, b],
                true,
                &mut worst,
            )?;
        }
        let v = t(d, &[4], 26, -1.0, 1.0)?;
        let m = t(d, &[4, 3], 27, -1.0, 1.0)?;
        check(
            "matmul (vector @ matrix)",
            squared(|xs| xs[0].matmul(&xs[1])),
            vec![v, m],
            true,
            &mut worst,
        )?;
    }

    // Reductions and the softmax family.
    {
        let x = || t(d, &[3, 4, 2], 30, -2.0, 2.0);
        check(
            "sum(axis 1)",
            squared(|xs| xs[0].sum(1, false)),
            vec![x()?],
            true,
            &mut worst,
        )?;
        check(
            "sum(axis -1, keepdim)",
            squared(|xs| xs[0].sum(-1, true)),
            vec![x()?],
            true,
            &mut worst,
        )?;
        check(
            "mean(axis 0)",
            squared(|xs| xs[0].mean(0, false)),
            vec![x()?],
            true,
            &mut worst,
        )?;
        check(
            "max(axis 1)",
            squared(|xs| xs[0].max(1, false)),
            vec![x()?],
            true,
            &mut worst,
        )?;
        check(
            "min(axis 2, keepdim)",
            squared(|xs| xs[0].min(2, true)),
            vec![x()?],
            true,
            &mut worst,
        )?;
        check(
            "sum_all",
            squared(|xs| xs[0].sum_all()),
            vec![x()?],
            true,
            &mut worst,
        )?;
        check(
            "mean_all",
            squared(|xs| xs[0].mean_all()),
            vec![x()?],
            true,
            &mut worst,
        )?;
        check(
            "var(axis 1, unbiased)",
            squared(|xs| xs[0].var(1, false, 1)),
            vec![x()?],
            true,
            &mut worst,
        )?;
        check(
            "softmax(axis 1)",
            squared(|xs| xs[0].softmax(1)),
            vec![x()?],
            true,
            &mut worst,
        )?;
        check(
            "log_softmax(axis -1)",
            squared(|xs| xs[0].log_softmax(-1)),
            vec![x()?],
            true,
            &mut worst,
        )?;
        let labels = Tensor::from_slice(&[2u32, 0, 3], &[3], d)?;
        check(
            "cross_entropy (fused)",
            Box::new(move |xs: &[Tensor]| xs[0].cross_entropy(&labels)),
            vec![t(d, &[3, 4], 69, -2.0, 2.0)?],
            true,
            &mut worst,
        )?;
        check(
            "logsumexp(axis 0)",
            squared(|xs| xs[0].logsumexp(0, false)),
            vec![x()?],
            true,
            &mut worst,
        )?;
    }

    // Shape and movement ops.
    {
        let x = || t(d, &[2, 3, 4], 40, -2.0, 2.0);
        let w = || t(d, &[6, 4], 41, -1.0, 1.0);
        let scale = |y: wgrad_graph::Result<Tensor>, w: &Tensor| y?.reshape(&[6, 4])?.mul(w);
        check(
            "reshape",
            squared(move |xs| scale(xs[0].reshape(&[6, 4]), &xs[1])),
            vec![x()?, w()?],
            true,
            &mut worst,
        )?;
        check(
            "permute",
            squared(move |xs| scale(xs[0].permute(&[2, 0, 1]), &xs[1])),
            vec![x()?, w()?],
            true,
            &mut worst,
        )?;
        check(
            "transpose",
            squared(move |xs| scale(xs[0].transpose(0, 2), &xs[1])),
            vec![x()?, w()?],
            true,
            &mut worst,
        )?;
        let b = t(d, &[3, 1], 42, -2.0, 2.0)?;
        let wb = t(d, &[2, 3, 4], 43, -1.0, 1.0)?;
        check(
            "broadcast_to",
            squared(|xs| xs[0].broadcast_to(&[2, 3, 4])?.mul(&xs[1])),
            vec![b, wb],
            true,
            &mut worst,
        )?;
        check(
            "narrow",
            squared(|xs| xs[0].narrow(1, 1, 2)),
            vec![x()?],
            true,
            &mut worst,
        )?;
        check(
            "pad",
            squared(|xs| xs[0].pad(&[(1, 0), (0, 2), (1, 1)])?.mul_scalar(1.5)),
            vec![x()?],
            true,
            &mut worst,
        )?;
        let y = t(d, &[2, 1, 4], 44, -2.0, 2.0)?;
        check(
            "concat",
            squared(|xs| Tensor::concat(&[&xs[0], &xs[1]], 1)),
            vec![x()?, y],
            true,
            &mut worst,
        )?;
        let (p, q) = (t(d, &[3], 45, -2.0, 2.0)?, t(d, &[3], 46, -2.0, 2.0)?);
        check(
            "stack",
            squared(|xs| Tensor::stack(&[&xs[0], &xs[1]])?.mul(&xs[0])),
            vec![p, q],
            true,
            &mut worst,
        )?;
        let idx = Tensor::from_slice(&[2u32, 0, 2, 1], &[4], d)?;
        let i2 = idx.clone();
        check(
            "index_select",
            squared(move |xs| xs[0].index_select(1, &i2)),
            vec![x()?],
            true,
            &mut worst,
        )?;
        let i3 = idx.clone();
        let src = t(d, &[2, 4, 4], 47, -2.0, 2.0)?;
        check(
            "index_add",
            squared(move |xs| xs[0].index_add(1, &i3, 3)),
            vec![src],
            true,
            &mut worst,
        )?;
        let gi = Tensor::from_slice(&[0u32, 2, 1, 1, 2, 0], &[2, 3], d)?;
        let g2 = gi.clone();
        let m = t(d, &[2, 3], 48, -2.0, 2.0)?;
        check(
            "gather",
            squared(move |xs| xs[0].gather(1, &g2)),
            vec![m],
            true,
            &mut worst,
        )?;
        let (base, s) = (t(d, &[2, 3], 49, -2.0, 2.0)?, t(d, &[2, 3], 50, -2.0, 2.0)?);
        check(
            "scatter_add",
            squared(move |xs| xs[0].scatter_add(1, &gi, &xs[1])),
            vec![base, s],
            true,
            &mut worst,
        )?;
    }

    // Convolution and pooling (second order goes through the backward ops' own rules).
    {
        let x = t(d, &[2, 4, 5, 5], 60, -1.0, 1.0)?;
        let w = t(d, &[6, 2, 3, 3], 61, -1.0, 1.0)?;
        let p = Conv2dParams {
            stride: (2, 1),
            padding: (1, 1),
            dilation: (1, 1),
            groups: 2,
        };
        check(
            "conv2d (stride, pad, groups)",
            squared(move |xs| xs[0].conv2d(&xs[1], &p)),
            vec![x, w],
            true,
            &mut worst,
        )?;
        let x = t(d, &[1, 2, 6, 6], 62, -1.0, 1.0)?;
        let w = t(d, &[3, 2, 2, 2], 63, -1.0, 1.0)?;
        let p = Conv2dParams {
            stride: (1, 2),
            padding: (0, 1),
            dilation: (2, 2),
            groups: 1,
        };
        check(
            "conv2d (dilation)",
            squared(move |xs| xs[0].conv2d(&xs[1], &p)),
            vec![x, w],
            true,
            &mut worst,
        )?;
        // conv2d_bias_act: one group (the matmul adds the bias and applies tanh as it stores,
        // where the adapter has the subgroup kernels: 16 output pixels, K = 18 padded to 20),
        // and two groups without an activation (bias added after). Smooth activations only: a
        // step of eps must not cross a kink.
        let cases = [
            ([2, 2, 4, 4], [4, 2, 3, 3], (1, 1), 1, Some(UnaryOp::Tanh)),
            (
                [2, 2, 4, 4],
                [4, 2, 3, 3],
                (1, 1),
                1,
                Some(UnaryOp::Sigmoid),
            ),
            ([1, 4, 5, 4], [6, 2, 2, 2], (0, 1), 2, None),
        ];
        for (i, (xs, ws, pad, groups, act)) in cases.into_iter().enumerate() {
            let x = t(d, &xs, 70 + 3 * i as u32, -1.0, 1.0)?;
            let w = t(d, &ws, 71 + 3 * i as u32, -1.0, 1.0)?;
            let b = t(d, &[ws[0]], 72 + 3 * i as u32, -1.0, 1.0)?;
            let p = Conv2dParams {
                padding: pad,
                groups,
                ..Conv2dParams::default()
            };
            // Same values as the unfused composition.
            let fused = x.conv2d_bias_act(&w, &b, &p, act)?.to_vec()?;
            let mut plain = x.conv2d(&w, &p)?.add(&b.reshape(&[1, ws[0], 1, 1])?)?;
            if let Some(act) = act {
                plain = plain.unary(act)?;
            }
            for (u, v) in fused.iter().zip(&plain.to_vec()?) {
                assert!(
                    (u - v).abs() <= 1e-5 * v.abs().max(1.0),
                    "{act:?}: {u} vs {v}"
                );
            }
            check(
                &format!("conv2d_bias_act {act:?}, {groups} group(s)"),
                squared(move |xs| xs[0].conv2d_bias_act(&xs[1], &xs[2], &p, act)),
                vec![x, w, b],
                true,
                &mut worst,
            )?;
        }
        // linear: the column bias and the activation in the product's store (where the subgroup
        // kernels run: N a multiple of 4), after it otherwise (N = 6, or gelu); a 3-D input; no
        // bias. Smooth activations only.
        let cases: [(Vec<usize>, usize, bool, Option<UnaryOp>); 5] = [
            (vec![5, 8], 12, true, Some(UnaryOp::Tanh)),
            (vec![2, 3, 8], 4, true, Some(UnaryOp::Sigmoid)),
            (vec![5, 7], 6, true, None),
            (vec![4, 8], 8, false, Some(UnaryOp::Tanh)),
            (vec![3, 4], 8, true, Some(UnaryOp::Gelu)),
        ];
        for (i, (xs, n, bias, act)) in cases.into_iter().enumerate() {
            let k = *xs.last().unwrap();
            let x = t(d, &xs, 90 + 3 * i as u32, -1.0, 1.0)?;
            let w = t(d, &[k, n], 91 + 3 * i as u32, -1.0, 1.0)?;
            let b = t(d, &[n], 92 + 3 * i as u32, -1.0, 1.0)?;
            // Same values as the unfused composition.
            let fused = x.linear(&w, bias.then_some(&b), act)?.to_vec()?;
            let mut plain = x.matmul(&w)?;
            if bias {
                plain = plain.add(&b)?;
            }
            if let Some(act) = act {
                plain = plain.unary(act)?;
            }
            for (u, v) in fused.iter().zip(&plain.to_vec()?) {
                assert!(
                    (u - v).abs() <= 1e-5 * v.abs().max(1.0),
                    "linear {act:?}: {u} vs {v}"
                );
            }
            let name = format!("linear {xs:?} x [{k}, {n}], bias {bias}, {act:?}");
            if bias {
                check(
                    &name,
                    squared(move |xs| xs[0].linear(&xs[1], Some(&xs[2]), act)),
                    vec![x, w, b],
                    true,
                    &mut worst,
                )?;
            } else {
                check(
                    &name,
                    squared(move |xs| xs[0].linear(&xs[1], None, act)),
                    vec![x, w],
                    true,
                    &mut worst,
                )?;
            }
        }
        let x = t(d, &[2, 2, 7], 64, -1.0, 1.0)?;
        let w = t(d, &[3, 2, 3], 65, -1.0, 1.0)?;
        check(
            "conv1d",
            squared(|xs| xs[0].conv1d(&xs[1], 2, 1, 1, 1)),
            vec![x, w],
            true,
            &mut worst,
        )?;
        // Pooling windows must not hold near-ties (a step of eps would switch the maximum), so
        // the input is a shuffled grid with spacing 0.04 = 4 eps.
        let mut order: Vec<(f32, usize)> = values(100, 66, 0.0, 1.0, 0.0)
            .into_iter()
            .zip(0..)
            .collect();
        order.sort_by(|a, b| a.0.total_cmp(&b.0));
        let grid: Vec<f32> = order.iter().map(|&(_, k)| k as f32 * 0.04 - 2.0).collect();
        let x = Tensor::from_vec(grid, &[2, 2, 5, 5], d)?;
        let pp = Pool2dParams {
            kernel: (3, 3),
            stride: (2, 2),
            padding: (1, 1),
        };
        check(
            "max_pool2d",
            squared(move |xs| xs[0].max_pool2d(&pp)),
            vec![x.clone()],
            true,
            &mut worst,
        )?;
        check(
            "avg_pool2d",
            squared(move |xs| xs[0].avg_pool2d(&pp)),
            vec![x],
            true,
            &mut worst,
        )?;
    }

    eprintln!("{:<32} {:>12} {:>12}", "op", "1st order", "2nd order");
    for (name, e1, e2) in &worst {
        eprintln!("{name:<32} {e1:>12.2e} {e2:>12.2e}");
    }
    Ok(())
}

/// Softmax cross-entropy of logits [N, C] against u32 labels, composed from graph ops (the
/// reference for the fused `Tensor::cross_entropy`).
fn cross_entropy_composed(logits: &Tensor, labels: &Tensor) -> wgrad_graph::Result<Tensor> {
    let n = logits.shape()[0];
    let picked = logits
        .log_softmax(-1)?
        .gather(1, &labels.reshape(&[n, 1])?)?;
    picked.mean_all()?.neg()
}

#[test]
fn losses_of_small_models_match_finite_differences() -> Result<()> {
    let dev = Device::new()?;
    let d = &dev;
    let labels = Tensor::from_slice(&[1u32, 0, 3, 2], &[4], d)?;

    // Softmax cross-entropy on its own: the fused op (its gradient kernel in the first order,
    // its composed rule in the second) and the composition it replaces, which must agree.
    let logits = t(d, &[4, 5], 70, -2.0, 2.0)?;
    for (name, fused) in [("fused", true), ("composed", false)] {
        let l = labels.clone();
        let r = gradcheck(
            move |xs| {
                if fused {
                    xs[0].cross_entropy(&l)
                } else {
                    cross_entropy_composed(&xs[0], &l)
                }
            },
            std::slice::from_ref(&logits),
            EPS,
            TOL,
        )?;
        assert!(r.passed, "softmax cross-entropy ({name}): {r}");
        eprintln!("softmax cross-entropy ({name}): {r}");
    }
    let x = logits.detach().requires_grad();
    let fused = x.cross_entropy(&labels)?;
    fused.backward()?;
    let g_fused = x.grad().expect("a gradient").to_vec()?;
    x.zero_grad();
    let composed = cross_entropy_composed(&x, &labels)?;
    composed.backward()?;
    let g_composed = x.grad().expect("a gradient").to_vec()?;
    let (a, b) = (fused.item()?, composed.item()?);
    assert!((a - b).abs() <= 1e-6 * b.abs().max(1.0), "{a} vs {b}");
    for (u, v) in g_fused.iter().zip(&g_composed) {
        assert!((u - v).abs() <= 1e-6, "{g_fused:?} vs {g_composed:?}");
    }
    // A label past the classes is an error, not a read out of bounds.
    let bad = Tensor::from_slice(&[1u32, 0, 5, 2], &[4], d)?;
    assert!(logits.cross_entropy(&bad).is_err());

    // MLP 6-5-4 with tanh, biases broadcast over the batch.
    let x = t(d, &[4, 6], 71, -1.0, 1.0)?;
    let l = labels.clone();
    let mlp = move |xs: &[Tensor]| {
        let h = x.matmul(&xs[0])?.add(&xs[1])?.tanh()?;
        h.matmul(&xs[2])?.add(&xs[3])?.cross_entropy(&l)
    };
    let params = vec![
        t(d, &[6, 5], 72, -0.5, 0.5)?,
        t(d, &[5], 73, -0.1, 0.1)?,
        t(d, &[5, 4], 74, -0.5, 0.5)?,
        t(d, &[4], 75, -0.1, 0.1)?,
    ];
    let r = gradcheck(mlp, &params, EPS, TOL)?;
    assert!(r.passed, "MLP: {r}");
    eprintln!("MLP: {r}");

    // Conv net: conv 1->2 3x3 pad 1, relu, maxpool 2, linear to 4 classes.
    let img = t(d, &[4, 1, 6, 6], 76, -1.0, 1.0)?;
    let l = labels.clone();
    let cnn = move |xs: &[Tensor]| {
        let p = Conv2dParams {
            padding: (1, 1),
            ..Default::default()
        };
        let h = img
            .conv2d(&xs[0], &p)?
            .add(&xs[1].reshape(&[1, 2, 1, 1])?)?
            .relu()?;
        let h = h.max_pool2d(&Pool2dParams::square(2))?.flatten(1)?;
        h.matmul(&xs[2])?.cross_entropy(&l)
    };
    let params = vec![
        t(d, &[2, 1, 3, 3], 77, -0.5, 0.5)?,
        t(d, &[2], 78, 0.1, 0.2)?,
        t(d, &[18, 4], 79, -0.5, 0.5)?,
    ];
    let r = gradcheck(cnn, &params, EPS, TOL)?;
    assert!(r.passed, "conv net: {r}");
    eprintln!("conv net: {r}");
    Ok(())
}

#[test]
fn accumulation_no_grad_detach_and_freed_graph() -> Result<()> {
    let dev = Device::new()?;
    let x = Tensor::from_vec(vec![1.0, 2.0, 3.0], &[3], &dev)?.requires_grad();

    // Two backward passes accumulate: d/dx sum(x^2) = 2x, twice.
    for _ in 0..2 {
        x.square()?.sum_all()?.backward()?;
    }
    assert_eq!(x.grad().expect("grad").to_vec()?, vec![4.0, 8.0, 12.0]);
    x.zero_grad();
    assert!(x.grad().is_none());

    // A value used twice just works (gradients add up).
    let y = x.mul(&x)?.add(&x)?.sum_all()?;
    y.backward()?;
    assert_eq!(x.grad().expect("grad").to_vec()?, vec![3.0, 5.0, 7.0]);

    // The graph is freed after backward unless retained.
    let z = x.exp()?.sum_all()?;
    z.backward()?;
    assert!(matches!(
        z.backward(),
        Err(wgrad_graph::GraphError::GraphFreed)
    ));
    let z = x.exp()?.sum_all()?;
    z.backward_retain()?;
    z.backward()?;

    // no_grad and detach record nothing.
    let w = no_grad(|| x.square())?;
    assert!(!w.requires_grad_flag());
    assert!(!x.detach().square()?.requires_grad_flag());
    assert!(matches!(
        w.sum_all()?.backward(),
        Err(wgrad_graph::GraphError::NoGrad { .. })
    ));
    Ok(())
}

#[test]
fn device_memory_is_steady_over_thousands_of_steps() -> Result<()> {
    let dev = Device::new()?;
    let d = &dev;
    let w1 = t(d, &[16, 32], 80, -0.3, 0.3)?.requires_grad();
    let w2 = t(d, &[32, 4], 81, -0.3, 0.3)?.requires_grad();
    let x = t(d, &[8, 16], 82, -1.0, 1.0)?;
    let labels = Tensor::from_slice(&[0u32, 1, 2, 3, 0, 1, 2, 3], &[8], d)?;
    let mut live_after_warmup = 0;
    for step in 0..2000 {
        {
            let loss = x.matmul(&w1)?.relu()?.matmul(&w2)?.cross_entropy(&labels)?;
            loss.backward()?;
        }
        w1.zero_grad();
        w2.zero_grad();
        if step == 10 {
            dev.synchronize()?;
            live_after_warmup = dev.memory_stats().live_bytes;
        }
    }
    dev.synchronize()?;
    let stats = dev.memory_stats();
    assert_eq!(stats.live_bytes, live_after_warmup, "{stats:?}");
    assert!(stats.pooled_bytes < 1 << 20, "{stats:?}");
    Ok(())
}
