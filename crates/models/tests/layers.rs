//! Gradient checks of every layer (parameters and input together) and the initialisers' statistics.
//!
//! Layers are checked through gradcheck's fixed random projection of their output, with a step of
//! 1e-2 and a tolerance of 1e-2 relative to max(1, |numeric|) (see the graph crate's gradcheck
//! tests for why these suit f32). ReLU kinks are avoided by keeping inputs away from zero where a
//! layer feeds a ReLU.

use anyhow::Result;
use wgrad_graph::{Device, Pool2dParams, Tensor};
use wgrad_models::nn::{
    Activation, AvgPool2d, BatchNorm, Conv2d, Dropout, Flatten, GroupNorm, Init, Initializer,
    LayerNorm, Linear, MaxPool2d, Module, ResidualBlock, Sequential,
};

/// Central differences of L = sum(layer(x) * w) (w fixed pseudo-random weights) with respect to
/// the input and every parameter, perturbing the layer's own parameters in place, against the
/// gradients autodiff gives for the same L.
fn check_layer(name: &str, layer: &dyn Module, x: &Tensor) -> Result<()> {
    check_layer_eps(name, layer, x, 1e-2)
}

/// `check_layer` with step `eps`: deep stacks of batch norm + ReLU put many activations close to a
/// ReLU kink, so they use a smaller step (rounding error ~ ulp(L) / eps stays below 1e-3) to keep
/// the one-sided fallback rare.
fn check_layer_eps(name: &str, layer: &dyn Module, x: &Tensor, eps: f32) -> Result<()> {
    const TOL: f32 = 1e-2;
    #[allow(non_snake_case)]
    let EPS = eps;
    let x = x.detach().requires_grad();
    let y = layer.forward(&x)?;
    let w = Tensor::from_vec(values(y.numel(), 99, -1.0, 1.0), y.shape(), x.device())?;
    let loss =
        |xin: &Tensor| -> Result<f32> { Ok(layer.forward(xin)?.mul(&w)?.sum_all()?.item()?) };
    let params = layer.parameters();
    let mut wrt = vec![x.clone()];
    wrt.extend(params.iter().cloned());
    let analytic = wgrad_graph::grad(
        &y.mul(&w)?.sum_all()?,
        &wrt.iter().collect::<Vec<_>>(),
        false,
    )?;
    let (mut worst, mut count) = (0f32, 0);
    for (which, (t, a)) in wrt.iter().zip(&analytic).enumerate() {
        let base = t.to_vec()?;
        let a = a.to_vec()?;
        for k in 0..base.len() {
            let at = |delta: f32| -> Result<f32> {
                let mut v = base.clone();
                v[k] += delta;
                t.write(&v)?;
                let l = loss(&x)?;
                t.write(&base)?;
                Ok(l)
            };
            let (up, mid, down) = (at(EPS)?, at(0.0)?, at(-EPS)?);
            // Central difference, or a one-sided one where a ReLU kink lies within eps (there the
            // function has no derivative and autodiff returns a one-sided one).
            let err = [
                (up - down) / (2.0 * EPS),
                (up - mid) / EPS,
                (mid - down) / EPS,
            ]
            .iter()
            .map(|&numeric| (a[k] - numeric).abs() / numeric.abs().max(1.0))
            .fold(f32::INFINITY, f32::min);
            assert!(
                err <= TOL,
                "{name}: tensor {which} (0 = input) element {k}: analytic {} vs differences {:?}",
                a[k],
                [
                    (up - down) / (2.0 * EPS),
                    (up - mid) / EPS,
                    (mid - down) / EPS
                ]
            );
            worst = worst.max(err);
            count += 1;
        }
    }
    eprintln!("{name:<28} {count:>4} elements, worst error {worst:.2e}");
    Ok(())
}

fn values(n: usize, seed: u32, lo: f32, hi: f32) -> Vec<f32> {
    (0..n)
        .map(|i| {
            let [a, _] = wgrad_device::threefry2x32([seed, 11], [i as u32, 0]);
            let v = lo + (hi - lo) * ((a >> 8) as f32 / (1u32 << 24) as f32);
            if v.abs() < 0.05 { v + 0.1 } else { v }
        })
        .collect()
}

/// Distinct values 0.05 apart (> 2 eps) in shuffled order: no near-ties for max pooling to flip.
fn spaced(dev: &Device, shape: &[usize], seed: u32) -> Result<Tensor> {
    let n: usize = shape.iter().product();
    let mut order: Vec<(f32, usize)> = values(n, seed, 0.0, 1.0).into_iter().zip(0..).collect();
    order.sort_by(|a, b| a.0.total_cmp(&b.0));
    let v = order.iter().map(|&(_, k)| k as f32 * 0.05 - 0.8).collect();
    Ok(Tensor::from_vec(v, shape, dev)?)
}

fn t(dev: &Device, shape: &[usize], seed: u32) -> Result<Tensor> {
    Ok(Tensor::from_vec(
        values(shape.iter().product(), seed, -1.0, 1.0),
        shape,
        dev,
    )?)
}

#[test]
fn initialisers_have_the_stated_statistics() -> Result<()> {
    let dev = Device::new()?;
    let mut init = Initializer::new(&dev, 3);
    let stats = |t: &Tensor| -> Result<(f64, f64, f64)> {
        let v = t.to_vec()?;
        let n = v.len() as f64;
        let mean = v.iter().map(|&x| f64::from(x)).sum::<f64>() / n;
        let var = v
            .iter()
            .map(|&x| (f64::from(x) - mean).powi(2))
            .sum::<f64>()
            / n;
        let max = v.iter().fold(0f64, |m, &x| m.max(f64::from(x).abs()));
        Ok((mean, var.sqrt(), max))
    };
    // Xavier uniform on [400, 600]: bound sqrt(6/1000) = 0.0775, std bound/sqrt(3) = 0.0447.
    let (m, s, max) = stats(&init.tensor(&[400, 600], Init::XavierUniform { gain: 1.0 })?)?;
    assert!(
        m.abs() < 2e-3 && (s - 0.0447).abs() < 1e-3 && max <= 0.0775,
        "xavier {m} {s} {max}"
    );
    // Kaiming normal (ReLU gain) on a conv kernel [64, 32, 3, 3]: std sqrt(2 / 288) = 0.0833.
    let (m, s, _) = stats(&init.tensor(
        &[64, 32, 3, 3],
        Init::KaimingNormal {
            gain: Init::RELU_GAIN,
        },
    )?)?;
    assert!(
        m.abs() < 3e-3 && (s - 0.0833).abs() < 2e-3,
        "kaiming {m} {s}"
    );
    // Orthogonal [20, 50]: rows orthonormal, Q Q^T = I.
    let q = init.tensor(&[20, 50], Init::Orthogonal { gain: 1.0 })?;
    let qqt = q.matmul(&q.t()?)?.to_vec()?;
    for i in 0..20 {
        for j in 0..20 {
            let want = if i == j { 1.0 } else { 0.0 };
            assert!(
                (qqt[i * 20 + j] - want).abs() < 1e-5,
                "QQ^T[{i}][{j}] = {}",
                qqt[i * 20 + j]
            );
        }
    }
    // Same seed, same parameters (draws are counter-based).
    let a = Initializer::new(&dev, 9)
        .tensor(&[5], Init::Normal { std: 1.0 })?
        .to_vec()?;
    let b = Initializer::new(&dev, 9)
        .tensor(&[5], Init::Normal { std: 1.0 })?
        .to_vec()?;
    assert_eq!(a, b);
    Ok(())
}

#[test]
fn every_layer_passes_gradcheck() -> Result<()> {
    let dev = Device::new()?;
    let d = &dev;
    let mut init = Initializer::new(d, 5);
    let i = &mut init;

    check_layer("linear", &Linear::new(i, 5, 3)?, &t(d, &[4, 5], 1)?)?;
    check_layer(
        "conv2d",
        &Conv2d::new(i, 2, 3, 3, 2, 1)?,
        &t(d, &[2, 2, 5, 5], 2)?,
    )?;
    check_layer(
        "max_pool2d",
        &MaxPool2d(Pool2dParams::square(2)),
        &spaced(d, &[1, 2, 4, 4], 3)?,
    )?;
    check_layer(
        "avg_pool2d",
        &AvgPool2d(Pool2dParams::square(2)),
        &t(d, &[1, 2, 4, 4], 4)?,
    )?;
    check_layer(
        "flatten + linear",
        &Sequential::new().push(Flatten).push(Linear::new(i, 8, 2)?),
        &t(d, &[3, 2, 2, 2], 5)?,
    )?;
    for (name, act) in [
        ("relu", Activation::Relu),
        ("leaky_relu", Activation::LeakyRelu(0.1)),
        ("elu", Activation::Elu(1.0)),
        ("gelu", Activation::Gelu),
        ("sigmoid", Activation::Sigmoid),
        ("tanh", Activation::Tanh),
        ("softmax", Activation::Softmax(-1)),
    ] {
        check_layer(name, &act, &t(d, &[3, 4], 6)?)?;
    }
    let mut bn1 = BatchNorm::new(i, 3)?;
    check_layer("batch_norm 1-D (train)", &bn1, &t(d, &[6, 3], 7)?)?;
    bn1.set_training(false);
    check_layer("batch_norm 1-D (eval)", &bn1, &t(d, &[6, 3], 8)?)?;
    check_layer(
        "batch_norm 2-D (train)",
        &BatchNorm::new(i, 2)?,
        &t(d, &[3, 2, 3, 3], 9)?,
    )?;
    check_layer("layer_norm", &LayerNorm::new(i, 5)?, &t(d, &[3, 5], 10)?)?;
    check_layer(
        "group_norm",
        &GroupNorm::new(i, 2, 4)?,
        &t(d, &[2, 4, 3, 3], 11)?,
    )?;
    check_layer_eps(
        "residual block",
        &ResidualBlock::new(i, 2, 3, 2)?,
        &t(d, &[2, 2, 6, 6], 12)?,
        1e-3,
    )?;

    // Dropout: in training, y = x * mask / (1 - p) for a mask fixed by the step; the gradient is
    // the same mask. In evaluation it is the identity.
    let mut drop = Dropout::new(0.5, 3);
    drop.set_step(4);
    let x = t(d, &[200], 13)?.requires_grad();
    let y = drop.forward(&x)?;
    let g = wgrad_graph::grad(&y.sum_all()?, &[&x], false)?
        .remove(0)
        .to_vec()?;
    let (xv, yv) = (x.to_vec()?, y.to_vec()?);
    let kept = g.iter().filter(|&&v| v == 2.0).count();
    assert!(
        g.iter().all(|&v| v == 0.0 || v == 2.0) && (60..140).contains(&kept),
        "kept {kept}"
    );
    for k in 0..200 {
        assert_eq!(yv[k], xv[k] * g[k], "element {k}");
    }
    drop.set_training(false);
    assert_eq!(drop.forward(&x)?.to_vec()?, xv);
    Ok(())
}

#[test]
fn sequential_fuses_bias_and_activation_with_the_same_result() -> Result<()> {
    let dev = Device::new()?;
    let d = &dev;
    let mut init = Initializer::new(d, 9);
    let i = &mut init;
    let conv = Conv2d::new(i, 2, 4, 3, 1, 1)?;
    let lin = Linear::new(i, 4 * 5 * 5, 3)?;
    let x = t(d, &[2, 2, 5, 5], 11)?;
    for act in [Activation::Relu, Activation::Tanh, Activation::Gelu] {
        // Layer by layer (no fusion: each call is a plain forward) ...
        let by_hand =
            act.forward(&lin.forward(&Flatten.forward(&act.forward(&conv.forward(&x)?)?)?)?)?;
        // ... and as a Sequential, which fuses conv + act and linear + act.
        let net = Sequential::new()
            .push(Conv2d {
                weight: conv.weight.clone(),
                bias: conv.bias.clone(),
                params: conv.params,
            })
            .push(act)
            .push(Flatten)
            .push(Linear {
                weight: lin.weight.clone(),
                bias: lin.bias.clone(),
            })
            .push(act);
        let fused = net.forward(&x)?;
        let (u, v) = (fused.to_vec()?, by_hand.to_vec()?);
        for (a, b) in u.iter().zip(&v) {
            assert!(
                (a - b).abs() <= 1e-5 * b.abs().max(1.0),
                "{act:?}: {u:?} vs {v:?}"
            );
        }
        check_layer(&format!("conv + {act:?} + linear + {act:?}"), &net, &x)?;
    }
    Ok(())
}
