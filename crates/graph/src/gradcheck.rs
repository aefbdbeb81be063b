//! `gradcheck`: compares autodiff gradients with central differences, element by element.

use wgrad_device::threefry2x32;

use crate::autodiff::grad;
use crate::error::{GraphError, Result};
use crate::tensor::Tensor;

/// The element where analytic and numeric gradients disagree most.
#[derive(Clone, Debug, PartialEq)]
pub struct Worst {
    pub input: usize,
    pub index: usize,
    pub analytic: f32,
    pub numeric: f32,
}

/// What `gradcheck` found.
#[derive(Clone, Debug, PartialEq)]
pub struct GradcheckReport {
    /// Largest |analytic - numeric|.
    pub max_abs_err: f32,
    /// Largest |analytic - numeric| / max(1, |numeric|): the figure compared with `tol`.
    pub max_err: f32,
    pub worst: Option<Worst>,
    pub elements: usize,
    pub passed: bool,
}

impl std::fmt::Display for GradcheckReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "gradcheck {}: {} elements, max error {:.3e} (abs {:.3e})",
            if self.passed { "passed" } else { "FAILED" },
            self.elements,
            self.max_err,
            self.max_abs_err
        )?;
        if let Some(w) = &self.worst {
            write!(
                f,
                ", worst at input {} element {}: analytic {} vs numeric {}",
                w.input, w.index, w.analytic, w.numeric
            )?;
        }
        Ok(())
    }
}

/// Fixed pseudo-random weights in [-1, 1) that turn a tensor output into a scalar.
fn projection(n: usize) -> Vec<f32> {
    (0..n)
        .map(|i| {
            let [a, _] = threefry2x32([0x5eed, 0x9c], [i as u32, 0]);
            (a >> 8) as f32 / (1u32 << 23) as f32 - 1.0
        })
        .collect()
}

/// Checks the gradients of `f` at `inputs` (f32 tensors) against central differences with step
/// `eps`. An element passes when |analytic - numeric| <= tol * max(1, |numeric|). A non-scalar
/// output is reduced to a scalar with fixed random weights first.
///
/// In f32, a step of about 1e-3 and a tolerance of about 1e-2 suit functions of moderate size.
pub fn gradcheck(
    f: impl Fn(&[Tensor]) -> Result<Tensor>,
    inputs: &[Tensor],
    eps: f32,
    tol: f32,
) -> Result<GradcheckReport> {
    let leaves: Vec<Tensor> = inputs.iter().map(|t| t.detach().requires_grad()).collect();
    let scalar = |xs: &[Tensor]| -> Result<Tensor> {
        let y = f(xs)?;
        if y.numel() == 1 {
            return y.reshape(&[]);
        }
        let w = Tensor::from_vec(projection(y.numel()), y.shape(), y.device())?;
        y.mul(&w)?.sum_all()
    };
    let y = scalar(&leaves)?;
    if !y.requires_grad_flag() {
        return Err(GraphError::NoGrad { op: "gradcheck" });
    }
    let analytic = grad(&y, &leaves.iter().collect::<Vec<_>>(), false)?
        .iter()
        .map(Tensor::to_vec)
        .collect::<Result<Vec<_>>>()?;

    let mut report = GradcheckReport {
        max_abs_err: 0.0,
        max_err: 0.0,
        worst: None,
        elements: 0,
        passed: true,
    };
    // Perturbed inputs are leaves that require grad, and grad mode stays on, so functions that
    // differentiate internally (a gradient checked for second order) evaluate as they would.
    {
        let base: Vec<Vec<f32>> = leaves.iter().map(Tensor::to_vec).collect::<Result<_>>()?;
        for (i, x) in leaves.iter().enumerate() {
            for j in 0..x.numel() {
                let eval = |delta: f32| -> Result<f32> {
                    let mut v = base[i].clone();
                    v[j] += delta;
                    let mut xs = leaves.clone();
                    xs[i] = Tensor::from_vec(v, x.shape(), x.device())?.requires_grad();
                    scalar(&xs)?.item()
                };
                let numeric = (eval(eps)? - eval(-eps)?) / (2.0 * eps);
                let a = analytic[i][j];
                let abs = (a - numeric).abs();
                let err = abs / numeric.abs().max(1.0);
                report.elements += 1;
                report.max_abs_err = report.max_abs_err.max(abs);
                if err > report.max_err || (err.is_nan() && report.passed) {
                    report.max_err = err;
                    report.worst = Some(Worst {
                        input: i,
                        index: j,
                        analytic: a,
                        numeric,
                    });
                }
                // NaN errors fail too.
                if err.is_nan() || err > tol {
                    report.passed = false;
                }
            }
        }
    }
    Ok(report)
}
