//! Train one of the course's image classifiers (softmax regression, MLP, CNN, residual net) with the
//! library directly: the model zoo, the data loader, Adam and the training loop that `wgrad train`
//! uses.
//!
//! Run: cargo run --release --example classifier -- cnn [epochs] [mnist|fashion-mnist]
//! (needs `scripts/setup-data.sh` first).

use anyhow::{Context, Result};
use wgrad::models::data::{self, Augment, DataLoader, Dataset, LoaderConfig, Normalize, Split};
use wgrad::models::nn::{Initializer, Module};
use wgrad::models::optim::{Adam, CosineLr, LrSchedule, Optimizer};
use wgrad::models::train::{evaluate, train_epoch};
use wgrad::models::zoo::Classifier;

fn main() -> Result<()> {
    env_logger::init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let name = args.first().map(String::as_str).unwrap_or("cnn");
    let kind = Classifier::from_name(name).with_context(|| {
        let names: Vec<_> = Classifier::ALL.iter().map(|c| c.name()).collect();
        format!("unknown model {name:?}; one of {names:?}")
    })?;
    let epochs: usize = args.get(1).map(|e| e.parse()).transpose()?.unwrap_or(2);
    let dataset = match args.get(2).map(String::as_str) {
        Some("fashion-mnist") => Dataset::FashionMnist,
        _ => Dataset::Mnist,
    };

    let dev = wgrad::Device::new()?;
    let train = data::load(data::data_root(), dataset, Split::Train)?;
    let test = data::load(data::data_root(), dataset, Split::Test)?;
    let mut init = Initializer::new(&dev, 0);
    let mut model = kind.build(&mut init, [1, 28, 28], 10, 0)?;
    let params = model.parameters();
    println!(
        "{} on {}: {} parameter tensors, {} values, adapter {}",
        kind.name(),
        dataset.name(),
        params.len(),
        params.iter().map(|p| p.numel()).sum::<usize>(),
        dev.info().adapter.name
    );

    // Convolutional nets get shifts of up to 2 pixels (they are built to ignore them; for the
    // linear and fully connected models a shifted digit is a different input and costs accuracy).
    let augment = match kind {
        Classifier::Cnn | Classifier::Resnet => Augment {
            shift: 2,
            ..Augment::none()
        },
        _ => Augment::none(),
    };
    let normalize = Normalize::for_dataset(dataset);
    let loader = DataLoader::new(
        &train,
        LoaderConfig::new(64)
            .seed(0)
            .normalize(normalize.clone())
            .augment(augment),
    )?;
    let mut opt = Adam::new(1e-3);
    let schedule = CosineLr {
        t_max: epochs,
        eta_min: 0.0,
    };
    for epoch in 0..epochs {
        schedule.apply(&mut opt, 1e-3, epoch);
        let tr = train_epoch(&mut model, &mut opt, &loader, epoch, 100, &dev, &mut |p| {
            eprint!(
                "\r  step {}/{} loss {:.4} acc {:.2}%   ",
                p.step,
                p.steps,
                p.loss,
                100.0 * p.acc
            );
        })?;
        let te = evaluate(&mut model, &test, 256, Some(normalize.clone()), &dev)?;
        eprintln!();
        println!(
            "epoch {}: lr {:.2e} train loss {:.4} acc {:.2}% | test loss {:.4} acc {:.2}%",
            epoch + 1,
            opt.lr(),
            tr.loss,
            100.0 * tr.acc,
            te.loss,
            100.0 * te.acc
        );
    }
    Ok(())
}
