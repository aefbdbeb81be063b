//! The device crate's typed errors. Every variant names the op (or kernel) it came from.

use crate::DType;

/// Result alias used throughout wgrad's device crate.
pub type Result<T, E = DeviceError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    #[error("no usable GPU adapter: {0}")]
    NoAdapter(String),

    #[error("adapter '{adapter}' refused to create a device: {message}")]
    RequestDevice { adapter: String, message: String },

    #[error("{op}: shapes {lhs:?} and {rhs:?} are incompatible{detail}")]
    ShapeMismatch {
        op: &'static str,
        lhs: Vec<usize>,
        rhs: Vec<usize>,
        detail: String,
    },

    #[error("{op}: invalid shape {shape:?}: {reason}")]
    InvalidShape {
        op: &'static str,
        shape: Vec<usize>,
        reason: String,
    },

    #[error("{op}: {reason}")]
    InvalidArgument { op: &'static str, reason: String },

    #[error("{op}: index {index} is out of range for a dimension of size {size}")]
    IndexOutOfRange {
        op: &'static str,
        index: u64,
        size: usize,
    },

    #[error(
        "{op}: a tensor of shape {shape:?} needs {bytes} bytes, over the device's max storage binding of {limit} bytes"
    )]
    BindingTooLarge {
        op: &'static str,
        shape: Vec<usize>,
        bytes: u64,
        limit: u64,
    },

    #[error("{op}: expected dtype {expected:?}, got {got:?}")]
    DTypeMismatch {
        op: &'static str,
        expected: DType,
        got: DType,
    },

    #[error("{op}: reduction over an empty axis of shape {shape:?} has no value")]
    EmptyReduction { op: &'static str, shape: Vec<usize> },

    #[error("{op}: tensors live on different devices")]
    DeviceMismatch { op: &'static str },

    #[error("kernel '{kernel}' failed to compile: {message}")]
    Shader { kernel: String, message: String },

    #[error("GPU validation error: {0}")]
    Gpu(String),

    #[error("reading back from the GPU failed: {0}")]
    Readback(String),
}
