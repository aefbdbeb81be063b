//! A fully connected auto-encoder for 28x28 grey-scale images (MNIST, Fashion-MNIST): its model,
//! its training loop, and a PNG of originals next to their reconstructions.
//!
//! The MNIST model is 784-256-64-256-784: ReLU after every layer but the last, a sigmoid on the
//! output, so inputs and reconstructions are both in [0, 1] (the pixels are not normalised). It is
//! trained on the mean squared error, or optionally on binary cross-entropy with the sigmoid folded
//! into the loss; either way the reported number is the reconstruction MSE per pixel.
//!
//! ```no_run
//! use std::path::Path;
//! use wgrad_models::autoencoder::{self, Autoencoder, AutoencoderOptions};
//! use wgrad_models::data::{self, Dataset, Split};
//! use wgrad_models::nn::Initializer;
//! use wgrad_models::optim::Adam;
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dev = wgrad_graph::Device::new()?;
//! let root = data::data_root();
//! let train = data::load(&root, Dataset::Mnist, Split::Train)?;
//! let test = data::load(&root, Dataset::Mnist, Split::Test)?;
//! let model = Autoencoder::mnist(&mut Initializer::new(&dev, 0))?;
//! let opts = AutoencoderOptions { epochs: 5, ..Default::default() };
//! let report = autoencoder::train_autoencoder(
//!     &model, &mut Adam::new(1e-3), &train, &test, &opts,
//!     &mut |m| println!("epoch {}: test MSE {:.4}", m.epoch, m.test_loss),
//! )?;
//! autoencoder::save_reconstructions(&model, &test, 10, Path::new("runs/ae/reconstructions.png"))?;
//! # let _ = report; Ok(()) }
//! ```

use std::path::Path;
use std::time::Instant;

use wgrad_graph::{Device, GraphError, Tensor, no_grad};

use crate::data::{DataError, DataLoader, ImageSet, LoaderConfig};
use crate::nn::{Initializer, Linear, Module, bce_with_logits, mse, prefixed};
use crate::optim::Optimizer;
use crate::report::{self, EpochMetrics, ReportError};

/// Why training or writing reconstructions failed.
#[derive(Debug, thiserror::Error)]
pub enum AutoencoderError {
    #[error(transparent)]
    Graph(#[from] GraphError),

    #[error(transparent)]
    Data(#[from] DataError),

    #[error(transparent)]
    Report(#[from] ReportError),

    #[error("{op}: {reason}")]
    InvalidArgument { op: &'static str, reason: String },
}

pub type Result<T, E = AutoencoderError> = std::result::Result<T, E>;

fn invalid(op: &'static str, reason: String) -> AutoencoderError {
    AutoencoderError::InvalidArgument { op, reason }
}

/// The training objective. Both are averaged over every pixel of the batch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ReconLoss {
    /// Mean squared error of the sigmoid output against the input.
    #[default]
    Mse,
    /// Binary cross-entropy of the output against the input (pixels as soft targets), computed
    /// from the pre-sigmoid logits so it stays finite for saturated outputs.
    Bce,
}

/// Encoder `widths[0] -> .. -> widths[last]` (the code) and its mirror image as decoder.
/// ReLU follows every layer except the decoder's last, whose output goes through a sigmoid.
pub struct Autoencoder {
    pub encoder: Vec<Linear>,
    pub decoder: Vec<Linear>,
}

impl Autoencoder {
    /// Widths of the MNIST model's encoder: 784 pixels, 256 hidden, a 64-dimensional code.
    pub const MNIST_WIDTHS: [usize; 3] = [784, 256, 64];

    /// The 784-256-64-256-784 model for 28x28 images.
    pub fn mnist(init: &mut Initializer) -> wgrad_graph::Result<Self> {
        Self::new(init, &Self::MNIST_WIDTHS)
    }

    /// An auto-encoder whose encoder has the given layer widths (input first, code last) and whose
    /// decoder mirrors them: `[8, 4, 2]` gives 8-4-2-4-8. Kaiming-uniform weights, zero biases.
    pub fn new(init: &mut Initializer, widths: &[usize]) -> wgrad_graph::Result<Self> {
        if widths.len() < 2 || widths.contains(&0) {
            return Err(GraphError::InvalidArgument {
                op: "Autoencoder::new",
                reason: format!("need at least two non-zero widths, got {widths:?}"),
            });
        }
        let encoder = widths
            .windows(2)
            .map(|w| Linear::new(init, w[0], w[1]))
            .collect::<wgrad_graph::Result<_>>()?;
        let decoder = widths
            .windows(2)
            .rev()
            .map(|w| Linear::new(init, w[1], w[0]))
            .collect::<wgrad_graph::Result<_>>()?;
        Ok(Self { encoder, decoder })
    }

    /// Values per input (the encoder's first width).
    pub fn input_dim(&self) -> usize {
        self.encoder.first().map_or(0, |l| l.weight.shape()[0])
    }

    /// Width of the code (the encoder's last width).
    pub fn code_dim(&self) -> usize {
        self.encoder.last().map_or(0, |l| l.weight.shape()[1])
    }

    /// x: [N, ...] with `input_dim()` values per row (e.g. [N, 1, 28, 28]) -> code [N, code_dim].
    pub fn encode(&self, x: &Tensor) -> wgrad_graph::Result<Tensor> {
        let mut h = x.flatten(1)?;
        for l in &self.encoder {
            h = l.forward(&h)?.relu()?;
        }
        Ok(h)
    }

    /// code [N, code_dim] -> pre-sigmoid outputs [N, input_dim].
    pub fn decode_logits(&self, z: &Tensor) -> wgrad_graph::Result<Tensor> {
        let mut h = z.clone();
        for (i, l) in self.decoder.iter().enumerate() {
            if i > 0 {
                h = h.relu()?;
            }
            h = l.forward(&h)?;
        }
        Ok(h)
    }

    /// code [N, code_dim] -> reconstruction [N, input_dim] in (0, 1).
    pub fn decode(&self, z: &Tensor) -> wgrad_graph::Result<Tensor> {
        self.decode_logits(z)?.sigmoid()
    }

    /// The training loss of a batch x: [N, ...] (targets are x itself, flattened), and the
    /// reconstruction [N, input_dim].
    pub fn loss(&self, x: &Tensor, kind: ReconLoss) -> wgrad_graph::Result<(Tensor, Tensor)> {
        let target = x.flatten(1)?;
        let logits = self.decode_logits(&self.encode(x)?)?;
        let recon = logits.sigmoid()?;
        let loss = match kind {
            ReconLoss::Mse => mse(&recon, &target)?,
            ReconLoss::Bce => bce_with_logits(&logits, &target)?,
        };
        Ok((loss, recon))
    }
}

impl Module for Autoencoder {
    /// `decode(encode(x))`: [N, ...] -> [N, input_dim].
    fn forward(&self, x: &Tensor) -> wgrad_graph::Result<Tensor> {
        self.decode(&self.encode(x)?)
    }

    fn named_parameters(&self) -> Vec<(String, Tensor)> {
        let mut p = Vec::new();
        for (part, layers) in [("encoder", &self.encoder), ("decoder", &self.decoder)] {
            for (i, l) in layers.iter().enumerate() {
                p.extend(prefixed(&format!("{part}.{i}"), l.named_parameters()));
            }
        }
        p
    }
}

/// How [`train_autoencoder`] runs.
#[derive(Clone, Debug, PartialEq)]
pub struct AutoencoderOptions {
    /// Epochs `start_epoch..epochs` are run (0-based; `EpochMetrics::epoch` is 1-based).
    pub epochs: usize,
    /// The first epoch to run, for resuming (the shuffle order depends on the epoch number).
    pub start_epoch: usize,
    pub batch_size: usize,
    /// Batch size of the test pass.
    pub eval_batch_size: usize,
    /// Seed of the loader's shuffling.
    pub seed: u64,
    pub loss: ReconLoss,
}

impl Default for AutoencoderOptions {
    /// 10 epochs of batch 128, seed 0, MSE.
    fn default() -> Self {
        Self {
            epochs: 10,
            start_epoch: 0,
            batch_size: 128,
            eval_batch_size: 1000,
            seed: 0,
            loss: ReconLoss::Mse,
        }
    }
}

/// What [`train_autoencoder`] measured.
#[derive(Clone, Debug, PartialEq)]
pub struct AutoencoderReport {
    /// One entry per epoch run: `train_loss` and `test_loss` are reconstruction MSE per pixel
    /// (whatever the objective), the accuracies are `None`, and `seconds` covers the training
    /// pass and the test pass.
    pub epochs: Vec<EpochMetrics>,
    /// The training objective per epoch (the same as `train_loss` for [`ReconLoss::Mse`]).
    pub train_objective: Vec<f64>,
}

/// Device-side running sums of objective·batch and MSE·batch; read back once.
struct Sums {
    objective: Tensor,
    mse: Tensor,
    examples: usize,
}

impl Sums {
    fn new(dev: &Device) -> wgrad_graph::Result<Self> {
        Ok(Self {
            objective: Tensor::zeros(&[], dev)?,
            mse: Tensor::zeros(&[], dev)?,
            examples: 0,
        })
    }

    fn add(
        &mut self,
        kind: ReconLoss,
        loss: &Tensor,
        recon: &Tensor,
        x: &Tensor,
    ) -> wgrad_graph::Result<()> {
        let b = x.shape()[0];
        no_grad(|| -> wgrad_graph::Result<()> {
            let loss = loss.reshape(&[])?.mul_scalar(b as f32)?;
            let mse_b = match kind {
                ReconLoss::Mse => loss.clone(),
                ReconLoss::Bce => mse(recon, x)?.mul_scalar(b as f32)?,
            };
            self.objective = self.objective.add(&loss)?;
            self.mse = self.mse.add(&mse_b)?;
            Ok(())
        })?;
        self.examples += b;
        Ok(())
    }

    /// (mean objective, mean MSE) with one readback.
    fn read(&self) -> wgrad_graph::Result<(f64, f64)> {
        let v = Tensor::stack(&[&self.objective, &self.mse])?.to_vec()?;
        let n = self.examples.max(1) as f64;
        Ok((f64::from(v[0]) / n, f64::from(v[1]) / n))
    }
}

fn check_set(op: &'static str, model: &Autoencoder, set: &ImageSet) -> Result<()> {
    set.validate()?;
    if set.sample_len() != model.input_dim() {
        return Err(invalid(
            op,
            format!(
                "images of {}x{}x{} = {} values do not fit a model with {} inputs",
                set.channels,
                set.height,
                set.width,
                set.sample_len(),
                model.input_dim()
            ),
        ));
    }
    Ok(())
}

fn device_of(op: &'static str, model: &Autoencoder) -> Result<Device> {
    model
        .encoder
        .first()
        .map(|l| l.weight.device().clone())
        .ok_or_else(|| invalid(op, "the model has no layers".into()))
}

/// Reconstruction MSE per pixel of `model` on all of `set`, in batches of `batch_size`.
pub fn evaluate_autoencoder(model: &Autoencoder, set: &ImageSet, batch_size: usize) -> Result<f64> {
    const OP: &str = "evaluate_autoencoder";
    check_set(OP, model, set)?;
    let dev = device_of(OP, model)?;
    let loader = DataLoader::new(set, LoaderConfig::new(batch_size).shuffle(false))?;
    let mut sums = Sums::new(&dev)?;
    no_grad(|| -> Result<()> {
        for batch in loader.epoch(0) {
            let x = Tensor::from_vec(batch.x, &[batch.shape[0], set.sample_len()], &dev)?;
            let (loss, recon) = model.loss(&x, ReconLoss::Mse)?;
            sums.add(ReconLoss::Mse, &loss, &recon, &x)?;
        }
        Ok(())
    })?;
    Ok(sums.read()?.1)
}

/// Trains `model` on `train` with `opt` (shuffled by `opts.seed`), evaluating the reconstruction
/// MSE on `test` after each epoch; `on_epoch` sees each epoch's metrics as soon as they exist.
/// Losses are summed on the device and read back once per pass.
pub fn train_autoencoder(
    model: &Autoencoder,
    opt: &mut dyn Optimizer,
    train: &ImageSet,
    test: &ImageSet,
    opts: &AutoencoderOptions,
    on_epoch: &mut dyn FnMut(&EpochMetrics),
) -> Result<AutoencoderReport> {
    const OP: &str = "train_autoencoder";
    check_set(OP, model, train)?;
    check_set(OP, model, test)?;
    let dev = device_of(OP, model)?;
    let loader = DataLoader::new(train, LoaderConfig::new(opts.batch_size).seed(opts.seed))?;
    let params = model.parameters();
    let d = train.sample_len();
    let mut report = AutoencoderReport {
        epochs: Vec::new(),
        train_objective: Vec::new(),
    };
    for epoch in opts.start_epoch..opts.epochs {
        let t0 = Instant::now();
        let mut sums = Sums::new(&dev)?;
        for batch in loader.epoch(epoch as u64) {
            let x = Tensor::from_vec(batch.x, &[batch.shape[0], d], &dev)?;
            let (loss, recon) = model.loss(&x, opts.loss)?;
            sums.add(opts.loss, &loss, &recon, &x)?;
            loss.backward()?;
            opt.step(&params)?;
            opt.zero_grad(&params);
        }
        let (objective, train_mse) = sums.read()?;
        let test_mse = evaluate_autoencoder(model, test, opts.eval_batch_size)?;
        let m = EpochMetrics {
            epoch: epoch + 1,
            train_loss: train_mse,
            train_acc: None,
            test_loss: test_mse,
            test_acc: None,
            seconds: t0.elapsed().as_secs_f64(),
        };
        on_epoch(&m);
        report.epochs.push(m);
        report.train_objective.push(objective);
    }
    Ok(report)
}

/// Writes the first `k` images of `set` (row 1) above their reconstructions (row 2) as a PNG grid
/// at `path` (k is capped at the set's size). The images must have one channel.
pub fn save_reconstructions(
    model: &Autoencoder,
    set: &ImageSet,
    k: usize,
    path: &Path,
) -> Result<()> {
    const OP: &str = "save_reconstructions";
    check_set(OP, model, set)?;
    if set.channels != 1 {
        return Err(invalid(
            OP,
            format!(
                "the grid is grey-scale, the images have {} channels",
                set.channels
            ),
        ));
    }
    let k = k.min(set.n);
    if k == 0 {
        return Err(invalid(
            OP,
            "no images to reconstruct (k = 0 or an empty set)".into(),
        ));
    }
    let dev = device_of(OP, model)?;
    let d = set.sample_len();
    let originals = &set.images[..k * d];
    let x = Tensor::from_vec(originals.to_vec(), &[k, d], &dev)?;
    let recon = no_grad(|| model.forward(&x))?.to_vec()?;
    let mut grid = Vec::with_capacity(2 * k * d);
    grid.extend_from_slice(originals);
    grid.extend_from_slice(&recon);
    report::save_image_grid(path, &grid, 2 * k, set.height, set.width, k)?;
    Ok(())
}
