//! IDX files, the format of MNIST and Fashion-MNIST.
//!
//! An IDX file is a big-endian header followed by a dense array:
//!
//! ```text
//! magic: u32 = 0x0000 TT DD   (TT = element type, 0x08 = u8; DD = number of dims)
//! dims:  DD x u32
//! data:  product(dims) elements, row-major
//! ```
//!
//! Only the two layouts MNIST-style data sets use are accepted: u8 images
//! (`0x00000803`, dims `[n, rows, cols]`) and u8 labels (`0x00000801`, dims
//! `[n]`). Files may be raw or gzipped; gzip is recognised by its magic bytes
//! `1f 8b`, whatever the file is called. The payload length is checked
//! exactly: a short file is [`DataError::Truncated`] and extra bytes after the
//! payload are [`DataError::TrailingBytes`].

use std::io::{self, Read};
use std::path::Path;

use super::{DataError, MaybeGz, Result, read_full};

/// Magic number of an IDX file of u8 images, dims `[n, rows, cols]`.
pub const IMAGES_MAGIC: u32 = 0x0000_0803;
/// Magic number of an IDX file of u8 labels, dims `[n]`.
pub const LABELS_MAGIC: u32 = 0x0000_0801;

/// How many trailing bytes are counted before giving up (a gzip bomb must not
/// make the error path slow).
const TRAILING_COUNT_CAP: u64 = 64 << 20;

/// `n` grey-scale images of `rows x cols` u8 pixels, row-major, image after image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdxImages {
    pub n: usize,
    pub rows: usize,
    pub cols: usize,
    /// `n * rows * cols` pixels.
    pub pixels: Vec<u8>,
}

impl IdxImages {
    /// Number of images.
    pub fn len(&self) -> usize {
        self.n
    }

    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// The pixels of image `i`, or `None` past the end.
    pub fn image(&self, i: usize) -> Option<&[u8]> {
        let sz = self.rows * self.cols;
        (i < self.n).then(|| &self.pixels[i * sz..(i + 1) * sz])
    }
}

/// One u8 label per sample.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdxLabels(pub Vec<u8>);

impl IdxLabels {
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn as_slice(&self) -> &[u8] {
        &self.0
    }
}

/// Reads an IDX image file (`0x00000803`), raw or gzipped.
pub fn read_images(path: impl AsRef<Path>) -> Result<IdxImages> {
    let path = path.as_ref();
    let (dims, pixels) = read_u8_array(path, IMAGES_MAGIC)?;
    let (n, rows, cols) = (dims[0], dims[1], dims[2]);
    if rows == 0 || cols == 0 {
        return Err(DataError::BadHeader {
            path: path.to_path_buf(),
            reason: format!("images are {rows}x{cols}; both sides must be at least 1"),
        });
    }
    Ok(IdxImages {
        n,
        rows,
        cols,
        pixels,
    })
}

/// Reads an IDX label file (`0x00000801`), raw or gzipped.
pub fn read_labels(path: impl AsRef<Path>) -> Result<IdxLabels> {
    let (_, labels) = read_u8_array(path.as_ref(), LABELS_MAGIC)?;
    Ok(IdxLabels(labels))
}

/// Reads an image file and its label file and checks they hold the same
/// number of samples.
pub fn load_pair(
    images: impl AsRef<Path>,
    labels: impl AsRef<Path>,
) -> Result<(IdxImages, IdxLabels)> {
    let (ip, lp) = (images.as_ref(), labels.as_ref());
    let imgs = read_images(ip)?;
    let labs = read_labels(lp)?;
    if imgs.n != labs.len() {
        return Err(DataError::CountMismatch {
            images_path: ip.to_path_buf(),
            labels_path: lp.to_path_buf(),
            images: imgs.n,
            labels: labs.len(),
        });
    }
    Ok((imgs, labs))
}

fn ndims_of(magic: u32) -> usize {
    (magic & 0xff) as usize
}

fn describe_magic(found: u32) -> String {
    match found {
        IMAGES_MAGIC => "this is an IDX image file (u8, 3 dims)".into(),
        LABELS_MAGIC => "this is an IDX label file (u8, 1 dim)".into(),
        m if m >> 16 != 0 => "not an IDX file: the first two bytes must be zero".into(),
        m => {
            let ty = match (m >> 8) & 0xff {
                0x08 => "u8",
                0x09 => "i8",
                0x0b => "i16",
                0x0c => "i32",
                0x0d => "f32",
                0x0e => "f64",
                _ => "unknown type",
            };
            format!(
                "an IDX file of {ty} with {} dims, which is not supported",
                m & 0xff
            )
        }
    }
}

/// Reads a u8 IDX array with the given magic; returns its dims and payload.
fn read_u8_array(path: &Path, expected_magic: u32) -> Result<(Vec<usize>, Vec<u8>)> {
    let mut r = MaybeGz::open(path)?;
    let ndims = ndims_of(expected_magic);
    let header_len = 4 + 4 * ndims as u64;
    let mut header = vec![0u8; header_len as usize];

    let got = read_full(&mut r, &mut header[..4]).map_err(|e| r.err(path, e))?;
    if got < 4 {
        return Err(DataError::Truncated {
            path: path.to_path_buf(),
            what: "IDX header",
            expected: header_len,
            actual: got as u64,
        });
    }
    let found = u32::from_be_bytes([header[0], header[1], header[2], header[3]]);
    if found != expected_magic {
        return Err(DataError::BadMagic {
            path: path.to_path_buf(),
            expected: expected_magic,
            found,
            reason: describe_magic(found),
        });
    }
    let got = read_full(&mut r, &mut header[4..]).map_err(|e| r.err(path, e))?;
    if got < 4 * ndims {
        return Err(DataError::Truncated {
            path: path.to_path_buf(),
            what: "IDX header",
            expected: header_len,
            actual: 4 + got as u64,
        });
    }

    let dims: Vec<usize> = header[4..]
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize)
        .collect();
    let expected = dims
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(d as u64))
        .filter(|&b| b <= isize::MAX as u64)
        .ok_or_else(|| DataError::BadHeader {
            path: path.to_path_buf(),
            reason: format!("dims {dims:?} describe more bytes than can be addressed"),
        })?;

    // No up-front allocation of `expected` bytes: a lying header on a short
    // file must give `Truncated`, not an out-of-memory abort.
    let mut payload = Vec::with_capacity(expected.min(64 << 20) as usize);
    (&mut r)
        .take(expected)
        .read_to_end(&mut payload)
        .map_err(|e| r.err(path, e))?;
    let actual = payload.len() as u64;
    if actual < expected {
        return Err(DataError::Truncated {
            path: path.to_path_buf(),
            what: if expected_magic == IMAGES_MAGIC {
                "image payload"
            } else {
                "label payload"
            },
            expected,
            actual,
        });
    }

    let extra = io::copy(&mut (&mut r).take(TRAILING_COUNT_CAP + 1), &mut io::sink())
        .map_err(|e| r.err(path, e))?;
    if extra > 0 {
        return Err(DataError::TrailingBytes {
            path: path.to_path_buf(),
            expected,
            extra: extra.min(TRAILING_COUNT_CAP),
            at_least: extra > TRAILING_COUNT_CAP,
        });
    }
    Ok((dims, payload))
}

/// Test helpers that build IDX files in memory.
#[cfg(test)]
pub(crate) mod testutil {
    use std::io::Write;
    use std::path::{Path, PathBuf};

    pub fn idx_bytes(magic: u32, dims: &[u32], payload: &[u8]) -> Vec<u8> {
        let mut v = magic.to_be_bytes().to_vec();
        for d in dims {
            v.extend_from_slice(&d.to_be_bytes());
        }
        v.extend_from_slice(payload);
        v
    }

    pub fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(bytes).unwrap();
        enc.finish().unwrap()
    }

    pub fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }

    /// `n` images of `rows x cols` whose pixel k of image i is `(i * 31 + k) % 256`.
    pub fn pattern(n: usize, rows: usize, cols: usize) -> Vec<u8> {
        (0..n)
            .flat_map(|i| (0..rows * cols).map(move |k| ((i * 31 + k) % 256) as u8))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::testutil::*;
    use super::*;

    fn images_file(n: u32, r: u32, c: u32) -> Vec<u8> {
        idx_bytes(
            IMAGES_MAGIC,
            &[n, r, c],
            &pattern(n as usize, r as usize, c as usize),
        )
    }

    #[test]
    fn parses_raw_and_gzipped_images_and_labels() {
        let dir = tempfile::tempdir().unwrap();
        let raw = images_file(3, 4, 5);
        let labels = idx_bytes(LABELS_MAGIC, &[3], &[7, 2, 9]);
        // Names deliberately lie: gzip is detected by content, not extension.
        let cases = [
            (
                write(dir.path(), "a-images", &raw),
                write(dir.path(), "a-labels", &labels),
            ),
            (
                write(dir.path(), "b-images", &gzip(&raw)),
                write(dir.path(), "b-labels.gz", &gzip(&labels)),
            ),
            (
                write(dir.path(), "c-images.gz", &raw),
                write(dir.path(), "c-labels", &gzip(&labels)),
            ),
        ];
        for (ip, lp) in cases {
            let imgs = read_images(&ip).unwrap();
            assert_eq!((imgs.n, imgs.rows, imgs.cols), (3, 4, 5));
            assert_eq!(imgs.pixels, pattern(3, 4, 5));
            assert_eq!(imgs.image(1).unwrap(), &pattern(3, 4, 5)[20..40]);
            assert!(imgs.image(3).is_none());
            assert_eq!(read_labels(&lp).unwrap().as_slice(), &[7, 2, 9]);
            let (i2, l2) = load_pair(&ip, &lp).unwrap();
            assert_eq!((i2.n, l2.len()), (3, 3));
        }
    }

    #[test]
    fn empty_set_is_fine() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), "i", &idx_bytes(IMAGES_MAGIC, &[0, 28, 28], &[]));
        let imgs = read_images(&p).unwrap();
        assert!(imgs.is_empty() && imgs.pixels.is_empty());
    }

    #[test]
    fn bad_magic_is_rejected() {
        let dir = tempfile::tempdir().unwrap();
        // A label file passed as images, and vice versa.
        let l = write(dir.path(), "l", &idx_bytes(LABELS_MAGIC, &[2], &[1, 2]));
        let i = write(dir.path(), "i", &images_file(2, 2, 2));
        match read_images(&l).unwrap_err() {
            DataError::BadMagic {
                expected,
                found,
                path,
                reason,
            } => {
                assert_eq!((expected, found), (IMAGES_MAGIC, LABELS_MAGIC));
                assert_eq!(path, l);
                assert!(reason.contains("label"), "{reason}");
            }
            e => panic!("unexpected {e}"),
        }
        assert!(matches!(
            read_labels(&i).unwrap_err(),
            DataError::BadMagic {
                found: IMAGES_MAGIC,
                ..
            }
        ));
        // Wrong element type (i32 images), and something that is not IDX at all.
        let t = write(
            dir.path(),
            "t",
            &idx_bytes(0x0000_0c03, &[1, 1, 1], &[0; 4]),
        );
        let err = read_images(&t).unwrap_err();
        assert!(err.to_string().contains("0x00000c03"), "{err}");
        assert!(err.to_string().contains("i32"), "{err}");
        let junk = write(dir.path(), "j", b"PK\x03\x04 this is a zip");
        let err = read_images(&junk).unwrap_err();
        assert!(matches!(err, DataError::BadMagic { .. }), "{err}");
        assert!(err.to_string().contains("not an IDX file"), "{err}");
        // Bad magic inside a gzip is still a bad magic.
        let gz = write(
            dir.path(),
            "g",
            &gzip(&idx_bytes(0x0000_0802, &[1, 1], &[0])),
        );
        assert!(matches!(
            read_labels(&gz).unwrap_err(),
            DataError::BadMagic { found: 0x802, .. }
        ));
    }

    #[test]
    fn truncated_payload_names_expected_and_actual() {
        let dir = tempfile::tempdir().unwrap();
        let full = images_file(3, 4, 5); // 16 + 60 bytes
        for (name, bytes) in [
            ("raw", full[..full.len() - 7].to_vec()),
            ("gz", gzip(&full[..full.len() - 7])),
        ] {
            let p = write(dir.path(), name, &bytes);
            let err = read_images(&p).unwrap_err();
            match &err {
                DataError::Truncated {
                    expected,
                    actual,
                    what,
                    ..
                } => {
                    assert_eq!((*expected, *actual, *what), (60, 53, "image payload"));
                }
                e => panic!("unexpected {e}"),
            }
            let msg = err.to_string();
            assert!(msg.contains("expected 60 bytes, found 53"), "{msg}");
            assert!(msg.contains(name), "{msg}");
        }
        let lp = write(dir.path(), "l", &idx_bytes(LABELS_MAGIC, &[5], &[1, 2]));
        assert!(matches!(
            read_labels(&lp).unwrap_err(),
            DataError::Truncated {
                expected: 5,
                actual: 2,
                what: "label payload",
                ..
            }
        ));
    }

    #[test]
    fn truncated_header_and_empty_file() {
        let dir = tempfile::tempdir().unwrap();
        let e = write(dir.path(), "empty", &[]);
        assert!(matches!(
            read_images(&e).unwrap_err(),
            DataError::Truncated {
                what: "IDX header",
                expected: 16,
                actual: 0,
                ..
            }
        ));
        let h = write(dir.path(), "h", &images_file(1, 1, 1)[..10]);
        assert!(matches!(
            read_images(&h).unwrap_err(),
            DataError::Truncated {
                what: "IDX header",
                expected: 16,
                actual: 10,
                ..
            }
        ));
    }

    #[test]
    fn lying_header_does_not_allocate_it() {
        // Claims 4G x 4G x 4G pixels: overflow is a header error.
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            dir.path(),
            "big",
            &idx_bytes(IMAGES_MAGIC, &[u32::MAX; 3], &[1, 2]),
        );
        assert!(matches!(
            read_images(&p).unwrap_err(),
            DataError::BadHeader { .. }
        ));
        // Claims ~4 GB that is addressable: must come back as Truncated quickly.
        let p = write(
            dir.path(),
            "big2",
            &idx_bytes(LABELS_MAGIC, &[u32::MAX], &[1, 2]),
        );
        assert!(matches!(
            read_labels(&p).unwrap_err(),
            DataError::Truncated {
                expected: 4_294_967_295,
                actual: 2,
                ..
            }
        ));
        let p = write(
            dir.path(),
            "zero",
            &idx_bytes(IMAGES_MAGIC, &[1, 0, 3], &[]),
        );
        assert!(matches!(
            read_images(&p).unwrap_err(),
            DataError::BadHeader { .. }
        ));
    }

    #[test]
    fn trailing_bytes_are_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let mut bytes = images_file(2, 3, 3);
        bytes.extend_from_slice(&[0xde, 0xad, 0xbe]);
        for (name, b) in [("raw", bytes.clone()), ("gz", gzip(&bytes))] {
            let p = write(dir.path(), name, &b);
            let err = read_images(&p).unwrap_err();
            assert!(
                matches!(
                    err,
                    DataError::TrailingBytes {
                        expected: 18,
                        extra: 3,
                        at_least: false,
                        ..
                    }
                ),
                "{err}"
            );
        }
    }

    #[test]
    fn corrupt_gzip_is_a_gzip_error() {
        let dir = tempfile::tempdir().unwrap();
        let gz = gzip(&images_file(4, 8, 8));
        // Cut the compressed stream itself.
        let p = write(dir.path(), "cut.gz", &gz[..gz.len() / 2]);
        let err = read_images(&p).unwrap_err();
        assert!(
            matches!(err, DataError::Gzip { .. } | DataError::Truncated { .. }),
            "{err}"
        );
        // Garbage after the gzip magic.
        let p = write(dir.path(), "bad.gz", &[0x1f, 0x8b, 0, 0, 0, 0]);
        let err = read_images(&p).unwrap_err();
        assert!(matches!(err, DataError::Gzip { .. }), "{err}");
    }

    #[test]
    fn count_mismatch_names_both_files() {
        let dir = tempfile::tempdir().unwrap();
        let ip = write(dir.path(), "imgs", &images_file(3, 2, 2));
        let lp = write(dir.path(), "labs", &idx_bytes(LABELS_MAGIC, &[2], &[0, 1]));
        let err = load_pair(&ip, &lp).unwrap_err();
        assert!(
            matches!(
                err,
                DataError::CountMismatch {
                    images: 3,
                    labels: 2,
                    ..
                }
            ),
            "{err}"
        );
        let msg = err.to_string();
        assert!(msg.contains("imgs") && msg.contains("labs"), "{msg}");
    }

    #[test]
    fn missing_file_is_an_io_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("nope");
        let err = read_labels(&p).unwrap_err();
        assert!(matches!(err, DataError::Io { .. }), "{err}");
        assert!(err.to_string().contains("nope"));
    }
}
