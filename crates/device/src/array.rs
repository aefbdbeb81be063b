//! `GpuArray`: a contiguous, row-major block of device memory with a shape and an element type.

use std::sync::Arc;

use crate::context::Device;
use crate::error::{DeviceError, Result};
use crate::pool::PooledBuffer;

/// Element types. Every kernel computes in f32; u32/i32 carry indices and labels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DType {
    F32,
    U32,
    I32,
}

/// Host types that can be uploaded to and read back from a `GpuArray`.
pub trait Element: bytemuck::Pod + Copy + Send + Sync + 'static {
    const DTYPE: DType;
}
impl Element for f32 {
    const DTYPE: DType = DType::F32;
}
impl Element for u32 {
    const DTYPE: DType = DType::U32;
}
impl Element for i32 {
    const DTYPE: DType = DType::I32;
}

/// A tensor's storage on the device. Cloning shares the buffer. Ops always write a fresh buffer;
/// only `write`, `assign` and `optim_update` change one in place (loading checkpoints, running
/// statistics, optimiser steps), and every handle sharing it sees the change.
#[derive(Clone)]
pub struct GpuArray {
    pub(crate) buf: Arc<PooledBuffer>,
    pub(crate) shape: Vec<usize>,
    pub(crate) dtype: DType,
    pub(crate) dev: Device,
    /// For index arrays uploaded from the host: one past the largest value, checked by indexing ops.
    pub(crate) index_bound: Option<u64>,
}

impl std::fmt::Debug for GpuArray {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "GpuArray({:?}, {:?})", self.shape, self.dtype)
    }
}

pub(crate) fn numel(shape: &[usize]) -> usize {
    shape.iter().product()
}

impl GpuArray {
    /// Allocates an uninitialised array (its contents are whatever the pool buffer held).
    pub(crate) fn uninit(
        dev: &Device,
        op: &'static str,
        shape: &[usize],
        dtype: DType,
    ) -> Result<Self> {
        let n = shape
            .iter()
            .try_fold(1usize, |acc, &d| acc.checked_mul(d))
            .ok_or_else(|| DeviceError::InvalidShape {
                op,
                shape: shape.to_vec(),
                reason: "element count overflows".into(),
            })?;
        let bytes = (n as u64) * 4;
        if bytes > dev.max_binding_bytes() {
            return Err(DeviceError::BindingTooLarge {
                op,
                shape: shape.to_vec(),
                bytes,
                limit: dev.max_binding_bytes(),
            });
        }
        if n > u32::MAX as usize {
            return Err(DeviceError::InvalidShape {
                op,
                shape: shape.to_vec(),
                reason: "more than 2^32 elements".into(),
            });
        }
        Ok(Self {
            buf: dev.alloc(bytes),
            shape: shape.to_vec(),
            dtype,
            dev: dev.clone(),
            index_bound: None,
        })
    }

    /// Uploads `data` with the given shape.
    pub fn from_slice<T: Element>(dev: &Device, data: &[T], shape: &[usize]) -> Result<Self> {
        if numel(shape) != data.len() {
            return Err(DeviceError::InvalidShape {
                op: "from_slice",
                shape: shape.to_vec(),
                reason: format!("{} values given", data.len()),
            });
        }
        let mut a = Self::uninit(dev, "from_slice", shape, T::DTYPE)?;
        if T::DTYPE != DType::F32 {
            let words: &[u32] = bytemuck::cast_slice(data);
            // A negative i32 index reads as a huge u32 and so fails the bound check.
            a.index_bound = Some(words.iter().map(|&w| u64::from(w) + 1).max().unwrap_or(0));
        }
        if !data.is_empty() {
            // A buffer from the pool may still be read by recorded, unsubmitted work; a host write
            // would land before it, so submit that work first.
            dev.flush()?;
            dev.queue()
                .write_buffer(a.buf.raw(), 0, bytemuck::cast_slice(data));
        }
        Ok(a)
    }

    /// Overwrites this array's storage in place with host data of the same length (loading a
    /// checkpoint). Every handle sharing the storage sees the new values.
    pub fn write<T: Element>(&self, data: &[T]) -> Result<()> {
        self.expect_dtype("write", T::DTYPE)?;
        if data.len() != self.numel() {
            return Err(DeviceError::InvalidShape {
                op: "write",
                shape: self.shape.clone(),
                reason: format!("{} values given", data.len()),
            });
        }
        if !data.is_empty() {
            self.dev.flush()?;
            self.dev
                .queue()
                .write_buffer(self.buf.raw(), 0, bytemuck::cast_slice(data));
        }
        Ok(())
    }

    /// Reads the array back to the host. This is the only call that waits on the GPU.
    pub fn to_vec<T: Element>(&self) -> Result<Vec<T>> {
        if T::DTYPE != self.dtype {
            return Err(DeviceError::DTypeMismatch {
                op: "to_vec",
                expected: self.dtype,
                got: T::DTYPE,
            });
        }
        let n = self.numel();
        if n == 0 {
            self.dev.flush()?;
            return Ok(Vec::new());
        }
        let bytes = (n * 4) as u64;
        let staging = self.dev.wgpu().create_buffer(&wgpu::BufferDescriptor {
            label: Some("wgrad readback"),
            size: bytes,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let src = self.buf.raw();
        self.dev
            .submit_with(&|enc| enc.copy_buffer_to_buffer(src, 0, &staging, 0, bytes))?;
        let (tx, rx) = futures_intrusive::channel::shared::oneshot_channel();
        staging.map_async(wgpu::MapMode::Read, .., move |r| {
            let _ = tx.send(r);
        });
        self.dev.wait()?;
        match pollster::block_on(rx.receive()) {
            Some(Ok(())) => {}
            Some(Err(e)) => return Err(DeviceError::Readback(e.to_string())),
            None => return Err(DeviceError::Readback("map callback never ran".into())),
        }
        let out = {
            let view = staging
                .get_mapped_range(..)
                .map_err(|e| DeviceError::Readback(e.to_string()))?;
            bytemuck::cast_slice::<u8, T>(&view).to_vec()
        };
        staging.unmap();
        Ok(out)
    }

    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    pub fn dtype(&self) -> DType {
        self.dtype
    }

    pub fn numel(&self) -> usize {
        numel(&self.shape)
    }

    pub fn device(&self) -> &Device {
        &self.dev
    }

    /// Bytes of device memory behind this array (its pool size class).
    pub fn capacity_bytes(&self) -> u64 {
        self.buf.size()
    }

    /// Same data, new shape with the same element count (no copy).
    pub fn reshape(&self, shape: &[usize]) -> Result<Self> {
        if numel(shape) != self.numel() {
            return Err(DeviceError::ShapeMismatch {
                op: "reshape",
                lhs: self.shape.clone(),
                rhs: shape.to_vec(),
                detail: ": element counts differ".into(),
            });
        }
        Ok(Self {
            shape: shape.to_vec(),
            ..self.clone()
        })
    }

    pub(crate) fn expect_dtype(&self, op: &'static str, dtype: DType) -> Result<()> {
        if self.dtype != dtype {
            return Err(DeviceError::DTypeMismatch {
                op,
                expected: dtype,
                got: self.dtype,
            });
        }
        Ok(())
    }

    pub(crate) fn same_device(&self, op: &'static str, other: &GpuArray) -> Result<()> {
        if !self.dev.same(&other.dev) {
            return Err(DeviceError::DeviceMismatch { op });
        }
        Ok(())
    }

    /// Checks host-known index values against a dimension of size `size`.
    pub(crate) fn check_indices(&self, op: &'static str, size: usize) -> Result<()> {
        if let Some(bound) = self.index_bound
            && bound > size as u64
        {
            return Err(DeviceError::IndexOutOfRange {
                op,
                index: bound - 1,
                size,
            });
        }
        Ok(())
    }
}
