//! Launcher for `shaders/optim.wgsl`: fused, in-place optimiser updates (SGD, AdaGrad, RMSProp,
//! Adam, AdamW), one dispatch per parameter tensor.
//!
//! The update rules follow PyTorch's `torch.optim` (single-tensor, non-foreach) formulas; the
//! step-dependent factors (bias corrections, decayed learning rates) are computed here in f64 and
//! passed to the kernel as f32.

use std::sync::Arc;

use bytemuck::{Pod, Zeroable};

use super::{Kernel, groups, wide};
use crate::array::{DType, GpuArray};
use crate::context::{Binding, ro, rw};
use crate::error::{DeviceError, Result};
use crate::pool::PooledBuffer;

/// One optimiser update rule with its hyper-parameters. `step` is this parameter's 1-based step
/// count (the update being made is the `step`-th), used for Adam's bias corrections and AdaGrad's
/// learning-rate decay; SGD's `first` says the momentum buffer is fresh (PyTorch starts it as `d`).
///
/// State buffers (see [`OptimRule::state_count`]) have the parameter's shape, start as zeros, and
/// are updated in place:
/// - `Sgd`: none when `momentum == 0`, else `[momentum_buffer]`
/// - `AdaGrad`: `[sum_of_squares]`
/// - `RmsProp`: `[square_avg]`
/// - `Adam`, `AdamW`: `[exp_avg (m), exp_avg_sq (v)]`
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum OptimRule {
    /// `d = g + wd w`; with momentum: `buf = d` when `first`, else
    /// `buf = momentum buf + (1 - dampening) d`, and `d = nesterov ? d + momentum buf : buf`;
    /// then `w -= lr d`.
    Sgd {
        lr: f32,
        momentum: f32,
        dampening: f32,
        weight_decay: f32,
        nesterov: bool,
        first: bool,
    },
    /// `d = g + wd w; sum += d^2; w -= lr / (1 + (step - 1) lr_decay) * d / (sqrt(sum) + eps)`.
    AdaGrad {
        lr: f32,
        lr_decay: f32,
        weight_decay: f32,
        eps: f32,
        step: u64,
    },
    /// `d = g + wd w; sq = alpha sq + (1 - alpha) d^2; w -= lr d / (sqrt(sq) + eps)`.
    RmsProp {
        lr: f32,
        alpha: f32,
        eps: f32,
        weight_decay: f32,
    },
    /// Adam with L2 weight decay added to the gradient (`d = g + wd w`), then
    /// `m = b1 m + (1 - b1) d; v = b2 v + (1 - b2) d^2;`
    /// `w -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)`.
    Adam {
        lr: f32,
        beta1: f32,
        beta2: f32,
        eps: f32,
        weight_decay: f32,
        step: u64,
    },
    /// Adam with decoupled weight decay: `w *= 1 - lr wd` first, then Adam's update with `d = g`.
    AdamW {
        lr: f32,
        beta1: f32,
        beta2: f32,
        eps: f32,
        weight_decay: f32,
        step: u64,
    },
}

/// An update's entry points (optim.wgsl's and optim_wide.wgsl's) and override constants.
type Entry = (&'static str, &'static str, &'static [(&'static str, f64)]);

/// RULE of the `one_state` entry points (see optim.wgsl).
const NO_RULE: &[(&str, f64)] = &[];
const MOMENTUM: &[(&str, f64)] = &[("RULE", 0.0)];
const ADAGRAD: &[(&str, f64)] = &[("RULE", 1.0)];
const RMSPROP: &[(&str, f64)] = &[("RULE", 2.0)];

impl OptimRule {
    /// Number of state buffers the rule reads and updates.
    pub fn state_count(&self) -> usize {
        match *self {
            OptimRule::Sgd { momentum, .. } => usize::from(momentum != 0.0),
            OptimRule::AdaGrad { .. } | OptimRule::RmsProp { .. } => 1,
            OptimRule::Adam { .. } | OptimRule::AdamW { .. } => 2,
        }
    }

    /// Lower-case name of the rule (for errors and state names).
    pub fn name(&self) -> &'static str {
        match self {
            OptimRule::Sgd { .. } => "sgd",
            OptimRule::AdaGrad { .. } => "adagrad",
            OptimRule::RmsProp { .. } => "rmsprop",
            OptimRule::Adam { .. } => "adam",
            OptimRule::AdamW { .. } => "adamw",
        }
    }

    /// Checks the hyper-parameters and packs them into the kernel's params; returns the entry
    /// points (optim.wgsl's, and its twin in optim_wide.wgsl) and their override constants.
    fn lower(&self, n: u32) -> Result<(Entry, Params)> {
        const OP: &str = "optim_update";
        let bad = |reason: String| DeviceError::InvalidArgument { op: OP, reason };
        let finite = |name: &str, v: f32| {
            if v.is_finite() {
                Ok(())
            } else {
                Err(bad(format!("{} {name} = {v} is not finite", self.name())))
            }
        };
        let first_step = |step: u64| {
            if step == 0 {
                Err(bad(format!("{}: step counts start at 1", self.name())))
            } else {
                Ok(())
            }
        };
        let unit = |name: &str, v: f32| {
            if (0.0..1.0).contains(&v) {
                Ok(())
            } else {
                Err(bad(format!(
                    "{} {name} = {v} must be in [0, 1)",
                    self.name()
                )))
            }
        };
        let mut p = Params {
            n,
            decay: 1.0,
            ..Params::zeroed()
        };
        let entry = match *self {
            OptimRule::Sgd {
                lr,
                momentum,
                dampening,
                weight_decay,
                nesterov,
                first,
            } => {
                for (k, v) in [
                    ("lr", lr),
                    ("momentum", momentum),
                    ("dampening", dampening),
                    ("weight_decay", weight_decay),
                ] {
                    finite(k, v)?;
                }
                if nesterov && (momentum <= 0.0 || dampening != 0.0) {
                    return Err(bad(
                        "sgd: Nesterov momentum needs momentum > 0 and dampening 0".into(),
                    ));
                }
                p.lr = lr;
                p.weight_decay = weight_decay;
                p.a = momentum;
                p.b = 1.0 - dampening;
                p.flags =
                    if nesterov { FLAG_NESTEROV } else { 0 } | if first { FLAG_FIRST } else { 0 };
                if momentum == 0.0 {
                    ("sgd", "sgd8", NO_RULE)
                } else {
                    ("one_state", "one_state8", MOMENTUM)
                }
            }
            OptimRule::AdaGrad {
                lr,
                lr_decay,
                weight_decay,
                eps,
                step,
            } => {
                for (k, v) in [
                    ("lr", lr),
                    ("lr_decay", lr_decay),
                    ("weight_decay", weight_decay),
                    ("eps", eps),
                ] {
                    finite(k, v)?;
                }
                first_step(step)?;
                p.lr = (f64::from(lr) / (1.0 + (step - 1) as f64 * f64::from(lr_decay))) as f32;
                p.weight_decay = weight_decay;
                p.eps = eps;
                ("one_state", "one_state8", ADAGRAD)
            }
            OptimRule::RmsProp {
                lr,
                alpha,
                eps,
                weight_decay,
            } => {
                for (k, v) in [
                    ("lr", lr),
                    ("alpha", alpha),
                    ("eps", eps),
                    ("weight_decay", weight_decay),
                ] {
                    finite(k, v)?;
                }
                if !(0.0..=1.0).contains(&alpha) {
                    return Err(bad(format!("rmsprop alpha = {alpha} must be in [0, 1]")));
                }
                p.lr = lr;
                p.a = alpha;
                p.eps = eps;
                p.weight_decay = weight_decay;
                ("one_state", "one_state8", RMSPROP)
            }
            OptimRule::Adam {
                lr,
                beta1,
                beta2,
                eps,
                weight_decay,
                step,
            }
            | OptimRule::AdamW {
                lr,
                beta1,
                beta2,
                eps,
                weight_decay,
                step,
            } => {
                for (k, v) in [("lr", lr), ("eps", eps), ("weight_decay", weight_decay)] {
                    finite(k, v)?;
                }
                unit("beta1", beta1)?;
                unit("beta2", beta2)?;
                first_step(step)?;
                let t = step as f64;
                let bc1 = 1.0 - f64::from(beta1).powf(t);
                let bc2 = 1.0 - f64::from(beta2).powf(t);
                p.lr = (f64::from(lr) / bc1) as f32;
                p.bc2_rsqrt = (1.0 / bc2.sqrt()) as f32;
                p.a = beta1;
                p.b = beta2;
                p.eps = eps;
                if matches!(self, OptimRule::AdamW { .. }) {
                    p.decay = (1.0 - f64::from(lr) * f64::from(weight_decay)) as f32;
                } else {
                    p.weight_decay = weight_decay;
                }
                ("adam", "adam8", NO_RULE)
            }
        };
        Ok((entry, p))
    }
}

const FLAG_NESTEROV: u32 = 1;
const FLAG_FIRST: u32 = 2;

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Params {
    n: u32,
    flags: u32,
    lr: f32,
    weight_decay: f32,
    decay: f32,
    a: f32,
    b: f32,
    eps: f32,
    bc2_rsqrt: f32,
    _p: [u32; 3],
}

impl GpuArray {
    /// Applies one optimiser update to this parameter in place, from `grad`, updating `state` in
    /// place too (one dispatch). param, grad, each state: the same shape, f32, distinct buffers.
    ///
    /// The update writes the shared storage: every clone of this array (and every tensor wrapping
    /// it) sees the new values.
    ///
    /// ```no_run
    /// use wgrad_device::{Device, GpuArray, OptimRule};
    /// let dev = Device::new()?;
    /// let w = GpuArray::from_slice(&dev, &[1.0f32, 2.0], &[2])?;
    /// let g = GpuArray::from_slice(&dev, &[0.5f32, -1.0], &[2])?;
    /// let rule = OptimRule::Sgd { lr: 0.1, momentum: 0.0, dampening: 0.0, weight_decay: 0.0, nesterov: false, first: true };
    /// w.optim_update(&g, &[], &rule)?;
    /// assert_eq!(w.to_vec::<f32>()?, vec![0.95, 2.1]);
    /// # Ok::<(), wgrad_device::DeviceError>(())
    /// ```
    pub fn optim_update(
        &self,
        grad: &GpuArray,
        state: &[&GpuArray],
        rule: &OptimRule,
    ) -> Result<()> {
        const OP: &str = "optim_update";
        self.expect_dtype(OP, DType::F32)?;
        grad.expect_dtype(OP, DType::F32)?;
        self.same_device(OP, grad)?;
        if grad.shape != self.shape {
            return Err(DeviceError::ShapeMismatch {
                op: OP,
                lhs: self.shape.clone(),
                rhs: grad.shape.clone(),
                detail: ": the gradient must have the parameter's shape".into(),
            });
        }
        if state.len() != rule.state_count() {
            return Err(DeviceError::InvalidArgument {
                op: OP,
                reason: format!(
                    "{} takes {} state buffer(s), {} given",
                    rule.name(),
                    rule.state_count(),
                    state.len()
                ),
            });
        }
        for s in state {
            s.expect_dtype(OP, DType::F32)?;
            self.same_device(OP, s)?;
            if s.shape != self.shape {
                return Err(DeviceError::ShapeMismatch {
                    op: OP,
                    lhs: self.shape.clone(),
                    rhs: s.shape.clone(),
                    detail: format!(": {} state must have the parameter's shape", rule.name()),
                });
            }
        }
        // A buffer bound twice with write access in one dispatch is a wgpu usage conflict (and
        // would race); say so here instead of failing at submission.
        let mut bufs = vec![&self.buf, &grad.buf];
        bufs.extend(state.iter().map(|s| &s.buf));
        for i in 0..bufs.len() {
            for j in 0..i {
                if Arc::ptr_eq(bufs[i], bufs[j]) {
                    return Err(DeviceError::InvalidArgument {
                        op: OP,
                        reason: "parameter, gradient and state buffers must be distinct".into(),
                    });
                }
            }
        }

        let n = self.numel();
        let ((entry, entry8, constants), params) = rule.lower(n as u32)?;
        let mut bindings: Vec<Binding<'_>> = vec![rw(1, &self.buf), ro(2, &grad.buf)];
        bindings.extend(state.iter().zip(3u32..).map(|(s, slot)| rw(slot, &s.buf)));
        // A word per access where the device has wide storage (optim_wide.wgsl, the same bits):
        // Adam reads four buffers and writes three, each access a loop over the SIMD lanes on
        // lavapipe.
        let buffers: Vec<&PooledBuffer> = bufs.iter().map(|b| b.as_ref()).collect();
        if wide::fits(&self.dev, &buffers, n) {
            return self.dev.dispatch(
                Kernel::OptimWide,
                entry8,
                constants,
                &params,
                &bindings,
                groups(n.div_ceil(8)),
            );
        }
        self.dev.dispatch(
            Kernel::Optim,
            entry,
            constants,
            &params,
            &bindings,
            groups(n.div_ceil(4)),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Device;

    /// The CPU reference of every rule, in f64 (mirrors the WGSL, written from PyTorch's formulas).
    fn reference(rule: &OptimRule, w: &mut [f64], g: &[f64], s: &mut [Vec<f64>]) {
        for i in 0..w.len() {
            match *rule {
                OptimRule::Sgd {
                    lr,
                    momentum,
                    dampening,
                    weight_decay,
                    nesterov,
                    first,
                } => {
                    let mut d = g[i] + f64::from(weight_decay) * w[i];
                    if momentum != 0.0 {
                        let m = f64::from(momentum);
                        let buf = if first {
                            d
                        } else {
                            m * s[0][i] + (1.0 - f64::from(dampening)) * d
                        };
                        s[0][i] = buf;
                        d = if nesterov { d + m * buf } else { buf };
                    }
                    w[i] -= f64::from(lr) * d;
                }
                OptimRule::AdaGrad {
                    lr,
                    lr_decay,
                    weight_decay,
                    eps,
                    step,
                } => {
                    let d = g[i] + f64::from(weight_decay) * w[i];
                    s[0][i] += d * d;
                    let clr = f64::from(lr) / (1.0 + (step - 1) as f64 * f64::from(lr_decay));
                    w[i] -= clr * d / (s[0][i].sqrt() + f64::from(eps));
                }
                OptimRule::RmsProp {
                    lr,
                    alpha,
                    eps,
                    weight_decay,
                } => {
                    let a = f64::from(alpha);
                    let d = g[i] + f64::from(weight_decay) * w[i];
                    s[0][i] = a * s[0][i] + (1.0 - a) * d * d;
                    w[i] -= f64::from(lr) * d / (s[0][i].sqrt() + f64::from(eps));
                }
                OptimRule::Adam {
                    lr,
                    beta1,
                    beta2,
                    eps,
                    weight_decay,
                    step,
                }
                | OptimRule::AdamW {
                    lr,
                    beta1,
                    beta2,
                    eps,
                    weight_decay,
                    step,
                } => {
                    let (b1, b2, lr, wd) = (
                        f64::from(beta1),
                        f64::from(beta2),
                        f64::from(lr),
                        f64::from(weight_decay),
                    );
                    let decoupled = matches!(rule, OptimRule::AdamW { .. });
                    if decoupled {
                        w[i] *= 1.0 - lr * wd;
                    }
                    let d = if decoupled { g[i] } else { g[i] + wd * w[i] };
                    s[0][i] = b1 * s[0][i] + (1.0 - b1) * d;
                    s[1][i] = b2 * s[1][i] + (1.0 - b2) * d * d;
                    let t = step as f64;
                    let (bc1, bc2) = (1.0 - b1.powf(t), 1.0 - b2.powf(t));
                    w[i] -= lr / bc1 * s[0][i] / (s[1][i].sqrt() / bc2.sqrt() + f64::from(eps));
                }
            }
        }
    }

    fn rules(step: u64) -> Vec<OptimRule> {
        vec![
            OptimRule::Sgd {
                lr: 0.1,
                momentum: 0.0,
                dampening: 0.0,
                weight_decay: 0.01,
                nesterov: false,
                first: step == 1,
            },
            OptimRule::Sgd {
                lr: 0.1,
                momentum: 0.9,
                dampening: 0.1,
                weight_decay: 0.01,
                nesterov: false,
                first: step == 1,
            },
            OptimRule::Sgd {
                lr: 0.1,
                momentum: 0.9,
                dampening: 0.0,
                weight_decay: 0.0,
                nesterov: true,
                first: step == 1,
            },
            OptimRule::AdaGrad {
                lr: 0.1,
                lr_decay: 0.01,
                weight_decay: 0.01,
                eps: 1e-10,
                step,
            },
            OptimRule::RmsProp {
                lr: 0.01,
                alpha: 0.99,
                eps: 1e-8,
                weight_decay: 0.01,
            },
            OptimRule::Adam {
                lr: 0.01,
                beta1: 0.9,
                beta2: 0.999,
                eps: 1e-8,
                weight_decay: 0.01,
                step,
            },
            OptimRule::AdamW {
                lr: 0.01,
                beta1: 0.9,
                beta2: 0.999,
                eps: 1e-8,
                weight_decay: 0.01,
                step,
            },
        ]
    }

    /// Three steps of every rule on 1031 elements (four per invocation, eight with wide storage: a
    /// full workgroup and a partial one whose last vec4 or word runs past n, so the bounds guard
    /// is exercised) against the f64 reference, with and without wide storage (the same bits). Each step's error is at most a few f32 roundings of values of size ~1 (Adam's
    /// m / sqrt(v) ratio is ~1 at these inputs), so 1e-5 absolute is loose enough for every
    /// adapter and tight enough to catch a wrong formula.
    #[test]
    fn optim_update_matches_the_cpu_reference() {
        let dev = Device::new().expect("device");
        let n = 1031;
        let w0: Vec<f32> = (0..n)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) / 25.0)
            .collect();
        // Different gradients per step, with signs mixed, some exact zeros.
        let grad = |t: usize| -> Vec<f32> {
            (0..n)
                .map(|i| (((i * 13 + t * 7) % 23) as f32 - 11.0) / 7.0)
                .collect()
        };
        for (k, proto) in rules(1).into_iter().enumerate() {
            // With wide storage (Adam then runs a word per access) and without: the same bits.
            let mut runs: Vec<(Vec<f32>, Vec<Vec<f32>>)> = Vec::new();
            for wide in [true, false] {
                dev.set_wide_storage(wide);
                let w = GpuArray::from_slice(&dev, &w0, &[n]).unwrap();
                let states: Vec<GpuArray> = (0..proto.state_count())
                    .map(|_| GpuArray::zeros(&dev, &[n]).unwrap())
                    .collect();
                for step in 1..=3u64 {
                    let g_dev = GpuArray::from_slice(&dev, &grad(step as usize), &[n]).unwrap();
                    let refs: Vec<&GpuArray> = states.iter().collect();
                    w.optim_update(&g_dev, &refs, &rules(step)[k]).unwrap();
                }
                runs.push((
                    w.to_vec::<f32>().unwrap(),
                    states.iter().map(|s| s.to_vec::<f32>().unwrap()).collect(),
                ));
            }
            dev.set_wide_storage(true);
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<u32>>();
            assert_eq!(
                bits(&runs[0].0),
                bits(&runs[1].0),
                "{proto:?}: wide vs vec4"
            );
            for (a, b) in runs[0].1.iter().zip(&runs[1].1) {
                assert_eq!(bits(a), bits(b), "{proto:?} state: wide vs vec4");
            }
            let mut w_ref: Vec<f64> = w0.iter().map(|&v| f64::from(v)).collect();
            let mut s_ref = vec![vec![0.0f64; n]; proto.state_count()];
            for step in 1..=3u64 {
                let g64: Vec<f64> = grad(step as usize).iter().map(|&v| f64::from(v)).collect();
                reference(&rules(step)[k], &mut w_ref, &g64, &mut s_ref);
            }
            let (got, states) = &runs[0];
            for (i, (&a, &b)) in got.iter().zip(&w_ref).enumerate() {
                assert!(
                    (f64::from(a) - b).abs() <= 1e-5,
                    "{proto:?} w[{i}]: gpu {a} vs cpu {b}"
                );
            }
            for (got, s64) in states.iter().zip(&s_ref) {
                for (i, (&a, &b)) in got.iter().zip(s64).enumerate() {
                    assert!(
                        (f64::from(a) - b).abs() <= 1e-5 * b.abs().max(1.0),
                        "{proto:?} state[{i}]: gpu {a} vs cpu {b}"
                    );
                }
            }
        }
    }

    #[test]
    fn optim_update_rejects_bad_arguments() {
        let dev = Device::new().expect("device");
        let w = GpuArray::zeros(&dev, &[3]).unwrap();
        let g = GpuArray::zeros(&dev, &[3]).unwrap();
        let g_bad = GpuArray::zeros(&dev, &[4]).unwrap();
        let m = GpuArray::zeros(&dev, &[3]).unwrap();
        let adam = OptimRule::Adam {
            lr: 0.1,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
            step: 1,
        };
        assert!(matches!(
            w.optim_update(&g_bad, &[&m, &m], &adam),
            Err(DeviceError::ShapeMismatch {
                op: "optim_update",
                ..
            })
        ));
        assert!(matches!(
            w.optim_update(&g, &[&m], &adam),
            Err(DeviceError::InvalidArgument { .. })
        ));
        assert!(matches!(
            w.optim_update(&g, &[&m, &m], &adam),
            Err(DeviceError::InvalidArgument { .. })
        ));
        assert!(matches!(
            w.optim_update(
                &w,
                &[],
                &OptimRule::Sgd {
                    lr: 0.1,
                    momentum: 0.0,
                    dampening: 0.0,
                    weight_decay: 0.0,
                    nesterov: false,
                    first: true
                }
            ),
            Err(DeviceError::InvalidArgument { .. })
        ));
        let v_bad = GpuArray::zeros(&dev, &[1, 3]).unwrap();
        assert!(matches!(
            w.optim_update(&g, &[&m, &v_bad], &adam),
            Err(DeviceError::ShapeMismatch { .. })
        ));
        let idx = GpuArray::from_slice(&dev, &[0u32, 1, 2], &[3]).unwrap();
        assert!(matches!(
            w.optim_update(&idx, &[&m, &v_bad], &adam),
            Err(DeviceError::DTypeMismatch { .. })
        ));
        let step0 = OptimRule::Adam {
            lr: 0.1,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
            step: 0,
        };
        let v = GpuArray::zeros(&dev, &[3]).unwrap();
        assert!(matches!(
            w.optim_update(&g, &[&m, &v], &step0),
            Err(DeviceError::InvalidArgument { .. })
        ));
        let nesterov_no_momentum = OptimRule::Sgd {
            lr: 0.1,
            momentum: 0.0,
            dampening: 0.0,
            weight_decay: 0.0,
            nesterov: true,
            first: true,
        };
        assert!(matches!(
            w.optim_update(&g, &[], &nesterov_no_momentum),
            Err(DeviceError::InvalidArgument { .. })
        ));
        // The valid call still works and nothing above recorded a dispatch that breaks the queue.
        w.optim_update(&g, &[&m, &v], &adam).unwrap();
        assert_eq!(w.to_vec::<f32>().unwrap(), vec![0.0; 3]);
    }
}
