//! Data movement (permute, transpose, broadcast_to, narrow, concat, pad) and indexing (index_select,
//! index_add, gather, scatter_add) against CPU references, on every adapter. Movement copies 32-bit
//! words, so f32 and u32 data must come through bit-exact (NaN payloads, -0, subnormals included).

mod common;

use common::*;
use rand::RngExt;
use wgrad_device::{Device, GpuArray};

/// u32 words that a float path would not preserve, mixed with random ones.
fn awkward_words(r: &mut rand::rngs::StdRng, n: usize) -> Vec<u32> {
    const SPECIAL: [u32; 8] = [
        0xffff_ffff,
        0x7fc0_0001, // NaN with a payload
        0xff80_0001, // signalling NaN pattern
        0x8000_0000, // -0.0
        0x0000_0001, // smallest subnormal
        0x807f_ffff, // negative subnormal
        0x7f80_0000, // +inf
        0,
    ];
    (0..n)
        .map(|i| {
            if i % 3 == 0 {
                SPECIAL[(i / 3) % 8]
            } else {
                r.random::<u32>()
            }
        })
        .collect()
}

/// Runs `op` on the same words as u32 and as f32 arrays; both must give `want` bit for bit.
fn both_dtypes(
    dev: &Device,
    what: &str,
    words: &[u32],
    shape: &[usize],
    want: &[u32],
    op: impl Fn(&GpuArray) -> Result<GpuArray, Flow>,
) -> Res {
    let yu = op(&up_u32(dev, words, shape)?)?;
    check_eq(&format!("{what} (u32)"), &down_u32(&yu)?, want)?;
    let floats: Vec<f32> = words.iter().map(|&w| f32::from_bits(w)).collect();
    let yf = op(&up(dev, &floats, shape)?)?;
    let got: Vec<u32> = down(&yf)?.iter().map(|x| x.to_bits()).collect();
    check_eq(&format!("{what} (f32 bits)"), &got, want)
}

fn permute_ref(x: &[u32], shape: &[usize], dims: &[usize]) -> (Vec<usize>, Vec<u32>) {
    let out: Vec<usize> = dims.iter().map(|&d| shape[d]).collect();
    let st = strides(shape);
    let data = (0..numel(&out))
        .map(|i| {
            let idx = unravel(i, &out);
            x[idx
                .iter()
                .zip(dims)
                .map(|(&k, &d)| k * st[d])
                .sum::<usize>()]
        })
        .collect();
    (out, data)
}

#[test]
fn permute_and_transpose() {
    let cases: Vec<(Vec<usize>, Vec<usize>)> = vec![
        (vec![2, 3, 4, 5], vec![3, 1, 0, 2]),
        (vec![3, 0, 2], vec![2, 0, 1]),
        (vec![], vec![]),
        (vec![1, 1], vec![1, 0]),
        (vec![17, 33, 5], vec![2, 1, 0]),
        (vec![2, 1, 3, 1, 2, 1, 2, 3], vec![7, 6, 5, 4, 3, 2, 1, 0]), // rank 8, the limit
        (vec![300, 7], vec![1, 0]),
    ];
    on_each_device("permute_and_transpose", |dev| {
        let mut r = rng(201);
        for (shape, dims) in &cases {
            let x = awkward_words(&mut r, numel(shape));
            let (out, want) = permute_ref(&x, shape, dims);
            let what = format!("permute {shape:?} by {dims:?}");
            both_dtypes(dev, &what, &x, shape, &want, |a| {
                let y = a.permute(dims)?;
                check_shape(&what, &y, &out)?;
                Ok(y)
            })?;
            if shape.len() >= 2 {
                let (d0, d1) = (0, shape.len() - 1);
                let mut dims: Vec<usize> = (0..shape.len()).collect();
                dims.swap(d0, d1);
                let (out, want) = permute_ref(&x, shape, &dims);
                let what = format!("transpose({d0}, {d1}) of {shape:?}");
                both_dtypes(dev, &what, &x, shape, &want, |a| {
                    let y = a.transpose(d0, d1)?;
                    check_shape(&what, &y, &out)?;
                    Ok(y)
                })?;
            }
        }
        Ok(())
    });
}

/// The strided copy runs as tiles of elements (`copy`) or, where the layout is whole words in both
/// arrays, as words (`copy8`: rows of words, or 8 x 8 transposes). Both must give the same bits, and
/// the word kernel must run exactly where its layout holds (on devices with wide storage).
#[test]
fn copies_by_tile_and_by_word() {
    enum Op {
        Permute(Vec<usize>),
        Narrow(usize, usize, usize),
        Broadcast(Vec<usize>),
    }
    use Op::*;
    // (input shape, op, whether its collapsed layout fits copy8)
    let cases: Vec<(Vec<usize>, Op, bool)> = vec![
        (vec![16, 24], Permute(vec![1, 0]), true), // a transpose of whole tiles
        (vec![3, 16, 24], Permute(vec![0, 2, 1]), true), // batched
        (vec![4, 6, 16], Permute(vec![2, 0, 1]), true), // collapses to [16, 24] transposed
        (vec![96, 64], Permute(vec![1, 0]), true), // 96 tiles
        (vec![2, 8, 3, 8], Permute(vec![0, 2, 1, 3]), true), // attention heads: rows of words
        (vec![2, 3, 5, 8], Permute(vec![1, 0, 2, 3]), true), // rows of 40
        (vec![1, 1, 8], Permute(vec![1, 0, 2]), true), // one word
        (vec![6, 32], Narrow(1, 8, 16), true),
        (vec![1, 16], Broadcast(vec![5, 16]), true), // rows that read the same words
        (vec![9, 13], Permute(vec![1, 0]), false),   // partial tiles both ways
        (vec![8, 12], Permute(vec![1, 0]), false),   // 12 rows: partial tiles
        (vec![16, 20], Permute(vec![1, 0]), false),  // x's row stride 20 is not whole words
        (vec![17, 33, 5], Permute(vec![2, 1, 0]), false),
        (vec![5], Permute(vec![0]), false),
        (vec![6, 32], Narrow(1, 4, 16), false), // starts mid-word
        (
            vec![2, 1, 3, 1, 2, 1, 2, 3],
            Permute(vec![7, 6, 5, 4, 3, 2, 1, 0]),
            false,
        ),
        (
            vec![3, 2, 1, 4, 8, 1, 2, 8],
            Permute(vec![0, 1, 2, 3, 6, 5, 4, 7]),
            true,
        ), // rank 8 in
    ];
    // Own devices: the test switches wide storage and profiling.
    run_on("copies_by_tile_and_by_word", &open_all(), |dev| {
        let mut r = rng(204);
        for (shape, op, fits) in &cases {
            let x = awkward_words(&mut r, numel(shape));
            let (out, want, what): (Vec<usize>, Vec<u32>, String) = match op {
                Permute(dims) => {
                    let (out, want) = permute_ref(&x, shape, dims);
                    (out, want, format!("permute {shape:?} by {dims:?}"))
                }
                Narrow(dim, start, len) => {
                    let mut out = shape.clone();
                    out[*dim] = *len;
                    let want = (0..numel(&out))
                        .map(|i| {
                            let mut idx = unravel(i, &out);
                            idx[*dim] += start;
                            x[idx
                                .iter()
                                .zip(strides(shape))
                                .map(|(k, s)| k * s)
                                .sum::<usize>()]
                        })
                        .collect();
                    (
                        out,
                        want,
                        format!("narrow {shape:?} dim {dim} {start}+{len}"),
                    )
                }
                Broadcast(to) => {
                    let want = (0..numel(to))
                        .map(|i| x[bcast_index(&unravel(i, to), shape)])
                        .collect();
                    (to.clone(), want, format!("broadcast {shape:?} to {to:?}"))
                }
            };
            for wide in [true, false] {
                let wide = dev.set_wide_storage(wide);
                let a = up_u32(dev, &x, shape)?;
                dev.synchronize()?;
                dev.set_profiling(true);
                let y = match op {
                    Permute(dims) => a.permute(dims)?,
                    Narrow(dim, start, len) => a.narrow(*dim, *start, *len)?,
                    Broadcast(to) => a.broadcast_to(to)?,
                };
                dev.synchronize()?;
                let ran: Vec<String> = dev.profile().into_iter().map(|k| k.name).collect();
                dev.set_profiling(false);
                let what = format!("{what} (wide {wide})");
                check_shape(&what, &y, &out)?;
                check_eq(&what, &down_u32(&y)?, &want)?;
                let words = ran.iter().any(|n| n == "wide/copy8");
                if words != (wide && *fits) {
                    return fail(format!(
                        "{what}: kernels {ran:?}, copy8 expected: {}",
                        wide && *fits
                    ));
                }
            }
        }
        dev.set_wide_storage(true);
        Ok(())
    });
}

#[test]
fn broadcast_to_and_narrow() {
    on_each_device("broadcast_to_and_narrow", |dev| {
        let mut r = rng(202);
        let bcasts: Vec<(Vec<usize>, Vec<usize>)> = vec![
            (vec![3, 1], vec![2, 3, 4]),
            (vec![], vec![5]),
            (vec![1], vec![0]),
            (vec![4], vec![2, 4]),
            (vec![2, 1, 3], vec![2, 5, 3]),
            (vec![1, 1], vec![1, 1]),
            (vec![1, 7, 1], vec![3, 7, 100]),
        ];
        for (from, to) in &bcasts {
            let x = awkward_words(&mut r, numel(from));
            let want: Vec<u32> = (0..numel(to))
                .map(|i| x[bcast_index(&unravel(i, to), from)])
                .collect();
            let what = format!("broadcast_to {from:?} -> {to:?}");
            both_dtypes(dev, &what, &x, from, &want, |a| {
                let y = a.broadcast_to(to)?;
                check_shape(&what, &y, to)?;
                Ok(y)
            })?;
        }
        let shape = [4usize, 7, 3];
        let x = awkward_words(&mut r, numel(&shape));
        for (dim, start, len) in [
            (1, 2, 4),
            (0, 3, 1),
            (2, 0, 0),
            (2, 1, 2),
            (0, 0, 4),
            (1, 6, 1),
        ] {
            let mut out = shape.to_vec();
            out[dim] = len;
            let want: Vec<u32> = (0..numel(&out))
                .map(|i| {
                    let mut idx = unravel(i, &out);
                    idx[dim] += start;
                    x[idx
                        .iter()
                        .zip(strides(&shape))
                        .map(|(k, s)| k * s)
                        .sum::<usize>()]
                })
                .collect();
            let what = format!("narrow dim {dim} {start}..{} of {shape:?}", start + len);
            both_dtypes(dev, &what, &x, &shape, &want, |a| {
                let y = a.narrow(dim, start, len)?;
                check_shape(&what, &y, &out)?;
                Ok(y)
            })?;
        }
        Ok(())
    });
}

#[test]
fn concat_and_pad() {
    on_each_device("concat_and_pad", |dev| {
        let mut r = rng(203);
        // Parts differ only along `dim`; one has size 0 there.
        for dim in 0..3 {
            let sizes = [2usize, 0, 3, 1];
            let shapes: Vec<Vec<usize>> = sizes
                .iter()
                .map(|&s| {
                    let mut sh = vec![3, 4, 5];
                    sh[dim] = s;
                    sh
                })
                .collect();
            let datas: Vec<Vec<u32>> = shapes
                .iter()
                .map(|s| awkward_words(&mut r, numel(s)))
                .collect();
            let mut out = vec![3, 4, 5];
            out[dim] = sizes.iter().sum();
            let want: Vec<u32> = (0..numel(&out))
                .map(|i| {
                    let mut idx = unravel(i, &out);
                    let mut p = 0;
                    while idx[dim] >= sizes[p] {
                        idx[dim] -= sizes[p];
                        p += 1;
                    }
                    datas[p][idx
                        .iter()
                        .zip(strides(&shapes[p]))
                        .map(|(k, s)| k * s)
                        .sum::<usize>()]
                })
                .collect();
            let what = format!("concat along {dim} of {shapes:?}");
            let parts: Vec<GpuArray> = datas
                .iter()
                .zip(&shapes)
                .map(|(d, s)| up_u32(dev, d, s))
                .collect::<Result<_, _>>()?;
            let refs: Vec<&GpuArray> = parts.iter().collect();
            let y = GpuArray::concat(&refs, dim)?;
            check_shape(&what, &y, &out)?;
            check_eq(&what, &down_u32(&y)?, &want)?;
        }
        // A single part is a copy.
        let x = awkward_words(&mut r, 10);
        let a = up_u32(dev, &x, &[2, 5])?;
        check_eq(
            "concat of one",
            &down_u32(&GpuArray::concat(&[&a], 1)?)?,
            &x,
        )?;

        // pad: (before, after) per dim, filled with the value's bits.
        type Case = (Vec<usize>, Vec<(usize, usize)>, f32);
        let cases: Vec<Case> = vec![
            (vec![3, 4], vec![(1, 2), (0, 3)], -1.5),
            (vec![0, 2], vec![(1, 1), (0, 0)], 7.0),
            (vec![2, 3, 2], vec![(0, 0), (2, 1), (1, 1)], 0.0),
            (vec![5], vec![(0, 0)], 1.0),
            (vec![], vec![], 3.0),
            (vec![1, 1], vec![(3, 0), (0, 4)], f32::NEG_INFINITY),
            // Partial tiles in both of the last dims, and padded outer dims (rank 3 and 5).
            (vec![3, 17, 9], vec![(1, 1), (2, 3), (0, 5)], 2.5),
            (
                vec![2, 1, 3, 1, 2],
                vec![(0, 1), (2, 0), (0, 0), (1, 1), (0, 0)],
                -0.0,
            ),
            // A matmul operand's padding: 300 columns to 304.
            (vec![40, 300], vec![(0, 0), (0, 4)], 0.0),
        ];
        for (shape, pads, value) in &cases {
            let x = uniform(&mut r, numel(shape), -1.0, 1.0);
            let out: Vec<usize> = shape
                .iter()
                .zip(pads)
                .map(|(d, (b, a))| b + d + a)
                .collect();
            let want: Vec<f32> = (0..numel(&out))
                .map(|i| {
                    let idx = unravel(i, &out);
                    let inside = idx
                        .iter()
                        .zip(pads)
                        .zip(shape)
                        .all(|((&k, &(b, _)), &d)| k >= b && k < b + d);
                    if inside {
                        let src: usize = idx
                            .iter()
                            .zip(pads)
                            .zip(strides(shape))
                            .map(|((&k, &(b, _)), s)| (k - b) * s)
                            .sum();
                        x[src]
                    } else {
                        *value
                    }
                })
                .collect();
            let what = format!("pad {shape:?} by {pads:?} with {value}");
            let y = up(dev, &x, shape)?.pad(pads, *value)?;
            check_shape(&what, &y, &out)?;
            check_bits(&what, &down(&y)?, &want)?;
        }
        // u32 data padded with the bits of 0.0 (= 0u32).
        let w = awkward_words(&mut r, 6);
        let y = up_u32(dev, &w, &[2, 3])?.pad(&[(0, 1), (1, 0)], 0.0)?;
        let want = vec![0, w[0], w[1], w[2], 0, w[3], w[4], w[5], 0, 0, 0, 0];
        check_eq("pad u32", &down_u32(&y)?, &want)?;
        Ok(())
    });
}

#[test]
fn index_select_and_index_add() {
    on_each_device("index_select_and_index_add", |dev| {
        let mut r = rng(204);
        let shape = [5usize, 6, 7];
        let x = awkward_words(&mut r, numel(&shape));
        for dim in 0..3 {
            let size = shape[dim];
            for idx in [
                vec![size as u32 - 1, 0, size as u32 - 1, 2],
                vec![],
                vec![1],
                (0..size as u32).rev().collect(),
            ] {
                let (outer, src, inner) = split(&shape, dim);
                let mut out = shape.to_vec();
                out[dim] = idx.len();
                let mut want = Vec::new();
                for o in 0..outer {
                    for &j in &idx {
                        for i in 0..inner {
                            want.push(x[(o * src + j as usize) * inner + i]);
                        }
                    }
                }
                let what = format!("index_select dim {dim} {idx:?} of {shape:?}");
                let ig = up_u32(dev, &idx, &[idx.len()])?;
                both_dtypes(dev, &what, &x, &shape, &want, |a| {
                    let y = a.index_select(dim, &ig)?;
                    check_shape(&what, &y, &out)?;
                    Ok(y)
                })?;

                // index_add: y[.., r, ..] = sum of the rows j with idx[j] == r; rows never named are 0.
                let g = uniform(&mut r, numel(&out), -1.0, 1.0);
                let target = size + 2; // more rows than any index names
                let mut acc = vec![Acc::default(); outer * target * inner];
                for o in 0..outer {
                    for (j, &row) in idx.iter().enumerate() {
                        for i in 0..inner {
                            acc[(o * target + row as usize) * inner + i]
                                .add(f64::from(g[(o * idx.len() + j) * inner + i]));
                        }
                    }
                }
                let y = up(dev, &g, &out)?.index_add(dim, &ig, target)?;
                let mut want_shape = shape.to_vec();
                want_shape[dim] = target;
                let what = format!("index_add dim {dim} {idx:?} into {target}");
                check_shape(&what, &y, &want_shape)?;
                // A sum of at most 2 terms here: the Acc bound (1-2 roundings).
                check_acc(&what, &down(&y)?, &acc, 0.0)?;
            }
        }
        Ok(())
    });
}

#[test]
fn gather_and_scatter_add() {
    on_each_device("gather_and_scatter_add", |dev| {
        let mut r = rng(205);
        let shape = [4usize, 5, 6];
        let x = awkward_words(&mut r, numel(&shape));
        for dim in 0..3 {
            for idx_len in [shape[dim], 8, 1, 0] {
                let mut ishape = shape.to_vec();
                ishape[dim] = idx_len;
                let idx: Vec<u32> = (0..numel(&ishape))
                    .map(|_| r.random_range(0..shape[dim] as u32))
                    .collect();
                let st = strides(&shape);
                let pos = |k: usize| {
                    let mut id = unravel(k, &ishape);
                    id[dim] = idx[k] as usize;
                    id.iter().zip(&st).map(|(a, b)| a * b).sum::<usize>()
                };
                let want: Vec<u32> = (0..numel(&ishape)).map(|k| x[pos(k)]).collect();
                let what = format!("gather dim {dim} idx {ishape:?} of {shape:?}");
                let ig = up_u32(dev, &idx, &ishape)?;
                both_dtypes(dev, &what, &x, &shape, &want, |a| {
                    let y = a.gather(dim, &ig)?;
                    check_shape(&what, &y, &ishape)?;
                    Ok(y)
                })?;

                // scatter_add onto a base: duplicates accumulate.
                let base = uniform(&mut r, numel(&shape), -1.0, 1.0);
                let src = uniform(&mut r, numel(&ishape), -1.0, 1.0);
                let mut acc: Vec<Acc> = base
                    .iter()
                    .map(|&b| {
                        let mut a = Acc::default();
                        a.add(f64::from(b));
                        a
                    })
                    .collect();
                for (k, &s) in src.iter().enumerate() {
                    acc[pos(k)].add(f64::from(s));
                }
                let y = up(dev, &base, &shape)?.scatter_add(dim, &ig, &up(dev, &src, &ishape)?)?;
                let what = format!("scatter_add dim {dim} idx {ishape:?} onto {shape:?}");
                check_shape(&what, &y, &shape)?;
                // A base plus up to 8 terms: the Acc bound.
                check_acc(&what, &down(&y)?, &acc, 0.0)?;
            }
        }
        Ok(())
    });
}

#[test]
fn u32_survives_chained_movement() {
    // A chain of every movement op on u32 data, checked once at the end, bit-exact.
    on_each_device("u32_survives_chained_movement", |dev| {
        let mut r = rng(206);
        let x = awkward_words(&mut r, 2 * 3 * 4);
        let a = up_u32(dev, &x, &[2, 3, 4])?;
        let y = a
            .permute(&[2, 0, 1])? // [4, 2, 3]
            .broadcast_to(&[2, 4, 2, 3])?
            .narrow(0, 1, 1)? // [1, 4, 2, 3]
            .reshape(&[4, 2, 3])?
            .transpose(0, 2)?; // [3, 2, 4]
        let y = GpuArray::concat(&[&y, &y.narrow(2, 1, 2)?], 2)?; // [3, 2, 6]
        let idx = up_u32(dev, &[2, 0, 2], &[3])?;
        let y = y.index_select(0, &idx)?; // [3, 2, 6]
        let gi = up_u32(dev, &[5u32; 3 * 2 * 6], &[3, 2, 6])?;
        let y = y.gather(2, &gi)?; // every entry is column 5
        // Reference: y0[a, b, c] = x[b, c, a] for [3, 2, 4] -> concat columns (0..4, 1, 2)
        // -> column 5 is original column 2 -> x[b, c, a] with a = 2... after index_select rows
        // (2, 0, 2) of dim 0 (c index).
        let mut want = Vec::new();
        for c in [2usize, 0, 2] {
            for b in 0..2 {
                for _ in 0..6 {
                    want.push(x[(b * 3 + c) * 4 + 2]);
                }
            }
        }
        check_eq("chained movement (u32)", &down_u32(&y)?, &want)
    });
}

/// `assign` and `write` overwrite storage in place: every handle sharing it sees the new values,
/// and a shape or dtype mismatch is refused before anything is written.
#[test]
fn assign_and_write_in_place() {
    on_each_device("assign_and_write_in_place", |dev| {
        let a = GpuArray::from_slice(dev, &[1.0f32, 2.0, 3.0], &[3])?;
        let alias = a.reshape(&[3, 1])?;
        a.assign(&GpuArray::from_slice(dev, &[7.0f32, 8.0, 9.0], &[3])?)?;
        if alias.to_vec::<f32>()? != [7.0, 8.0, 9.0] {
            return fail("assign did not reach a handle sharing the storage");
        }
        a.write(&[-1.0f32, -2.0, -3.0])?;
        if a.to_vec::<f32>()? != [-1.0, -2.0, -3.0] {
            return fail("write did not overwrite the storage");
        }
        let wrong_shape = GpuArray::from_slice(dev, &[1.0f32, 2.0], &[2])?;
        let wrong_dtype = GpuArray::from_slice(dev, &[1u32, 2, 3], &[3])?;
        match (
            a.assign(&wrong_shape),
            a.assign(&wrong_dtype),
            a.write(&[1.0f32]),
        ) {
            (
                Err(wgrad_device::DeviceError::ShapeMismatch { .. }),
                Err(wgrad_device::DeviceError::DTypeMismatch { .. }),
                Err(wgrad_device::DeviceError::InvalidShape { .. }),
            ) => {}
            other => return fail(format!("mismatches gave {other:?}")),
        }
        if a.to_vec::<f32>()? != [-1.0, -2.0, -3.0] {
            return fail("a refused assign changed the storage");
        }
        Ok(())
    });
}
