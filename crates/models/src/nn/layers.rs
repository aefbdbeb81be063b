//! Linear, convolution, pooling, flatten, dropout, activations, residual block, Sequential.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use wgrad_graph::{Conv2dParams, Distribution, Pool2dParams, Result, Tensor, UnaryOp};

use super::init::{Init, Initializer};
use super::norm::BatchNorm;
use super::{Module, prefixed};

/// y = x W + b. x: [.., in], W: [in, out], b: [out].
pub struct Linear {
    pub weight: Tensor,
    pub bias: Option<Tensor>,
}

impl Linear {
    /// Kaiming-uniform weights (PyTorch's default scale) and zero bias.
    pub fn new(init: &mut Initializer, inputs: usize, outputs: usize) -> Result<Self> {
        Self::with_init(
            init,
            inputs,
            outputs,
            Init::KaimingUniform { gain: 1.0 },
            true,
        )
    }

    pub fn with_init(
        init: &mut Initializer,
        inputs: usize,
        outputs: usize,
        w: Init,
        bias: bool,
    ) -> Result<Self> {
        Ok(Self {
            weight: init.param(&[inputs, outputs], w)?,
            bias: if bias {
                Some(init.param(&[outputs], Init::Zeros)?)
            } else {
                None
            },
        })
    }
}

impl Module for Linear {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        x.linear(&self.weight, self.bias.as_ref(), None)
    }
    fn forward_act(&self, x: &Tensor, act: UnaryOp) -> Option<Result<Tensor>> {
        Some(x.linear(&self.weight, self.bias.as_ref(), Some(act)))
    }
    fn named_parameters(&self) -> Vec<(String, Tensor)> {
        let mut p = vec![("weight".to_string(), self.weight.clone())];
        if let Some(b) = &self.bias {
            p.push(("bias".to_string(), b.clone()));
        }
        p
    }
}

/// 2-D convolution. x: [N, C_in, H, W], weight: [C_out, C_in/groups, KH, KW], bias: [C_out].
pub struct Conv2d {
    pub weight: Tensor,
    pub bias: Option<Tensor>,
    pub params: Conv2dParams,
}

impl Conv2d {
    /// A k x k convolution with the given stride and padding, Kaiming-uniform weights, zero bias.
    pub fn new(
        init: &mut Initializer,
        c_in: usize,
        c_out: usize,
        k: usize,
        stride: usize,
        padding: usize,
    ) -> Result<Self> {
        let params = Conv2dParams {
            stride: (stride, stride),
            padding: (padding, padding),
            ..Default::default()
        };
        Self::with_params(init, c_in, c_out, (k, k), params, true)
    }

    pub fn with_params(
        init: &mut Initializer,
        c_in: usize,
        c_out: usize,
        k: (usize, usize),
        params: Conv2dParams,
        bias: bool,
    ) -> Result<Self> {
        let g = params.groups.max(1);
        Ok(Self {
            weight: init.param(
                &[c_out, c_in / g, k.0, k.1],
                Init::KaimingUniform { gain: 1.0 },
            )?,
            bias: if bias {
                Some(init.param(&[c_out], Init::Zeros)?)
            } else {
                None
            },
            params,
        })
    }
}

impl Module for Conv2d {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match &self.bias {
            Some(b) => Ok(x.conv2d_bias_act(&self.weight, b, &self.params, None)?),
            None => Ok(x.conv2d(&self.weight, &self.params)?),
        }
    }
    fn forward_act(&self, x: &Tensor, act: UnaryOp) -> Option<Result<Tensor>> {
        let b = self.bias.as_ref()?;
        Some(x.conv2d_bias_act(&self.weight, b, &self.params, Some(act)))
    }
    fn named_parameters(&self) -> Vec<(String, Tensor)> {
        let mut p = vec![("weight".to_string(), self.weight.clone())];
        if let Some(b) = &self.bias {
            p.push(("bias".to_string(), b.clone()));
        }
        p
    }
}

/// Max pooling over [N, C, H, W].
pub struct MaxPool2d(pub Pool2dParams);

impl Module for MaxPool2d {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        x.max_pool2d(&self.0)
    }
}

/// Average pooling over [N, C, H, W] (padding counts in the divisor).
pub struct AvgPool2d(pub Pool2dParams);

impl Module for AvgPool2d {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        x.avg_pool2d(&self.0)
    }
}

/// [N, ...] -> [N, prod(...)].
pub struct Flatten;

impl Module for Flatten {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        x.flatten(1)
    }
}

/// Zeroes each element with probability `p` in training and scales the rest by 1/(1-p).
/// Masks come from the device generator keyed by (seed, counter); the counter advances per call
/// and `set_step` moves it to `step << 16`, so masks depend on the training step, not on history.
pub struct Dropout {
    pub p: f32,
    seed: u64,
    counter: AtomicU64,
    training: AtomicBool,
}

impl Dropout {
    pub fn new(p: f32, seed: u64) -> Self {
        Self {
            p,
            seed,
            counter: AtomicU64::new(0),
            training: AtomicBool::new(true),
        }
    }
}

impl Module for Dropout {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        if !self.training.load(Ordering::Relaxed) || self.p <= 0.0 {
            return Ok(x.clone());
        }
        let c = self.counter.fetch_add(1, Ordering::Relaxed);
        // The generator takes a 64-bit key and a 32-bit offset: the counter's high half joins the key.
        let key = self.seed ^ (c >> 32).rotate_left(29);
        let keep = Tensor::random(
            x.shape(),
            Distribution::Bernoulli { p: 1.0 - self.p },
            key,
            c as u32,
            x.device(),
        )?;
        x.mul(&keep.mul_scalar(1.0 / (1.0 - self.p))?)
    }
    fn set_training(&mut self, training: bool) {
        self.training.store(training, Ordering::Relaxed);
    }
    fn set_step(&mut self, step: u64) {
        self.counter.store(step << 16, Ordering::Relaxed);
    }
}

/// Element-wise activations (and softmax along an axis).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Activation {
    Relu,
    LeakyRelu(f32),
    Elu(f32),
    Gelu,
    Sigmoid,
    Tanh,
    Softmax(isize),
}

impl Activation {
    /// The element-wise op, for the activations that are one.
    fn unary(&self) -> Option<UnaryOp> {
        Some(match *self {
            Activation::Relu => UnaryOp::Relu,
            Activation::LeakyRelu(a) => UnaryOp::LeakyRelu(a),
            Activation::Elu(a) => UnaryOp::Elu(a),
            Activation::Gelu => UnaryOp::Gelu,
            Activation::Sigmoid => UnaryOp::Sigmoid,
            Activation::Tanh => UnaryOp::Tanh,
            Activation::Softmax(_) => return None,
        })
    }
}

impl Module for Activation {
    fn as_activation(&self) -> Option<UnaryOp> {
        self.unary()
    }
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match *self {
            Activation::Relu => x.relu(),
            Activation::LeakyRelu(a) => x.leaky_relu(a),
            Activation::Elu(a) => x.elu(a),
            Activation::Gelu => x.gelu(),
            Activation::Sigmoid => x.sigmoid(),
            Activation::Tanh => x.tanh(),
            Activation::Softmax(axis) => x.softmax(axis),
        }
    }
}

/// Layers applied in order.
#[derive(Default)]
pub struct Sequential {
    pub layers: Vec<Box<dyn Module + Send + Sync>>,
}

impl Sequential {
    pub fn new() -> Self {
        Self::default()
    }

    #[allow(clippy::should_implement_trait)]
    pub fn push(mut self, m: impl Module + Send + Sync + 'static) -> Self {
        self.layers.push(Box::new(m));
        self
    }
}

impl Module for Sequential {
    /// Runs the layers in order; a layer with a bias followed by an activation runs as one fused
    /// layer (`forward_act`), with the same result.
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut h = x.clone();
        let mut i = 0;
        while i < self.layers.len() {
            let next_act = self.layers.get(i + 1).and_then(|l| l.as_activation());
            if let Some(fused) = next_act.and_then(|act| self.layers[i].forward_act(&h, act)) {
                h = fused?;
                i += 2;
            } else {
                h = self.layers[i].forward(&h)?;
                i += 1;
            }
        }
        Ok(h)
    }
    fn named_parameters(&self) -> Vec<(String, Tensor)> {
        let mut out = Vec::new();
        for (i, l) in self.layers.iter().enumerate() {
            out.extend(prefixed(&i.to_string(), l.named_parameters()));
        }
        out
    }
    fn named_buffers(&self) -> Vec<(String, Tensor)> {
        let mut out = Vec::new();
        for (i, l) in self.layers.iter().enumerate() {
            out.extend(prefixed(&i.to_string(), l.named_buffers()));
        }
        out
    }
    fn set_training(&mut self, training: bool) {
        for l in &mut self.layers {
            l.set_training(training);
        }
    }
    fn set_step(&mut self, step: u64) {
        for l in &mut self.layers {
            l.set_step(step);
        }
    }
}

/// The basic residual block of ResNet: relu(bn(conv(relu(bn(conv(x))))) + shortcut(x)), with a
/// 1x1 convolution + batch norm on the shortcut when the stride or channel count changes.
pub struct ResidualBlock {
    conv1: Conv2d,
    bn1: BatchNorm,
    conv2: Conv2d,
    bn2: BatchNorm,
    shortcut: Option<(Conv2d, BatchNorm)>,
}

impl ResidualBlock {
    pub fn new(init: &mut Initializer, c_in: usize, c_out: usize, stride: usize) -> Result<Self> {
        let conv = |init: &mut Initializer, ci, co, k, s, p| {
            let params = Conv2dParams {
                stride: (s, s),
                padding: (p, p),
                ..Default::default()
            };
            Conv2d::with_params(init, ci, co, (k, k), params, false)
        };
        Ok(Self {
            conv1: conv(init, c_in, c_out, 3, stride, 1)?,
            bn1: BatchNorm::new(init, c_out)?,
            conv2: conv(init, c_out, c_out, 3, 1, 1)?,
            bn2: BatchNorm::new(init, c_out)?,
            shortcut: if stride != 1 || c_in != c_out {
                Some((
                    conv(init, c_in, c_out, 1, stride, 0)?,
                    BatchNorm::new(init, c_out)?,
                ))
            } else {
                None
            },
        })
    }
}

impl Module for ResidualBlock {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let h = self.bn1.forward(&self.conv1.forward(x)?)?.relu()?;
        let h = self.bn2.forward(&self.conv2.forward(&h)?)?;
        let s = match &self.shortcut {
            Some((c, bn)) => bn.forward(&c.forward(x)?)?,
            None => x.clone(),
        };
        h.add(&s)?.relu()
    }
    fn named_parameters(&self) -> Vec<(String, Tensor)> {
        let mut p = prefixed("conv1", self.conv1.named_parameters());
        p.extend(prefixed("bn1", self.bn1.named_parameters()));
        p.extend(prefixed("conv2", self.conv2.named_parameters()));
        p.extend(prefixed("bn2", self.bn2.named_parameters()));
        if let Some((c, bn)) = &self.shortcut {
            p.extend(prefixed("shortcut.conv", c.named_parameters()));
            p.extend(prefixed("shortcut.bn", bn.named_parameters()));
        }
        p
    }
    fn named_buffers(&self) -> Vec<(String, Tensor)> {
        let mut b = prefixed("bn1", self.bn1.named_buffers());
        b.extend(prefixed("bn2", self.bn2.named_buffers()));
        if let Some((_, bn)) = &self.shortcut {
            b.extend(prefixed("shortcut.bn", bn.named_buffers()));
        }
        b
    }
    fn set_training(&mut self, training: bool) {
        self.bn1.set_training(training);
        self.bn2.set_training(training);
        if let Some((_, bn)) = &mut self.shortcut {
            bn.set_training(training);
        }
    }
}
