//! The course's exercise, checked against hand-derived values:
//!   f(x) = 2 x1 x2 - x3 log(x1) - 1/x3
//!   grad f = [2 x2 - x3/x1, 2 x1, -log x1 + 1/x3^2]
//!   H = [[x3/x1^2, 2, -1/x1], [2, 0, 0], [-1/x1, 0, -2/x3^3]]

use anyhow::Result;
use wgrad_graph::{Device, Tensor, grad, hessian, hvp};

fn f(x: &Tensor) -> wgrad_graph::Result<Tensor> {
    let x1 = x.narrow(0, 0, 1)?;
    let x2 = x.narrow(0, 1, 1)?;
    let x3 = x.narrow(0, 2, 1)?;
    let a = x1.mul(&x2)?.mul_scalar(2.0)?;
    let b = x3.mul(&x1.log()?)?;
    let c = x3.recip()?;
    a.sub(&b)?.sub(&c)?.sum_all()
}

fn expected(x: [f64; 3]) -> ([f64; 3], [[f64; 3]; 3]) {
    let [x1, x2, x3] = x;
    (
        [2.0 * x2 - x3 / x1, 2.0 * x1, -x1.ln() + 1.0 / (x3 * x3)],
        [
            [x3 / (x1 * x1), 2.0, -1.0 / x1],
            [2.0, 0.0, 0.0],
            [-1.0 / x1, 0.0, -2.0 / (x3 * x3 * x3)],
        ],
    )
}

fn close(a: f32, b: f64, what: &str) {
    // f32 arithmetic on values of order 1-10: a few ulps of relative error.
    let tol = 1e-5 * b.abs().max(1.0);
    assert!((a as f64 - b).abs() <= tol, "{what}: got {a}, expected {b}");
}

#[test]
fn gradient_hessian_and_hvp_match_hand_derived_values() -> Result<()> {
    let dev = Device::new()?;
    let points = [
        [1.5, 2.0, 0.5],
        [1.0, 1.0, 1.0],
        [0.3, -2.0, 3.0],
        [4.0, 0.25, -1.5],
    ];
    for p in points {
        let (g_want, h_want) = expected(p);
        let x =
            Tensor::from_vec(p.iter().map(|&v| v as f32).collect(), &[3], &dev)?.requires_grad();

        let g = grad(&f(&x)?, &[&x], true)?.remove(0).to_vec()?;
        for i in 0..3 {
            close(g[i], g_want[i], &format!("grad[{i}] at {p:?}"));
        }

        let h = hessian(f, &x)?;
        assert_eq!(h.shape(), &[3, 3]);
        let h = h.to_vec()?;
        for i in 0..3 {
            for j in 0..3 {
                close(h[i * 3 + j], h_want[i][j], &format!("H[{i}][{j}] at {p:?}"));
            }
        }

        let v = [0.5, -1.0, 2.0];
        let hv = hvp(
            f,
            &x,
            &Tensor::from_vec(v.iter().map(|&a| a as f32).collect(), &[3], &dev)?,
        )?
        .to_vec()?;
        for i in 0..3 {
            let want: f64 = (0..3).map(|j| h_want[i][j] * v[j]).sum();
            close(hv[i], want, &format!("Hv[{i}] at {p:?}"));
        }
    }
    Ok(())
}
