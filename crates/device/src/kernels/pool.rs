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

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Params {
    planes: u32,
    h: u32,
    w: u32,
    oh: u32,
    ow: u32,
    kh: u32,
    kw: u32,
    sh: u32,
    sw: u32,
    ph: u32,
    pw: u32,
    total: u32,
}

/// x: [N, C, H, W] -> params and the output shape [N, C, OH, OW].
fn plan(op: &'static str, x: &[usize], pp: &Pool2dParams) -> Result<(Params, Vec<usize>)> {
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
    let params = Params {
        planes: (x[0] * x[1]) as u32,
        h: x[2] as u32,
        w: x[3] as u32,
        oh: oh as u32,
        ow: ow as u32,
        kh: kh as u32,
        kw: kw as u32,
        sh: pp.stride.0 as u32,
        sw: pp.stride.1 as u32,
        ph: pp.padding.0 as u32,
        pw: pp.padding.1 as u32,
        total: 0,
    };
    Ok((params, vec![x[0], x[1], oh, ow]))
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
        let (mut p, out_shape) = plan("max_pool2d", &self.shape, pp)?;
        let y = GpuArray::uninit(&self.dev, "max_pool2d", &out_shape, DType::F32)?;
        let arg = GpuArray::uninit(&self.dev, "max_pool2d", &out_shape, DType::U32)?;
        let total = y.numel();
        p.total = total as u32;
        self.dev.dispatch(
            Kernel::Pool,
            "max_forward",
            &[],
            &p,
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
        let (mut p, out_shape) = plan("max_pool2d_backward", x_shape, pp)?;
        check_dy("max_pool2d_backward", self, &out_shape)?;
        check_dy("max_pool2d_backward", argmax, &out_shape)?;
        let dx = GpuArray::uninit(&self.dev, "max_pool2d_backward", x_shape, DType::F32)?;
        let total = dx.numel();
        p.total = total as u32;
        self.dev.dispatch(
            Kernel::Pool,
            "max_backward",
            &[],
            &p,
            &[rw(1, &dx.buf), ro(3, &self.buf), ro(4, &argmax.buf)],
            groups(total),
        )?;
        Ok(dx)
    }

    /// Average pooling (padding counted in the divisor). x: [N, C, H, W] -> [N, C, OH, OW].
    pub fn avg_pool2d(&self, pp: &Pool2dParams) -> Result<GpuArray> {
        self.expect_dtype("avg_pool2d", DType::F32)?;
        let (mut p, out_shape) = plan("avg_pool2d", &self.shape, pp)?;
        let y = GpuArray::uninit(&self.dev, "avg_pool2d", &out_shape, DType::F32)?;
        let total = y.numel();
        p.total = total as u32;
        self.dev.dispatch(
            Kernel::Pool,
            "avg_forward",
            &[],
            &p,
            &[rw(1, &y.buf), ro(3, &self.buf)],
            groups(total),
        )?;
        Ok(y)
    }

    /// dx of average pooling: self = dy [N, C, OH, OW], x_shape the forward input's shape.
    pub fn avg_pool2d_backward(&self, x_shape: &[usize], pp: &Pool2dParams) -> Result<GpuArray> {
        self.expect_dtype("avg_pool2d_backward", DType::F32)?;
        let (mut p, out_shape) = plan("avg_pool2d_backward", x_shape, pp)?;
        check_dy("avg_pool2d_backward", self, &out_shape)?;
        let dx = GpuArray::uninit(&self.dev, "avg_pool2d_backward", x_shape, DType::F32)?;
        let total = dx.numel();
        p.total = total as u32;
        self.dev.dispatch(
            Kernel::Pool,
            "avg_backward",
            &[],
            &p,
            &[rw(1, &dx.buf), ro(3, &self.buf)],
            groups(total),
        )?;
        Ok(dx)
    }
}
