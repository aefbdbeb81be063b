//! The course's classical models: linear regression four ways (normal equations, full-batch
//! gradient descent, mini-batch SGD, Newton), binary logistic regression, PCA, and PCA / ZCA
//! whitening.
//!
//! Where the work runs: every product with the data (Gram matrices, gradients, covariances,
//! projections, losses and metrics) is a GPU tensor op. The host only solves small dense problems
//! in f64 with nalgebra:
//!
//! * the `(d+1) x (d+1)` normal equations of linear regression (Cholesky), and their largest
//!   eigenvalue (the step size `1/L` of gradient descent);
//! * the `m x m` Rayleigh–Ritz problems of [`top_eigen`], the GPU subspace iteration used by PCA
//!   (`m` = components + oversampling; the `d x d` products with the covariance are GPU matmuls);
//! * the full `d x d` eigen-decomposition of the GPU covariance for whitening ([`Whitener`]),
//!   which needs every kept eigenpair.
//!
//! nalgebra is also the CPU reference: [`check_eigen`] compares GPU eigenpairs with
//! `SymmetricEigen`, and [`fit_linear`] compares the GPU normal-equation weights with an f64 SVD
//! least-squares solve of the host data.
//!
//! Matrices hold one sample per row (`x: [n, d]`), so a column-vector map `y = W x` is applied as
//! `X Wᵀ`.
//!
//! ```no_run
//! use wgrad_models::classic::{LinearOptions, linear_regression};
//! let dev = wgrad_graph::Device::new()?;
//! let report = linear_regression(&dev, &LinearOptions::default())?;
//! for fit in &report.fits {
//!     println!("{:<16} test MSE {:.1}  R² {:.3}", fit.method.name(), fit.test_mse, fit.test_r2);
//! }
//! # Ok::<(), wgrad_models::classic::ClassicError>(())
//! ```

use std::path::PathBuf;
use std::time::Instant;

use nalgebra::{Cholesky, DMatrix, DVector, SymmetricEigen};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use wgrad_graph::{Device, GraphError, Tensor, Transpose, no_grad};

use crate::data::{self, DataError, Dataset, ImageSet, Split, Table};
use crate::nn::{Module, bce_with_logits, mse};
use crate::optim::{Adam, CosineLr, GradientDescent, LrSchedule, Optimizer, Sgd, newton_step};

// =============================================================================================
// Errors

/// Everything that can go wrong in this module.
#[derive(Debug, thiserror::Error)]
pub enum ClassicError {
    /// A tensor op failed (shapes, device).
    #[error(transparent)]
    Graph(#[from] GraphError),

    /// Loading data failed (missing files, bad files).
    #[error(transparent)]
    Data(#[from] DataError),

    /// A caller-supplied argument or data set is unusable.
    #[error("{op}: {reason}")]
    InvalidArgument { op: &'static str, reason: String },

    /// A host-side solve failed (a matrix that should be positive definite is not, ...).
    #[error("{op}: {reason}")]
    Numerical { op: &'static str, reason: String },
}

pub type Result<T, E = ClassicError> = std::result::Result<T, E>;

/// Device errors (no adapter, out of memory, ...) arrive wrapped in [`GraphError::Device`].
impl From<wgrad_device::DeviceError> for ClassicError {
    fn from(e: wgrad_device::DeviceError) -> Self {
        ClassicError::Graph(e.into())
    }
}

fn invalid(op: &'static str, reason: impl Into<String>) -> ClassicError {
    ClassicError::InvalidArgument {
        op,
        reason: reason.into(),
    }
}

fn numerical(op: &'static str, reason: impl Into<String>) -> ClassicError {
    ClassicError::Numerical {
        op,
        reason: reason.into(),
    }
}

// =============================================================================================
// Host <-> device helpers

/// A 1-D or 2-D tensor as an f64 host matrix (a vector becomes one column).
fn to_host(t: &Tensor) -> Result<DMatrix<f64>> {
    let (r, c) = match *t.shape() {
        [r] => (r, 1),
        [r, c] => (r, c),
        ref s => {
            return Err(invalid(
                "to_host",
                format!("expected 1 or 2 dims, got {s:?}"),
            ));
        }
    };
    let v = t.to_vec()?;
    Ok(DMatrix::from_row_iterator(
        r,
        c,
        v.into_iter().map(f64::from),
    ))
}

/// An f64 host matrix as an f32 `[rows, cols]` tensor.
fn to_device(m: &DMatrix<f64>, dev: &Device) -> Result<Tensor> {
    let (r, c) = m.shape();
    let v: Vec<f32> = (0..r)
        .flat_map(|i| (0..c).map(move |j| m[(i, j)] as f32))
        .collect();
    Ok(Tensor::from_vec(v, &[r, c], dev)?)
}

fn symmetrize(m: &DMatrix<f64>) -> DMatrix<f64> {
    (m + m.transpose()) * 0.5
}

/// Eigenpairs of a symmetric host matrix, largest eigenvalue first.
fn sorted_eigen(m: DMatrix<f64>) -> (Vec<f64>, DMatrix<f64>) {
    let e = SymmetricEigen::new(m);
    let mut order: Vec<usize> = (0..e.eigenvalues.len()).collect();
    order.sort_by(|&a, &b| e.eigenvalues[b].total_cmp(&e.eigenvalues[a]));
    let values = order.iter().map(|&i| e.eigenvalues[i]).collect();
    let vectors = DMatrix::from_columns(
        &order
            .iter()
            .map(|&i| e.eigenvectors.column(i).into_owned())
            .collect::<Vec<_>>(),
    );
    (values, vectors)
}

/// Largest |value| of a tensor (one readback).
fn max_abs(t: &Tensor) -> Result<f64> {
    Ok(f64::from(
        t.abs()?.reshape(&[t.numel()])?.max(0, false)?.item()?,
    ))
}

fn identity(k: usize, dev: &Device) -> Result<Tensor> {
    to_device(&DMatrix::identity(k, k), dev)
}

/// A seeded permutation of `0..n` for `epoch`.
fn permutation(n: usize, seed: u64, epoch: u64) -> Vec<u32> {
    let mut v: Vec<u32> = (0..n as u32).collect();
    let s = seed ^ (epoch + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    v.shuffle(&mut StdRng::seed_from_u64(s));
    v
}

fn check_table(op: &'static str, what: &str, t: &Table) -> Result<()> {
    if t.n == 0 || t.features == 0 || t.x.len() != t.n * t.features || t.y.len() != t.n {
        return Err(invalid(
            op,
            format!(
                "{what} table: {} values and {} targets for n={} x {} features (need n, features >= 1)",
                t.x.len(),
                t.y.len(),
                t.n,
                t.features
            ),
        ));
    }
    if t.n > u32::MAX as usize {
        return Err(invalid(
            op,
            format!("{what} table has too many rows ({})", t.n),
        ));
    }
    if let Some(v) = t.x.iter().chain(&t.y).find(|v| !v.is_finite()) {
        return Err(invalid(
            op,
            format!("{what} table holds a non-finite value {v}"),
        ));
    }
    Ok(())
}

/// Rows of `set` (flattened to `[n, c*h*w]`) as a table.
fn image_table(set: &ImageSet, targets: Vec<f32>, rows: &[usize]) -> Table {
    let s = set.sample_len();
    Table {
        x: rows
            .iter()
            .flat_map(|&i| set.images[i * s..(i + 1) * s].iter().copied())
            .collect(),
        y: targets,
        n: rows.len(),
        features: s,
        feature_names: (0..s).map(|i| format!("px{i}")).collect(),
    }
}

/// The first `max` images of `set` (all when `None`) as a `[n, c*h*w]` tensor.
fn images_tensor(set: &ImageSet, max: Option<usize>, dev: &Device) -> Result<Tensor> {
    let n = max.map_or(set.n, |m| m.min(set.n));
    if n == 0 {
        return Err(invalid("images", "no images selected"));
    }
    let s = set.sample_len();
    Ok(Tensor::from_slice(&set.images[..n * s], &[n, s], dev)?)
}

fn default_root() -> PathBuf {
    data::data_root()
}

// =============================================================================================
// Linear regression

/// How a linear regression was fitted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LinearMethod {
    /// Normal equations `XᵀX w = Xᵀy`: both products on the GPU, the Cholesky solve on the host.
    ClosedForm,
    /// Full-batch gradient descent with step `lr` (default `1/L`).
    GradientDescent,
    /// Mini-batch SGD with momentum and a cosine learning-rate decay.
    MiniBatchSgd,
    /// One Newton step from `w = 0` (exact for a quadratic): autodiff gradient and Hessian.
    Newton,
}

impl LinearMethod {
    pub const ALL: [LinearMethod; 4] = [
        LinearMethod::ClosedForm,
        LinearMethod::GradientDescent,
        LinearMethod::MiniBatchSgd,
        LinearMethod::Newton,
    ];

    pub fn name(self) -> &'static str {
        match self {
            LinearMethod::ClosedForm => "closed form",
            LinearMethod::GradientDescent => "gradient descent",
            LinearMethod::MiniBatchSgd => "mini-batch SGD",
            LinearMethod::Newton => "Newton",
        }
    }

    /// The largest relative weight difference from the closed form that counts as agreement (see
    /// [`LinearFit::rel_diff`]). Newton solves the same system as the closed form through an
    /// autodiff Hessian, so only f32 rounding separates them; the iterative methods stop at a
    /// tolerance, and SGD also carries the noise of its last mini-batches.
    pub fn tolerance(self) -> f64 {
        match self {
            LinearMethod::ClosedForm => 0.0,
            LinearMethod::Newton => 1e-4,
            LinearMethod::GradientDescent => 1e-3,
            LinearMethod::MiniBatchSgd => 1e-2,
        }
    }
}

impl std::fmt::Display for LinearMethod {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Options of [`linear_regression`] and [`fit_linear`].
#[derive(Clone, Debug, PartialEq)]
pub struct LinearOptions {
    /// Data root holding `diabetes/` (used by [`linear_regression`] only).
    pub root: PathBuf,
    /// Fraction of rows held out for testing (used by [`linear_regression`] only).
    pub test_fraction: f64,
    /// Seed of the train / test split and of SGD's shuffling.
    pub seed: u64,
    /// Gradient-descent step; `None` uses `1/L`, `L` the largest eigenvalue of the loss Hessian
    /// `2 XᵀX / n` (from the GPU Gram matrix).
    pub gd_lr: Option<f32>,
    /// Most gradient-descent steps.
    pub gd_max_steps: usize,
    /// Gradient descent stops once `max|grad| <= gd_tol * max|grad at w=0|` (checked every 100
    /// steps).
    pub gd_tol: f64,
    /// SGD's base step; `None` uses `0.2/L`. Decayed to 0 by a cosine over the epochs.
    pub sgd_lr: Option<f32>,
    pub sgd_momentum: f32,
    pub sgd_epochs: usize,
    pub batch_size: usize,
}

impl Default for LinearOptions {
    fn default() -> Self {
        LinearOptions {
            root: default_root(),
            test_fraction: 0.2,
            seed: 0,
            gd_lr: None,
            gd_max_steps: 20_000,
            gd_tol: 1e-6,
            sgd_lr: None,
            sgd_momentum: 0.9,
            sgd_epochs: 400,
            batch_size: 64,
        }
    }
}

/// One method's result.
#[derive(Clone, Debug, PartialEq)]
pub struct LinearFit {
    pub method: LinearMethod,
    /// One weight per feature, then the bias.
    pub weights: Vec<f32>,
    pub train_mse: f64,
    pub test_mse: f64,
    pub train_r2: f64,
    pub test_r2: f64,
    /// Wall-clock seconds of the fit (metrics excluded).
    pub seconds: f64,
    /// Optimiser steps taken (0 for the closed form, 1 for Newton).
    pub steps: usize,
    /// `max_i |w_i - w_closed_i| / max_i |w_closed_i|`.
    pub rel_diff: f64,
}

impl LinearFit {
    /// Whether the weights are within [`LinearMethod::tolerance`] of the closed form.
    pub fn agrees(&self) -> bool {
        self.rel_diff <= self.method.tolerance()
    }
}

/// The four fits of one train / test split.
#[derive(Clone, Debug, PartialEq)]
pub struct LinearReport {
    /// Feature names, then `"bias"`.
    pub weight_names: Vec<String>,
    pub n_train: usize,
    pub n_test: usize,
    /// In [`LinearMethod::ALL`] order.
    pub fits: Vec<LinearFit>,
    /// Relative difference (as in [`LinearFit::rel_diff`]) between the GPU closed form and an f64
    /// SVD least-squares solve of the same data on the CPU (nalgebra).
    pub closed_form_vs_cpu: f64,
    /// Condition number of `XᵀX` (host eigenvalues), which sets how slowly gradient descent
    /// converges.
    pub condition_number: f64,
}

impl LinearReport {
    pub fn fit(&self, method: LinearMethod) -> Option<&LinearFit> {
        self.fits.iter().find(|f| f.method == method)
    }

    /// Whether every method is within its tolerance of the closed form.
    pub fn all_agree(&self) -> bool {
        self.fits.iter().all(LinearFit::agrees)
    }
}

/// Linear regression on the diabetes table: seeded train / test split, features z-scored with the
/// training statistics, target in its own units, then [`fit_linear`].
pub fn linear_regression(dev: &Device, opts: &LinearOptions) -> Result<LinearReport> {
    let table = data::load_diabetes(&opts.root)?;
    let (mut train, mut test) = table.split(opts.test_fraction, opts.seed)?;
    let z = train.feature_zscore()?;
    z.transform(&mut train.x)?;
    z.transform(&mut test.x)?;
    fit_linear(dev, &train, &test, opts)
}

/// `[n, d+1]` design matrix (features, then a column of ones) and `[n]` targets on the device.
fn design(t: &Table, dev: &Device) -> Result<(Tensor, Tensor)> {
    let d1 = t.features + 1;
    let mut x = Vec::with_capacity(t.n * d1);
    for row in t.x.chunks_exact(t.features) {
        x.extend_from_slice(row);
        x.push(1.0);
    }
    Ok((
        Tensor::from_vec(x, &[t.n, d1], dev)?,
        Tensor::from_slice(&t.y, &[t.n], dev)?,
    ))
}

/// (MSE, R²) of `x w` against `y`, on the device; R² uses the mean of `y` itself.
fn linear_metrics(x: &Tensor, y: &Tensor, w: &[f32]) -> Result<(f64, f64)> {
    no_grad(|| {
        let w = Tensor::from_slice(w, &[w.len()], x.device())?;
        let sse = x.matmul(&w)?.sub(y)?.square()?.sum_all()?;
        let sst = y.sub(&y.mean(0, true)?)?.square()?.sum_all()?;
        let (sse, sst) = (f64::from(sse.item()?), f64::from(sst.item()?));
        let n = y.numel() as f64;
        let r2 = if sst > 0.0 { 1.0 - sse / sst } else { f64::NAN };
        Ok((sse / n, r2))
    })
}

fn rel_diff(w: &[f32], reference: &[f32]) -> f64 {
    let scale = reference
        .iter()
        .fold(0f64, |m, &v| m.max(f64::from(v).abs()))
        .max(f64::MIN_POSITIVE);
    w.iter().zip(reference).fold(0f64, |m, (&a, &b)| {
        m.max((f64::from(a) - f64::from(b)).abs())
    }) / scale
}

/// Both tables are non-empty and have the same features.
fn check_pair(op: &'static str, train: &Table, test: &Table) -> Result<()> {
    check_table(op, "training", train)?;
    check_table(op, "test", test)?;
    if train.features != test.features {
        return Err(invalid(
            op,
            format!(
                "training rows have {} features, test rows {}",
                train.features, test.features
            ),
        ));
    }
    Ok(())
}

/// Fits `y ≈ X w + b` on `train` four ways ([`LinearMethod::ALL`]) and scores each on `train` and
/// `test`. The features are used as given (scale them first; [`linear_regression`] z-scores).
///
/// Errors when the tables are empty or disagree in width, when `XᵀX` is not positive definite
/// (linearly dependent features), or when an option is out of range.
pub fn fit_linear(
    dev: &Device,
    train: &Table,
    test: &Table,
    opts: &LinearOptions,
) -> Result<LinearReport> {
    const OP: &str = "fit_linear";
    check_pair(OP, train, test)?;
    if opts.batch_size == 0 || opts.sgd_epochs == 0 {
        return Err(invalid(OP, "batch_size and sgd_epochs must be at least 1"));
    }
    let (d1, n) = (train.features + 1, train.n);
    let (xtr, ytr) = design(train, dev)?;
    let (xte, yte) = design(test, dev)?;

    // ---- closed form: the Gram matrix and Xᵀy on the GPU, an (d+1)x(d+1) Cholesky on the host.
    let t0 = Instant::now();
    let (gram, xty) = no_grad(|| -> Result<_> {
        let gram = xtr.matmul_t(&xtr, Transpose::Yes, Transpose::No)?; // [d1, d1]
        let xty = xtr.matmul_t(&ytr.reshape(&[n, 1])?, Transpose::Yes, Transpose::No)?; // [d1, 1]
        Ok((symmetrize(&to_host(&gram)?), to_host(&xty)?))
    })?;
    let chol = Cholesky::new(gram.clone()).ok_or_else(|| {
        numerical(
            OP,
            "XᵀX is not positive definite: the features (with the bias column) are linearly dependent",
        )
    })?;
    let w_cf: Vec<f32> = chol.solve(&xty).iter().map(|&v| v as f32).collect();
    let cf_secs = t0.elapsed().as_secs_f64();

    let eig = gram.symmetric_eigenvalues();
    let (emin, emax) = (eig.min(), eig.max());
    // The loss is mean((Xw - y)²): its Hessian is 2 XᵀX / n, whose largest eigenvalue is L.
    let lipschitz = 2.0 * emax / n as f64;

    // CPU reference: f64 least squares by SVD of the host design matrix.
    let xh = DMatrix::from_fn(n, d1, |i, j| {
        if j < train.features {
            f64::from(train.x[i * train.features + j])
        } else {
            1.0
        }
    });
    let yh = DVector::from_iterator(n, train.y.iter().map(|&v| f64::from(v)));
    let w_cpu: Vec<f32> = xh
        .svd(true, true)
        .solve(&yh, 1e-12)
        .map_err(|e| numerical(OP, format!("CPU reference solve: {e}")))?
        .iter()
        .map(|&v| v as f32)
        .collect();

    let loss = |w: &Tensor, x: &Tensor, y: &Tensor| mse(&x.matmul(w)?, y);
    let mut fits = Vec::new();
    let mut push = |method, weights: Vec<f32>, seconds, steps| -> Result<()> {
        let (train_mse, train_r2) = linear_metrics(&xtr, &ytr, &weights)?;
        let (test_mse, test_r2) = linear_metrics(&xte, &yte, &weights)?;
        fits.push(LinearFit {
            method,
            rel_diff: rel_diff(&weights, &w_cf),
            weights,
            train_mse,
            test_mse,
            train_r2,
            test_r2,
            seconds,
            steps,
        });
        Ok(())
    };
    push(LinearMethod::ClosedForm, w_cf.clone(), cf_secs, 0)?;

    // ---- full-batch gradient descent.
    let t0 = Instant::now();
    let lr = opts.gd_lr.unwrap_or((1.0 / lipschitz) as f32);
    if !(lr > 0.0 && lr.is_finite()) {
        return Err(invalid(
            OP,
            format!("gradient-descent step {lr} must be > 0"),
        ));
    }
    let w = Tensor::zeros(&[d1], dev)?.requires_grad();
    let mut opt = GradientDescent::new(lr);
    let mut g0 = None;
    let mut steps = 0;
    while steps < opts.gd_max_steps {
        loss(&w, &xtr, &ytr)?.backward()?;
        if steps % 100 == 0 {
            if let Some(g) = w.grad() {
                let g = max_abs(&g)?;
                let g0 = *g0.get_or_insert(g);
                if g <= opts.gd_tol * g0 {
                    break;
                }
            }
        }
        opt.step(std::slice::from_ref(&w))?;
        w.zero_grad();
        steps += 1;
    }
    w.zero_grad();
    let w_gd = w.to_vec()?;
    push(
        LinearMethod::GradientDescent,
        w_gd,
        t0.elapsed().as_secs_f64(),
        steps,
    )?;

    // ---- mini-batch SGD with momentum, cosine-decayed per epoch.
    let t0 = Instant::now();
    let base = opts.sgd_lr.unwrap_or((0.2 / lipschitz) as f32);
    if !(base > 0.0 && base.is_finite()) {
        return Err(invalid(OP, format!("SGD step {base} must be > 0")));
    }
    let w = Tensor::zeros(&[d1], dev)?.requires_grad();
    let mut opt = Sgd::new(base).with_momentum(opts.sgd_momentum);
    let schedule = CosineLr {
        t_max: opts.sgd_epochs,
        eta_min: 0.0,
    };
    let mut steps = 0;
    for epoch in 0..opts.sgd_epochs {
        schedule.apply(&mut opt, base, epoch);
        for chunk in permutation(n, opts.seed, epoch as u64).chunks(opts.batch_size) {
            let idx = Tensor::from_slice(chunk, &[chunk.len()], dev)?;
            let (xb, yb) = (xtr.index_select(0, &idx)?, ytr.index_select(0, &idx)?);
            loss(&w, &xb, &yb)?.backward()?;
            opt.step(std::slice::from_ref(&w))?;
            w.zero_grad();
            steps += 1;
        }
    }
    let w_sgd = w.to_vec()?;
    push(
        LinearMethod::MiniBatchSgd,
        w_sgd,
        t0.elapsed().as_secs_f64(),
        steps,
    )?;

    // ---- Newton: one step from 0 with the autodiff gradient and Hessian.
    let t0 = Instant::now();
    let w0 = Tensor::zeros(&[d1], dev)?;
    let w_nt = newton_step(|w| loss(w, &xtr, &ytr), &w0, 0.0)?.to_vec()?;
    push(LinearMethod::Newton, w_nt, t0.elapsed().as_secs_f64(), 1)?;

    let mut weight_names = train.feature_names.clone();
    weight_names.resize(train.features, String::new());
    weight_names.push("bias".into());
    Ok(LinearReport {
        weight_names,
        n_train: n,
        n_test: test.n,
        fits,
        closed_form_vs_cpu: rel_diff(&w_cf, &w_cpu),
        condition_number: emax / emin,
    })
}

// =============================================================================================
// Logistic regression

/// `p(y = 1 | x) = sigmoid(x w + b)`. x: [n, d], w: [d, 1], b: [1]; `forward` gives the logits
/// `[n, 1]` (train them with [`bce_with_logits`]).
pub struct LogisticRegression {
    pub weight: Tensor,
    pub bias: Tensor,
}

impl LogisticRegression {
    /// Zero weights and bias (the loss is convex, so no symmetry to break).
    pub fn new(features: usize, dev: &Device) -> Result<Self> {
        Ok(Self {
            weight: Tensor::zeros(&[features, 1], dev)?.requires_grad(),
            bias: Tensor::zeros(&[1], dev)?.requires_grad(),
        })
    }

    /// `sigmoid(x w + b)`, shape `[n, 1]`.
    pub fn probabilities(&self, x: &Tensor) -> Result<Tensor> {
        Ok(self.forward(x)?.sigmoid()?)
    }
}

impl Module for LogisticRegression {
    fn forward(&self, x: &Tensor) -> wgrad_graph::Result<Tensor> {
        x.linear(&self.weight, Some(&self.bias), None)
    }
    fn named_parameters(&self) -> Vec<(String, Tensor)> {
        vec![
            ("weight".into(), self.weight.clone()),
            ("bias".into(), self.bias.clone()),
        ]
    }
}

/// Which first-order optimiser trains logistic regression.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum OptimizerKind {
    Sgd { momentum: f32 },
    Adam,
}

/// Mini-batch training settings.
#[derive(Clone, Debug, PartialEq)]
pub struct Training {
    pub epochs: usize,
    pub batch_size: usize,
    pub lr: f32,
    pub optimizer: OptimizerKind,
    /// Seed of the per-epoch shuffling.
    pub seed: u64,
}

impl Default for Training {
    fn default() -> Self {
        Training {
            epochs: 5,
            batch_size: 64,
            lr: 1e-3,
            optimizer: OptimizerKind::Adam,
            seed: 0,
        }
    }
}

/// Options of [`logistic_regression`].
#[derive(Clone, Debug, PartialEq)]
pub struct LogisticOptions {
    pub root: PathBuf,
    pub dataset: Dataset,
    /// `(negative, positive)`: the class labelled 0 and the class labelled 1.
    pub classes: (u32, u32),
    /// Use at most this many training images of the two classes (all when `None`).
    pub max_train: Option<usize>,
    pub train: Training,
}

impl Default for LogisticOptions {
    fn default() -> Self {
        LogisticOptions {
            root: default_root(),
            dataset: Dataset::Mnist,
            classes: (3, 5),
            max_train: None,
            train: Training::default(),
        }
    }
}

/// Metrics after one epoch.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EpochStats {
    /// 1-based.
    pub epoch: usize,
    /// Mean training loss over the epoch's mini-batches.
    pub train_loss: f64,
    pub test_loss: f64,
    pub test_accuracy: f64,
    /// Seconds since training started.
    pub seconds: f64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct LogisticReport {
    /// What was classified ("MNIST 3 vs 5", or "table" for [`fit_logistic`]).
    pub task: String,
    pub n_train: usize,
    pub n_test: usize,
    pub epochs: Vec<EpochStats>,
    pub train_loss: f64,
    pub train_accuracy: f64,
    pub test_loss: f64,
    pub test_accuracy: f64,
    pub seconds: f64,
    /// The learned `w` (one per feature) and `b`.
    pub weights: Vec<f32>,
    pub bias: f32,
}

/// The images of classes `negative` (target 0) and `positive` (target 1), flattened to rows, with
/// each pixel normalised as `(v - mean) / std`.
pub fn binary_subset(
    set: &ImageSet,
    negative: u32,
    positive: u32,
    mean: f32,
    std: f32,
) -> Result<Table> {
    const OP: &str = "binary_subset";
    set.validate()?;
    if negative == positive || negative as usize >= set.classes || positive as usize >= set.classes
    {
        return Err(invalid(
            OP,
            format!(
                "classes ({negative}, {positive}) must be two different labels below {}",
                set.classes
            ),
        ));
    }
    if !(std > 0.0 && std.is_finite() && mean.is_finite()) {
        return Err(invalid(OP, format!("mean {mean} / std {std}")));
    }
    let rows: Vec<usize> = (0..set.n)
        .filter(|&i| set.labels[i] == negative || set.labels[i] == positive)
        .collect();
    if rows.is_empty() {
        return Err(invalid(
            OP,
            format!("no images of class {negative} or {positive}"),
        ));
    }
    let y = rows
        .iter()
        .map(|&i| f32::from(set.labels[i] == positive))
        .collect();
    let mut t = image_table(set, y, &rows);
    t.x.iter_mut().for_each(|v| *v = (*v - mean) / std);
    Ok(t)
}

/// Binary logistic regression on a pair of MNIST / Fashion-MNIST classes: training images of the
/// two classes (normalised with the data set's mean and std), evaluated on the test images of the
/// same classes.
pub fn logistic_regression(dev: &Device, opts: &LogisticOptions) -> Result<LogisticReport> {
    let (neg, pos) = opts.classes;
    let (mean, std) = opts.dataset.mean_std();
    let train = data::load(&opts.root, opts.dataset, Split::Train)?;
    let test = data::load(&opts.root, opts.dataset, Split::Test)?;
    let mut tr = binary_subset(&train, neg, pos, mean, std)?;
    if let Some(m) = opts.max_train {
        let keep: Vec<usize> = (0..tr.n.min(m)).collect();
        tr = tr.select(&keep)?;
    }
    let te = binary_subset(&test, neg, pos, mean, std)?;
    let mut report = fit_logistic(dev, &tr, &te, &opts.train)?;
    let names = opts.dataset.class_names();
    report.task = format!(
        "{} {} vs {}",
        opts.dataset,
        names[neg as usize % 10],
        names[pos as usize % 10]
    );
    Ok(report)
}

/// (mean BCE loss, accuracy) of `model` on `x`, `y`; one readback each.
fn logistic_eval(model: &LogisticRegression, x: &Tensor, y: &Tensor) -> Result<(f64, f64)> {
    no_grad(|| {
        let logits = model.forward(x)?;
        let loss = bce_with_logits(&logits, y)?.item()?;
        let acc = logits.gt_scalar(0.0)?.eq(y)?.mean_all()?.item()?;
        Ok((f64::from(loss), f64::from(acc)))
    })
}

/// Trains [`LogisticRegression`] on `train` (targets 0 / 1) with mini-batches of
/// `bce_with_logits`, reporting the losses and test accuracy after each epoch.
pub fn fit_logistic(
    dev: &Device,
    train: &Table,
    test: &Table,
    t: &Training,
) -> Result<LogisticReport> {
    const OP: &str = "fit_logistic";
    check_pair(OP, train, test)?;
    if let Some(v) = train
        .y
        .iter()
        .chain(&test.y)
        .find(|&&v| v != 0.0 && v != 1.0)
    {
        return Err(invalid(OP, format!("target {v} is not 0 or 1")));
    }
    if t.epochs == 0 || t.batch_size == 0 || !(t.lr > 0.0 && t.lr.is_finite()) {
        return Err(invalid(
            OP,
            format!(
                "epochs {}, batch size {} and lr {} must be positive",
                t.epochs, t.batch_size, t.lr
            ),
        ));
    }
    let (n, d) = (train.n, train.features);
    let xtr = Tensor::from_slice(&train.x, &[n, d], dev)?;
    let ytr = Tensor::from_slice(&train.y, &[n, 1], dev)?;
    let xte = Tensor::from_slice(&test.x, &[test.n, d], dev)?;
    let yte = Tensor::from_slice(&test.y, &[test.n, 1], dev)?;

    let model = LogisticRegression::new(d, dev)?;
    let params = model.parameters();
    let mut opt: Box<dyn Optimizer> = match t.optimizer {
        OptimizerKind::Sgd { momentum } => Box::new(Sgd::new(t.lr).with_momentum(momentum)),
        OptimizerKind::Adam => Box::new(Adam::new(t.lr)),
    };
    let start = Instant::now();
    let mut epochs = Vec::with_capacity(t.epochs);
    for epoch in 0..t.epochs {
        // Σ batch loss · batch size, kept on the device until the end of the epoch.
        let mut loss_sum = Tensor::zeros(&[], dev)?;
        for chunk in permutation(n, t.seed, epoch as u64).chunks(t.batch_size) {
            let idx = Tensor::from_slice(chunk, &[chunk.len()], dev)?;
            let (xb, yb) = (xtr.index_select(0, &idx)?, ytr.index_select(0, &idx)?);
            let loss = bce_with_logits(&model.forward(&xb)?, &yb)?;
            loss_sum = no_grad(|| loss_sum.add(&loss.mul_scalar(chunk.len() as f32)?))?;
            loss.backward()?;
            opt.step(&params)?;
            opt.zero_grad(&params);
        }
        let train_loss = f64::from(loss_sum.item()?) / n as f64;
        let (test_loss, test_accuracy) = logistic_eval(&model, &xte, &yte)?;
        epochs.push(EpochStats {
            epoch: epoch + 1,
            train_loss,
            test_loss,
            test_accuracy,
            seconds: start.elapsed().as_secs_f64(),
        });
    }
    let seconds = start.elapsed().as_secs_f64();
    let (train_loss, train_accuracy) = logistic_eval(&model, &xtr, &ytr)?;
    let (test_loss, test_accuracy) = logistic_eval(&model, &xte, &yte)?;
    Ok(LogisticReport {
        task: "table".into(),
        n_train: n,
        n_test: test.n,
        epochs,
        train_loss,
        train_accuracy,
        test_loss,
        test_accuracy,
        seconds,
        weights: model.weight.to_vec()?,
        bias: model.bias.item()?,
    })
}

// =============================================================================================
// Covariance and eigen-decomposition

/// Column means `[1, d]` and the sample covariance `C = X_cᵀ X_c / (n - 1)` `[d, d]` of the rows
/// of `x: [n, d]` (`X_c` = x minus its mean), all on the GPU.
pub fn covariance(x: &Tensor) -> Result<(Tensor, Tensor)> {
    let [n, _] = *x.shape() else {
        return Err(invalid(
            "covariance",
            format!("expected [n, d], got {:?}", x.shape()),
        ));
    };
    if n < 2 {
        return Err(invalid("covariance", format!("{n} rows (need 2)")));
    }
    no_grad(|| {
        // Work on the transposed copy [d, n]: the matmul then reads both operands along
        // contiguous rows, several times faster on CPU adapters than X_cᵀ X_c through strides.
        let xt = x.t()?;
        let mean = xt.mean(1, true)?; // [d, 1]
        let xct = xt.sub(&mean)?;
        let c = xct
            .matmul_t(&xct, Transpose::No, Transpose::Yes)?
            .mul_scalar(1.0 / (n - 1) as f32)?;
        Ok((mean.reshape(&[1, mean.numel()])?, c))
    })
}

/// Options of [`top_eigen`].
#[derive(Clone, Debug, PartialEq)]
pub struct SubspaceOptions {
    /// Extra basis vectors beyond the k wanted: convergence of the k-th goes as
    /// `(λ_{k+p+1} / λ_k)^iterations`.
    pub oversample: usize,
    pub max_iters: usize,
    /// Stop once every wanted residual `||C v_i - λ_i v_i||` is at most `tol · λ_1`.
    pub tol: f64,
    /// Seed of the random starting basis.
    pub seed: u64,
}

impl Default for SubspaceOptions {
    fn default() -> Self {
        SubspaceOptions {
            oversample: 10,
            max_iters: 300,
            tol: 1e-5,
            seed: 0,
        }
    }
}

/// The top eigenpairs of a symmetric matrix.
#[derive(Clone, Debug)]
pub struct Eigen {
    /// Largest first.
    pub values: Vec<f64>,
    /// `[d, k]`: column `i` is the unit eigenvector of `values[i]`.
    pub vectors: Tensor,
    pub iterations: usize,
    /// `max_i ||C v_i - λ_i v_i|| / λ_1` at the end.
    pub residual: f64,
    pub converged: bool,
}

/// The `k` largest eigenpairs of the symmetric positive semi-definite `c: [d, d]`, by block
/// subspace iteration on the GPU with Rayleigh–Ritz on the host.
///
/// Each iteration multiplies the `[d, m]` block by `C` on the GPU (`m = k + oversample`), forms the
/// `m x m` Gram matrices `WᵀW` and `Wᵀ C W` on the GPU, and solves the small generalised eigen
/// problem on the host in f64 (Cholesky, then `SymmetricEigen`); the rotated block `V = W S` is
/// again a GPU matmul. Only `m x m` matrices and `m` residual norms cross to the host.
pub fn top_eigen(c: &Tensor, k: usize, opts: &SubspaceOptions) -> Result<Eigen> {
    const OP: &str = "top_eigen";
    let d = match *c.shape() {
        [r, s] if r == s => r,
        ref s => return Err(invalid(OP, format!("expected a square matrix, got {s:?}"))),
    };
    if k == 0 || k > d {
        return Err(invalid(OP, format!("k = {k} must be in 1..={d}")));
    }
    if opts.max_iters == 0 {
        return Err(invalid(OP, "max_iters must be at least 1"));
    }
    let m = (k + opts.oversample).min(d);
    let dev = c.device().clone();
    no_grad(|| {
        let mut w = c.matmul(&Tensor::randn(&[d, m], opts.seed, &dev)?)?; // C Z0
        let mut result = None;
        for it in 1..=opts.max_iters {
            let u = c.matmul(&w)?; // C W
            let g = symmetrize(&to_host(&w.matmul_t(&w, Transpose::Yes, Transpose::No)?)?);
            let h = symmetrize(&to_host(&w.matmul_t(&u, Transpose::Yes, Transpose::No)?)?);
            // Ritz pairs of span(W): H s = θ G s. With G = L Lᵀ: (L⁻¹ H L⁻ᵀ) y = θ y, s = L⁻ᵀ y.
            let l = Cholesky::new(g)
                .ok_or_else(|| {
                    numerical(
                        OP,
                        format!(
                            "the {m}-vector basis lost rank at iteration {it} \
                             (C has fewer than {m} clearly non-zero eigenvalues; ask for fewer \
                             components or less oversampling)"
                        ),
                    )
                })?
                .l();
            let lh = l
                .solve_lower_triangular(&h)
                .ok_or_else(|| numerical(OP, "singular Cholesky factor"))?;
            let a = l
                .solve_lower_triangular(&lh.transpose())
                .ok_or_else(|| numerical(OP, "singular Cholesky factor"))?;
            let (theta, y) = sorted_eigen(symmetrize(&a));
            let s = l
                .transpose()
                .solve_upper_triangular(&y)
                .ok_or_else(|| numerical(OP, "singular Cholesky factor"))?;
            let s = to_device(&s, &dev)?;
            let v = w.matmul(&s)?; // orthonormal Ritz vectors
            w = u.matmul(&s)?; // C V
            // Residuals r_i = C v_i - θ_i v_i of the wanted pairs.
            let th = Tensor::from_vec(
                theta[..k].iter().map(|&t| t as f32).collect(),
                &[1, k],
                &dev,
            )?;
            let r = w.narrow(1, 0, k)?.sub(&v.narrow(1, 0, k)?.mul(&th)?)?;
            let norms = r.square()?.sum(0, false)?.to_vec()?;
            let scale = theta[0].abs().max(f64::MIN_POSITIVE);
            let residual = norms
                .iter()
                .fold(0f64, |acc, &s| acc.max(f64::from(s).sqrt() / scale));
            let converged = residual <= opts.tol;
            if converged || it == opts.max_iters {
                result = Some(Eigen {
                    values: theta[..k].to_vec(),
                    vectors: v.narrow(1, 0, k)?,
                    iterations: it,
                    residual,
                    converged,
                });
                break;
            }
        }
        result.ok_or_else(|| numerical(OP, "no iterations ran"))
    })
}

/// How GPU eigenpairs compare with nalgebra's `SymmetricEigen` of the same matrix (f64, CPU).
#[derive(Clone, Debug, PartialEq)]
pub struct EigenCheck {
    /// `max_i |λ_i - λ_i^cpu| / λ_i^cpu`.
    pub max_rel_value_err: f64,
    /// `min_i |<v_i, v_i^cpu>|` for unit vectors: 1 when the components agree up to sign.
    pub min_abs_cos: f64,
    /// `max_i min(||v_i - v_i^cpu||_∞, ||v_i + v_i^cpu||_∞)`.
    pub max_vector_err: f64,
    /// The CPU eigenvalues, largest first (all `d` of them).
    pub cpu_values: Vec<f64>,
    /// Seconds of the CPU decomposition.
    pub cpu_seconds: f64,
}

/// Compares `eig` with a full CPU decomposition of `c` (read back, symmetrised, in f64).
pub fn check_eigen(c: &Tensor, eig: &Eigen) -> Result<EigenCheck> {
    let ch = symmetrize(&to_host(c)?);
    if ch.nrows() != ch.ncols() || ch.nrows() != eig.vectors.shape()[0] {
        return Err(invalid(
            "check_eigen",
            format!(
                "matrix {:?} and eigenvectors {:?} do not match",
                c.shape(),
                eig.vectors.shape()
            ),
        ));
    }
    let t0 = Instant::now();
    let (values, vectors) = sorted_eigen(ch);
    let cpu_seconds = t0.elapsed().as_secs_f64();
    let v = to_host(&eig.vectors)?;
    let (mut max_rel, mut min_cos, mut max_vec) = (0f64, f64::INFINITY, 0f64);
    for (i, &lg) in eig.values.iter().enumerate() {
        let rel = (lg - values[i]).abs() / values[i].abs().max(f64::MIN_POSITIVE);
        max_rel = max_rel.max(rel);
        let g = v.column(i).normalize();
        let r = vectors.column(i);
        min_cos = min_cos.min(g.dot(&r).abs());
        let err = (&g - r).amax().min((&g + r).amax());
        max_vec = max_vec.max(err);
    }
    Ok(EigenCheck {
        max_rel_value_err: max_rel,
        min_abs_cos: min_cos,
        max_vector_err: max_vec,
        cpu_values: values,
        cpu_seconds,
    })
}

// =============================================================================================
// PCA

/// Principal components of a data matrix.
#[derive(Clone, Debug)]
pub struct Pca {
    /// `[1, d]`.
    pub mean: Tensor,
    /// `[d, k]`, one unit component per column, by decreasing variance.
    pub components: Tensor,
    /// Variance along each component (eigenvalues of the covariance), largest first.
    pub eigenvalues: Vec<f64>,
    /// `trace(C)`: the total variance.
    pub total_variance: f64,
    pub iterations: usize,
    pub residual: f64,
    pub converged: bool,
}

impl Pca {
    /// PCA of the rows of `x: [n, d]` with `k` components: [`covariance`], then [`top_eigen`].
    ///
    /// ```no_run
    /// use wgrad_graph::{Device, Tensor};
    /// use wgrad_models::classic::{Pca, SubspaceOptions};
    /// let dev = Device::new()?;
    /// let x = Tensor::randn(&[500, 20], 0, &dev)?;
    /// let pca = Pca::fit(&x, 3, &SubspaceOptions::default())?;
    /// let z = pca.transform(&x)?; // [500, 3]
    /// println!("{:?} {}", pca.explained_variance_ratio(), pca.reconstruction_mse(&x)?);
    /// # Ok::<(), wgrad_models::classic::ClassicError>(())
    /// ```
    pub fn fit(x: &Tensor, k: usize, opts: &SubspaceOptions) -> Result<Pca> {
        let (mean, c) = covariance(x)?;
        Self::from_covariance(mean, &c, k, opts)
    }

    /// PCA from a mean `[1, d]` and covariance `[d, d]` computed by [`covariance`].
    pub fn from_covariance(
        mean: Tensor,
        c: &Tensor,
        k: usize,
        opts: &SubspaceOptions,
    ) -> Result<Pca> {
        let eig = top_eigen(c, k, opts)?;
        let d = c.shape()[0];
        let total_variance = no_grad(|| -> Result<f64> {
            let diag = c.reshape(&[d * d])?.index_select(
                0,
                &Tensor::from_slice(
                    &(0..d as u32)
                        .map(|i| i * (d as u32 + 1))
                        .collect::<Vec<_>>(),
                    &[d],
                    c.device(),
                )?,
            )?;
            Ok(f64::from(diag.sum_all()?.item()?))
        })?;
        Ok(Pca {
            mean,
            components: eig.vectors,
            eigenvalues: eig.values,
            total_variance,
            iterations: eig.iterations,
            residual: eig.residual,
            converged: eig.converged,
        })
    }

    pub fn k(&self) -> usize {
        self.eigenvalues.len()
    }

    /// `λ_i / trace(C)` for each component.
    pub fn explained_variance_ratio(&self) -> Vec<f64> {
        self.eigenvalues
            .iter()
            .map(|l| l / self.total_variance.max(f64::MIN_POSITIVE))
            .collect()
    }

    /// Scores `(x - mean) V`: `[n, d]` to `[n, k]`.
    pub fn transform(&self, x: &Tensor) -> Result<Tensor> {
        Ok(no_grad(|| x.sub(&self.mean)?.matmul(&self.components))?)
    }

    /// `z Vᵀ + mean`: `[n, k]` back to `[n, d]`.
    pub fn inverse_transform(&self, z: &Tensor) -> Result<Tensor> {
        Ok(no_grad(|| {
            z.matmul_t(&self.components, Transpose::No, Transpose::Yes)?
                .add(&self.mean)
        })?)
    }

    /// Mean squared error (over every pixel / feature) of reconstructing `x` from its first `k`
    /// components.
    pub fn reconstruction_mse(&self, x: &Tensor) -> Result<f64> {
        let r = self.inverse_transform(&self.transform(x)?)?;
        Ok(f64::from(no_grad(|| mse(&r, x))?.item()?))
    }
}

/// Options of [`pca`].
#[derive(Clone, Debug, PartialEq)]
pub struct PcaOptions {
    pub root: PathBuf,
    pub dataset: Dataset,
    /// The first `n_train` training images.
    pub n_train: usize,
    /// Held-out images for the test reconstruction error (the first ones of the test split).
    pub n_test: usize,
    pub components: usize,
    pub subspace: SubspaceOptions,
    /// Also decompose the covariance on the CPU with nalgebra and compare.
    pub cpu_check: bool,
}

impl Default for PcaOptions {
    fn default() -> Self {
        PcaOptions {
            root: default_root(),
            dataset: Dataset::Mnist,
            n_train: 10_000,
            n_test: 10_000,
            components: 10,
            subspace: SubspaceOptions::default(),
            cpu_check: true,
        }
    }
}

#[derive(Clone, Debug)]
pub struct PcaReport {
    /// Data set and subset ("MNIST, 10000 training images").
    pub data: String,
    pub n_train: usize,
    pub n_test: usize,
    pub dim: usize,
    pub eigenvalues: Vec<f64>,
    pub explained_variance_ratio: Vec<f64>,
    pub total_variance: f64,
    /// Per-pixel MSE of the k-component reconstruction, on the training subset.
    pub reconstruction_mse_train: f64,
    /// The same on held-out test images (centred with the training mean).
    pub reconstruction_mse_test: f64,
    /// `(n-1)/(n d) · Σ_{i>k} λ_i`: what `reconstruction_mse_train` must equal.
    pub reconstruction_mse_predicted: f64,
    pub iterations: usize,
    pub residual: f64,
    pub converged: bool,
    pub check: Option<EigenCheck>,
    pub covariance_seconds: f64,
    pub eigen_seconds: f64,
    /// The fitted PCA (components on the device).
    pub pca: Pca,
}

impl PcaReport {
    /// Running sum of the explained-variance ratios.
    pub fn cumulative_ratio(&self) -> Vec<f64> {
        self.explained_variance_ratio
            .iter()
            .scan(0.0, |s, r| {
                *s += r;
                Some(*s)
            })
            .collect()
    }
}

/// PCA of MNIST / Fashion-MNIST images (pixels in `[0, 1]`, centred by the fit): covariance and
/// projections on the GPU, eigenpairs by GPU subspace iteration ([`top_eigen`]), optionally
/// checked against nalgebra on the CPU ([`check_eigen`]).
pub fn pca(dev: &Device, opts: &PcaOptions) -> Result<PcaReport> {
    let train = data::load(&opts.root, opts.dataset, Split::Train)?;
    let test = data::load(&opts.root, opts.dataset, Split::Test)?;
    let x = images_tensor(&train, Some(opts.n_train), dev)?;
    let xt = images_tensor(&test, Some(opts.n_test), dev)?;
    let (n, dim) = (x.shape()[0], x.shape()[1]);

    let t0 = Instant::now();
    let (mean, c) = covariance(&x)?;
    c.sum_all()?.item()?; // wait for the GPU, for the timing
    let covariance_seconds = t0.elapsed().as_secs_f64();
    let t0 = Instant::now();
    let p = Pca::from_covariance(mean, &c, opts.components, &opts.subspace)?;
    let eigen_seconds = t0.elapsed().as_secs_f64();
    let check = if opts.cpu_check {
        Some(check_eigen(
            &c,
            &Eigen {
                values: p.eigenvalues.clone(),
                vectors: p.components.clone(),
                iterations: p.iterations,
                residual: p.residual,
                converged: p.converged,
            },
        )?)
    } else {
        None
    };
    let kept: f64 = p.eigenvalues.iter().sum();
    let predicted = (p.total_variance - kept) * (n - 1) as f64 / (n * dim) as f64;
    Ok(PcaReport {
        data: format!("{}, {n} training images", opts.dataset),
        n_train: n,
        n_test: xt.shape()[0],
        dim,
        eigenvalues: p.eigenvalues.clone(),
        explained_variance_ratio: p.explained_variance_ratio(),
        total_variance: p.total_variance,
        reconstruction_mse_train: p.reconstruction_mse(&x)?,
        reconstruction_mse_test: p.reconstruction_mse(&xt)?,
        reconstruction_mse_predicted: predicted,
        iterations: p.iterations,
        residual: p.residual,
        converged: p.converged,
        check,
        covariance_seconds,
        eigen_seconds,
        pca: p,
    })
}

// =============================================================================================
// Whitening

/// PCA and ZCA whitening fitted to a data matrix.
///
/// With `C = U Λ Uᵀ` (the `k` kept eigenpairs) and `ε > 0`:
/// `W_pca = (Λ + ε)^{-1/2} Uᵀ` (`d → k`) and `W_zca = U (Λ + ε)^{-1/2} Uᵀ` (`d → d`). Rows are
/// whitened as `(x - mean) Wᵀ`. On the fitted data the whitened covariance is
/// `diag(λ / (λ + ε))` for PCA and `U diag(λ / (λ + ε)) Uᵀ` for ZCA: the identity (the projector
/// `U Uᵀ` onto the kept subspace when `k < d`) up to `ε / (λ_min + ε)`.
///
/// The covariance and every projection are GPU ops; the full `d x d` eigen-decomposition is
/// nalgebra's `SymmetricEigen` on the host (f64), since whitening needs every kept eigenpair.
#[derive(Clone, Debug)]
pub struct Whitener {
    /// `[1, d]`.
    pub mean: Tensor,
    /// `U`, `[d, k]`.
    pub basis: Tensor,
    /// `W_pcaᵀ = U (Λ + ε)^{-1/2}`, `[d, k]`.
    pub pca_matrix: Tensor,
    /// `W_zca` (symmetric), `[d, d]`.
    pub zca_matrix: Tensor,
    /// The kept eigenvalues, largest first.
    pub eigenvalues: Vec<f64>,
    pub eps: f64,
}

impl Whitener {
    /// Fits to the rows of `x: [n, d]`, keeping the top `components` eigenpairs (all `d` when
    /// `None`). Errors when a kept `λ + ε` is not positive.
    pub fn fit(x: &Tensor, components: Option<usize>, eps: f64) -> Result<Whitener> {
        let (mean, c) = covariance(x)?;
        Self::from_covariance(mean, &c, components, eps)
    }

    /// From a mean `[1, d]` and covariance `[d, d]` computed by [`covariance`].
    pub fn from_covariance(
        mean: Tensor,
        c: &Tensor,
        components: Option<usize>,
        eps: f64,
    ) -> Result<Whitener> {
        const OP: &str = "Whitener";
        let ch = symmetrize(&to_host(c)?);
        let d = ch.nrows();
        let k = components.unwrap_or(d);
        if k == 0 || k > d || ch.ncols() != d {
            return Err(invalid(
                OP,
                format!("{k} components of a {:?} covariance", c.shape()),
            ));
        }
        if !(eps >= 0.0 && eps.is_finite()) {
            return Err(invalid(OP, format!("eps = {eps} must be finite and >= 0")));
        }
        let (values, vectors) = sorted_eigen(ch);
        let (values, u) = (values[..k].to_vec(), vectors.columns(0, k).into_owned());
        if let Some(&bad) = values.iter().find(|&&l| l + eps <= 0.0) {
            return Err(numerical(
                OP,
                format!(
                    "kept eigenvalue {bad:e} + eps {eps:e} is not positive: keep fewer \
                     components or raise eps"
                ),
            ));
        }
        let scale = DMatrix::from_diagonal(&DVector::from_iterator(
            k,
            values.iter().map(|l| 1.0 / (l + eps).sqrt()),
        ));
        let pca_t = &u * scale; // [d, k]
        let zca = &pca_t * u.transpose(); // [d, d]
        let dev = c.device();
        Ok(Whitener {
            mean,
            basis: to_device(&u, dev)?,
            pca_matrix: to_device(&pca_t, dev)?,
            zca_matrix: to_device(&zca, dev)?,
            eigenvalues: values,
            eps,
        })
    }

    pub fn components(&self) -> usize {
        self.eigenvalues.len()
    }

    /// `(x - mean) W_pcaᵀ`: `[n, d]` to `[n, k]`.
    pub fn pca_whiten(&self, x: &Tensor) -> Result<Tensor> {
        Ok(no_grad(|| x.sub(&self.mean)?.matmul(&self.pca_matrix))?)
    }

    /// `(x - mean) W_zca`: `[n, d]` to `[n, d]`. When `2k < d` this is computed as
    /// `((x - mean) W_pcaᵀ) Uᵀ`, two thin matmuls instead of one `d x d`.
    pub fn zca_whiten(&self, x: &Tensor) -> Result<Tensor> {
        let (d, k) = (self.mean.numel(), self.components());
        if 2 * k < d {
            let z = self.pca_whiten(x)?;
            return Ok(no_grad(|| {
                z.matmul_t(&self.basis, Transpose::No, Transpose::Yes)
            })?);
        }
        Ok(no_grad(|| x.sub(&self.mean)?.matmul(&self.zca_matrix))?)
    }

    /// The bias `ε / (λ_min + ε)` by which the whitened training covariance falls short of the
    /// identity.
    pub fn eps_bias(&self) -> f64 {
        let lmin = self.eigenvalues.last().copied().unwrap_or(0.0);
        self.eps / (lmin + self.eps)
    }
}

/// How close whitened data is to unit covariance.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct WhiteCheck {
    /// `max |cov(x W_pcaᵀ) - I_k|`.
    pub pca_max_dev: f64,
    /// `max |cov(x W_zca) - U Uᵀ|` (`U Uᵀ = I` when every component is kept).
    pub zca_max_dev: f64,
    /// `max |cov(x W_zca) - I_d|`: equals `zca_max_dev` up to rounding when `k = d`, and is 1
    /// or more when `k < d` (the dropped directions have zero variance).
    pub zca_max_dev_identity: f64,
    /// Mean of the whitened data's diagonal (variances); 1 ideally.
    pub pca_mean_variance: f64,
}

/// Whitens `x` both ways and measures the covariance of the result (each centred on its own mean)
/// against the identity, on the GPU.
pub fn whitening_check(w: &Whitener, x: &Tensor) -> Result<WhiteCheck> {
    let dev = x.device();
    let k = w.components();
    let d = w.mean.numel();
    let (_, cp) = covariance(&w.pca_whiten(x)?)?;
    let (_, cz) = covariance(&w.zca_whiten(x)?)?;
    no_grad(|| {
        let proj = w.basis.matmul_t(&w.basis, Transpose::No, Transpose::Yes)?;
        let diag: Vec<u32> = (0..k as u32).map(|i| i * (k as u32 + 1)).collect();
        let var = cp
            .reshape(&[k * k])?
            .index_select(0, &Tensor::from_slice(&diag, &[k], dev)?)?
            .mean_all()?;
        Ok(WhiteCheck {
            pca_max_dev: max_abs(&cp.sub(&identity(k, dev)?)?)?,
            zca_max_dev: max_abs(&cz.sub(&proj)?)?,
            zca_max_dev_identity: max_abs(&cz.sub(&identity(d, dev)?)?)?,
            pca_mean_variance: f64::from(var.item()?),
        })
    })
}

/// What to whiten.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum WhitenData {
    /// The 10 raw diabetes features (train / test split by seed).
    Diabetes,
    /// Flattened images with pixels in `[0, 1]`.
    Images(Dataset),
}

/// Options of [`whitening`].
#[derive(Clone, Debug, PartialEq)]
pub struct WhitenOptions {
    pub root: PathBuf,
    pub data: WhitenData,
    /// Images: the first `n_train` training and `n_test` test images. Diabetes: ignored (the
    /// split is 80 / 20 by `seed`).
    pub n_train: usize,
    pub n_test: usize,
    pub seed: u64,
    /// Eigenpairs kept (all when `None`).
    pub components: Option<usize>,
    pub eps: f64,
}

impl Default for WhitenOptions {
    fn default() -> Self {
        WhitenOptions {
            root: default_root(),
            data: WhitenData::Images(Dataset::Mnist),
            n_train: 10_000,
            n_test: 5_000,
            seed: 0,
            components: Some(100),
            eps: 1e-5,
        }
    }
}

#[derive(Clone, Debug)]
pub struct WhitenReport {
    pub data: String,
    pub n_train: usize,
    pub n_test: usize,
    pub dim: usize,
    pub components: usize,
    pub eps: f64,
    /// Largest and smallest kept eigenvalue.
    pub eigenvalue_range: (f64, f64),
    /// `ε / (λ_min + ε)`: the expected training deviation due to ε alone.
    pub eps_bias: f64,
    /// Measured on the data the whitener was fitted to.
    pub train: WhiteCheck,
    /// Measured on held-out data (whitened with the training mean and matrices).
    pub test: WhiteCheck,
    pub seconds: f64,
}

/// Fits PCA and ZCA whitening on training data and checks the whitened covariance against the
/// identity on the training data and on held-out data.
pub fn whitening(dev: &Device, opts: &WhitenOptions) -> Result<WhitenReport> {
    let (x, xt, data) = match opts.data {
        WhitenData::Diabetes => {
            let t = data::load_diabetes(&opts.root)?;
            let (tr, te) = t.split(0.2, opts.seed)?;
            (
                Tensor::from_slice(&tr.x, &[tr.n, tr.features], dev)?,
                Tensor::from_slice(&te.x, &[te.n, te.features], dev)?,
                "diabetes (raw features)".to_string(),
            )
        }
        WhitenData::Images(ds) => {
            let train = data::load(&opts.root, ds, Split::Train)?;
            let test = data::load(&opts.root, ds, Split::Test)?;
            (
                images_tensor(&train, Some(opts.n_train), dev)?,
                images_tensor(&test, Some(opts.n_test), dev)?,
                format!("{ds} (pixels in [0, 1])"),
            )
        }
    };
    let t0 = Instant::now();
    let w = Whitener::fit(&x, opts.components, opts.eps)?;
    let train = whitening_check(&w, &x)?;
    let test = whitening_check(&w, &xt)?;
    Ok(WhitenReport {
        data,
        n_train: x.shape()[0],
        n_test: xt.shape()[0],
        dim: x.shape()[1],
        components: w.components(),
        eps: w.eps,
        eigenvalue_range: (
            w.eigenvalues.first().copied().unwrap_or(0.0),
            w.eigenvalues.last().copied().unwrap_or(0.0),
        ),
        eps_bias: w.eps_bias(),
        train,
        test,
        seconds: t0.elapsed().as_secs_f64(),
    })
}
