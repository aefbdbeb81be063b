//! Kernel variants chosen by measurement, per adapter and shape class, kept on disk.
//!
//! `wgrad bench --tune` times every variant of a family on representative shapes and records the
//! fastest per shape class; devices load the records for their adapter and driver when created.
//! Without a record a launcher falls back to its built-in heuristic. The file is a TSV, one record
//! a line: adapter, driver, kernel, class, entry point. It lives at `$WGRAD_TUNE_FILE`, else
//! `$XDG_CACHE_HOME/wgrad/tuning.tsv`, else `~/.cache/wgrad/tuning.tsv`.

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;

use crate::error::{DeviceError, Result};

/// A coarse shape bucket: ceil(log2) of each of M, N, K, whether there is a batch, and whether the
/// batch's products are summed (`GpuArray::matmul_sum_batch`, conv's weight gradient), which cuts
/// the work differently from one product per batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ShapeClass {
    pub m: u8,
    pub n: u8,
    pub k: u8,
    pub batched: bool,
    pub summed: bool,
}

fn ceil_log2(x: usize) -> u8 {
    x.max(1).next_power_of_two().trailing_zeros() as u8
}

impl ShapeClass {
    pub fn of(batch: usize, m: usize, n: usize, k: usize) -> Self {
        Self {
            m: ceil_log2(m),
            n: ceil_log2(n),
            k: ceil_log2(k),
            batched: batch > 1,
            summed: false,
        }
    }

    /// The class of a product summed over its batch of `batch`.
    pub fn of_sum(batch: usize, m: usize, n: usize, k: usize) -> Self {
        Self {
            summed: true,
            ..Self::of(batch, m, n, k)
        }
    }

    fn encode(&self) -> String {
        format!(
            "m{}n{}k{}{}{}",
            self.m,
            self.n,
            self.k,
            if self.batched { "b" } else { "" },
            if self.summed { "s" } else { "" }
        )
    }

    fn decode(s: &str) -> Option<Self> {
        let summed = s.ends_with('s');
        let s = s.strip_suffix('s').unwrap_or(s);
        let batched = s.ends_with('b');
        let s = s.strip_suffix('b').unwrap_or(s).strip_prefix('m')?;
        let (m, rest) = s.split_once('n')?;
        let (n, k) = rest.split_once('k')?;
        Some(Self {
            m: m.parse().ok()?,
            n: n.parse().ok()?,
            k: k.parse().ok()?,
            batched,
            summed,
        })
    }
}

/// Where the records live.
pub fn tuning_path() -> PathBuf {
    if let Some(p) = std::env::var_os("WGRAD_TUNE_FILE") {
        return PathBuf::from(p);
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("wgrad").join("tuning.tsv")
}

/// The choices of one device: (kernel, class) -> entry point.
pub(crate) struct Tuning {
    adapter: String,
    driver: String,
    choices: Mutex<HashMap<(String, ShapeClass), String>>,
}

impl Tuning {
    /// Loads the records for this adapter and driver; a missing or unreadable file means none.
    pub(crate) fn load(adapter: &str, driver: &str) -> Self {
        let t = Self {
            adapter: adapter.to_string(),
            driver: driver.to_string(),
            choices: Mutex::new(HashMap::new()),
        };
        if let Ok(text) = std::fs::read_to_string(tuning_path()) {
            let mut map = t.lock();
            for line in text.lines() {
                let f: Vec<&str> = line.split('\t').collect();
                if let [a, d, kernel, class, entry] = f[..]
                    && a == adapter
                    && d == driver
                    && let Some(class) = ShapeClass::decode(class)
                {
                    map.insert((kernel.to_string(), class), entry.to_string());
                }
            }
        }
        t
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, ShapeClass), String>> {
        self.choices.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn get(&self, kernel: &str, class: ShapeClass) -> Option<String> {
        self.lock().get(&(kernel.to_string(), class)).cloned()
    }

    pub(crate) fn set(&self, kernel: &str, class: ShapeClass, entry: &str) {
        self.lock()
            .insert((kernel.to_string(), class), entry.to_string());
    }

    /// Writes this device's records over its old ones (other adapters' lines are kept),
    /// atomically: a temp file in the same folder, then a rename.
    pub(crate) fn save(&self) -> Result<PathBuf> {
        let path = tuning_path();
        let io = |e: std::io::Error| DeviceError::InvalidArgument {
            op: "save_tuning",
            reason: format!("{}: {e}", path.display()),
        };
        let mine = |line: &str| {
            let mut f = line.split('\t');
            f.next() == Some(self.adapter.as_str()) && f.next() == Some(self.driver.as_str())
        };
        let mut lines: Vec<String> = std::fs::read_to_string(&path)
            .map(|t| t.lines().filter(|l| !mine(l)).map(String::from).collect())
            .unwrap_or_default();
        let mut records: Vec<String> = self
            .lock()
            .iter()
            .map(|((kernel, class), entry)| {
                format!(
                    "{}\t{}\t{kernel}\t{}\t{entry}",
                    self.adapter,
                    self.driver,
                    class.encode()
                )
            })
            .collect();
        records.sort();
        lines.extend(records);
        let dir = path.parent().map(PathBuf::from).unwrap_or_default();
        std::fs::create_dir_all(&dir).map_err(io)?;
        let tmp = dir.join(format!(".tuning.{}.tmp", std::process::id()));
        let mut f = std::fs::File::create(&tmp).map_err(io)?;
        f.write_all((lines.join("\n") + "\n").as_bytes())
            .map_err(io)?;
        f.sync_all().map_err(io)?;
        std::fs::rename(&tmp, &path).map_err(io)?;
        Ok(path)
    }
}

#[cfg(test)]
mod tests {
    use super::ShapeClass;

    #[test]
    fn classes_round_trip_through_their_text_form() {
        for c in [
            ShapeClass::of(1, 1024, 1024, 1024),
            ShapeClass::of(64, 64, 196, 288),
            ShapeClass::of_sum(64, 64, 288, 196),
            ShapeClass::of_sum(1, 8, 8, 8),
            ShapeClass::of(1, 1, 1, 0),
        ] {
            assert_eq!(ShapeClass::decode(&c.encode()), Some(c));
        }
        assert_eq!(
            ShapeClass::of(1, 1000, 1024, 1025),
            ShapeClass {
                m: 10,
                n: 10,
                k: 11,
                batched: false,
                summed: false,
            }
        );
        // Records written before summed classes existed read as unsummed.
        assert_eq!(
            ShapeClass::decode("m6n9k8b"),
            Some(ShapeClass::of(64, 64, 288, 196))
        );
        assert_eq!(ShapeClass::decode("nonsense"), None);
    }
}
