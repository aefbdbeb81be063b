//! Launcher for `shaders/pool.wgsl`: max and average pooling, forward and backward.

use bytemuck::{Pod, Zeroable};

use super::conv::out_extent;
use super::{Kernel, groups};
use crate::array::{DType, GpuArray};
use crate::context::{ro, rw};
use crate::error::{DeviceError, Result};

/// Window, stride and padding of a 2-D pooling, (height, width) pairs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pool2dParams {
    pub kernel: (usize, usize),
    pub stride: (usize, usize),
    pub padding: (usize, usize),
}

impl Pool2dParams {
    /// A k x k window with stride k and no padding (the usual "pool by k").
    pub fn square(k: usize) -> Self {
        Self {
            kernel: (k, k),
            stride: (k, k),
            padding: (0, 0),
        }
    }
}

/// Elements per invocation, along a row (`SEG` in the shader).
const SEG: usize = 4;

/// What varies per call without a new pipeline; the geometry is in [`Plan::constants`].
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Params {
    planes: u32,
    total: u32,
    _p0: u32,
    _p1: u32,
}

/// The geometry of one pooling, passed to the shader as override constants (a pipeline per shape).
struct Plan {
    planes: usize,
    h: usize,
    w: usize,
    oh: usize,
    ow: usize,
    pp: Pool2dParams,
}

impl Plan {
    fn constants(&self) -> [(&'static str, f64); 10] {
        let f = |v: usize| v as f64;
        [
            ("H", f(self.h)),
            ("W", f(self.w)),
            ("OH", f(self.oh)),
            ("OW", f(self.ow)),
            ("KH", f(self.pp.kernel.0)),
            ("KW", f(self.pp.kernel.1)),
            ("SH", f(self.pp.stride.0)),
            ("SW", f(self.pp.stride.1)),
            ("PH", f(self.pp.padding.0)),
            ("PW", f(self.pp.padding.1)),
        ]
    }

    /// Forward invocations: one per segment of 4 outputs of a row (see the shader).
    fn fwd_total(&self) -> usize {
        self.planes * self.oh * self.ow.div_ceil(SEG)
    }

    /// Backward invocations: one per segment of 4 inputs of a row.
    fn bwd_total(&self) -> usize {
        self.planes * self.h * self.w.div_ceil(SEG)
    }

    /// Whether the forward may read x as vec4s (the `_v4` entry points): every segment's span of
    /// input columns then starts on a vec4.
    fn fwd_vec4(&self) -> bool {
        self.w.is_multiple_of(4) && self.pp.padding.1 == 0
    }

    /// Whether the backward may write dx as vec4s: every row is whole segments.
    fn bwd_vec4(&self) -> bool {
        self.w.is_multiple_of(4)
    }

    /// Params for a dispatch of `total` invocations.
    fn params(&self, total: usize) -> Params {
        Params {
            planes: self.planes as u32,
            total: total as u32,
            _p0: 0,
            _p1: 0,
        }
    }
}

/// x: [N, C, H, W] -> the plan and the output shape [N, C, OH, OW].
fn plan(op: &'static str, x: &[usize], pp: &Pool2dParams) -> Result<(Plan, Vec<usize>)> {
    let bad = |reason: String| DeviceError::InvalidShape {
        op,
        shape: x.to_vec(),
        reason,
    };
    if x.len() != 4 {
        return Err(bad("expected [N, C, H, W]".into()));
    }
    let (kh, kw) = pp.kernel;
    if pp.padding.0 * 2 > kh || pp.padding.1 * 2 > kw {
        return Err(bad(format!(
            "padding {:?} exceeds half the window {:?}",
            pp.padding, pp.kernel
        )));
    }
    let oh = out_extent(x[2], kh, pp.stride.0, pp.padding.0, 1);
    let ow = out_extent(x[3], kw, pp.stride.1, pp.padding.1, 1);
    let (Some(oh), Some(ow)) = (oh, ow) else {
        return Err(bad(format!("window {pp:?} does not fit")));
    };
    let plan = Plan {
        planes: x[0] * x[1],
        h: x[2],
        w: x[3],
        oh,
        ow,
        pp: *pp,
    };
    Ok((plan, vec![x[0], x[1], oh, ow]))
}

fn check_dy(op: &'static str, dy: &GpuArray, want: &[usize]) -> Result<()> {
    if dy.shape != want {
        return Err(DeviceError::ShapeMismatch {
            op,
            lhs: dy.shape.clone(),
            rhs: want.to_vec(),
            detail: ": dy does not match the forward output".into(),
        });
    }
    Ok(())
}

impl GpuArray {
    /// Max pooling. x: [N, C, H, W] -> (y [N, C, OH, OW], argmax [N, C, OH, OW] u32 within each plane).
    pub fn max_pool2d(&self, pp: &Pool2dParams) -> Result<(GpuArray, GpuArray)> {
        self.expect_dtype("max_pool2d", DType::F32)?;
        let (plan, out_shape) = plan("max_pool2d", &self.shape, pp)?;
        let y = GpuArray::uninit(&self.dev, "max_pool2d", &out_shape, DType::F32)?;
        let arg = GpuArray::uninit(&self.dev, "max_pool2d", &out_shape, DType::U32)?;
        let total = plan.fwd_total();
        self.dev.dispatch(
            Kernel::Pool,
            if plan.fwd_vec4() {
                "max_forward_v4"
            } else {
                "max_forward"
            },
            &plan.constants(),
            &plan.params(total),
            &[rw(1, &y.buf), rw(2, &arg.buf), ro(3, &self.buf)],
            groups(total),
        )?;
        Ok((y, arg))
    }

    /// dx of max pooling: self = dy, `argmax` from the forward, x_shape the forward input's shape.
    pub fn max_pool2d_backward(
        &self,
        argmax: &GpuArray,
        x_shape: &[usize],
        pp: &Pool2dParams,
    ) -> Result<GpuArray> {
        self.expect_dtype("max_pool2d_backward", DType::F32)?;
        argmax.expect_dtype("max_pool2d_backward", DType::U32)?;
        self.same_device("max_pool2d_backward", argmax)?;
        let (plan, out_shape) = plan("max_pool2d_backward", x_shape, pp)?;
        check_dy("max_pool2d_backward", self, &out_shape)?;
        check_dy("max_pool2d_backward", argmax, &out_shape)?;
        let dx = GpuArray::uninit(&self.dev, "max_pool2d_backward", x_shape, DType::F32)?;
        let total = plan.bwd_total();
        self.dev.dispatch(
            Kernel::Pool,
            if plan.bwd_vec4() {
                "max_backward_v4"
            } else {
                "max_backward"
            },
            &plan.constants(),
            &plan.params(total),
            &[rw(1, &dx.buf), ro(3, &self.buf), ro(4, &argmax.buf)],
            groups(total),
        )?;
        Ok(dx)
    }

    /// Average pooling (padding counted in the divisor). x: [N, C, H, W] -> [N, C, OH, OW].
    pub fn avg_pool2d(&self, pp: &Pool2dParams) -> Result<GpuArray> {
        self.expect_dtype("avg_pool2d", DType::F32)?;
        let (plan, out_shape) = plan("avg_pool2d", &self.shape, pp)?;
        let y = GpuArray::uninit(&self.dev, "avg_pool2d", &out_shape, DType::F32)?;
        let total = plan.fwd_total();
        self.dev.dispatch(
            Kernel::Pool,
            if plan.fwd_vec4() {
                "avg_forward_v4"
            } else {
                "avg_forward"
            },
            &plan.constants(),
            &plan.params(total),
            &[rw(1, &y.buf), ro(3, &self.buf)],
            groups(total),
        )?;
        Ok(y)
    }

    /// dx of average pooling: self = dy [N, C, OH, OW], x_shape the forward input's shape.
    pub fn avg_pool2d_backward(&self, x_shape: &[usize], pp: &Pool2dParams) -> Result<GpuArray> {
        self.expect_dtype("avg_pool2d_backward", DType::F32)?;
        let (plan, out_shape) = plan("avg_pool2d_backward", x_shape, pp)?;
        check_dy("avg_pool2d_backward", self, &out_shape)?;
        let dx = GpuArray::uninit(&self.dev, "avg_pool2d_backward", x_shape, DType::F32)?;
        let total = plan.bwd_total();
        self.dev.dispatch(
            Kernel::Pool,
            if plan.bwd_vec4() {
                "avg_backward_v4"
            } else {
                "avg_backward"
            },
            &plan.constants(),
            &plan.params(total),
            &[rw(1, &dx.buf), ro(3, &self.buf)],
            groups(total),
        )?;
        Ok(dx)
    }
}
