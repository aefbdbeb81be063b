//! Every WGSL kernel family parses and validates with naga (the front end wgpu uses), with every
//! validation flag and every capability on, so a broken shader fails here without a GPU. Families
//! are checked as the launchers compile them (`Kernel::source`, which prepends the shared
//! element-wise op tables to the unary and binary families), and every file in `shaders/` must be
//! part of some family.

use std::path::{Path, PathBuf};

use naga::valid::{Capabilities, ValidationFlags, Validator};
use wgrad::device::Kernel;

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
fn every_kernel_family_parses_and_validates() {
    let mut failures = Vec::new();
    for kernel in Kernel::ALL {
        let name = kernel.name();
        let source = kernel.source();
        let module = match naga::front::wgsl::parse_str(source) {
            Ok(m) => m,
            Err(e) => {
                failures.push(format!(
                    "{name}: parse error:\n{}",
                    e.emit_to_string_with_path(source, name)
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
                e.emit_to_string_with_path(source, name)
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} families failed:\n{}",
        failures.len(),
        Kernel::ALL.len(),
        failures.join("\n\n")
    );
}

#[test]
fn every_shader_file_belongs_to_a_family() {
    let files = shader_files();
    assert!(!files.is_empty(), "shaders/ holds no .wgsl file");
    for path in files {
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        assert!(
            Kernel::ALL.iter().any(|k| k.source().contains(&text)),
            "{} is compiled by no kernel family",
            path.display()
        );
    }
    // Each family is named after its own file.
    for kernel in Kernel::ALL {
        let file = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("shaders")
            .join(format!("{}.wgsl", kernel.name()));
        assert!(file.exists(), "{} is missing", file.display());
    }
}
