//! wgrad's device crate: the wgpu context, buffer pool, pipeline cache, and one launcher per WGSL
//! kernel family in `shaders/`.
//!
//! Work is recorded, not run, when an op returns: dispatches go into one command encoder that is
//! submitted when a result is read back (or the parameter arena fills). Element-wise ops go one
//! step further: unary ops and binary ops on operands of one shape are gathered into a fused
//! program that runs as one generated kernel before any other work (`Device::set_fusion`), and
//! intermediate results that no array holds any more are never written.
//!
//! ```no_run
//! use wgrad_device::{Device, GpuArray, BinaryOp};
//! let dev = Device::new()?;
//! let a = GpuArray::from_slice(&dev, &[1.0f32, 2.0, 3.0], &[3])?;
//! let b = GpuArray::from_slice(&dev, &[10.0f32], &[1])?;
//! assert_eq!(a.binary(BinaryOp::Add, &b)?.to_vec::<f32>()?, vec![11.0, 12.0, 13.0]);
//! # Ok::<(), wgrad_device::DeviceError>(())
//! ```

mod array;
mod context;
mod error;
pub mod kernels;
mod pool;
mod tuning;

pub use array::{DType, Element, GpuArray};
pub use context::{AdapterSummary, Device, DeviceInfo, KernelTime, enumerate_adapters};
pub use error::{DeviceError, Result};
pub use kernels::binary::broadcast_shapes;
pub use kernels::random::{Distribution, threefry2x32};
pub use kernels::{
    BinaryOp, Conv2dParams, Epilogue, Kernel, OptimRule, Pool2dParams, ReduceOp, Transpose, UnaryOp,
};
pub use pool::MemoryStats;
pub use tuning::{ShapeClass, tuning_path};
pub use wgpu::{Features, Limits};
