//! Reductions, arg-reductions, the softmax family and variance against f64 references, plus
//! determinism of a long sum, on every adapter.

mod common;

use common::*;
use wgrad_device::{BinaryOp, GpuArray, ReduceOp, UnaryOp};

const OPS: [ReduceOp; 4] = [ReduceOp::Sum, ReduceOp::Mean, ReduceOp::Max, ReduceOp::Min];

fn reduced_shape(shape: &[usize], axis: usize, keepdim: bool) -> Vec<usize> {
    let mut s = shape.to_vec();
    if keepdim {
        s[axis] = 1;
    } else {
        s.remove(axis);
    }
    s
}

/// Reference of `reduce(op, axis)`: the sum (with its error bound) or the exact max / min.
fn reduce_ref(x: &[f32], shape: &[usize], axis: usize, op: ReduceOp) -> Vec<Acc> {
    let (outer, len, inner) = split(shape, axis);
    let mut out = Vec::with_capacity(outer * inner);
    for o in 0..outer {
        for i in 0..inner {
            let vals = (0..len).map(|j| f64::from(x[(o * len + j) * inner + i]));
            let mut acc = Acc::default();
            match op {
                ReduceOp::Sum | ReduceOp::Mean => vals.for_each(|v| acc.add(v)),
                ReduceOp::Max => acc.v = vals.fold(f64::NEG_INFINITY, f64::max),
                ReduceOp::Min => acc.v = vals.fold(f64::INFINITY, f64::min),
            }
            if op == ReduceOp::Mean {
                acc.v /= len as f64;
                acc.abs /= len as f64;
            }
            out.push(acc);
        }
    }
    out
}

/// Checks one reduction. Sums: the gamma_(n+1) sum|x| bound of Acc (the inputs are exact, so the
/// "+1" only adds slack); mean multiplies by an f32 1/len afterwards, two more roundings (2u
/// relative, 3u asserted). Max / min return an input: exact (the bound is 0).
fn check_reduce(
    dev: &wgrad_device::Device,
    x: &[f32],
    shape: &[usize],
    axis: usize,
    op: ReduceOp,
    keepdim: bool,
) -> Res {
    let want = reduce_ref(x, shape, axis, op);
    let y = up(dev, x, shape)?.reduce(op, axis, keepdim)?;
    let what = format!("{op:?} axis {axis} of {shape:?} keepdim {keepdim}");
    check_shape(&what, &y, &reduced_shape(shape, axis, keepdim))?;
    let extra = if op == ReduceOp::Mean { 3.0 * U } else { 0.0 };
    check_acc(&what, &down(&y)?, &want, extra)
}

#[test]
fn reduce_each_axis_with_and_without_keepdim() {
    let shapes: Vec<Vec<usize>> = vec![
        vec![6, 5, 7],
        vec![1, 9, 1],
        vec![3, 1, 4],
        vec![2, 0, 3], // empty middle axis: only reducing along it is an error (tested in errors.rs)
        vec![17, 13, 19],
        vec![300, 2, 3], // more outputs than one workgroup
    ];
    on_each_device("reduce_each_axis_with_and_without_keepdim", |dev| {
        let mut r = rng(101);
        for shape in &shapes {
            let x = uniform(&mut r, numel(shape), -3.0, 3.0);
            for axis in 0..3 {
                for op in OPS {
                    if shape[axis] == 0 && op != ReduceOp::Sum {
                        continue;
                    }
                    for keepdim in [false, true] {
                        check_reduce(dev, &x, shape, axis, op, keepdim)?;
                    }
                }
            }
        }
        Ok(())
    });
}

#[test]
fn reduce_long_axis_two_stage() {
    // len > 1024 with fewer than 2048 outputs takes the two-stage (chunked) path: a length just
    // over one chunk, a length with a ragged last chunk, inner > 1, and a single output.
    let shapes: Vec<(Vec<usize>, usize)> = vec![
        (vec![1, 1025], 1),
        (vec![3, 5000], 1),
        (vec![2, 3001, 3], 1),
        (vec![4099], 0),
        (vec![2049, 2], 0),
        (vec![40, 1500], 1), // 40 outputs
    ];
    on_each_device("reduce_long_axis_two_stage", |dev| {
        let mut r = rng(102);
        for (shape, axis) in &shapes {
            let x = uniform(&mut r, numel(shape), -3.0, 3.0);
            for op in OPS {
                check_reduce(dev, &x, shape, *axis, op, false)?;
            }
            // Max / min at the very end of the axis and in the last, ragged chunk.
            let mut y = x.clone();
            let (outer, len, inner) = split(shape, *axis);
            for o in 0..outer {
                for i in 0..inner {
                    y[(o * len + len - 1) * inner + i] = 10.0 + o as f32;
                    y[(o * len + len - 2) * inner + i] = -10.0 - i as f32;
                }
            }
            check_reduce(dev, &y, shape, *axis, ReduceOp::Max, true)?;
            check_reduce(dev, &y, shape, *axis, ReduceOp::Min, true)?;
        }
        Ok(())
    });
}

#[test]
fn reduce_all_to_a_scalar() {
    on_each_device("reduce_all_to_a_scalar", |dev| {
        let mut r = rng(103);
        for shape in [vec![17, 33, 5], vec![1], vec![], vec![2, 3], vec![257, 9]] {
            let x = uniform(&mut r, numel(&shape), -3.0, 3.0);
            let flat = [numel(&shape)];
            for op in OPS {
                let want = reduce_ref(&x, &flat, 0, op);
                let y = up(dev, &x, &shape)?.reduce_all(op)?;
                let what = format!("reduce_all {op:?} of {shape:?}");
                check_shape(&what, &y, &[])?;
                let extra = if op == ReduceOp::Mean { 3.0 * U } else { 0.0 };
                check_acc(&what, &down(&y)?, &want, extra)?;
            }
        }
        // The sum over nothing is 0.
        let y = GpuArray::zeros(dev, &[0, 4])?.reduce_all(ReduceOp::Sum)?;
        check_bits("sum of empty", &down(&y)?, &[0.0])?;
        let y = GpuArray::zeros(dev, &[3, 0])?.reduce(ReduceOp::Sum, 1, false)?;
        check_bits("sum over an empty axis", &down(&y)?, &[0.0; 3])?;
        Ok(())
    });
}

#[test]
fn argmax_argmin_first_index_on_ties() {
    on_each_device("argmax_argmin_first_index_on_ties", |dev| {
        let mut r = rng(104);
        for shape in [vec![6, 5, 7], vec![1, 9, 1], vec![4, 300], vec![3000]] {
            // Few distinct values: most rows hold ties for the max and the min.
            let x = from_set(&mut r, numel(&shape), &[-1.0, 0.0, 0.5, 2.0]);
            for axis in 0..shape.len() {
                let (outer, len, inner) = split(&shape, axis);
                for min in [false, true] {
                    let mut want = Vec::new();
                    for o in 0..outer {
                        for i in 0..inner {
                            let mut best = 0;
                            for j in 1..len {
                                let (v, b) = (
                                    x[(o * len + j) * inner + i],
                                    x[(o * len + best) * inner + i],
                                );
                                if (min && v < b) || (!min && v > b) {
                                    best = j;
                                }
                            }
                            want.push(best as u32);
                        }
                    }
                    for keepdim in [false, true] {
                        let y = up(dev, &x, &shape)?.argmax(axis, keepdim, min)?;
                        let what = format!(
                            "arg{} axis {axis} of {shape:?}",
                            if min { "min" } else { "max" }
                        );
                        check_shape(&what, &y, &reduced_shape(&shape, axis, keepdim))?;
                        check_eq(&what, &down_u32(&y)?, &want)?;
                    }
                }
            }
        }
        Ok(())
    });
}

/// Per row along `axis`: (max, log sum exp(x - max)) in f64.
fn lse_rows(x: &[f32], shape: &[usize], axis: usize) -> Vec<(f64, f64)> {
    let (outer, len, inner) = split(shape, axis);
    let mut rows = Vec::new();
    for o in 0..outer {
        for i in 0..inner {
            let v: Vec<f64> = (0..len)
                .map(|j| f64::from(x[(o * len + j) * inner + i]))
                .collect();
            let m = v.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let s: f64 = v.iter().map(|a| (a - m).exp()).sum();
            rows.push((m, s.ln()));
        }
    }
    rows
}

#[test]
fn softmax_log_softmax_logsumexp_inner_and_outer_axes() {
    on_each_device(
        "softmax_log_softmax_logsumexp_inner_and_outer_axes",
        |dev| {
            let mut r = rng(105);
            // Moderate values, and values around +-1000 (exp overflows without the max subtraction).
            let cases: Vec<(Vec<usize>, f32, f32)> = vec![
                (vec![4, 6, 5], -3.0, 3.0),
                (vec![4, 6, 5], 995.0, 1005.0),
                (vec![3, 7, 2], -1005.0, -995.0),
                (vec![1, 300, 1], -3.0, 3.0),
                (vec![2, 1, 3], -3.0, 3.0), // a length-1 axis
                (vec![513, 3, 2], -5.0, 5.0),
                // Rows of whole vec4s along the last axis (softmax_rows4), over several workgroups.
                (vec![300, 12], 995.0, 1005.0),
                (vec![5, 8], -3.0, 3.0),
            ];
            for (shape, lo, hi) in &cases {
                let x = uniform(&mut r, numel(shape), *lo, *hi);
                let xg = up(dev, &x, shape)?;
                for axis in 0..shape.len() {
                    let (outer, len, inner) = split(shape, axis);
                    let rows = lse_rows(&x, shape, axis);
                    let what = format!("axis {axis} of {shape:?} in [{lo}, {hi}]");
                    let mut sm = vec![0.0; x.len()];
                    let mut lsm = vec![0.0; x.len()];
                    for o in 0..outer {
                        for i in 0..inner {
                            let (m, ls) = rows[o * inner + i];
                            for j in 0..len {
                                let k = (o * len + j) * inner + i;
                                sm[k] = (f64::from(x[k]) - m - ls).exp();
                                lsm[k] = f64::from(x[k]) - m - ls;
                            }
                        }
                    }
                    // softmax = exp(x - m) / s: x - m is exact (Sterbenz, or both small); exp over
                    // |x - m| <= 10 is <= 23 ulp (1.4e-6); the sum of len such terms adds gamma_len; the
                    // division 2.5 ulp. 4e-6 + (len + 4) u relative.
                    let y = xg.softmax(axis)?;
                    check_shape(&what, &y, shape)?;
                    let rt = 4e-6 + (len + 4) as f64 * U;
                    check_close(&format!("softmax {what}"), &down(&y)?, &sm, rt, 1e-30)?;
                    // log_softmax = x - (m + log s): the f32 roundings of quantities of size |m| cost
                    // ~ulp(|m|) (6e-5 at 1000), plus log's 3 ulp / 2^-21 absolute and s's relative error.
                    let y = xg.log_softmax(axis)?;
                    check_shape(&what, &y, shape)?;
                    let at = |i: usize| {
                        let (m, ls) = rows[(i / (len * inner)) * inner + i % inner];
                        2e-6 + rt + 4.0 * U * (m.abs() + ls.abs() + f64::from(x[i]).abs())
                    };
                    check_with(&format!("log_softmax {what}"), &down(&y)?, &lsm, |i, _| {
                        at(i)
                    })?;
                    for keepdim in [false, true] {
                        let want: Vec<f64> = rows.iter().map(|(m, ls)| m + ls).collect();
                        let y = xg.logsumexp(axis, keepdim)?;
                        check_shape(&what, &y, &reduced_shape(shape, axis, keepdim))?;
                        check_with(&format!("logsumexp {what}"), &down(&y)?, &want, |i, _| {
                            let (m, ls) = rows[i];
                            2e-6 + rt + 4.0 * U * (m.abs() + ls.abs())
                        })?;
                    }
                }
            }
            // Rows of exactly equal large values: softmax 1/len, log_softmax -log(len).
            let x = vec![1000.0f32; 12];
            let y = up(dev, &x, &[3, 4])?.softmax(1)?;
            check_close("softmax of equal 1000s", &down(&y)?, &[0.25; 12], 1e-6, 0.0)?;
            // A -inf entry gets probability 0; a row of -inf has logsumexp -inf.
            let x = [
                f32::NEG_INFINITY,
                0.0,
                0.0,
                f32::NEG_INFINITY,
                f32::NEG_INFINITY,
                f32::NEG_INFINITY,
            ];
            let xg = up(dev, &x, &[2, 3])?;
            check_close(
                "softmax with -inf",
                &down(&xg.softmax(1)?)?[..3],
                &[0.0, 0.5, 0.5],
                1e-6,
                0.0,
            )?;
            let lse = down(&xg.logsumexp(1, false)?)?;
            check_close(
                "logsumexp with -inf",
                &lse,
                &[std::f64::consts::LN_2, f64::NEG_INFINITY],
                1e-6,
                0.0,
            )?;
            // A +inf entry makes the logsumexp +inf (as in PyTorch), not inf - inf = NaN.
            let x = [f32::INFINITY, 0.0, -1.0, 5.0, f32::INFINITY, f32::INFINITY];
            let lse = down(&up(dev, &x, &[2, 3])?.logsumexp(1, false)?)?;
            check_close(
                "logsumexp with +inf",
                &lse,
                &[f64::INFINITY, f64::INFINITY],
                0.0,
                0.0,
            )?;
            Ok(())
        },
    );
}

#[test]
fn variance_with_correction_0_and_1() {
    on_each_device("variance_with_correction_0_and_1", |dev| {
        let mut r = rng(106);
        for shape in [vec![5, 8, 3], vec![2, 1, 4], vec![3, 2000]] {
            // An offset mean, so the subtraction of the mean matters.
            let x = uniform(&mut r, numel(&shape), 2.0, 5.0);
            for axis in 0..shape.len() {
                let (outer, len, inner) = split(&shape, axis);
                for correction in [0usize, 1] {
                    if len <= correction {
                        continue;
                    }
                    let mut want = Vec::new();
                    for o in 0..outer {
                        for i in 0..inner {
                            let v: Vec<f64> = (0..len)
                                .map(|j| f64::from(x[(o * len + j) * inner + i]))
                                .collect();
                            let m = v.iter().sum::<f64>() / len as f64;
                            want.push(
                                v.iter().map(|a| (a - m).powi(2)).sum::<f64>()
                                    / (len - correction) as f64,
                            );
                        }
                    }
                    for keepdim in [false, true] {
                        let y = up(dev, &x, &shape)?.variance(axis, keepdim, correction)?;
                        let what =
                            format!("variance axis {axis} of {shape:?} correction {correction}");
                        check_shape(&what, &y, &reduced_shape(&shape, axis, keepdim))?;
                        // Two-pass: the error in the mean cancels to first order (sum of x - mean is
                        // 0), leaving the roundings of each x - mean and its square (2u), the
                        // len-term sum (gamma_len) and the final scale (2u): 4 (len + 4) u relative.
                        let rt = 4.0 * (len + 4) as f64 * U;
                        check_close(&what, &down(&y)?, &want, rt, 1e-12)?;
                    }
                }
            }
        }
        Ok(())
    });
}

#[test]
fn sum_of_4m_elements_is_deterministic() {
    on_each_device("sum_of_4m_elements_is_deterministic", |dev| {
        let n = 4 << 20;
        let mut r = rng(107);
        let x = uniform(&mut r, n, -1.0, 1.0);
        let a = up(dev, &x, &[n])?;
        let b = up(dev, &x, &[n])?; // the same values in another buffer
        let s1 = down(&a.reduce_all(ReduceOp::Sum)?)?;
        let s2 = down(&a.reduce_all(ReduceOp::Sum)?)?;
        let s3 = down(&b.reduce_all(ReduceOp::Sum)?)?;
        check_bits("sum twice", &s2, &s1)?;
        check_bits("sum of a copy", &s3, &s1)?;
        // Along an axis too (two-stage with 4 outputs).
        let c1 = down(&a.reshape(&[4, n / 4])?.reduce(ReduceOp::Sum, 1, false)?)?;
        let c2 = down(&b.reshape(&[4, n / 4])?.reduce(ReduceOp::Sum, 1, false)?)?;
        check_bits("row sums twice", &c2, &c1)?;
        // And right: the gamma bound over 4M terms.
        let want = reduce_ref(&x, &[n], 0, ReduceOp::Sum);
        check_acc("sum of 4M", &s1, &want, 0.0)?;
        Ok(())
    });
}

#[test]
fn nan_propagates_through_max_min_and_argmax() {
    // Like PyTorch (and as the kernels' comments promise): max / min over a row holding a NaN is
    // NaN wherever the NaN sits, arg-reductions return the first NaN's index, and a max-pool window
    // holding a NaN yields NaN at that index.
    on_each_device("nan_propagates_through_max_min_and_argmax", |dev| {
        let nan = f32::NAN;
        let len = 6;
        let mut rows = Vec::new();
        for pos in 0..len {
            let mut row: Vec<f32> = (0..len).map(|j| j as f32 - 2.0).collect();
            row[pos] = nan;
            rows.push(row);
        }
        let mut both = vec![3.0f32; len];
        both[1] = nan;
        both[4] = nan;
        rows.push(both);
        let x: Vec<f32> = rows.concat();
        let shape = [rows.len(), len];
        let xg = up(dev, &x, &shape)?;
        for op in [ReduceOp::Max, ReduceOp::Min] {
            let got = down(&xg.reduce(op, 1, false)?)?;
            if let Some(i) = got.iter().position(|v| !v.is_nan()) {
                return fail(format!(
                    "{op:?} of row {:?} = {}, want NaN",
                    rows[i], got[i]
                ));
            }
            // The two-stage path: NaN in the first element of a chunk.
            let mut long = vec![1.0f32; 3000];
            long[1024] = nan;
            let got = down(&up(dev, &long, &[3000])?.reduce_all(op)?)?;
            if !got[0].is_nan() {
                return fail(format!(
                    "{op:?} over 3000 with a NaN at 1024 = {}, want NaN",
                    got[0]
                ));
            }
        }
        for min in [false, true] {
            let got = down_u32(&xg.argmax(1, false, min)?)?;
            let want: Vec<u32> = (0..len as u32).chain([1]).collect();
            check_eq(
                &format!("arg{} with NaN", if min { "min" } else { "max" }),
                &got,
                &want,
            )?;
        }
        let mut img = vec![0.0f32; 16];
        img[0] = 5.0;
        img[5] = nan;
        let (y, arg) =
            up(dev, &img, &[1, 1, 4, 4])?.max_pool2d(&wgrad_device::Pool2dParams::square(2))?;
        let (y, arg) = (down(&y)?, down_u32(&arg)?);
        if !y[0].is_nan() || arg[0] != 5 {
            return fail(format!(
                "max_pool2d window with a NaN: {} at {}, want NaN at 5",
                y[0], arg[0]
            ));
        }
        Ok(())
    });
}

/// The launcher's row sums in f32, in the order its kernels add (reduce.wgsl's `sum_rows4` and
/// `reduce`, wide.wgsl's `sum_rows8`): a long row with few outputs in chunks of 1024, each chunk
/// into four vec4 accumulators, then the partial sums in one pass.
fn row_sums_in_kernel_order(x: &[f32], outer: usize, len: usize, scale: f32) -> Vec<f32> {
    fn pass(x: &[f32], outer: usize, len: usize, chunk: usize, scale: f32) -> Vec<f32> {
        let nchunk = len.div_ceil(chunk);
        let mut out = Vec::with_capacity(outer * nchunk);
        for o in 0..outer {
            for c in 0..nchunk {
                let row = &x[o * len + c * chunk..o * len + len.min((c + 1) * chunk)];
                if !len.is_multiple_of(4) || !chunk.is_multiple_of(4) {
                    // `reduce`: one accumulator from 0.
                    out.push(row.iter().fold(0f32, |a, &v| a + v) * scale);
                    continue;
                }
                let quads: Vec<&[f32]> = row.chunks(4).collect();
                let mut acc = [[0f32; 4]; 4];
                let full = quads.len() / 4 * 4;
                for (j, q) in quads.iter().enumerate() {
                    let a = if j < full { j % 4 } else { 0 };
                    for k in 0..4 {
                        acc[a][k] += q[k];
                    }
                }
                let s: Vec<f32> = (0..4)
                    .map(|k| (acc[0][k] + acc[1][k]) + (acc[2][k] + acc[3][k]))
                    .collect();
                out.push(((s[0] + s[1]) + (s[2] + s[3])) * scale);
            }
        }
        out
    }
    if outer < 2048 && len > 1024 {
        let partial = pass(x, outer, len, 1024, 1.0);
        let nchunk = len.div_ceil(1024);
        pass(&partial, outer, nchunk, nchunk, scale)
    } else {
        pass(x, outer, len, len, scale)
    }
}

#[test]
fn row_sums_add_in_the_documented_order() {
    // Row lengths for each kernel: multiples of 8 (sum_rows8 where the device has wide storage,
    // sum_rows4 elsewhere), of 4 only (sum_rows4), neither (reduce); a vec4 tail (8, 40, 1000 hold
    // 2 mod 4 vec4s) and two-stage rows (4104, and 1M in 1024 chunks).
    on_each_device("row_sums_add_in_the_documented_order", |dev| {
        let mut r = rng(211);
        for (outer, len) in [
            (3, 8),
            (1, 40),
            (5, 1000),
            (2, 12),
            (3, 7),
            (2, 4104),
            (1, 1 << 20),
            (2049, 16),
        ] {
            let x = uniform(&mut r, outer * len, -1.0, 1.0);
            let a = up(dev, &x, &[outer, len])?;
            let sum = down(&a.reduce(ReduceOp::Sum, 1, false)?)?;
            let want = row_sums_in_kernel_order(&x, outer, len, 1.0);
            check_bits(&format!("sum of [{outer}, {len}]"), &sum, &want)?;
            let mean = down(&a.reduce(ReduceOp::Mean, 1, false)?)?;
            let want = row_sums_in_kernel_order(&x, outer, len, 1.0 / len as f32);
            check_bits(&format!("mean of [{outer}, {len}]"), &mean, &want)?;
        }
        Ok(())
    });
}

#[test]
fn wide_and_vec4_kernels_give_the_same_bits() {
    // Own devices: the test switches the wide kernels off and on.
    run_on(
        "wide_and_vec4_kernels_give_the_same_bits",
        &open_all(),
        |dev| {
            if !dev.info().wide_storage {
                if dev.set_wide_storage(true) {
                    return fail("set_wide_storage(true) took effect without wide storage");
                }
                return Err(Flow::Skip("no wide storage access on this adapter".into()));
            }
            let mut r = rng(223);
            for n in [1, 7, 8, 13, 1000, 1043, 65_537] {
                let x = uniform(&mut r, n, -3.0, 3.0);
                let y = uniform(&mut r, n, -3.0, 3.0);
                let run = |wide: bool| -> Result<Vec<Vec<f32>>, Flow> {
                    if dev.set_wide_storage(wide) != wide {
                        return fail(format!("set_wide_storage({wide}) did not take effect"));
                    }
                    let a = up(dev, &x, &[n])?;
                    let b = up(dev, &y, &[n])?;
                    // A fill with a NaN payload must come through bit for bit.
                    let nan = f32::from_bits(0x7fc0_0001);
                    let filled = down(&GpuArray::full(dev, &[n], nan)?)?;
                    if filled.iter().any(|v| v.to_bits() != nan.to_bits()) {
                        return fail(format!("full of {n} (wide {wide}) lost the NaN payload"));
                    }
                    let mut out = vec![
                        filled,
                        down(&a.unary(UnaryOp::Tanh)?)?,
                        down(&a.unary(UnaryOp::Clamp(-1.0, 2.0))?)?,
                        down(&a.binary(BinaryOp::Mul, &b)?)?,
                        down(&a.binary_then(
                            BinaryOp::Sub,
                            &b,
                            &[UnaryOp::AddScalar(0.5), UnaryOp::LeakyRelu(0.1)],
                        )?)?,
                        down(&a.reduce_all(ReduceOp::Sum)?)?,
                        down(&a.reshape(&[1, n])?.reduce(ReduceOp::Mean, 1, false)?)?,
                    ];
                    // Softmax along rows: one row of n, and rows of 8 where n allows.
                    let mut shapes = vec![[1, n]];
                    if n % 8 == 0 {
                        shapes.push([n / 8, 8]);
                    }
                    for shape in shapes {
                        let rows = a.reshape(&shape)?;
                        out.push(down(&rows.softmax(1)?)?);
                        out.push(down(&rows.log_softmax(1)?)?);
                    }
                    Ok(out)
                };
                let narrow = run(false)?;
                let wide = run(true)?;
                for (i, (w, v)) in wide.iter().zip(&narrow).enumerate() {
                    check_bits(&format!("result {i} over {n} elements"), w, v)?;
                }
            }
            Ok(())
        },
    );
}
