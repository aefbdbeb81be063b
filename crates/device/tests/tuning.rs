//! Tuning records: a choice saved by one device is loaded by the next device on the same adapter,
//! other adapters' records in the file are kept, and a matmul run with the recorded variant gives
//! the same result as the heuristic one (every variant is exact up to summation order here), for
//! plain products and for products summed over their batch (a class of their own).

use wgrad_device::{Device, GpuArray, Kernel, ShapeClass, Transpose};

#[test]
fn recorded_choices_survive_a_restart_and_keep_other_adapters()
-> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::temp_dir().join(format!("wgrad-tuning-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let file = dir.join("tuning.tsv");
    std::fs::write(
        &file,
        "Other GPU\tother driver\tmatmul\tm10n10k10\tmain_8x8\n",
    )?;
    // SAFETY: this test binary holds this one test, so no other thread reads the environment.
    unsafe { std::env::set_var("WGRAD_TUNE_FILE", &file) };

    let dev = Device::new()?;
    let class = ShapeClass::of(1, 96, 80, 7);
    assert_eq!(dev.tuned_variant(Kernel::Matmul, class), None);
    let a = GpuArray::from_slice(
        &dev,
        &(0..96 * 7).map(|i| (i % 13) as f32).collect::<Vec<_>>(),
        &[96, 7],
    )?;
    let b = GpuArray::from_slice(
        &dev,
        &(0..7 * 80).map(|i| (i % 5) as f32).collect::<Vec<_>>(),
        &[7, 80],
    )?;
    let heuristic = a
        .matmul(&b, Transpose::No, Transpose::No)?
        .to_vec::<f32>()?;
    for entry in a.matmul_variants(&b, Transpose::No, Transpose::No) {
        dev.set_tuned_variant(Kernel::Matmul, class, entry);
        // Small integers: every product and sum is exact in f32, whatever the order.
        assert_eq!(
            a.matmul(&b, Transpose::No, Transpose::No)?
                .to_vec::<f32>()?,
            heuristic,
            "{entry}"
        );
    }
    dev.set_tuned_variant(Kernel::Matmul, class, "main_16x16");
    assert_eq!(dev.save_tuning()?, file);
    drop(dev);

    let again = Device::new()?;
    assert_eq!(
        again.tuned_variant(Kernel::Matmul, class).as_deref(),
        Some("main_16x16")
    );
    let text = std::fs::read_to_string(&file)?;
    assert!(
        text.starts_with("Other GPU\tother driver\tmatmul\tm10n10k10\tmain_8x8\n"),
        "{text}"
    );
    assert!(text.lines().count() >= 2, "{text}");
    assert!(GpuArray::matmul_variant(&a, &b, Transpose::No, Transpose::No, "main_99x99").is_err());

    // A product summed over its batch has a class of its own: a choice for it is not one for the
    // per-batch product of the same shape, and every variant gives the same sum.
    let xs = GpuArray::from_slice(
        &again,
        &(0..5 * 12 * 9).map(|i| (i % 7) as f32).collect::<Vec<_>>(),
        &[5, 12, 9],
    )?;
    let ys = GpuArray::from_slice(
        &again,
        &(0..5 * 16 * 9).map(|i| (i % 3) as f32).collect::<Vec<_>>(),
        &[5, 16, 9],
    )?;
    let (summed, per_batch) = (
        ShapeClass::of_sum(5, 12, 16, 9),
        ShapeClass::of(5, 12, 16, 9),
    );
    let want = xs
        .matmul_sum_batch(&ys, Transpose::No, Transpose::Yes)?
        .to_vec::<f32>()?;
    for entry in xs.matmul_variants(&ys, Transpose::No, Transpose::Yes) {
        let got = xs.matmul_sum_batch_variant(&ys, Transpose::No, Transpose::Yes, entry)?;
        assert_eq!(got.to_vec::<f32>()?, want, "{entry}");
        again.set_tuned_variant(Kernel::Matmul, summed, entry);
        let tuned = xs.matmul_sum_batch(&ys, Transpose::No, Transpose::Yes)?;
        assert_eq!(tuned.to_vec::<f32>()?, want, "tuned {entry}");
    }
    assert_eq!(again.tuned_variant(Kernel::Matmul, per_batch), None);

    // Tuning times the operands as the launch runs them: a classifier's 10 columns are padded
    // to 12 where the subgroup kernels run (8-lane subgroups), and nothing else changes.
    let x = GpuArray::full(&again, &[64, 3136], 0.5)?;
    let w = GpuArray::full(&again, &[3136, 10], 0.25)?;
    let (xr, wr) = x.matmul_operands_as_run(&w, Transpose::No, Transpose::No, false)?;
    let want_w: &[usize] = if again.info().subgroup_size == Some(8) {
        &[3136, 12]
    } else {
        &[3136, 10]
    };
    assert_eq!((xr.shape(), wr.shape()), (&[64usize, 3136][..], want_w));
    let (xs2, ys2) = xs.matmul_operands_as_run(&ys, Transpose::No, Transpose::Yes, true)?;
    assert_eq!((xs2.shape(), ys2.shape()), (xs.shape(), ys.shape()));
    again.save_tuning()?;
    let text = std::fs::read_to_string(&file)?;
    assert!(text.contains("\tm4n4k4bs\t"), "{text}");
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
