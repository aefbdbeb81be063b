//! Optimisers (plain gradient descent, SGD with momentum / Nesterov, AdaGrad, RMSProp, Adam, AdamW),
//! learning-rate schedules, gradient-norm clipping, and a damped Newton step for small problems.
//!
//! Each optimiser updates every parameter in place with one fused kernel dispatch
//! ([`wgrad_device::GpuArray::optim_update`]); the formulas and defaults are PyTorch's.
//!
//! ```no_run
//! use wgrad_graph::{Device, Tensor};
//! use wgrad_models::optim::{Adam, CosineLr, LrSchedule, Optimizer, clip_grad_norm};
//! let dev = Device::new()?;
//! let w = Tensor::from_vec(vec![1.0, -2.0], &[2], &dev)?.requires_grad();
//! let mut opt = Adam::new(0.1);
//! let schedule = CosineLr { t_max: 10, eta_min: 0.0 };
//! for epoch in 0..10 {
//!     schedule.apply(&mut opt, 0.1, epoch);
//!     opt.zero_grad(&[w.clone()]);
//!     let loss = w.square()?.sum_all()?;
//!     loss.backward()?;
//!     clip_grad_norm(&[w.clone()], 1.0)?;
//!     opt.step(&[w.clone()])?;
//! }
//! # Ok::<(), wgrad_graph::GraphError>(())
//! ```

use std::collections::{BTreeMap, HashMap, HashSet};

use nalgebra::{DMatrix, DVector};
use wgrad_device::{DType, OptimRule};
use wgrad_graph::{Device, GraphError, Result, Tensor, grad, hessian, no_grad};

// =============================================================================================
// The Optimizer trait

/// A first-order optimiser: updates parameters in place from their accumulated gradients.
///
/// State (momentum buffers, moments, per-parameter step counts) is created lazily on a parameter's
/// first step and kept by slot: a parameter's slot is its position in the `params` slice of the
/// step that first updated it (or the next free slot, if another parameter holds that one). So a
/// model that always passes `model.parameters()` gets stable state names such as `"adam.m.3"`.
pub trait Optimizer {
    /// One update of every parameter that has a gradient (`Tensor::grad()`); others are skipped.
    fn step(&mut self, params: &[Tensor]) -> Result<()>;

    /// The learning rate used by the next step.
    fn lr(&self) -> f32;

    fn set_lr(&mut self, lr: f32);

    /// Everything needed to resume exactly: `"<prefix>.lr"`, and for each slot `i` its step count
    /// `"<prefix>.step.<i>"` (shape [1], f32, exact up to 2^24 steps) and its state buffers
    /// (`"adam.m.<i>"`, `"adam.v.<i>"`, ...). Empty before the first step or load.
    ///
    /// The buffers are the optimiser's own storage, updated in place by later steps: save (read)
    /// them before stepping again.
    fn state_tensors(&self) -> Result<Vec<(String, Tensor)>>;

    /// Replaces all state with entries named as [`state_tensors`](Self::state_tensors) names them
    /// (entries with another prefix are ignored, so a checkpoint may hold model and optimiser
    /// state together). Values are copied. Slots are matched to parameters by position at the
    /// next step, where shapes are checked.
    fn load_state_tensors(&mut self, state: &[(String, Tensor)]) -> Result<()>;

    /// Clears the gradient of every parameter.
    fn zero_grad(&self, params: &[Tensor]) {
        zero_grad(params);
    }
}

/// Clears the gradient of every parameter.
pub fn zero_grad(params: &[Tensor]) {
    for p in params {
        p.zero_grad();
    }
}

// =============================================================================================
// Shared machinery: per-parameter slots, the step loop, state save / load

struct Slot {
    /// `Tensor::id()` of the parameter using this slot; `None` for loaded state not yet claimed.
    owner: Option<u64>,
    step: u64,
    /// In the order of the optimiser's buffer names.
    bufs: Vec<Tensor>,
    /// The buffers were created as zeros and no update has used them yet.
    fresh: bool,
}

#[derive(Default)]
struct Slots {
    slots: BTreeMap<usize, Slot>,
    by_id: HashMap<u64, usize>,
    /// Where the step / lr tensors of `state_tensors` are created.
    device: Option<Device>,
}

fn invalid(op: &'static str, reason: String) -> GraphError {
    GraphError::InvalidArgument { op, reason }
}

impl Slots {
    /// The slot index of parameter `p`, found at position `pos` of the step's list; the slot is
    /// claimed (created, or taken over from loaded state) on first use.
    fn claim(&mut self, prefix: &str, pos: usize, p: &Tensor) -> Result<usize> {
        Ok(match self.by_id.get(&p.id()) {
            Some(&i) => i,
            None => {
                let i = match self.slots.get(&pos) {
                    Some(s) if s.owner.is_some() => {
                        self.slots.keys().next_back().map_or(0, |k| k + 1)
                    }
                    _ => pos,
                };
                let slot = self.slots.entry(i).or_insert(Slot {
                    owner: None,
                    step: 0,
                    bufs: Vec::new(),
                    fresh: false,
                });
                // Loaded state: check it fits this parameter and move it to its device.
                for b in &mut slot.bufs {
                    if b.shape() != p.shape() {
                        return Err(invalid(
                            "Optimizer::step",
                            format!(
                                "loaded state {prefix}.*.{i} has shape {:?}, but parameter {pos} has shape {:?}",
                                b.shape(),
                                p.shape()
                            ),
                        ));
                    }
                    if !b.device().same(p.device()) {
                        *b = Tensor::from_vec(b.to_vec()?, b.shape(), p.device())?;
                    }
                }
                slot.owner = Some(p.id());
                self.by_id.insert(p.id(), i);
                i
            }
        })
    }

    fn get_mut(&mut self, i: usize) -> Result<&mut Slot> {
        self.slots
            .get_mut(&i)
            .ok_or_else(|| invalid("Optimizer::step", format!("optimiser slot {i} vanished")))
    }
}

/// What distinguishes one optimiser from another: its rule, its state names, and where it keeps
/// its lr and slots. The [`Optimizer`] methods are written once over this.
trait Rule {
    /// The prefix of state names (`"adam"`).
    const PREFIX: &'static str;
    /// Names of the state buffers, in the kernel's order (`["m", "v"]`).
    const BUFS: &'static [&'static str];
    /// The update for a parameter's `step`-th step; `fresh` when its state buffers were just
    /// created (zeros).
    fn rule(&self, step: u64, fresh: bool) -> OptimRule;
    fn lr_mut(&mut self) -> &mut f32;
    fn slots(&self) -> &Slots;
    fn slots_mut(&mut self) -> &mut Slots;
}

fn step_impl<R: Rule>(opt: &mut R, params: &[Tensor]) -> Result<()> {
    const OP: &str = "Optimizer::step";
    // Check everything first, so a bad list leaves every parameter untouched.
    let mut seen = HashSet::new();
    let mut work = Vec::new();
    for (pos, p) in params.iter().enumerate() {
        if !seen.insert(p.id()) {
            return Err(invalid(
                OP,
                format!("parameter {pos} appears twice in the list"),
            ));
        }
        let Some(g) = p.grad() else { continue };
        if g.shape() != p.shape() || g.dtype() != DType::F32 || p.dtype() != DType::F32 {
            return Err(invalid(
                OP,
                format!(
                    "parameter {pos} is {:?} {:?} but its gradient is {:?} {:?}",
                    p.dtype(),
                    p.shape(),
                    g.dtype(),
                    g.shape()
                ),
            ));
        }
        work.push((pos, p, g));
    }
    let need = opt.rule(1, true).state_count();
    for (pos, p, g) in work {
        let slots = opt.slots_mut();
        slots.device.get_or_insert_with(|| p.device().clone());
        let i = slots.claim(R::PREFIX, pos, p)?;
        let slot = slots.get_mut(i)?;
        while slot.bufs.len() < need {
            slot.bufs.push(Tensor::zeros(p.shape(), p.device())?);
            slot.fresh = true;
        }
        let fresh = slot.fresh;
        let bufs: Vec<Tensor> = slot.bufs[..need].to_vec();
        let step = slot.step + 1;
        let rule = opt.rule(step, fresh);
        let arrays: Vec<_> = bufs.iter().map(Tensor::array).collect();
        p.array().optim_update(g.array(), &arrays, &rule)?;
        let slot = opt.slots_mut().get_mut(i)?;
        slot.step = step;
        slot.fresh = false;
    }
    Ok(())
}

fn state_impl<R: Rule>(opt: &R, lr: f32) -> Result<Vec<(String, Tensor)>> {
    let slots = opt.slots();
    let Some(dev) = &slots.device else {
        return Ok(Vec::new());
    };
    let p = R::PREFIX;
    let mut out = vec![(format!("{p}.lr"), Tensor::from_vec(vec![lr], &[1], dev)?)];
    for (i, slot) in &slots.slots {
        out.push((
            format!("{p}.step.{i}"),
            Tensor::from_vec(vec![slot.step as f32], &[1], dev)?,
        ));
        for (name, b) in R::BUFS.iter().zip(&slot.bufs) {
            out.push((format!("{p}.{name}.{i}"), b.clone()));
        }
    }
    Ok(out)
}

/// Reads a one-element count (f32, u32 or i32) as a step number.
fn read_step(name: &str, t: &Tensor) -> Result<u64> {
    const OP: &str = "load_state_tensors";
    if t.numel() != 1 {
        return Err(invalid(
            OP,
            format!("{name} must have one element, has shape {:?}", t.shape()),
        ));
    }
    let v = match t.dtype() {
        DType::F32 => f64::from(t.item()?),
        DType::U32 => f64::from(t.to_vec_of::<u32>()?[0]),
        DType::I32 => f64::from(t.to_vec_of::<i32>()?[0]),
    };
    if !(v >= 0.0 && v.fract() == 0.0 && v < 2f64.powi(53)) {
        return Err(invalid(OP, format!("{name} = {v} is not a step count")));
    }
    Ok(v as u64)
}

fn load_impl<R: Rule>(opt: &mut R, state: &[(String, Tensor)]) -> Result<()> {
    const OP: &str = "load_state_tensors";
    let prefix = format!("{}.", R::PREFIX);
    let mut lr = None;
    let mut steps: BTreeMap<usize, u64> = BTreeMap::new();
    let mut bufs: BTreeMap<usize, Vec<Option<Tensor>>> = BTreeMap::new();
    let mut device = None;
    for (name, t) in state {
        let Some(rest) = name.strip_prefix(&prefix) else {
            continue;
        };
        device.get_or_insert_with(|| t.device().clone());
        if rest == "lr" {
            if t.numel() != 1 || t.dtype() != DType::F32 {
                return Err(invalid(OP, format!("{name} must be one f32 value")));
            }
            lr = Some(t.item()?);
            continue;
        }
        let parsed = rest
            .rsplit_once('.')
            .and_then(|(field, i)| Some((field, i.parse::<usize>().ok()?)));
        let Some((field, i)) = parsed else {
            return Err(invalid(OP, format!("unknown state entry {name}")));
        };
        if field == "step" {
            steps.insert(i, read_step(name, t)?);
        } else if let Some(k) = R::BUFS.iter().position(|b| *b == field) {
            if t.dtype() != DType::F32 {
                return Err(invalid(
                    OP,
                    format!("{name} must be f32, is {:?}", t.dtype()),
                ));
            }
            // A copy: the optimiser updates its buffers in place.
            let copy = Tensor::from_vec(t.to_vec()?, t.shape(), t.device())?;
            bufs.entry(i).or_insert_with(|| vec![None; R::BUFS.len()])[k] = Some(copy);
        } else {
            return Err(invalid(OP, format!("unknown state entry {name}")));
        }
    }
    let need = opt.rule(1, true).state_count();
    let mut slots = BTreeMap::new();
    for i in steps
        .keys()
        .chain(bufs.keys())
        .copied()
        .collect::<std::collections::BTreeSet<_>>()
    {
        let p = R::PREFIX;
        let step = *steps
            .get(&i)
            .ok_or_else(|| invalid(OP, format!("{p}.step.{i} is missing")))?;
        let mut found: Vec<Tensor> = Vec::new();
        for (k, b) in bufs.remove(&i).unwrap_or_default().into_iter().enumerate() {
            match b {
                Some(t) if k == found.len() => found.push(t),
                Some(_) => {
                    return Err(invalid(
                        OP,
                        format!("{p}.{}.{i} is missing", R::BUFS[found.len()]),
                    ));
                }
                None => {}
            }
        }
        if found.len() < need {
            return Err(invalid(
                OP,
                format!("{p}.{}.{i} is missing", R::BUFS[found.len()]),
            ));
        }
        if let Some(t) = found.iter().find(|t| t.shape() != found[0].shape()) {
            return Err(invalid(
                OP,
                format!(
                    "state buffers of slot {i} have shapes {:?} and {:?}",
                    found[0].shape(),
                    t.shape()
                ),
            ));
        }
        slots.insert(
            i,
            Slot {
                owner: None,
                step,
                bufs: found,
                fresh: step == 0,
            },
        );
    }
    if let Some(lr) = lr {
        *opt.lr_mut() = lr;
    }
    let s = opt.slots_mut();
    s.slots = slots;
    s.by_id.clear();
    if device.is_some() {
        s.device = device;
    }
    Ok(())
}

/// Implements [`Rule`] and [`Optimizer`] for a type with `lr: f32` and `slots: Slots` fields and a
/// `make_rule(&self, step, fresh) -> OptimRule` method.
macro_rules! optimizer {
    ($t:ty, $prefix:literal, $bufs:expr) => {
        impl Rule for $t {
            const PREFIX: &'static str = $prefix;
            const BUFS: &'static [&'static str] = $bufs;
            fn rule(&self, step: u64, fresh: bool) -> OptimRule {
                self.make_rule(step, fresh)
            }
            fn lr_mut(&mut self) -> &mut f32 {
                &mut self.lr
            }
            fn slots(&self) -> &Slots {
                &self.slots
            }
            fn slots_mut(&mut self) -> &mut Slots {
                &mut self.slots
            }
        }

        impl Optimizer for $t {
            fn step(&mut self, params: &[Tensor]) -> Result<()> {
                step_impl(self, params)
            }
            fn lr(&self) -> f32 {
                self.lr
            }
            fn set_lr(&mut self, lr: f32) {
                self.lr = lr;
            }
            fn state_tensors(&self) -> Result<Vec<(String, Tensor)>> {
                state_impl(self, self.lr)
            }
            fn load_state_tensors(&mut self, state: &[(String, Tensor)]) -> Result<()> {
                load_impl(self, state)
            }
        }
    };
}

// =============================================================================================
// The optimisers

/// Plain gradient descent: `w -= lr g`. State: only the step counts (prefix `"gd"`).
pub struct GradientDescent {
    pub lr: f32,
    slots: Slots,
}

impl GradientDescent {
    pub fn new(lr: f32) -> Self {
        Self {
            lr,
            slots: Slots::default(),
        }
    }

    fn make_rule(&self, _step: u64, fresh: bool) -> OptimRule {
        OptimRule::Sgd {
            lr: self.lr,
            momentum: 0.0,
            dampening: 0.0,
            weight_decay: 0.0,
            nesterov: false,
            first: fresh,
        }
    }
}
optimizer!(GradientDescent, "gd", &[]);

/// Stochastic gradient descent with optional momentum, dampening, Nesterov momentum and L2 weight
/// decay (PyTorch's `torch.optim.SGD`). State: `"sgd.momentum.<i>"` when momentum is on.
pub struct Sgd {
    pub lr: f32,
    pub momentum: f32,
    pub dampening: f32,
    pub weight_decay: f32,
    /// Nesterov momentum (needs momentum > 0 and dampening 0; `step` says so otherwise).
    pub nesterov: bool,
    slots: Slots,
}

impl Sgd {
    /// PyTorch's defaults: no momentum, no dampening, no weight decay, no Nesterov.
    pub fn new(lr: f32) -> Self {
        Self {
            lr,
            momentum: 0.0,
            dampening: 0.0,
            weight_decay: 0.0,
            nesterov: false,
            slots: Slots::default(),
        }
    }

    pub fn with_momentum(mut self, momentum: f32) -> Self {
        self.momentum = momentum;
        self
    }

    pub fn with_dampening(mut self, dampening: f32) -> Self {
        self.dampening = dampening;
        self
    }

    pub fn with_nesterov(mut self, nesterov: bool) -> Self {
        self.nesterov = nesterov;
        self
    }

    pub fn with_weight_decay(mut self, weight_decay: f32) -> Self {
        self.weight_decay = weight_decay;
        self
    }

    fn make_rule(&self, _step: u64, fresh: bool) -> OptimRule {
        OptimRule::Sgd {
            lr: self.lr,
            momentum: self.momentum,
            dampening: self.dampening,
            weight_decay: self.weight_decay,
            nesterov: self.nesterov,
            first: fresh,
        }
    }
}
optimizer!(Sgd, "sgd", &["momentum"]);

/// AdaGrad (PyTorch's `torch.optim.Adagrad`, initial accumulator 0). State: `"adagrad.sum.<i>"`.
pub struct AdaGrad {
    pub lr: f32,
    pub lr_decay: f32,
    pub weight_decay: f32,
    pub eps: f32,
    slots: Slots,
}

impl AdaGrad {
    /// PyTorch's defaults: lr_decay 0, weight decay 0, eps 1e-10 (PyTorch's default lr is 0.01).
    pub fn new(lr: f32) -> Self {
        Self {
            lr,
            lr_decay: 0.0,
            weight_decay: 0.0,
            eps: 1e-10,
            slots: Slots::default(),
        }
    }

    pub fn with_lr_decay(mut self, lr_decay: f32) -> Self {
        self.lr_decay = lr_decay;
        self
    }

    pub fn with_weight_decay(mut self, weight_decay: f32) -> Self {
        self.weight_decay = weight_decay;
        self
    }

    pub fn with_eps(mut self, eps: f32) -> Self {
        self.eps = eps;
        self
    }

    fn make_rule(&self, step: u64, _fresh: bool) -> OptimRule {
        OptimRule::AdaGrad {
            lr: self.lr,
            lr_decay: self.lr_decay,
            weight_decay: self.weight_decay,
            eps: self.eps,
            step,
        }
    }
}
optimizer!(AdaGrad, "adagrad", &["sum"]);

/// RMSProp without momentum or centering (PyTorch's `torch.optim.RMSprop` defaults).
/// State: `"rmsprop.square_avg.<i>"`.
pub struct RmsProp {
    pub lr: f32,
    pub alpha: f32,
    pub eps: f32,
    pub weight_decay: f32,
    slots: Slots,
}

impl RmsProp {
    /// PyTorch's defaults: alpha 0.99, eps 1e-8, weight decay 0 (PyTorch's default lr is 0.01).
    pub fn new(lr: f32) -> Self {
        Self {
            lr,
            alpha: 0.99,
            eps: 1e-8,
            weight_decay: 0.0,
            slots: Slots::default(),
        }
    }

    pub fn with_alpha(mut self, alpha: f32) -> Self {
        self.alpha = alpha;
        self
    }

    pub fn with_eps(mut self, eps: f32) -> Self {
        self.eps = eps;
        self
    }

    pub fn with_weight_decay(mut self, weight_decay: f32) -> Self {
        self.weight_decay = weight_decay;
        self
    }

    fn make_rule(&self, _step: u64, _fresh: bool) -> OptimRule {
        OptimRule::RmsProp {
            lr: self.lr,
            alpha: self.alpha,
            eps: self.eps,
            weight_decay: self.weight_decay,
        }
    }
}
optimizer!(RmsProp, "rmsprop", &["square_avg"]);

/// Adam with L2 weight decay added to the gradient (PyTorch's `torch.optim.Adam`).
/// State: `"adam.m.<i>"`, `"adam.v.<i>"`.
pub struct Adam {
    pub lr: f32,
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    pub weight_decay: f32,
    slots: Slots,
}

impl Adam {
    /// PyTorch's defaults: betas (0.9, 0.999), eps 1e-8, weight decay 0 (PyTorch's default lr is 1e-3).
    pub fn new(lr: f32) -> Self {
        Self {
            lr,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
            slots: Slots::default(),
        }
    }

    pub fn with_betas(mut self, beta1: f32, beta2: f32) -> Self {
        self.beta1 = beta1;
        self.beta2 = beta2;
        self
    }

    pub fn with_eps(mut self, eps: f32) -> Self {
        self.eps = eps;
        self
    }

    pub fn with_weight_decay(mut self, weight_decay: f32) -> Self {
        self.weight_decay = weight_decay;
        self
    }

    fn make_rule(&self, step: u64, _fresh: bool) -> OptimRule {
        OptimRule::Adam {
            lr: self.lr,
            beta1: self.beta1,
            beta2: self.beta2,
            eps: self.eps,
            weight_decay: self.weight_decay,
            step,
        }
    }
}
optimizer!(Adam, "adam", &["m", "v"]);

/// Adam with decoupled weight decay, `w *= 1 - lr wd` before the Adam update (PyTorch's
/// `torch.optim.AdamW`). State: `"adamw.m.<i>"`, `"adamw.v.<i>"`.
pub struct AdamW {
    pub lr: f32,
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    pub weight_decay: f32,
    slots: Slots,
}

impl AdamW {
    /// PyTorch's defaults: betas (0.9, 0.999), eps 1e-8, weight decay 0.01 (PyTorch's default lr is 1e-3).
    pub fn new(lr: f32) -> Self {
        Self {
            lr,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.01,
            slots: Slots::default(),
        }
    }

    pub fn with_betas(mut self, beta1: f32, beta2: f32) -> Self {
        self.beta1 = beta1;
        self.beta2 = beta2;
        self
    }

    pub fn with_eps(mut self, eps: f32) -> Self {
        self.eps = eps;
        self
    }

    pub fn with_weight_decay(mut self, weight_decay: f32) -> Self {
        self.weight_decay = weight_decay;
        self
    }

    fn make_rule(&self, step: u64, _fresh: bool) -> OptimRule {
        OptimRule::AdamW {
            lr: self.lr,
            beta1: self.beta1,
            beta2: self.beta2,
            eps: self.eps,
            weight_decay: self.weight_decay,
            step,
        }
    }
}
optimizer!(AdamW, "adamw", &["m", "v"]);

// =============================================================================================
// Learning-rate schedules

/// A learning rate as a function of the epoch (0-based) and the base learning rate.
pub trait LrSchedule {
    fn lr(&self, base_lr: f32, epoch: usize) -> f32;

    /// Sets `opt`'s learning rate for `epoch`.
    fn apply(&self, opt: &mut dyn Optimizer, base_lr: f32, epoch: usize) {
        opt.set_lr(self.lr(base_lr, epoch));
    }
}

/// `base_lr * gamma^(epoch / step_size)` (PyTorch's `StepLR`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepLr {
    pub step_size: usize,
    pub gamma: f32,
}

impl LrSchedule for StepLr {
    fn lr(&self, base_lr: f32, epoch: usize) -> f32 {
        let k = epoch.checked_div(self.step_size).unwrap_or(0);
        (f64::from(base_lr) * f64::from(self.gamma).powf(k as f64)) as f32
    }
}

/// `eta_min + (base_lr - eta_min) (1 + cos(pi epoch / t_max)) / 2` (PyTorch's `CosineAnnealingLR`
/// in closed form; past `t_max` the cosine continues, as PyTorch's does).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CosineLr {
    pub t_max: usize,
    pub eta_min: f32,
}

impl LrSchedule for CosineLr {
    fn lr(&self, base_lr: f32, epoch: usize) -> f32 {
        if self.t_max == 0 {
            return base_lr;
        }
        let c = (std::f64::consts::PI * epoch as f64 / self.t_max as f64).cos();
        let (base, min) = (f64::from(base_lr), f64::from(self.eta_min));
        (min + (base - min) * (1.0 + c) / 2.0) as f32
    }
}

// =============================================================================================
// Gradient clipping

/// Scales all gradients together so their global L2 norm is at most `max_norm` (PyTorch's
/// `clip_grad_norm_`: the factor is `max_norm / (norm + 1e-6)`), replacing each gradient with
/// `Tensor::set_grad`. Returns the norm before clipping. Parameters without a gradient are
/// skipped. Reads one value back from the device.
pub fn clip_grad_norm(params: &[Tensor], max_norm: f32) -> Result<f32> {
    if max_norm.is_nan() || max_norm < 0.0 {
        return Err(invalid(
            "clip_grad_norm",
            format!("max_norm = {max_norm} must be >= 0"),
        ));
    }
    no_grad(|| {
        let grads: Vec<(&Tensor, Tensor)> = params
            .iter()
            .filter_map(|p| p.grad().map(|g| (p, g)))
            .filter(|(_, g)| g.numel() > 0)
            .collect();
        let mut total: Option<Tensor> = None;
        for (_, g) in &grads {
            let s = g.square()?.sum_all()?;
            total = Some(match total {
                None => s,
                Some(t) => t.add(&s)?,
            });
        }
        let Some(total) = total else { return Ok(0.0) };
        let norm = total.item()?.sqrt();
        if norm > max_norm {
            let coef = (f64::from(max_norm) / (f64::from(norm) + 1e-6)) as f32;
            for (p, g) in grads {
                p.set_grad(Some(g.mul_scalar(coef)?));
            }
        }
        Ok(norm)
    })
}

// =============================================================================================
// Newton's method

/// One damped Newton step for a scalar function of a small tensor `x`:
/// `x - (H + damping I)^{-1} g`, with `g` from [`wgrad_graph::grad`] and `H` from
/// [`wgrad_graph::hessian`] (both at `x`, flattened to `n` and `n x n`), solved on the host in f64
/// by LU with full pivoting. The result has `x`'s shape and does not require grad.
///
/// Errors with `InvalidArgument { op: "newton_step" }` when the damped Hessian is singular at f32
/// precision (increase `damping`), or when `g` or `H` is not finite.
///
/// ```no_run
/// use wgrad_graph::{Device, Tensor};
/// let dev = Device::new()?;
/// // f(x) = sum((x - 3)^2): one Newton step from anywhere lands on x = 3.
/// let f = |x: &Tensor| x.sub_scalar(3.0)?.square()?.sum_all();
/// let x = Tensor::from_vec(vec![0.0, 10.0], &[2], &dev)?;
/// let x1 = wgrad_models::optim::newton_step(f, &x, 0.0)?;
/// # Ok::<(), wgrad_graph::GraphError>(())
/// ```
pub fn newton_step(
    f: impl Fn(&Tensor) -> Result<Tensor>,
    x: &Tensor,
    damping: f32,
) -> Result<Tensor> {
    const OP: &str = "newton_step";
    let n = x.numel();
    if n == 0 {
        return Err(invalid(OP, "x has no elements".into()));
    }
    if !(damping >= 0.0 && damping.is_finite()) {
        return Err(invalid(
            OP,
            format!("damping = {damping} must be finite and >= 0"),
        ));
    }
    let xg = x.detach().requires_grad();
    let y = f(&xg)?;
    let g = grad(&y, &[&xg], false)?.remove(0).to_vec()?;
    let h = hessian(&f, x)?.to_vec()?;
    if g.iter().chain(&h).any(|v| !v.is_finite()) {
        return Err(invalid(
            OP,
            "the gradient or Hessian is not finite at x".into(),
        ));
    }
    let h = DMatrix::from_row_slice(n, n, &h.iter().map(|&v| f64::from(v)).collect::<Vec<_>>());
    // The autodiff Hessian is symmetric up to rounding; solve with its symmetric part.
    let a = (&h + h.transpose()) * 0.5 + DMatrix::identity(n, n) * f64::from(damping);
    let g = DVector::from_iterator(n, g.iter().map(|&v| f64::from(v)));

    let lu = a.full_piv_lu();
    let pivots = lu.u().diagonal().map(f64::abs);
    let (lo, hi) = (pivots.min(), pivots.max());
    // H came from f32 arithmetic: a pivot below n ulps (f32) of the largest is rounding noise.
    if lo.is_nan() || lo <= hi * n as f64 * f64::from(f32::EPSILON) {
        return Err(invalid(
            OP,
            format!(
                "H + {damping} I is singular at f32 precision (pivots from {lo:e} to {hi:e}); \
                 increase the damping"
            ),
        ));
    }
    let d = lu.solve(&g).ok_or_else(|| {
        invalid(
            OP,
            format!("H + {damping} I is singular; increase the damping"),
        )
    })?;
    let xs = x.to_vec()?;
    let out: Vec<f32> = xs
        .iter()
        .zip(d.iter())
        .map(|(&xi, &di)| (f64::from(xi) - di) as f32)
        .collect();
    Tensor::from_vec(out, x.shape(), x.device())
}

// =============================================================================================
// Tests

#[cfg(test)]
mod tests {
    use super::*;

    fn dev() -> Device {
        Device::new().expect("a wgpu adapter (lavapipe on CI)")
    }

    fn param(v: &[f32], dev: &Device) -> Tensor {
        Tensor::from_vec(v.to_vec(), &[v.len()], dev)
            .unwrap()
            .requires_grad()
    }

    fn set_grad(p: &Tensor, g: &[f32]) {
        p.set_grad(Some(
            Tensor::from_vec(g.to_vec(), p.shape(), p.device()).unwrap(),
        ));
    }

    /// Runs `steps` steps with the fixed gradient `g`, returning the parameter after each.
    fn run(opt: &mut dyn Optimizer, w0: &[f32], g: &[f32], steps: usize) -> Vec<Vec<f32>> {
        let dev = dev();
        let w = param(w0, &dev);
        (0..steps)
            .map(|_| {
                set_grad(&w, g);
                opt.step(std::slice::from_ref(&w)).unwrap();
                w.to_vec().unwrap()
            })
            .collect()
    }

    fn close(got: &[Vec<f32>], want: &[&[f64]], tol: f64) {
        assert_eq!(got.len(), want.len());
        for (t, (g, w)) in got.iter().zip(want).enumerate() {
            for (i, (&a, &b)) in g.iter().zip(w.iter()).enumerate() {
                assert!(
                    (f64::from(a) - b).abs() <= tol,
                    "step {}: w[{i}] = {a}, want {b}",
                    t + 1
                );
            }
        }
    }

    #[test]
    fn gradient_descent_steps() {
        // w = [1, -2], g = [0.5, 1], lr 0.1: w -= 0.1 g each step.
        // step 1: [0.95, -2.1]; step 2: [0.9, -2.2]
        let got = run(&mut GradientDescent::new(0.1), &[1.0, -2.0], &[0.5, 1.0], 2);
        close(&got, &[&[0.95, -2.1], &[0.9, -2.2]], 1e-6);
    }

    #[test]
    fn sgd_momentum_weight_decay_dampening_and_nesterov() {
        // momentum 0.9, lr 0.1, w = 1, g = 1:
        // step 1: buf = 1                 w = 1    - 0.1 * 1    = 0.9
        // step 2: buf = 0.9 * 1 + 1 = 1.9 w = 0.9  - 0.1 * 1.9  = 0.71
        // step 3: buf = 0.9 * 1.9 + 1 = 2.71, w = 0.71 - 0.271 = 0.439
        let got = run(&mut Sgd::new(0.1).with_momentum(0.9), &[1.0], &[1.0], 3);
        close(&got, &[&[0.9], &[0.71], &[0.439]], 1e-6);

        // weight decay 0.1, no momentum, lr 0.1, w = 1, g = 1:
        // step 1: d = 1 + 0.1 * 1 = 1.1,      w = 1 - 0.11 = 0.89
        // step 2: d = 1 + 0.1 * 0.89 = 1.089, w = 0.89 - 0.1089 = 0.7811
        let got = run(&mut Sgd::new(0.1).with_weight_decay(0.1), &[1.0], &[1.0], 2);
        close(&got, &[&[0.89], &[0.7811]], 1e-6);

        // dampening 0.5, momentum 0.9: the first step starts the buffer at d (not 0.5 d).
        // step 1: buf = 1,                   w = 1 - 0.1 = 0.9
        // step 2: buf = 0.9 + 0.5 * 1 = 1.4, w = 0.9 - 0.14 = 0.76
        let got = run(
            &mut Sgd::new(0.1).with_momentum(0.9).with_dampening(0.5),
            &[1.0],
            &[1.0],
            2,
        );
        close(&got, &[&[0.9], &[0.76]], 1e-6);

        // Nesterov, momentum 0.9, lr 0.1, w = 1, g = 1: update = d + 0.9 buf.
        // step 1: buf = 1,    upd = 1 + 0.9        = 1.9,   w = 1 - 0.19      = 0.81
        // step 2: buf = 1.9,  upd = 1 + 0.9 * 1.9  = 2.71,  w = 0.81 - 0.271  = 0.539
        // step 3: buf = 2.71, upd = 1 + 0.9 * 2.71 = 3.439, w = 0.539 - 0.3439 = 0.1951
        let got = run(
            &mut Sgd::new(0.1).with_momentum(0.9).with_nesterov(true),
            &[1.0],
            &[1.0],
            3,
        );
        close(&got, &[&[0.81], &[0.539], &[0.1951]], 1e-6);

        // Momentum switched on after a plain step: the new buffer still starts at d.
        // step 1 (no momentum): w = 0.9; step 2: buf = 1, w = 0.8; step 3: buf = 0.9 + 0.5 = 1.4, w = 0.66
        let dev = dev();
        let w = param(&[1.0], &dev);
        let mut opt = Sgd::new(0.1);
        let mut got = Vec::new();
        for k in 0..3 {
            if k == 1 {
                opt.momentum = 0.9;
                opt.dampening = 0.5;
            }
            set_grad(&w, &[1.0]);
            opt.step(std::slice::from_ref(&w)).unwrap();
            got.push(w.to_vec().unwrap());
        }
        close(&got, &[&[0.9], &[0.8], &[0.66]], 1e-6);

        // Nesterov without momentum is refused (as PyTorch does).
        let w = param(&[1.0], &dev);
        set_grad(&w, &[1.0]);
        let err = Sgd::new(0.1).with_nesterov(true).step(&[w]).unwrap_err();
        assert!(err.to_string().contains("Nesterov"), "{err}");
    }

    #[test]
    fn adagrad_steps() {
        // lr 0.1, eps 1e-10, w = 1, g = 2: sum += 4; w -= 0.1 * 2 / sqrt(sum)
        // step 1: sum = 4,  w = 1 - 0.2 / 2            = 0.9
        // step 2: sum = 8,  w = 0.9 - 0.2 / sqrt(8)    = 0.8292893219
        // step 3: sum = 12, w -= 0.2 / sqrt(12)        = 0.7715542950
        let got = run(&mut AdaGrad::new(0.1), &[1.0], &[2.0], 3);
        close(
            &got,
            &[&[0.9], &[0.829_289_321_9], &[0.771_554_295_0]],
            1e-6,
        );
    }

    #[test]
    fn rmsprop_steps() {
        // lr 0.01, alpha 0.99, eps 1e-8, w = 1, g = 2: sq = 0.99 sq + 0.01 * 4; w -= 0.02 / sqrt(sq)
        // step 1: sq = 0.04,     w = 1 - 0.02 / 0.2              = 0.9
        // step 2: sq = 0.0796,   w = 0.9 - 0.02 / sqrt(0.0796)    = 0.8291118870
        // step 3: sq = 0.118804, w -= 0.02 / sqrt(0.118804)       = 0.7710869802
        let got = run(&mut RmsProp::new(0.01), &[1.0], &[2.0], 3);
        close(
            &got,
            &[&[0.9], &[0.829_111_887_0], &[0.771_086_980_2]],
            1e-6,
        );
    }

    #[test]
    fn adam_steps_and_l2_weight_decay() {
        // lr 0.1, betas (0.9, 0.999), w = 1, g = 0.5 constant: m_hat = g and v_hat = g^2 exactly,
        // so each step moves w by lr * g / (|g| + eps) = 0.1: 0.9, 0.8, 0.7.
        let got = run(&mut Adam::new(0.1), &[1.0], &[0.5], 3);
        close(&got, &[&[0.9], &[0.8], &[0.7]], 1e-6);

        // With L2 weight decay 0.1 the gradient is d = 0.5 + 0.1 w:
        // step 1: d = 0.6,  m = 0.06,  v = 0.00036,   m_hat = 0.6, v_hat = 0.36 -> w = 1 - 0.1 = 0.9
        // step 2: d = 0.59, m = 0.9 * 0.06 + 0.1 * 0.59 = 0.113,
        //         v = 0.999 * 0.00036 + 0.001 * 0.3481 = 0.00070774,
        //         m_hat = 0.113 / 0.19 = 0.5947368, v_hat = 0.00070774 / 0.001999 = 0.3540470,
        //         w = 0.9 - 0.1 * 0.5947368 / 0.5950185 = 0.8000473405
        // step 3: (same arithmetic, d = 0.58000473) w = 0.7001745748
        let got = run(
            &mut Adam::new(0.1).with_weight_decay(0.1),
            &[1.0],
            &[0.5],
            3,
        );
        close(
            &got,
            &[&[0.9], &[0.800_047_340_5], &[0.700_174_574_8]],
            2e-6,
        );
    }

    #[test]
    fn adamw_decouples_weight_decay() {
        // lr 0.1, wd 0.1, w = 1, g = 0.5: w *= 1 - 0.01 first, then Adam's step of exactly lr
        // (the gradient is not changed by the decay):
        // step 1: 1 * 0.99 - 0.1 = 0.89; step 2: 0.89 * 0.99 - 0.1 = 0.7811;
        // step 3: 0.7811 * 0.99 - 0.1 = 0.673289
        let adamw = run(
            &mut AdamW::new(0.1).with_weight_decay(0.1),
            &[1.0],
            &[0.5],
            3,
        );
        close(&adamw, &[&[0.89], &[0.7811], &[0.673_289]], 2e-6);
        // Adam + L2 with the same coefficient gives 0.9, 0.80005, 0.70017 (see above): different.
        let adam = run(
            &mut Adam::new(0.1).with_weight_decay(0.1),
            &[1.0],
            &[0.5],
            3,
        );
        for (a, b) in adamw.iter().zip(&adam) {
            assert!((a[0] - b[0]).abs() > 5e-3, "AdamW {a:?} vs Adam+L2 {b:?}");
        }
        // PyTorch's default AdamW weight decay is 0.01.
        assert_eq!(AdamW::new(1e-3).weight_decay, 0.01);
    }

    #[test]
    fn params_without_grad_are_skipped_and_slots_follow_positions() {
        let dev = dev();
        let a = param(&[1.0, 2.0], &dev);
        let b = param(&[3.0], &dev);
        set_grad(&b, &[1.0]);
        let mut opt = Adam::new(0.1);
        opt.step(&[a.clone(), b.clone()]).unwrap();
        assert_eq!(a.to_vec().unwrap(), vec![1.0, 2.0]);
        assert!((b.to_vec().unwrap()[0] - 2.9).abs() < 1e-6);
        let names: Vec<String> = opt
            .state_tensors()
            .unwrap()
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        assert_eq!(names, ["adam.lr", "adam.step.1", "adam.m.1", "adam.v.1"]);

        // zero_grad clears every gradient.
        opt.zero_grad(&[a.clone(), b.clone()]);
        assert!(b.grad().is_none());
        // A parameter listed twice is refused before anything is updated.
        set_grad(&b, &[1.0]);
        assert!(opt.step(&[b.clone(), b.clone()]).is_err());
        assert!((b.to_vec().unwrap()[0] - 2.9).abs() < 1e-6);
    }

    /// Three steps, save, load into a fresh optimiser and a copy of the parameter, then both take
    /// the same next steps: the results are bit-identical. A fresh optimiser without the state
    /// would take a different step.
    #[test]
    fn state_round_trip_resumes_exactly() {
        let dev = dev();
        let grads = [
            [0.5f32, -1.0, 0.25],
            [0.1, 0.3, -0.7],
            [-0.2, 0.9, 0.4],
            [0.6, -0.1, 0.05],
            [0.3, 0.3, -0.3],
        ];
        let makers: Vec<Box<dyn Fn() -> Box<dyn Optimizer>>> = vec![
            Box::new(|| Box::new(Sgd::new(0.1).with_momentum(0.9).with_nesterov(true))),
            Box::new(|| Box::new(AdaGrad::new(0.1).with_lr_decay(0.1))),
            Box::new(|| Box::new(RmsProp::new(0.01))),
            Box::new(|| Box::new(Adam::new(0.1).with_weight_decay(0.01))),
            Box::new(|| Box::new(AdamW::new(0.1))),
        ];
        for make in makers {
            let mut opt = make();
            let w = param(&[1.0, -2.0, 0.5], &dev);
            for g in &grads[..3] {
                set_grad(&w, g);
                opt.step(std::slice::from_ref(&w)).unwrap();
            }
            opt.set_lr(0.05); // a schedule changed it: the checkpoint carries it
            // Save: read everything to the host, as a checkpoint writer would.
            let saved: Vec<(String, Vec<f32>, Vec<usize>)> = opt
                .state_tensors()
                .unwrap()
                .into_iter()
                .map(|(n, t)| (n, t.to_vec().unwrap(), t.shape().to_vec()))
                .collect();
            let restored: Vec<(String, Tensor)> = saved
                .iter()
                .map(|(n, v, s)| (n.clone(), Tensor::from_vec(v.clone(), s, &dev).unwrap()))
                .collect();
            let mut resumed = make();
            resumed.load_state_tensors(&restored).unwrap();
            assert_eq!(resumed.lr(), 0.05);
            let w2 = param(&w.to_vec().unwrap(), &dev);
            let mut fresh = make();
            fresh.set_lr(0.05);
            let w3 = param(&w.to_vec().unwrap(), &dev);
            for g in &grads[3..] {
                for (o, p) in [(&mut opt, &w), (&mut resumed, &w2), (&mut fresh, &w3)] {
                    set_grad(p, g);
                    o.step(std::slice::from_ref(p)).unwrap();
                }
            }
            let (a, b, c) = (
                w.to_vec().unwrap(),
                w2.to_vec().unwrap(),
                w3.to_vec().unwrap(),
            );
            assert_eq!(a, b, "resumed run differs: {saved:?}");
            assert_ne!(a, c, "state made no difference");
        }

        // Missing or misnamed entries are refused.
        let mut adam = Adam::new(0.1);
        let one = Tensor::from_vec(vec![1.0], &[1], &dev).unwrap();
        let m = Tensor::zeros(&[3], &dev).unwrap();
        let err = adam
            .load_state_tensors(&[
                ("adam.step.0".into(), one.clone()),
                ("adam.m.0".into(), m.clone()),
            ])
            .unwrap_err();
        assert!(err.to_string().contains("adam.v.0"), "{err}");
        assert!(
            adam.load_state_tensors(&[("adam.q.0".into(), m.clone())])
                .is_err()
        );
        // A loaded slot whose shape does not fit its parameter fails at the step.
        adam.load_state_tensors(&[
            ("adam.step.0".into(), one),
            ("adam.m.0".into(), m.clone()),
            ("adam.v.0".into(), m),
            ("model.w".into(), Tensor::zeros(&[7], &dev).unwrap()), // another prefix: ignored
        ])
        .unwrap();
        let w = param(&[1.0, 2.0], &dev);
        set_grad(&w, &[1.0, 1.0]);
        assert!(adam.step(&[w]).is_err());
    }

    #[test]
    fn clip_grad_norm_scales_only_above_max() {
        let dev = dev();
        let a = param(&[0.0, 0.0], &dev);
        let b = param(&[0.0], &dev);
        let c = param(&[0.0], &dev); // no grad: ignored
        set_grad(&a, &[3.0, 4.0]);
        set_grad(&b, &[12.0]);
        let ps = [a.clone(), b.clone(), c.clone()];
        // norm = sqrt(9 + 16 + 144) = 13; max 20: unchanged.
        assert!((clip_grad_norm(&ps, 20.0).unwrap() - 13.0).abs() < 1e-5);
        assert_eq!(a.grad().unwrap().to_vec().unwrap(), vec![3.0, 4.0]);
        // max 6.5: scaled by 6.5 / (13 + 1e-6) ~ 0.5 -> [1.5, 2], [6]; returns the old norm.
        assert!((clip_grad_norm(&ps, 6.5).unwrap() - 13.0).abs() < 1e-5);
        let (ga, gb) = (
            a.grad().unwrap().to_vec().unwrap(),
            b.grad().unwrap().to_vec().unwrap(),
        );
        for (x, y) in ga.iter().chain(&gb).zip([1.5f32, 2.0, 6.0]) {
            assert!((x - y).abs() < 1e-5, "{ga:?} {gb:?}");
        }
        assert!(c.grad().is_none());
        assert!((clip_grad_norm(&ps, 100.0).unwrap() - 6.5).abs() < 1e-5);
    }

    #[test]
    fn lr_schedules() {
        let s = StepLr {
            step_size: 2,
            gamma: 0.1,
        };
        let got: Vec<f32> = (0..5).map(|e| s.lr(1.0, e)).collect();
        // 1 * 0.1^(epoch / 2): 1, 1, 0.1, 0.1, 0.01
        for (g, w) in got.iter().zip([1.0, 1.0, 0.1, 0.1, 0.01]) {
            assert!((g - w).abs() < 1e-7, "{got:?}");
        }
        let c = CosineLr {
            t_max: 4,
            eta_min: 0.0,
        };
        // (1 + cos(pi e / 4)) / 2: 1, 0.8535534, 0.5, 0.1464466, 0
        for (e, w) in [1.0, 0.853_553_4, 0.5, 0.146_446_6, 0.0]
            .into_iter()
            .enumerate()
        {
            assert!(
                (c.lr(1.0, e) - w).abs() < 1e-6,
                "epoch {e}: {}",
                c.lr(1.0, e)
            );
        }
        let c = CosineLr {
            t_max: 4,
            eta_min: 0.1,
        };
        assert!((c.lr(1.0, 2) - 0.55).abs() < 1e-6); // 0.1 + 0.9 * 0.5
        let mut opt = Sgd::new(1.0);
        s.apply(&mut opt, 0.5, 4);
        assert!((opt.lr() - 0.005).abs() < 1e-9);
    }

    #[test]
    fn newton_solves_a_quadratic_in_one_step() {
        let dev = dev();
        // f(x) = 1.5 x0^2 + x0 x1 + x1^2 - x0 - x1 = 0.5 x^T A x - b^T x, A = [[3, 1], [1, 2]],
        // b = [1, 1]: the minimiser is A^-1 b = [[2, -1], [-1, 3]] / 5 [1, 1] = [0.2, 0.4].
        let f = |x: &Tensor| {
            let (x0, x1) = (x.narrow(0, 0, 1)?, x.narrow(0, 1, 1)?);
            x0.square()?
                .mul_scalar(1.5)?
                .add(&x0.mul(&x1)?)?
                .add(&x1.square()?)?
                .sub(&x0)?
                .sub(&x1)?
                .sum_all()
        };
        let x = Tensor::from_vec(vec![5.0, -3.0], &[2], &dev).unwrap();
        let x1 = newton_step(f, &x, 0.0).unwrap();
        let v = x1.to_vec().unwrap();
        assert!(
            (v[0] - 0.2).abs() < 1e-5 && (v[1] - 0.4).abs() < 1e-5,
            "{v:?}"
        );
        assert_eq!(x1.shape(), &[2]);
    }

    #[test]
    fn newton_step_on_the_course_function() {
        let dev = dev();
        // f(x) = 2 x1 x2 - x3 log(x1) - 1 / x3 at x = (1, 1, 1):
        // g = (2 x2 - x3 / x1, 2 x1, -log x1 + 1 / x3^2) = (1, 2, 1)
        // H = [[x3 / x1^2, 2, -1 / x1], [2, 0, 0], [-1 / x1, 0, -2 / x3^3]] = [[1, 2, -1], [2, 0, 0], [-1, 0, -2]]
        // H d = g: row 2: 2 d1 = 2 -> d1 = 1; row 3: -d1 - 2 d3 = 1 -> d3 = -1;
        //          row 1: d1 + 2 d2 - d3 = 1 -> d2 = -0.5.   x - d = (0, 1.5, 2)
        // With damping 1, (H + I) d = g: rows 2, 3 give d2 = 2 - 2 d1, d3 = -1 - d1; row 1:
        //          2 d1 + 2 (2 - 2 d1) + 1 + d1 = 1 -> d1 = 4, d2 = -6, d3 = -5.  x - d = (-3, 7, 6)
        let f = |x: &Tensor| {
            let (x1, x2, x3) = (x.narrow(0, 0, 1)?, x.narrow(0, 1, 1)?, x.narrow(0, 2, 1)?);
            x1.mul(&x2)?
                .mul_scalar(2.0)?
                .sub(&x3.mul(&x1.log()?)?)?
                .sub(&x3.recip()?)?
                .sum_all()
        };
        let x = Tensor::from_vec(vec![1.0, 1.0, 1.0], &[3], &dev).unwrap();
        for (damping, want) in [(0.0, [0.0f32, 1.5, 2.0]), (1.0, [-3.0, 7.0, 6.0])] {
            let got = newton_step(f, &x, damping).unwrap().to_vec().unwrap();
            for (g, w) in got.iter().zip(want) {
                assert!(
                    (g - w).abs() < 1e-5,
                    "damping {damping}: {got:?} vs {want:?}"
                );
            }
        }
    }

    #[test]
    fn newton_step_reports_a_singular_hessian() {
        let dev = dev();
        // f(x) = (x0 + x1)^2: H = [[2, 2], [2, 2]] is singular; damping 1 makes it invertible.
        let f = |x: &Tensor| x.sum_all()?.square();
        let x = Tensor::from_vec(vec![1.0, 2.0], &[2], &dev).unwrap();
        match newton_step(f, &x, 0.0) {
            Err(GraphError::InvalidArgument {
                op: "newton_step",
                reason,
            }) => assert!(reason.contains("singular"), "{reason}"),
            other => panic!("expected a singular-Hessian error, got {other:?}"),
        }
        // (H + I) d = g = (6, 6): d = (6, 6) / 5 = 1.2 each -> x - d = (-0.2, 0.8)
        let v = newton_step(f, &x, 1.0).unwrap().to_vec().unwrap();
        assert!(
            (v[0] + 0.2).abs() < 1e-5 && (v[1] - 0.8).abs() < 1e-5,
            "{v:?}"
        );
    }
}
