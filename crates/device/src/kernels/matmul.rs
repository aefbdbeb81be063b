//! Launcher for `shaders/matmul.wgsl`: batched matmul, broadcast batch dims, transposes by strides.

use bytemuck::{Pod, Zeroable};

use super::{Kernel, MAX_DIMS, contiguous_strides, pack};
use crate::array::{DType, GpuArray};
use crate::context::{ro, rw};
use crate::error::{DeviceError, Result};
use crate::kernels::binary::broadcast_shapes;
use crate::tuning::ShapeClass;

/// Whether an operand is used as stored or transposed (its last two dims swapped), without a copy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Transpose {
    #[default]
    No,
    Yes,
}

/// A register-block variant of the kernel: R x J outputs per invocation, an 8R x 8J tile per
/// workgroup, and its sustained speed on lavapipe (2 cores, 1024^3), the weight the choice uses.
struct Variant {
    entry: &'static str,
    r: usize,
    j: usize,
    gflops: f64,
}

const VARIANTS: [Variant; 3] = [
    Variant {
        entry: "main_8x8",
        r: 8,
        j: 8,
        gflops: 13.0,
    },
    Variant {
        entry: "main_16x16",
        r: 16,
        j: 16,
        gflops: 23.0,
    },
    Variant {
        entry: "main_16x32",
        r: 16,
        j: 32,
        gflops: 29.0,
    },
];

/// Picks the variant for a [batch, m, n] output when no measured choice was recorded. GPUs get 8x8 (an 8x8 block already fills their
/// registers). CPU adapters load per SIMD lane, so bigger blocks win, as long as the padding of a
/// partial tile and too few workgroups for the CPU's threads do not eat the gain: the estimate is
/// padding / speed, scaled up when there are fewer workgroups than threads.
fn pick(cpu_adapter: bool, batch: usize, m: usize, n: usize) -> &'static Variant {
    if !cpu_adapter {
        return &VARIANTS[0];
    }
    let threads = std::thread::available_parallelism().map_or(1, |t| t.get());
    let cost = |v: &Variant| {
        let (tm, tn) = (8 * v.r, 8 * v.j);
        let tasks = batch * m.div_ceil(tm) * n.div_ceil(tn);
        let padding = (m.div_ceil(tm) * tm * n.div_ceil(tn) * tn) as f64 / (m * n) as f64;
        let idle = (threads as f64 / tasks as f64).max(1.0);
        padding * idle / v.gflops
    };
    VARIANTS
        .iter()
        .min_by(|a, b| cost(a).total_cmp(&cost(b)))
        .unwrap_or(&VARIANTS[0])
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Params {
    m: u32,
    n: u32,
    k: u32,
    batch: u32,
    a_rs: u32,
    a_cs: u32,
    b_rs: u32,
    b_cs: u32,
    tiles_m: u32,
    tiles_n: u32,
    nbd: u32,
    _p0: u32,
    bshape: [u32; MAX_DIMS],
    a_bs: [u32; MAX_DIMS],
    b_bs: [u32; MAX_DIMS],
}

/// Rows, cols as used, and (row stride, col stride) as stored, of a matrix operand.
fn operand(shape: &[usize], t: Transpose) -> (usize, usize, usize, usize) {
    let (r, c) = (shape[shape.len() - 2], shape[shape.len() - 1]);
    match t {
        Transpose::No => (r, c, c, 1),
        Transpose::Yes => (c, r, 1, c),
    }
}

/// Batch strides of an operand broadcast to `out_batch` (0 on broadcast dims).
fn batch_strides(shape: &[usize], out_batch: &[usize]) -> Vec<usize> {
    let batch = &shape[..shape.len() - 2];
    let mat = shape[shape.len() - 2] * shape[shape.len() - 1];
    let cs: Vec<usize> = contiguous_strides(batch).iter().map(|s| s * mat).collect();
    let off = out_batch.len() - batch.len();
    (0..out_batch.len())
        .map(|i| {
            if i < off || batch[i - off] == 1 {
                0
            } else {
                cs[i - off]
            }
        })
        .collect()
}

impl GpuArray {
    /// `op(a) @ op(b)` for a: [.., M, K], b: [.., K, N] (after the optional transposes), batch dims
    /// broadcast NumPy-style. 1-D operands are not promoted here; the graph crate does that.
    pub fn matmul(&self, b: &GpuArray, ta: Transpose, tb: Transpose) -> Result<GpuArray> {
        self.matmul_with(b, ta, tb, None)
    }

    /// The entry points of the matmul kernel, for tuning (`wgrad bench --tune`).
    pub fn matmul_variants() -> Vec<&'static str> {
        VARIANTS.iter().map(|v| v.entry).collect()
    }

    /// `matmul` with the given entry point (one of `matmul_variants`), for tuning.
    pub fn matmul_variant(
        &self,
        b: &GpuArray,
        ta: Transpose,
        tb: Transpose,
        entry: &str,
    ) -> Result<GpuArray> {
        let v = VARIANTS.iter().find(|v| v.entry == entry).ok_or_else(|| {
            DeviceError::InvalidArgument {
                op: "matmul",
                reason: format!(
                    "no variant {entry:?}; there are {:?}",
                    Self::matmul_variants()
                ),
            }
        })?;
        self.matmul_with(b, ta, tb, Some(v))
    }

    /// `matmul` with the register-block variant forced (tests) or chosen by `pick` (`None`).
    fn matmul_with(
        &self,
        b: &GpuArray,
        ta: Transpose,
        tb: Transpose,
        forced: Option<&'static Variant>,
    ) -> Result<GpuArray> {
        let a = self;
        a.expect_dtype("matmul", DType::F32)?;
        b.expect_dtype("matmul", DType::F32)?;
        a.same_device("matmul", b)?;
        let mismatch = |detail: &str| DeviceError::ShapeMismatch {
            op: "matmul",
            lhs: a.shape.clone(),
            rhs: b.shape.clone(),
            detail: detail.into(),
        };
        if a.shape.len() < 2 || b.shape.len() < 2 {
            return Err(mismatch(": both operands need at least 2 dims"));
        }
        let (m, k, a_rs, a_cs) = operand(&a.shape, ta);
        let (k2, n, b_rs, b_cs) = operand(&b.shape, tb);
        if k != k2 {
            return Err(mismatch(&format!(": inner dims {k} and {k2} differ")));
        }
        let batch_shape = broadcast_shapes(
            "matmul",
            &[&a.shape[..a.shape.len() - 2], &b.shape[..b.shape.len() - 2]],
        )?;
        if batch_shape.len() > MAX_DIMS {
            return Err(mismatch(": more than 8 batch dims"));
        }
        let batch: usize = batch_shape.iter().product();
        let mut out_shape = batch_shape.clone();
        out_shape.extend([m, n]);
        let out = GpuArray::uninit(&a.dev, "matmul", &out_shape, DType::F32)?;
        if out.numel() == 0 {
            return Ok(out);
        }
        if k == 0 {
            return GpuArray::zeros(&a.dev, &out_shape);
        }
        let cpu = a.dev.info().adapter.device_type == "Cpu";
        let tuned = || {
            let entry = a
                .dev
                .tuned_variant(Kernel::Matmul, ShapeClass::of(batch, m, n, k))?;
            VARIANTS.iter().find(|v| v.entry == entry)
        };
        let v = forced
            .or_else(tuned)
            .unwrap_or_else(|| pick(cpu, batch, m, n));
        let (tiles_m, tiles_n) = (m.div_ceil(8 * v.r), n.div_ceil(8 * v.j));
        let params = Params {
            m: m as u32,
            n: n as u32,
            k: k as u32,
            batch: batch as u32,
            a_rs: a_rs as u32,
            a_cs: a_cs as u32,
            b_rs: b_rs as u32,
            b_cs: b_cs as u32,
            tiles_m: tiles_m as u32,
            tiles_n: tiles_n as u32,
            nbd: batch_shape.len() as u32,
            _p0: 0,
            bshape: pack(&batch_shape),
            a_bs: pack(&batch_strides(&a.shape, &batch_shape)),
            b_bs: pack(&batch_strides(&b.shape, &batch_shape)),
        };
        a.dev.dispatch(
            Kernel::Matmul,
            v.entry,
            &[],
            &params,
            &[rw(1, &out.buf), ro(2, &a.buf), ro(3, &b.buf)],
            (batch * tiles_m * tiles_n) as u64,
        )?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::{Transpose, VARIANTS};
    use crate::{Device, GpuArray};

    /// Every variant on shapes that leave partial tiles in both dims, with a broadcast batch and
    /// each transpose, against an f64 reference. Tolerance: K·2^-23·Σ|a·b| bounds f32 accumulation.
    #[test]
    fn every_variant_matches_the_cpu_reference() -> crate::Result<()> {
        let dev = Device::new()?;
        let (batch, m, k, n) = (2, 133, 19, 270);
        // Logical operands: op(a) is [batch, m, k], op(b) is [k, n] (broadcast over the batch).
        let la =
            |bi: usize, r: usize, c: usize| (((bi * m + r) * k + c) * 37 % 101) as f32 / 25.0 - 2.0;
        let lb = |r: usize, c: usize| ((r * n + c) * 53 % 97) as f32 / 24.0 - 2.0;
        for ta in [Transpose::No, Transpose::Yes] {
            for tb in [Transpose::No, Transpose::Yes] {
                let mut a_store = vec![0f32; batch * m * k];
                for bi in 0..batch {
                    for r in 0..m {
                        for c in 0..k {
                            let at = match ta {
                                Transpose::No => (bi * m + r) * k + c,
                                Transpose::Yes => (bi * k + c) * m + r,
                            };
                            a_store[at] = la(bi, r, c);
                        }
                    }
                }
                let mut b_store = vec![0f32; k * n];
                for r in 0..k {
                    for c in 0..n {
                        let at = match tb {
                            Transpose::No => r * n + c,
                            Transpose::Yes => c * k + r,
                        };
                        b_store[at] = lb(r, c);
                    }
                }
                let a_shape = if ta == Transpose::Yes {
                    [batch, k, m]
                } else {
                    [batch, m, k]
                };
                let b_shape = if tb == Transpose::Yes { [n, k] } else { [k, n] };
                let a = GpuArray::from_slice(&dev, &a_store, &a_shape)?;
                let b = GpuArray::from_slice(&dev, &b_store, &b_shape)?;
                for v in &VARIANTS {
                    let c = a.matmul_with(&b, ta, tb, Some(v))?.to_vec::<f32>()?;
                    for bi in 0..batch {
                        for r in 0..m {
                            for col in 0..n {
                                let (mut want, mut mag) = (0f64, 0f64);
                                for kk in 0..k {
                                    let t = f64::from(la(bi, r, kk)) * f64::from(lb(kk, col));
                                    want += t;
                                    mag += t.abs();
                                }
                                let got = f64::from(c[(bi * m + r) * n + col]);
                                let tol = k as f64 * 2f64.powi(-23) * mag;
                                assert!(
                                    (got - want).abs() <= tol,
                                    "{} {ta:?}/{tb:?} [{bi},{r},{col}]: {got} vs {want}",
                                    v.entry
                                );
                            }
                        }
                    }
                }
            }
        }
        Ok(())
    }
}
