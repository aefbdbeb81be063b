//! `wgrad bench`: kernel and training-step benchmarks with a CPU reference measured in the same run.
//!
//! Every figure is the median over repeats of wall time around record + submit + wait, after a
//! warm-up, so it includes dispatch and synchronisation costs a training loop pays. Each GPU figure
//! is also given as a ratio to a CPU reference from the same run (a threaded `matrixmultiply` SGEMM
//! for matmuls, `memcpy` bandwidth for memory-bound kernels), which survives a noisy machine.

use std::time::Instant;

use anyhow::Result;
use serde::Serialize;
use wgrad_device::{
    BinaryOp, Conv2dParams, Device, Distribution, GpuArray, Kernel, OptimRule, ReduceOp,
    ShapeClass, Transpose, UnaryOp,
};
use wgrad_graph::{Pool2dParams, Tensor};
use wgrad_models::nn::{
    Activation, Conv2d, Flatten, Initializer, Linear, MaxPool2d, Module, Sequential, cross_entropy,
};
use wgrad_models::optim::{Adam, Optimizer};

/// One measured figure.
#[derive(Clone, Debug, Serialize)]
pub struct Figure {
    pub name: String,
    pub value: f64,
    pub unit: &'static str,
    /// Median wall time of one run (submit + wait included), milliseconds.
    pub ms: f64,
    /// Median GPU time of one run from timestamp queries around the compute passes, where the
    /// adapter has them (on CPU adapters such as lavapipe, the CPU clock).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gpu_ms: Option<f64>,
    /// The CPU reference of the same run, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference: Option<f64>,
    /// value / reference (for ms figures: reference / value, so larger is better for the GPU).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ratio: Option<f64>,
    pub adapter: String,
}

/// Median wall and GPU milliseconds of `repeats` runs of `f` (see `samples`).
fn time_ms<T>(
    dev: &Device,
    repeats: usize,
    f: impl FnMut() -> Result<T>,
) -> Result<(f64, Option<f64>)> {
    let (wall, gpu) = samples(dev, repeats, f)?;
    let median = |v: &[f64]| v[v.len() / 2];
    let gpu = (gpu.len() == repeats && repeats > 0).then(|| median(&gpu));
    Ok((median(&wall), gpu))
}

/// `repeats` timings of `f` after one warm-up call, sorted: wall milliseconds around the call plus
/// submit and wait, and the GPU milliseconds of the same runs where timestamps are available. What
/// `f` returns is held until the work is done: element-wise results nobody holds are never computed
/// (fusion drops them), so timed element-wise ops must return theirs.
fn samples<T>(
    dev: &Device,
    repeats: usize,
    mut f: impl FnMut() -> Result<T>,
) -> Result<(Vec<f64>, Vec<f64>)> {
    let out = f()?;
    dev.synchronize()?;
    drop(out);
    if dev.is_profiling() {
        // The warm-up includes the driver's shader compilation; profile the timed runs only.
        dev.set_profiling(true);
    }
    let mut wall = Vec::with_capacity(repeats);
    let mut gpu = Vec::with_capacity(repeats);
    for _ in 0..repeats {
        let timed = dev.start_gpu_timer()?;
        let s = Instant::now();
        let out = f()?;
        dev.synchronize()?;
        wall.push(s.elapsed().as_secs_f64() * 1e3);
        drop(out);
        if let Some(g) = dev.stop_gpu_timer()?.filter(|_| timed) {
            gpu.push(g);
        }
    }
    wall.sort_by(f64::total_cmp);
    gpu.sort_by(f64::total_cmp);
    Ok((wall, gpu))
}

fn cpu_ms(repeats: usize, mut f: impl FnMut()) -> f64 {
    f();
    let mut t: Vec<f64> = (0..repeats)
        .map(|_| {
            let s = Instant::now();
            f();
            s.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    t.sort_by(f64::total_cmp);
    t[t.len() / 2]
}

/// Threaded SGEMM on the host: C[m, n] = A[m, k] B[k, n], milliseconds.
fn cpu_gemm_ms(m: usize, k: usize, n: usize, repeats: usize) -> f64 {
    let a = vec![0.5f32; m * k];
    let b = vec![0.25f32; k * n];
    let mut c = vec![0.0f32; m * n];
    cpu_ms(repeats, || unsafe {
        // SAFETY: the slices hold m*k, k*n and m*n elements with the row-major strides given.
        matrixmultiply::sgemm(
            m,
            k,
            n,
            1.0,
            a.as_ptr(),
            k as isize,
            1,
            b.as_ptr(),
            n as isize,
            1,
            0.0,
            c.as_mut_ptr(),
            n as isize,
            1,
        );
    })
}

/// Host memcpy bandwidth over `bytes` (GB/s counting read + write).
fn memcpy_gbs(bytes: usize, repeats: usize) -> f64 {
    let src = vec![1u8; bytes];
    let mut dst = vec![0u8; bytes];
    let ms = cpu_ms(repeats, || dst.copy_from_slice(std::hint::black_box(&src)));
    2.0 * bytes as f64 / (ms * 1e6)
}

struct Bench<'a> {
    dev: &'a Device,
    filter: Option<&'a str>,
    adapter: String,
    figures: Vec<Figure>,
    on_figure: &'a mut dyn FnMut(&Figure),
    /// GPU median of the last `time` call, attached to the next figure pushed.
    gpu_ms: std::cell::Cell<Option<f64>>,
}

impl Bench<'_> {
    /// `time_ms` on this bench's device: returns the wall median, keeps the GPU median for `push`.
    fn time<T>(&self, repeats: usize, f: impl FnMut() -> Result<T>) -> Result<f64> {
        let (wall, gpu) = time_ms(self.dev, repeats, f)?;
        self.gpu_ms.set(gpu);
        Ok(wall)
    }

    fn wants(&self, name: &str) -> bool {
        self.filter.is_none_or(|f| name.contains(f))
    }

    fn push(
        &mut self,
        name: &str,
        value: f64,
        unit: &'static str,
        ms: f64,
        reference: Option<f64>,
    ) {
        let ratio = reference.map(|r| if unit == "ms" { r / value } else { value / r });
        let fig = Figure {
            name: name.to_string(),
            value,
            unit,
            ms,
            gpu_ms: self.gpu_ms.take(),
            reference,
            ratio,
            adapter: self.adapter.clone(),
        };
        (self.on_figure)(&fig);
        self.figures.push(fig);
    }

    fn zeros(&self, shape: &[usize]) -> Result<GpuArray> {
        Ok(GpuArray::full(self.dev, shape, 0.5)?)
    }

    fn matmul(
        &mut self,
        name: &str,
        (m, k, n): (usize, usize, usize),
        ta: Transpose,
        tb: Transpose,
    ) -> Result<()> {
        if !self.wants(name) {
            return Ok(());
        }
        let a = self.zeros(&if ta == Transpose::Yes { [k, m] } else { [m, k] })?;
        let b = self.zeros(&if tb == Transpose::Yes { [n, k] } else { [k, n] })?;
        let big = m * k * n >= 1 << 30;
        let repeats = if big { 3 } else { 5 };
        let ms = self.time(repeats, || {
            a.matmul(&b, ta, tb)?;
            Ok(())
        })?;
        let flop = 2.0 * (m * k * n) as f64;
        let cpu = flop / (cpu_gemm_ms(m, k, n, repeats) * 1e6);
        self.push(name, flop / (ms * 1e6), "GFLOP/s", ms, Some(cpu));
        Ok(())
    }

    fn elementwise(&mut self, memcpy: f64) -> Result<()> {
        const N: usize = 1 << 22;
        let names = [
            "add_4M",
            "mul_4M",
            "chain_4M",
            "sum_4M",
            "softmax_1024x1024",
            "mul_4M_vec4",
            "sum_4M_vec4",
        ];
        if !names.iter().any(|n| self.wants(n)) {
            return Ok(());
        }
        let a = self.zeros(&[N])?;
        let b = self.zeros(&[N])?;
        for (name, op) in [("add_4M", BinaryOp::Add), ("mul_4M", BinaryOp::Mul)] {
            if self.wants(name) {
                let ms = self.time(10, || Ok(a.binary(op, &b)?))?;
                self.push(
                    name,
                    3.0 * 4.0 * N as f64 / (ms * 1e6),
                    "GB/s",
                    ms,
                    Some(memcpy),
                );
            }
        }
        // relu(a * b + 1): one fused kernel, and with fusion off three kernels, for the ratio.
        // Bytes counted once: read a and b, write the result.
        let chains: [(&str, bool); 2] = [("chain_4M", true), ("chain_4M_unfused", false)];
        for (name, fused) in chains {
            if !self.wants(name) {
                continue;
            }
            self.dev.set_fusion(fused)?;
            let timed = self.time(10, || {
                Ok(a.binary(BinaryOp::Mul, &b)?
                    .unary(UnaryOp::AddScalar(1.0))?
                    .unary(UnaryOp::Relu)?)
            });
            self.dev.set_fusion(true)?;
            let ms = timed?;
            self.push(
                name,
                3.0 * 4.0 * N as f64 / (ms * 1e6),
                "GB/s",
                ms,
                Some(memcpy),
            );
        }
        if self.wants("sum_4M") {
            let ms = self.time(10, || {
                a.reduce_all(ReduceOp::Sum)?;
                Ok(())
            })?;
            self.push(
                "sum_4M",
                4.0 * N as f64 / (ms * 1e6),
                "GB/s",
                ms,
                Some(memcpy),
            );
        }
        // The same two figures with the vec4 kernels, where the wide ones ran above: their ratio.
        let vec4_names = ["mul_4M_vec4", "sum_4M_vec4"];
        if self.dev.wide_storage() && vec4_names.iter().any(|n| self.wants(n)) {
            self.dev.set_wide_storage(false);
            let timed = self.wide_off_figures(&a, &b, memcpy);
            self.dev.set_wide_storage(true);
            timed?;
        }
        if self.wants("softmax_1024x1024") {
            let x = self.zeros(&[1024, 1024])?;
            let ms = self.time(10, || {
                x.softmax(1)?;
                Ok(())
            })?;
            self.push(
                "softmax_1024x1024",
                2.0 * 4.0 * (1 << 20) as f64 / (ms * 1e6),
                "GB/s",
                ms,
                Some(memcpy),
            );
        }
        Ok(())
    }

    /// `mul_4M` and `sum_4M` again, as `*_vec4` (called with the wide kernels off).
    fn wide_off_figures(&mut self, a: &GpuArray, b: &GpuArray, memcpy: f64) -> Result<()> {
        let n = a.numel() as f64;
        if self.wants("mul_4M_vec4") {
            let ms = self.time(10, || Ok(a.binary(BinaryOp::Mul, b)?))?;
            let gbs = 3.0 * 4.0 * n / (ms * 1e6);
            self.push("mul_4M_vec4", gbs, "GB/s", ms, Some(memcpy));
        }
        if self.wants("sum_4M_vec4") {
            let ms = self.time(10, || Ok(a.reduce_all(ReduceOp::Sum).map(drop)?))?;
            self.push(
                "sum_4M_vec4",
                4.0 * n / (ms * 1e6),
                "GB/s",
                ms,
                Some(memcpy),
            );
        }
        Ok(())
    }

    /// One figure for each of the remaining kernel families: fill, random, movement, pooling and
    /// the fused optimiser update.
    fn families(&mut self, memcpy: f64) -> Result<()> {
        const N: usize = 1 << 22;
        let bytes = 4.0 * N as f64;
        if self.wants("fill_4M") {
            let ms = self.time(10, || Ok(GpuArray::full(self.dev, &[N], 1.0).map(drop)?))?;
            self.push("fill_4M", bytes / (ms * 1e6), "GB/s", ms, Some(memcpy));
        }
        if self.wants("randn_4M") {
            let normal = Distribution::Normal {
                mean: 0.0,
                std: 1.0,
            };
            let ms = self.time(10, || {
                Ok(GpuArray::random(self.dev, &[N], normal, 1, 0).map(drop)?)
            })?;
            self.push("randn_4M", N as f64 / (ms * 1e6), "Gsample/s", ms, None);
        }
        if self.wants("transpose_2048") {
            let x = self.zeros(&[2048, 2048])?;
            let ms = self.time(10, || Ok(x.transpose(0, 1).map(drop)?))?;
            self.push(
                "transpose_2048",
                2.0 * bytes / (ms * 1e6),
                "GB/s",
                ms,
                Some(memcpy),
            );
        }
        if self.wants("maxpool_fwd") {
            // The CNN's first pooling: [64, 32, 28, 28] -> [64, 32, 14, 14].
            let x = self.zeros(&[64, 32, 28, 28])?;
            let pp = Pool2dParams::square(2);
            let ms = self.time(10, || Ok(x.max_pool2d(&pp).map(drop)?))?;
            self.push("maxpool_fwd", ms, "ms", ms, None);
        }
        if self.wants("adam_step_4M") {
            // One fused Adam update of a 4M-element parameter: reads p, g, m, v, writes p, m, v.
            let (p, g) = (self.zeros(&[N])?, self.zeros(&[N])?);
            let (m, v) = (self.zeros(&[N])?, self.zeros(&[N])?);
            let mut step = 0;
            let ms = self.time(10, || {
                step += 1;
                let rule = OptimRule::Adam {
                    lr: 1e-3,
                    beta1: 0.9,
                    beta2: 0.999,
                    eps: 1e-8,
                    weight_decay: 0.0,
                    step,
                };
                Ok(p.optim_update(&g, &[&m, &v], &rule)?)
            })?;
            self.push(
                "adam_step_4M",
                7.0 * bytes / (ms * 1e6),
                "GB/s",
                ms,
                Some(memcpy),
            );
        }
        Ok(())
    }

    fn conv(&mut self) -> Result<()> {
        let p = Conv2dParams {
            padding: (1, 1),
            ..Default::default()
        };
        // conv2d_fwd: input [64, 1, 28, 28], 32 filters 3x3, pad 1 (the CNN's first layer).
        let cases: [(&str, [usize; 4], [usize; 4]); 2] = [
            ("conv2d", [64, 1, 28, 28], [32, 1, 3, 3]),
            ("conv2d_l2", [64, 32, 14, 14], [64, 32, 3, 3]),
        ];
        for (tag, xs, ws) in cases {
            if !["fwd", "bwd_input", "bwd_weight"]
                .iter()
                .any(|pass| self.wants(&format!("{tag}_{pass}")))
            {
                continue;
            }
            let x = self.zeros(&xs)?;
            let w = self.zeros(&ws)?;
            let y = x.conv2d(&w, &p)?;
            let cpu_ref = cpu_gemm_ms(ws[0], ws[1] * ws[2] * ws[3], y.numel() / ws[0], 3);
            type Run<'a> = Box<dyn Fn() -> Result<()> + 'a>;
            let runs: [(&str, Run); 3] = [
                ("fwd", Box::new(|| Ok(x.conv2d(&w, &p).map(drop)?))),
                (
                    "bwd_input",
                    Box::new(|| Ok(y.conv2d_backward_input(&w, &xs, &p).map(drop)?)),
                ),
                (
                    "bwd_weight",
                    Box::new(|| Ok(y.conv2d_backward_weight(&x, &ws, &p).map(drop)?)),
                ),
            ];
            for (pass, f) in runs {
                let name = format!("{tag}_{pass}");
                if self.wants(&name) {
                    let ms = self.time(5, f.as_ref())?;
                    // Reference: the same GEMM (one pass's FLOPs) on the CPU.
                    self.push(&name, ms, "ms", ms, Some(cpu_ref));
                }
            }
        }
        Ok(())
    }

    /// A chain of 1,000 dependent tiny ops: `dispatch_record` is the host cost of recording one,
    /// `dispatch_overhead` the end-to-end cost per op, with element-wise fusion on (the default:
    /// the chain runs as a few generated kernels of up to 64 ops). `dispatch_overhead_unfused` is
    /// the same chain with fusion off: one dispatch per op, including the adapter's execution of
    /// each and the barrier between dependent ones.
    fn dispatch_overhead(&mut self) -> Result<()> {
        if !self.wants("dispatch") {
            return Ok(());
        }
        let x = self.zeros(&[16])?;
        const OPS: usize = 1000;
        for fused in [true, false] {
            let (rec_name, name) = if fused {
                ("dispatch_record", "dispatch_overhead")
            } else {
                ("dispatch_record_unfused", "dispatch_overhead_unfused")
            };
            if !self.wants(name) && !self.wants(rec_name) {
                continue;
            }
            self.dev.set_fusion(fused)?;
            let mut record_ms = Vec::new();
            let timed = self.time(5, || {
                let s = Instant::now();
                let mut t = x.clone();
                for _ in 0..OPS {
                    t = t.unary(UnaryOp::AddScalar(1.0))?;
                }
                record_ms.push(s.elapsed().as_secs_f64() * 1e3);
                Ok(t)
            });
            self.dev.set_fusion(true)?;
            let ms = timed?;
            record_ms.sort_by(f64::total_cmp);
            let rec = record_ms[record_ms.len() / 2];
            // The GPU time measured belongs to the end-to-end figure.
            let gpu = self.gpu_ms.take();
            self.push(rec_name, rec * 1e3 / OPS as f64, "us/op", rec, None);
            self.gpu_ms.set(gpu);
            self.push(name, ms * 1e3 / OPS as f64, "us/op", ms, None);
        }
        Ok(())
    }

    fn train_step(&mut self, name: &str, model: &Sequential, x: &Tensor, y: &Tensor) -> Result<()> {
        if !self.wants(name) {
            return Ok(());
        }
        let params = model.parameters();
        let mut opt = Adam::new(1e-3);
        let ms = self.time(5, || {
            let loss = cross_entropy(&model.forward(x)?, y)?;
            loss.backward()?;
            opt.step(&params)?;
            for p in &params {
                p.zero_grad();
            }
            Ok(())
        })?;
        self.push(name, ms, "ms", ms, None);
        Ok(())
    }

    fn training(&mut self) -> Result<()> {
        let dev = self.dev;
        let mut init = Initializer::new(dev, 0);
        // MLP 784-256-10, batch 128, Adam.
        let mlp = Sequential::new()
            .push(Linear::new(&mut init, 784, 256)?)
            .push(Activation::Relu)
            .push(Linear::new(&mut init, 256, 10)?);
        let x = Tensor::rand(&[128, 784], 1, dev)?;
        let y = Tensor::from_slice(
            &(0..128u32).map(|i| i % 10).collect::<Vec<_>>(),
            &[128],
            dev,
        )?;
        self.train_step("mlp_train_step", &mlp, &x, &y)?;
        // CNN: conv 1->32 3x3 pad 1, ReLU, maxpool 2, conv 32->64 3x3 pad 1, ReLU, maxpool 2,
        // linear 3136->10; batch 64, Adam.
        let cnn = Sequential::new()
            .push(Conv2d::new(&mut init, 1, 32, 3, 1, 1)?)
            .push(Activation::Relu)
            .push(MaxPool2d(Pool2dParams::square(2)))
            .push(Conv2d::new(&mut init, 32, 64, 3, 1, 1)?)
            .push(Activation::Relu)
            .push(MaxPool2d(Pool2dParams::square(2)))
            .push(Flatten)
            .push(Linear::new(&mut init, 3136, 10)?);
        let x = Tensor::rand(&[64, 1, 28, 28], 2, dev)?;
        let y = Tensor::from_slice(&(0..64u32).map(|i| i % 10).collect::<Vec<_>>(), &[64], dev)?;
        self.train_step("cnn_train_step", &cnn, &x, &y)?;
        Ok(())
    }
}

/// One measured tuning choice: the shape, the time of each variant (ms), and the winner.
#[derive(Clone, Debug, Serialize)]
pub struct TuneRecord {
    pub shape: String,
    pub class: String,
    pub ms: Vec<(String, f64)>,
    pub chosen: String,
}

/// (M, K, N) of a product of operands stored as `a` and `b`, with their transposes.
fn product_dims(a: &[usize], b: &[usize], ta: Transpose, tb: Transpose) -> (usize, usize, usize) {
    let last2 = |s: &[usize], t: Transpose| {
        let (r, c) = (s[s.len() - 2], s[s.len() - 1]);
        if t == Transpose::Yes { (c, r) } else { (r, c) }
    };
    let ((m, k), (_, n)) = (last2(a, ta), last2(b, tb));
    (m, k, n)
}

/// Times every matmul variant on the shapes wgrad's models and benchmarks use (plain matmuls,
/// the MLP's products, the CNN's convolution GEMMs in all three passes), records the fastest per
/// shape class on the device, and saves the records to the tuning file.
pub fn tune(dev: &Device, on_record: &mut dyn FnMut(&TuneRecord)) -> Result<Vec<TuneRecord>> {
    use Transpose::{No, Yes};
    // (label, batch of A, batch of B, m, k, n, ta, tb, summed over the batch)
    type Shape = (
        &'static str,
        usize,
        usize,
        usize,
        usize,
        usize,
        Transpose,
        Transpose,
        bool,
    );
    let shapes: Vec<Shape> = vec![
        ("square 256", 1, 1, 256, 256, 256, No, No, false),
        ("square 512", 1, 1, 512, 512, 512, No, No, false),
        ("square 1024", 1, 1, 1024, 1024, 1024, No, No, false),
        ("square 2048", 1, 1, 2048, 2048, 2048, No, No, false),
        ("mlp x W1", 1, 1, 128, 784, 256, No, No, false),
        ("mlp dW1", 1, 1, 784, 128, 256, Yes, No, false),
        ("mlp dx", 1, 1, 128, 256, 784, No, Yes, false),
        ("mlp 784-512", 1, 1, 64, 784, 512, No, No, false),
        ("mlp 512-256", 1, 1, 64, 512, 256, No, No, false),
        ("cnn fc", 1, 1, 64, 3136, 10, No, No, false),
        // conv1's K = 1*3*3 = 9 is padded to 12 where the vec4 kernels apply (see conv.rs).
        ("conv1 fwd", 1, 64, 32, 12, 784, No, No, false),
        ("conv1 dcol", 1, 64, 12, 32, 784, Yes, No, false),
        ("conv1 dw", 64, 64, 32, 784, 12, No, Yes, true),
        ("conv2 fwd", 1, 64, 64, 288, 196, No, No, false),
        ("conv2 dcol", 1, 64, 288, 64, 196, Yes, No, false),
        ("conv2 dw", 64, 64, 64, 196, 288, No, Yes, true),
    ];
    let mut records = Vec::new();
    for (label, ba, bb, m, k, n, ta, tb, summed) in shapes {
        let a_shape = if ta == Yes { [ba, k, m] } else { [ba, m, k] };
        let b_shape = if tb == Yes { [bb, n, k] } else { [bb, k, n] };
        // The operands as the launch runs them: a classifier's 10 columns padded to 12 run
        // through the subgroup kernels, so those are the variants to time, under the padded
        // shape's class.
        let (a, b) = GpuArray::full(dev, &a_shape, 0.5)?.matmul_operands_as_run(
            &GpuArray::full(dev, &b_shape, 0.25)?,
            ta,
            tb,
            summed,
        )?;
        let (m, k, n) = product_dims(a.shape(), b.shape(), ta, tb);
        let mut ms = Vec::new();
        for entry in a.matmul_variants(&b, ta, tb) {
            // The fastest of 5 runs: a noisy host only ever adds time, so the minimum ranks the
            // variants more steadily than a median.
            let (wall, _) = samples(dev, 5, || {
                Ok(if summed {
                    a.matmul_sum_batch_variant(&b, ta, tb, entry)
                } else {
                    a.matmul_variant(&b, ta, tb, entry)
                }
                .map(drop)?)
            })?;
            ms.push((entry.to_string(), wall[0]));
        }
        let best = ms
            .iter()
            .min_by(|x, y| x.1.total_cmp(&y.1))
            .map(|x| x.0.clone())
            .unwrap_or_default();
        let class = if summed {
            ShapeClass::of_sum(ba.max(bb), m, n, k)
        } else {
            ShapeClass::of(ba.max(bb), m, n, k)
        };
        dev.set_tuned_variant(Kernel::Matmul, class, &best);
        let rec = TuneRecord {
            shape: format!(
                "{label}: [{ba}, {m}, {k}] x [{bb}, {k}, {n}] {ta:?}/{tb:?}{}",
                if summed { ", summed" } else { "" }
            ),
            class: format!("{class:?}"),
            ms,
            chosen: best,
        };
        on_record(&rec);
        records.push(rec);
    }
    dev.save_tuning()?;
    Ok(records)
}

/// Runs every benchmark whose name contains `filter`, reporting each figure as it is measured.
pub fn run(
    dev: &Device,
    filter: Option<&str>,
    on_figure: &mut dyn FnMut(&Figure),
) -> Result<Vec<Figure>> {
    let info = dev.info();
    let mut b = Bench {
        dev,
        filter,
        adapter: format!(
            "{} ({}, {})",
            info.adapter.name, info.adapter.backend, info.adapter.driver
        ),
        figures: Vec::new(),
        on_figure,
        gpu_ms: std::cell::Cell::new(None),
    };
    let memcpy = memcpy_gbs(64 << 20, 5);
    if b.wants("memcpy") {
        b.push("memcpy_64MB_cpu", memcpy, "GB/s", 0.0, None);
    }
    for s in [256, 512, 1024, 2048] {
        b.matmul(
            &format!("matmul_{s}"),
            (s, s, s),
            Transpose::No,
            Transpose::No,
        )?;
    }
    // The MLP's own shapes: forward x·W1, and the two gradient products.
    b.matmul(
        "matmul_mlp_fwd",
        (128, 784, 256),
        Transpose::No,
        Transpose::No,
    )?;
    b.matmul(
        "matmul_mlp_dw",
        (784, 128, 256),
        Transpose::Yes,
        Transpose::No,
    )?;
    b.matmul(
        "matmul_mlp_dx",
        (128, 256, 784),
        Transpose::No,
        Transpose::Yes,
    )?;
    b.elementwise(memcpy)?;
    b.families(memcpy)?;
    b.conv()?;
    b.dispatch_overhead()?;
    b.training()?;
    Ok(b.figures)
}
