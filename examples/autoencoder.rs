//! A 784-256-64-256-784 auto-encoder on MNIST (or Fashion-MNIST): trains for a few epochs, prints
//! the reconstruction MSE per epoch, and writes `reconstructions.png` (originals above their
//! reconstructions), `curve.png` and `metrics.jsonl` to the output folder.
//!
//! Run: cargo run --release --example autoencoder -- --epochs 5
//!      (--dataset fashion-mnist, --loss bce, --limit 10000, --out runs/autoencoder, --help)

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Parser, ValueEnum};
use wgrad::models::autoencoder::{
    self, Autoencoder, AutoencoderOptions, ReconLoss, evaluate_autoencoder,
};
use wgrad::models::data::{self, Dataset, Split};
use wgrad::models::nn::Initializer;
use wgrad::models::optim::Adam;
use wgrad::models::report::{self, EpochMetrics};

#[derive(Clone, Copy, Debug, ValueEnum)]
enum DatasetArg {
    Mnist,
    FashionMnist,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum LossArg {
    Mse,
    Bce,
}

#[derive(Parser, Debug)]
#[command(about = "Train a fully connected auto-encoder on MNIST and save reconstructions")]
struct Args {
    #[arg(long, default_value_t = 5)]
    epochs: usize,
    #[arg(long, default_value_t = 128)]
    batch_size: usize,
    /// Adam's learning rate.
    #[arg(long, default_value_t = 1e-3)]
    lr: f32,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[arg(long, value_enum, default_value = "mnist")]
    dataset: DatasetArg,
    #[arg(long, value_enum, default_value = "mse")]
    loss: LossArg,
    /// Use only the first N training images.
    #[arg(long)]
    limit: Option<usize>,
    /// Images in the reconstruction grid.
    #[arg(long, default_value_t = 10)]
    show: usize,
    #[arg(long, default_value = "runs/autoencoder")]
    out: PathBuf,
}

fn main() -> Result<()> {
    env_logger::init();
    let a = Args::parse();
    let dataset = match a.dataset {
        DatasetArg::Mnist => Dataset::Mnist,
        DatasetArg::FashionMnist => Dataset::FashionMnist,
    };
    let dev = wgrad::Device::new()?;
    let root = data::data_root();
    let mut train = data::load(&root, dataset, Split::Train)?;
    if let Some(k) = a.limit {
        train = train.take(k);
    }
    let test = data::load(&root, dataset, Split::Test)?;
    let model = Autoencoder::mnist(&mut Initializer::new(&dev, a.seed))?;
    let mut opt = Adam::new(a.lr);
    let opts = AutoencoderOptions {
        epochs: a.epochs,
        batch_size: a.batch_size,
        seed: a.seed,
        loss: match a.loss {
            LossArg::Mse => ReconLoss::Mse,
            LossArg::Bce => ReconLoss::Bce,
        },
        ..Default::default()
    };
    println!(
        "auto-encoder 784-256-64-256-784 on {} ({} train / {} test), {:?} loss, Adam lr {}, batch {}, on {} ({})",
        dataset.name(),
        train.n,
        test.n,
        opts.loss,
        a.lr,
        a.batch_size,
        dev.info().adapter.name,
        dev.info().adapter.backend
    );
    println!(
        "epoch   0: test MSE {:.5} (untrained)",
        evaluate_autoencoder(&model, &test, opts.eval_batch_size)?
    );

    std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    let metrics = a.out.join("metrics.jsonl");
    if metrics.exists() {
        std::fs::remove_file(&metrics)?;
    }
    let title = format!("auto-encoder on {} (reconstruction MSE)", dataset.name());
    let mut history: Vec<EpochMetrics> = Vec::new();
    let mut io: Result<()> = Ok(());
    let report =
        autoencoder::train_autoencoder(&model, &mut opt, &train, &test, &opts, &mut |m| {
            println!(
                "epoch {:>3}: train MSE {:.5} | test MSE {:.5} | {:.1}s",
                m.epoch, m.train_loss, m.test_loss, m.seconds
            );
            history.push(m.clone());
            if io.is_ok() {
                io = report::append_jsonl(&metrics, m)
                    .and_then(|()| report::plot_curves(&a.out.join("curve.png"), &history, &title))
                    .map_err(Into::into);
            }
        })?;
    io?;
    let png = a.out.join("reconstructions.png");
    autoencoder::save_reconstructions(&model, &test, a.show, &png)?;
    let n = report.epochs.len().max(1) as f64;
    let mean_s = report.epochs.iter().map(|m| m.seconds).sum::<f64>() / n;
    if let Some(last) = report.epochs.last() {
        println!(
            "final test MSE {:.5} after {} epochs, {mean_s:.1} s/epoch",
            last.test_loss, last.epoch
        );
    }
    println!(
        "wrote {}, {} and {}",
        png.display(),
        a.out.join("curve.png").display(),
        metrics.display()
    );
    Ok(())
}
