//! Normalisation layers: batch norm (1-D and 2-D), layer norm, group norm. All are composed of graph
//! ops, so their gradients (and second derivatives) come from the graph crate's rules.

use std::sync::atomic::{AtomicBool, Ordering};

use wgrad_graph::{GraphError, Result, Tensor, no_grad};

use super::Module;
use super::init::{Init, Initializer};

/// Mean and biased variance of `x` over `axes` (kept as size-1 dims).
fn moments(x: &Tensor, axes: &[usize]) -> Result<(Tensor, Tensor)> {
    let mut mean = x.clone();
    for &a in axes {
        mean = mean.mean(a as isize, true)?;
    }
    let mut var = x.sub(&mean)?.square()?;
    for &a in axes {
        var = var.mean(a as isize, true)?;
    }
    Ok((mean, var))
}

/// Shape `[1, C, 1, ...]` for per-channel vectors broadcast over a rank-`rank` input.
fn channel_shape(c: usize, rank: usize) -> Vec<usize> {
    let mut s = vec![1; rank];
    s[1] = c;
    s
}

/// Batch normalisation over the channel axis 1 of [N, C] (1-D) or [N, C, H, W] (2-D) inputs:
/// batch statistics in training (running averages updated with `momentum`), running statistics in
/// evaluation.
pub struct BatchNorm {
    pub gamma: Tensor,
    pub beta: Tensor,
    running_mean: Tensor,
    running_var: Tensor,
    pub momentum: f32,
    pub eps: f32,
    training: AtomicBool,
}

impl BatchNorm {
    pub fn new(init: &mut Initializer, channels: usize) -> Result<Self> {
        Ok(Self {
            gamma: init.param(&[channels], Init::Constant(1.0))?,
            beta: init.param(&[channels], Init::Zeros)?,
            running_mean: init.tensor(&[channels], Init::Zeros)?,
            running_var: init.tensor(&[channels], Init::Constant(1.0))?,
            momentum: 0.1,
            eps: 1e-5,
            training: AtomicBool::new(true),
        })
    }
}

impl Module for BatchNorm {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let c = self.gamma.numel();
        if x.rank() < 2 || x.shape()[1] != c {
            return Err(GraphError::InvalidArgument {
                op: "batch_norm",
                reason: format!("expected [N, {c}, ...], got {:?}", x.shape()),
            });
        }
        let cs = channel_shape(c, x.rank());
        let (mean, var) = if self.training.load(Ordering::Relaxed) {
            let axes: Vec<usize> = (0..x.rank()).filter(|&a| a != 1).collect();
            let (mean, var) = moments(x, &axes)?;
            let n = x.numel() / c;
            no_grad(|| -> Result<()> {
                let m = self.momentum;
                let unbiased = n as f32 / (n.max(2) - 1) as f32;
                let upd = |old: &Tensor, new: &Tensor, scale: f32| -> Result<Tensor> {
                    old.mul_scalar(1.0 - m)?
                        .add(&new.reshape(&[c])?.mul_scalar(m * scale)?)
                };
                let rm = upd(&self.running_mean, &mean.detach(), 1.0)?;
                let rv = upd(&self.running_var, &var.detach(), unbiased)?;
                // Updated in place on the device, so tensors from named_buffers stay live.
                self.running_mean.array().assign(rm.array())?;
                self.running_var.array().assign(rv.array())?;
                Ok(())
            })?;
            (mean, var)
        } else {
            (
                self.running_mean.reshape(&cs)?,
                self.running_var.reshape(&cs)?,
            )
        };
        let xhat = x.sub(&mean)?.mul(&var.add_scalar(self.eps)?.rsqrt()?)?;
        xhat.mul(&self.gamma.reshape(&cs)?)?
            .add(&self.beta.reshape(&cs)?)
    }
    fn named_parameters(&self) -> Vec<(String, Tensor)> {
        vec![
            ("weight".into(), self.gamma.clone()),
            ("bias".into(), self.beta.clone()),
        ]
    }
    fn named_buffers(&self) -> Vec<(String, Tensor)> {
        vec![
            ("running_mean".into(), self.running_mean.clone()),
            ("running_var".into(), self.running_var.clone()),
        ]
    }
    fn set_training(&mut self, training: bool) {
        self.training.store(training, Ordering::Relaxed);
    }
}

/// Layer normalisation over the last dim, with a per-feature affine transform.
pub struct LayerNorm {
    pub gamma: Tensor,
    pub beta: Tensor,
    pub eps: f32,
}

impl LayerNorm {
    pub fn new(init: &mut Initializer, features: usize) -> Result<Self> {
        Ok(Self {
            gamma: init.param(&[features], Init::Constant(1.0))?,
            beta: init.param(&[features], Init::Zeros)?,
            eps: 1e-5,
        })
    }
}

impl Module for LayerNorm {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let last = x.rank().checked_sub(1).ok_or(GraphError::InvalidArgument {
            op: "layer_norm",
            reason: "a 0-d input has no features".into(),
        })?;
        let (mean, var) = moments(x, &[last])?;
        let xhat = x.sub(&mean)?.mul(&var.add_scalar(self.eps)?.rsqrt()?)?;
        xhat.mul(&self.gamma)?.add(&self.beta)
    }
    fn named_parameters(&self) -> Vec<(String, Tensor)> {
        vec![
            ("weight".into(), self.gamma.clone()),
            ("bias".into(), self.beta.clone()),
        ]
    }
}

/// Group normalisation of [N, C, ...]: statistics per sample over groups of C/groups channels.
pub struct GroupNorm {
    pub groups: usize,
    pub gamma: Tensor,
    pub beta: Tensor,
    pub eps: f32,
}

impl GroupNorm {
    pub fn new(init: &mut Initializer, groups: usize, channels: usize) -> Result<Self> {
        if groups == 0 || !channels.is_multiple_of(groups) {
            return Err(GraphError::InvalidArgument {
                op: "group_norm",
                reason: format!("{channels} channels do not split into {groups} groups"),
            });
        }
        Ok(Self {
            groups,
            gamma: init.param(&[channels], Init::Constant(1.0))?,
            beta: init.param(&[channels], Init::Zeros)?,
            eps: 1e-5,
        })
    }
}

impl Module for GroupNorm {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let c = self.gamma.numel();
        if x.rank() < 2 || x.shape()[1] != c {
            return Err(GraphError::InvalidArgument {
                op: "group_norm",
                reason: format!("expected [N, {c}, ...], got {:?}", x.shape()),
            });
        }
        let n = x.shape()[0];
        let g = x.reshape(&[n, self.groups, x.numel() / (n * self.groups)])?;
        let (mean, var) = moments(&g, &[2])?;
        let xhat = g
            .sub(&mean)?
            .mul(&var.add_scalar(self.eps)?.rsqrt()?)?
            .reshape(x.shape())?;
        let cs = channel_shape(c, x.rank());
        xhat.mul(&self.gamma.reshape(&cs)?)?
            .add(&self.beta.reshape(&cs)?)
    }
    fn named_parameters(&self) -> Vec<(String, Tensor)> {
        vec![
            ("weight".into(), self.gamma.clone()),
            ("bias".into(), self.beta.clone()),
        ]
    }
}
