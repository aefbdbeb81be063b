//! Every recorded op and its gradient rule, in one place.
//!
//! A rule maps the upstream gradient `g` (shape of the op's output `y`) to one gradient per input,
//! written with Tensor ops: under `create_graph` the rules record themselves, so gradients can be
//! differentiated again. Broadcasting is undone by one helper, `sum_to`.

use wgrad_device::{BinaryOp, Conv2dParams, GpuArray, Pool2dParams, ReduceOp, Transpose, UnaryOp};

use crate::error::{GraphError, Result};
use crate::tensor::Tensor;

pub(crate) enum Op {
    Unary(UnaryOp, Tensor),
    Binary(BinaryOp, Tensor, Tensor),
    /// (condition, a, b); the condition gets no gradient.
    Where(GpuArray, Tensor, Tensor),
    Matmul(Tensor, Tensor, Transpose, Transpose),
    /// act(x w + b) for x [M, K], w [K, N], b [N] (optional), in the product's store.
    Linear {
        x: Tensor,
        w: Tensor,
        b: Option<Tensor>,
        act: Option<UnaryOp>,
    },
    Reduce {
        op: ReduceOp,
        x: Tensor,
        axis: usize,
        keepdim: bool,
    },
    Softmax(Tensor, usize),
    LogSoftmax(Tensor, usize),
    LogSumExp {
        x: Tensor,
        axis: usize,
        keepdim: bool,
    },
    Reshape(Tensor),
    Permute(Tensor, Vec<usize>),
    BroadcastTo(Tensor),
    Narrow {
        x: Tensor,
        dim: usize,
        start: usize,
    },
    Pad(Tensor, Vec<(usize, usize)>),
    Concat(Vec<Tensor>, usize),
    IndexSelect {
        x: Tensor,
        dim: usize,
        idx: GpuArray,
    },
    IndexAdd {
        x: Tensor,
        dim: usize,
        idx: GpuArray,
    },
    Gather {
        x: Tensor,
        dim: usize,
        idx: GpuArray,
    },
    ScatterAdd {
        base: Tensor,
        dim: usize,
        idx: GpuArray,
        src: Tensor,
    },
    Conv2d {
        x: Tensor,
        w: Tensor,
        p: Conv2dParams,
    },
    /// act(conv2d(x, w) + b), b: [C_out]; act's derivative is read off the output.
    Conv2dBiasAct {
        x: Tensor,
        w: Tensor,
        b: Tensor,
        p: Conv2dParams,
        act: Option<UnaryOp>,
    },
    Conv2dBackwardInput {
        dy: Tensor,
        w: Tensor,
        p: Conv2dParams,
    },
    Conv2dBackwardWeight {
        dy: Tensor,
        x: Tensor,
        p: Conv2dParams,
    },
    MaxPool2d {
        x: Tensor,
        argmax: GpuArray,
        p: Pool2dParams,
    },
    /// dx of max pooling as an op of dy (linear in dy; its adjoint gathers at the argmax).
    MaxPool2dBackward {
        dy: Tensor,
        argmax: GpuArray,
    },
    AvgPool2d(Tensor, Pool2dParams),
    AvgPool2dBackward(Tensor, Pool2dParams),
    /// act(a + b) with broadcasting, in one kernel; act's derivative is read off the output.
    AddAct(Tensor, Tensor, UnaryOp),
    /// Mean softmax cross-entropy of logits [N, C] against u32 labels [N] (a 0-d output).
    CrossEntropy {
        logits: Tensor,
        labels: GpuArray,
    },
}

impl Op {
    /// The inputs, in the order `rule` returns their gradients.
    pub(crate) fn inputs(&self) -> Vec<&Tensor> {
        use Op::*;
        match self {
            Unary(_, x)
            | Reshape(x)
            | Permute(x, _)
            | BroadcastTo(x)
            | Softmax(x, _)
            | LogSoftmax(x, _) => vec![x],
            Binary(_, a, b) | Where(_, a, b) | Matmul(a, b, _, _) | AddAct(a, b, _) => vec![a, b],
            Reduce { x, .. } | LogSumExp { x, .. } | Narrow { x, .. } | Pad(x, _) => vec![x],
            Concat(xs, _) => xs.iter().collect(),
            IndexSelect { x, .. } | IndexAdd { x, .. } | Gather { x, .. } => vec![x],
            ScatterAdd { base, src, .. } => vec![base, src],
            Conv2d { x, w, .. } => vec![x, w],
            Linear { x, w, b, .. } => [x, w].into_iter().chain(b).collect(),
            Conv2dBiasAct { x, w, b, .. } => vec![x, w, b],
            Conv2dBackwardInput { dy, w, .. } => vec![dy, w],
            Conv2dBackwardWeight { dy, x, .. } => vec![dy, x],
            MaxPool2d { x, .. } | AvgPool2d(x, _) => vec![x],
            MaxPool2dBackward { dy, .. } | AvgPool2dBackward(dy, _) => vec![dy],
            CrossEntropy { logits, .. } => vec![logits],
        }
    }
}

/// Sums a broadcast gradient back to `shape`: over leading dims, then over dims where `shape` is 1.
/// Neighbouring dims that are all summed (or all kept) are merged first, so a conv bias gradient
/// [N, C, H, W] -> [1, C, 1, 1] is two reductions over [N, C, H W], the inner one over contiguous
/// rows.
pub(crate) fn sum_to(g: &Tensor, shape: &[usize]) -> Result<Tensor> {
    if g.shape() == shape {
        return Ok(g.clone());
    }
    let lead = g.rank().saturating_sub(shape.len());
    // (size, summed) per merged group of g's dims.
    let mut groups: Vec<(usize, bool)> = Vec::new();
    for (d, &size) in g.shape().iter().enumerate() {
        let summed = d < lead || (shape[d - lead] == 1 && size != 1);
        match groups.last_mut() {
            // A size-1 dim joins either kind.
            Some((s, f)) if *f == summed || size == 1 => *s *= size,
            _ => groups.push((size, summed)),
        }
    }
    let mut t = g.reshape(&groups.iter().map(|&(s, _)| s).collect::<Vec<_>>())?;
    for (axis, _) in groups.iter().enumerate().rev().filter(|(_, (_, f))| *f) {
        t = t.sum(axis as isize, false)?;
    }
    t.reshape(shape)
}

/// `g` with the reduced `axis` restored (size 1) and broadcast back to `shape`.
fn expand_back(g: &Tensor, shape: &[usize], axis: usize, keepdim: bool) -> Result<Tensor> {
    let g = if keepdim {
        g.clone()
    } else {
        g.unsqueeze(axis)?
    };
    g.broadcast_to(shape)
}

fn flip(t: Transpose) -> Transpose {
    match t {
        Transpose::No => Transpose::Yes,
        Transpose::Yes => Transpose::No,
    }
}

/// Whether act'(x) can be written with act's output y = act(x) alone (see `act_derivative_from_output`):
/// what lets `add_act` keep no pre-activation tensor.
pub(crate) fn act_fusable(act: UnaryOp) -> bool {
    use UnaryOp::*;
    match act {
        Relu | Sigmoid | Tanh => true,
        LeakyRelu(a) | Elu(a) => a > 0.0,
        _ => false,
    }
}

/// act'(x) from y = act(x), for the activations `act_fusable` accepts.
fn act_derivative_from_output(act: UnaryOp, y: &Tensor) -> Result<Tensor> {
    use UnaryOp::*;
    match act {
        Relu => y.gt_scalar(0.0),
        LeakyRelu(a) if a > 0.0 => y.gt_scalar(0.0)?.mul_scalar(1.0 - a)?.add_scalar(a),
        // x > 0 exactly where y > 0 (elu(x) > -a elsewhere, and -a < 0 for a > 0).
        Elu(a) if a > 0.0 => {
            let pos = y.gt_scalar(0.0)?;
            pos.where_(&y.ones_like()?, &y.add_scalar(a)?)
        }
        Sigmoid => y.mul(&y.neg()?.add_scalar(1.0)?),
        Tanh => y.square()?.neg()?.add_scalar(1.0),
        _ => Err(GraphError::InvalidArgument {
            op: "add_act",
            reason: format!("{act:?} has no derivative in terms of its output"),
        }),
    }
}

/// The gradient through a unary op: g times d/dx (linear ops and piecewise constants skip the
/// multiplication and the tensor of derivatives).
fn unary_grad(op: UnaryOp, x: &Tensor, y: &Tensor, g: &Tensor) -> Result<Tensor> {
    use UnaryOp::*;
    let d = match op {
        Neg => return g.neg(),
        AddScalar(_) => return Ok(g.clone()),
        MulScalar(s) => return g.mul_scalar(s),
        // Piecewise constant: zero almost everywhere.
        Sign | GtScalar(_) | GeScalar(_) | LtScalar(_) | LeScalar(_) | EqScalar(_)
        | NeScalar(_) => return g.zeros_like(),
        Abs => x.sign(),
        Exp => Ok(y.clone()),
        Log => x.recip(),
        Sqrt => y.recip()?.mul_scalar(0.5),
        Rsqrt => y.powf(3.0)?.mul_scalar(-0.5),
        Recip => y.square()?.neg(),
        Square => x.mul_scalar(2.0),
        Sin => x.cos(),
        Cos => x.sin()?.neg(),
        Relu => x.gt_scalar(0.0),
        LeakyRelu(a) => x.gt_scalar(0.0)?.mul_scalar(1.0 - a)?.add_scalar(a),
        // y + a on the negative side, 1 on the positive side.
        Elu(a) => {
            let pos = x.gt_scalar(0.0)?;
            pos.where_(&x.ones_like()?, &y.add_scalar(a)?)
        }
        Gelu => {
            // y = x/2 (1 + tanh u), u = c (x + k x^3):
            // y' = (1 + tanh u)/2 + x/2 (1 - tanh^2 u) c (1 + 3k x^2)
            let (c, k) = (0.797_884_6_f32, 0.044_715_f32);
            let x2 = x.square()?;
            let u = x.mul(&x2.mul_scalar(k)?.add_scalar(1.0)?)?.mul_scalar(c)?;
            let t = u.tanh()?;
            let a = t.add_scalar(1.0)?.mul_scalar(0.5)?;
            let du = x2.mul_scalar(3.0 * k)?.add_scalar(1.0)?.mul_scalar(c)?;
            let b = x
                .mul(&t.square()?.neg()?.add_scalar(1.0)?)?
                .mul(&du)?
                .mul_scalar(0.5)?;
            a.add(&b)
        }
        Sigmoid => y.mul(&y.neg()?.add_scalar(1.0)?),
        Tanh => y.square()?.neg()?.add_scalar(1.0),
        Softplus => x.sigmoid(),
        PowScalar(p) => x.powf(p - 1.0)?.mul_scalar(p),
        MaxScalar(s) => x.gt_scalar(s),
        MinScalar(s) => x.lt_scalar(s),
        Clamp(lo, hi) => x
            .array()
            .unary(UnaryOp::GeScalar(lo))?
            .binary(BinaryOp::Mul, &x.array().unary(UnaryOp::LeScalar(hi))?)
            .map(Tensor::from_array)
            .map_err(Into::into),
        ScalarPow(s) => y.mul_scalar(s.ln()),
    };
    g.mul(&d?)
}

/// One gradient per input of `op` (None where no gradient flows), given the output `y` and the
/// upstream gradient `g`. `needs[i]` says whether input i wants its gradient; the costly rules
/// (matmul, convolution) skip the ones nobody wants, like PyTorch's `needs_input_grad`.
pub(crate) fn rule(op: &Op, y: &Tensor, g: &Tensor, needs: &[bool]) -> Result<Vec<Option<Tensor>>> {
    use Op::*;
    // The gradient of input i, computed only when it is wanted.
    let want = |i: usize, f: &dyn Fn() -> Result<Tensor>| -> Result<Option<Tensor>> {
        needs.get(i).copied().unwrap_or(true).then(f).transpose()
    };
    Ok(match op {
        Unary(u, x) => vec![Some(unary_grad(*u, x, y, g)?)],

        Binary(b, x1, x2) => {
            let (ga, gb) = match b {
                BinaryOp::Add => (g.clone(), g.clone()),
                BinaryOp::Sub => (g.clone(), g.neg()?),
                BinaryOp::Mul => (g.mul(x2)?, g.mul(x1)?),
                BinaryOp::Div => (g.div(x2)?, g.mul(y)?.div(x2)?.neg()?),
                BinaryOp::Pow => (
                    g.mul(x2)?.mul(&x1.pow(&x2.add_scalar(-1.0)?)?)?,
                    g.mul(y)?.mul(&x1.log()?)?,
                ),
                // Ties split the gradient evenly, like PyTorch's maximum/minimum.
                BinaryOp::Max | BinaryOp::Min => {
                    let (win, lose) = if *b == BinaryOp::Max {
                        (x1.gt(x2)?, x1.lt(x2)?)
                    } else {
                        (x1.lt(x2)?, x1.gt(x2)?)
                    };
                    let tie = x1.eq(x2)?.mul_scalar(0.5)?;
                    (g.mul(&win.add(&tie)?)?, g.mul(&lose.add(&tie)?)?)
                }
                BinaryOp::Eq
                | BinaryOp::Ne
                | BinaryOp::Lt
                | BinaryOp::Le
                | BinaryOp::Gt
                | BinaryOp::Ge => {
                    return Err(GraphError::BackwardNotSupported { op: "comparison" });
                }
            };
            vec![
                Some(sum_to(&ga, x1.shape())?),
                Some(sum_to(&gb, x2.shape())?),
            ]
        }

        AddAct(a, b, act) => {
            let gz = g.mul(&act_derivative_from_output(*act, y)?)?;
            vec![Some(sum_to(&gz, a.shape())?), Some(sum_to(&gz, b.shape())?)]
        }

        Where(cond, a, b) => {
            let c = Tensor::from_array(cond.clone());
            let z = Tensor::zeros(&[], g.device())?;
            vec![
                Some(sum_to(&c.where_(g, &z)?, a.shape())?),
                Some(sum_to(&c.where_(&z, g)?, b.shape())?),
            ]
        }

        Matmul(a, b, ta, tb) => {
            // y = op(a) op(b); see the derivation in the matmul tests.
            let ga = want(0, &|| {
                let ga = match ta {
                    Transpose::No => g.matmul_t(b, Transpose::No, flip(*tb))?,
                    Transpose::Yes => b.matmul_t(g, *tb, Transpose::Yes)?,
                };
                sum_to(&ga, a.shape())
            })?;
            let gb = want(1, &|| {
                let gb = match tb {
                    Transpose::No => a.matmul_t(g, flip(*ta), Transpose::No)?,
                    Transpose::Yes => g.matmul_t(a, Transpose::Yes, *ta)?,
                };
                sum_to(&gb, b.shape())
            })?;
            vec![ga, gb]
        }

        // z = x w + b, y = act(z): the gradient of z, then matmul's rule, and b's is z's summed
        // over the rows.
        Linear { x, w, b, act } => {
            let gz = match act {
                Some(act) => g.mul(&act_derivative_from_output(*act, y)?)?,
                None => g.clone(),
            };
            let mut grads = vec![
                want(0, &|| gz.matmul_t(w, Transpose::No, Transpose::Yes))?,
                want(1, &|| x.matmul_t(&gz, Transpose::Yes, Transpose::No))?,
            ];
            if b.is_some() {
                grads.push(want(2, &|| gz.sum(0, false))?);
            }
            grads
        }

        Reduce {
            op,
            x,
            axis,
            keepdim,
        } => {
            let ge = expand_back(g, x.shape(), *axis, *keepdim)?;
            vec![Some(match op {
                ReduceOp::Sum => ge,
                ReduceOp::Mean => ge.mul_scalar(1.0 / x.shape()[*axis] as f32)?,
                ReduceOp::Max | ReduceOp::Min => {
                    let ye = expand_back(&y.detach(), x.shape(), *axis, *keepdim)?;
                    let mask = x.eq(&ye)?;
                    let count = mask.sum(*axis as isize, true)?;
                    ge.mul(&mask.div(&count)?)?
                }
            })]
        }

        Softmax(_, axis) => {
            let gy = g.mul(y)?;
            vec![Some(gy.sub(&y.mul(&gy.sum(*axis as isize, true)?)?)?)]
        }
        LogSoftmax(_, axis) => vec![Some(g.sub(&y.exp()?.mul(&g.sum(*axis as isize, true)?)?)?)],
        LogSumExp { x, axis, keepdim } => {
            let ye = expand_back(y, x.shape(), *axis, *keepdim)?;
            let ge = expand_back(g, x.shape(), *axis, *keepdim)?;
            vec![Some(ge.mul(&x.sub(&ye)?.exp()?)?)]
        }

        Reshape(x) => vec![Some(g.reshape(x.shape())?)],
        Permute(_, dims) => {
            let mut inv = vec![0; dims.len()];
            for (i, &d) in dims.iter().enumerate() {
                inv[d] = i;
            }
            vec![Some(g.permute(&inv)?)]
        }
        BroadcastTo(x) => vec![Some(sum_to(g, x.shape())?)],
        Narrow { x, dim, start } => {
            let mut pads = vec![(0, 0); x.rank()];
            pads[*dim] = (*start, x.shape()[*dim] - start - g.shape()[*dim]);
            vec![Some(g.pad(&pads)?)]
        }
        Pad(x, pads) => {
            let mut t = g.clone();
            for (d, &(before, _)) in pads.iter().enumerate() {
                t = t.narrow(d as isize, before, x.shape()[d])?;
            }
            vec![Some(t)]
        }
        Concat(xs, dim) => {
            let mut at = 0;
            let mut out = Vec::with_capacity(xs.len());
            for x in xs {
                let len = x.shape()[*dim];
                out.push(Some(g.narrow(*dim as isize, at, len)?));
                at += len;
            }
            out
        }
        IndexSelect { x, dim, idx } => {
            let idx = Tensor::from_array(idx.clone());
            vec![Some(g.index_add(*dim as isize, &idx, x.shape()[*dim])?)]
        }
        IndexAdd { dim, idx, .. } => {
            let idx = Tensor::from_array(idx.clone());
            vec![Some(g.index_select(*dim as isize, &idx)?)]
        }
        Gather { x, dim, idx } => {
            let idx = Tensor::from_array(idx.clone());
            vec![Some(x.zeros_like()?.scatter_add(*dim as isize, &idx, g)?)]
        }
        ScatterAdd { dim, idx, .. } => {
            let idx = Tensor::from_array(idx.clone());
            vec![Some(g.clone()), Some(g.gather(*dim as isize, &idx)?)]
        }

        // L = <g, conv(x, w)>:  dL/dx = conv_bwd_input(g, w), dL/dw = conv_bwd_weight(g, x).
        Conv2d { x, w, p } => vec![
            want(0, &|| g.conv2d_backward_input(w, x.shape(), p))?,
            want(1, &|| g.conv2d_backward_weight(x, w.shape(), p))?,
        ],
        // z = conv(x, w) + b, y = act(z): the gradient of z, then conv's rule, and b's is z's
        // summed over all but the channels.
        Conv2dBiasAct { x, w, b, p, act } => {
            let gz = match act {
                Some(act) => g.mul(&act_derivative_from_output(*act, y)?)?,
                None => g.clone(),
            };
            vec![
                want(0, &|| gz.conv2d_backward_input(w, x.shape(), p))?,
                want(1, &|| gz.conv2d_backward_weight(x, w.shape(), p))?,
                want(2, &|| {
                    sum_to(&gz, &[1, b.numel(), 1, 1])?.reshape(b.shape())
                })?,
            ]
        }
        // y = bwd_input(dy, w); <g, y> = <conv(g, w), dy>: d/ddy = conv(g, w), d/dw = bwd_weight(dy, g).
        Conv2dBackwardInput { dy, w, p } => vec![
            want(0, &|| g.conv2d(w, p))?,
            want(1, &|| dy.conv2d_backward_weight(g, w.shape(), p))?,
        ],
        // y = bwd_weight(dy, x); <g, y> = <dy, conv(x, g)>: d/ddy = conv(x, g), d/dx = bwd_input(dy, g).
        Conv2dBackwardWeight { dy, x, p } => vec![
            want(0, &|| x.conv2d(g, p))?,
            want(1, &|| dy.conv2d_backward_input(g, x.shape(), p))?,
        ],

        MaxPool2d { x, argmax, p } => {
            let dx = g.array().max_pool2d_backward(argmax, x.shape(), p)?;
            vec![Some(Tensor::from_op(dx, &[g], || MaxPool2dBackward {
                dy: g.clone(),
                argmax: argmax.clone(),
            }))]
        }
        // dx = scatter of dy at the argmax; its adjoint gathers g at the argmax in each plane.
        MaxPool2dBackward { dy, argmax } => {
            let (s, a) = (g.shape(), argmax.shape());
            let planes = s[0] * s[1];
            let idx = Tensor::from_array(argmax.reshape(&[planes, a[2] * a[3]])?);
            let gg = g.reshape(&[planes, s[2] * s[3]])?.gather(1, &idx)?;
            vec![Some(gg.reshape(dy.shape())?)]
        }
        AvgPool2d(x, p) => {
            let dx = g.array().avg_pool2d_backward(x.shape(), p)?;
            vec![Some(Tensor::from_op(dx, &[g], || {
                AvgPool2dBackward(g.clone(), *p)
            }))]
        }
        AvgPool2dBackward(_, p) => vec![Some(g.avg_pool2d(p)?)],

        // L = mean_r (logsumexp(x_r) - x_r[l_r]): dL/dx = (softmax(x) - onehot(l)) / N, times g.
        // Recorded (create_graph) it is composed of differentiable ops; otherwise one kernel.
        CrossEntropy { logits, labels } => {
            let (n, classes) = (logits.shape()[0], logits.shape()[1]);
            let scale = 1.0 / n.max(1) as f32;
            if crate::tensor::is_grad_enabled() {
                let onehot = Tensor::from_array(labels.one_hot(classes)?);
                let d = logits.softmax(-1)?.sub(&onehot)?.mul_scalar(scale)?;
                vec![Some(d.mul(g)?)]
            } else {
                let d = logits
                    .array()
                    .cross_entropy_rows_grad(labels, g.array(), scale)?;
                vec![Some(Tensor::from_array(d))]
            }
        }
    })
}
