//! `cargo bench`: the same harness as `wgrad bench`, printing one JSON object per figure.

fn main() -> anyhow::Result<()> {
    let dev = wgrad::Device::new()?;
    let filter = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    wgrad::bench::run(&dev, filter.as_deref(), &mut |f| {
        println!("{}", serde_json::to_string(f).unwrap_or_default());
    })?;
    Ok(())
}
