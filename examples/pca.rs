//! PCA of MNIST (or Fashion-MNIST) images: the covariance C = X_cᵀX_c/(n-1) of a centred training
//! subset on the GPU, the top-k eigenpairs by block subspace iteration on the GPU (C·V products
//! as matmuls, the small Rayleigh–Ritz problem on the host), checked against nalgebra's
//! `SymmetricEigen` of the same C on the CPU; then explained variance and reconstruction error.
//!
//! Run: cargo run --release --example pca [-- --dataset mnist|fashion --n N --k K --no-cpu-check]

use anyhow::{Context, Result, bail};
use wgrad::models::classic::{PcaOptions, pca};
use wgrad::models::data::Dataset;

const USAGE: &str =
    "pca [--dataset mnist|fashion] [--n N] [--k K] [--oversample P] [--no-cpu-check]";

fn main() -> Result<()> {
    env_logger::init();
    let mut opts = PcaOptions::default();
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || {
            args.next()
                .with_context(|| format!("{flag} needs a value; usage: {USAGE}"))
        };
        match flag.as_str() {
            "--dataset" => {
                opts.dataset = match value()?.as_str() {
                    "mnist" => Dataset::Mnist,
                    "fashion" | "fashion-mnist" => Dataset::FashionMnist,
                    _ => bail!("--dataset is mnist or fashion"),
                }
            }
            "--n" => opts.n_train = value()?.parse().context("--n takes an integer")?,
            "--k" => opts.components = value()?.parse().context("--k takes an integer")?,
            "--oversample" => {
                opts.subspace.oversample =
                    value()?.parse().context("--oversample takes an integer")?
            }
            "--no-cpu-check" => opts.cpu_check = false,
            _ => bail!("unknown flag {flag}; usage: {USAGE}"),
        }
    }
    let dev = wgrad::Device::new()?;
    println!(
        "adapter: {} ({})",
        dev.info().adapter.name,
        dev.info().adapter.backend
    );
    let r = pca(&dev, &opts)?;
    println!(
        "PCA of {} ({} pixels, centred); k = {}",
        r.data,
        r.dim,
        r.eigenvalues.len()
    );
    println!(
        "covariance on the GPU: {:.2} s; eigenpairs by GPU subspace iteration (oversample {}): \
         {} iterations, {:.2} s, residual max‖Cv-λv‖/λ₁ = {:.1e}{}",
        r.covariance_seconds,
        opts.subspace.oversample,
        r.iterations,
        r.eigen_seconds,
        r.residual,
        if r.converged { "" } else { " (NOT converged)" }
    );
    println!("total variance trace(C) = {:.4}", r.total_variance);
    println!();
    println!(
        "{:>4} {:>12} {:>10} {:>11} {:>14}",
        "i", "eigenvalue", "explained", "cumulative", "CPU eigenvalue"
    );
    let cum = r.cumulative_ratio();
    for (i, (l, (e, c))) in r
        .eigenvalues
        .iter()
        .zip(r.explained_variance_ratio.iter().zip(&cum))
        .enumerate()
    {
        let cpu = r
            .check
            .as_ref()
            .map_or(String::from("-"), |c| format!("{:.6}", c.cpu_values[i]));
        println!(
            "{:>4} {:>12.6} {:>9.2}% {:>10.2}% {:>14}",
            i + 1,
            l,
            100.0 * e,
            100.0 * c,
            cpu
        );
    }
    println!();
    if let Some(c) = &r.check {
        println!(
            "CPU check (nalgebra SymmetricEigen of the same C, f64, {:.2} s): max eigenvalue \
             rel. error {:.2e}; components equal up to sign: min |cos| = {:.6}, max |Δv| = {:.1e}",
            c.cpu_seconds, c.max_rel_value_err, c.min_abs_cos, c.max_vector_err
        );
    }
    println!(
        "reconstruction MSE per pixel with k = {}: train {:.6} (predicted from the eigenvalues \
         {:.6}), held-out test ({} images) {:.6}",
        r.eigenvalues.len(),
        r.reconstruction_mse_train,
        r.reconstruction_mse_predicted,
        r.n_test,
        r.reconstruction_mse_test
    );
    Ok(())
}
