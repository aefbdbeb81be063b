//! Linear regression on the diabetes table four ways: the normal equations (XᵀX and Xᵀy on the
//! GPU, an 11x11 Cholesky solve on the host), full-batch gradient descent, mini-batch SGD, and one
//! Newton step with the autodiff Hessian. All four must land on the same weights.
//!
//! Run: cargo run --release --example linear_regression [-- --seed N --sgd-epochs N ...]

use anyhow::{Context, Result, bail};
use wgrad::models::classic::{LinearMethod, LinearOptions, linear_regression};

const USAGE: &str = "linear_regression [--seed N] [--gd-lr X] [--sgd-lr X] [--sgd-epochs N] \
                     [--batch-size N] [--momentum X]";

fn main() -> Result<()> {
    env_logger::init();
    let mut opts = LinearOptions::default();
    let args: Vec<String> = std::env::args().skip(1).collect();
    for pair in args.chunks(2) {
        let [flag, v] = pair else {
            bail!("usage: {USAGE}");
        };
        match flag.as_str() {
            "--seed" => opts.seed = v.parse().context("--seed takes an integer")?,
            "--gd-lr" => opts.gd_lr = Some(v.parse().context("--gd-lr takes a number")?),
            "--sgd-lr" => opts.sgd_lr = Some(v.parse().context("--sgd-lr takes a number")?),
            "--sgd-epochs" => {
                opts.sgd_epochs = v.parse().context("--sgd-epochs takes an integer")?
            }
            "--batch-size" => {
                opts.batch_size = v.parse().context("--batch-size takes an integer")?
            }
            "--momentum" => opts.sgd_momentum = v.parse().context("--momentum takes a number")?,
            _ => bail!("unknown flag {flag}; usage: {USAGE}"),
        }
    }
    let dev = wgrad::Device::new()?;
    println!(
        "adapter: {} ({})",
        dev.info().adapter.name,
        dev.info().adapter.backend
    );
    let r = linear_regression(&dev, &opts)?;
    println!(
        "diabetes: {} train / {} test rows (split seed {}), 10 z-scored features + bias; \
         cond(XᵀX) = {:.0}",
        r.n_train, r.n_test, opts.seed, r.condition_number
    );
    println!();
    println!(
        "{:<17} {:>10} {:>10} {:>8} {:>8} {:>7} {:>9} {:>11}  agrees",
        "method", "train MSE", "test MSE", "train R²", "test R²", "steps", "seconds", "rel. diff"
    );
    for f in &r.fits {
        println!(
            "{:<17} {:>10.2} {:>10.2} {:>8.4} {:>8.4} {:>7} {:>9.3} {:>11.2e}  {} (tol {:.0e})",
            f.method.name(),
            f.train_mse,
            f.test_mse,
            f.train_r2,
            f.test_r2,
            f.steps,
            f.seconds,
            f.rel_diff,
            if f.agrees() { "yes" } else { "NO" },
            f.method.tolerance(),
        );
    }
    println!("(rel. diff = max|w - w_closed| / max|w_closed|)");
    println!(
        "closed form (GPU Gram + host Cholesky) vs CPU f64 SVD least squares: rel. diff {:.2e}",
        r.closed_form_vs_cpu
    );
    println!();
    print!("{:<17}", "weight");
    for m in LinearMethod::ALL {
        print!(" {:>16}", m.name());
    }
    println!();
    for (i, name) in r.weight_names.iter().enumerate() {
        print!("{name:<17}");
        for f in &r.fits {
            print!(" {:>16.4}", f.weights[i]);
        }
        println!();
    }
    if !r.all_agree() {
        bail!("the methods disagree beyond their tolerances");
    }
    Ok(())
}
