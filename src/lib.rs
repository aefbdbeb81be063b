//! wgrad: deep learning on any GPU through wgpu, with gradients that are themselves differentiable.
//!
//! This facade re-exports the three crates: `wgrad-device` (wgpu runtime and WGSL kernels),
//! `wgrad-graph` (autodiff) and `wgrad-models` (layers, optimisers, data, the course's models).

pub use wgrad_device as device;
pub use wgrad_device::{Device, DeviceError};
pub use wgrad_graph as graph;
pub use wgrad_models as models;

pub mod bench;
