//! The graph crate's typed errors.

use wgrad_device::DeviceError;

pub type Result<T, E = GraphError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum GraphError {
    #[error(transparent)]
    Device(#[from] DeviceError),

    #[error("{op}: the gradient of this op is not supported")]
    BackwardNotSupported { op: &'static str },

    #[error("{op}: expected a single-element tensor, got shape {shape:?}")]
    NotScalar { op: &'static str, shape: Vec<usize> },

    #[error("{op}: {reason}")]
    InvalidArgument { op: &'static str, reason: String },

    #[error(
        "backward through a graph that was already freed by an earlier backward(); \
         call backward_retain() the first time to keep it"
    )]
    GraphFreed,

    #[error("{op}: tensor does not require grad and has no recorded op")]
    NoGrad { op: &'static str },
}
