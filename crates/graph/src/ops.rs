//! Tensor ops: each runs its device kernel and records itself (see `backward.rs` for the rules).
//! Ops built from other ops (sub of a scalar, var, flatten, ...) need no rule of their own.

use wgrad_device::{
    BinaryOp, Conv2dParams, DType, Epilogue, GpuArray, Pool2dParams, ReduceOp, Transpose, UnaryOp,
};

use crate::backward::Op;
use crate::error::{GraphError, Result};
use crate::tensor::Tensor;

impl Tensor {
    /// Resolves a possibly negative axis (-1 is the last).
    pub(crate) fn axis(&self, op: &'static str, axis: isize) -> Result<usize> {
        let r = self.rank() as isize;
        let a = if axis < 0 { axis + r } else { axis };
        if a < 0 || a >= r.max(1) || (r == 0 && a != 0) {
            return Err(GraphError::InvalidArgument {
                op,
                reason: format!("axis {axis} out of range for shape {:?}", self.shape()),
            });
        }
        Ok(a as usize)
    }

    // ---- element-wise -------------------------------------------------------------------------

    pub fn unary(&self, op: UnaryOp) -> Result<Tensor> {
        let data = self.array().unary(op)?;
        Ok(Tensor::from_op(data, &[self], || {
            Op::Unary(op, self.clone())
        }))
    }

    pub fn binary(&self, op: BinaryOp, other: &Tensor) -> Result<Tensor> {
        let data = self.array().binary(op, other.array())?;
        if matches!(
            op,
            BinaryOp::Eq | BinaryOp::Ne | BinaryOp::Lt | BinaryOp::Le | BinaryOp::Gt | BinaryOp::Ge
        ) {
            return Ok(Tensor::from_array(data)); // piecewise constant: no gradient flows
        }
        Ok(Tensor::from_op(data, &[self, other], || {
            Op::Binary(op, self.clone(), other.clone())
        }))
    }

    pub fn add(&self, o: &Tensor) -> Result<Tensor> {
        self.binary(BinaryOp::Add, o)
    }
    pub fn sub(&self, o: &Tensor) -> Result<Tensor> {
        self.binary(BinaryOp::Sub, o)
    }
    /// Element-wise (Hadamard) product with broadcasting.
    pub fn mul(&self, o: &Tensor) -> Result<Tensor> {
        self.binary(BinaryOp::Mul, o)
    }
    pub fn div(&self, o: &Tensor) -> Result<Tensor> {
        self.binary(BinaryOp::Div, o)
    }
    /// `self ** o` element-wise.
    pub fn pow(&self, o: &Tensor) -> Result<Tensor> {
        self.binary(BinaryOp::Pow, o)
    }
    pub fn maximum(&self, o: &Tensor) -> Result<Tensor> {
        self.binary(BinaryOp::Max, o)
    }
    pub fn minimum(&self, o: &Tensor) -> Result<Tensor> {
        self.binary(BinaryOp::Min, o)
    }
    pub fn eq(&self, o: &Tensor) -> Result<Tensor> {
        self.binary(BinaryOp::Eq, o)
    }
    pub fn ne(&self, o: &Tensor) -> Result<Tensor> {
        self.binary(BinaryOp::Ne, o)
    }
    pub fn lt(&self, o: &Tensor) -> Result<Tensor> {
        self.binary(BinaryOp::Lt, o)
    }
    pub fn le(&self, o: &Tensor) -> Result<Tensor> {
        self.binary(BinaryOp::Le, o)
    }
    pub fn gt(&self, o: &Tensor) -> Result<Tensor> {
        self.binary(BinaryOp::Gt, o)
    }
    pub fn ge(&self, o: &Tensor) -> Result<Tensor> {
        self.binary(BinaryOp::Ge, o)
    }

    pub fn neg(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Neg)
    }
    pub fn abs(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Abs)
    }
    pub fn sign(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Sign)
    }
    pub fn exp(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Exp)
    }
    pub fn log(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Log)
    }
    pub fn sqrt(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Sqrt)
    }
    pub fn rsqrt(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Rsqrt)
    }
    pub fn recip(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Recip)
    }
    pub fn square(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Square)
    }
    pub fn sin(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Sin)
    }
    pub fn cos(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Cos)
    }
    pub fn relu(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Relu)
    }
    pub fn leaky_relu(&self, slope: f32) -> Result<Tensor> {
        self.unary(UnaryOp::LeakyRelu(slope))
    }
    pub fn elu(&self, alpha: f32) -> Result<Tensor> {
        self.unary(UnaryOp::Elu(alpha))
    }
    /// GELU, tanh form.
    pub fn gelu(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Gelu)
    }
    pub fn sigmoid(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Sigmoid)
    }
    pub fn tanh(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Tanh)
    }
    pub fn softplus(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Softplus)
    }
    pub fn add_scalar(&self, s: f32) -> Result<Tensor> {
        self.unary(UnaryOp::AddScalar(s))
    }
    pub fn sub_scalar(&self, s: f32) -> Result<Tensor> {
        self.unary(UnaryOp::AddScalar(-s))
    }
    pub fn mul_scalar(&self, s: f32) -> Result<Tensor> {
        self.unary(UnaryOp::MulScalar(s))
    }
    pub fn div_scalar(&self, s: f32) -> Result<Tensor> {
        self.unary(UnaryOp::MulScalar(1.0 / s))
    }
    /// `self ** p` element-wise.
    pub fn powf(&self, p: f32) -> Result<Tensor> {
        self.unary(UnaryOp::PowScalar(p))
    }
    pub fn clamp(&self, lo: f32, hi: f32) -> Result<Tensor> {
        self.unary(UnaryOp::Clamp(lo, hi))
    }
    pub fn max_scalar(&self, s: f32) -> Result<Tensor> {
        self.unary(UnaryOp::MaxScalar(s))
    }
    pub fn min_scalar(&self, s: f32) -> Result<Tensor> {
        self.unary(UnaryOp::MinScalar(s))
    }
    /// 1.0 where `self > s`, else 0.0 (no gradient).
    pub fn gt_scalar(&self, s: f32) -> Result<Tensor> {
        Ok(Tensor::from_array(
            self.array().unary(UnaryOp::GtScalar(s))?,
        ))
    }
    /// 1.0 where `self < s`, else 0.0 (no gradient).
    pub fn lt_scalar(&self, s: f32) -> Result<Tensor> {
        Ok(Tensor::from_array(
            self.array().unary(UnaryOp::LtScalar(s))?,
        ))
    }
    /// 1.0 where `self == s`, else 0.0 (no gradient).
    pub fn eq_scalar(&self, s: f32) -> Result<Tensor> {
        Ok(Tensor::from_array(
            self.array().unary(UnaryOp::EqScalar(s))?,
        ))
    }

    /// `where(cond != 0, a, b)` with broadcasting; `self` is the condition (no gradient to it).
    pub fn where_(&self, a: &Tensor, b: &Tensor) -> Result<Tensor> {
        let data = self.array().where_(a.array(), b.array())?;
        Ok(Tensor::from_op(data, &[a, b], || {
            Op::Where(self.array().clone(), a.clone(), b.clone())
        }))
    }

    // ---- matmul -------------------------------------------------------------------------------

    /// `op(self) @ op(b)` with optional transposes (no copies) and broadcast batch dims.
    pub fn matmul_t(&self, b: &Tensor, ta: Transpose, tb: Transpose) -> Result<Tensor> {
        let data = self.array().matmul(b.array(), ta, tb)?;
        Ok(Tensor::from_op(data, &[self, b], || {
            Op::Matmul(self.clone(), b.clone(), ta, tb)
        }))
    }

    /// Matrix product with NumPy semantics: 1-D operands are promoted (and the added dim removed).
    pub fn matmul(&self, b: &Tensor) -> Result<Tensor> {
        let (a1, b1) = (self.rank() == 1, b.rank() == 1);
        let a = if a1 {
            self.reshape(&[1, self.numel()])?
        } else {
            self.clone()
        };
        let bm = if b1 {
            b.reshape(&[b.numel(), 1])?
        } else {
            b.clone()
        };
        let y = a.matmul_t(&bm, Transpose::No, Transpose::No)?;
        let mut shape = y.shape().to_vec();
        if b1 {
            shape.pop();
        }
        if a1 {
            shape.remove(shape.len() - if b1 { 1 } else { 2 });
        }
        if a1 || b1 { y.reshape(&shape) } else { Ok(y) }
    }

    /// A linear layer, `act(self @ w + b)`: self [.., K], w [K, N], b [N] -> [.., N] (PyTorch's
    /// `linear` with the weight stored transposed, as `Linear` keeps it). The bias and the
    /// activation are applied as the product is stored, so they cost no pass over the output of
    /// their own, for the activations `add_act` fuses and with none; any other is applied after.
    pub fn linear(&self, w: &Tensor, b: Option<&Tensor>, act: Option<UnaryOp>) -> Result<Tensor> {
        if let Some(act) = act.filter(|&a| !crate::backward::act_fusable(a)) {
            return self.linear(w, b, None)?.unary(act);
        }
        if self.rank() == 0 || w.rank() != 2 {
            return Err(GraphError::InvalidArgument {
                op: "linear",
                reason: format!(
                    "expected an input [.., K] and a weight [K, N], got {:?} and {:?}",
                    self.shape(),
                    w.shape()
                ),
            });
        }
        if self.rank() != 2 {
            // The leading dims as rows, and back.
            let (lead, k) = self.shape().split_at(self.rank() - 1);
            let rows = self.reshape(&[lead.iter().product(), k[0]])?;
            let mut shape = lead.to_vec();
            shape.push(w.shape()[1]);
            return rows.linear(w, b, act)?.reshape(&shape);
        }
        let epi = Epilogue {
            row_bias: None,
            col_bias: b.map(Tensor::array),
            act,
        };
        let data = self
            .array()
            .matmul_epilogue(w.array(), Transpose::No, Transpose::No, epi)?;
        let mut inputs = vec![self, w];
        inputs.extend(b);
        Ok(Tensor::from_op(data, &inputs, || Op::Linear {
            x: self.clone(),
            w: w.clone(),
            b: b.cloned(),
            act,
        }))
    }

    // ---- reductions ---------------------------------------------------------------------------

    fn reduce(&self, op: ReduceOp, axis: isize, keepdim: bool) -> Result<Tensor> {
        let ax = self.axis("reduce", axis)?;
        if self.rank() == 0 {
            return Ok(self.clone());
        }
        let data = self.array().reduce(op, ax, keepdim)?;
        Ok(Tensor::from_op(data, &[self], || Op::Reduce {
            op,
            x: self.clone(),
            axis: ax,
            keepdim,
        }))
    }

    pub fn sum(&self, axis: isize, keepdim: bool) -> Result<Tensor> {
        self.reduce(ReduceOp::Sum, axis, keepdim)
    }
    pub fn mean(&self, axis: isize, keepdim: bool) -> Result<Tensor> {
        self.reduce(ReduceOp::Mean, axis, keepdim)
    }
    /// Largest value along `axis`; the gradient is shared evenly among ties.
    pub fn max(&self, axis: isize, keepdim: bool) -> Result<Tensor> {
        self.reduce(ReduceOp::Max, axis, keepdim)
    }
    pub fn min(&self, axis: isize, keepdim: bool) -> Result<Tensor> {
        self.reduce(ReduceOp::Min, axis, keepdim)
    }
    /// Sum of every element, shape `[]`.
    pub fn sum_all(&self) -> Result<Tensor> {
        self.reshape(&[self.numel()])?.sum(0, false)
    }
    /// Mean of every element, shape `[]`.
    pub fn mean_all(&self) -> Result<Tensor> {
        self.reshape(&[self.numel()])?.mean(0, false)
    }
    /// Variance with `correction` (1 = unbiased), composed so it is differentiable twice.
    pub fn var(&self, axis: isize, keepdim: bool, correction: usize) -> Result<Tensor> {
        let ax = self.axis("var", axis)?;
        let n = self.shape().get(ax).copied().unwrap_or(1);
        if n <= correction {
            return Err(GraphError::InvalidArgument {
                op: "var",
                reason: format!("{n} values with correction {correction}"),
            });
        }
        let d = self.sub(&self.mean(axis, true)?)?;
        d.square()?
            .sum(axis, keepdim)?
            .mul_scalar(1.0 / (n - correction) as f32)
    }
    /// Index of the first maximum along `axis` (u32, no gradient).
    pub fn argmax(&self, axis: isize) -> Result<Tensor> {
        let ax = self.axis("argmax", axis)?;
        Ok(Tensor::from_array(self.array().argmax(ax, false, false)?))
    }
    /// Index of the first minimum along `axis` (u32, no gradient).
    pub fn argmin(&self, axis: isize) -> Result<Tensor> {
        let ax = self.axis("argmin", axis)?;
        Ok(Tensor::from_array(self.array().argmax(ax, false, true)?))
    }
    pub fn softmax(&self, axis: isize) -> Result<Tensor> {
        let ax = self.axis("softmax", axis)?;
        let data = self.array().softmax(ax)?;
        Ok(Tensor::from_op(data, &[self], || {
            Op::Softmax(self.clone(), ax)
        }))
    }
    pub fn log_softmax(&self, axis: isize) -> Result<Tensor> {
        let ax = self.axis("log_softmax", axis)?;
        let data = self.array().log_softmax(ax)?;
        Ok(Tensor::from_op(data, &[self], || {
            Op::LogSoftmax(self.clone(), ax)
        }))
    }
    pub fn logsumexp(&self, axis: isize, keepdim: bool) -> Result<Tensor> {
        let ax = self.axis("logsumexp", axis)?;
        let data = self.array().logsumexp(ax, keepdim)?;
        Ok(Tensor::from_op(data, &[self], || Op::LogSumExp {
            x: self.clone(),
            axis: ax,
            keepdim,
        }))
    }

    // ---- shape and movement -------------------------------------------------------------------

    /// Same data, new shape with the same element count (no copy).
    pub fn reshape(&self, shape: &[usize]) -> Result<Tensor> {
        if shape == self.shape() {
            return Ok(self.clone());
        }
        let data = self.array().reshape(shape)?;
        Ok(Tensor::from_op(data, &[self], || Op::Reshape(self.clone())))
    }
    /// Collapses dims `start..` into one (`flatten(1)` turns [N, C, H, W] into [N, C*H*W]).
    pub fn flatten(&self, start: usize) -> Result<Tensor> {
        let s = self.shape();
        if start >= s.len() {
            return Ok(self.clone());
        }
        let mut shape = s[..start].to_vec();
        shape.push(s[start..].iter().product());
        self.reshape(&shape)
    }
    /// Inserts a dim of size 1 at `dim`.
    pub fn unsqueeze(&self, dim: usize) -> Result<Tensor> {
        let mut shape = self.shape().to_vec();
        if dim > shape.len() {
            return Err(GraphError::InvalidArgument {
                op: "unsqueeze",
                reason: format!("dim {dim} for shape {shape:?}"),
            });
        }
        shape.insert(dim, 1);
        self.reshape(&shape)
    }
    pub fn permute(&self, dims: &[usize]) -> Result<Tensor> {
        let data = self.array().permute(dims)?;
        Ok(Tensor::from_op(data, &[self], || {
            Op::Permute(self.clone(), dims.to_vec())
        }))
    }
    /// Swaps two dims (negative counts from the end).
    pub fn transpose(&self, d0: isize, d1: isize) -> Result<Tensor> {
        let (a, b) = (self.axis("transpose", d0)?, self.axis("transpose", d1)?);
        let mut dims: Vec<usize> = (0..self.rank()).collect();
        dims.swap(a, b);
        self.permute(&dims)
    }
    /// Transpose of a matrix (last two dims).
    pub fn t(&self) -> Result<Tensor> {
        self.transpose(-2, -1)
    }
    pub fn broadcast_to(&self, shape: &[usize]) -> Result<Tensor> {
        if shape == self.shape() {
            return Ok(self.clone());
        }
        let data = self.array().broadcast_to(shape)?;
        Ok(Tensor::from_op(data, &[self], || {
            Op::BroadcastTo(self.clone())
        }))
    }
    pub fn narrow(&self, dim: isize, start: usize, len: usize) -> Result<Tensor> {
        let d = self.axis("narrow", dim)?;
        let data = self.array().narrow(d, start, len)?;
        Ok(Tensor::from_op(data, &[self], || Op::Narrow {
            x: self.clone(),
            dim: d,
            start,
        }))
    }
    /// Pads each dim with `(before, after)` zeros.
    pub fn pad(&self, pads: &[(usize, usize)]) -> Result<Tensor> {
        let data = self.array().pad(pads, 0.0)?;
        Ok(Tensor::from_op(data, &[self], || {
            Op::Pad(self.clone(), pads.to_vec())
        }))
    }
    pub fn concat(parts: &[&Tensor], dim: isize) -> Result<Tensor> {
        let first = parts.first().ok_or(GraphError::InvalidArgument {
            op: "concat",
            reason: "no tensors given".into(),
        })?;
        let d = first.axis("concat", dim)?;
        let arrays: Vec<&GpuArray> = parts.iter().map(|t| t.array()).collect();
        let data = GpuArray::concat(&arrays, d)?;
        Ok(Tensor::from_op(data, parts, || {
            Op::Concat(parts.iter().map(|&t| t.clone()).collect(), d)
        }))
    }
    /// Stacks equal-shaped tensors along a new leading dim.
    pub fn stack(parts: &[&Tensor]) -> Result<Tensor> {
        let rows: Vec<Tensor> = parts
            .iter()
            .map(|t| t.unsqueeze(0))
            .collect::<Result<_>>()?;
        Tensor::concat(&rows.iter().collect::<Vec<_>>(), 0)
    }
    /// Rows `idx` (a 1-D u32 tensor) of `dim`.
    pub fn index_select(&self, dim: isize, idx: &Tensor) -> Result<Tensor> {
        let d = self.axis("index_select", dim)?;
        let data = self.array().index_select(d, idx.array())?;
        Ok(Tensor::from_op(data, &[self], || Op::IndexSelect {
            x: self.clone(),
            dim: d,
            idx: idx.array().clone(),
        }))
    }
    /// Sums rows of `self` into `size` rows of `dim` at `idx` (the adjoint of `index_select`).
    pub fn index_add(&self, dim: isize, idx: &Tensor, size: usize) -> Result<Tensor> {
        let d = self.axis("index_add", dim)?;
        let data = self.array().index_add(d, idx.array(), size)?;
        Ok(Tensor::from_op(data, &[self], || Op::IndexAdd {
            x: self.clone(),
            dim: d,
            idx: idx.array().clone(),
        }))
    }
    /// `torch.gather` along `dim` with u32 indices.
    pub fn gather(&self, dim: isize, idx: &Tensor) -> Result<Tensor> {
        let d = self.axis("gather", dim)?;
        let data = self.array().gather(d, idx.array())?;
        Ok(Tensor::from_op(data, &[self], || Op::Gather {
            x: self.clone(),
            dim: d,
            idx: idx.array().clone(),
        }))
    }
    /// `torch.scatter_add`: `self` plus `src` added at rows `idx` of `dim`.
    pub fn scatter_add(&self, dim: isize, idx: &Tensor, src: &Tensor) -> Result<Tensor> {
        let d = self.axis("scatter_add", dim)?;
        let data = self.array().scatter_add(d, idx.array(), src.array())?;
        Ok(Tensor::from_op(data, &[self, src], || Op::ScatterAdd {
            base: self.clone(),
            dim: d,
            idx: idx.array().clone(),
            src: src.clone(),
        }))
    }
    /// act(self + other) with broadcasting: a bias add and its activation in one kernel (one pass
    /// over memory forward). Fused for activations whose derivative can be read off the output
    /// (relu, leaky_relu and elu with a positive slope, sigmoid, tanh); any other is applied after
    /// an ordinary add.
    pub fn add_act(&self, other: &Tensor, act: UnaryOp) -> Result<Tensor> {
        if !crate::backward::act_fusable(act) {
            return self.add(other)?.unary(act);
        }
        let data = self
            .array()
            .binary_then(BinaryOp::Add, other.array(), &[act])?;
        Ok(Tensor::from_op(data, &[self, other], || {
            Op::AddAct(self.clone(), other.clone(), act)
        }))
    }
    /// Mean softmax cross-entropy of logits `self` [N, C] against class labels [N] (u32), a 0-d
    /// tensor: PyTorch's `cross_entropy(logits, labels)`. Fused: one kernel for the rows' losses
    /// and one for the gradient, instead of log_softmax, gather, mean and their backward passes.
    pub fn cross_entropy(&self, labels: &Tensor) -> Result<Tensor> {
        let rows = self.array().cross_entropy_rows(labels.array())?;
        let data = rows.reduce_all(ReduceOp::Mean)?;
        Ok(Tensor::from_op(data, &[self], || Op::CrossEntropy {
            logits: self.clone(),
            labels: labels.array().clone(),
        }))
    }
    /// labels [N] (u32) -> [N, classes] f32 (no gradient).
    pub fn one_hot(&self, classes: usize) -> Result<Tensor> {
        Ok(Tensor::from_array(self.array().one_hot(classes)?))
    }

    // ---- convolution and pooling --------------------------------------------------------------

    /// x: [N, C_in, H, W], w: [C_out, C_in/groups, KH, KW] -> [N, C_out, OH, OW].
    pub fn conv2d(&self, w: &Tensor, p: &Conv2dParams) -> Result<Tensor> {
        let data = self.array().conv2d(w.array(), p)?;
        Ok(Tensor::from_op(data, &[self, w], || Op::Conv2d {
            x: self.clone(),
            w: w.clone(),
            p: *p,
        }))
    }
    /// act(conv2d(x, w) + b) with b: [C_out] broadcast over channels, in the convolution's own
    /// pass (the matmul adds the bias and applies act as it stores its output). Fused for the
    /// activations `add_act` fuses, and with none; any other is applied after.
    pub fn conv2d_bias_act(
        &self,
        w: &Tensor,
        b: &Tensor,
        p: &Conv2dParams,
        act: Option<UnaryOp>,
    ) -> Result<Tensor> {
        if let Some(act) = act.filter(|&a| !crate::backward::act_fusable(a)) {
            let c = b.numel();
            return self
                .conv2d(w, p)?
                .add(&b.reshape(&[1, c, 1, 1])?)?
                .unary(act);
        }
        let data = self
            .array()
            .conv2d_bias_act(w.array(), Some(b.array()), act, p)?;
        Ok(Tensor::from_op(data, &[self, w, b], || Op::Conv2dBiasAct {
            x: self.clone(),
            w: w.clone(),
            b: b.clone(),
            p: *p,
            act,
        }))
    }
    /// Input gradient of conv2d as a differentiable op: self = dy, result has `x_shape`.
    pub fn conv2d_backward_input(
        &self,
        w: &Tensor,
        x_shape: &[usize],
        p: &Conv2dParams,
    ) -> Result<Tensor> {
        let data = self.array().conv2d_backward_input(w.array(), x_shape, p)?;
        Ok(Tensor::from_op(data, &[self, w], || {
            Op::Conv2dBackwardInput {
                dy: self.clone(),
                w: w.clone(),
                p: *p,
            }
        }))
    }
    /// Weight gradient of conv2d as a differentiable op: self = dy, x the forward input.
    pub fn conv2d_backward_weight(
        &self,
        x: &Tensor,
        w_shape: &[usize],
        p: &Conv2dParams,
    ) -> Result<Tensor> {
        let data = self.array().conv2d_backward_weight(x.array(), w_shape, p)?;
        Ok(Tensor::from_op(data, &[self, x], || {
            Op::Conv2dBackwardWeight {
                dy: self.clone(),
                x: x.clone(),
                p: *p,
            }
        }))
    }
    /// 1-D convolution as a conv2d of height 1. x: [N, C_in, L], w: [C_out, C_in/groups, K].
    pub fn conv1d(
        &self,
        w: &Tensor,
        stride: usize,
        padding: usize,
        dilation: usize,
        groups: usize,
    ) -> Result<Tensor> {
        let (xs, ws) = (self.shape(), w.shape());
        if xs.len() != 3 || ws.len() != 3 {
            return Err(GraphError::InvalidArgument {
                op: "conv1d",
                reason: format!(
                    "expected x [N, C, L] and w [C_out, C_in, K], got {xs:?} and {ws:?}"
                ),
            });
        }
        let x4 = self.reshape(&[xs[0], xs[1], 1, xs[2]])?;
        let w4 = w.reshape(&[ws[0], ws[1], 1, ws[2]])?;
        let p = Conv2dParams {
            stride: (1, stride),
            padding: (0, padding),
            dilation: (1, dilation),
            groups,
        };
        let y = x4.conv2d(&w4, &p)?;
        let s = y.shape().to_vec();
        y.reshape(&[s[0], s[1], s[3]])
    }
    pub fn max_pool2d(&self, p: &Pool2dParams) -> Result<Tensor> {
        let (data, argmax) = self.array().max_pool2d(p)?;
        Ok(Tensor::from_op(data, &[self], || Op::MaxPool2d {
            x: self.clone(),
            argmax,
            p: *p,
        }))
    }
    pub fn avg_pool2d(&self, p: &Pool2dParams) -> Result<Tensor> {
        let data = self.array().avg_pool2d(p)?;
        Ok(Tensor::from_op(data, &[self], || {
            Op::AvgPool2d(self.clone(), *p)
        }))
    }

    /// True when this tensor holds f32 data.
    pub fn is_float(&self) -> bool {
        self.dtype() == DType::F32
    }
}

macro_rules! binary_operator {
    ($trait:ident, $method:ident, $call:ident) => {
        impl std::ops::$trait<&Tensor> for &Tensor {
            type Output = Result<Tensor>;
            fn $method(self, rhs: &Tensor) -> Result<Tensor> {
                self.$call(rhs)
            }
        }
    };
}
binary_operator!(Add, add, add);
binary_operator!(Sub, sub, sub);
binary_operator!(Mul, mul, mul);
binary_operator!(Div, div, div);

impl std::ops::Neg for &Tensor {
    type Output = Result<Tensor>;
    fn neg(self) -> Result<Tensor> {
        Tensor::neg(self)
    }
}
