//! The `wgrad` command line on real data (skipped with a message when `data/` is not set up):
//! a short run reaches a stated accuracy, the same seed gives the same numbers, `--resume`
//! continues exactly, and `eval` reads the checkpoint back.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

fn data_ready(dataset: &str) -> bool {
    let root = std::env::var_os("WGRAD_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("data"));
    let ok = root.join(dataset).join("t10k-labels-idx1-ubyte").exists();
    if !ok {
        eprintln!(
            "skipped: {dataset} is not under {} (run scripts/setup-data.sh)",
            root.display()
        );
    }
    ok
}

fn wgrad(args: &[&str]) -> Result<String> {
    let out = Command::new(env!("CARGO_BIN_EXE_wgrad"))
        .args(args)
        .env(
            "XDG_RUNTIME_DIR",
            std::env::var("XDG_RUNTIME_DIR").unwrap_or_else(|_| "/tmp".into()),
        )
        .output()
        .context("running wgrad")?;
    if !out.status.success() {
        bail!(
            "wgrad {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8(out.stdout)?)
}

/// The JSON lines of a run with the wall-clock field removed.
fn metrics(stdout: &str) -> Result<Vec<serde_json::Value>> {
    stdout
        .lines()
        .map(|l| {
            let mut v: serde_json::Value = serde_json::from_str(l)?;
            v.as_object_mut().context("object")?.remove("seconds");
            Ok(v)
        })
        .collect()
}

#[test]
fn softmax_regression_one_epoch_on_fashion_mnist() -> Result<()> {
    if !data_ready("fashion-mnist") {
        return Ok(());
    }
    let dir = tempfile::tempdir()?;
    let out = dir.path().join("run");
    let out = out.to_str().context("path")?;
    let stdout = wgrad(&[
        "train",
        "softmax",
        "--dataset",
        "fashion-mnist",
        "--epochs",
        "1",
        "--json",
        "--out",
        out,
    ])?;
    let m = metrics(&stdout)?;
    let acc = m[0]["test_acc"].as_f64().context("test_acc")?;
    // One epoch of Adam at lr 1e-3, batch 64, reaches about 82%; 80% leaves room for noise in
    // nothing (the run is deterministic) but for adapters whose rounding differs.
    assert!(acc > 0.80, "test accuracy {acc}");
    for f in ["checkpoint.safetensors", "metrics.jsonl", "curve.png"] {
        assert!(Path::new(out).join(f).exists(), "{f} missing");
    }
    let eval = wgrad(&["eval", &format!("{out}/checkpoint.safetensors")])?;
    assert!(
        eval.contains(&format!("accuracy {:.2}%", 100.0 * acc)),
        "eval said: {eval}"
    );
    Ok(())
}

#[test]
fn same_seed_same_numbers_and_resume_is_exact() -> Result<()> {
    if !data_ready("mnist") {
        return Ok(());
    }
    let dir = tempfile::tempdir()?;
    let path = |name: &str| dir.path().join(name).to_string_lossy().into_owned();
    let base = [
        "train",
        "mlp",
        "--dataset",
        "mnist",
        "--limit",
        "2000",
        "--json",
        "--seed",
        "7",
    ];
    let run = |out: &str, epochs: &str, extra: &[&str]| -> Result<Vec<serde_json::Value>> {
        let mut args: Vec<&str> = base.to_vec();
        args.extend(["--epochs", epochs, "--out", out]);
        args.extend(extra);
        metrics(&wgrad(&args)?)
    };
    let a = run(&path("a"), "2", &[])?;
    let b = run(&path("b"), "2", &[])?;
    assert_eq!(a, b, "same seed, same adapter: same numbers");

    let c1 = run(&path("c"), "1", &[])?;
    let c2 = run(&path("c"), "2", &["--resume"])?;
    assert_eq!(c1[0], a[0]);
    assert_eq!(c2, vec![a[1].clone()], "a resumed run continues exactly");
    let history = std::fs::read_to_string(dir.path().join("c").join("metrics.jsonl"))?;
    assert_eq!(
        history.lines().count(),
        2,
        "metrics.jsonl keeps both epochs"
    );
    Ok(())
}
