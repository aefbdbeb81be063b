//! Checkpoints: named tensors plus string metadata in the safetensors format, saved atomically
//! (temp file in the same directory, fsync, rename), so an interrupted save never destroys the
//! previous checkpoint.
//!
//! ```no_run
//! use std::collections::BTreeMap;
//! use std::path::Path;
//! use wgrad_graph::{Device, Tensor};
//! use wgrad_models::checkpoint;
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dev = Device::new()?;
//! let w = Tensor::randn(&[4, 3], 0, &dev)?;
//! let named = vec![("fc.weight".to_string(), w.clone())];
//! let meta = BTreeMap::from([("epoch".to_string(), "3".to_string())]);
//! checkpoint::save(Path::new("runs/mlp/last.safetensors"), &named, &meta)?;
//!
//! let ckpt = checkpoint::load(Path::new("runs/mlp/last.safetensors"))?;
//! ckpt.restore_into(&named)?; // checks names and shapes, then overwrites `w` in place
//! assert_eq!(ckpt.metadata["epoch"], "3");
//! # Ok(()) }
//! ```

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use safetensors::tensor::{Dtype, SafeTensorError, SafeTensors, TensorView};
use wgrad_graph::{DType, GraphError, Tensor};

/// Why a checkpoint could not be saved, loaded or restored. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("checkpoint {path}: I/O error: {source}")]
    Io { path: PathBuf, source: io::Error },

    #[error("checkpoint {path}: corrupt or truncated safetensors file: {source}")]
    Format {
        path: PathBuf,
        source: SafeTensorError,
    },

    #[error("checkpoint {path}: tensor '{name}' has dtype {dtype}, which wgrad does not load")]
    UnsupportedDtype {
        path: PathBuf,
        name: String,
        dtype: String,
    },

    #[error("checkpoint {path}: tensor name '{name}' {reason}")]
    BadName {
        path: PathBuf,
        name: String,
        reason: &'static str,
    },

    #[error("checkpoint {path}: tensor '{name}' is missing from the checkpoint")]
    MissingTensor { path: PathBuf, name: String },

    #[error("checkpoint {path}: tensors {names:?} are in the checkpoint but not in the model")]
    UnexpectedTensors { path: PathBuf, names: Vec<String> },

    #[error(
        "checkpoint {path}: tensor '{name}' has shape {found:?} in the checkpoint, {expected:?} in the model"
    )]
    ShapeMismatch {
        path: PathBuf,
        name: String,
        expected: Vec<usize>,
        found: Vec<usize>,
    },

    #[error(
        "checkpoint {path}: tensor '{name}' has dtype {found:?} in the checkpoint, {expected:?} in the model"
    )]
    DTypeMismatch {
        path: PathBuf,
        name: String,
        expected: DType,
        found: DType,
    },

    #[error("checkpoint {path}: tensor '{name}': {source}")]
    Tensor {
        path: PathBuf,
        name: String,
        source: Box<GraphError>,
    },
}

pub type Result<T, E = CheckpointError> = std::result::Result<T, E>;

/// The values of one stored tensor, by element type.
#[derive(Clone, Debug, PartialEq)]
pub enum TensorData {
    F32(Vec<f32>),
    U32(Vec<u32>),
    I32(Vec<i32>),
}

impl TensorData {
    pub fn dtype(&self) -> DType {
        match self {
            TensorData::F32(_) => DType::F32,
            TensorData::U32(_) => DType::U32,
            TensorData::I32(_) => DType::I32,
        }
    }

    pub fn len(&self) -> usize {
        match self {
            TensorData::F32(v) => v.len(),
            TensorData::U32(v) => v.len(),
            TensorData::I32(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One tensor read from a checkpoint.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredTensor {
    pub shape: Vec<usize>,
    pub data: TensorData,
}

impl StoredTensor {
    /// The values if the tensor is f32.
    pub fn as_f32(&self) -> Option<&[f32]> {
        match &self.data {
            TensorData::F32(v) => Some(v),
            _ => None,
        }
    }
}

/// A loaded checkpoint: every tensor by name, and the string metadata.
#[derive(Clone, Debug, PartialEq)]
pub struct Checkpoint {
    /// The file it was loaded from (named in errors).
    pub path: PathBuf,
    pub tensors: BTreeMap<String, StoredTensor>,
    pub metadata: BTreeMap<String, String>,
}

impl Checkpoint {
    pub fn get(&self, name: &str) -> Option<&StoredTensor> {
        self.tensors.get(name)
    }

    /// The tensors whose names start with `prefix`, with the prefix removed (e.g. `"model."` when
    /// one file holds the model and the optimiser state); same path and metadata.
    pub fn with_prefix(&self, prefix: &str) -> Checkpoint {
        Checkpoint {
            path: self.path.clone(),
            tensors: self
                .tensors
                .iter()
                .filter_map(|(k, v)| Some((k.strip_prefix(prefix)?.to_string(), v.clone())))
                .collect(),
            metadata: self.metadata.clone(),
        }
    }

    /// Overwrites each tensor in `named` in place (`Tensor::write`) with the stored tensor of the
    /// same name. The names must match exactly both ways, with equal shapes and dtypes; everything is
    /// checked before anything is written, so an error leaves the model untouched.
    pub fn restore_into(&self, named: &[(String, Tensor)]) -> Result<()> {
        let mut wanted = BTreeSet::new();
        for (name, t) in named {
            let stored = self
                .tensors
                .get(name)
                .ok_or_else(|| CheckpointError::MissingTensor {
                    path: self.path.clone(),
                    name: name.clone(),
                })?;
            if stored.shape != t.shape() {
                return Err(CheckpointError::ShapeMismatch {
                    path: self.path.clone(),
                    name: name.clone(),
                    expected: t.shape().to_vec(),
                    found: stored.shape.clone(),
                });
            }
            if stored.data.dtype() != t.dtype() {
                return Err(CheckpointError::DTypeMismatch {
                    path: self.path.clone(),
                    name: name.clone(),
                    expected: t.dtype(),
                    found: stored.data.dtype(),
                });
            }
            wanted.insert(name.as_str());
        }
        let extra: Vec<String> = self
            .tensors
            .keys()
            .filter(|k| !wanted.contains(k.as_str()))
            .cloned()
            .collect();
        if !extra.is_empty() {
            return Err(CheckpointError::UnexpectedTensors {
                path: self.path.clone(),
                names: extra,
            });
        }
        for (name, t) in named {
            let wrote = match &self.tensors[name].data {
                TensorData::F32(v) => t.write(v),
                TensorData::U32(v) => t.array().write(v).map_err(GraphError::from),
                TensorData::I32(v) => t.array().write(v).map_err(GraphError::from),
            };
            wrote.map_err(|e| CheckpointError::Tensor {
                path: self.path.clone(),
                name: name.clone(),
                source: Box::new(e),
            })?;
        }
        Ok(())
    }
}

/// Reads `tensors` back from the device and writes them with `metadata` to `path` in the
/// safetensors format, atomically (see [`write_atomic`]). Creates the parent directories.
/// Names must be unique and not `__metadata__`.
pub fn save(
    path: &Path,
    tensors: &[(String, Tensor)],
    metadata: &BTreeMap<String, String>,
) -> Result<()> {
    let mut seen = BTreeSet::new();
    let mut host = Vec::with_capacity(tensors.len());
    for (name, t) in tensors {
        let bad = |reason| CheckpointError::BadName {
            path: path.to_path_buf(),
            name: name.clone(),
            reason,
        };
        if name == "__metadata__" {
            return Err(bad("is reserved by the safetensors format"));
        }
        if !seen.insert(name.as_str()) {
            return Err(bad("appears twice"));
        }
        let read = |e| CheckpointError::Tensor {
            path: path.to_path_buf(),
            name: name.clone(),
            source: Box::new(e),
        };
        let (dtype, bytes) = match t.dtype() {
            DType::F32 => (
                Dtype::F32,
                le_bytes(&t.to_vec().map_err(read)?, f32::to_le_bytes),
            ),
            DType::U32 => (
                Dtype::U32,
                le_bytes(&t.to_vec_of::<u32>().map_err(read)?, u32::to_le_bytes),
            ),
            DType::I32 => (
                Dtype::I32,
                le_bytes(&t.to_vec_of::<i32>().map_err(read)?, i32::to_le_bytes),
            ),
        };
        host.push((name.as_str(), dtype, t.shape().to_vec(), bytes));
    }
    let format = |source| CheckpointError::Format {
        path: path.to_path_buf(),
        source,
    };
    let views = host
        .iter()
        .map(|(name, dtype, shape, bytes)| {
            Ok((
                *name,
                TensorView::new(*dtype, shape.clone(), bytes).map_err(format)?,
            ))
        })
        .collect::<Result<Vec<_>>>()?;
    let info: Option<HashMap<String, String>> = (!metadata.is_empty()).then(|| {
        metadata
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    });
    let bytes = safetensors::serialize(views, info).map_err(format)?;
    drop(host);
    write_atomic(path, |f| f.write_all(&bytes)).map_err(|source| CheckpointError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Reads a checkpoint written by [`save`] (or any safetensors file of f32/u32/i32 tensors).
/// A corrupt or truncated file gives [`CheckpointError::Format`], never a panic.
pub fn load(path: &Path) -> Result<Checkpoint> {
    let bytes = fs::read(path).map_err(|source| CheckpointError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let format = |source| CheckpointError::Format {
        path: path.to_path_buf(),
        source,
    };
    let st = SafeTensors::deserialize(&bytes).map_err(format)?;
    let (_, header) = SafeTensors::read_metadata(&bytes).map_err(format)?;
    let metadata = header
        .metadata()
        .as_ref()
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default();
    let mut tensors = BTreeMap::new();
    for (name, view) in st.iter() {
        let raw = view.data();
        let data = match view.dtype() {
            Dtype::F32 => TensorData::F32(from_le_bytes(raw, f32::from_le_bytes)),
            Dtype::U32 => TensorData::U32(from_le_bytes(raw, u32::from_le_bytes)),
            Dtype::I32 => TensorData::I32(from_le_bytes(raw, i32::from_le_bytes)),
            other => {
                return Err(CheckpointError::UnsupportedDtype {
                    path: path.to_path_buf(),
                    name: name.to_string(),
                    dtype: other.to_string(),
                });
            }
        };
        // safetensors validates offsets against shapes; check again rather than trust it.
        let numel = view
            .shape()
            .iter()
            .try_fold(1usize, |a, &d| a.checked_mul(d));
        if numel != Some(data.len()) || !raw.len().is_multiple_of(4) {
            return Err(format(SafeTensorError::InvalidTensorView(
                view.dtype(),
                view.shape().to_vec(),
                raw.len(),
            )));
        }
        tensors.insert(
            name.to_string(),
            StoredTensor {
                shape: view.shape().to_vec(),
                data,
            },
        );
    }
    Ok(Checkpoint {
        path: path.to_path_buf(),
        tensors,
        metadata,
    })
}

/// Writes a file so that `path` holds either its old contents or the complete new ones, never a
/// mix: `write` fills a temp file in the same directory (created if needed), which is fsynced and
/// renamed over `path`; the directory is then fsynced so the rename survives a power cut. On error
/// the temp file is removed and `path` is untouched. (A process killed mid-write leaves a
/// `.NAME.*.tmp` file beside `path`, never a damaged `path`.)
pub fn write_atomic(
    path: &Path,
    write: impl FnOnce(&mut File) -> io::Result<()>,
) -> io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let file_name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"))?;
    fs::create_dir_all(dir)?;
    let prefix = format!(".{}.", file_name.to_string_lossy());
    let mut builder = tempfile::Builder::new();
    builder.prefix(&prefix).suffix(".tmp");
    #[cfg(unix)]
    {
        // Like a plain `File::create` (0666 less the umask) rather than tempfile's 0600.
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(fs::Permissions::from_mode(0o666));
    }
    let mut tmp = builder.tempfile_in(dir)?;
    write(tmp.as_file_mut())?;
    tmp.as_file_mut().flush()?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    // Make the rename durable. Some file systems refuse fsync on a directory; the data is already
    // safe in the renamed file then, so that is not an error.
    #[cfg(unix)]
    if let Err(e) = File::open(dir).and_then(|d| d.sync_all()) {
        log::debug!("fsync of directory {} failed: {e}", dir.display());
    }
    Ok(())
}

fn le_bytes<T: Copy, const N: usize>(v: &[T], f: fn(T) -> [u8; N]) -> Vec<u8> {
    v.iter().flat_map(|&x| f(x)).collect()
}

fn from_le_bytes<T, const N: usize>(raw: &[u8], f: fn([u8; N]) -> T) -> Vec<T> {
    raw.chunks_exact(N)
        .map(|c| {
            let mut b = [0u8; N];
            b.copy_from_slice(c);
            f(b)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use wgrad_graph::Device;

    type TestResult = std::result::Result<(), Box<dyn std::error::Error>>;

    fn sample(dev: &Device) -> std::result::Result<Vec<(String, Tensor)>, GraphError> {
        // Values chosen to stress bit-exactness: subnormals, signed zero, extremes, NaN payload.
        let w = vec![
            1.0f32,
            -0.0,
            f32::MIN_POSITIVE / 3.0,
            f32::MAX,
            f32::MIN,
            std::f32::consts::PI,
            f32::from_bits(0x7fc0_1234),
            f32::INFINITY,
            -1.5e-30,
            0.1,
            7.0,
            -2.25,
        ];
        Ok(vec![
            ("fc1.weight".into(), Tensor::from_vec(w, &[3, 4], dev)?),
            (
                "fc1.bias".into(),
                Tensor::from_vec(vec![0.5, -0.25, 3.0], &[3], dev)?,
            ),
            ("scale".into(), Tensor::scalar(2.5, dev)?),
            (
                "steps".into(),
                Tensor::from_slice(&[7u32, 0, u32::MAX], &[3], dev)?,
            ),
        ])
    }

    fn meta() -> BTreeMap<String, String> {
        BTreeMap::from([
            ("epoch".to_string(), "12".to_string()),
            ("model".to_string(), "mlp 784-128-10".to_string()),
        ])
    }

    fn temps_in(dir: &Path) -> Vec<String> {
        fs::read_dir(dir)
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.ends_with(".tmp"))
                    .collect()
            })
            .unwrap_or_default()
    }

    #[test]
    fn round_trip_is_bit_exact_with_metadata() -> TestResult {
        let dev = Device::new()?;
        let named = sample(&dev)?;
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("runs/a/b/ckpt.safetensors"); // parents are created
        save(&path, &named, &meta())?;
        assert!(temps_in(path.parent().unwrap()).is_empty());

        let ck = load(&path)?;
        assert_eq!(ck.metadata, meta());
        assert_eq!(ck.tensors.len(), named.len());
        for (name, t) in &named {
            let s = ck.get(name).expect("stored");
            assert_eq!(s.shape, t.shape(), "{name}");
            match &s.data {
                TensorData::F32(v) => {
                    let want: Vec<u32> = t.to_vec()?.iter().map(|x| x.to_bits()).collect();
                    let got: Vec<u32> = v.iter().map(|x| x.to_bits()).collect();
                    assert_eq!(got, want, "{name}");
                }
                TensorData::U32(v) => assert_eq!(v, &t.to_vec_of::<u32>()?, "{name}"),
                TensorData::I32(v) => assert_eq!(v, &t.to_vec_of::<i32>()?, "{name}"),
            }
        }
        assert_eq!(
            ck.get("scale").and_then(StoredTensor::as_f32),
            Some(&[2.5f32][..])
        );
        assert_eq!(ck.get("scale").map(|s| s.shape.len()), Some(0));
        Ok(())
    }

    #[test]
    fn restore_into_overwrites_in_place() -> TestResult {
        let dev = Device::new()?;
        let named = sample(&dev)?;
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("ckpt.safetensors");
        save(&path, &named, &BTreeMap::new())?;
        let ck = load(&path)?;
        assert!(ck.metadata.is_empty());

        // A fresh "model" with the same names and shapes but other values.
        let fresh: Vec<(String, Tensor)> = named
            .iter()
            .map(|(n, t)| {
                let z = match t.dtype() {
                    DType::U32 => Tensor::from_slice(&vec![1u32; t.numel()], t.shape(), &dev),
                    _ => Tensor::zeros(t.shape(), &dev),
                };
                z.map(|z| (n.clone(), z))
            })
            .collect::<std::result::Result<_, _>>()?;
        let alias = fresh[1].1.clone(); // another handle to the same storage sees the new values
        ck.restore_into(&fresh)?;
        for ((_, a), (_, b)) in named.iter().zip(&fresh) {
            match a.dtype() {
                DType::U32 => assert_eq!(a.to_vec_of::<u32>()?, b.to_vec_of::<u32>()?),
                _ => {
                    let bits = |t: &Tensor| -> std::result::Result<Vec<u32>, GraphError> {
                        Ok(t.to_vec()?.iter().map(|x| x.to_bits()).collect())
                    };
                    assert_eq!(bits(a)?, bits(b)?);
                }
            }
        }
        assert_eq!(alias.to_vec()?, vec![0.5, -0.25, 3.0]);
        Ok(())
    }

    #[test]
    fn restore_into_names_the_offending_tensor() -> TestResult {
        let dev = Device::new()?;
        let named = sample(&dev)?;
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("ckpt.safetensors");
        save(&path, &named, &meta())?;
        let ck = load(&path)?;

        // Missing: the model has a tensor the checkpoint lacks.
        let mut more = named.clone();
        more.push(("fc2.weight".into(), Tensor::zeros(&[2, 2], &dev)?));
        let e = ck.restore_into(&more).unwrap_err();
        assert!(
            matches!(&e, CheckpointError::MissingTensor { name, .. } if name == "fc2.weight"),
            "{e}"
        );
        assert!(
            e.to_string().contains("fc2.weight") && e.to_string().contains("ckpt.safetensors"),
            "{e}"
        );

        // Shape mismatch; nothing may be written before the error.
        let before = Tensor::full(&[3], 9.0, &dev)?;
        let mut wrong = vec![("fc1.bias".to_string(), before.clone())];
        wrong.extend(
            named
                .iter()
                .filter(|(n, _)| n != "fc1.bias" && n != "fc1.weight")
                .cloned(),
        );
        wrong.push(("fc1.weight".into(), Tensor::zeros(&[4, 3], &dev)?));
        let e = ck.restore_into(&wrong).unwrap_err();
        assert!(
            matches!(&e, CheckpointError::ShapeMismatch { name, expected, found, .. }
                if name == "fc1.weight" && expected == &[4, 3] && found == &[3, 4]),
            "{e}"
        );
        assert_eq!(
            before.to_vec()?,
            vec![9.0; 3],
            "restore wrote before validating"
        );

        // Dtype mismatch.
        let mut dt = named.clone();
        dt[3].1 = Tensor::zeros(&[3], &dev)?;
        let e = ck.restore_into(&dt).unwrap_err();
        assert!(
            matches!(&e, CheckpointError::DTypeMismatch { name, .. } if name == "steps"),
            "{e}"
        );

        // Extra: the checkpoint has tensors the model does not.
        let e = ck.restore_into(&named[..2]).unwrap_err();
        assert!(
            matches!(&e, CheckpointError::UnexpectedTensors { names, .. } if names == &["scale", "steps"]),
            "{e}"
        );

        // with_prefix selects a sub-model.
        let sub = ck.with_prefix("fc1.");
        assert_eq!(sub.tensors.keys().collect::<Vec<_>>(), ["bias", "weight"]);
        sub.restore_into(&[
            ("weight".into(), Tensor::zeros(&[3, 4], &dev)?),
            ("bias".into(), Tensor::zeros(&[3], &dev)?),
        ])?;
        Ok(())
    }

    #[test]
    fn save_rejects_duplicate_and_reserved_names() -> TestResult {
        let dev = Device::new()?;
        let t = Tensor::zeros(&[2], &dev)?;
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("x.safetensors");
        let dup = [("a".to_string(), t.clone()), ("a".to_string(), t.clone())];
        assert!(matches!(
            save(&path, &dup, &meta()),
            Err(CheckpointError::BadName { .. })
        ));
        let res = [("__metadata__".to_string(), t)];
        assert!(matches!(
            save(&path, &res, &meta()),
            Err(CheckpointError::BadName { .. })
        ));
        assert!(!path.exists());
        Ok(())
    }

    #[test]
    fn interrupted_save_keeps_the_old_file() -> TestResult {
        let dev = Device::new()?;
        let named = sample(&dev)?;
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("last.safetensors");
        save(&path, &named, &meta())?;
        let old = fs::read(&path)?;

        // A write that fails halfway, as a full disk or a crash would leave it.
        let e = write_atomic(&path, |f| {
            f.write_all(&old[..old.len() / 2])?;
            Err(io::Error::other("disk full"))
        })
        .unwrap_err();
        assert_eq!(e.to_string(), "disk full");
        assert_eq!(fs::read(&path)?, old);
        assert!(
            temps_in(dir.path()).is_empty(),
            "{:?}",
            temps_in(dir.path())
        );
        load(&path)?;

        // A save whose rename fails (the target is a non-empty directory): error names the file,
        // the temp file is cleaned up.
        let blocked = dir.path().join("blocked.safetensors");
        fs::create_dir(&blocked)?;
        fs::write(blocked.join("keep"), b"x")?;
        let e = save(&blocked, &named, &meta()).unwrap_err();
        assert!(
            matches!(&e, CheckpointError::Io { path, .. } if path == &blocked),
            "{e}"
        );
        assert!(
            temps_in(dir.path()).is_empty(),
            "{:?}",
            temps_in(dir.path())
        );

        // A successful overwrite replaces the file.
        let mut m = meta();
        m.insert("epoch".into(), "13".into());
        save(&path, &named, &m)?;
        assert_eq!(load(&path)?.metadata["epoch"], "13");
        assert!(temps_in(dir.path()).is_empty());
        Ok(())
    }

    #[cfg(unix)]
    #[test]
    fn saved_file_has_the_usual_permissions() -> TestResult {
        use std::os::unix::fs::PermissionsExt;
        let dev = Device::new()?;
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("p.safetensors");
        save(&path, &sample(&dev)?, &meta())?;
        // Same mode as a plain File::create (0666 less the umask), not tempfile's private 0600.
        let plain = dir.path().join("plain");
        File::create(&plain)?;
        let mode = |p: &Path| fs::metadata(p).map(|m| m.permissions().mode() & 0o777);
        assert_eq!(mode(&path)?, mode(&plain)?);
        Ok(())
    }

    #[test]
    fn corrupt_files_give_errors_not_panics() -> TestResult {
        let dev = Device::new()?;
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("good.safetensors");
        save(&path, &sample(&dev)?, &meta())?;
        let good = fs::read(&path)?;

        // Every truncation of a real checkpoint.
        let bad = dir.path().join("bad.safetensors");
        for len in 0..good.len() {
            fs::write(&bad, &good[..len])?;
            match load(&bad) {
                Err(CheckpointError::Format { path, .. }) => assert_eq!(path, bad),
                other => panic!("truncated to {len} bytes: {other:?}"),
            }
        }
        // Extra trailing bytes are not a valid file either.
        let mut long = good.clone();
        long.extend_from_slice(b"junk");
        fs::write(&bad, &long)?;
        assert!(matches!(load(&bad), Err(CheckpointError::Format { .. })));

        // Random bytes, and random bytes behind a plausible header length.
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for i in 0..300 {
            let n = (next() % 400) as usize;
            let mut b: Vec<u8> = (0..n).map(|_| next() as u8).collect();
            if i % 2 == 0 && n >= 8 {
                b[..8].copy_from_slice(&((n as u64 - 8) / 2).to_le_bytes());
            }
            fs::write(&bad, &b)?;
            assert!(load(&bad).is_err(), "random file {i} loaded");
        }
        // Byte flips inside the header of a real file: error or a well-formed load, never a panic.
        for i in 8..good.len().min(400) {
            let mut b = good.clone();
            b[i] ^= 0x5a;
            fs::write(&bad, &b)?;
            let _ = load(&bad);
        }
        // A header whose JSON is valid but whose dtype wgrad does not use.
        let view = TensorView::new(Dtype::F16, vec![2], &[0, 60, 0, 60])?;
        let f16 = safetensors::serialize([("half", view)], None)?;
        fs::write(&bad, &f16)?;
        assert!(
            matches!(load(&bad), Err(CheckpointError::UnsupportedDtype { name, dtype, .. }) if name == "half" && dtype == "F16")
        );
        // A missing file.
        assert!(matches!(
            load(&dir.path().join("nope")),
            Err(CheckpointError::Io { .. })
        ));
        Ok(())
    }
}
