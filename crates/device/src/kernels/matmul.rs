//! Launcher for `shaders/matmul.wgsl`: batched matmul, broadcast batch dims, transposes by strides.

use bytemuck::{Pod, Zeroable};

use super::{Kernel, MAX_DIMS, contiguous_strides, pack};
use crate::array::{DType, GpuArray};
use crate::context::{ro, rw};
use crate::error::{DeviceError, Result};
use crate::kernels::binary::broadcast_shapes;
use crate::kernels::{BinaryOp, UnaryOp};
use crate::tuning::ShapeClass;

/// Whether an operand is used as stored or transposed (its last two dims swapped), without a copy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Transpose {
    #[default]
    No,
    Yes,
}

/// A variant of the kernel: the entry point for each operand layout (as stored, A and B: nn, nt,
/// tn, tt), the tile of C one workgroup covers, and its sustained speed on lavapipe (2 cores,
/// 1024^3), the weight the choice uses. `main_RxJ` (matmul.wgsl) reads any strides and runs
/// everywhere; `sgRT` (matmul_subgroup.wgsl) needs 8-lane subgroups and vec4-aligned operands;
/// `wsgRT` (matmul_wide.wgsl) also wide storage access, A as stored and K a multiple of 8.
struct Variant {
    name: &'static str,
    kernel: Kernel,
    entries: [&'static str; 4],
    tile: (usize, usize),
    gflops: f64,
    /// Picked without a measured choice only where M fits one row of tiles.
    short: bool,
}

impl Variant {
    const fn strided(name: &'static str, r: usize, j: usize, gflops: f64) -> Self {
        Self {
            name,
            kernel: Kernel::Matmul,
            entries: [name; 4],
            tile: (8 * r, 8 * j),
            gflops,
            short: false,
        }
    }

    const fn subgroup(
        name: &'static str,
        entries: [&'static str; 4],
        tile: (usize, usize),
        gflops: f64,
    ) -> Self {
        Self {
            name,
            kernel: Kernel::MatmulSubgroup,
            entries,
            tile,
            gflops,
            short: false,
        }
    }

    /// A subgroup variant for products with at most `tile.0` rows, rated above all others there.
    const fn short(name: &'static str, entries: [&'static str; 4], tile: (usize, usize)) -> Self {
        Self {
            short: true,
            ..Self::subgroup(name, entries, tile, 70.0)
        }
    }

    /// A word-loading variant: entry points for A as stored only (nn, nt).
    const fn wide(
        name: &'static str,
        entries: [&'static str; 2],
        tile: (usize, usize),
        gflops: f64,
    ) -> Self {
        Self {
            name,
            kernel: Kernel::MatmulWide,
            entries: [entries[0], entries[1], "", ""],
            tile,
            gflops,
            short: false,
        }
    }

    /// Whether the variant can fold a batch into N (the subgroup and word-loading kernels).
    fn folds(&self) -> bool {
        self.kernel != Kernel::Matmul
    }

    fn entry(&self, ta: Transpose, tb: Transpose) -> &'static str {
        self.entries[2 * usize::from(ta == Transpose::Yes) + usize::from(tb == Transpose::Yes)]
    }

    /// Whether this variant can run op(a) [.., m, k] @ op(b) [.., k, n] on `dev`.
    fn fits(&self, dev: &crate::Device, ta: Transpose, (m, k, n): (usize, usize, usize)) -> bool {
        let sg8 = dev.info().subgroup_size == Some(8);
        match self.kernel {
            Kernel::MatmulSubgroup => {
                sg8 && k % 4 == 0 && n % 4 == 0 && (ta == Transpose::No || m % 4 == 0)
            }
            Kernel::MatmulWide => {
                sg8 && dev.wide_storage() && k % 8 == 0 && n % 4 == 0 && ta == Transpose::No
            }
            _ => true,
        }
    }
}

const VARIANTS: [Variant; 14] = [
    Variant::strided("main_8x8", 8, 8, 13.0),
    Variant::strided("main_16x16", 16, 16, 23.0),
    Variant::strided("main_16x32", 16, 32, 29.0),
    // Entry points sg.._nn, _nt, _tn, _tt (operand layouts, see `entry`).
    Variant::subgroup(
        "sg8",
        ["sg8_nn", "sg8_nt", "sg8_tn", "sg8_tt"],
        (32, 64),
        30.0,
    ),
    Variant::subgroup(
        "sg16",
        ["sg16_nn", "sg16_nt", "sg16_tn", "sg16_tt"],
        (64, 64),
        40.0,
    ),
    Variant::subgroup(
        "sg32",
        ["sg32_nn", "sg32_nt", "sg32_tn", "sg32_tt"],
        (128, 64),
        55.0,
    ),
    Variant::subgroup(
        "sg64",
        ["sg64_nn", "sg64_nt", "sg64_tn", "sg64_tt"],
        (256, 64),
        68.0,
    ),
    Variant::subgroup(
        "sg64w",
        ["sg64w_nn", "sg64w_nt", "sg64w_tn", "sg64w_tt"],
        (64, 256),
        60.0,
    ),
    // One subgroup per workgroup. Measured on lavapipe, these are the fastest where one row of
    // tiles covers M (conv2's 64-row products 1.2-1.4x sg16 and sg64w, conv1's 32-row ones
    // 1.5-3x sg8) and slower than sg64 beyond (1024^3: 41 against 60 GFLOP/s), so without a
    // measured choice they are picked only there (see `short`).
    Variant::short(
        "sg64s",
        ["sg64s_nn", "sg64s_nt", "sg64s_tn", "sg64s_tt"],
        (64, 32),
    ),
    Variant::short(
        "sg32s",
        ["sg32s_nn", "sg32s_nt", "sg32s_tn", "sg32s_tt"],
        (32, 32),
    ),
    // Against their subgroup twins at 1024^3 these measured 1.0-1.36x as fast in one process and
    // 0.75-1.05x in others on the same machine, so without a measured choice (`wgrad bench
    // --tune`) they rank just below the twins.
    Variant::wide("wsg16", ["sg16_nn", "sg16_nt"], (64, 64), 38.0),
    Variant::wide("wsg32", ["sg32_nn", "sg32_nt"], (128, 64), 52.0),
    Variant::wide("wsg64", ["sg64_nn", "sg64_nt"], (256, 64), 65.0),
    Variant::wide("wsg64w", ["sg64w_nn", "sg64w_nt"], (64, 256), 57.0),
];

/// Picks among the variants that fit when no measured choice was recorded. GPUs get 8x8 (an 8x8
/// block already fills their registers). CPU adapters load per SIMD lane, so bigger blocks win, as
/// long as the padding of a partial tile and too few workgroups for the CPU's threads do not eat
/// the gain: the estimate is padding / speed, scaled up when there are fewer workgroups than threads.
/// Short variants compete only where M fits one row of their tiles. With `foldable` the variants that fold (see `Variant::folds`) are costed as one product of
/// `batch n` columns.
fn pick<'a>(
    cpu_adapter: bool,
    fitting: impl Iterator<Item = &'a Variant>,
    (batch, m, n): (usize, usize, usize),
    foldable: bool,
) -> &'static Variant {
    if !cpu_adapter {
        return &VARIANTS[0];
    }
    let threads = std::thread::available_parallelism().map_or(1, |t| t.get());
    let cost = |v: &Variant| {
        let (tm, tn) = v.tile;
        let (batch, n) = if foldable && v.folds() {
            (1, batch * n)
        } else {
            (batch, n)
        };
        let tasks = batch * m.div_ceil(tm) * n.div_ceil(tn);
        let padding = (m.div_ceil(tm) * tm * n.div_ceil(tn) * tn) as f64 / (m * n) as f64;
        let idle = (threads as f64 / tasks as f64).max(1.0);
        padding * idle / v.gflops
    };
    let best = fitting
        .filter(|v| !v.short || m <= v.tile.0)
        .min_by(|a, b| cost(a).total_cmp(&cost(b)));
    VARIANTS
        .iter()
        .find(|v| best.is_some_and(|b| b.name == v.name))
        .unwrap_or(&VARIANTS[0])
}

/// `k` rounded up to a multiple of 4 when that lets a product with `n` (a multiple of 4) columns
/// use the vec4 subgroup kernels on `dev`, else `k`: callers that build their own operands (conv's
/// im2col) pad the reduction dim with zeros to get there.
pub(crate) fn vec4_k(dev: &crate::Device, k: usize, n: usize) -> usize {
    if dev.info().subgroup_size == Some(8) && n.is_multiple_of(4) {
        k.next_multiple_of(4)
    } else {
        k
    }
}

/// What a product applies to C before it is stored: `act(C + bias)`, with the bias one value per
/// row of C (conv's, one per output channel) or one per column (a linear layer's, one per output
/// feature), at most one of them, each part optional. The subgroup kernels do it in the store for
/// relu, leaky_relu, elu, sigmoid, tanh or no activation (a layer's bias and activation then cost
/// no pass over its output of their own); other paths and activations apply it after the product.
#[derive(Clone, Copy, Debug, Default)]
pub struct Epilogue<'a> {
    /// [M]: added to every row of C.
    pub row_bias: Option<&'a GpuArray>,
    /// [N]: added to every column of C.
    pub col_bias: Option<&'a GpuArray>,
    pub act: Option<UnaryOp>,
}

impl Epilogue<'_> {
    /// Whether the subgroup kernels' store can apply it (their table of activations).
    fn in_store(&self) -> bool {
        use UnaryOp::*;
        self.act
            .is_none_or(|a| matches!(a, Relu | LeakyRelu(_) | Elu(_) | Sigmoid | Tanh))
    }

    /// The bias and its code in the subgroup kernels' store (BIAS: 1 per row, 2 per column).
    fn bias(&self) -> Option<(&GpuArray, f64)> {
        self.row_bias
            .map(|b| (b, 1.0))
            .or(self.col_bias.map(|b| (b, 2.0)))
    }

    /// Checks the bias against a product of `m` rows and `n` columns on `a`'s device.
    fn check(&self, a: &GpuArray, m: usize, n: usize) -> Result<()> {
        if self.row_bias.is_some() && self.col_bias.is_some() {
            return Err(DeviceError::InvalidArgument {
                op: "matmul",
                reason: "an epilogue takes a row bias or a column bias, not both".into(),
            });
        }
        if let Some((bias, code)) = self.bias() {
            bias.expect_dtype("matmul", DType::F32)?;
            a.same_device("matmul", bias)?;
            let (len, what) = if code == 1.0 {
                (m, "row")
            } else {
                (n, "column")
            };
            if bias.numel() != len {
                return Err(DeviceError::ShapeMismatch {
                    op: "matmul",
                    lhs: vec![len],
                    rhs: bias.shape.clone(),
                    detail: format!(": the {what} bias needs one value per {what} of the product"),
                });
            }
        }
        Ok(())
    }

    /// The epilogue applied to a product `c` ([.., M, N]) after it was stored.
    fn apply(&self, c: GpuArray) -> Result<GpuArray> {
        let (m, n) = (c.shape[c.shape.len() - 2], c.shape[c.shape.len() - 1]);
        let bias = match (self.row_bias, self.col_bias) {
            (Some(b), _) => Some(b.reshape(&[m, 1])?),
            (None, Some(b)) => Some(b.reshape(&[n])?),
            (None, None) => None,
        };
        match (bias, self.act) {
            (None, None) => Ok(c),
            (None, Some(act)) => c.unary(act),
            (Some(bias), act) => c.binary_then(BinaryOp::Add, &bias, act.as_slice()),
        }
    }
}

/// Whether a batched product is summed over its batch, and how the work is cut.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Sum {
    /// One product per batch.
    No,
    /// The sum, the batch cut into as many ranges as the CPU's threads need.
    Auto,
    /// The sum, the batch cut into this many ranges (tests).
    #[cfg(test)]
    Ranges(usize),
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
    /// Summing when not 0: output i is the sum of the products of batches `i sum_batch ..
    /// (i + 1) sum_batch` (subgroup kernels only).
    sum_batch: u32,
    /// Folding when over 1: that many batches of B and C folded into N, A broadcast over them
    /// (subgroup kernels only; `batch` is then 1).
    fold: u32,
    /// The scalars of the epilogue's activation (subgroup kernels only).
    act_a: f32,
    act_b: f32,
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

/// `operand` for shapes that may have fewer than 2 dims (then 0 x 0).
fn operand_or_empty(shape: &[usize], t: Transpose) -> (usize, usize, usize, usize) {
    if shape.len() < 2 {
        (0, 0, 0, 0)
    } else {
        operand(shape, t)
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
        self.matmul_with(b, ta, tb, None, Epilogue::default())
    }

    /// `act(op(a) @ op(b) + bias)` (see `Epilogue`), the bias [M] (per row) or [N] (per column).
    pub fn matmul_epilogue(
        &self,
        b: &GpuArray,
        ta: Transpose,
        tb: Transpose,
        epi: Epilogue,
    ) -> Result<GpuArray> {
        self.matmul_with(b, ta, tb, None, epi)
    }

    /// `Σ_b op(a_b) @ op(b_b)` over the broadcast batch dims: [M, N], the batched product summed
    /// over its batch without the [batch, M, N] intermediate where the subgroup kernels apply and
    /// [M, N] has enough tiles to keep the CPU's threads busy (each workgroup accumulates its tile
    /// over the whole batch), else by a batched product and a reduction. Used for weight
    /// gradients (conv's is a sum over samples).
    pub fn matmul_sum_batch(&self, b: &GpuArray, ta: Transpose, tb: Transpose) -> Result<GpuArray> {
        self.matmul_impl(b, ta, tb, None, Sum::Auto, Epilogue::default())
    }

    /// The variants of the matmul kernel that can run `self @ b` on this device, for tuning
    /// (`wgrad bench --tune`).
    pub fn matmul_variants(&self, b: &GpuArray, ta: Transpose, tb: Transpose) -> Vec<&'static str> {
        let (m, k, _, _) = operand_or_empty(&self.shape, ta);
        let (_, n, _, _) = operand_or_empty(&b.shape, tb);
        VARIANTS
            .iter()
            .filter(|v| v.fits(&self.dev, ta, (m, k, n)))
            .map(|v| v.name)
            .collect()
    }

    /// `matmul` with the given variant (one of `matmul_variants`), for tuning.
    pub fn matmul_variant(
        &self,
        b: &GpuArray,
        ta: Transpose,
        tb: Transpose,
        name: &str,
    ) -> Result<GpuArray> {
        let v = self.variant_named(b, ta, tb, name)?;
        self.matmul_with(b, ta, tb, Some(v), Epilogue::default())
    }

    /// `matmul_sum_batch` with the given variant (one of `matmul_variants`), for tuning.
    pub fn matmul_sum_batch_variant(
        &self,
        b: &GpuArray,
        ta: Transpose,
        tb: Transpose,
        name: &str,
    ) -> Result<GpuArray> {
        let v = self.variant_named(b, ta, tb, name)?;
        self.matmul_impl(b, ta, tb, Some(v), Sum::Auto, Epilogue::default())
    }

    fn variant_named(
        &self,
        b: &GpuArray,
        ta: Transpose,
        tb: Transpose,
        name: &str,
    ) -> Result<&'static Variant> {
        let fitting = self.matmul_variants(b, ta, tb);
        VARIANTS
            .iter()
            .find(|v| v.name == name && fitting.contains(&v.name))
            .ok_or_else(|| DeviceError::InvalidArgument {
                op: "matmul",
                reason: format!(
                    "no variant {name:?} for {:?} @ {:?} ({ta:?}/{tb:?}) on this device; there are {fitting:?}",
                    self.shape, b.shape
                ),
            })
    }

    /// `matmul` with the register-block variant forced (tests) or chosen by `pick` (`None`).
    fn matmul_with(
        &self,
        b: &GpuArray,
        ta: Transpose,
        tb: Transpose,
        forced: Option<&'static Variant>,
        epi: Epilogue,
    ) -> Result<GpuArray> {
        self.matmul_impl(b, ta, tb, forced, Sum::No, epi)
    }

    /// The batched product with its epilogue, or summing (then with none), its sum over the batch
    /// ([M, N]).
    fn matmul_impl(
        &self,
        b: &GpuArray,
        ta: Transpose,
        tb: Transpose,
        forced: Option<&'static Variant>,
        sum: Sum,
        epi: Epilogue,
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
        epi.check(a, m, n)?;
        let batch: usize = batch_shape.iter().product();
        let mut out_shape = if sum == Sum::No {
            batch_shape.clone()
        } else {
            vec![]
        };
        out_shape.extend([m, n]);
        if m * n == 0 {
            return GpuArray::uninit(&a.dev, "matmul", &out_shape, DType::F32);
        }
        if batch == 0 {
            return GpuArray::zeros(&a.dev, &out_shape);
        }
        if k == 0 {
            return epi.apply(GpuArray::zeros(&a.dev, &out_shape)?);
        }
        let info = a.dev.info();
        let cpu = info.adapter.device_type == "Cpu";
        if forced.is_none() {
            if let Some(padded) = a.matmul_padded(b, ta, tb, (batch, m, k, n), sum)? {
                return epi.apply(padded);
            }
        }
        let fitting = || VARIANTS.iter().filter(|v| v.fits(&a.dev, ta, (m, k, n)));
        let summing = sum != Sum::No;
        let class = if summing {
            ShapeClass::of_sum(batch, m, n, k)
        } else {
            ShapeClass::of(batch, m, n, k)
        };
        let tuned = || {
            let name = a.dev.tuned_variant(Kernel::Matmul, class)?;
            fitting().find(|v| v.name == name)
        };
        // One A for every batch of B: the subgroup kernels can take the batches as one product
        // with `batch n` columns, which leaves a partial tile only at the end of all of them.
        let a_bs = batch_strides(&a.shape, &batch_shape);
        let foldable = !summing && batch > 1 && a_bs.iter().all(|&s| s == 0);
        // Summing can cut the batch into ranges (below), so it has the batch's parallelism too.
        let v = forced
            .or_else(tuned)
            .unwrap_or_else(|| pick(cpu, fitting(), (batch, m, n), foldable));
        if summing && v.kernel == Kernel::Matmul {
            let per_sample = a.matmul_impl(b, ta, tb, Some(v), Sum::No, Epilogue::default())?;
            return per_sample.reshape(&[batch, m, n])?.reduce(
                crate::kernels::ReduceOp::Sum,
                0,
                false,
            );
        }
        let fold = foldable && v.folds();
        let n_tiled = if fold { batch * n } else { n };
        let (tiles_m, tiles_n) = (m.div_ceil(v.tile.0), n_tiled.div_ceil(v.tile.1));
        // Summing, each workgroup adds up its tile over a range of the batch. One range leaves one
        // workgroup per tile of [M, N] (conv1's 32x12 weight gradient would run on one thread), so
        // the batch is cut into ranges, for about 16 workgroups per CPU thread, whose [M, N] sums
        // are added up after in a fixed order (conv2's weight gradient, 5 tiles of sg16 on 2
        // threads: 4 per thread 17-18 ms, 16 per thread 15.7-16.7 ms).
        let ranges = match sum {
            Sum::No => batch,
            #[cfg(test)]
            Sum::Ranges(r) => r.clamp(1, batch),
            Sum::Auto => {
                let threads = std::thread::available_parallelism().map_or(1, |t| t.get());
                (16 * threads).div_ceil(tiles_m * tiles_n).clamp(1, batch)
            }
        };
        let per_range = batch.div_ceil(ranges);
        let outputs = if fold { 1 } else { batch.div_ceil(per_range) };
        let mut kernel_shape = if summing {
            vec![outputs]
        } else {
            batch_shape.clone()
        };
        kernel_shape.extend([m, n]);
        let out = GpuArray::uninit(&a.dev, "matmul", &kernel_shape, DType::F32)?;
        let mut params = Params {
            m: m as u32,
            n: n as u32,
            k: k as u32,
            batch: if fold { 1 } else { batch as u32 },
            a_rs: a_rs as u32,
            a_cs: a_cs as u32,
            b_rs: b_rs as u32,
            b_cs: b_cs as u32,
            tiles_m: tiles_m as u32,
            tiles_n: tiles_n as u32,
            nbd: batch_shape.len() as u32,
            sum_batch: if summing { per_range as u32 } else { 0 },
            fold: if fold { batch as u32 } else { 0 },
            act_a: 0.0,
            act_b: 0.0,
            bshape: pack(&batch_shape),
            a_bs: pack(&a_bs),
            b_bs: pack(&batch_strides(&b.shape, &batch_shape)),
        };
        // The subgroup kernels apply the epilogue in the store where they can (summing, there is
        // none); without one they run as they would without the feature (constants unset).
        let in_kernel = v.kernel != Kernel::Matmul && epi.in_store();
        let mut constants = Vec::new();
        if in_kernel {
            if let Some((_, code)) = epi.bias() {
                constants.push(("BIAS", code));
            }
            if let Some(act) = epi.act {
                let (code, alpha, beta) = act.code();
                constants.push(("ACT", f64::from(code)));
                (params.act_a, params.act_b) = (alpha, beta);
            }
        }
        let mut bindings = vec![rw(1, &out.buf), ro(2, &a.buf), ro(3, &b.buf)];
        if v.kernel != Kernel::Matmul {
            // Without a bias in the store its binding still needs a buffer; A's is as good as any.
            let bias = epi.bias().filter(|_| in_kernel).map_or(a, |(b, _)| b);
            bindings.push(ro(4, &bias.buf));
        }
        a.dev.dispatch(
            v.kernel,
            v.entry(ta, tb),
            &constants,
            &params,
            &bindings,
            (outputs * tiles_m * tiles_n) as u64,
        )?;
        if summing && outputs > 1 {
            out.reduce(crate::kernels::ReduceOp::Sum, 0, false)
        } else if in_kernel {
            out.reshape(&out_shape)
        } else {
            epi.apply(out.reshape(&out_shape)?)
        }
    }
}

/// Multiply-adds below which padding a product to the subgroup kernels' alignment does not pay:
/// the pads and the slice cost up to three small dispatches (about 0.1 ms on lavapipe). Measured
/// with a wait after each product: [128, 256] x [256, 10] (330 k) 0.43 -> 0.31 ms, the MLP's other
/// two products at that size even; [64, 3136] x [3136, 10] 3.1 -> 1.0 ms.
const PAD_MIN_MACS: usize = 1 << 18;

impl GpuArray {
    /// The product through the subgroup kernels where only alignment stands in their way: K or N,
    /// or M with A transposed, not a multiple of 4 (a classifier's 10 outputs). The operands get
    /// zero rows / columns up to the next multiple of 4 (zeros along K add nothing), and the
    /// product is sliced back. None where this does not apply.
    fn matmul_padded(
        &self,
        b: &GpuArray,
        ta: Transpose,
        tb: Transpose,
        dims: (usize, usize, usize, usize),
        sum: Sum,
    ) -> Result<Option<GpuArray>> {
        let Some((a, b)) = self.padded_operands(b, ta, tb, dims, sum)? else {
            return Ok(None);
        };
        let (_, m, _, n) = dims;
        let mut c = a.matmul_impl(&b, ta, tb, None, sum, Epilogue::default())?;
        let rank = c.shape.len();
        if c.shape[rank - 2] != m {
            c = c.narrow(rank - 2, 0, m)?;
        }
        if c.shape[rank - 1] != n {
            c = c.narrow(rank - 1, 0, n)?;
        }
        Ok(Some(c))
    }

    /// The operands of `matmul_padded`, padded, or None where it does not apply.
    fn padded_operands(
        &self,
        b: &GpuArray,
        ta: Transpose,
        tb: Transpose,
        (batch, m, k, n): (usize, usize, usize, usize),
        sum: Sum,
    ) -> Result<Option<(GpuArray, GpuArray)>> {
        let pad_k = !k.is_multiple_of(4);
        let pad_n = !n.is_multiple_of(4);
        let pad_m = ta == Transpose::Yes && !m.is_multiple_of(4);
        if self.dev.info().subgroup_size != Some(8)
            || !(pad_k || pad_n || pad_m)
            || batch * m * k * n < PAD_MIN_MACS
        {
            return Ok(None);
        }
        let (mp, kp, np) = (
            m.next_multiple_of(4),
            k.next_multiple_of(4),
            n.next_multiple_of(4),
        );
        // A padded product too large to bind is left to the plain path, which reports it (or
        // runs, when only the padding was too much) without allocating the pads first.
        let batch_out = if sum == Sum::No { batch } else { 1 };
        if (batch_out * mp * np * 4) as u64 > self.dev.max_binding_bytes() {
            return Ok(None);
        }
        // Pads the (rows, cols) of a matrix operand as stored to (rows, cols).
        let padded = |x: &GpuArray, rows: usize, cols: usize| -> Result<GpuArray> {
            let r = x.shape.len();
            if (x.shape[r - 2], x.shape[r - 1]) == (rows, cols) {
                return Ok(x.clone());
            }
            let mut pads = vec![(0, 0); r];
            pads[r - 2] = (0, rows - x.shape[r - 2]);
            pads[r - 1] = (0, cols - x.shape[r - 1]);
            x.pad(&pads, 0.0)
        };
        let a_to = match ta {
            Transpose::No => (m, kp),
            Transpose::Yes => (kp, if pad_m { mp } else { m }),
        };
        let b_to = match tb {
            Transpose::No => (kp, np),
            Transpose::Yes => (np, kp),
        };
        // Likewise padded operands too large to bind.
        let bindable = |x: &GpuArray, (rows, cols): (usize, usize)| {
            let r = x.shape.len();
            let matrices: usize = x.shape[..r - 2].iter().product();
            (matrices * rows * cols * 4) as u64 <= self.dev.max_binding_bytes()
        };
        if !bindable(self, a_to) || !bindable(b, b_to) {
            return Ok(None);
        }
        Ok(Some((
            padded(self, a_to.0, a_to.1)?,
            padded(b, b_to.0, b_to.1)?,
        )))
    }

    /// The operands of this product as `matmul` (or, `summed`, `matmul_sum_batch`) runs them:
    /// zero-padded where the subgroup kernels need it (a classifier's 10 outputs become 12), as
    /// they are otherwise. For tuning: the variants worth timing are those of these operands,
    /// whose shape class is the one the launch looks up.
    pub fn matmul_operands_as_run(
        &self,
        b: &GpuArray,
        ta: Transpose,
        tb: Transpose,
        summed: bool,
    ) -> Result<(GpuArray, GpuArray)> {
        let as_is = || Ok((self.clone(), b.clone()));
        if self.shape.len() < 2 || b.shape.len() < 2 {
            return as_is();
        }
        let (m, k, _, _) = operand(&self.shape, ta);
        let (_, n, _, _) = operand(&b.shape, tb);
        let batch_shape = broadcast_shapes(
            "matmul",
            &[
                &self.shape[..self.shape.len() - 2],
                &b.shape[..b.shape.len() - 2],
            ],
        )?;
        let batch = batch_shape.iter().product();
        let sum = if summed { Sum::Auto } else { Sum::No };
        match self.padded_operands(b, ta, tb, (batch, m, k, n), sum)? {
            Some(ops) => Ok(ops),
            None => as_is(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Epilogue, Kernel, Sum, Transpose, VARIANTS};
    use crate::UnaryOp;
    use crate::{Device, GpuArray};

    /// Every variant that fits, on shapes that leave partial tiles in both dims, with a broadcast
    /// batch and each transpose, against an f64 reference. The second and third shapes are
    /// vec4-aligned, so the subgroup variants run too where the device has 8-lane subgroups
    /// (lavapipe does), and the third has K a multiple of 8 for the word-loading variants. Sums
    /// over the batch run whole and in two ranges (of 2 and 1 batches for the second shape).
    /// Tolerance: K·2^-23·Σ|a·b| bounds f32 accumulation.
    #[test]
    fn every_variant_matches_the_cpu_reference() -> crate::Result<()> {
        let dev = Device::new()?;
        let (mut subgroup_runs, mut wide_runs) = (0, 0);
        for (batch, m, k, n) in [
            (2, 133, 19, 270),
            (3, 132, 20, 268),
            (2, 132, 24, 268),
            (1, 1, 4, 4),
        ] {
            // Logical operands: op(a) is [batch, m, k], op(b) is [k, n] (broadcast over the batch).
            let la = |bi: usize, r: usize, c: usize| {
                (((bi * m + r) * k + c) * 37 % 101) as f32 / 25.0 - 2.0
            };
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
                    let fitting = a.matmul_variants(&b, ta, tb);
                    for v in VARIANTS.iter().filter(|v| fitting.contains(&v.name)) {
                        match v.kernel {
                            Kernel::MatmulSubgroup => subgroup_runs += 1,
                            Kernel::MatmulWide => wide_runs += 1,
                            _ => {}
                        }
                        let c = a
                            .matmul_with(&b, ta, tb, Some(v), Epilogue::default())?
                            .to_vec::<f32>()?;
                        // The sum over the batch: in-kernel for the subgroup variants, over the
                        // whole batch or over two ranges added up after, a batched product and a
                        // reduction for the others.
                        for ranges in [1, 2] {
                            let sum = a.matmul_impl(
                                &b,
                                ta,
                                tb,
                                Some(v),
                                Sum::Ranges(ranges),
                                Epilogue::default(),
                            )?;
                            assert_eq!(sum.shape(), [m, n]);
                            let sum = sum.to_vec::<f32>()?;
                            for r in 0..m {
                                for col in 0..n {
                                    let (mut want, mut mag) = (0f64, 0f64);
                                    for bi in 0..batch {
                                        for kk in 0..k {
                                            let t =
                                                f64::from(la(bi, r, kk)) * f64::from(lb(kk, col));
                                            want += t;
                                            mag += t.abs();
                                        }
                                    }
                                    let got = f64::from(sum[r * n + col]);
                                    let tol = (batch * k) as f64 * 2f64.powi(-23) * mag;
                                    assert!(
                                        (got - want).abs() <= tol,
                                        "{} sum in {ranges} {ta:?}/{tb:?} {m}x{k}x{n} [{r},{col}]: {got} vs {want}",
                                        v.name
                                    );
                                }
                            }
                        }
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
                                        "{} {ta:?}/{tb:?} {m}x{k}x{n} [{bi},{r},{col}]: {got} vs {want}",
                                        v.name
                                    );
                                }
                            }
                        }
                    }
                }
            }
        }
        if dev.info().subgroup_size == Some(8) {
            // 7 subgroup variants x (4 layouts of 132x20x268 and of 132x24x268 + the 2 of 1x4x4
            // where A is not transposed: M = 1 is not a multiple of 4).
            assert_eq!(subgroup_runs, 70);
            if dev.wide_storage() {
                // 4 word-loading variants x the 2 layouts of 132x24x268 with A as stored.
                assert_eq!(wide_runs, 8);
            }
        }
        Ok(())
    }

    /// One A times a batch of B, which the subgroup and word-loading variants run folded (the
    /// batches side by side along N): every variant that fits, each transpose, one and two batch
    /// dims, N whose vec4 columns do not fill a subgroup (lanes straddle two batches) and M with a
    /// partial tile, against an f64 reference. With an epilogue (a row or a column bias, and
    /// leaky_relu, whose slope exercises the activation's scalar), applied in the store by the
    /// subgroup and word-loading kernels and after the product by the others.
    #[test]
    fn folded_batches_match_the_cpu_reference() -> crate::Result<()> {
        let dev = Device::new()?;
        let mut folded_runs = 0;
        for (bshape, m, k, n) in [
            (vec![3], 36, 16, 20),
            (vec![2, 3], 44, 8, 12),
            (vec![5], 4, 24, 196),
        ] {
            let batch: usize = bshape.iter().product();
            let la = |r: usize, c: usize| ((r * k + c) * 37 % 101) as f32 / 25.0 - 2.0;
            let lb = |bi: usize, r: usize, c: usize| {
                (((bi * k + r) * n + c) * 53 % 97) as f32 / 24.0 - 2.0
            };
            let bias_v: Vec<f32> = (0..m).map(|r| (r * 29 % 31) as f32 / 3.0 - 5.0).collect();
            let bias = GpuArray::from_slice(&dev, &bias_v, &[m])?;
            let cbias_v: Vec<f32> = (0..n).map(|c| (c * 17 % 23) as f32 / 3.0 - 4.0).collect();
            let cbias = GpuArray::from_slice(&dev, &cbias_v, &[n])?;
            // A row bias (conv's), then a column bias (a linear layer's).
            for per_row in [true, false] {
                let epi = Epilogue {
                    row_bias: per_row.then_some(&bias),
                    col_bias: (!per_row).then_some(&cbias),
                    act: Some(UnaryOp::LeakyRelu(0.1)),
                };
                let bias_at = |r: usize, col: usize| if per_row { bias_v[r] } else { cbias_v[col] };
                for ta in [Transpose::No, Transpose::Yes] {
                    for tb in [Transpose::No, Transpose::Yes] {
                        let a_store: Vec<f32> = (0..m * k)
                            .map(|i| match ta {
                                Transpose::No => la(i / k, i % k),
                                Transpose::Yes => la(i % m, i / m),
                            })
                            .collect();
                        let b_store: Vec<f32> = (0..batch * k * n)
                            .map(|i| {
                                let (bi, j) = (i / (k * n), i % (k * n));
                                match tb {
                                    Transpose::No => lb(bi, j / n, j % n),
                                    Transpose::Yes => lb(bi, j % k, j / k),
                                }
                            })
                            .collect();
                        // A with a batch dim of 1, broadcast like a missing one.
                        let a_shape = match ta {
                            Transpose::No => [1, m, k],
                            Transpose::Yes => [1, k, m],
                        };
                        let mut b_shape = bshape.clone();
                        b_shape.extend(if tb == Transpose::Yes { [n, k] } else { [k, n] });
                        let a = GpuArray::from_slice(&dev, &a_store, &a_shape)?;
                        let b = GpuArray::from_slice(&dev, &b_store, &b_shape)?;
                        let fitting = a.matmul_variants(&b, ta, tb);
                        for v in VARIANTS.iter().filter(|v| fitting.contains(&v.name)) {
                            folded_runs += usize::from(v.folds());
                            let c = a.matmul_with(&b, ta, tb, Some(v), epi)?;
                            let mut want_shape = bshape.clone();
                            want_shape.extend([m, n]);
                            assert_eq!(c.shape(), want_shape);
                            let c = c.to_vec::<f32>()?;
                            for bi in 0..batch {
                                for r in 0..m {
                                    for col in 0..n {
                                        let (mut want, mut mag) =
                                            (f64::from(bias_at(r, col)), 0f64);
                                        for kk in 0..k {
                                            let t =
                                                f64::from(la(r, kk)) * f64::from(lb(bi, kk, col));
                                            want += t;
                                            mag += t.abs();
                                        }
                                        if want < 0.0 {
                                            want *= 0.1;
                                        }
                                        let got = f64::from(c[(bi * m + r) * n + col]);
                                        let tol = k as f64 * 2f64.powi(-23) * mag;
                                        assert!(
                                            (got - want).abs() <= tol,
                                            "{} {ta:?}/{tb:?} {bshape:?} {m}x{k}x{n} [{bi},{r},{col}]: {got} vs {want}",
                                            v.name
                                        );
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        if dev.info().subgroup_size == Some(8) {
            // 7 subgroup variants x 4 layouts x 3 shapes, and where there is wide storage access
            // 4 word-loading variants x the 2 layouts with A as stored x 3 shapes (K is a
            // multiple of 8 in all of them); each with a row and with a column bias.
            let wide = if dev.wide_storage() { 4 * 2 * 3 } else { 0 };
            assert_eq!(folded_runs, 2 * (7 * 4 * 3 + wide));
        }
        Ok(())
    }
}
