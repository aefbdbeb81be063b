//! Launcher for `shaders/conv.wgsl`: conv2d forward and its input and weight gradients.

use bytemuck::{Pod, Zeroable};

use super::{Kernel, groups};
use crate::array::{DType, GpuArray};
use crate::context::{ro, rw};
use crate::error::{DeviceError, Result};

/// Hyper-parameters of a 2-D convolution, (height, width) pairs as in PyTorch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv2dParams {
    pub stride: (usize, usize),
    pub padding: (usize, usize),
    pub dilation: (usize, usize),
    pub groups: usize,
}

impl Default for Conv2dParams {
    fn default() -> Self {
        Self {
            stride: (1, 1),
            padding: (0, 0),
            dilation: (1, 1),
            groups: 1,
        }
    }
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable, Default)]
struct Params {
    n: u32,
    c_in: u32,
    h: u32,
    w: u32,
    c_out: u32,
    oh: u32,
    ow: u32,
    kh: u32,
    kw: u32,
    sh: u32,
    sw: u32,
    ph: u32,
    pw: u32,
    dh: u32,
    dw: u32,
    groups: u32,
    total: u32,
    _p: [u32; 3],
}

/// Output extent of a convolution or pooling window along one dim, if positive.
/// `None` for a zero window, stride or dilation (checked before `k - 1` is formed) and on overflow.
pub(crate) fn out_extent(
    input: usize,
    k: usize,
    stride: usize,
    pad: usize,
    dil: usize,
) -> Option<usize> {
    if k == 0 || stride == 0 || dil == 0 {
        return None;
    }
    let span = dil.checked_mul(k - 1)?.checked_add(1)?;
    let padded = pad.checked_mul(2)?.checked_add(input)?;
    (padded >= span).then(|| (padded - span) / stride + 1)
}

/// Validates x: [N, C_in, H, W] against w: [C_out, C_in/g, KH, KW] and returns the kernel params.
fn plan(x: &[usize], w: &[usize], cp: &Conv2dParams) -> Result<Params> {
    let bad = |detail: String| DeviceError::ShapeMismatch {
        op: "conv2d",
        lhs: x.to_vec(),
        rhs: w.to_vec(),
        detail,
    };
    if x.len() != 4 || w.len() != 4 {
        return Err(bad(
            ": expected x [N, C, H, W] and w [C_out, C_in/groups, KH, KW]".into(),
        ));
    }
    let g = cp.groups;
    if g == 0 || x[1] % g != 0 || w[0] % g != 0 || w[1] * g != x[1] {
        return Err(bad(format!(": channels do not split into {g} groups")));
    }
    if cp.dilation.0 == 0 || cp.dilation.1 == 0 {
        return Err(bad(": dilation must be at least 1".into()));
    }
    let oh = out_extent(x[2], w[2], cp.stride.0, cp.padding.0, cp.dilation.0);
    let ow = out_extent(x[3], w[3], cp.stride.1, cp.padding.1, cp.dilation.1);
    let (Some(oh), Some(ow)) = (oh, ow) else {
        return Err(bad(format!(
            ": the kernel does not fit the padded input ({cp:?})"
        )));
    };
    Ok(Params {
        n: x[0] as u32,
        c_in: x[1] as u32,
        h: x[2] as u32,
        w: x[3] as u32,
        c_out: w[0] as u32,
        oh: oh as u32,
        ow: ow as u32,
        kh: w[2] as u32,
        kw: w[3] as u32,
        sh: cp.stride.0 as u32,
        sw: cp.stride.1 as u32,
        ph: cp.padding.0 as u32,
        pw: cp.padding.1 as u32,
        dh: cp.dilation.0 as u32,
        dw: cp.dilation.1 as u32,
        groups: g as u32,
        ..Default::default()
    })
}

fn run(
    entry: &'static str,
    mut p: Params,
    out_shape: &[usize],
    in0: &GpuArray,
    in1: &GpuArray,
) -> Result<GpuArray> {
    for t in [in0, in1] {
        t.expect_dtype("conv2d", DType::F32)?;
        in0.same_device("conv2d", t)?;
    }
    let out = GpuArray::uninit(&in0.dev, "conv2d", out_shape, DType::F32)?;
    let total = out.numel();
    p.total = total as u32;
    in0.dev.dispatch(
        Kernel::Conv,
        entry,
        &[],
        &p,
        &[rw(1, &out.buf), ro(2, &in0.buf), ro(3, &in1.buf)],
        groups(total),
    )?;
    Ok(out)
}

impl GpuArray {
    /// y = conv2d(x, w). x: [N, C_in, H, W], w: [C_out, C_in/groups, KH, KW] -> [N, C_out, OH, OW].
    pub fn conv2d(&self, w: &GpuArray, cp: &Conv2dParams) -> Result<GpuArray> {
        let p = plan(&self.shape, &w.shape, cp)?;
        let out = [self.shape[0], w.shape[0], p.oh as usize, p.ow as usize];
        run("forward", p, &out, self, w)
    }

    /// dx of conv2d: self = dy [N, C_out, OH, OW], w as in forward, x_shape = [N, C_in, H, W].
    pub fn conv2d_backward_input(
        &self,
        w: &GpuArray,
        x_shape: &[usize],
        cp: &Conv2dParams,
    ) -> Result<GpuArray> {
        let p = plan(x_shape, &w.shape, cp)?;
        self.check_dy(x_shape, &w.shape, &p)?;
        run("backward_input", p, x_shape, self, w)
    }

    /// dw of conv2d: self = dy [N, C_out, OH, OW], x the forward input, w_shape as in forward.
    pub fn conv2d_backward_weight(
        &self,
        x: &GpuArray,
        w_shape: &[usize],
        cp: &Conv2dParams,
    ) -> Result<GpuArray> {
        let p = plan(&x.shape, w_shape, cp)?;
        self.check_dy(&x.shape, w_shape, &p)?;
        run("backward_weight", p, w_shape, self, x)
    }

    fn check_dy(&self, x: &[usize], w: &[usize], p: &Params) -> Result<()> {
        let want = [x[0], w[0], p.oh as usize, p.ow as usize];
        if self.shape != want {
            return Err(DeviceError::ShapeMismatch {
                op: "conv2d_backward",
                lhs: self.shape.clone(),
                rhs: want.to_vec(),
                detail: ": dy does not match the forward output".into(),
            });
        }
        Ok(())
    }
}
