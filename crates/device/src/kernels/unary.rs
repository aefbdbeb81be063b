//! Launcher for `shaders/unary.wgsl`: element-wise unary ops and scalar variants.

use bytemuck::{Pod, Zeroable};

use super::{Kernel, groups, wide};
use crate::array::{DType, GpuArray};
use crate::context::{Device, ro, rw};
use crate::error::Result;
use crate::pool::PooledBuffer;

/// Element-wise unary ops. Scalar variants carry their scalar.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum UnaryOp {
    Neg,
    Abs,
    Sign,
    Exp,
    Log,
    Sqrt,
    Rsqrt,
    Recip,
    Square,
    Sin,
    Cos,
    Relu,
    LeakyRelu(f32),
    Elu(f32),
    /// GELU in its tanh form (PyTorch's `approximate="tanh"`).
    Gelu,
    Sigmoid,
    Tanh,
    Softplus,
    AddScalar(f32),
    MulScalar(f32),
    PowScalar(f32),
    MaxScalar(f32),
    MinScalar(f32),
    Clamp(f32, f32),
    GtScalar(f32),
    GeScalar(f32),
    LtScalar(f32),
    LeScalar(f32),
    EqScalar(f32),
    NeScalar(f32),
    /// `s ** x`
    ScalarPow(f32),
}

impl UnaryOp {
    /// Whether the op reads its scalars (alpha, beta).
    pub(crate) fn has_scalars(self) -> bool {
        use UnaryOp::*;
        matches!(
            self,
            LeakyRelu(_)
                | Elu(_)
                | AddScalar(_)
                | MulScalar(_)
                | PowScalar(_)
                | MaxScalar(_)
                | MinScalar(_)
                | Clamp(..)
                | GtScalar(_)
                | GeScalar(_)
                | LtScalar(_)
                | LeScalar(_)
                | EqScalar(_)
                | NeScalar(_)
                | ScalarPow(_)
        )
    }

    /// (OP code in the WGSL switch, alpha, beta)
    pub(crate) fn code(self) -> (u32, f32, f32) {
        use UnaryOp::*;
        match self {
            Neg => (0, 0.0, 0.0),
            Abs => (1, 0.0, 0.0),
            Sign => (2, 0.0, 0.0),
            Exp => (3, 0.0, 0.0),
            Log => (4, 0.0, 0.0),
            Sqrt => (5, 0.0, 0.0),
            Rsqrt => (6, 0.0, 0.0),
            Recip => (7, 0.0, 0.0),
            Square => (8, 0.0, 0.0),
            Sin => (9, 0.0, 0.0),
            Cos => (10, 0.0, 0.0),
            Relu => (11, 0.0, 0.0),
            LeakyRelu(a) => (12, a, 0.0),
            Elu(a) => (13, a, 0.0),
            Gelu => (14, 0.0, 0.0),
            Sigmoid => (15, 0.0, 0.0),
            Tanh => (16, 0.0, 0.0),
            Softplus => (17, 0.0, 0.0),
            AddScalar(a) => (18, a, 0.0),
            MulScalar(a) => (19, a, 0.0),
            PowScalar(a) => (20, a, 0.0),
            MaxScalar(a) => (21, a, 0.0),
            MinScalar(a) => (22, a, 0.0),
            Clamp(lo, hi) => (23, lo, hi),
            GtScalar(a) => (24, a, 0.0),
            GeScalar(a) => (25, a, 0.0),
            LtScalar(a) => (26, a, 0.0),
            LeScalar(a) => (27, a, 0.0),
            EqScalar(a) => (28, a, 0.0),
            NeScalar(a) => (29, a, 0.0),
            ScalarPow(a) => (30, a, 0.0),
        }
    }
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Params {
    n: u32,
    alpha: f32,
    beta: f32,
    _pad: u32,
}

/// Records y = op(x) over the first `n` elements of two buffers: the wide kernel where it fits,
/// else `main4`. The path of a lone unary op, fused or not.
pub(crate) fn record(
    dev: &Device,
    x: &PooledBuffer,
    y: &PooledBuffer,
    n: usize,
    op: UnaryOp,
) -> Result<()> {
    let (code, alpha, beta) = op.code();
    let constants = [("OP", f64::from(code))];
    if wide::unary(dev, x, y, n, &constants, [alpha, beta, 0.0, 0.0])? {
        return Ok(());
    }
    let params = Params {
        n: n as u32,
        alpha,
        beta,
        _pad: 0,
    };
    // Four elements per invocation (vec4 loads): a quarter of the workgroups.
    dev.dispatch(
        Kernel::Unary,
        "main4",
        &constants,
        &params,
        &[rw(1, y), ro(2, x)],
        groups(n.div_ceil(4)),
    )
}

impl GpuArray {
    /// y = op(x), element-wise. x, y: any shape. Joins the device's pending fused program when
    /// fusion is on (see `Device::set_fusion`).
    pub fn unary(&self, op: UnaryOp) -> Result<GpuArray> {
        self.expect_dtype("unary", DType::F32)?;
        let out = GpuArray::uninit(&self.dev, "unary", &self.shape, DType::F32)?;
        let n = self.numel();
        if !self.dev.fuse_unary(&self.buf, &out.buf, n, op)? {
            record(&self.dev, &self.buf, &out.buf, n, op)?;
        }
        Ok(out)
    }
}
