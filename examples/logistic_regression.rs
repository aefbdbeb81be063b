//! Binary logistic regression, sigmoid(x·w + b) trained with `bce_with_logits` and mini-batch
//! Adam (or SGD), on two classes of MNIST or Fashion-MNIST (default: MNIST 3 vs 5).
//!
//! Run: cargo run --release --example logistic_regression
//!      [-- --dataset mnist|fashion --classes 3,5 --epochs N --batch-size N --lr X --sgd M]

use anyhow::{Context, Result, bail};
use wgrad::models::classic::{LogisticOptions, OptimizerKind, logistic_regression};
use wgrad::models::data::Dataset;

const USAGE: &str = "logistic_regression [--dataset mnist|fashion] [--classes A,B] [--epochs N] \
                     [--batch-size N] [--lr X] [--sgd MOMENTUM] [--max-train N] [--seed N]";

fn main() -> Result<()> {
    env_logger::init();
    let mut opts = LogisticOptions::default();
    let args: Vec<String> = std::env::args().skip(1).collect();
    for pair in args.chunks(2) {
        let [flag, v] = pair else {
            bail!("usage: {USAGE}");
        };
        let t = &mut opts.train;
        match flag.as_str() {
            "--dataset" => {
                opts.dataset = match v.as_str() {
                    "mnist" => Dataset::Mnist,
                    "fashion" | "fashion-mnist" => Dataset::FashionMnist,
                    _ => bail!("--dataset is mnist or fashion"),
                }
            }
            "--classes" => {
                let (a, b) = v.split_once(',').context("--classes takes A,B")?;
                opts.classes = (a.trim().parse()?, b.trim().parse()?);
            }
            "--epochs" => t.epochs = v.parse().context("--epochs takes an integer")?,
            "--batch-size" => t.batch_size = v.parse().context("--batch-size takes an integer")?,
            "--lr" => t.lr = v.parse().context("--lr takes a number")?,
            "--sgd" => {
                t.optimizer = OptimizerKind::Sgd {
                    momentum: v.parse().context("--sgd takes the momentum")?,
                }
            }
            "--max-train" => {
                opts.max_train = Some(v.parse().context("--max-train takes an integer")?)
            }
            "--seed" => t.seed = v.parse().context("--seed takes an integer")?,
            _ => bail!("unknown flag {flag}; usage: {USAGE}"),
        }
    }
    let dev = wgrad::Device::new()?;
    println!(
        "adapter: {} ({})",
        dev.info().adapter.name,
        dev.info().adapter.backend
    );
    let t = &opts.train;
    let r = logistic_regression(&dev, &opts)?;
    println!(
        "logistic regression, {}: {} train / {} test images, 784 normalised pixels + bias",
        r.task, r.n_train, r.n_test
    );
    println!(
        "optimiser {:?}, lr {}, batch {}, {} epochs; loss = bce_with_logits (sigmoid + BCE)",
        t.optimizer, t.lr, t.batch_size, t.epochs
    );
    println!();
    println!(
        "{:>5} {:>11} {:>10} {:>9} {:>8}",
        "epoch", "train loss", "test loss", "test acc", "seconds"
    );
    for e in &r.epochs {
        println!(
            "{:>5} {:>11.4} {:>10.4} {:>8.2}% {:>8.2}",
            e.epoch,
            e.train_loss,
            e.test_loss,
            100.0 * e.test_accuracy,
            e.seconds
        );
    }
    println!();
    println!(
        "final: train loss {:.4}, train accuracy {:.2}%; test loss {:.4}, test accuracy {:.2}% \
         ({:.1} s)",
        r.train_loss,
        100.0 * r.train_accuracy,
        r.test_loss,
        100.0 * r.test_accuracy,
        r.seconds
    );
    Ok(())
}
