//! The `wgrad` command line: `info`, `train`, `eval`. Thin: it parses, builds a model from the
//! models crate, and reports.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use wgrad::Device;
use wgrad::graph::Tensor;
use wgrad::models::data::{self, DataLoader, Dataset, LoaderConfig, Normalize, Split};
use wgrad::models::nn::{Initializer, Module};
use wgrad::models::optim::{self, Optimizer};
use wgrad::models::report::{self, EpochMetrics};
use wgrad::models::train::{Progress, evaluate, train_epoch};
use wgrad::models::zoo::Classifier;
use wgrad::models::{checkpoint, classic};

#[derive(Parser)]
#[command(
    name = "wgrad",
    version,
    about = "Deep learning on any GPU through wgpu"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum DatasetArg {
    Mnist,
    FashionMnist,
}

impl DatasetArg {
    fn dataset(self) -> Dataset {
        match self {
            DatasetArg::Mnist => Dataset::Mnist,
            DatasetArg::FashionMnist => Dataset::FashionMnist,
        }
    }
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
enum ModelArg {
    /// Softmax regression: one linear layer on the pixels
    Softmax,
    /// Multi-layer perceptron 784-512-256-10, ReLU, dropout 0.2
    Mlp,
    /// Conv 32 3x3, pool, conv 64 3x3, pool, linear
    Cnn,
    /// Small residual net with batch norm
    Resnet,
    /// Auto-encoder 784-256-64-256-784; reports test reconstruction MSE, writes reconstructions.png
    Autoencoder,
    /// Linear regression on the diabetes table: closed form vs GD vs SGD vs Newton
    Linear,
    /// Logistic regression on two classes (MNIST 3 vs 5, Fashion-MNIST T-shirt vs shirt)
    Logistic,
    /// PCA of 10,000 training images: explained variance, checked against a CPU eigen-solve
    Pca,
    /// PCA and ZCA whitening: how close the whitened covariance is to the identity
    Whiten,
}

impl ModelArg {
    fn classifier(self) -> Option<Classifier> {
        match self {
            ModelArg::Softmax => Some(Classifier::Softmax),
            ModelArg::Mlp => Some(Classifier::Mlp),
            ModelArg::Cnn => Some(Classifier::Cnn),
            ModelArg::Resnet => Some(Classifier::Resnet),
            _ => None,
        }
    }
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq, Debug)]
enum OptimizerArg {
    Gd,
    Sgd,
    Nesterov,
    Adagrad,
    Rmsprop,
    Adam,
    Adamw,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq, Debug)]
enum ScheduleArg {
    None,
    Step,
    Cosine,
}

impl ScheduleArg {
    /// The learning rate of `epoch` (0-based) of `epochs`.
    fn lr(self, base: f32, epoch: usize, epochs: usize) -> f32 {
        use wgrad::models::optim::{CosineLr, LrSchedule, StepLr};
        match self {
            ScheduleArg::None => base,
            ScheduleArg::Step => StepLr {
                step_size: epochs.div_ceil(3).max(1),
                gamma: 0.1,
            }
            .lr(base, epoch),
            ScheduleArg::Cosine => CosineLr {
                t_max: epochs,
                eta_min: 0.0,
            }
            .lr(base, epoch),
        }
    }
}

#[derive(clap::Args)]
struct TrainArgs {
    /// The model to train
    model: ModelArg,
    #[arg(long, value_enum, default_value = "mnist")]
    dataset: DatasetArg,
    #[arg(long, default_value_t = 3)]
    epochs: usize,
    #[arg(long, default_value_t = 64)]
    batch_size: usize,
    /// Learning rate (default: 1e-3 for Adam-like optimisers, 0.05 otherwise)
    #[arg(long)]
    lr: Option<f32>,
    #[arg(long, value_enum, default_value = "adam")]
    optimizer: OptimizerArg,
    /// Learning-rate schedule over the epochs: cosine decays to 0 by the last epoch, step
    /// multiplies by 0.1 every third of the run
    #[arg(long, value_enum, default_value = "cosine")]
    schedule: ScheduleArg,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Output folder: checkpoint.safetensors, metrics.jsonl, curve.png
    #[arg(long, default_value = "runs/latest")]
    out: PathBuf,
    /// Print one JSON object per epoch instead of text and a progress bar
    #[arg(long)]
    json: bool,
    /// Continue the run in --out from its last checkpoint
    #[arg(long)]
    resume: bool,
    /// Train on the first N training images only (quick runs)
    #[arg(long)]
    limit: Option<usize>,
    /// Augmentation: random shifts of up to this many pixels (pad and crop)
    #[arg(long, default_value_t = 0)]
    shift: usize,
    /// Augmentation: probability of a horizontal flip (for Fashion-MNIST, not digits)
    #[arg(long, default_value_t = 0.0)]
    flip: f64,
    /// Augmentation: standard deviation of Gaussian pixel noise
    #[arg(long, default_value_t = 0.0)]
    noise: f32,
}

#[derive(Subcommand)]
enum Command {
    /// List every adapter wgpu finds and show the one wgrad picks, with its limits and features.
    Info,
    /// Train one of the course's models (classifiers, auto-encoder, linear/logistic regression, PCA, whitening).
    Train(TrainArgs),
    /// Benchmark the kernels and training steps on the chosen adapter, against a CPU reference.
    Bench {
        /// One JSON object per line
        #[arg(long)]
        json: bool,
        /// Only benchmarks whose name contains this
        #[arg(long)]
        filter: Option<String>,
        /// First time every kernel variant on representative shapes and save the fastest per
        /// adapter and shape class (see wgrad_device::tuning_path)
        #[arg(long)]
        tune: bool,
        /// Under each figure, the wall time per kernel entry point while it was measured (every
        /// dispatch then runs on its own, so the figures themselves read slower)
        #[arg(long)]
        profile: bool,
    },
    /// Report test accuracy of a checkpoint written by `train`.
    Eval {
        checkpoint: PathBuf,
        #[arg(long, default_value_t = 256)]
        batch_size: usize,
    },
}

fn info() -> Result<()> {
    let adapters = wgrad::device::enumerate_adapters();
    println!("adapters found: {}", adapters.len());
    for a in &adapters {
        println!(
            "  - {} | backend {} | type {} | driver {} {}",
            a.name, a.backend, a.device_type, a.driver, a.driver_info
        );
    }
    let dev = Device::new()?;
    let info = dev.info();
    let l = &info.limits;
    println!("chosen: {} ({})", info.adapter.name, info.adapter.backend);
    println!(
        "  driver: {} {}",
        info.adapter.driver, info.adapter.driver_info
    );
    println!(
        "  max storage binding: {} bytes",
        l.max_storage_buffer_binding_size
    );
    println!("  max buffer size: {} bytes", l.max_buffer_size);
    println!(
        "  max workgroups per dimension: {}",
        l.max_compute_workgroups_per_dimension
    );
    println!(
        "  max workgroup size: {} x {} x {} ({} invocations)",
        l.max_compute_workgroup_size_x,
        l.max_compute_workgroup_size_y,
        l.max_compute_workgroup_size_z,
        l.max_compute_invocations_per_workgroup
    );
    println!(
        "  workgroup memory: {} bytes",
        l.max_compute_workgroup_storage_size
    );
    println!(
        "  storage buffers per stage: {}",
        l.max_storage_buffers_per_shader_stage
    );
    println!("  features: {:?}", info.features);
    match info.subgroup_size {
        Some(n) => println!("  subgroup size: {n}"),
        None => println!("  subgroup size: varies or no subgroup ops"),
    }
    println!(
        "  wide storage access (8 f32 per load/store): {}",
        if info.wide_storage { "yes" } else { "no" }
    );
    Ok(())
}

fn make_optimizer(kind: OptimizerArg, lr: Option<f32>) -> Box<dyn Optimizer> {
    let adaptive = matches!(
        kind,
        OptimizerArg::Adam | OptimizerArg::Adamw | OptimizerArg::Rmsprop | OptimizerArg::Adagrad
    );
    let lr = lr.unwrap_or(if adaptive { 1e-3 } else { 0.05 });
    match kind {
        OptimizerArg::Gd => Box::new(optim::GradientDescent::new(lr)),
        OptimizerArg::Sgd => Box::new(optim::Sgd::new(lr).with_momentum(0.9)),
        OptimizerArg::Nesterov => {
            Box::new(optim::Sgd::new(lr).with_momentum(0.9).with_nesterov(true))
        }
        OptimizerArg::Adagrad => Box::new(optim::AdaGrad::new(lr)),
        OptimizerArg::Rmsprop => Box::new(optim::RmsProp::new(lr)),
        OptimizerArg::Adam => Box::new(optim::Adam::new(lr)),
        OptimizerArg::Adamw => Box::new(optim::AdamW::new(lr)),
    }
}

fn model_state(model: &dyn Module, opt: &dyn Optimizer) -> Result<Vec<(String, Tensor)>> {
    let mut s: Vec<_> = model
        .named_state()
        .into_iter()
        .map(|(n, t)| (format!("model.{n}"), t))
        .collect();
    s.extend(
        opt.state_tensors()?
            .into_iter()
            .map(|(n, t)| (format!("optim.{n}"), t)),
    );
    Ok(s)
}

/// The optimiser's saved state as tensors on `dev`.
fn optimizer_state(ckpt: &checkpoint::Checkpoint, dev: &Device) -> Result<Vec<(String, Tensor)>> {
    use wgrad::models::checkpoint::TensorData;
    ckpt.with_prefix("optim.")
        .tensors
        .iter()
        .map(|(name, st)| {
            let t = match &st.data {
                TensorData::F32(v) => Tensor::from_slice(v, &st.shape, dev)?,
                TensorData::U32(v) => Tensor::from_slice(v, &st.shape, dev)?,
                TensorData::I32(v) => Tensor::from_slice(v, &st.shape, dev)?,
            };
            Ok((name.clone(), t))
        })
        .collect()
}

fn train(a: TrainArgs) -> Result<()> {
    let Some(kind) = a.model.classifier() else {
        return match a.model {
            ModelArg::Autoencoder => train_autoencoder(&a),
            ModelArg::Linear => classic_linear(&a),
            ModelArg::Logistic => classic_logistic(&a),
            ModelArg::Pca => classic_pca(&a),
            _ => classic_whiten(&a),
        };
    };
    let dataset = a.dataset.dataset();
    let dev = Device::new()?;
    let root = data::data_root();
    let mut train_set = data::load(&root, dataset, Split::Train)?;
    if let Some(k) = a.limit {
        train_set = train_set.take(k);
    }
    let test_set = data::load(&root, dataset, Split::Test)?;
    let chw = [train_set.channels, train_set.height, train_set.width];
    let mut init = Initializer::new(&dev, a.seed);
    let mut model = kind.build(&mut init, chw, train_set.classes, a.seed)?;
    let mut opt = make_optimizer(a.optimizer, a.lr);
    let base_lr = opt.lr();

    std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    let ckpt_path = a.out.join("checkpoint.safetensors");
    let metrics_path = a.out.join("metrics.jsonl");
    let mut history: Vec<EpochMetrics> = Vec::new();
    let mut start_epoch = 0;
    if a.resume {
        let ckpt = checkpoint::load(&ckpt_path)?;
        let meta = &ckpt.metadata;
        for (key, want) in [("model", kind.name()), ("dataset", dataset.dir_name())] {
            if meta.get(key).map(String::as_str) != Some(want) {
                bail!(
                    "{} holds {key} {:?}, not {want}",
                    ckpt_path.display(),
                    meta.get(key)
                );
            }
        }
        ckpt.with_prefix("model.")
            .restore_into(&model.named_state())?;
        opt.load_state_tensors(&optimizer_state(&ckpt, &dev)?)?;
        start_epoch = meta
            .get("epoch")
            .context("checkpoint has no epoch")?
            .parse()?;
        history = report::read_jsonl(&metrics_path)?;
        history.truncate(start_epoch);
        report::write_jsonl(&metrics_path, &history)?;
        eprintln!(
            "resuming {} at epoch {}",
            ckpt_path.display(),
            start_epoch + 1
        );
    } else if metrics_path.exists() {
        std::fs::remove_file(&metrics_path)?;
    }

    let normalize = Normalize::for_dataset(dataset);
    let loader = DataLoader::new(
        &train_set,
        LoaderConfig::new(a.batch_size)
            .seed(a.seed)
            .normalize(normalize.clone())
            .augment(data::Augment {
                shift: a.shift,
                flip_p: a.flip,
                noise_std: a.noise,
            }),
    )?;
    if !a.json {
        println!(
            "training {} on {} ({} train / {} test images) with {:?} lr {} on {} ({})",
            kind.name(),
            dataset.name(),
            train_set.n,
            test_set.n,
            a.optimizer,
            base_lr,
            dev.info().adapter.name,
            dev.info().adapter.backend
        );
    }
    for epoch in start_epoch..a.epochs {
        let t0 = Instant::now();
        opt.set_lr(a.schedule.lr(base_lr, epoch, a.epochs));
        let pb = if a.json {
            ProgressBar::hidden()
        } else {
            ProgressBar::new(loader.num_batches() as u64)
        };
        pb.set_style(
            ProgressStyle::with_template("epoch {prefix} [{bar:30}] {pos}/{len} {msg} ({eta})")?
                .progress_chars("=> "),
        );
        pb.set_prefix(format!("{}/{}", epoch + 1, a.epochs));
        let mut on_progress = |p: Progress| {
            pb.set_position(p.step as u64);
            pb.set_message(format!(
                "loss {:.4} acc {:.2}% {:.0} ex/s",
                p.loss,
                100.0 * p.acc,
                p.examples_per_s
            ));
        };
        let tr = train_epoch(
            model_dyn(&mut model),
            opt.as_mut(),
            &loader,
            epoch,
            20,
            &dev,
            &mut on_progress,
        )?;
        pb.finish_and_clear();
        let te = evaluate(
            model_dyn(&mut model),
            &test_set,
            256,
            Some(normalize.clone()),
            &dev,
        )?;
        let m = EpochMetrics {
            epoch: epoch + 1,
            train_loss: tr.loss,
            train_acc: Some(tr.acc),
            test_loss: te.loss,
            test_acc: Some(te.acc),
            seconds: t0.elapsed().as_secs_f64(),
        };
        if a.json {
            println!("{}", serde_json::to_string(&m)?);
        } else {
            println!(
                "epoch {:>3}: train loss {:.4} acc {:.2}% | test loss {:.4} acc {:.2}% | {:.1}s",
                m.epoch,
                m.train_loss,
                100.0 * tr.acc,
                m.test_loss,
                100.0 * te.acc,
                m.seconds
            );
        }
        report::append_jsonl(&metrics_path, &m)?;
        history.push(m);
        report::plot_curves(
            &a.out.join("curve.png"),
            &history,
            &format!("{} on {}", kind.name(), dataset.name()),
        )?;
        let meta = BTreeMap::from([
            ("model".to_string(), kind.name().to_string()),
            ("dataset".to_string(), dataset.dir_name().to_string()),
            ("epoch".to_string(), (epoch + 1).to_string()),
            ("seed".to_string(), a.seed.to_string()),
            (
                "optimizer".to_string(),
                format!("{:?}", a.optimizer).to_lowercase(),
            ),
            ("lr".to_string(), base_lr.to_string()),
            (
                "schedule".to_string(),
                format!("{:?}", a.schedule).to_lowercase(),
            ),
            ("batch_size".to_string(), a.batch_size.to_string()),
        ]);
        checkpoint::save(&ckpt_path, &model_state(&model, opt.as_ref())?, &meta)?;
    }
    if !a.json {
        println!(
            "wrote {}, {}, {}",
            ckpt_path.display(),
            metrics_path.display(),
            a.out.join("curve.png").display()
        );
    }
    Ok(())
}

/// Prints one result as a JSON object (`--json`) or as `label: key value, ...`.
fn emit(json: bool, label: &str, fields: serde_json::Value) {
    if json {
        println!("{fields}");
    } else if let Some(obj) = fields.as_object() {
        let parts: Vec<String> = obj
            .iter()
            .filter(|(k, _)| *k != "model")
            .map(|(k, v)| match v.as_f64() {
                Some(f) if f.fract() != 0.0 => format!("{k} {f:.6}"),
                _ => format!("{k} {v}"),
            })
            .collect();
        println!("{label}: {}", parts.join(", "));
    }
}

fn classic_linear(a: &TrainArgs) -> Result<()> {
    let dev = Device::new()?;
    let opts = classic::LinearOptions {
        seed: a.seed,
        ..Default::default()
    };
    let r = classic::linear_regression(&dev, &opts)?;
    for f in &r.fits {
        emit(
            a.json,
            &format!("linear {}", f.method),
            serde_json::json!({
                "model": "linear", "method": f.method.name(), "train_mse": f.train_mse,
                "test_mse": f.test_mse, "test_r2": f.test_r2, "steps": f.steps,
                "rel_diff_from_closed_form": f.rel_diff, "seconds": f.seconds,
            }),
        );
    }
    if !r.all_agree() {
        bail!("the four methods disagree beyond their tolerances");
    }
    Ok(())
}

fn classic_logistic(a: &TrainArgs) -> Result<()> {
    let dev = Device::new()?;
    let dataset = a.dataset.dataset();
    let opts = classic::LogisticOptions {
        dataset,
        // MNIST: 3 vs 5; Fashion-MNIST: T-shirt (0) vs shirt (6), the hardest pair.
        classes: if dataset == Dataset::Mnist {
            (3, 5)
        } else {
            (0, 6)
        },
        max_train: a.limit,
        train: classic::Training {
            epochs: a.epochs,
            batch_size: a.batch_size,
            lr: a.lr.unwrap_or(1e-3),
            seed: a.seed,
            ..Default::default()
        },
        ..Default::default()
    };
    let r = classic::logistic_regression(&dev, &opts)?;
    for e in &r.epochs {
        emit(
            a.json,
            &format!("logistic {} epoch {}", r.task, e.epoch),
            serde_json::json!({
                "model": "logistic", "epoch": e.epoch, "train_loss": e.train_loss,
                "test_loss": e.test_loss, "test_acc": e.test_accuracy, "seconds": e.seconds,
            }),
        );
    }
    Ok(())
}

fn classic_pca(a: &TrainArgs) -> Result<()> {
    let dev = Device::new()?;
    let opts = classic::PcaOptions {
        dataset: a.dataset.dataset(),
        ..Default::default()
    };
    let r = classic::pca(&dev, &opts)?;
    let check = r.check.as_ref();
    emit(
        a.json,
        &format!("pca of {}", r.data),
        serde_json::json!({
            "model": "pca", "components": r.explained_variance_ratio.len(),
            "explained_variance_ratio": r.explained_variance_ratio,
            "cumulative": r.cumulative_ratio().last(),
            "reconstruction_mse_test": r.reconstruction_mse_test,
            "cpu_eigenvalue_rel_err": check.map(|c| c.max_rel_value_err),
            "cpu_min_abs_cos": check.map(|c| c.min_abs_cos),
            "seconds": r.covariance_seconds + r.eigen_seconds,
        }),
    );
    Ok(())
}

fn classic_whiten(a: &TrainArgs) -> Result<()> {
    let dev = Device::new()?;
    let opts = classic::WhitenOptions {
        data: classic::WhitenData::Images(a.dataset.dataset()),
        seed: a.seed,
        ..Default::default()
    };
    let r = classic::whitening(&dev, &opts)?;
    emit(
        a.json,
        &format!("whitening of {}", r.data),
        serde_json::json!({
            "model": "whiten", "components": r.components, "eps": r.eps,
            "pca_max_dev_from_identity_train": r.train.pca_max_dev,
            "zca_max_dev_train": r.train.zca_max_dev,
            "pca_max_dev_from_identity_heldout": r.test.pca_max_dev,
            "zca_max_dev_heldout": r.test.zca_max_dev, "seconds": r.seconds,
        }),
    );
    Ok(())
}

fn train_autoencoder(a: &TrainArgs) -> Result<()> {
    use wgrad::models::autoencoder::{self, Autoencoder, AutoencoderOptions};
    let dataset = a.dataset.dataset();
    let dev = Device::new()?;
    let root = data::data_root();
    let mut train_set = data::load(&root, dataset, Split::Train)?;
    if let Some(k) = a.limit {
        train_set = train_set.take(k);
    }
    let test_set = data::load(&root, dataset, Split::Test)?;
    let mut init = Initializer::new(&dev, a.seed);
    let model = Autoencoder::mnist(&mut init)?;
    let mut opt = make_optimizer(a.optimizer, a.lr);
    std::fs::create_dir_all(&a.out)?;
    let metrics_path = a.out.join("metrics.jsonl");
    if metrics_path.exists() {
        std::fs::remove_file(&metrics_path)?;
    }
    let opts = AutoencoderOptions {
        epochs: a.epochs,
        batch_size: a.batch_size,
        seed: a.seed,
        ..Default::default()
    };
    let mut history = Vec::new();
    let mut failed = None;
    autoencoder::train_autoencoder(
        &model,
        opt.as_mut(),
        &train_set,
        &test_set,
        &opts,
        &mut |m| {
            emit(
                a.json,
                &format!("autoencoder epoch {}", m.epoch),
                serde_json::json!({
                    "model": "autoencoder", "epoch": m.epoch, "train_mse": m.train_loss,
                    "test_mse": m.test_loss, "seconds": m.seconds,
                }),
            );
            history.push(m.clone());
            let written = report::append_jsonl(&metrics_path, m).and_then(|_| {
                report::plot_curves(&a.out.join("curve.png"), &history, "autoencoder")
            });
            if let Err(e) = written {
                failed.get_or_insert(e);
            }
        },
    )?;
    if let Some(e) = failed {
        return Err(e.into());
    }
    let meta = BTreeMap::from([
        ("model".to_string(), "autoencoder".to_string()),
        ("dataset".to_string(), dataset.dir_name().to_string()),
        ("epoch".to_string(), a.epochs.to_string()),
    ]);
    checkpoint::save(
        &a.out.join("checkpoint.safetensors"),
        &model.named_state(),
        &meta,
    )?;
    autoencoder::save_reconstructions(&model, &test_set, 10, &a.out.join("reconstructions.png"))?;
    if !a.json {
        println!("wrote {}", a.out.display());
    }
    Ok(())
}

fn model_dyn(m: &mut wgrad::models::nn::Sequential) -> &mut dyn Module {
    m
}

fn eval(path: &Path, batch_size: usize) -> Result<()> {
    let ckpt = checkpoint::load(path)?;
    let meta = &ckpt.metadata;
    let name = meta.get("model").context("checkpoint has no model name")?;
    let dataset = match meta.get("dataset").map(String::as_str) {
        Some("mnist") => Dataset::Mnist,
        Some("fashion-mnist") => Dataset::FashionMnist,
        other => bail!("unknown dataset {other:?} in {}", path.display()),
    };
    let seed: u64 = meta
        .get("seed")
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(0);
    let dev = Device::new()?;
    let test_set = data::load(data::data_root(), dataset, Split::Test)?;
    let mut init = Initializer::new(&dev, seed);
    if name == "autoencoder" {
        use wgrad::models::autoencoder::{Autoencoder, evaluate_autoencoder};
        let model = Autoencoder::mnist(&mut init)?;
        ckpt.restore_into(&model.named_state())?;
        let mse = evaluate_autoencoder(&model, &test_set, batch_size)?;
        println!(
            "autoencoder on {} test set: reconstruction MSE {mse:.6}",
            dataset.name()
        );
        return Ok(());
    }
    let kind = Classifier::from_name(name).with_context(|| format!("unknown model {name:?}"))?;
    let mut model = kind.build(
        &mut init,
        [test_set.channels, test_set.height, test_set.width],
        test_set.classes,
        seed,
    )?;
    ckpt.with_prefix("model.")
        .restore_into(&model.named_state())?;
    let m = evaluate(
        model_dyn(&mut model),
        &test_set,
        batch_size,
        Some(Normalize::for_dataset(dataset)),
        &dev,
    )?;
    println!(
        "{} on {} test set: accuracy {:.2}% loss {:.4} ({} images, epoch {})",
        kind.name(),
        dataset.name(),
        100.0 * m.acc,
        m.loss,
        m.examples,
        meta.get("epoch").map(String::as_str).unwrap_or("?")
    );
    Ok(())
}

fn bench(json: bool, filter: Option<&str>, tune: bool, profile: bool) -> Result<()> {
    let dev = Device::new()?;
    let info = dev.info();
    if tune {
        wgrad::bench::tune(&dev, &mut |r| {
            if json {
                println!("{}", serde_json::to_string(r).unwrap_or_default());
            } else {
                let times: Vec<String> =
                    r.ms.iter().map(|(e, t)| format!("{e} {t:.2} ms")).collect();
                println!(
                    "tune {:<52} -> {:<11} ({})",
                    r.shape,
                    r.chosen,
                    times.join(", ")
                );
            }
        })?;
        if !json {
            println!("saved to {}", wgrad::device::tuning_path().display());
        }
    }
    if !json {
        println!(
            "adapter: {} ({}) driver {} {}",
            info.adapter.name, info.adapter.backend, info.adapter.driver, info.adapter.driver_info
        );
        println!(
            "{:<22} {:>12} {:<8} {:>12} {:>10} {:>10} {:>10}",
            "name", "value", "unit", "cpu ref", "ratio", "wall ms", "gpu ms"
        );
    }
    dev.set_profiling(profile);
    wgrad::bench::run(&dev, filter, &mut |f| {
        if profile {
            let kernels = dev.profile();
            let total: f64 = kernels.iter().map(|k| k.ms).sum();
            for k in kernels.iter().take(12) {
                eprintln!(
                    "    {:<34} {:>6} calls {:>9.3} ms/call {:>5.1}%",
                    k.name,
                    k.calls,
                    k.ms / k.calls as f64,
                    100.0 * k.ms / total
                );
            }
            dev.set_profiling(true);
        }
        if json {
            println!("{}", serde_json::to_string(f).unwrap_or_default());
        } else {
            let r = |v: Option<f64>| v.map(|v| format!("{v:.2}")).unwrap_or_default();
            let gpu = f.gpu_ms.map(|g| format!("{g:.3}")).unwrap_or_default();
            println!(
                "{:<22} {:>12.2} {:<8} {:>12} {:>10} {:>10.3} {:>10}",
                f.name,
                f.value,
                f.unit,
                r(f.reference),
                r(f.ratio),
                f.ms,
                gpu
            );
        }
    })?;
    Ok(())
}

fn main() -> Result<()> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    match Cli::parse().command {
        Command::Info => info(),
        Command::Train(a) => train(a),
        Command::Eval {
            checkpoint,
            batch_size,
        } => eval(&checkpoint, batch_size),
        Command::Bench {
            json,
            filter,
            tune,
            profile,
        } => bench(json, filter.as_deref(), tune, profile),
    }
}
