//! Launcher for `shaders/matmul.wgsl`: batched matmul, broadcast batch dims, transposes by strides.

use bytemuck::{Pod, Zeroable};

use super::{Kernel, MAX_DIMS, contiguous_strides, pack};
use crate::array::{DType, GpuArray};
use crate::context::{ro, rw};
use crate::error::{DeviceError, Result};
use crate::kernels::binary::broadcast_shapes;

/// Whether an operand is used as stored or transposed (its last two dims swapped), without a copy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Transpose {
    #[default]
    No,
    Yes,
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Params {
    m: u32,
    n: u32,
    k: u32,
    batch: u32,
    a_rs: u32,
    a_cs: u32,
    b_rs: u32,
    b_cs: u32,
    tiles_m: u32,
    tiles_n: u32,
    nbd: u32,
    _p0: u32,
    bshape: [u32; MAX_DIMS],
    a_bs: [u32; MAX_DIMS],
    b_bs: [u32; MAX_DIMS],
}

/// Rows, cols as used, and (row stride, col stride) as stored, of a matrix operand.
fn operand(shape: &[usize], t: Transpose) -> (usize, usize, usize, usize) {
    let (r, c) = (shape[shape.len() - 2], shape[shape.len() - 1]);
    match t {
        Transpose::No => (r, c, c, 1),
        Transpose::Yes => (c, r, 1, c),
    }
}

/// Batch strides of an operand broadcast to `out_batch` (0 on broadcast dims).
fn batch_strides(shape: &[usize], out_batch: &[usize]) -> Vec<usize> {
    let batch = &shape[..shape.len() - 2];
    let mat = shape[shape.len() - 2] * shape[shape.len() - 1];
    let cs: Vec<usize> = contiguous_strides(batch).iter().map(|s| s * mat).collect();
    let off = out_batch.len() - batch.len();
    (0..out_batch.len())
        .map(|i| {
            if i < off || batch[i - off] == 1 {
                0
            } else {
                cs[i - off]
            }
        })
        .collect()
}

impl GpuArray {
    /// `op(a) @ op(b)` for a: [.., M, K], b: [.., K, N] (after the optional transposes), batch dims
    /// broadcast NumPy-style. 1-D operands are not promoted here; the graph crate does that.
    pub fn matmul(&self, b: &GpuArray, ta: Transpose, tb: Transpose) -> Result<GpuArray> {
        let a = self;
        a.expect_dtype("matmul", DType::F32)?;
        b.expect_dtype("matmul", DType::F32)?;
        a.same_device("matmul", b)?;
        let mismatch = |detail: &str| DeviceError::ShapeMismatch {
            op: "matmul",
            lhs: a.shape.clone(),
            rhs: b.shape.clone(),
            detail: detail.into(),
        };
        if a.shape.len() < 2 || b.shape.len() < 2 {
            return Err(mismatch(": both operands need at least 2 dims"));
        }
        let (m, k, a_rs, a_cs) = operand(&a.shape, ta);
        let (k2, n, b_rs, b_cs) = operand(&b.shape, tb);
        if k != k2 {
            return Err(mismatch(&format!(": inner dims {k} and {k2} differ")));
        }
        let batch_shape = broadcast_shapes(
            "matmul",
            &[&a.shape[..a.shape.len() - 2], &b.shape[..b.shape.len() - 2]],
        )?;
        if batch_shape.len() > MAX_DIMS {
            return Err(mismatch(": more than 8 batch dims"));
        }
        let batch: usize = batch_shape.iter().product();
        let mut out_shape = batch_shape.clone();
        out_shape.extend([m, n]);
        let out = GpuArray::uninit(&a.dev, "matmul", &out_shape, DType::F32)?;
        if out.numel() == 0 {
            return Ok(out);
        }
        if k == 0 {
            return GpuArray::zeros(&a.dev, &out_shape);
        }
        let (tiles_m, tiles_n) = (m.div_ceil(32), n.div_ceil(32));
        let params = Params {
            m: m as u32,
            n: n as u32,
            k: k as u32,
            batch: batch as u32,
            a_rs: a_rs as u32,
            a_cs: a_cs as u32,
            b_rs: b_rs as u32,
            b_cs: b_cs as u32,
            tiles_m: tiles_m as u32,
            tiles_n: tiles_n as u32,
            nbd: batch_shape.len() as u32,
            _p0: 0,
            bshape: pack(&batch_shape),
            a_bs: pack(&batch_strides(&a.shape, &batch_shape)),
            b_bs: pack(&batch_strides(&b.shape, &batch_shape)),
        };
        a.dev.dispatch(
            Kernel::Matmul,
            "main",
            &[],
            &params,
            &[rw(1, &out.buf), ro(2, &a.buf), ro(3, &b.buf)],
            (batch * tiles_m * tiles_n) as u64,
        )?;
        Ok(out)
    }
}
