//! MNIST and Fashion-MNIST as `f32` image sets.
//!
//! Files are looked up as `<root>/<dir_name>/<split>-images-idx3-ubyte` and
//! `<root>/<dir_name>/<split>-labels-idx1-ubyte` (`split` is `train` or
//! `t10k`); a `.gz` twin is used when the plain file is absent.

use std::path::{Path, PathBuf};

use super::idx::load_pair;
use super::{DataError, Result};

/// Which 28x28 grey-scale, 10-class data set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Dataset {
    Mnist,
    FashionMnist,
}

impl Dataset {
    pub const ALL: [Dataset; 2] = [Dataset::Mnist, Dataset::FashionMnist];

    /// Folder under the data root.
    pub fn dir_name(self) -> &'static str {
        match self {
            Dataset::Mnist => "mnist",
            Dataset::FashionMnist => "fashion-mnist",
        }
    }

    /// Human-readable name.
    pub fn name(self) -> &'static str {
        match self {
            Dataset::Mnist => "MNIST",
            Dataset::FashionMnist => "Fashion-MNIST",
        }
    }

    pub fn classes(self) -> usize {
        10
    }

    /// Names of the classes, indexed by label.
    pub fn class_names(self) -> [&'static str; 10] {
        match self {
            Dataset::Mnist => ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"],
            Dataset::FashionMnist => [
                "T-shirt/top",
                "Trouser",
                "Pullover",
                "Dress",
                "Coat",
                "Sandal",
                "Shirt",
                "Sneaker",
                "Bag",
                "Ankle boot",
            ],
        }
    }

    /// Per-channel (mean, std) of the training images scaled to `[0, 1]`, for
    /// [`Normalize`](super::Normalize).
    pub fn mean_std(self) -> (f32, f32) {
        match self {
            Dataset::Mnist => (0.1307, 0.3081),
            Dataset::FashionMnist => (0.2860, 0.3530),
        }
    }

    pub const HEIGHT: usize = 28;
    pub const WIDTH: usize = 28;
}

impl std::fmt::Display for Dataset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Training or test part of a data set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Split {
    Train,
    Test,
}

impl Split {
    /// File-name prefix used by the IDX distribution.
    pub fn file_prefix(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Test => "t10k",
        }
    }
}

/// Images as `f32`, NCHW, plus integer labels.
#[derive(Clone, Debug, PartialEq)]
pub struct ImageSet {
    /// `n * channels * height * width` values, row-major NCHW. Pixels loaded
    /// from IDX files are scaled to `[0, 1]`.
    pub images: Vec<f32>,
    /// `n` labels, each `< classes`.
    pub labels: Vec<u32>,
    pub n: usize,
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    pub classes: usize,
}

impl ImageSet {
    /// Values per sample (`channels * height * width`).
    pub fn sample_len(&self) -> usize {
        self.channels * self.height * self.width
    }

    pub fn len(&self) -> usize {
        self.n
    }

    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// Sample `i` as `[C, H, W]`, or `None` past the end.
    pub fn image(&self, i: usize) -> Option<&[f32]> {
        let s = self.sample_len();
        (i < self.n).then(|| &self.images[i * s..(i + 1) * s])
    }

    /// Checks that the fields agree with each other (they are public, so a
    /// hand-built set may not).
    pub fn validate(&self) -> Result<()> {
        let s = self
            .channels
            .checked_mul(self.height)
            .and_then(|v| v.checked_mul(self.width));
        let want = s.and_then(|s| s.checked_mul(self.n));
        if want != Some(self.images.len()) || s == Some(0) {
            return Err(DataError::invalid(
                "image set",
                format!(
                    "{} values for n={} c={} h={} w={} (need a non-empty n*c*h*w)",
                    self.images.len(),
                    self.n,
                    self.channels,
                    self.height,
                    self.width
                ),
            ));
        }
        if self.labels.len() != self.n {
            return Err(DataError::invalid(
                "image set",
                format!("{} labels for {} images", self.labels.len(), self.n),
            ));
        }
        if let Some((i, &l)) = self
            .labels
            .iter()
            .enumerate()
            .find(|&(_, &l)| l as usize >= self.classes)
        {
            return Err(DataError::invalid(
                "image set",
                format!("label {l} at index {i} is not below {}", self.classes),
            ));
        }
        Ok(())
    }

    /// The first `k` samples (all of them when `k >= n`).
    pub fn take(&self, k: usize) -> ImageSet {
        let k = k.min(self.n);
        ImageSet {
            images: self.images[..k * self.sample_len()].to_vec(),
            labels: self.labels[..k].to_vec(),
            n: k,
            ..*self
        }
    }
}

/// The data root: `$WGRAD_DATA` when set and non-empty, otherwise the `data/`
/// folder at the root of this repository.
pub fn data_root() -> PathBuf {
    match std::env::var_os("WGRAD_DATA") {
        Some(v) if !v.is_empty() => PathBuf::from(v),
        _ => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data"),
    }
}

/// `path` if it exists, else `path.gz` if that exists, else a
/// [`DataError::Missing`] that says how to get it.
pub(crate) fn find_file(path: PathBuf, what: impl FnOnce() -> String) -> Result<PathBuf> {
    if path.is_file() {
        return Ok(path);
    }
    let mut gz = path.clone().into_os_string();
    gz.push(".gz");
    let gz = PathBuf::from(gz);
    if gz.is_file() {
        return Ok(gz);
    }
    Err(DataError::Missing { path, what: what() })
}

/// Paths of the image and label files of a split (they may not exist).
pub fn paths(root: &Path, dataset: Dataset, split: Split) -> (PathBuf, PathBuf) {
    let dir = root.join(dataset.dir_name());
    let p = split.file_prefix();
    (
        dir.join(format!("{p}-images-idx3-ubyte")),
        dir.join(format!("{p}-labels-idx1-ubyte")),
    )
}

/// Loads one split of MNIST or Fashion-MNIST from `root` as 1x28x28 images
/// scaled to `[0, 1]` and labels `0..10`.
pub fn load(root: impl AsRef<Path>, dataset: Dataset, split: Split) -> Result<ImageSet> {
    let (ip, lp) = paths(root.as_ref(), dataset, split);
    let what = |kind: &str| format!("{dataset} {} {kind}", split.file_prefix());
    let ip = find_file(ip, || what("images"))?;
    let lp = find_file(lp, || what("labels"))?;
    let (imgs, labs) = load_pair(&ip, &lp)?;
    if (imgs.rows, imgs.cols) != (Dataset::HEIGHT, Dataset::WIDTH) {
        return Err(DataError::BadShape {
            path: ip,
            rows: imgs.rows,
            cols: imgs.cols,
            expected_rows: Dataset::HEIGHT,
            expected_cols: Dataset::WIDTH,
        });
    }
    let classes = dataset.classes();
    if let Some((index, &l)) = labs
        .as_slice()
        .iter()
        .enumerate()
        .find(|&(_, &l)| l as usize >= classes)
    {
        return Err(DataError::BadLabel {
            path: lp,
            index,
            label: l as u32,
            classes,
        });
    }
    Ok(ImageSet {
        images: imgs.pixels.iter().map(|&p| p as f32 / 255.0).collect(),
        labels: labs.0.iter().map(|&l| l as u32).collect(),
        n: imgs.n,
        channels: 1,
        height: imgs.rows,
        width: imgs.cols,
        classes,
    })
}

#[cfg(test)]
mod tests {
    use super::super::idx::testutil::*;
    use super::super::idx::{IMAGES_MAGIC, LABELS_MAGIC};
    use super::*;

    fn fake_root(dataset: Dataset, n: u32, labels: &[u8], gz: bool) -> tempfile::TempDir {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join(dataset.dir_name());
        std::fs::create_dir_all(&dir).unwrap();
        let img = idx_bytes(IMAGES_MAGIC, &[n, 28, 28], &pattern(n as usize, 28, 28));
        let lab = idx_bytes(LABELS_MAGIC, &[labels.len() as u32], labels);
        let (img, lab, sfx) = if gz {
            (gzip(&img), gzip(&lab), ".gz")
        } else {
            (img, lab, "")
        };
        write(&dir, &format!("t10k-images-idx3-ubyte{sfx}"), &img);
        write(&dir, &format!("t10k-labels-idx1-ubyte{sfx}"), &lab);
        root
    }

    #[test]
    fn loads_synthetic_split_raw_and_gz() {
        for gz in [false, true] {
            let root = fake_root(Dataset::FashionMnist, 3, &[9, 0, 4], gz);
            let set = load(root.path(), Dataset::FashionMnist, Split::Test).unwrap();
            set.validate().unwrap();
            assert_eq!(
                (set.n, set.channels, set.height, set.width, set.classes),
                (3, 1, 28, 28, 10)
            );
            assert_eq!(set.labels, vec![9, 0, 4]);
            assert_eq!(set.images.len(), 3 * 784);
            let raw = pattern(3, 28, 28);
            assert_eq!(set.images[5], raw[5] as f32 / 255.0);
            assert!(set.images.iter().all(|&v| (0.0..=1.0).contains(&v)));
            assert_eq!(set.take(2).n, 2);
            assert_eq!(set.image(2).unwrap().len(), 784);
        }
    }

    #[test]
    fn missing_files_say_to_run_setup() {
        let root = tempfile::tempdir().unwrap();
        let err = load(root.path(), Dataset::Mnist, Split::Train).unwrap_err();
        assert!(matches!(err, DataError::Missing { .. }), "{err}");
        let msg = err.to_string();
        assert!(msg.contains("scripts/setup-data.sh"), "{msg}");
        assert!(msg.contains("train-images-idx3-ubyte"), "{msg}");
        assert!(msg.contains("MNIST"), "{msg}");
    }

    #[test]
    fn bad_labels_and_shapes_are_errors() {
        let root = fake_root(Dataset::Mnist, 2, &[3, 10], false);
        let err = load(root.path(), Dataset::Mnist, Split::Test).unwrap_err();
        assert!(
            matches!(
                err,
                DataError::BadLabel {
                    index: 1,
                    label: 10,
                    ..
                }
            ),
            "{err}"
        );

        let root = fake_root(Dataset::Mnist, 2, &[3, 1, 1], false);
        let err = load(root.path(), Dataset::Mnist, Split::Test).unwrap_err();
        assert!(
            matches!(
                err,
                DataError::CountMismatch {
                    images: 2,
                    labels: 3,
                    ..
                }
            ),
            "{err}"
        );

        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("mnist");
        std::fs::create_dir_all(&dir).unwrap();
        write(
            &dir,
            "t10k-images-idx3-ubyte",
            &idx_bytes(IMAGES_MAGIC, &[1, 32, 32], &[0; 1024]),
        );
        write(
            &dir,
            "t10k-labels-idx1-ubyte",
            &idx_bytes(LABELS_MAGIC, &[1], &[0]),
        );
        let err = load(root.path(), Dataset::Mnist, Split::Test).unwrap_err();
        assert!(
            matches!(
                err,
                DataError::BadShape {
                    rows: 32,
                    cols: 32,
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn validate_catches_inconsistent_sets() {
        let mut s = ImageSet {
            images: vec![0.0; 8],
            labels: vec![0, 1],
            n: 2,
            channels: 1,
            height: 2,
            width: 2,
            classes: 2,
        };
        s.validate().unwrap();
        s.labels[1] = 2;
        assert!(s.validate().is_err());
        s.labels[1] = 1;
        s.images.pop();
        assert!(s.validate().is_err());
    }

    #[test]
    fn data_root_defaults_to_repo_data() {
        // Only meaningful when the variable is unset; never set it here, as
        // tests run in parallel threads of one process.
        if std::env::var_os("WGRAD_DATA").is_none() {
            let r = data_root();
            assert!(r.ends_with("../../data"), "{}", r.display());
            // The repository root it points into exists (data/ itself may not be set up yet).
            assert!(
                Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("../..")
                    .join("Cargo.toml")
                    .is_file()
            );
        }
    }

    /// Loads the real test splits when `scripts/setup-data.sh` has been run.
    #[test]
    fn real_test_splits() {
        let root = data_root();
        for (dataset, first) in [(Dataset::Mnist, 7), (Dataset::FashionMnist, 9)] {
            let set = match load(&root, dataset, Split::Test) {
                Ok(s) => s,
                Err(DataError::Missing { path, .. }) => {
                    println!(
                        "skipping real {dataset} check: {} is missing (run scripts/setup-data.sh)",
                        path.display()
                    );
                    continue;
                }
                Err(e) => panic!("{e}"),
            };
            set.validate().unwrap();
            assert_eq!(set.n, 10_000, "{dataset}");
            assert_eq!(set.images.len(), 10_000 * 784);
            assert!(set.labels.iter().all(|&l| l < 10));
            assert_eq!(set.labels[0], first, "{dataset} first t10k label");
            // Every class is present, roughly balanced.
            let mut counts = [0usize; 10];
            set.labels.iter().for_each(|&l| counts[l as usize] += 1);
            assert!(
                counts.iter().all(|&c| (800..=1200).contains(&c)),
                "{counts:?}"
            );
            // Pixel statistics are close to the published training-set ones.
            let n = set.images.len() as f64;
            let mean = set.images.iter().map(|&v| v as f64).sum::<f64>() / n;
            let var = set
                .images
                .iter()
                .map(|&v| (v as f64 - mean).powi(2))
                .sum::<f64>()
                / n;
            let (m, s) = dataset.mean_std();
            assert!((mean - m as f64).abs() < 0.01, "{dataset} mean {mean}");
            assert!(
                (var.sqrt() - s as f64).abs() < 0.01,
                "{dataset} std {}",
                var.sqrt()
            );
        }
    }
}
