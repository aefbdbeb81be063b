//! Bad input returns the right `DeviceError` variant, on every adapter.

mod common;

use common::*;
use wgrad_device::{
    BinaryOp, Conv2dParams, DType, Device, DeviceError, Epilogue, GpuArray, Pool2dParams, ReduceOp,
    Transpose, UnaryOp,
};

/// Fails unless `r` is an error matching `pat`, printing what came instead.
macro_rules! expect_err {
    ($what:expr, $r:expr, $pat:pat $(if $guard:expr)?) => {
        match $r {
            Err($pat) $(if $guard)? => {}
            Err(e) => return fail(format!("{}: wrong error: {e:?}", $what)),
            Ok(v) => return fail(format!("{}: expected an error, got {v:?}", $what)),
        }
    };
}

fn f(dev: &Device, shape: &[usize]) -> Result<GpuArray, Flow> {
    Ok(GpuArray::zeros(dev, shape)?)
}

fn u(dev: &Device, shape: &[usize]) -> Result<GpuArray, Flow> {
    up_u32(dev, &vec![0u32; numel(shape)], shape)
}

#[test]
fn mismatched_shapes() {
    on_each_device("mismatched_shapes", |dev| {
        use DeviceError::ShapeMismatch;
        // Binary and where.
        for (a, b) in [
            (vec![3, 4], vec![5]),
            (vec![2, 3], vec![3, 2]),
            (vec![0, 3], vec![2, 3]),
        ] {
            let r = f(dev, &a)?.binary(BinaryOp::Add, &f(dev, &b)?);
            expect_err!(
                format!("binary {a:?} {b:?}"),
                r,
                ShapeMismatch { op: "binary", .. }
            );
        }
        let r = f(dev, &[3, 1])?.where_(&f(dev, &[4])?, &f(dev, &[2, 1])?);
        expect_err!("where", r, ShapeMismatch { op: "where", .. });

        // Matmul: inner dims, batch dims, 1-D operands.
        let mm = |a: &[usize], b: &[usize], ta, tb| -> Result<_, Flow> {
            Ok(f(dev, a)?.matmul(&f(dev, b)?, ta, tb))
        };
        expect_err!(
            "matmul K",
            mm(&[3, 4], &[5, 6], Transpose::No, Transpose::No)?,
            ShapeMismatch { op: "matmul", .. }
        );
        expect_err!(
            "matmul K^T",
            mm(&[3, 4], &[3, 6], Transpose::No, Transpose::No)?,
            ShapeMismatch { op: "matmul", .. }
        );
        expect_err!(
            "matmul A^T",
            mm(&[3, 4], &[4, 6], Transpose::Yes, Transpose::No)?,
            ShapeMismatch { op: "matmul", .. }
        );
        expect_err!(
            "matmul batch",
            mm(&[2, 3, 4], &[3, 4, 5], Transpose::No, Transpose::No)?,
            ShapeMismatch { op: "matmul", .. }
        );
        expect_err!(
            "matmul 1-D",
            mm(&[4], &[4, 2], Transpose::No, Transpose::No)?,
            ShapeMismatch { op: "matmul", .. }
        );
        // Epilogue biases: one per row [M] or one per column [N], not both.
        let (a, b) = (f(dev, &[3, 4])?, f(dev, &[4, 8])?);
        let (rows, cols) = (f(dev, &[3])?, f(dev, &[8])?);
        let epi = |row_bias, col_bias| Epilogue {
            row_bias,
            col_bias,
            act: Some(UnaryOp::Relu),
        };
        for (what, e) in [
            ("row bias of N", epi(Some(&cols), None)),
            ("column bias of M", epi(None, Some(&rows))),
        ] {
            expect_err!(
                format!("matmul_epilogue {what}"),
                a.matmul_epilogue(&b, Transpose::No, Transpose::No, e),
                ShapeMismatch { op: "matmul", .. }
            );
        }
        expect_err!(
            "matmul_epilogue with both biases",
            a.matmul_epilogue(
                &b,
                Transpose::No,
                Transpose::No,
                epi(Some(&rows), Some(&cols))
            ),
            DeviceError::InvalidArgument { op: "matmul", .. }
        );

        // Conv2d: channels, groups, a kernel larger than the padded input, rank, zero-size hyper-
        // parameters, and a dy that does not match the forward output.
        let cv = |x: &[usize], w: &[usize], p: Conv2dParams| -> Result<_, Flow> {
            Ok(f(dev, x)?.conv2d(&f(dev, w)?, &p))
        };
        let d = Conv2dParams::default();
        let g2 = Conv2dParams { groups: 2, ..d };
        expect_err!(
            "conv channels",
            cv(&[1, 3, 5, 5], &[2, 4, 3, 3], d)?,
            ShapeMismatch { op: "conv2d", .. }
        );
        expect_err!(
            "conv groups",
            cv(&[1, 3, 5, 5], &[2, 3, 3, 3], g2)?,
            ShapeMismatch { op: "conv2d", .. }
        );
        expect_err!(
            "conv groups out",
            cv(&[1, 4, 5, 5], &[3, 2, 3, 3], g2)?,
            ShapeMismatch { op: "conv2d", .. }
        );
        expect_err!(
            "conv groups 0",
            cv(
                &[1, 4, 5, 5],
                &[3, 2, 3, 3],
                Conv2dParams { groups: 0, ..d }
            )?,
            ShapeMismatch { op: "conv2d", .. }
        );
        expect_err!(
            "conv kernel too big",
            cv(&[1, 1, 3, 3], &[1, 1, 4, 4], d)?,
            ShapeMismatch { op: "conv2d", .. }
        );
        expect_err!(
            "conv dilated too big",
            cv(
                &[1, 1, 5, 5],
                &[1, 1, 3, 3],
                Conv2dParams {
                    dilation: (3, 3),
                    ..d
                }
            )?,
            ShapeMismatch { op: "conv2d", .. }
        );
        expect_err!(
            "conv 3-D x",
            cv(&[3, 5, 5], &[2, 3, 3, 3], d)?,
            ShapeMismatch { op: "conv2d", .. }
        );
        expect_err!(
            "conv stride 0",
            cv(
                &[1, 1, 5, 5],
                &[1, 1, 3, 3],
                Conv2dParams {
                    stride: (0, 1),
                    ..d
                }
            )?,
            ShapeMismatch { op: "conv2d", .. }
        );
        expect_err!(
            "conv dilation 0",
            cv(
                &[1, 1, 5, 5],
                &[1, 1, 3, 3],
                Conv2dParams {
                    dilation: (1, 0),
                    ..d
                }
            )?,
            ShapeMismatch { op: "conv2d", .. }
        );
        expect_err!(
            "conv empty kernel",
            cv(&[1, 1, 5, 5], &[1, 1, 0, 3], d)?,
            ShapeMismatch { op: "conv2d", .. }
        );
        let r = f(dev, &[1, 2, 5, 4])?.conv2d_backward_input(
            &f(dev, &[2, 1, 3, 3])?,
            &[1, 1, 6, 6],
            &d,
        );
        expect_err!("conv backward_input dy", r, ShapeMismatch { .. });
        let r = f(dev, &[1, 2, 3, 3])?.conv2d_backward_weight(
            &f(dev, &[1, 1, 6, 6])?,
            &[2, 1, 3, 3],
            &d,
        );
        expect_err!("conv backward_weight dy", r, ShapeMismatch { .. });

        // Pooling: a window that does not fit, too much padding, an empty window, stride 0.
        let pool =
            |x: &[usize], p: Pool2dParams| -> Result<_, Flow> { Ok(f(dev, x)?.avg_pool2d(&p)) };
        let pp = |k, s, p| Pool2dParams {
            kernel: k,
            stride: s,
            padding: p,
        };
        expect_err!(
            "pool too big",
            pool(&[1, 1, 2, 2], Pool2dParams::square(3))?,
            DeviceError::InvalidShape {
                op: "avg_pool2d",
                ..
            }
        );
        expect_err!(
            "pool padding",
            pool(&[1, 1, 8, 8], pp((2, 2), (1, 1), (2, 0)))?,
            DeviceError::InvalidShape { .. }
        );
        expect_err!(
            "pool empty window",
            pool(&[1, 1, 8, 8], pp((0, 2), (1, 1), (0, 0)))?,
            DeviceError::InvalidShape { .. }
        );
        expect_err!(
            "pool stride 0",
            pool(&[1, 1, 8, 8], pp((2, 2), (0, 1), (0, 0)))?,
            DeviceError::InvalidShape { .. }
        );
        expect_err!(
            "max pool 3-D",
            f(dev, &[1, 8, 8])?.max_pool2d(&Pool2dParams::square(2)),
            DeviceError::InvalidShape { .. }
        );
        let (_, arg) = f(dev, &[1, 1, 4, 4])?.max_pool2d(&Pool2dParams::square(2))?;
        let r = f(dev, &[1, 1, 3, 2])?.max_pool2d_backward(
            &arg,
            &[1, 1, 4, 4],
            &Pool2dParams::square(2),
        );
        expect_err!("max pool backward dy", r, ShapeMismatch { .. });

        // Movement.
        expect_err!(
            "reshape",
            f(dev, &[2, 3])?.reshape(&[4]),
            ShapeMismatch { op: "reshape", .. }
        );
        expect_err!(
            "broadcast_to",
            f(dev, &[3, 2])?.broadcast_to(&[3, 4]),
            ShapeMismatch {
                op: "broadcast_to",
                ..
            }
        );
        expect_err!(
            "broadcast_to rank",
            f(dev, &[2, 3])?.broadcast_to(&[3]),
            ShapeMismatch { .. }
        );
        let (a, b) = (f(dev, &[2, 3])?, f(dev, &[2, 4])?);
        expect_err!(
            "concat",
            GpuArray::concat(&[&a, &b], 0),
            ShapeMismatch { op: "concat", .. }
        );
        let r = f(dev, &[4, 5])?.gather(1, &u(dev, &[3, 2])?);
        expect_err!("gather", r, ShapeMismatch { op: "gather", .. });
        let r = f(dev, &[4, 5])?.scatter_add(1, &u(dev, &[4, 2])?, &f(dev, &[4, 3])?);
        expect_err!(
            "scatter_add src",
            r,
            ShapeMismatch {
                op: "scatter_add",
                ..
            }
        );
        let r = f(dev, &[4, 5])?.index_add(0, &u(dev, &[3])?, 6);
        expect_err!(
            "index_add",
            r,
            ShapeMismatch {
                op: "index_add",
                ..
            }
        );
        Ok(())
    });
}

#[test]
fn invalid_arguments() {
    on_each_device("invalid_arguments", |dev| {
        use DeviceError::{InvalidArgument, InvalidShape};
        let x = f(dev, &[2, 3])?;
        expect_err!(
            "reduce axis",
            x.reduce(ReduceOp::Sum, 2, false),
            InvalidArgument { .. }
        );
        expect_err!(
            "argmax axis",
            x.argmax(5, false, false),
            InvalidArgument { .. }
        );
        expect_err!("softmax axis", x.softmax(2), InvalidArgument { .. });
        expect_err!(
            "logsumexp axis",
            x.logsumexp(2, false),
            InvalidArgument { .. }
        );
        expect_err!(
            "permute",
            x.permute(&[0, 0]),
            InvalidArgument { op: "permute", .. }
        );
        expect_err!(
            "permute rank",
            x.permute(&[0]),
            InvalidArgument { op: "permute", .. }
        );
        expect_err!("transpose", x.transpose(0, 2), InvalidArgument { .. });
        expect_err!(
            "narrow",
            x.narrow(1, 2, 2),
            InvalidArgument { op: "narrow", .. }
        );
        expect_err!("narrow dim", x.narrow(2, 0, 1), InvalidArgument { .. });
        expect_err!(
            "concat none",
            GpuArray::concat(&[], 0),
            InvalidArgument { op: "concat", .. }
        );
        expect_err!(
            "pad rank",
            x.pad(&[(1, 1)], 0.0),
            InvalidArgument { op: "pad", .. }
        );
        expect_err!(
            "from_slice",
            GpuArray::from_slice(dev, &[1.0f32, 2.0], &[3]),
            InvalidShape { .. }
        );
        expect_err!(
            "one_hot 0 classes",
            u(dev, &[3])?.one_hot(0),
            InvalidShape { .. }
        );
        expect_err!(
            "one_hot 2-D",
            u(dev, &[3, 1])?.one_hot(4),
            InvalidShape { .. }
        );
        expect_err!(
            "index_select 2-D idx",
            x.index_select(0, &u(dev, &[1, 1])?),
            InvalidShape { .. }
        );
        expect_err!(
            "binary rank 9",
            f(dev, &[1; 9])?.binary(BinaryOp::Add, &x),
            InvalidShape { .. }
        );
        Ok(())
    });
}

#[test]
fn zero_size_reductions() {
    on_each_device("zero_size_reductions", |dev| {
        use DeviceError::EmptyReduction;
        let e = f(dev, &[3, 0, 2])?;
        for op in [ReduceOp::Max, ReduceOp::Min, ReduceOp::Mean] {
            expect_err!(
                format!("{op:?} over an empty axis"),
                e.reduce(op, 1, false),
                EmptyReduction { .. }
            );
            expect_err!(
                format!("{op:?} over an empty axis, keepdim"),
                e.reduce(op, 1, true),
                EmptyReduction { .. }
            );
            expect_err!(
                format!("reduce_all {op:?} of empty"),
                e.reduce_all(op),
                EmptyReduction { .. }
            );
        }
        // Reducing another axis of an empty tensor is fine (empty result).
        check_shape(
            "max over a non-empty axis",
            &e.reduce(ReduceOp::Max, 2, false)?,
            &[3, 0],
        )?;
        expect_err!(
            "argmax over an empty axis",
            e.argmax(1, false, false),
            EmptyReduction { op: "argmax", .. }
        );
        expect_err!(
            "argmin over an empty axis",
            e.argmax(1, true, true),
            EmptyReduction { op: "argmax", .. }
        );
        expect_err!(
            "logsumexp over an empty axis",
            e.logsumexp(1, false),
            EmptyReduction {
                op: "logsumexp",
                ..
            }
        );
        expect_err!(
            "variance of 1 with correction 1",
            f(dev, &[4, 1])?.variance(1, false, 1),
            EmptyReduction { op: "variance", .. }
        );
        expect_err!(
            "variance over an empty axis",
            e.variance(1, false, 0),
            EmptyReduction { op: "variance", .. }
        );
        // Softmax over an empty axis has nothing to produce: an empty result, not an error.
        check_shape("softmax over an empty axis", &e.softmax(1)?, &[3, 0, 2])?;
        Ok(())
    });
}

#[test]
fn out_of_range_indices() {
    on_each_device("out_of_range_indices", |dev| {
        use DeviceError::IndexOutOfRange;
        let x = f(dev, &[4, 5])?;
        let idx = up_u32(dev, &[0, 5, 1], &[3])?;
        expect_err!(
            "index_select",
            x.index_select(1, &idx),
            IndexOutOfRange {
                op: "index_select",
                index: 5,
                size: 5
            }
        );
        let idx = up_u32(dev, &[4], &[1])?;
        expect_err!(
            "index_select dim 0",
            x.index_select(0, &idx),
            IndexOutOfRange {
                index: 4,
                size: 4,
                ..
            }
        );
        // A negative i32 index reads as a huge u32: also out of range (and not u32, so DTypeMismatch
        // comes first).
        let neg = GpuArray::from_slice(dev, &[-1i32], &[1])?;
        expect_err!(
            "index_select i32",
            x.index_select(0, &neg),
            DeviceError::DTypeMismatch { .. }
        );
        let gi = up_u32(dev, &[0, 1, 2, 3, 9, 0, 0, 0], &[4, 2])?;
        expect_err!(
            "gather",
            x.gather(1, &gi),
            IndexOutOfRange {
                op: "gather",
                index: 9,
                size: 5
            }
        );
        expect_err!(
            "scatter_add",
            x.scatter_add(1, &gi, &f(dev, &[4, 2])?),
            IndexOutOfRange {
                op: "scatter_add",
                ..
            }
        );
        let labels = up_u32(dev, &[0, 3, 1], &[3])?;
        expect_err!(
            "one_hot",
            labels.one_hot(3),
            IndexOutOfRange {
                op: "one_hot",
                index: 3,
                size: 3
            }
        );
        let ai = up_u32(dev, &[0, 6, 1, 2], &[4])?;
        expect_err!(
            "index_add",
            x.index_add(0, &ai, 6),
            IndexOutOfRange {
                op: "index_add",
                index: 6,
                size: 6
            }
        );
        // In range at the boundary: fine.
        let ok = up_u32(dev, &[4], &[1])?;
        check_shape(
            "index_select at the edge",
            &x.index_select(1, &ok)?,
            &[4, 1],
        )?;
        Ok(())
    });
}

#[test]
fn wrong_dtypes() {
    on_each_device("wrong_dtypes", |dev| {
        use DeviceError::DTypeMismatch;
        let (xf, xu) = (f(dev, &[2, 3])?, u(dev, &[2, 3])?);
        let is = |e: &DeviceError, want: DType, got: DType| matches!(e, DTypeMismatch { expected, got: g, .. } if *expected == want && *g == got);
        macro_rules! dt {
            ($what:expr, $r:expr, $want:expr, $got:expr) => {
                match $r {
                    Err(e) if is(&e, $want, $got) => {}
                    other => {
                        return fail(format!(
                            "{}: want DTypeMismatch {:?}/{:?}, got {other:?}",
                            $what, $want, $got
                        ))
                    }
                }
            };
        }
        dt!(
            "unary on u32",
            xu.unary(UnaryOp::Exp),
            DType::F32,
            DType::U32
        );
        dt!(
            "binary f32 + u32",
            xf.binary(BinaryOp::Add, &xu),
            DType::F32,
            DType::U32
        );
        dt!(
            "binary u32 + f32",
            xu.binary(BinaryOp::Mul, &xf),
            DType::F32,
            DType::U32
        );
        dt!("where on u32", xf.where_(&xu, &xf), DType::F32, DType::U32);
        dt!(
            "matmul u32",
            xf.matmul(&u(dev, &[3, 2])?, Transpose::No, Transpose::No),
            DType::F32,
            DType::U32
        );
        dt!(
            "conv2d u32",
            f(dev, &[1, 1, 3, 3])?.conv2d(&u(dev, &[1, 1, 2, 2])?, &Conv2dParams::default()),
            DType::F32,
            DType::U32
        );
        dt!(
            "max_pool2d u32",
            u(dev, &[1, 1, 2, 2])?.max_pool2d(&Pool2dParams::square(2)),
            DType::F32,
            DType::U32
        );
        dt!(
            "reduce u32",
            xu.reduce(ReduceOp::Sum, 0, false),
            DType::F32,
            DType::U32
        );
        dt!("softmax u32", xu.softmax(0), DType::F32, DType::U32);
        dt!(
            "index_select f32 idx",
            xf.index_select(0, &f(dev, &[1])?),
            DType::U32,
            DType::F32
        );
        dt!(
            "gather f32 idx",
            xf.gather(0, &f(dev, &[2, 3])?),
            DType::U32,
            DType::F32
        );
        dt!(
            "one_hot f32",
            f(dev, &[3])?.one_hot(4),
            DType::U32,
            DType::F32
        );
        dt!(
            "index_add u32 src",
            xu.index_add(0, &u(dev, &[2])?, 3),
            DType::F32,
            DType::U32
        );
        // Readback as another type: expected is the array's, got the requested.
        dt!(
            "to_vec::<u32> of f32",
            xf.to_vec::<u32>(),
            DType::F32,
            DType::U32
        );
        dt!(
            "to_vec::<f32> of u32",
            xu.to_vec::<f32>(),
            DType::U32,
            DType::F32
        );
        let (_, arg) = f(dev, &[1, 1, 2, 2])?.max_pool2d(&Pool2dParams::square(2))?;
        dt!(
            "max_pool2d_backward f32 argmax",
            f(dev, &[1, 1, 1, 1])?.max_pool2d_backward(
                &f(dev, &[1, 1, 1, 1])?,
                &[1, 1, 2, 2],
                &Pool2dParams::square(2)
            ),
            DType::U32,
            DType::F32
        );
        drop(arg);
        Ok(())
    });
}

#[test]
fn arrays_from_another_device() {
    // Two devices on the same adapter are different devices: mixing their arrays is an error for
    // every op with more than one array input, not a wgpu validation failure.
    let first = shared_devices();
    let second = open_all();
    let mut pairs = Vec::new();
    for (a, b) in first.iter().zip(&second) {
        if let (Ok(d1), Ok(d2)) = (&a.dev, &b.dev) {
            pairs.push((d1.clone(), d2.clone()));
        }
    }
    on_each_device("arrays_from_another_device", |dev| {
        let Some((_, other)) = pairs.iter().find(|(d, _)| d.same(dev)) else {
            return Err(Flow::Skip("a second device could not be opened".into()));
        };
        use DeviceError::DeviceMismatch;
        let (a, b) = (f(dev, &[2, 3])?, f(other, &[2, 3])?);
        expect_err!("binary", a.binary(BinaryOp::Add, &b), DeviceMismatch { .. });
        expect_err!("where", a.where_(&a, &b), DeviceMismatch { .. });
        expect_err!(
            "matmul",
            a.matmul(&f(other, &[3, 2])?, Transpose::No, Transpose::No),
            DeviceMismatch { .. }
        );
        let cp = Conv2dParams::default();
        let (x, w, dy) = (
            f(dev, &[1, 1, 4, 4])?,
            f(other, &[1, 1, 3, 3])?,
            f(dev, &[1, 1, 2, 2])?,
        );
        expect_err!("conv2d", x.conv2d(&w, &cp), DeviceMismatch { .. });
        expect_err!(
            "conv2d_backward_input",
            dy.conv2d_backward_input(&w, &[1, 1, 4, 4], &cp),
            DeviceMismatch { .. }
        );
        expect_err!(
            "conv2d_backward_weight",
            dy.conv2d_backward_weight(&f(other, &[1, 1, 4, 4])?, &[1, 1, 3, 3], &cp),
            DeviceMismatch { .. }
        );
        let (_, arg) = f(other, &[1, 1, 4, 4])?.max_pool2d(&Pool2dParams::square(2))?;
        let r = dy.max_pool2d_backward(&arg, &[1, 1, 4, 4], &Pool2dParams::square(2));
        expect_err!("max_pool2d_backward", r, DeviceMismatch { .. });
        let idx = up_u32(other, &[0, 1], &[2])?;
        expect_err!(
            "index_select",
            a.index_select(0, &idx),
            DeviceMismatch { .. }
        );
        expect_err!("index_add", a.index_add(0, &idx, 3), DeviceMismatch { .. });
        let gi = up_u32(other, &[0; 6], &[2, 3])?;
        expect_err!("gather", a.gather(0, &gi), DeviceMismatch { .. });
        expect_err!(
            "scatter_add idx",
            a.scatter_add(0, &gi, &f(dev, &[2, 3])?),
            DeviceMismatch { .. }
        );
        let gi_here = up_u32(dev, &[0; 6], &[2, 3])?;
        expect_err!(
            "scatter_add src",
            a.scatter_add(0, &gi_here, &b),
            DeviceMismatch { .. }
        );
        expect_err!(
            "concat",
            GpuArray::concat(&[&a, &b], 0),
            DeviceMismatch { .. }
        );
        // Nothing above reached the GPU: the device still works and reports no stale error.
        check_bits(
            "after mismatches",
            &down(&a.unary(UnaryOp::AddScalar(1.0))?)?,
            &[1.0; 6],
        )?;
        Ok(())
    });
}

#[test]
fn concat_of_mixed_dtypes() {
    on_each_device("concat_of_mixed_dtypes", |dev| {
        let (a, b) = (f(dev, &[2, 3])?, u(dev, &[2, 3])?);
        match GpuArray::concat(&[&a, &b], 0) {
            Err(DeviceError::DTypeMismatch {
                op: "concat",
                expected: DType::F32,
                got: DType::U32,
            }) => Ok(()),
            other => fail(format!(
                "concat f32 with u32: want DTypeMismatch, got {other:?}"
            )),
        }
    });
}
