//! Element-wise fusion (`kernels::fused`): programs of many ops give the values of the ops run one
//! by one, in fewer dispatches, and keep the order of work with everything that is not fused
//! (other kernels, uploads, in-place writes, readbacks), on every adapter.

mod common;

use common::*;
use wgrad_device::{BinaryOp, Device, GpuArray, ReduceOp, UnaryOp};

/// A mixed chain on x and y (intermediates dropped as it goes): tanh(x) * y, + 0.5, leaky relu,
/// - x, squared, through exp of a clamp. Returns the result and the host reference.
fn chain(dev: &Device, x: &[f32], y: &[f32]) -> Result<(GpuArray, Vec<f64>), Flow> {
    let n = x.len();
    let gx = up(dev, x, &[n])?;
    let gy = up(dev, y, &[n])?;
    let t = gx
        .unary(UnaryOp::Tanh)?
        .binary(BinaryOp::Mul, &gy)?
        .unary(UnaryOp::AddScalar(0.5))?
        .unary(UnaryOp::LeakyRelu(0.1))?
        .binary(BinaryOp::Sub, &gx)?
        .unary(UnaryOp::Square)?
        .unary(UnaryOp::Clamp(0.0, 3.0))?
        .unary(UnaryOp::Neg)?
        .unary(UnaryOp::Exp)?;
    let want = x
        .iter()
        .zip(y)
        .map(|(&a, &b)| {
            let (a, b) = (f64::from(a), f64::from(b));
            let v = a.tanh() * b + 0.5;
            let v = if v > 0.0 { v } else { 0.1 * v };
            (-((v - a).powi(2)).clamp(0.0, 3.0)).exp()
        })
        .collect();
    Ok((t, want))
}

#[test]
fn a_chain_fuses_into_few_dispatches_with_the_same_values() {
    // Own devices: the test counts dispatches and switches fusion and wide storage off and on.
    run_on("a_chain_fuses_into_few_dispatches", &open_all(), |dev| {
        let mut r = rng(301);
        for n in [1, 5, 8, 1000, 4099] {
            let x = uniform(&mut r, n, -2.0, 2.0);
            let y = uniform(&mut r, n, -2.0, 2.0);
            for wide in [true, false] {
                dev.set_wide_storage(wide);
                for fusion in [true, false] {
                    dev.set_fusion(fusion)?;
                    dev.synchronize()?;
                    let before = dev.dispatch_count();
                    let (t, want) = chain(dev, &x, &y)?;
                    let v = down(&t)?;
                    let dispatches = dev.dispatch_count() - before;
                    let what = format!("chain over {n} (fusion {fusion}, wide {wide})");
                    // exp, tanh: a few ulp each; the rest correctly rounded.
                    check_close(&what, &v, &want, 2e-6, 1e-7)?;
                    let most = if fusion { 1 } else { 9 };
                    if dispatches != most {
                        return fail(format!("{what}: {dispatches} dispatches, want {most}"));
                    }
                }
            }
        }
        dev.set_fusion(true)?;
        dev.set_wide_storage(true);
        // A chain of 1,000 ops: full programs are emitted as it grows.
        let x = up(dev, &[0.25f32; 13], &[13])?;
        let before = dev.dispatch_count();
        let mut t = x.clone();
        for _ in 0..1000 {
            t = t.unary(UnaryOp::AddScalar(1.0))?;
        }
        check_bits("1,000 increments", &down(&t)?, &[1000.25f32; 13])?;
        let dispatches = dev.dispatch_count() - before;
        if dispatches > 1000 / 32 {
            return fail(format!(
                "1,000 fused increments took {dispatches} dispatches"
            ));
        }
        Ok(())
    });
}

#[test]
fn kept_intermediates_are_written_and_dropped_ones_free_their_buffers() {
    on_each_device("kept_intermediates_are_written", |dev| {
        let n = 777;
        let mut r = rng(307);
        let x = uniform(&mut r, n, 0.1, 3.0);
        let gx = up(dev, &x, &[n])?;
        let a = gx.unary(UnaryOp::Sqrt)?; // kept
        let b = a.unary(UnaryOp::MulScalar(3.0))?.unary(UnaryOp::Log)?; // middle one dropped
        let c = b.binary(BinaryOp::Add, &a)?;
        // Fresh arrays from the pool while the program is pending: the dropped intermediate's
        // buffer may come back, and must not be overwritten by the program.
        let other: Vec<f32> = (0..n).map(|i| i as f32).collect();
        let o = up(dev, &other, &[n])?;
        let d = c.binary(BinaryOp::Mul, &o)?;
        let sa: Vec<f64> = x.iter().map(|&v| f64::from(v).sqrt()).collect();
        let sb: Vec<f64> = sa.iter().map(|&v| (3.0 * v).ln()).collect();
        let sc: Vec<f64> = sb.iter().zip(&sa).map(|(b, a)| b + a).collect();
        let sd: Vec<f64> = sc.iter().enumerate().map(|(i, c)| c * i as f64).collect();
        check_close("sqrt", &down(&a)?, &sa, 1e-6, 0.0)?;
        check_close("log(3 sqrt)", &down(&b)?, &sb, 1e-6, 1e-6)?;
        check_close("sum", &down(&c)?, &sc, 2e-6, 2e-6)?;
        check_close("product", &down(&d)?, &sd, 3e-6, 2e-6)?;
        check_bits("the upload", &down(&o)?, &other)?;
        Ok(())
    });
}

#[test]
fn fused_work_keeps_its_order_with_other_work() {
    on_each_device("fused_work_keeps_its_order", |dev| {
        let n = 300;
        let x: Vec<f32> = (0..n).map(|i| (i % 17) as f32 - 8.0).collect();
        let gx = up(dev, &x, &[n])?;
        // A reduction reads a fused result: the program runs first.
        let y = gx.unary(UnaryOp::Abs)?.unary(UnaryOp::AddScalar(1.0))?;
        let s = y.reduce_all(ReduceOp::Sum)?;
        let want: f32 = x.iter().map(|v| v.abs() + 1.0).sum();
        check_bits("sum of a fused result", &down(&s)?, &[want])?;
        // An in-place write to an input after a fused op read it: the op sees the old values.
        let z = gx.unary(UnaryOp::MulScalar(2.0))?;
        gx.write(&vec![100.0f32; n])?;
        let w = gx.binary(BinaryOp::Add, &z)?;
        let want_z: Vec<f32> = x.iter().map(|v| 2.0 * v).collect();
        check_bits("before the write", &down(&z)?, &want_z)?;
        let want_w: Vec<f32> = want_z.iter().map(|v| 100.0 + v).collect();
        check_bits("after the write", &down(&w)?, &want_w)?;
        // Ops over another size start a new program; a broadcast binary op is not fused.
        let small = up(dev, &[1.0f32, 2.0, 3.0], &[3])?;
        let p = gx.unary(UnaryOp::Neg)?;
        let q = small.unary(UnaryOp::Square)?;
        let bcast = q
            .reshape(&[3, 1])?
            .binary(BinaryOp::Add, &small.reshape(&[1, 3])?)?;
        check_bits("other size", &down(&q)?, &[1.0, 4.0, 9.0])?;
        check_bits(
            "broadcast",
            &down(&bcast)?,
            &[2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 10.0, 11.0, 12.0],
        )?;
        check_bits("first size", &down(&p)?, &vec![-100.0f32; n])?;
        Ok(())
    });
}

#[test]
fn programs_split_at_the_binding_limit() {
    on_each_device("programs_split_at_the_binding_limit", |dev| {
        // The sum of 40 distinct arrays needs 40 inputs: more than one kernel may bind.
        let n = 50;
        let arrays: Vec<Vec<f32>> = (0..40)
            .map(|k| (0..n).map(|i| (k * n + i) as f32 * 0.25).collect())
            .collect();
        let gs: Vec<GpuArray> = arrays
            .iter()
            .map(|a| up(dev, a, &[n]))
            .collect::<Result<_, _>>()?;
        let mut acc = gs[0].clone();
        for g in &gs[1..] {
            acc = acc.binary(BinaryOp::Add, g)?;
        }
        let want: Vec<f32> = (0..n)
            .map(|i| arrays.iter().fold(0f32, |s, a| s + a[i]))
            .collect();
        // Small integers times 0.25 add exactly in any grouping.
        check_bits("sum of 40 arrays", &down(&acc)?, &want)?;
        Ok(())
    });
}
