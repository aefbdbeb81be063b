//! Tests of the classical models (`wgrad_models::classic`): synthetic data with known answers,
//! then short runs on the real data sets that skip with a message when `data/` is missing.
//!
//! Run in release mode (`cargo test --release -p wgrad-models --test classic`): on lavapipe each
//! test takes a few seconds at most.

use nalgebra::{DMatrix, DVector};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_distr::{Distribution, Normal, Uniform};
use wgrad_graph::{Device, Tensor};
use wgrad_models::classic::{
    ClassicError, LinearMethod, LinearOptions, LogisticOptions, OptimizerKind, Pca, PcaOptions,
    SubspaceOptions, Training, WhitenData, WhitenOptions, Whitener, check_eigen, covariance,
    fit_linear, fit_logistic, linear_regression, logistic_regression, pca, top_eigen, whitening,
    whitening_check,
};
use wgrad_models::data::{DataError, Table};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn dev() -> Device {
    Device::new().expect("a wgpu adapter (lavapipe on CI)")
}

fn normal_matrix(rows: usize, cols: usize, rng: &mut StdRng) -> DMatrix<f64> {
    let nd = Normal::new(0.0, 1.0).unwrap();
    DMatrix::from_fn(rows, cols, |_, _| nd.sample(rng))
}

/// Row-major f32 values of a host matrix.
fn rows_f32(m: &DMatrix<f64>) -> Vec<f32> {
    (0..m.nrows())
        .flat_map(|i| (0..m.ncols()).map(move |j| m[(i, j)] as f32))
        .collect()
}

fn table(x: &DMatrix<f64>, y: &[f64]) -> Table {
    Table {
        x: rows_f32(x),
        y: y.iter().map(|&v| v as f32).collect(),
        n: x.nrows(),
        features: x.ncols(),
        feature_names: (0..x.ncols()).map(|j| format!("x{j}")).collect(),
    }
}

/// A random orthogonal matrix (Q of the QR of a Gaussian matrix).
fn orthogonal(d: usize, rng: &mut StdRng) -> DMatrix<f64> {
    normal_matrix(d, d, rng).qr().q()
}

/// Skips (returns `None`, printing why) when the data files are missing; other errors fail.
fn or_skip<T>(what: &str, r: Result<T, ClassicError>) -> Option<T> {
    match r {
        Ok(v) => Some(v),
        Err(ClassicError::Data(DataError::Missing { path, .. })) => {
            println!(
                "skipping {what}: {} is missing (run scripts/setup-data.sh)",
                path.display()
            );
            None
        }
        Err(e) => panic!("{what}: {e}"),
    }
}

// =============================================================================================
// Linear regression

/// y = 2 x0 - 3 x1 + 0.5 x2 + 1.5 exactly (no noise): every method must recover these weights,
/// and the test MSE is 0 (R² = 1).
#[test]
fn linear_synthetic_all_four_methods_recover_known_weights() -> TestResult {
    let dev = dev();
    let mut rng = StdRng::seed_from_u64(1);
    let w_true = [2.0, -3.0, 0.5];
    let b_true = 1.5;
    let make = |n: usize, rng: &mut StdRng| {
        let x = normal_matrix(n, 3, rng);
        let y: Vec<f64> = (0..n)
            .map(|i| (0..3).map(|j| x[(i, j)] * w_true[j]).sum::<f64>() + b_true)
            .collect();
        table(&x, &y)
    };
    let (train, test) = (make(256, &mut rng), make(64, &mut rng));
    let opts = LinearOptions {
        gd_max_steps: 3000,
        sgd_epochs: 40,
        batch_size: 32,
        ..LinearOptions::default()
    };
    let r = fit_linear(&dev, &train, &test, &opts)?;
    assert_eq!(r.weight_names, ["x0", "x1", "x2", "bias"]);
    assert_eq!(r.fits.len(), 4);
    assert!(r.closed_form_vs_cpu < 1e-5, "{}", r.closed_form_vs_cpu);
    let want = [2.0f32, -3.0, 0.5, 1.5];
    for f in &r.fits {
        assert!(f.agrees(), "{}: rel diff {}", f.method, f.rel_diff);
        for (i, (&got, &w)) in f.weights.iter().zip(&want).enumerate() {
            assert!(
                (got - w).abs() < 1e-3,
                "{}: w[{i}] = {got}, want {w}",
                f.method
            );
        }
        assert!(f.test_mse < 1e-5, "{}: test MSE {}", f.method, f.test_mse);
        assert!(f.test_r2 > 0.99999, "{}: R² {}", f.method, f.test_r2);
    }
    assert_eq!(r.fit(LinearMethod::Newton).map(|f| f.steps), Some(1));
    Ok(())
}

#[test]
fn linear_rejects_bad_input() -> TestResult {
    let dev = dev();
    let mut rng = StdRng::seed_from_u64(2);
    let x = normal_matrix(20, 2, &mut rng);
    let y = vec![1.0; 20];
    let good = table(&x, &y);
    let opts = LinearOptions::default();

    // Width mismatch.
    let narrow = table(&x.columns(0, 1).into_owned(), &y);
    let err = fit_linear(&dev, &good, &narrow, &opts).unwrap_err();
    assert!(matches!(err, ClassicError::InvalidArgument { .. }), "{err}");

    // A zero column makes XᵀX singular.
    let mut xz = x.clone();
    xz.column_mut(1).fill(0.0);
    let err = fit_linear(&dev, &table(&xz, &y), &good, &opts).unwrap_err();
    assert!(matches!(err, ClassicError::Numerical { .. }), "{err}");
    assert!(err.to_string().contains("linearly dependent"), "{err}");

    // Inconsistent table, NaN, zero batch size.
    let mut bad = good.clone();
    bad.n = 21;
    assert!(fit_linear(&dev, &bad, &good, &opts).is_err());
    let mut nan = good.clone();
    nan.y[3] = f32::NAN;
    assert!(fit_linear(&dev, &nan, &good, &opts).is_err());
    let zero_batch = LinearOptions {
        batch_size: 0,
        ..LinearOptions::default()
    };
    assert!(fit_linear(&dev, &good, &good, &zero_batch).is_err());
    Ok(())
}

// =============================================================================================
// Logistic regression

/// Points uniform in [-3, 3]² labelled by x0 + 2 x1 > 0.5, with a margin of 0.3 around the
/// boundary: linearly separable, so training must classify everything and the weight direction
/// must align with the true normal (1, 2)/√5.
#[test]
fn logistic_separable_2d() -> TestResult {
    let dev = dev();
    let mut rng = StdRng::seed_from_u64(3);
    let u = Uniform::new(-3.0f64, 3.0)?;
    let mut make = |n: usize| {
        let (mut x, mut y) = (Vec::new(), Vec::new());
        while y.len() < n {
            let (a, b) = (u.sample(&mut rng), u.sample(&mut rng));
            let s = (a + 2.0 * b - 0.5) / 5f64.sqrt();
            if s.abs() < 0.3 {
                continue;
            }
            x.extend([a as f32, b as f32]);
            y.push(if s > 0.0 { 1.0f32 } else { 0.0 });
        }
        Table {
            x,
            y,
            n,
            features: 2,
            feature_names: vec!["a".into(), "b".into()],
        }
    };
    let (train, test) = (make(400), make(200));
    let t = Training {
        epochs: 30,
        batch_size: 32,
        lr: 0.1,
        optimizer: OptimizerKind::Adam,
        seed: 0,
    };
    let r = fit_logistic(&dev, &train, &test, &t)?;
    assert_eq!(r.epochs.len(), 30);
    assert_eq!(r.train_accuracy, 1.0);
    assert_eq!(r.test_accuracy, 1.0);
    assert!(
        r.epochs[29].train_loss < r.epochs[0].train_loss / 2.0,
        "{:?}",
        r.epochs
    );
    let (w0, w1) = (f64::from(r.weights[0]), f64::from(r.weights[1]));
    let cos = (w0 + 2.0 * w1) / (5f64.sqrt() * w0.hypot(w1));
    assert!(
        cos > 0.99,
        "w = {:?}, cos to the true normal {cos}",
        r.weights
    );
    // The boundary w·x + b = 0 crosses the true one near x0 + 2 x1 = 0.5.
    let offset = -f64::from(r.bias) / w0.hypot(w1);
    assert!((offset - 0.5 / 5f64.sqrt()).abs() < 0.15, "offset {offset}");

    // SGD with momentum on the same data.
    let sgd = Training {
        optimizer: OptimizerKind::Sgd { momentum: 0.9 },
        lr: 0.05,
        ..t
    };
    let r = fit_logistic(&dev, &train, &test, &sgd)?;
    assert!(r.test_accuracy > 0.99, "{}", r.test_accuracy);

    // Targets must be 0 or 1.
    let mut bad = train.clone();
    bad.y[0] = 0.5;
    let err = fit_logistic(&dev, &bad, &test, &t).unwrap_err();
    assert!(err.to_string().contains("not 0 or 1"), "{err}");
    Ok(())
}

// =============================================================================================
// Covariance, eigenpairs, PCA

/// Data whose *sample* covariance is exactly R diag(λ) Rᵀ: orthonormal centred columns Q scaled by
/// sqrt((n-1) λ), rotated by a known orthogonal R, plus a mean.
fn known_covariance(
    n: usize,
    lambdas: &[f64],
    rng: &mut StdRng,
) -> (DMatrix<f64>, DMatrix<f64>, DVector<f64>) {
    let d = lambdas.len();
    let mut z = normal_matrix(n, d, rng);
    for mut c in z.column_iter_mut() {
        let m = c.mean();
        c.add_scalar_mut(-m);
    }
    let q = z.qr().q(); // [n, d], orthonormal columns, each still summing to 0
    let scale = DMatrix::from_diagonal(&DVector::from_iterator(
        d,
        lambdas.iter().map(|l| ((n - 1) as f64 * l).sqrt()),
    ));
    let r = orthogonal(d, rng);
    let mean = DVector::from_iterator(d, (0..d).map(|j| j as f64 - 2.0));
    let mut x = q * scale * r.transpose();
    for mut row in x.row_iter_mut() {
        row += mean.transpose();
    }
    (x, r, mean)
}

/// Covariance on the GPU against the f64 formula on the host.
#[test]
fn covariance_matches_cpu() -> TestResult {
    let dev = dev();
    let mut rng = StdRng::seed_from_u64(4);
    let (n, d) = (300, 7);
    let x = normal_matrix(n, d, &mut rng) * orthogonal(d, &mut rng) * 3.0;
    let xt = Tensor::from_vec(rows_f32(&x), &[n, d], &dev)?;
    let (mean, c) = covariance(&xt)?;
    assert_eq!((mean.shape(), c.shape()), (&[1, d][..], &[d, d][..]));
    let mu = x.row_mean();
    let mut xc = x.clone();
    for mut row in xc.row_iter_mut() {
        row -= &mu;
    }
    let want = xc.transpose() * &xc / (n - 1) as f64;
    let got = c.to_vec()?;
    for i in 0..d {
        assert!((f64::from(mean.to_vec()?[i]) - mu[i]).abs() < 1e-5);
        for j in 0..d {
            let g = f64::from(got[i * d + j]);
            assert!(
                (g - want[(i, j)]).abs() < 1e-4 * (1.0 + want[(i, j)].abs()),
                "C[{i},{j}]"
            );
        }
    }
    assert!(covariance(&Tensor::zeros(&[1, 3], &dev)?).is_err());
    assert!(covariance(&Tensor::zeros(&[4], &dev)?).is_err());
    Ok(())
}

/// PCA of data with known covariance R diag(9, 4, 2, 1, 0.5, 0.25) Rᵀ: the eigenvalues, the
/// components (columns of R, up to sign), the explained-variance ratios λ_i / 16.75 and the
/// reconstruction MSE (n-1)/(n d) Σ_{i>k} λ_i are all known.
#[test]
fn pca_recovers_known_covariance() -> TestResult {
    let dev = dev();
    let mut rng = StdRng::seed_from_u64(5);
    let lambdas = [9.0, 4.0, 2.0, 1.0, 0.5, 0.25];
    let (n, d, k) = (500, 6, 3);
    let (x, r, mean) = known_covariance(n, &lambdas, &mut rng);
    let xt = Tensor::from_vec(rows_f32(&x), &[n, d], &dev)?;
    // Oversample 1: a 4-vector block, so the iteration has real work to do (rate λ5/λ3 = 1/4).
    let opts = SubspaceOptions {
        oversample: 1,
        ..SubspaceOptions::default()
    };
    let p = Pca::fit(&xt, k, &opts)?;
    assert!(
        p.converged,
        "residual {} after {}",
        p.residual, p.iterations
    );
    assert!(p.iterations > 1);
    let total: f64 = lambdas.iter().sum();
    assert!((p.total_variance - total).abs() < 1e-4 * total);
    let ratio = p.explained_variance_ratio();
    let comps = p.components.to_vec()?;
    for i in 0..k {
        assert!(
            (p.eigenvalues[i] - lambdas[i]).abs() < 1e-4 * lambdas[i],
            "λ{i} = {}",
            p.eigenvalues[i]
        );
        assert!((ratio[i] - lambdas[i] / total).abs() < 1e-5);
        let v = DVector::from_iterator(d, (0..d).map(|j| f64::from(comps[j * k + i])));
        let cos = v.dot(&r.column(i)).abs() / v.norm();
        assert!(cos > 1.0 - 1e-6, "component {i}: |cos| = {cos}");
    }
    let m = p.mean.to_vec()?;
    for j in 0..d {
        assert!((f64::from(m[j]) - mean[j]).abs() < 1e-4);
    }
    let want = (n - 1) as f64 / (n * d) as f64 * lambdas[k..].iter().sum::<f64>();
    let got = p.reconstruction_mse(&xt)?;
    assert!(
        (got - want).abs() < 1e-4 * want,
        "reconstruction MSE {got}, want {want}"
    );
    // Scores have variance λ_i and round-trip through inverse_transform with all components.
    let z = p.transform(&xt)?;
    assert_eq!(z.shape(), &[n, k]);
    let full = Pca::fit(&xt, d, &SubspaceOptions::default())?;
    assert!(full.reconstruction_mse(&xt)? < 1e-9);

    // The same eigenpairs from nalgebra on the CPU.
    let (_, c) = covariance(&xt)?;
    let eig = top_eigen(&c, k, &opts)?;
    let check = check_eigen(&c, &eig)?;
    assert!(check.max_rel_value_err < 1e-5, "{check:?}");
    assert!(check.min_abs_cos > 1.0 - 1e-6, "{check:?}");
    for (l, want) in check.cpu_values.iter().zip(lambdas) {
        assert!((l - want).abs() < 1e-4 * want);
    }
    // Bad k.
    assert!(top_eigen(&c, 0, &opts).is_err());
    assert!(top_eigen(&c, d + 1, &opts).is_err());
    assert!(top_eigen(&Tensor::zeros(&[3, 4], &dev)?, 1, &opts).is_err());
    Ok(())
}

// =============================================================================================
// Whitening

/// Correlated Gaussian data (covariance A Aᵀ with condition number ~100): the PCA- and
/// ZCA-whitened training data has covariance I up to ε/λ_min and f32 rounding; fresh samples from
/// the same distribution are within sampling error of I.
#[test]
fn whitening_gives_identity_covariance() -> TestResult {
    let dev = dev();
    let mut rng = StdRng::seed_from_u64(6);
    let d = 5;
    let a = orthogonal(d, &mut rng)
        * DMatrix::from_diagonal(&DVector::from_vec(vec![10.0, 4.0, 2.0, 1.0, 1.0]))
        * orthogonal(d, &mut rng);
    let sample = |n: usize, rng: &mut StdRng| -> Result<Tensor, Box<dyn std::error::Error>> {
        let mut x = normal_matrix(n, d, rng) * a.transpose();
        x.add_scalar_mut(3.0);
        Ok(Tensor::from_vec(rows_f32(&x), &[n, d], &dev)?)
    };
    let (x, held_out) = (sample(2000, &mut rng)?, sample(20000, &mut rng)?);
    let w = Whitener::fit(&x, None, 1e-8)?;
    assert_eq!(w.components(), d);
    assert_eq!(w.pca_matrix.shape(), &[d, d]);
    // W_zca is symmetric.
    let z = w.zca_matrix.to_vec()?;
    for i in 0..d {
        for j in 0..d {
            assert!((z[i * d + j] - z[j * d + i]).abs() < 1e-5);
        }
    }
    let train = whitening_check(&w, &x)?;
    assert!(train.pca_max_dev < 1e-4, "{train:?}");
    assert!(train.zca_max_dev < 1e-4, "{train:?}");
    assert!(train.zca_max_dev_identity < 1e-4, "{train:?}");
    assert!((train.pca_mean_variance - 1.0).abs() < 1e-4);
    let test = whitening_check(&w, &held_out)?;
    // Entries of a 20000-sample covariance of unit-variance data have std ~ 1/sqrt(20000) ≈ 0.007
    // (√2 times that on the diagonal), plus the 2000-sample error of the fitted whitener.
    assert!(
        test.pca_max_dev < 0.15 && test.zca_max_dev < 0.15,
        "{test:?}"
    );

    // Keeping 2 of 5 components: PCA-whitened data is 2-D with covariance I_2, the ZCA-whitened
    // covariance is the projector onto the kept subspace.
    let w2 = Whitener::fit(&x, Some(2), 1e-8)?;
    assert_eq!(w2.pca_whiten(&x)?.shape(), &[2000, 2]);
    assert_eq!(w2.zca_whiten(&x)?.shape(), &[2000, d]);
    let c2 = whitening_check(&w2, &x)?;
    assert!(c2.pca_max_dev < 1e-4 && c2.zca_max_dev < 1e-4, "{c2:?}");
    assert!(c2.zca_max_dev_identity > 0.5, "{c2:?}");

    // eps shrinks the variances by λ / (λ + eps).
    let big_eps = Whitener::fit(&x, None, 1.0)?;
    let c = whitening_check(&big_eps, &x)?;
    assert!(
        (c.pca_max_dev - big_eps.eps_bias()).abs() < 1e-3,
        "{c:?} vs {}",
        big_eps.eps_bias()
    );

    assert!(Whitener::fit(&x, Some(0), 1e-8).is_err());
    assert!(Whitener::fit(&x, Some(d + 1), 1e-8).is_err());
    assert!(Whitener::fit(&x, None, -1.0).is_err());
    Ok(())
}

// =============================================================================================
// Real data (skipped when data/ is missing)

#[test]
fn real_linear_regression_diabetes() {
    let dev = dev();
    let Some(r) = or_skip(
        "diabetes linear regression",
        linear_regression(&dev, &LinearOptions::default()),
    ) else {
        return;
    };
    assert_eq!((r.n_train, r.n_test), (354, 88));
    assert!(r.closed_form_vs_cpu < 1e-4, "{}", r.closed_form_vs_cpu);
    for f in &r.fits {
        println!(
            "{:<17} train MSE {:.2} test MSE {:.2} test R² {:.4} rel diff {:.2e} ({:.2} s)",
            f.method.name(),
            f.train_mse,
            f.test_mse,
            f.test_r2,
            f.rel_diff,
            f.seconds
        );
        assert!(f.agrees(), "{}: rel diff {}", f.method, f.rel_diff);
        assert!(
            (0.3..0.7).contains(&f.test_r2),
            "{}: R² {}",
            f.method,
            f.test_r2
        );
        assert!((2000.0..4000.0).contains(&f.test_mse), "{}", f.test_mse);
    }
}

#[test]
fn real_logistic_mnist_3_vs_5() {
    let dev = dev();
    let opts = LogisticOptions {
        train: Training {
            epochs: 3,
            batch_size: 128,
            lr: 0.01,
            ..Training::default()
        },
        ..LogisticOptions::default()
    };
    let Some(r) = or_skip("MNIST 3 vs 5", logistic_regression(&dev, &opts)) else {
        return;
    };
    println!("{}: {:?}", r.task, r.epochs);
    assert_eq!(r.task, "MNIST 3 vs 5");
    assert_eq!((r.n_train, r.n_test), (6131 + 5421, 1010 + 892));
    assert!(r.test_accuracy > 0.95, "test accuracy {}", r.test_accuracy);
    assert!(r.epochs[2].train_loss < r.epochs[0].train_loss);
}

#[test]
fn real_pca_mnist() {
    let dev = dev();
    let opts = PcaOptions {
        n_train: 2000,
        n_test: 1000,
        ..PcaOptions::default()
    };
    let Some(r) = or_skip("MNIST PCA", pca(&dev, &opts)) else {
        return;
    };
    println!("{:?}", r.explained_variance_ratio);
    assert!(r.converged);
    let check = r.check.as_ref().expect("cpu_check is on");
    assert!(check.max_rel_value_err < 1e-4, "{check:?}");
    assert!(check.min_abs_cos > 0.999, "{check:?}");
    // The first component of MNIST explains about 10% of the pixel variance, ten about half.
    assert!((0.08..0.12).contains(&r.explained_variance_ratio[0]));
    let top10: f64 = r.explained_variance_ratio.iter().sum();
    assert!((0.4..0.6).contains(&top10), "{top10}");
    let (got, want) = (r.reconstruction_mse_train, r.reconstruction_mse_predicted);
    assert!((got - want).abs() < 1e-3 * want, "{got} vs {want}");
    assert!(r.reconstruction_mse_test > 0.9 * got && r.reconstruction_mse_test < 1.3 * got);
}

#[test]
fn real_whitening_mnist() {
    let dev = dev();
    let opts = WhitenOptions {
        data: WhitenData::Images(wgrad_models::data::Dataset::Mnist),
        n_train: 2000,
        n_test: 1000,
        components: Some(50),
        ..WhitenOptions::default()
    };
    let Some(r) = or_skip("MNIST whitening", whitening(&dev, &opts)) else {
        return;
    };
    println!("{r:?}");
    assert_eq!(r.components, 50);
    assert!(r.train.pca_max_dev < r.eps_bias + 1e-3, "{r:?}");
    assert!(r.train.zca_max_dev < r.eps_bias + 1e-3, "{r:?}");
    assert!(r.test.pca_max_dev < 1.0, "{r:?}");
}
