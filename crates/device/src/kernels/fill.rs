//! Launcher for `shaders/fill.wgsl`: full, arange, one-hot.

use bytemuck::{Pod, Zeroable};

use super::{Kernel, groups, wide};
use crate::array::{DType, GpuArray};
use crate::context::{Device, ro, rw};
use crate::error::{DeviceError, Result};

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable, Default)]
struct Params {
    n: u32,
    word: u32,
    start: f32,
    step: f32,
    classes: u32,
    _p: [u32; 3],
}

impl GpuArray {
    /// An f32 array of `shape` filled with `value`.
    pub fn full(dev: &Device, shape: &[usize], value: f32) -> Result<GpuArray> {
        Self::fill_words(dev, shape, DType::F32, value.to_bits())
    }

    pub fn zeros(dev: &Device, shape: &[usize]) -> Result<GpuArray> {
        Self::full(dev, shape, 0.0)
    }

    /// An array of any dtype filled with the given 32-bit pattern.
    pub(crate) fn fill_words(
        dev: &Device,
        shape: &[usize],
        dtype: DType,
        word: u32,
    ) -> Result<GpuArray> {
        let out = GpuArray::uninit(dev, "full", shape, dtype)?;
        let n = out.numel();
        if wide::fill(dev, &out.buf, n, word)? {
            return Ok(out);
        }
        let params = Params {
            n: n as u32,
            word,
            ..Default::default()
        };
        dev.dispatch(
            Kernel::Fill,
            "fill",
            &[],
            &params,
            &[rw(1, &out.buf)],
            groups(n.div_ceil(4)),
        )?;
        Ok(out)
    }

    /// `[start, start + step, ...]`, `n` values (f32).
    pub fn arange(dev: &Device, start: f32, step: f32, n: usize) -> Result<GpuArray> {
        let out = GpuArray::uninit(dev, "arange", &[n], DType::F32)?;
        let params = Params {
            n: n as u32,
            start,
            step,
            ..Default::default()
        };
        dev.dispatch(
            Kernel::Fill,
            "arange",
            &[],
            &params,
            &[rw(1, &out.buf)],
            groups(n.div_ceil(4)),
        )?;
        Ok(out)
    }

    /// labels: `[m]` u32 -> `[m, classes]` f32 with a 1 at each label.
    pub fn one_hot(&self, classes: usize) -> Result<GpuArray> {
        self.expect_dtype("one_hot", DType::U32)?;
        if self.shape.len() != 1 || classes == 0 {
            return Err(DeviceError::InvalidShape {
                op: "one_hot",
                shape: self.shape.clone(),
                reason: format!("expected 1-D labels and classes > 0 (got {classes})"),
            });
        }
        self.check_indices("one_hot", classes)?;
        let m = self.shape[0];
        let out = GpuArray::uninit(&self.dev, "one_hot", &[m, classes], DType::F32)?;
        let n = m * classes;
        let params = Params {
            n: n as u32,
            classes: classes as u32,
            ..Default::default()
        };
        self.dev.dispatch(
            Kernel::Fill,
            "one_hot",
            &[],
            &params,
            &[rw(1, &out.buf), ro(2, &self.buf)],
            groups(n),
        )?;
        Ok(out)
    }
}
