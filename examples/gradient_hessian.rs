//! The course's exercise: gradient and Hessian of f(x) = 2 x1 x2 - x3 log(x1) - 1/x3, by autodiff
//! on the GPU (wgrad's gradients are themselves differentiable).
//!
//! Run: cargo run --example gradient_hessian

use anyhow::Result;
use wgrad::graph::{Tensor, grad, hessian, hvp};

fn f(x: &Tensor) -> wgrad::graph::Result<Tensor> {
    let (x1, x2, x3) = (x.narrow(0, 0, 1)?, x.narrow(0, 1, 1)?, x.narrow(0, 2, 1)?);
    x1.mul(&x2)?
        .mul_scalar(2.0)?
        .sub(&x3.mul(&x1.log()?)?)?
        .sub(&x3.recip()?)?
        .sum_all()
}

fn main() -> Result<()> {
    env_logger::init();
    let dev = wgrad::Device::new()?;
    println!(
        "adapter: {} ({})",
        dev.info().adapter.name,
        dev.info().adapter.backend
    );
    let point = [1.5f32, 2.0, 0.5];
    let x = Tensor::from_vec(point.to_vec(), &[3], &dev)?.requires_grad();
    let y = f(&x)?;
    println!("x = {point:?}");
    println!("f(x) = {:.6}", y.item()?);
    let g = grad(&y, &[&x], false)?.remove(0).to_vec()?;
    println!("grad f(x) = {g:.6?}");
    let [x1, x2, x3] = point;
    println!(
        "  by hand: [2 x2 - x3/x1, 2 x1, -log x1 + 1/x3^2] = [{:.6}, {:.6}, {:.6}]",
        2.0 * x2 - x3 / x1,
        2.0 * x1,
        -x1.ln() + 1.0 / (x3 * x3)
    );
    let h = hessian(f, &x)?.to_vec()?;
    println!("Hessian:");
    for row in h.chunks(3) {
        println!("  {row:>10.6?}");
    }
    println!(
        "  by hand: [[x3/x1^2, 2, -1/x1], [2, 0, 0], [-1/x1, 0, -2/x3^3]] = [[{:.6}, 2, {:.6}], [2, 0, 0], [{:.6}, 0, {:.6}]]",
        x3 / (x1 * x1),
        -1.0 / x1,
        -1.0 / x1,
        -2.0 / (x3 * x3 * x3)
    );
    let v = Tensor::from_vec(vec![1.0, 0.0, 0.0], &[3], &dev)?;
    println!(
        "H·e1 (hvp, without forming H) = {:.6?}",
        hvp(f, &x, &v)?.to_vec()?
    );
    Ok(())
}
