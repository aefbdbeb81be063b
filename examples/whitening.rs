//! PCA and ZCA whitening: W_pca = (Λ+ε)^{-1/2} Uᵀ and W_zca = U (Λ+ε)^{-1/2} Uᵀ from the
//! eigen-decomposition of the training covariance (covariance and projections on the GPU; the
//! d x d eigen-decomposition with nalgebra on the host). The whitened covariance should be the
//! identity: measured on the training data and on held-out data.
//!
//! Run: cargo run --release --example whitening
//!      [-- --data mnist|fashion|diabetes --k K|all --eps X --n N --n-test N]

use anyhow::{Context, Result, bail};
use wgrad::models::classic::{WhitenData, WhitenOptions, WhitenReport, whitening};
use wgrad::models::data::Dataset;

const USAGE: &str =
    "whitening [--data mnist|fashion|diabetes] [--k K|all] [--eps X] [--n N] [--n-test N]";

fn print(r: &WhitenReport) {
    println!(
        "{}: {} train / {} held-out rows, d = {}, k = {} components kept, eps = {:e}",
        r.data, r.n_train, r.n_test, r.dim, r.components, r.eps
    );
    println!(
        "kept eigenvalues from {:.4e} down to {:.4e}; eps alone shrinks the training variances \
         by up to eps/(λ_min+eps) = {:.1e}",
        r.eigenvalue_range.0, r.eigenvalue_range.1, r.eps_bias
    );
    let target = if r.components == r.dim {
        "I"
    } else {
        "UUᵀ (the kept subspace)"
    };
    println!(
        "{:<10} {:>20} {:>22} {:>20}",
        "data", "max|C_pca - I_k|", "max|C_zca - target|", "mean PCA variance"
    );
    for (name, c) in [("train", &r.train), ("held-out", &r.test)] {
        println!(
            "{:<10} {:>20.3e} {:>22.3e} {:>20.6}",
            name, c.pca_max_dev, c.zca_max_dev, c.pca_mean_variance
        );
    }
    println!(
        "(ZCA target: {target}; covariances of the whitened data, each centred on its own mean)"
    );
    println!("time {:.2} s", r.seconds);
}

fn main() -> Result<()> {
    env_logger::init();
    let mut opts = WhitenOptions::default();
    let mut both = true;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || {
            args.next()
                .with_context(|| format!("{flag} needs a value; usage: {USAGE}"))
        };
        match flag.as_str() {
            "--data" => {
                both = false;
                opts.data = match value()?.as_str() {
                    "mnist" => WhitenData::Images(Dataset::Mnist),
                    "fashion" | "fashion-mnist" => WhitenData::Images(Dataset::FashionMnist),
                    "diabetes" => WhitenData::Diabetes,
                    _ => bail!("--data is mnist, fashion or diabetes"),
                }
            }
            "--k" => {
                opts.components = match value()?.as_str() {
                    "all" => None,
                    v => Some(v.parse().context("--k takes an integer or `all`")?),
                }
            }
            "--eps" => opts.eps = value()?.parse().context("--eps takes a number")?,
            "--n" => opts.n_train = value()?.parse().context("--n takes an integer")?,
            "--n-test" => opts.n_test = value()?.parse().context("--n-test takes an integer")?,
            _ => bail!("unknown flag {flag}; usage: {USAGE}"),
        }
    }
    let dev = wgrad::Device::new()?;
    println!(
        "adapter: {} ({})",
        dev.info().adapter.name,
        dev.info().adapter.backend
    );
    println!();
    print(&whitening(&dev, &opts)?);
    if both {
        // The default run also whitens a small full-rank table, where k = d and the target is I.
        println!();
        let diabetes = WhitenOptions {
            data: WhitenData::Diabetes,
            components: None,
            eps: 1e-6,
            ..opts
        };
        print(&whitening(&dev, &diabetes)?);
    }
    Ok(())
}
