//! The course's image classifiers, by name (the names `wgrad train` accepts).

use wgrad_graph::{GraphError, Pool2dParams, Result};

use crate::nn::{
    Activation, AvgPool2d, BatchNorm, Conv2d, Dropout, Flatten, Initializer, Linear, MaxPool2d,
    ResidualBlock, Sequential,
};

/// Image classifiers that `wgrad train` knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Classifier {
    /// Softmax (multinomial logistic) regression: one linear layer on the pixels.
    Softmax,
    /// Multi-layer perceptron 784-512-256-10 with ReLU and dropout.
    Mlp,
    /// Conv 1->32 3x3, ReLU, max-pool 2, conv 32->64 3x3, ReLU, max-pool 2, linear -> classes.
    Cnn,
    /// A small residual net with batch norm: stem 16, blocks 16, 32 (stride 2), 64 (stride 2).
    Resnet,
}

impl Classifier {
    pub const ALL: [Classifier; 4] = [
        Classifier::Softmax,
        Classifier::Mlp,
        Classifier::Cnn,
        Classifier::Resnet,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Classifier::Softmax => "softmax",
            Classifier::Mlp => "mlp",
            Classifier::Cnn => "cnn",
            Classifier::Resnet => "resnet",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.name() == name)
    }

    /// Builds the network for [N, channels, height, width] inputs and `classes` outputs.
    pub fn build(
        self,
        init: &mut Initializer,
        chw: [usize; 3],
        classes: usize,
        seed: u64,
    ) -> Result<Sequential> {
        let [c, h, w] = chw;
        Ok(match self {
            Classifier::Softmax => {
                Sequential::new()
                    .push(Flatten)
                    .push(Linear::new(init, c * h * w, classes)?)
            }
            Classifier::Mlp => Sequential::new()
                .push(Flatten)
                .push(Linear::new(init, c * h * w, 512)?)
                .push(Activation::Relu)
                .push(Dropout::new(0.2, seed ^ 0xd0))
                .push(Linear::new(init, 512, 256)?)
                .push(Activation::Relu)
                .push(Dropout::new(0.2, seed ^ 0xd1))
                .push(Linear::new(init, 256, classes)?),
            Classifier::Cnn => {
                if h % 4 != 0 || w % 4 != 0 {
                    return Err(GraphError::InvalidArgument {
                        op: "cnn",
                        reason: format!("image {h}x{w} is not divisible by 4"),
                    });
                }
                Sequential::new()
                    .push(Conv2d::new(init, c, 32, 3, 1, 1)?)
                    .push(Activation::Relu)
                    .push(MaxPool2d(Pool2dParams::square(2)))
                    .push(Conv2d::new(init, 32, 64, 3, 1, 1)?)
                    .push(Activation::Relu)
                    .push(MaxPool2d(Pool2dParams::square(2)))
                    .push(Flatten)
                    .push(Linear::new(init, 64 * (h / 4) * (w / 4), classes)?)
            }
            Classifier::Resnet => {
                if h % 4 != 0 || h != w {
                    return Err(GraphError::InvalidArgument {
                        op: "resnet",
                        reason: format!("image {h}x{w} is not square with a side divisible by 4"),
                    });
                }
                let stem_params = wgrad_graph::Conv2dParams {
                    padding: (1, 1),
                    ..Default::default()
                };
                Sequential::new()
                    .push(Conv2d::with_params(
                        init,
                        c,
                        16,
                        (3, 3),
                        stem_params,
                        false,
                    )?)
                    .push(BatchNorm::new(init, 16)?)
                    .push(Activation::Relu)
                    .push(ResidualBlock::new(init, 16, 16, 1)?)
                    .push(ResidualBlock::new(init, 16, 32, 2)?)
                    .push(ResidualBlock::new(init, 32, 64, 2)?)
                    .push(AvgPool2d(Pool2dParams::square(h / 4)))
                    .push(Flatten)
                    .push(Linear::new(init, 64, classes)?)
            }
        })
    }
}
