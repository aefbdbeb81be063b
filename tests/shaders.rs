//! Every WGSL kernel family in `shaders/` parses and validates with naga (the front end wgpu uses),
//! with every validation flag and every capability on, so a broken shader fails here without a GPU.

use std::path::{Path, PathBuf};

use naga::valid::{Capabilities, ValidationFlags, Validator};

/// The kernel families the device crate's launchers load (`Kernel::ALL` in crates/device).
const FAMILIES: [&str; 11] = [
    "unary",
    "binary",
    "fill",
    "random",
    "matmul",
    "matmul_subgroup",
    "conv",
    "pool",
    "reduce",
    "movement",
    "optim",
];

fn shader_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("shaders");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "wgsl"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_shader_parses_and_validates() {
    let files = shader_files();
    let mut failures = Vec::new();
    for path in &files {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let source =
            std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {name}: {e}"));
        let module = match naga::front::wgsl::parse_str(&source) {
            Ok(m) => m,
            Err(e) => {
                failures.push(format!(
                    "{name}: parse error:\n{}",
                    e.emit_to_string_with_path(&source, &name)
                ));
                continue;
            }
        };
        if module.entry_points.is_empty() {
            failures.push(format!("{name}: no entry point"));
        }
        let mut validator = Validator::new(ValidationFlags::all(), Capabilities::all());
        if let Err(e) = validator.validate(&module) {
            failures.push(format!(
                "{name}: validation error:\n{}",
                e.emit_to_string_with_path(&source, &name)
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} shaders failed:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n\n")
    );
}

#[test]
fn every_kernel_family_is_present() {
    let files = shader_files();
    let names: Vec<String> = files
        .iter()
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    let missing: Vec<&str> = FAMILIES
        .iter()
        .copied()
        .filter(|f| !names.iter().any(|n| n == f))
        .collect();
    assert!(
        missing.is_empty(),
        "shaders/ lacks {missing:?} (has {names:?})"
    );
    assert!(
        files.len() >= FAMILIES.len(),
        "shaders/ holds {} .wgsl files, want at least {}",
        files.len(),
        FAMILIES.len()
    );
}
