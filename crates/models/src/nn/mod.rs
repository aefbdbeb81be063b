//! Layers as plain structs with `forward` and `parameters()`, initialisers, and losses.
//!
//! ```no_run
//! use wgrad_models::nn::{Activation, Init, Initializer, Linear, Module, Sequential};
//! let dev = wgrad_graph::Device::new()?;
//! let mut init = Initializer::new(&dev, 0);
//! let mlp = Sequential::new()
//!     .push(Linear::new(&mut init, 784, 256)?)
//!     .push(Activation::Relu)
//!     .push(Linear::new(&mut init, 256, 10)?);
//! let x = wgrad_graph::Tensor::zeros(&[32, 784], &dev)?;
//! assert_eq!(mlp.forward(&x)?.shape(), &[32, 10]);
//! # Ok::<(), wgrad_graph::GraphError>(())
//! ```

mod init;
mod layers;
mod losses;
mod norm;

pub use init::{Init, Initializer};
pub use layers::{
    Activation, AvgPool2d, Conv2d, Dropout, Flatten, Linear, MaxPool2d, ResidualBlock, Sequential,
};
pub use losses::{accuracy_count, bce_with_logits, cross_entropy, l2_penalty, mse};
pub use norm::{BatchNorm, GroupNorm, LayerNorm};

use wgrad_graph::{Result, Tensor, UnaryOp};

/// A layer or model: a forward function of one tensor plus its named state.
pub trait Module {
    fn forward(&self, x: &Tensor) -> Result<Tensor>;

    /// `act(self.forward(x))` done with the activation fused into this layer's last kernel, for
    /// layers that can (a bias add: Linear, Conv2d); None otherwise. `Sequential` uses it for a
    /// layer followed by an activation.
    fn forward_act(&self, _x: &Tensor, _act: UnaryOp) -> Option<Result<Tensor>> {
        None
    }

    /// The element-wise op this layer is, when it is an activation that can be fused into the
    /// layer before it.
    fn as_activation(&self) -> Option<UnaryOp> {
        None
    }

    /// Trainable parameters with stable names (used by optimisers and checkpoints).
    fn named_parameters(&self) -> Vec<(String, Tensor)> {
        Vec::new()
    }

    /// Non-trainable state saved in checkpoints (batch-norm running statistics).
    fn named_buffers(&self) -> Vec<(String, Tensor)> {
        Vec::new()
    }

    /// Switches between training and evaluation behaviour (dropout, batch norm).
    fn set_training(&mut self, _training: bool) {}

    /// Tells layers with random draws (dropout) the global training step. Their draws are a
    /// function of (seed, step, call within the step), so a resumed run repeats them exactly.
    fn set_step(&mut self, _step: u64) {}

    fn parameters(&self) -> Vec<Tensor> {
        self.named_parameters()
            .into_iter()
            .map(|(_, t)| t)
            .collect()
    }

    /// Parameters and buffers: everything a checkpoint must hold.
    fn named_state(&self) -> Vec<(String, Tensor)> {
        let mut s = self.named_parameters();
        s.extend(self.named_buffers());
        s
    }
}

/// Prefixes each name with `prefix.`.
pub(crate) fn prefixed(prefix: &str, items: Vec<(String, Tensor)>) -> Vec<(String, Tensor)> {
    items
        .into_iter()
        .map(|(n, t)| (format!("{prefix}.{n}"), t))
        .collect()
}
