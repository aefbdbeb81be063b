//! The training loop for image classifiers: batch (host) -> upload -> forward -> loss -> backward ->
//! optimiser step, with loss and accuracy accumulated on the device and read back only every
//! `log_every` steps.

use std::time::Instant;

use wgrad_graph::{Device, Result, Tensor, no_grad};

use crate::data::{Batch, DataLoader, ImageSet, LoaderConfig, Normalize};
use crate::nn::{Module, accuracy_count, cross_entropy};
use crate::optim::Optimizer;

/// What the progress callback sees every `log_every` steps and at the end of an epoch.
#[derive(Clone, Copy, Debug)]
pub struct Progress {
    pub epoch: usize,
    pub step: usize,
    pub steps: usize,
    /// Mean training loss and accuracy so far in this epoch.
    pub loss: f64,
    pub acc: f64,
    pub examples_per_s: f64,
}

/// Loss and accuracy over a pass.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PassMetrics {
    pub loss: f64,
    pub acc: f64,
    pub examples: usize,
}

/// Device-side running sums of loss·batch and correct predictions.
struct Accumulator {
    loss_sum: Tensor,
    correct: Tensor,
    examples: usize,
}

impl Accumulator {
    fn new(dev: &Device) -> Result<Self> {
        Ok(Self {
            loss_sum: Tensor::zeros(&[], dev)?,
            correct: Tensor::zeros(&[], dev)?,
            examples: 0,
        })
    }

    fn add(&mut self, loss: &Tensor, logits: &Tensor, labels: &Tensor) -> Result<()> {
        let b = labels.numel();
        no_grad(|| -> Result<()> {
            self.loss_sum = self
                .loss_sum
                .add(&loss.reshape(&[])?.mul_scalar(b as f32)?)?;
            self.correct = self.correct.add(&accuracy_count(logits, labels)?)?;
            Ok(())
        })?;
        self.examples += b;
        Ok(())
    }

    /// One readback of both sums.
    fn read(&self) -> Result<PassMetrics> {
        let n = self.examples.max(1) as f64;
        Ok(PassMetrics {
            loss: f64::from(self.loss_sum.item()?) / n,
            acc: f64::from(self.correct.item()?) / n,
            examples: self.examples,
        })
    }
}

fn upload(batch: &Batch, dev: &Device) -> Result<(Tensor, Tensor)> {
    let x = Tensor::from_vec(batch.x.clone(), &batch.shape, dev)?;
    let y = Tensor::from_slice(&batch.y, &[batch.y.len()], dev)?;
    Ok((x, y))
}

/// One epoch of training. `on_progress` is called every `log_every` steps and after the last.
pub fn train_epoch(
    model: &mut dyn Module,
    opt: &mut dyn Optimizer,
    loader: &DataLoader<'_>,
    epoch: usize,
    log_every: usize,
    dev: &Device,
    on_progress: &mut dyn FnMut(Progress),
) -> Result<PassMetrics> {
    model.set_training(true);
    let params = model.parameters();
    let mut acc = Accumulator::new(dev)?;
    let steps = loader.num_batches();
    let start = Instant::now();
    for (step, batch) in loader.epoch(epoch as u64).enumerate() {
        model.set_step((epoch * steps + step) as u64);
        let (x, y) = upload(&batch, dev)?;
        let logits = model.forward(&x)?;
        let loss = cross_entropy(&logits, &y)?;
        acc.add(&loss, &logits, &y)?;
        loss.backward()?;
        opt.step(&params)?;
        for p in &params {
            p.zero_grad();
        }
        if (step + 1) % log_every.max(1) == 0 || step + 1 == steps {
            let m = acc.read()?;
            on_progress(Progress {
                epoch,
                step: step + 1,
                steps,
                loss: m.loss,
                acc: m.acc,
                examples_per_s: m.examples as f64 / start.elapsed().as_secs_f64().max(1e-9),
            });
        }
    }
    acc.read()
}

/// Loss and accuracy of `model` on `set` in evaluation mode (no shuffling, no augmentation).
pub fn evaluate(
    model: &mut dyn Module,
    set: &ImageSet,
    batch_size: usize,
    normalize: Option<Normalize>,
    dev: &Device,
) -> Result<PassMetrics> {
    model.set_training(false);
    let mut cfg = LoaderConfig::new(batch_size).shuffle(false);
    if let Some(n) = normalize {
        cfg = cfg.normalize(n);
    }
    let loader =
        DataLoader::new(set, cfg).map_err(|e| wgrad_graph::GraphError::InvalidArgument {
            op: "evaluate",
            reason: e.to_string(),
        })?;
    let mut acc = Accumulator::new(dev)?;
    no_grad(|| -> Result<()> {
        for batch in loader.epoch(0) {
            let (x, y) = upload(&batch, dev)?;
            let logits = model.forward(&x)?;
            let loss = cross_entropy(&logits, &y)?;
            acc.add(&loss, &logits, &y)?;
        }
        Ok(())
    })?;
    let m = acc.read();
    model.set_training(true);
    m
}
