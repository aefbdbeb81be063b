//! Shared harness for the device crate's integration tests.
//!
//! * [`on_each_device`] runs one test body on every adapter wgpu finds (`Device::all()`). An adapter
//!   that fails to open, or that the body finds lacking (a [`Flow::Skip`]), is printed as
//!   `skipped: <adapter>: <reason>`; a test where no adapter opens at all fails.
//! * CPU references are computed in f64 from the exact f32 inputs; the `check_*` helpers compare with
//!   a tolerance stated at each call site.
#![allow(dead_code)]

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::OnceLock;

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use wgrad_device::{Device, DeviceError, GpuArray};

/// Unit roundoff of f32 (half an ulp of 1).
pub const U: f64 = 1.0 / (1u64 << 24) as f64;

/// An adapter wgpu found, and the device opened on it (or why it could not be opened).
pub struct Adapter {
    pub label: String,
    pub dev: Result<Device, String>,
}

/// Opens a device on every adapter, in `Device::all()`'s order.
pub fn open_all() -> Vec<Adapter> {
    Device::all()
        .into_iter()
        .map(|(s, d)| Adapter {
            label: format!("{} ({}, {})", s.name, s.backend, s.device_type),
            dev: d.map_err(|e| e.to_string()),
        })
        .collect()
}

static SHARED: OnceLock<Vec<Adapter>> = OnceLock::new();

/// Devices shared by every test of one test binary (pipelines are compiled once per device).
/// Tests that look at `memory_stats` open their own with [`open_all`].
pub fn shared_devices() -> &'static [Adapter] {
    SHARED.get_or_init(open_all)
}

/// How a test body ended on one device, other than passing.
#[derive(Debug)]
pub enum Flow {
    /// The adapter lacks something the test needs; printed as `skipped: <adapter>: <reason>`.
    Skip(String),
    /// A failure (an unexpected `DeviceError`, or a mismatch found by a `check_*` helper).
    Fail(String),
}

impl From<DeviceError> for Flow {
    fn from(e: DeviceError) -> Self {
        Flow::Fail(format!("unexpected error: {e}"))
    }
}

pub type Res = Result<(), Flow>;

pub fn fail<T>(msg: impl Into<String>) -> Result<T, Flow> {
    Err(Flow::Fail(msg.into()))
}

/// Runs `body` on every shared device. Panics (after trying every adapter) if any device failed, or
/// if no adapter could be opened at all.
pub fn on_each_device(test: &str, body: impl Fn(&Device) -> Res) {
    run_on(test, shared_devices(), body)
}

pub fn run_on(test: &str, adapters: &[Adapter], body: impl Fn(&Device) -> Res) {
    let mut opened = 0;
    let mut failures = Vec::new();
    for a in adapters {
        let dev = match &a.dev {
            Ok(d) => d,
            Err(e) => {
                eprintln!("skipped: {}: {test}: could not open a device: {e}", a.label);
                continue;
            }
        };
        opened += 1;
        let t0 = std::time::Instant::now();
        match catch_unwind(AssertUnwindSafe(|| body(dev))) {
            Ok(Ok(())) => eprintln!("{test}: ok on {} in {:.2?}", a.label, t0.elapsed()),
            Ok(Err(Flow::Skip(why))) => eprintln!("skipped: {}: {test}: {why}", a.label),
            Ok(Err(Flow::Fail(msg))) => failures.push(format!("{}: {msg}", a.label)),
            Err(p) => {
                let msg = p
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_else(|| "panic".into());
                failures.push(format!("{}: panicked: {msg}", a.label));
            }
        }
    }
    assert!(
        opened > 0,
        "{test}: no adapter could be opened ({} found)",
        adapters.len()
    );
    assert!(
        failures.is_empty(),
        "{test} failed on:\n{}",
        failures.join("\n")
    );
}

// ---------------------------------------------------------------------------------------------
// Data

pub fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

pub fn uniform(r: &mut StdRng, n: usize, lo: f32, hi: f32) -> Vec<f32> {
    (0..n).map(|_| r.random_range(lo..hi)).collect()
}

/// Values drawn from a small set, so that ties and exact equalities occur.
pub fn from_set(r: &mut StdRng, n: usize, set: &[f32]) -> Vec<f32> {
    (0..n).map(|_| set[r.random_range(0..set.len())]).collect()
}

pub fn up(dev: &Device, data: &[f32], shape: &[usize]) -> Result<GpuArray, Flow> {
    Ok(GpuArray::from_slice(dev, data, shape)?)
}

pub fn up_u32(dev: &Device, data: &[u32], shape: &[usize]) -> Result<GpuArray, Flow> {
    Ok(GpuArray::from_slice(dev, data, shape)?)
}

pub fn down(a: &GpuArray) -> Result<Vec<f32>, Flow> {
    Ok(a.to_vec::<f32>()?)
}

pub fn down_u32(a: &GpuArray) -> Result<Vec<u32>, Flow> {
    Ok(a.to_vec::<u32>()?)
}

pub fn f64s(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| f64::from(x)).collect()
}

// ---------------------------------------------------------------------------------------------
// Shapes

pub fn numel(shape: &[usize]) -> usize {
    shape.iter().product()
}

pub fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * shape[i + 1];
    }
    s
}

pub fn unravel(mut i: usize, shape: &[usize]) -> Vec<usize> {
    let mut idx = vec![0; shape.len()];
    for d in (0..shape.len()).rev() {
        idx[d] = i % shape[d];
        i /= shape[d];
    }
    idx
}

/// NumPy broadcast of two shapes (None if incompatible).
pub fn broadcast(a: &[usize], b: &[usize]) -> Option<Vec<usize>> {
    let r = a.len().max(b.len());
    let mut out = vec![0; r];
    for i in 0..r {
        let da = if i + a.len() >= r {
            a[i + a.len() - r]
        } else {
            1
        };
        let db = if i + b.len() >= r {
            b[i + b.len() - r]
        } else {
            1
        };
        out[i] = if da == db || db == 1 {
            da
        } else if da == 1 {
            db
        } else {
            return None;
        };
    }
    Some(out)
}

/// Linear index into a contiguous array of `in_shape` of the element that broadcasts to the output
/// multi-index `out_idx` (dims aligned on the right; size-1 dims read index 0).
pub fn bcast_index(out_idx: &[usize], in_shape: &[usize]) -> usize {
    let off = out_idx.len() - in_shape.len();
    let st = strides(in_shape);
    (0..in_shape.len())
        .map(|d| {
            if in_shape[d] == 1 {
                0
            } else {
                out_idx[off + d] * st[d]
            }
        })
        .sum()
}

/// `[outer, len, inner]` around `axis`.
pub fn split(shape: &[usize], axis: usize) -> (usize, usize, usize) {
    (
        shape[..axis].iter().product(),
        shape[axis],
        shape[axis + 1..].iter().product(),
    )
}

// ---------------------------------------------------------------------------------------------
// Accumulation references with error bounds

/// An f64 sum of terms, with what is needed to bound the error of an f32 evaluation of it.
#[derive(Clone, Copy, Debug, Default)]
pub struct Acc {
    pub v: f64,
    pub abs: f64,
    pub n: usize,
}

impl Acc {
    pub fn add(&mut self, t: f64) {
        self.v += t;
        self.abs += t.abs();
        self.n += 1;
    }

    /// Worst-case error of an f32 evaluation that rounds each term once (a product) and then sums the
    /// n terms in any order: |err| <= gamma_(n+1) * sum|t|, gamma_k = k u / (1 - k u) (Higham,
    /// "Accuracy and Stability of Numerical Algorithms", 2nd ed., eq. 3.5 and sec. 4.2). It is a
    /// rigorous bound, valid for FMA contraction and any summation order, so it holds on every adapter;
    /// an indexing bug produces errors of the order of the terms themselves, far above it.
    pub fn bound(&self) -> f64 {
        let k = (self.n + 1) as f64 * U;
        k / (1.0 - k) * self.abs
    }
}

// ---------------------------------------------------------------------------------------------
// Comparisons

fn describe_bad(bad: &[(usize, f32, f64, f64)], total: usize, n: usize) -> String {
    let mut s = format!("{total} of {n} values out of tolerance; first:");
    for (i, g, w, tol) in bad.iter().take(6) {
        s += &format!(
            "\n  [{i}] got {g:e}, want {w:e}, |err| {:e} > allowed {tol:e}",
            (f64::from(*g) - w).abs()
        );
    }
    s
}

fn close(g: f32, w: f64, tol: f64) -> bool {
    let g = f64::from(g);
    if w.is_nan() {
        return g.is_nan();
    }
    if w.is_infinite() {
        return g == w;
    }
    (g - w).abs() <= tol
}

/// Element-wise |got - want| <= atol + rtol |want| (NaN must match NaN, infinities exactly).
pub fn check_close(what: &str, got: &[f32], want: &[f64], rtol: f64, atol: f64) -> Res {
    check_with(what, got, want, |_, w| atol + rtol * w.abs())
}

/// Element-wise |got - want| <= tol(i, want).
pub fn check_with(what: &str, got: &[f32], want: &[f64], tol: impl Fn(usize, f64) -> f64) -> Res {
    if got.len() != want.len() {
        return fail(format!(
            "{what}: got {} values, want {}",
            got.len(),
            want.len()
        ));
    }
    let mut bad = Vec::new();
    let mut total = 0;
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let t = tol(i, w);
        if !close(g, w, t) {
            total += 1;
            if bad.len() < 6 {
                bad.push((i, g, w, t));
            }
        }
    }
    if total > 0 {
        return fail(format!("{what}: {}", describe_bad(&bad, total, got.len())));
    }
    Ok(())
}

/// Compares against accumulation references: |got - v| <= bound() + extra_rel * |v|.
/// `extra_rel` covers roundings after the sum (a final scale, say), stated at the call site.
pub fn check_acc(what: &str, got: &[f32], want: &[Acc], extra_rel: f64) -> Res {
    let vals: Vec<f64> = want.iter().map(|a| a.v).collect();
    check_with(what, got, &vals, |i, w| {
        // The f64 reference itself is exact to ~1e-16 relative; 1e-30 keeps an all-zero sum exact.
        want[i].bound() + extra_rel * w.abs() + 1e-30
    })
}

/// Exact equality (for indices, u32 data, exact kernels).
pub fn check_eq<T: PartialEq + std::fmt::Debug>(what: &str, got: &[T], want: &[T]) -> Res {
    if got.len() != want.len() {
        return fail(format!(
            "{what}: got {} values, want {}",
            got.len(),
            want.len()
        ));
    }
    let bad: Vec<usize> = (0..got.len()).filter(|&i| got[i] != want[i]).collect();
    if let Some(&i) = bad.first() {
        let show: Vec<String> = bad
            .iter()
            .take(6)
            .map(|&j| format!("[{j}] got {:?} want {:?}", got[j], want[j]))
            .collect();
        return fail(format!(
            "{what}: {} of {} differ (first at {i}): {}",
            bad.len(),
            got.len(),
            show.join(", ")
        ));
    }
    Ok(())
}

/// Bit-exact equality of f32 values (NaN payloads and signed zeros included).
pub fn check_bits(what: &str, got: &[f32], want: &[f32]) -> Res {
    let g: Vec<u32> = got.iter().map(|x| x.to_bits()).collect();
    let w: Vec<u32> = want.iter().map(|x| x.to_bits()).collect();
    check_eq(what, &g, &w)
}

pub fn check_shape(what: &str, a: &GpuArray, want: &[usize]) -> Res {
    if a.shape() != want {
        return fail(format!("{what}: shape {:?}, want {want:?}", a.shape()));
    }
    Ok(())
}
