//! `Tensor`: a cheap handle to device storage plus, when it was computed from tensors that require
//! grad, the op that made it. Also the grad-mode switch (`no_grad`).

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use wgrad_device::{DType, Device, Distribution, Element, GpuArray};

use crate::backward::Op;
use crate::error::{GraphError, Result};

thread_local! {
    static GRAD_ENABLED: Cell<bool> = const { Cell::new(true) };
}

/// Whether ops record themselves for autodiff on this thread.
pub fn is_grad_enabled() -> bool {
    GRAD_ENABLED.with(Cell::get)
}

/// Restores the previous grad mode when dropped.
pub struct GradModeGuard(bool);

impl Drop for GradModeGuard {
    fn drop(&mut self) {
        GRAD_ENABLED.with(|g| g.set(self.0));
    }
}

/// Sets grad mode until the guard drops.
pub fn set_grad_enabled(on: bool) -> GradModeGuard {
    GradModeGuard(GRAD_ENABLED.with(|g| g.replace(on)))
}

/// Runs `f` without recording ops (like `torch.no_grad()`).
pub fn no_grad<T>(f: impl FnOnce() -> T) -> T {
    let _g = set_grad_enabled(false);
    f()
}

static NEXT_ID: AtomicU64 = AtomicU64::new(0);

pub(crate) struct Node {
    pub(crate) id: u64,
    pub(crate) data: GpuArray,
    pub(crate) requires_grad: bool,
    /// The op that produced this tensor; `None` for leaves and once the graph is freed.
    pub(crate) op: Mutex<Option<Op>>,
    /// Set on nodes whose op was dropped by `backward()` so a second pass can say so.
    pub(crate) freed: Mutex<bool>,
    /// Accumulated gradient (leaves that require grad).
    pub(crate) grad: Mutex<Option<Tensor>>,
}

/// A tensor on a device that records the ops applied to it for reverse-mode autodiff.
///
/// ```no_run
/// use wgrad_graph::{Device, Tensor};
/// let dev = Device::new()?;
/// let x = Tensor::from_vec(vec![1.5f32, 2.0, 0.5], &[3], &dev)?.requires_grad();
/// let y = x.mul(&x)?.sum_all()?;
/// let g = wgrad_graph::grad(&y, &[&x], true)?; // 2x, itself differentiable
/// assert_eq!(g[0].to_vec()?, vec![3.0, 4.0, 1.0]);
/// # Ok::<(), wgrad_graph::GraphError>(())
/// ```
#[derive(Clone)]
pub struct Tensor(pub(crate) Arc<Node>);

impl std::fmt::Debug for Tensor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Tensor(#{}, {:?}, {:?}{})",
            self.0.id,
            self.shape(),
            self.0.data.dtype(),
            if self.0.requires_grad { ", grad" } else { "" }
        )
    }
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Tensor {
    fn make(data: GpuArray, requires_grad: bool, op: Option<Op>) -> Tensor {
        Tensor(Arc::new(Node {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            data,
            requires_grad,
            op: Mutex::new(op),
            freed: Mutex::new(false),
            grad: Mutex::new(None),
        }))
    }

    /// Wraps device storage as a leaf that does not require grad.
    pub fn from_array(data: GpuArray) -> Tensor {
        Self::make(data, false, None)
    }

    /// The result of an op on `inputs`: recorded when grad mode is on and any input requires grad.
    pub(crate) fn from_op(data: GpuArray, inputs: &[&Tensor], op: impl FnOnce() -> Op) -> Tensor {
        if is_grad_enabled() && inputs.iter().any(|t| t.0.requires_grad) {
            Self::make(data, true, Some(op()))
        } else {
            Self::make(data, false, None)
        }
    }

    /// Uploads f32 values with the given shape.
    pub fn from_vec(data: Vec<f32>, shape: &[usize], dev: &Device) -> Result<Tensor> {
        Self::from_slice(&data, shape, dev)
    }

    /// Uploads values of any element type (f32 data, u32 indices or labels).
    pub fn from_slice<T: Element>(data: &[T], shape: &[usize], dev: &Device) -> Result<Tensor> {
        Ok(Self::from_array(GpuArray::from_slice(dev, data, shape)?))
    }

    /// A 0-d tensor.
    pub fn scalar(v: f32, dev: &Device) -> Result<Tensor> {
        Self::from_slice(&[v], &[], dev)
    }

    pub fn full(shape: &[usize], v: f32, dev: &Device) -> Result<Tensor> {
        Ok(Self::from_array(GpuArray::full(dev, shape, v)?))
    }

    pub fn zeros(shape: &[usize], dev: &Device) -> Result<Tensor> {
        Self::full(shape, 0.0, dev)
    }

    pub fn ones(shape: &[usize], dev: &Device) -> Result<Tensor> {
        Self::full(shape, 1.0, dev)
    }

    /// `[start, start + step, ...]`, `n` values.
    pub fn arange(start: f32, step: f32, n: usize, dev: &Device) -> Result<Tensor> {
        Ok(Self::from_array(GpuArray::arange(dev, start, step, n)?))
    }

    /// Values from `dist`, reproducible for a given (seed, offset) on every adapter.
    pub fn random(
        shape: &[usize],
        dist: Distribution,
        seed: u64,
        offset: u32,
        dev: &Device,
    ) -> Result<Tensor> {
        Ok(Self::from_array(GpuArray::random(
            dev, shape, dist, seed, offset,
        )?))
    }

    /// Standard normal values.
    pub fn randn(shape: &[usize], seed: u64, dev: &Device) -> Result<Tensor> {
        Self::random(
            shape,
            Distribution::Normal {
                mean: 0.0,
                std: 1.0,
            },
            seed,
            0,
            dev,
        )
    }

    /// Uniform values on [0, 1).
    pub fn rand(shape: &[usize], seed: u64, dev: &Device) -> Result<Tensor> {
        Self::random(
            shape,
            Distribution::Uniform {
                low: 0.0,
                high: 1.0,
            },
            seed,
            0,
            dev,
        )
    }

    pub fn zeros_like(&self) -> Result<Tensor> {
        Self::zeros(self.shape(), self.device())
    }

    pub fn ones_like(&self) -> Result<Tensor> {
        Self::ones(self.shape(), self.device())
    }

    /// This tensor as a leaf that requires grad (PyTorch's `requires_grad_()`); shares storage.
    pub fn requires_grad(self) -> Tensor {
        Self::make(self.0.data.clone(), true, None)
    }

    /// Same storage, cut from the graph.
    pub fn detach(&self) -> Tensor {
        Self::from_array(self.0.data.clone())
    }

    pub fn requires_grad_flag(&self) -> bool {
        self.0.requires_grad
    }

    /// True for tensors not produced by a recorded op.
    pub fn is_leaf(&self) -> bool {
        lock(&self.0.op).is_none() && !*lock(&self.0.freed)
    }

    /// The gradient accumulated into this leaf by `backward()`.
    pub fn grad(&self) -> Option<Tensor> {
        lock(&self.0.grad).clone()
    }

    /// Clears the accumulated gradient.
    pub fn zero_grad(&self) {
        *lock(&self.0.grad) = None;
    }

    /// Replaces the accumulated gradient (optimisers and gradient clipping use this).
    pub fn set_grad(&self, g: Option<Tensor>) {
        *lock(&self.0.grad) = g;
    }

    pub fn shape(&self) -> &[usize] {
        self.0.data.shape()
    }

    pub fn rank(&self) -> usize {
        self.shape().len()
    }

    pub fn numel(&self) -> usize {
        self.0.data.numel()
    }

    pub fn dtype(&self) -> DType {
        self.0.data.dtype()
    }

    pub fn device(&self) -> &Device {
        self.0.data.device()
    }

    /// The device storage.
    pub fn array(&self) -> &GpuArray {
        &self.0.data
    }

    /// A stable identity for this tensor (used as a key by optimisers).
    pub fn id(&self) -> u64 {
        self.0.id
    }

    /// Reads the f32 values back (waits for the GPU).
    pub fn to_vec(&self) -> Result<Vec<f32>> {
        Ok(self.0.data.to_vec::<f32>()?)
    }

    /// Reads back values of any element type.
    pub fn to_vec_of<T: Element>(&self) -> Result<Vec<T>> {
        Ok(self.0.data.to_vec::<T>()?)
    }

    /// Overwrites the values in place (e.g. loading a checkpoint into a model's parameters).
    /// Not recorded: call it outside of a graph you will differentiate.
    pub fn write(&self, data: &[f32]) -> Result<()> {
        Ok(self.0.data.write(data)?)
    }

    /// The value of a one-element tensor.
    pub fn item(&self) -> Result<f32> {
        if self.numel() != 1 {
            return Err(GraphError::NotScalar {
                op: "item",
                shape: self.shape().to_vec(),
            });
        }
        Ok(self.to_vec()?[0])
    }
}
