//! Launcher for `shaders/binary.wgsl`: element-wise binary ops with NumPy broadcasting, and `where`.

use bytemuck::{Pod, Zeroable};

use super::UnaryOp;
use super::{Kernel, MAX_DIMS, contiguous_strides, groups, pack, wide};
use crate::array::{DType, GpuArray};
use crate::context::{Device, ro, rw};
use crate::error::{DeviceError, Result};
use crate::pool::PooledBuffer;

/// Element-wise binary ops. Comparisons produce 1.0 where true and 0.0 where false.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinaryOp {
    Add,
    Sub,
    Mul,
    Div,
    Pow,
    Max,
    Min,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl BinaryOp {
    pub(crate) fn code(self) -> u32 {
        self as u32
    }
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Params {
    n: u32,
    rank: u32,
    _p: [u32; 2],
    /// Scalars of the fused unary epilogue: (alpha, beta) of the first op, then of the second.
    post: [f32; 4],
    shape: [u32; MAX_DIMS],
    sa: [u32; MAX_DIMS],
    sb: [u32; MAX_DIMS],
    sc: [u32; MAX_DIMS],
}

/// The NumPy broadcast of several shapes, or a `ShapeMismatch` naming `op`.
pub fn broadcast_shapes(op: &'static str, shapes: &[&[usize]]) -> Result<Vec<usize>> {
    let rank = shapes.iter().map(|s| s.len()).max().unwrap_or(0);
    let mut out = vec![1usize; rank];
    for s in shapes {
        for (i, &d) in s.iter().enumerate() {
            let o = &mut out[rank - s.len() + i];
            if *o == 1 {
                *o = d;
            } else if d != 1 && d != *o {
                return Err(DeviceError::ShapeMismatch {
                    op,
                    lhs: shapes[0].to_vec(),
                    rhs: s.to_vec(),
                    detail: " for broadcasting".into(),
                });
            }
        }
    }
    Ok(out)
}

/// Strides to read an input of `shape` as if broadcast to `out` (0 on broadcast dims).
pub(crate) fn broadcast_strides(shape: &[usize], out: &[usize]) -> Vec<usize> {
    let cs = contiguous_strides(shape);
    let off = out.len() - shape.len();
    (0..out.len())
        .map(|i| {
            if i < off || shape[i - off] == 1 {
                0
            } else {
                cs[i - off]
            }
        })
        .collect()
}

/// Drops size-1 dims and merges neighbouring dims that every operand walks contiguously (the same
/// layout, fewer dims), e.g. [N, C, H, W] with a bias [1, C, 1, 1] -> [N, C, H W]. Returns the
/// shape and each operand's strides; at least one dim.
pub(crate) fn collapse(shape: &[usize], strides: &[Vec<usize>]) -> (Vec<usize>, Vec<Vec<usize>>) {
    let mut out_shape: Vec<usize> = Vec::new();
    let mut out_strides: Vec<Vec<usize>> = vec![Vec::new(); strides.len()];
    for d in (0..shape.len()).filter(|&d| shape[d] != 1) {
        let mergeable = !out_shape.is_empty()
            && strides
                .iter()
                .zip(&out_strides)
                .all(|(s, o)| o.last().copied() == Some(s[d] * shape[d]));
        if mergeable {
            *out_shape.last_mut().expect("non-empty") *= shape[d];
            for (s, o) in strides.iter().zip(&mut out_strides) {
                *o.last_mut().expect("non-empty") = s[d];
            }
        } else {
            out_shape.push(shape[d]);
            for (s, o) in strides.iter().zip(&mut out_strides) {
                o.push(s[d]);
            }
        }
    }
    if out_shape.is_empty() {
        return (vec![1], vec![vec![0]; strides.len()]);
    }
    (out_shape, out_strides)
}

fn check_rank(op: &'static str, shape: &[usize]) -> Result<()> {
    if shape.len() > MAX_DIMS {
        return Err(DeviceError::InvalidShape {
            op,
            shape: shape.to_vec(),
            reason: format!("rank above {MAX_DIMS}"),
        });
    }
    Ok(())
}

/// The override constants (OP, and POST0 / POST1 for the fused unary ops) and the epilogue's
/// scalars of `binary_then`.
fn epilogue(op: BinaryOp, post: &[UnaryOp]) -> (Vec<(&'static str, f64)>, [f32; 4]) {
    let mut scalars = [0f32; 4];
    let mut constants = vec![("OP", f64::from(op.code()))];
    for (i, u) in post.iter().enumerate() {
        let (code, alpha, beta) = u.code();
        constants.push((["POST0", "POST1"][i], f64::from(code)));
        scalars[2 * i] = alpha;
        scalars[2 * i + 1] = beta;
    }
    (constants, scalars)
}

/// Records y = post(op(a, b)) over the first `n` elements of three buffers (operands of one
/// shape): the wide kernel where it fits, else `same`. The path of a lone binary op, fused or not.
pub(crate) fn record_same(
    dev: &Device,
    a: &PooledBuffer,
    b: &PooledBuffer,
    y: &PooledBuffer,
    n: usize,
    op: BinaryOp,
    post: &[UnaryOp],
) -> Result<()> {
    let (constants, scalars) = epilogue(op, post);
    if wide::binary(dev, a, b, y, n, &constants, scalars)? {
        return Ok(());
    }
    let params = Params {
        n: n as u32,
        rank: 1,
        _p: [0; 2],
        post: scalars,
        shape: pack(&[n]),
        sa: pack(&[1]),
        sb: pack(&[1]),
        sc: [0; MAX_DIMS],
    };
    dev.dispatch(
        Kernel::Binary,
        "same",
        &constants,
        &params,
        &[rw(1, y), ro(2, a), ro(3, b)],
        groups(n.div_ceil(4)),
    )
}

impl GpuArray {
    /// y = op(a, b) with NumPy broadcasting. y: broadcast(a.shape, b.shape).
    pub fn binary(&self, op: BinaryOp, other: &GpuArray) -> Result<GpuArray> {
        self.binary_then(op, other, &[])
    }

    /// `y = post[1](post[0](op(a, b)))`: a binary op and up to two unary ops in one kernel, one pass
    /// over memory (e.g. `a.binary_then(Mul, &b, &[AddScalar(1.0), Relu])` for relu(a b + 1)).
    pub fn binary_then(
        &self,
        op: BinaryOp,
        other: &GpuArray,
        post: &[UnaryOp],
    ) -> Result<GpuArray> {
        if post.len() > 2 {
            return Err(DeviceError::InvalidArgument {
                op: "binary_then",
                reason: format!("{} fused unary ops; at most 2", post.len()),
            });
        }
        self.expect_dtype("binary", DType::F32)?;
        other.expect_dtype("binary", DType::F32)?;
        self.same_device("binary", other)?;
        let shape = broadcast_shapes("binary", &[&self.shape, &other.shape])?;
        check_rank("binary", &shape)?;
        let out = GpuArray::uninit(&self.dev, "binary", &shape, DType::F32)?;
        let n = out.numel();
        if self.shape == shape && other.shape == shape {
            if !self
                .dev
                .fuse_binary(&self.buf, &other.buf, &out.buf, n, op, post)?
            {
                record_same(&self.dev, &self.buf, &other.buf, &out.buf, n, op, post)?;
            }
            return Ok(out);
        }
        let (cshape, cs) = collapse(
            &shape,
            &[
                broadcast_strides(&self.shape, &shape),
                broadcast_strides(&other.shape, &shape),
            ],
        );
        let inner = cshape.len() - 1;
        // `broadcast4` (four elements per invocation) when the innermost dim holds whole vec4s that
        // each operand reads whole (stride 1) or splats (stride 0).
        let quad = cshape[inner] % 4 == 0 && cs.iter().all(|s| s[inner] <= 1);
        let (mut constants, scalars) = epilogue(op, post);
        let params = Params {
            n: n as u32,
            rank: cshape.len() as u32,
            _p: [0; 2],
            post: scalars,
            shape: pack(&cshape),
            sa: pack(&cs[0]),
            sb: pack(&cs[1]),
            sc: [0; MAX_DIMS],
        };
        let entry = if quad {
            constants.push(("A_VEC", f64::from(u8::from(cs[0][inner] == 1))));
            constants.push(("B_VEC", f64::from(u8::from(cs[1][inner] == 1))));
            constants.push(("RANK", cshape.len() as f64));
            "broadcast4"
        } else {
            "broadcast"
        };
        self.dev.dispatch(
            Kernel::Binary,
            entry,
            &constants,
            &params,
            &[rw(1, &out.buf), ro(2, &self.buf), ro(3, &other.buf)],
            groups(if quad { n.div_ceil(8) } else { n }),
        )?;
        Ok(out)
    }

    /// y = where(cond != 0, a, b) with broadcasting of all three. `self` is the condition.
    pub fn where_(&self, a: &GpuArray, b: &GpuArray) -> Result<GpuArray> {
        for t in [self, a, b] {
            t.expect_dtype("where", DType::F32)?;
            self.same_device("where", t)?;
        }
        let shape = broadcast_shapes("where", &[&self.shape, &a.shape, &b.shape])?;
        check_rank("where", &shape)?;
        let out = GpuArray::uninit(&self.dev, "where", &shape, DType::F32)?;
        let n = out.numel();
        let (cshape, cs) = collapse(
            &shape,
            &[
                broadcast_strides(&a.shape, &shape),
                broadcast_strides(&b.shape, &shape),
                broadcast_strides(&self.shape, &shape),
            ],
        );
        let params = Params {
            n: n as u32,
            rank: cshape.len() as u32,
            _p: [0; 2],
            post: [0.0; 4],
            shape: pack(&cshape),
            sa: pack(&cs[0]),
            sb: pack(&cs[1]),
            sc: pack(&cs[2]),
        };
        self.dev.dispatch(
            Kernel::Binary,
            "select3",
            &[("OP", 0.0)],
            &params,
            &[
                rw(1, &out.buf),
                ro(2, &a.buf),
                ro(3, &b.buf),
                ro(4, &self.buf),
            ],
            groups(n),
        )?;
        Ok(out)
    }
}
