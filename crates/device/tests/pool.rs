//! The buffer pool and the recording machinery: bounded memory over thousands of allocate /
//! compute / free rounds, no allocation for a tensor over the binding limit, more dispatches than the
//! params arena holds between two submissions, buffers reused while recorded work still reads
//! them, and bind groups reused across steps.

mod common;

use common::*;
use wgrad_device::{BinaryOp, DeviceError, GpuArray, Transpose, UnaryOp};

#[test]
fn over_the_binding_limit_without_allocating() {
    // Its own devices: it checks that nothing is allocated.
    let adapters = open_all();
    run_on(
        "over_the_binding_limit_without_allocating",
        &adapters,
        |dev| {
            let limit = dev.max_binding_bytes();
            let before = dev.memory_stats();
            let too_many = (limit / 4 + 1) as usize;
            let is_tl = |e: &DeviceError, bytes: u64| matches!(e, DeviceError::BindingTooLarge { bytes: b, limit: l, .. } if *b == bytes && *l == limit);
            macro_rules! tl {
                ($what:expr, $r:expr, $bytes:expr) => {
                    match $r {
                        Err(e) if is_tl(&e, $bytes) => {}
                        other => {
                            return fail(format!(
                                "{}: want BindingTooLarge of {} bytes, got {other:?}",
                                $what, $bytes
                            ))
                        }
                    }
                };
            }
            let bytes = too_many as u64 * 4;
            tl!("zeros", GpuArray::zeros(dev, &[too_many]), bytes);
            tl!("full 2-D", GpuArray::full(dev, &[too_many, 1], 1.0), bytes);
            tl!("arange", GpuArray::arange(dev, 0.0, 1.0, too_many), bytes);
            tl!(
                "random",
                GpuArray::random(
                    dev,
                    &[1, too_many],
                    wgrad_device::Distribution::Normal {
                        mean: 0.0,
                        std: 1.0
                    },
                    0,
                    0
                ),
                bytes
            );
            // Far beyond any memory: 2^40 elements.
            tl!(
                "zeros 2^40",
                GpuArray::zeros(dev, &[1 << 20, 1 << 20]),
                1u64 << 42
            );
            // Through ops whose output is too large.
            let small = GpuArray::zeros(dev, &[1])?;
            let mid_before = dev.memory_stats().live_bytes;
            tl!("broadcast_to", small.broadcast_to(&[too_many]), bytes);
            let col = GpuArray::zeros(dev, &[1 << 16, 1])?;
            let row = GpuArray::zeros(dev, &[1, 1 << 16])?;
            tl!(
                "matmul outer product",
                col.matmul(&row, Transpose::No, Transpose::No),
                1u64 << 34
            );
            tl!(
                "binary broadcast",
                col.binary(BinaryOp::Add, &row),
                1u64 << 34
            );
            tl!(
                "pad",
                small.pad(&[(0, too_many)], 0.0),
                (too_many as u64 + 1) * 4
            );
            let mid_after = dev.memory_stats().live_bytes;
            if mid_after != mid_before + col.capacity_bytes() + row.capacity_bytes() {
                return fail(format!(
                    "a failed op allocated: live {mid_before} -> {mid_after}"
                ));
            }
            drop((small, col, row));
            dev.synchronize()?;
            let after = dev.memory_stats();
            if after.live_bytes != before.live_bytes
                || after.peak_live_bytes > before.live_bytes + (1 << 21)
            {
                return fail(format!("memory moved: {before:?} -> {after:?}"));
            }
            // The element count overflowing usize is an InvalidShape, not a panic.
            match GpuArray::zeros(dev, &[usize::MAX, 2]) {
                Err(DeviceError::InvalidShape { .. }) => {}
                other => return fail(format!("overflowing shape: got {other:?}")),
            }
            Ok(())
        },
    );
}

#[test]
fn buffer_pool_stays_bounded() {
    // Its own devices: live/pooled bytes are per device and other tests would move them.
    let adapters = open_all();
    run_on("buffer_pool_stays_bounded", &adapters, |dev| {
        dev.synchronize()?;
        let start = dev.memory_stats();
        let data: Vec<f32> = (0..37).map(|i| i as f32).collect();
        for round in 0..10_000 {
            let a = GpuArray::from_slice(dev, &data, &[37])?;
            let b = a.binary(BinaryOp::Add, &a)?;
            if round % 2500 == 0 {
                let got = b.to_vec::<f32>()?;
                let want: Vec<f32> = data.iter().map(|v| v * 2.0).collect();
                check_bits(&format!("round {round}"), &got, &want)?;
            }
        }
        dev.synchronize()?;
        let mid = dev.memory_stats();
        // One size allocated and freed over and over: the pool never holds more than was ever live
        // at once (a leak or a missed reuse would grow it with the round count).
        if mid.pooled_bytes >= 1 << 20 || mid.pooled_bytes > mid.peak_live_bytes {
            return fail(format!("after 10,000 rounds: {mid:?}"));
        }
        // Mixed sizes reuse their size classes.
        for round in 0..1000usize {
            let n = [5usize, 1000, 5000, 20_000][round % 4];
            let a = GpuArray::full(dev, &[n], 1.0)?;
            let b = a.unary(UnaryOp::Exp)?.binary(BinaryOp::Mul, &a)?;
            drop(b);
        }
        dev.synchronize()?;
        let end = dev.memory_stats();
        eprintln!("pool: start {start:?}, after 10,000 rounds {mid:?}, end {end:?}");
        if end.live_bytes != start.live_bytes {
            return fail(format!(
                "live bytes {} -> {}",
                start.live_bytes, end.live_bytes
            ));
        }
        // The steady state needs a handful of buffers per size class: well under 1 MiB.
        if end.pooled_bytes >= 1 << 20 {
            return fail(format!("pooled bytes {} >= 1 MiB", end.pooled_bytes));
        }
        if end.peak_live_bytes >= 1 << 20 {
            return fail(format!("peak live bytes {} >= 1 MiB", end.peak_live_bytes));
        }
        dev.trim_pool();
        if dev.memory_stats().pooled_bytes != 0 {
            return fail("trim_pool left pooled bytes");
        }
        // The pool still works after a trim.
        let a = GpuArray::from_slice(dev, &data, &[37])?;
        check_bits(
            "after trim",
            &a.binary(BinaryOp::Sub, &a)?.to_vec::<f32>()?,
            &[0.0; 37],
        )?;
        Ok(())
    });
}

#[test]
fn many_dispatches_between_submissions() {
    // Thousands of small ops recorded without an upload or a readback overflow the 1 MiB params
    // arena several times (each dispatch takes an aligned slot of its params).
    on_each_device("many_dispatches_between_submissions", |dev| {
        let mut x = GpuArray::zeros(dev, &[37])?;
        let mut y = GpuArray::zeros(dev, &[37])?;
        let one = GpuArray::full(dev, &[1], 1.0)?;
        for _ in 0..10_000 {
            x = x.unary(UnaryOp::AddScalar(1.0))?;
            y = y.binary(BinaryOp::Add, &one)?; // a larger params struct
        }
        check_bits("10,000 chained unary ops", &down(&x)?, &[10_000.0; 37])?;
        check_bits("10,000 chained binary ops", &down(&y)?, &[10_000.0; 37])?;
        Ok(())
    });
}

#[test]
fn bind_groups_are_reused_with_each_dispatch_s_parameters() {
    // Own devices: the test switches fusion off and counts bind groups. The same ops over the same
    // pooled buffers, step after step, reuse their bind groups; each dispatch must still read its
    // own parameters (a dynamic offset into the params arena), here a different scalar every time.
    run_on(
        "bind_groups_are_reused_with_each_dispatch_s_parameters",
        &open_all(),
        |dev| {
            dev.set_fusion(false)?;
            let x = up(dev, &(0..37).map(|i| i as f32).collect::<Vec<_>>(), &[37])?;
            let w = GpuArray::full(dev, &[37], 0.5)?;
            let step = |s: f32| -> Result<GpuArray, Flow> {
                let y = x.unary(UnaryOp::AddScalar(s))?;
                let z = y.binary(BinaryOp::Mul, &w)?;
                Ok(z.unary(UnaryOp::MulScalar(s))?)
            };
            let mut made = Vec::new();
            for k in 0..8 {
                let s = k as f32 + 1.0;
                let before = dev.bind_group_count();
                let got = down(&step(s)?)?;
                made.push(dev.bind_group_count() - before);
                // (i + s) * 0.5 * s: exact for these small values.
                let want: Vec<f32> = (0..37).map(|i| (i as f32 + s) * 0.5 * s).collect();
                check_bits(&format!("step {k}"), &got, &want)?;
            }
            // The pool settles within a few steps (each readback's buffers shift the first ones).
            if made[4..].iter().any(|&n| n != 0) {
                return fail(format!(
                    "bind groups made per step: {made:?}, want 0 after four"
                ));
            }
            // Trimming the pool drops the kept bind groups with the buffers; work goes on.
            dev.trim_pool();
            check_bits(
                "after trim_pool",
                &down(&step(2.0)?)?,
                &(0..37).map(|i| (i as f32 + 2.0)).collect::<Vec<f32>>(),
            )?;
            dev.set_fusion(true)?;
            Ok(())
        },
    );
}

#[test]
fn reused_buffers_do_not_clobber_pending_work() {
    // Freed buffers go back to the pool while recorded, unsubmitted dispatches still read them; the
    // next upload or kernel that gets the buffer must not change what those dispatches see.
    on_each_device("reused_buffers_do_not_clobber_pending_work", |dev| {
        let mut r = rng(301);
        let n = 300;
        let mut outs = Vec::new();
        let mut want = Vec::new();
        for round in 0..64 {
            let xs = uniform(&mut r, n, -1.0, 1.0);
            let ys = uniform(&mut r, n, -1.0, 1.0);
            let a = up(dev, &xs, &[n])?;
            let b = a.unary(UnaryOp::MulScalar(2.0))?;
            drop(a); // b's dispatch (not yet submitted) still reads a's buffer
            let c = if round % 2 == 0 {
                up(dev, &ys, &[n])? // an upload into (likely) a's old buffer
            } else {
                GpuArray::full(dev, &[n], 0.5)? // a kernel writing it
            };
            let d = b.binary(BinaryOp::Add, &c)?;
            drop((b, c));
            want.push(
                xs.iter()
                    .zip(&ys)
                    .map(|(x, y)| 2.0 * x + if round % 2 == 0 { *y } else { 0.5 })
                    .collect::<Vec<f32>>(),
            );
            outs.push(d);
        }
        for (i, (d, w)) in outs.iter().zip(&want).enumerate() {
            // 2x is exact; one rounded addition.
            check_close(&format!("round {i}"), &down(d)?, &f64s(w), 2e-7, 0.0)?;
        }
        Ok(())
    });
}

#[test]
fn gpu_timer_times_the_passes_it_saw() {
    on_each_device("gpu_timer_times_the_passes_it_saw", |dev| {
        assert_eq!(dev.stop_gpu_timer()?, None, "no timer was running");
        if !dev.start_gpu_timer()? {
            return Err(Flow::Skip("no TIMESTAMP_QUERY".into()));
        }
        let a = GpuArray::full(dev, &[256, 256], 0.5)?;
        // Several submissions, so several timed passes: each readback ends one.
        let mut total = 0.0;
        for _ in 0..3 {
            let c = a.matmul(&a, Transpose::No, Transpose::No)?;
            total += c.to_vec::<f32>()?[0];
        }
        assert_eq!(total, 3.0 * 64.0);
        let ms = dev.stop_gpu_timer()?.expect("the timer was running");
        assert!(ms > 0.0 && ms < 60_000.0, "{ms} ms");
        // Stopped: nothing is timed any more.
        a.unary(UnaryOp::Relu)?.to_vec::<f32>()?;
        assert_eq!(dev.stop_gpu_timer()?, None);
        Ok(())
    });
}
