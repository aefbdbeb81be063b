//! Launcher for `shaders/reduce.wgsl`: sum/mean/max/min/argmax/argmin/variance along an axis or over
//! everything, softmax, log-softmax and logsumexp. All are deterministic: the order of every sum is a
//! function of the shape only.

use bytemuck::{Pod, Zeroable};

use super::{Kernel, groups, wide};
use crate::array::{DType, GpuArray};
use crate::context::{ro, rw};
use crate::error::{DeviceError, Result};
use crate::kernels::{BinaryOp, UnaryOp};

/// Reductions along one axis.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReduceOp {
    Sum,
    Mean,
    Max,
    Min,
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable, Default)]
struct Params {
    outer: u32,
    len: u32,
    inner: u32,
    chunk: u32,
    nchunk: u32,
    scale: f32,
    total: u32,
    _p0: u32,
}

/// Axes longer than this are reduced in two stages when there are few outputs to spread work over.
const CHUNK: usize = 1024;
/// Outputs below which a long axis is split.
const FEW_OUTPUTS: usize = 2048;

/// `[outer, len, inner]` view of `shape` around `axis`.
fn split(shape: &[usize], axis: usize) -> (usize, usize, usize) {
    let outer = shape[..axis].iter().product();
    let inner = shape[axis + 1..].iter().product();
    (outer, shape[axis], inner)
}

fn reduced_shape(shape: &[usize], axis: usize, keepdim: bool) -> Vec<usize> {
    let mut s = shape.to_vec();
    if keepdim {
        s[axis] = 1;
    } else {
        s.remove(axis);
    }
    s
}

impl GpuArray {
    fn check_axis(&self, op: &'static str, axis: usize) -> Result<()> {
        self.expect_dtype(op, DType::F32)?;
        if axis >= self.shape.len() {
            return Err(DeviceError::InvalidArgument {
                op,
                reason: format!("axis {axis} out of range for shape {:?}", self.shape),
            });
        }
        Ok(())
    }

    /// One pass of the `reduce` kernel over [outer, len, inner] in chunks of `chunk`.
    fn reduce_pass(
        &self,
        code: u32,
        (outer, len, inner): (usize, usize, usize),
        chunk: usize,
        scale: f32,
    ) -> Result<GpuArray> {
        let nchunk = len.div_ceil(chunk);
        let out = GpuArray::uninit(&self.dev, "reduce", &[outer, nchunk, inner], DType::F32)?;
        let total = outer * nchunk * inner;
        let p = Params {
            outer: outer as u32,
            len: len as u32,
            inner: inner as u32,
            chunk: chunk as u32,
            nchunk: nchunk as u32,
            scale,
            total: total as u32,
            _p0: 0,
        };
        // Sums of contiguous rows read four elements per load (a function of the shape only, so
        // still deterministic).
        let rows4 = code == 0 && inner == 1 && len % 4 == 0 && chunk.is_multiple_of(4);
        if rows4 && wide::sum_rows(&self.dev, &self.buf, &out.buf, (outer, len, chunk), &p)? {
            return Ok(out);
        }
        self.dev.dispatch(
            Kernel::Reduce,
            if rows4 { "sum_rows4" } else { "reduce" },
            &[("OP", f64::from(code))],
            &p,
            &[rw(1, &out.buf), ro(3, &self.buf)],
            groups(total),
        )?;
        Ok(out)
    }

    /// Reduces along `axis`; the axis is kept with size 1 when `keepdim`.
    pub fn reduce(&self, op: ReduceOp, axis: usize, keepdim: bool) -> Result<GpuArray> {
        self.check_axis("reduce", axis)?;
        let (outer, len, inner) = split(&self.shape, axis);
        let out_shape = reduced_shape(&self.shape, axis, keepdim);
        if len == 0 {
            return match op {
                ReduceOp::Sum => GpuArray::zeros(&self.dev, &out_shape),
                _ => Err(DeviceError::EmptyReduction {
                    op: "reduce",
                    shape: self.shape.clone(),
                }),
            };
        }
        let code = match op {
            ReduceOp::Sum | ReduceOp::Mean => 0,
            ReduceOp::Max => 1,
            ReduceOp::Min => 2,
        };
        let scale = if op == ReduceOp::Mean {
            1.0 / len as f32
        } else {
            1.0
        };
        let out = if outer * inner < FEW_OUTPUTS && len > CHUNK {
            let partial = self.reduce_pass(code, (outer, len, inner), CHUNK, 1.0)?;
            let nchunk = len.div_ceil(CHUNK);
            partial.reduce_pass(code, (outer, nchunk, inner), nchunk, scale)?
        } else {
            self.reduce_pass(code, (outer, len, inner), len, scale)?
        };
        out.reshape(&out_shape)
    }

    /// Reduces over every element to a 0-d array (shape `[]`).
    pub fn reduce_all(&self, op: ReduceOp) -> Result<GpuArray> {
        self.reshape(&[self.numel()])?.reduce(op, 0, false)
    }

    /// Index of the first maximum (or minimum, with `min`) along `axis`, as u32.
    pub fn argmax(&self, axis: usize, keepdim: bool, min: bool) -> Result<GpuArray> {
        self.check_axis("argmax", axis)?;
        let (outer, len, inner) = split(&self.shape, axis);
        if len == 0 {
            return Err(DeviceError::EmptyReduction {
                op: "argmax",
                shape: self.shape.clone(),
            });
        }
        let out_shape = reduced_shape(&self.shape, axis, keepdim);
        let out = GpuArray::uninit(&self.dev, "argmax", &out_shape, DType::U32)?;
        let total = outer * inner;
        let p = Params {
            outer: outer as u32,
            len: len as u32,
            inner: inner as u32,
            total: total as u32,
            ..Default::default()
        };
        self.dev.dispatch(
            Kernel::Reduce,
            "arg",
            &[("OP", if min { 1.0 } else { 0.0 })],
            &p,
            &[rw(2, &out.buf), ro(3, &self.buf)],
            groups(total),
        )?;
        Ok(out)
    }

    /// Checks logits [N, C] against labels [N] (u32 class indices below C).
    fn check_xent(&self, op: &'static str, labels: &GpuArray) -> Result<(usize, usize)> {
        self.expect_dtype(op, DType::F32)?;
        labels.expect_dtype(op, DType::U32)?;
        self.same_device(op, labels)?;
        if self.shape.len() != 2 || labels.shape != [self.shape[0]] || self.shape[1] == 0 {
            return Err(DeviceError::ShapeMismatch {
                op,
                lhs: self.shape.clone(),
                rhs: labels.shape.clone(),
                detail: ": expected logits [N, C] (C > 0) and labels [N]".into(),
            });
        }
        labels.check_indices(op, self.shape[1])?;
        Ok((self.shape[0], self.shape[1]))
    }

    /// Softmax cross-entropy of each row: self = logits `[N, C]`, labels `[N]` (u32) -> `[N]`,
    /// `logsumexp(x_r) - x_r[label_r]`. One kernel instead of log_softmax, gather and a subtraction.
    pub fn cross_entropy_rows(&self, labels: &GpuArray) -> Result<GpuArray> {
        let (n, c) = self.check_xent("cross_entropy", labels)?;
        let out = GpuArray::uninit(&self.dev, "cross_entropy", &[n], DType::F32)?;
        let p = Params {
            len: c as u32,
            total: n as u32,
            ..Default::default()
        };
        self.dev.dispatch(
            Kernel::Reduce,
            "xent",
            &[],
            &p,
            &[rw(1, &out.buf), ro(3, &self.buf), ro(4, &labels.buf)],
            groups(n),
        )?;
        Ok(out)
    }

    /// The gradient of `scale · g · Σ_r cross_entropy_rows(self, labels)_r` with respect to the
    /// logits, for a one-element upstream gradient `g`: (softmax(x) - onehot(labels)) · g · scale.
    pub fn cross_entropy_rows_grad(
        &self,
        labels: &GpuArray,
        g: &GpuArray,
        scale: f32,
    ) -> Result<GpuArray> {
        let (n, c) = self.check_xent("cross_entropy_grad", labels)?;
        g.expect_dtype("cross_entropy_grad", DType::F32)?;
        self.same_device("cross_entropy_grad", g)?;
        if g.numel() != 1 {
            return Err(DeviceError::InvalidArgument {
                op: "cross_entropy_grad",
                reason: format!(
                    "the upstream gradient has shape {:?}, not one element",
                    g.shape
                ),
            });
        }
        let out = GpuArray::uninit(&self.dev, "cross_entropy_grad", &[n, c], DType::F32)?;
        let p = Params {
            len: c as u32,
            total: n as u32,
            scale,
            ..Default::default()
        };
        self.dev.dispatch(
            Kernel::Reduce,
            "xent_grad",
            &[],
            &p,
            &[
                rw(1, &out.buf),
                ro(3, &self.buf),
                ro(4, &labels.buf),
                ro(5, &g.buf),
            ],
            groups(n),
        )?;
        Ok(out)
    }

    fn row_kernel(
        &self,
        op: &'static str,
        entry: &'static str,
        code: u32,
        axis: usize,
        out_shape: &[usize],
    ) -> Result<GpuArray> {
        self.check_axis(op, axis)?;
        let (outer, len, inner) = split(&self.shape, axis);
        let out = GpuArray::uninit(&self.dev, op, out_shape, DType::F32)?;
        if len == 0 {
            return if out.numel() == 0 {
                Ok(out)
            } else {
                Err(DeviceError::EmptyReduction {
                    op,
                    shape: self.shape.clone(),
                })
            };
        }
        let total = outer * inner;
        let p = Params {
            outer: outer as u32,
            len: len as u32,
            inner: inner as u32,
            total: total as u32,
            ..Default::default()
        };
        // Contiguous rows of whole vec4s: four elements per access, or eight with the wide kernels
        // (the same bits; chosen by shape only, so the same input still gives the same bits).
        let rows4 = entry == "softmax" && inner == 1 && len.is_multiple_of(4);
        if rows4 && wide::softmax_rows(&self.dev, &self.buf, &out.buf, (outer, len), code, &p)? {
            return Ok(out);
        }
        let entry = if rows4 { "softmax_rows4" } else { entry };
        self.dev.dispatch(
            Kernel::Reduce,
            entry,
            &[("OP", f64::from(code))],
            &p,
            &[rw(1, &out.buf), ro(3, &self.buf)],
            groups(total),
        )?;
        Ok(out)
    }

    /// Softmax along `axis` (max-subtracted).
    pub fn softmax(&self, axis: usize) -> Result<GpuArray> {
        self.row_kernel("softmax", "softmax", 0, axis, &self.shape.clone())
    }

    /// Log-softmax along `axis` (max-subtracted).
    pub fn log_softmax(&self, axis: usize) -> Result<GpuArray> {
        self.row_kernel("log_softmax", "softmax", 1, axis, &self.shape.clone())
    }

    /// log(sum(exp(x))) along `axis` (max-subtracted).
    pub fn logsumexp(&self, axis: usize, keepdim: bool) -> Result<GpuArray> {
        let out_shape = if axis < self.shape.len() {
            reduced_shape(&self.shape, axis, keepdim)
        } else {
            Vec::new()
        };
        self.row_kernel("logsumexp", "logsumexp", 0, axis, &out_shape)
    }

    /// Variance along `axis` with `correction` (0: population, 1: unbiased, as `torch.var`).
    pub fn variance(&self, axis: usize, keepdim: bool, correction: usize) -> Result<GpuArray> {
        self.check_axis("variance", axis)?;
        let len = self.shape[axis];
        if len <= correction {
            return Err(DeviceError::EmptyReduction {
                op: "variance",
                shape: self.shape.clone(),
            });
        }
        let mean = self.reduce(ReduceOp::Mean, axis, true)?;
        let dev2 = self.binary(BinaryOp::Sub, &mean)?.unary(UnaryOp::Square)?;
        let sum = dev2.reduce(ReduceOp::Sum, axis, keepdim)?;
        sum.unary(UnaryOp::MulScalar(1.0 / (len - correction) as f32))
    }
}
