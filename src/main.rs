//! The `wgrad` command line: `wgrad info` (and training and benchmarks as they land).

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "wgrad", version, about = "Deep learning on any GPU through wgpu")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List every adapter wgpu finds and show the one wgrad picks, with its limits and features.
    Info,
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
    let dev = wgrad::Device::new()?;
    let info = dev.info();
    let l = &info.limits;
    println!("chosen: {} ({})", info.adapter.name, info.adapter.backend);
    println!("  driver: {} {}", info.adapter.driver, info.adapter.driver_info);
    println!("  max storage binding: {} bytes", l.max_storage_buffer_binding_size);
    println!("  max buffer size: {} bytes", l.max_buffer_size);
    println!("  max workgroups per dimension: {}", l.max_compute_workgroups_per_dimension);
    println!(
        "  max workgroup size: {} x {} x {} ({} invocations)",
        l.max_compute_workgroup_size_x,
        l.max_compute_workgroup_size_y,
        l.max_compute_workgroup_size_z,
        l.max_compute_invocations_per_workgroup
    );
    println!("  workgroup memory: {} bytes", l.max_compute_workgroup_storage_size);
    println!("  storage buffers per stage: {}", l.max_storage_buffers_per_shader_stage);
    println!("  features: {:?}", info.features);
    Ok(())
}

fn main() -> Result<()> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    match Cli::parse().command {
        Command::Info => info(),
    }
}
