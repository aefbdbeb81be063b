//! wgrad's graph crate: a `Tensor` that records the ops applied to it, reverse-mode autodiff whose
//! gradients are recorded tensors too (so they can be differentiated again: Hessians, Jacobians,
//! Hessian-vector products), and a public gradient checker.
//!
//! ```no_run
//! use wgrad_graph::{Device, Tensor, grad, hessian};
//! let dev = Device::new()?;
//! let x = Tensor::from_vec(vec![1.0f32, 2.0], &[2], &dev)?.requires_grad();
//! // f(x) = x0^2 x1
//! let f = |x: &Tensor| x.narrow(0, 0, 1)?.square()?.mul(&x.narrow(0, 1, 1)?)?.sum_all();
//! let g = grad(&f(&x)?, &[&x], false)?;          // [2 x0 x1, x0^2] = [4, 1]
//! let h = hessian(f, &x)?;                        // [[2 x1, 2 x0], [2 x0, 0]]
//! assert_eq!(g[0].to_vec()?, vec![4.0, 1.0]);
//! assert_eq!(h.to_vec()?, vec![4.0, 2.0, 2.0, 0.0]);
//! # Ok::<(), wgrad_graph::GraphError>(())
//! ```

mod autodiff;
mod backward;
mod error;
mod gradcheck;
mod ops;
mod tensor;

pub use autodiff::{grad, grad_with, hessian, hvp, jacobian};
pub use error::{GraphError, Result};
pub use gradcheck::{GradcheckReport, Worst, gradcheck};
pub use tensor::{GradModeGuard, Tensor, is_grad_enabled, no_grad, set_grad_enabled};
pub use wgrad_device::{
    Conv2dParams, DType, Device, Distribution, Pool2dParams, Transpose, UnaryOp,
};
