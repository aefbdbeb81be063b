//! Host-side data sets and batching: IDX files (MNIST, Fashion-MNIST), the
//! diabetes regression table, and a seeded, augmenting batch iterator.
//!
//! Everything here is plain Rust on the CPU; nothing touches the GPU. Library
//! functions return [`DataError`], which names the file and what is wrong with
//! it, and never panic on bad files or bad arguments.
//!
//! The data root is `$WGRAD_DATA`, or `<repo>/data` when that is unset (see
//! [`data_root`]); `scripts/setup-data.sh` fills it.

pub mod idx;
pub mod loader;
pub mod mnist;
pub mod regression;

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

pub use idx::{IdxImages, IdxLabels, load_pair, read_images, read_labels};
pub use loader::{
    Augment, Batch, DataLoader, EpochIter, LoaderConfig, Normalize, add_gaussian_noise,
    flip_horizontal, shift_crop,
};
pub use mnist::{Dataset, ImageSet, Split, data_root, load};
pub use regression::{DIABETES_FEATURES, Table, ZScore, load_diabetes};

/// Result type of this module.
pub type Result<T, E = DataError> = std::result::Result<T, E>;

/// Everything that can go wrong loading or batching data.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// A data set file is not on disk.
    #[error(
        "{what} not found at {}: run `scripts/setup-data.sh` to fetch it \
         (files go under $WGRAD_DATA, or <repo>/data when that is unset)",
        .path.display()
    )]
    Missing { path: PathBuf, what: String },

    /// The file could not be opened or read.
    #[error("cannot read {}: {source}", .path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The file starts like gzip (1f 8b) but does not decompress.
    #[error("{} is not a valid gzip stream: {source}", .path.display())]
    Gzip {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The IDX magic number is not the one expected.
    #[error("{}: bad IDX magic 0x{found:08x}, expected 0x{expected:08x} ({reason})", .path.display())]
    BadMagic {
        path: PathBuf,
        expected: u32,
        found: u32,
        reason: String,
    },

    /// The IDX header is present but describes an unusable array.
    #[error("{}: bad IDX header: {reason}", .path.display())]
    BadHeader { path: PathBuf, reason: String },

    /// The file ends before the data its header announces.
    #[error(
        "{}: truncated {what}: expected {expected} bytes, found {actual}",
        .path.display()
    )]
    Truncated {
        path: PathBuf,
        what: &'static str,
        expected: u64,
        actual: u64,
    },

    /// The file goes on after the data its header announces.
    #[error(
        "{}: {extra} unexpected trailing byte(s) after the {expected}-byte payload{}",
        .path.display(),
        if *.at_least { " (at least; stopped counting)" } else { "" }
    )]
    TrailingBytes {
        path: PathBuf,
        expected: u64,
        extra: u64,
        at_least: bool,
    },

    /// Image and label files disagree on the number of samples.
    #[error(
        "{} holds {images} images but {} holds {labels} labels",
        .images_path.display(),
        .labels_path.display()
    )]
    CountMismatch {
        images_path: PathBuf,
        labels_path: PathBuf,
        images: usize,
        labels: usize,
    },

    /// The images are not the size the data set defines.
    #[error("{}: images are {rows}x{cols}, expected {expected_rows}x{expected_cols}", .path.display())]
    BadShape {
        path: PathBuf,
        rows: usize,
        cols: usize,
        expected_rows: usize,
        expected_cols: usize,
    },

    /// A label is outside `0..classes`.
    #[error("{}: label {label} at index {index} is not below the class count {classes}", .path.display())]
    BadLabel {
        path: PathBuf,
        index: usize,
        label: u32,
        classes: usize,
    },

    /// A text table (CSV-like) has a malformed line.
    #[error("{}:{line}: {reason}", .path.display())]
    Parse {
        path: PathBuf,
        line: usize,
        reason: String,
    },

    /// A caller-supplied argument or configuration is invalid.
    #[error("invalid {what}: {reason}")]
    InvalidArgument { what: &'static str, reason: String },
}

impl DataError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        DataError::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    pub(crate) fn invalid(what: &'static str, reason: impl Into<String>) -> Self {
        DataError::InvalidArgument {
            what,
            reason: reason.into(),
        }
    }
}

/// A reader over a file's contents that transparently gunzips it when it
/// starts with the gzip magic bytes `1f 8b` (the file name does not matter).
pub(crate) struct MaybeGz {
    inner: Box<dyn Read>,
    pub(crate) gzip: bool,
}

impl MaybeGz {
    pub(crate) fn open(path: &Path) -> Result<Self> {
        let file = File::open(path).map_err(|e| DataError::io(path, e))?;
        let mut reader = BufReader::with_capacity(1 << 16, file);
        let mut magic = [0u8; 2];
        let got = read_full(&mut reader, &mut magic).map_err(|e| DataError::io(path, e))?;
        let head = std::io::Cursor::new(magic[..got].to_vec());
        let chained = head.chain(reader);
        let gzip = got == 2 && magic == [0x1f, 0x8b];
        let inner: Box<dyn Read> = if gzip {
            Box::new(flate2::read::MultiGzDecoder::new(chained))
        } else {
            Box::new(chained)
        };
        Ok(MaybeGz { inner, gzip })
    }

    /// Maps a read error to [`DataError::Gzip`] for compressed files and
    /// [`DataError::Io`] otherwise.
    pub(crate) fn err(&self, path: &Path, e: std::io::Error) -> DataError {
        if self.gzip {
            DataError::Gzip {
                path: path.to_path_buf(),
                source: e,
            }
        } else {
            DataError::io(path, e)
        }
    }
}

impl Read for MaybeGz {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.inner.read(buf)
    }
}

/// Reads until `buf` is full or EOF; returns how many bytes were read.
pub(crate) fn read_full(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match r.read(&mut buf[done..]) {
            Ok(0) => break,
            Ok(k) => done += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}
