//! The diabetes regression data set (Efron, Hastie, Johnstone & Tibshirani,
//! "Least Angle Regression", 2004): 442 patients, 10 baseline features, and a
//! quantitative measure of disease progression one year later (25..346).
//!
//! `scripts/setup-data.sh` takes the files from scikit-learn's wheel and puts
//! them, gunzipped, under `<root>/diabetes/`:
//!
//! * `diabetes_data_raw.csv`: 442 lines of 10 space-separated numbers, the
//!   *raw* (unscaled) features `age sex bmi bp s1 s2 s3 s4 s5 s6`;
//! * `diabetes_target.csv`: 442 lines of one number each.
//!
//! Despite the extension there are no commas and no header. A `.gz` twin is
//! read when a plain file is absent. Scale the features yourself with
//! [`ZScore`], fitted on the training part only.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

use super::mnist::find_file;
use super::{DataError, MaybeGz, Result};

/// Names of the diabetes features, in column order.
pub const DIABETES_FEATURES: [&str; 10] = [
    "age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6",
];
/// Number of rows in the diabetes data set.
pub const DIABETES_ROWS: usize = 442;
/// Folder under the data root.
pub const DIABETES_DIR: &str = "diabetes";
pub const DIABETES_DATA_FILE: &str = "diabetes_data_raw.csv";
pub const DIABETES_TARGET_FILE: &str = "diabetes_target.csv";

/// A dense table of `f32` features with one `f32` target per row.
#[derive(Clone, Debug, PartialEq)]
pub struct Table {
    /// `n * features` values, row-major.
    pub x: Vec<f32>,
    /// `n` targets.
    pub y: Vec<f32>,
    pub n: usize,
    pub features: usize,
    pub feature_names: Vec<String>,
}

impl Table {
    /// Row `i`, or `None` past the end.
    pub fn row(&self, i: usize) -> Option<&[f32]> {
        (i < self.n).then(|| &self.x[i * self.features..(i + 1) * self.features])
    }

    pub fn len(&self) -> usize {
        self.n
    }

    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// The rows at `indices`, in that order.
    pub fn select(&self, indices: &[usize]) -> Result<Table> {
        if let Some(&bad) = indices.iter().find(|&&i| i >= self.n) {
            return Err(DataError::invalid(
                "row index",
                format!("{bad} is not below {}", self.n),
            ));
        }
        Ok(Table {
            x: indices
                .iter()
                .flat_map(|&i| self.row(i).unwrap_or(&[]).iter().copied())
                .collect(),
            y: indices.iter().map(|&i| self.y[i]).collect(),
            n: indices.len(),
            features: self.features,
            feature_names: self.feature_names.clone(),
        })
    }

    /// Shuffles the rows with `seed` and splits off `round(test_fraction * n)`
    /// of them as the test part; returns `(train, test)`. Both parts must end
    /// up non-empty. The same seed always gives the same split.
    pub fn split(&self, test_fraction: f64, seed: u64) -> Result<(Table, Table)> {
        if !(test_fraction > 0.0 && test_fraction < 1.0) {
            return Err(DataError::invalid(
                "test fraction",
                format!("{test_fraction} is not in (0, 1)"),
            ));
        }
        let n_test = (test_fraction * self.n as f64).round() as usize;
        if n_test == 0 || n_test >= self.n {
            return Err(DataError::invalid(
                "test fraction",
                format!(
                    "{test_fraction} of {} rows leaves {n_test} test and {} train rows",
                    self.n,
                    self.n.saturating_sub(n_test)
                ),
            ));
        }
        let mut order: Vec<usize> = (0..self.n).collect();
        order.shuffle(&mut StdRng::seed_from_u64(seed));
        let (test, train) = order.split_at(n_test);
        Ok((self.select(train)?, self.select(test)?))
    }

    /// Per-column z-score statistics of the features.
    pub fn feature_zscore(&self) -> Result<ZScore> {
        ZScore::fit(&self.x, self.features)
    }

    /// z-score statistics of the target.
    pub fn target_zscore(&self) -> Result<ZScore> {
        ZScore::fit(&self.y, 1)
    }
}

/// Per-column mean and standard deviation, for `(v - mean) / std`.
///
/// Fit it on training data only and apply the same statistics to the test
/// data. The std is the population one (divide by `n`); a constant column
/// gets std 1 so that it maps to 0 instead of NaN.
#[derive(Clone, Debug, PartialEq)]
pub struct ZScore {
    pub mean: Vec<f32>,
    pub std: Vec<f32>,
}

impl ZScore {
    /// Fits the statistics of a row-major `[rows, cols]` matrix (`rows >= 1`).
    pub fn fit(x: &[f32], cols: usize) -> Result<ZScore> {
        if cols == 0 || x.is_empty() || !x.len().is_multiple_of(cols) {
            return Err(DataError::invalid(
                "z-score input",
                format!("{} values do not form rows of {cols} columns", x.len()),
            ));
        }
        let rows = x.len() / cols;
        let mut mean = vec![0f64; cols];
        for row in x.chunks_exact(cols) {
            mean.iter_mut().zip(row).for_each(|(m, &v)| *m += v as f64);
        }
        mean.iter_mut().for_each(|m| *m /= rows as f64);
        let mut var = vec![0f64; cols];
        for row in x.chunks_exact(cols) {
            var.iter_mut()
                .zip(row)
                .zip(&mean)
                .for_each(|((s, &v), m)| *s += (v as f64 - m).powi(2));
        }
        let std = var
            .iter()
            .map(|s| {
                let sd = (s / rows as f64).sqrt();
                if sd > 1e-12 { sd as f32 } else { 1.0 }
            })
            .collect();
        Ok(ZScore {
            mean: mean.into_iter().map(|m| m as f32).collect(),
            std,
        })
    }

    pub fn cols(&self) -> usize {
        self.mean.len()
    }

    fn check(&self, len: usize) -> Result<()> {
        let c = self.cols();
        if c == 0 || !len.is_multiple_of(c) {
            return Err(DataError::invalid(
                "z-score input",
                format!("{len} values do not form rows of {c} columns"),
            ));
        }
        Ok(())
    }

    /// `(v - mean) / std`, column-wise, in place.
    pub fn transform(&self, x: &mut [f32]) -> Result<()> {
        self.check(x.len())?;
        for row in x.chunks_exact_mut(self.cols()) {
            for ((v, m), s) in row.iter_mut().zip(&self.mean).zip(&self.std) {
                *v = (*v - m) / s;
            }
        }
        Ok(())
    }

    /// `v * std + mean`, column-wise, in place (undoes [`ZScore::transform`]).
    pub fn inverse_transform(&self, x: &mut [f32]) -> Result<()> {
        self.check(x.len())?;
        for row in x.chunks_exact_mut(self.cols()) {
            for ((v, m), s) in row.iter_mut().zip(&self.mean).zip(&self.std) {
                *v = *v * s + m;
            }
        }
        Ok(())
    }
}

/// Reads whitespace-separated numbers, `cols` per line, blank lines ignored.
fn read_numbers(path: &Path, cols: usize) -> Result<Vec<f32>> {
    let r = MaybeGz::open(path)?;
    let gzip = r.gzip;
    let reader = BufReader::new(r);
    let mut out = Vec::new();
    for (i, line) in reader.lines().enumerate() {
        let line = line.map_err(|e| {
            if gzip {
                DataError::Gzip {
                    path: path.to_path_buf(),
                    source: e,
                }
            } else {
                DataError::io(path, e)
            }
        })?;
        let parse_err = |reason: String| DataError::Parse {
            path: path.to_path_buf(),
            line: i + 1,
            reason,
        };
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.is_empty() {
            continue;
        }
        if fields.len() != cols {
            return Err(parse_err(format!(
                "expected {cols} numbers, found {}",
                fields.len()
            )));
        }
        for f in fields {
            let v: f32 = f
                .parse()
                .map_err(|_| parse_err(format!("{f:?} is not a number")))?;
            if !v.is_finite() {
                return Err(parse_err(format!("{f:?} is not finite")));
            }
            out.push(v);
        }
    }
    Ok(out)
}

/// Paths of the diabetes feature and target files under `root`.
pub fn diabetes_paths(root: &Path) -> (PathBuf, PathBuf) {
    let dir = root.join(DIABETES_DIR);
    (dir.join(DIABETES_DATA_FILE), dir.join(DIABETES_TARGET_FILE))
}

/// Loads the raw diabetes table (442 rows, 10 unscaled features) from
/// `<root>/diabetes/`.
pub fn load_diabetes(root: impl AsRef<Path>) -> Result<Table> {
    let (dp, tp) = diabetes_paths(root.as_ref());
    let dp = find_file(dp, || "diabetes features".into())?;
    let tp = find_file(tp, || "diabetes target".into())?;
    let features = DIABETES_FEATURES.len();
    let x = read_numbers(&dp, features)?;
    let y = read_numbers(&tp, 1)?;
    let n = x.len() / features;
    for (path, rows) in [(&dp, n), (&tp, y.len())] {
        if rows != DIABETES_ROWS {
            return Err(DataError::Parse {
                path: path.clone(),
                line: rows,
                reason: format!("expected {DIABETES_ROWS} rows, found {rows}"),
            });
        }
    }
    Ok(Table {
        x,
        y,
        n,
        features,
        feature_names: DIABETES_FEATURES.iter().map(|s| s.to_string()).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::super::idx::testutil::{gzip, write};
    use super::super::mnist::data_root;
    use super::*;

    fn fake_root(rows: usize, gz: bool) -> tempfile::TempDir {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join(DIABETES_DIR);
        std::fs::create_dir_all(&dir).unwrap();
        let data: String = (0..rows)
            .map(|i| {
                (0..10)
                    .map(|j| format!("{}", i * 10 + j))
                    .collect::<Vec<_>>()
                    .join(" ")
                    + "\n"
            })
            .collect();
        let target: String = (0..rows)
            .map(|i| format!("{:.18e}\n", i as f64 * 0.5))
            .collect();
        let (d, t, sfx) = if gz {
            (gzip(data.as_bytes()), gzip(target.as_bytes()), ".gz")
        } else {
            (data.into_bytes(), target.into_bytes(), "")
        };
        write(&dir, &format!("{DIABETES_DATA_FILE}{sfx}"), &d);
        write(&dir, &format!("{DIABETES_TARGET_FILE}{sfx}"), &t);
        root
    }

    #[test]
    fn loads_synthetic_table_raw_and_gz() {
        for gz in [false, true] {
            let root = fake_root(DIABETES_ROWS, gz);
            let t = load_diabetes(root.path()).unwrap();
            assert_eq!(
                (t.n, t.features, t.x.len(), t.y.len()),
                (442, 10, 4420, 442)
            );
            assert_eq!(t.row(3).unwrap()[2], 32.0);
            assert_eq!(t.y[5], 2.5);
            assert_eq!(t.feature_names[2], "bmi");
        }
    }

    #[test]
    fn malformed_tables_are_errors() {
        let root = fake_root(441, false);
        let err = load_diabetes(root.path()).unwrap_err();
        assert!(
            err.to_string().contains("expected 442 rows, found 441"),
            "{err}"
        );

        let root = fake_root(442, false);
        let dir = root.path().join(DIABETES_DIR);
        std::fs::write(dir.join(DIABETES_DATA_FILE), "1 2 3\n").unwrap();
        let err = load_diabetes(root.path()).unwrap_err();
        assert!(matches!(err, DataError::Parse { line: 1, .. }), "{err}");
        std::fs::write(dir.join(DIABETES_DATA_FILE), "1 2 3 4 5 6 7 8 9 x\n").unwrap();
        let err = load_diabetes(root.path()).unwrap_err();
        assert!(err.to_string().contains("\"x\" is not a number"), "{err}");

        let empty = tempfile::tempdir().unwrap();
        let err = load_diabetes(empty.path()).unwrap_err();
        assert!(matches!(err, DataError::Missing { .. }), "{err}");
        assert!(err.to_string().contains("scripts/setup-data.sh"), "{err}");
    }

    #[test]
    fn zscore_columns() {
        let x = vec![1.0, 10.0, 5.0, 3.0, 10.0, 5.0, 5.0, 10.0, 5.0];
        let z = ZScore::fit(&x, 3).unwrap();
        assert_eq!(z.mean, vec![3.0, 10.0, 5.0]);
        assert!((z.std[0] - (8.0f32 / 3.0).sqrt()).abs() < 1e-6);
        assert_eq!(&z.std[1..], &[1.0, 1.0], "constant columns get std 1");
        let mut t = x.clone();
        z.transform(&mut t).unwrap();
        let col0: Vec<f32> = t.chunks(3).map(|r| r[0]).collect();
        assert!(col0.iter().sum::<f32>().abs() < 1e-6);
        assert!((col0.iter().map(|v| v * v).sum::<f32>() / 3.0 - 1.0).abs() < 1e-5);
        assert_eq!(t[1], 0.0);
        z.inverse_transform(&mut t).unwrap();
        for (a, b) in t.iter().zip(&x) {
            assert!((a - b).abs() < 1e-5);
        }
        assert!(ZScore::fit(&x, 2).is_err());
        assert!(ZScore::fit(&[], 1).is_err());
        assert!(z.transform(&mut [1.0, 2.0]).is_err());
    }

    #[test]
    fn split_is_seeded_disjoint_and_complete() {
        let root = fake_root(DIABETES_ROWS, false);
        let t = load_diabetes(root.path()).unwrap();
        let (tr, te) = t.split(0.2, 42).unwrap();
        assert_eq!((tr.n, te.n), (354, 88));
        assert_eq!(tr.x.len(), 3540);
        let (tr2, te2) = t.split(0.2, 42).unwrap();
        assert_eq!((&tr, &te), (&tr2, &te2));
        let (tr3, _) = t.split(0.2, 43).unwrap();
        assert_ne!(tr.y, tr3.y);
        // Row i has features 10i..10i+9 and target i/2: recover the indices.
        let mut ids: Vec<usize> =
            tr.y.iter()
                .chain(&te.y)
                .map(|&v| (v * 2.0) as usize)
                .collect();
        for (k, &i) in ids.iter().enumerate() {
            let row = if k < tr.n {
                tr.row(k)
            } else {
                te.row(k - tr.n)
            };
            assert_eq!(row.unwrap()[0], (i * 10) as f32);
        }
        ids.sort_unstable();
        assert_eq!(ids, (0..442).collect::<Vec<_>>());
        for bad in [0.0, 1.0, -0.1, f64::NAN, 0.0001] {
            assert!(t.split(bad, 0).is_err(), "{bad}");
        }
        assert!(t.select(&[442]).is_err());
    }

    #[test]
    fn real_diabetes() {
        let t = match load_diabetes(data_root()) {
            Ok(t) => t,
            Err(DataError::Missing { path, .. }) => {
                println!(
                    "skipping real diabetes check: {} is missing (run scripts/setup-data.sh)",
                    path.display()
                );
                return;
            }
            Err(e) => panic!("{e}"),
        };
        assert_eq!((t.n, t.features), (442, 10));
        // First row of the raw file and the first target.
        assert_eq!(
            t.row(0).unwrap(),
            &[59.0, 2.0, 32.1, 101.0, 157.0, 93.2, 38.0, 4.0, 4.8598, 87.0]
        );
        assert_eq!(t.y[0], 151.0);
        let (ymin, ymax) =
            t.y.iter()
                .fold((f32::MAX, f32::MIN), |(a, b), &v| (a.min(v), b.max(v)));
        assert_eq!((ymin, ymax), (25.0, 346.0));
        // sex is coded 1/2 in the raw data.
        assert!((0..t.n).all(|i| matches!(t.row(i).unwrap()[1], 1.0 | 2.0)));
        let z = t.feature_zscore().unwrap();
        assert!((z.mean[0] - 48.518).abs() < 0.01, "mean age {}", z.mean[0]);
    }
}
