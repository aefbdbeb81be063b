//! A seeded batch iterator over an [`ImageSet`], with host-side augmentation
//! and normalisation.
//!
//! Per sample, in this order: random shift (zero-pad by `k` pixels, crop back
//! at a random offset), horizontal flip with probability `p`, Gaussian noise of
//! std `sigma` (added to the `[0, 1]` pixels, not clamped), then per-channel
//! normalisation `(v - mean[c]) / std[c]`.
//!
//! Determinism: the order of epoch `e` depends only on `(seed, e)`, and the
//! augmentation of sample `i` in epoch `e` only on `(seed, e, i)` — not on the
//! batch size, on `drop_last`, or on which batches were consumed before. Each
//! comes from a [`StdRng`] whose 256-bit seed packs those numbers, so distinct
//! tuples never share a stream. (`StdRng`'s algorithm may change between
//! `rand` releases; orders are reproducible for a given `Cargo.lock`.)

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, RngExt, SeedableRng};
use rand_distr::{Distribution, Normal};

use super::mnist::{Dataset, ImageSet};
use super::{DataError, Result};

const STREAM_SHUFFLE: u64 = 0x5348_5546_464c_4500; // "SHUFFLE"
const STREAM_AUGMENT: u64 = 0x4155_474d_454e_5400; // "AUGMENT"

/// The RNG for one `(seed, epoch, stream, index)` tuple.
fn derive_rng(seed: u64, epoch: u64, stream: u64, index: u64) -> StdRng {
    let mut key = [0u8; 32];
    for (chunk, v) in key.chunks_exact_mut(8).zip([seed, epoch, stream, index]) {
        chunk.copy_from_slice(&v.to_le_bytes());
    }
    StdRng::from_seed(key)
}

/// Per-channel normalisation `(v - mean[c]) / std[c]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Normalize {
    pub mean: Vec<f32>,
    pub std: Vec<f32>,
}

impl Normalize {
    /// One `(mean, std)` per channel; every std must be finite and positive.
    pub fn new(mean: Vec<f32>, std: Vec<f32>) -> Result<Self> {
        if mean.is_empty() || mean.len() != std.len() {
            return Err(DataError::invalid(
                "normalisation",
                format!(
                    "{} means and {} stds (need one of each per channel)",
                    mean.len(),
                    std.len()
                ),
            ));
        }
        if let Some(m) = mean.iter().find(|m| !m.is_finite()) {
            return Err(DataError::invalid(
                "normalisation",
                format!("mean {m} is not finite"),
            ));
        }
        if let Some(s) = std.iter().find(|s| !(s.is_finite() && **s > 0.0)) {
            return Err(DataError::invalid(
                "normalisation",
                format!("std {s} is not finite and positive"),
            ));
        }
        Ok(Normalize { mean, std })
    }

    /// The published training-set statistics of a data set (one channel).
    pub fn for_dataset(dataset: Dataset) -> Self {
        let (m, s) = dataset.mean_std();
        Normalize {
            mean: vec![m],
            std: vec![s],
        }
    }

    pub fn channels(&self) -> usize {
        self.mean.len()
    }

    /// Normalises one `[C, H, W]` sample in place (`C = self.channels()`).
    pub fn apply(&self, sample: &mut [f32]) -> Result<()> {
        let c = self.channels();
        if c == 0 || !sample.len().is_multiple_of(c) {
            return Err(DataError::invalid(
                "normalisation input",
                format!("{} values do not split into {c} channels", sample.len()),
            ));
        }
        let plane = sample.len() / c;
        if plane == 0 {
            return Ok(());
        }
        for ((ch, m), s) in sample
            .chunks_exact_mut(plane)
            .zip(&self.mean)
            .zip(&self.std)
        {
            ch.iter_mut().for_each(|v| *v = (*v - m) / s);
        }
        Ok(())
    }
}

/// Random per-sample augmentation; the default does nothing.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Augment {
    /// Pad by this many zero pixels on each side, then crop back to the
    /// original size at a uniformly random offset (a shift of up to `shift`
    /// pixels in each direction). 0 disables it.
    pub shift: usize,
    /// Probability of a horizontal flip, in `[0, 1]`.
    pub flip_p: f64,
    /// Std of additive Gaussian noise on the `[0, 1]` pixels; 0 disables it.
    pub noise_std: f32,
}

impl Augment {
    pub fn none() -> Self {
        Self::default()
    }

    pub fn is_identity(&self) -> bool {
        self.shift == 0 && self.flip_p == 0.0 && self.noise_std == 0.0
    }

    fn validate(&self, height: usize, width: usize) -> Result<()> {
        if !(0.0..=1.0).contains(&self.flip_p) {
            return Err(DataError::invalid(
                "augmentation",
                format!("flip probability {} is not in [0, 1]", self.flip_p),
            ));
        }
        if !(self.noise_std.is_finite() && self.noise_std >= 0.0) {
            return Err(DataError::invalid(
                "augmentation",
                format!("noise std {} is not finite and >= 0", self.noise_std),
            ));
        }
        if self.shift > 0 && (self.shift >= height || self.shift >= width) {
            return Err(DataError::invalid(
                "augmentation",
                format!(
                    "shift {} is not smaller than the {height}x{width} image",
                    self.shift
                ),
            ));
        }
        Ok(())
    }
}

/// How to batch an [`ImageSet`].
#[derive(Clone, Debug, PartialEq)]
pub struct LoaderConfig {
    pub batch_size: usize,
    /// Shuffle each epoch (by `seed` and the epoch number).
    pub shuffle: bool,
    pub seed: u64,
    /// Drop the last batch when it is smaller than `batch_size`.
    pub drop_last: bool,
    pub normalize: Option<Normalize>,
    pub augment: Augment,
}

impl LoaderConfig {
    /// Shuffled, seed 0, last partial batch kept, no normalisation or augmentation.
    pub fn new(batch_size: usize) -> Self {
        LoaderConfig {
            batch_size,
            shuffle: true,
            seed: 0,
            drop_last: false,
            normalize: None,
            augment: Augment::none(),
        }
    }

    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    pub fn shuffle(mut self, shuffle: bool) -> Self {
        self.shuffle = shuffle;
        self
    }

    pub fn drop_last(mut self, drop_last: bool) -> Self {
        self.drop_last = drop_last;
        self
    }

    pub fn normalize(mut self, normalize: Normalize) -> Self {
        self.normalize = Some(normalize);
        self
    }

    pub fn augment(mut self, augment: Augment) -> Self {
        self.augment = augment;
        self
    }
}

/// One batch: `x` is `[B, C, H, W]` row-major, `y` is `[B]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Batch {
    pub x: Vec<f32>,
    pub y: Vec<u32>,
    /// `[B, C, H, W]`.
    pub shape: [usize; 4],
    /// Index into the image set of each sample.
    pub indices: Vec<usize>,
}

impl Batch {
    pub fn len(&self) -> usize {
        self.shape[0]
    }

    pub fn is_empty(&self) -> bool {
        self.shape[0] == 0
    }
}

/// Batches an [`ImageSet`]; call [`DataLoader::epoch`] for each epoch.
#[derive(Clone, Debug)]
pub struct DataLoader<'a> {
    set: &'a ImageSet,
    cfg: LoaderConfig,
    noise: Option<Normal<f32>>,
}

impl<'a> DataLoader<'a> {
    pub fn new(set: &'a ImageSet, cfg: LoaderConfig) -> Result<Self> {
        set.validate()?;
        if cfg.batch_size == 0 {
            return Err(DataError::invalid(
                "loader config",
                "batch size must be at least 1",
            ));
        }
        if let Some(norm) = &cfg.normalize {
            if norm.channels() != set.channels {
                return Err(DataError::invalid(
                    "loader config",
                    format!(
                        "normalisation has {} channels, images have {}",
                        norm.channels(),
                        set.channels
                    ),
                ));
            }
        }
        cfg.augment.validate(set.height, set.width)?;
        let noise = if cfg.augment.noise_std > 0.0 {
            Some(
                Normal::new(0.0, cfg.augment.noise_std)
                    .map_err(|e| DataError::invalid("augmentation", e.to_string()))?,
            )
        } else {
            None
        };
        Ok(DataLoader { set, cfg, noise })
    }

    pub fn config(&self) -> &LoaderConfig {
        &self.cfg
    }

    pub fn set(&self) -> &'a ImageSet {
        self.set
    }

    /// Number of batches per epoch.
    pub fn num_batches(&self) -> usize {
        let (n, b) = (self.set.n, self.cfg.batch_size);
        if self.cfg.drop_last {
            n / b
        } else {
            n.div_ceil(b)
        }
    }

    /// The order in which epoch `epoch` visits the samples (all of them, even
    /// when `drop_last` will leave the tail unused).
    pub fn order(&self, epoch: u64) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.set.n).collect();
        if self.cfg.shuffle {
            order.shuffle(&mut derive_rng(self.cfg.seed, epoch, STREAM_SHUFFLE, 0));
        }
        order
    }

    /// The batches of epoch `epoch`.
    pub fn epoch(&self, epoch: u64) -> EpochIter<'_, 'a> {
        EpochIter {
            loader: self,
            epoch,
            order: self.order(epoch),
            next: 0,
            remaining: self.num_batches(),
        }
    }

    /// Writes sample `index`, augmented for `epoch` and normalised, into `out`
    /// (`sample_len` values).
    fn sample_into(&self, index: usize, epoch: u64, out: &mut [f32]) {
        let set = self.set;
        let src = &set.images[index * out.len()..(index + 1) * out.len()];
        let chw = [set.channels, set.height, set.width];
        let aug = &self.cfg.augment;
        if aug.is_identity() {
            out.copy_from_slice(src);
        } else {
            let mut rng = derive_rng(self.cfg.seed, epoch, STREAM_AUGMENT, index as u64);
            if aug.shift > 0 {
                let k = aug.shift;
                let dy = rng.random_range(0..=2 * k);
                let dx = rng.random_range(0..=2 * k);
                shift_crop_into(src, out, chw, k, dy, dx);
            } else {
                out.copy_from_slice(src);
            }
            if aug.flip_p > 0.0 && rng.random_bool(aug.flip_p) {
                flip_into_place(out, chw);
            }
            if let Some(normal) = &self.noise {
                out.iter_mut().for_each(|v| *v += normal.sample(&mut rng));
            }
        }
        if let Some(norm) = &self.cfg.normalize {
            let plane = set.height * set.width;
            for ((ch, m), s) in out.chunks_exact_mut(plane).zip(&norm.mean).zip(&norm.std) {
                ch.iter_mut().for_each(|v| *v = (*v - m) / s);
            }
        }
    }
}

/// The batches of one epoch, in order.
#[derive(Debug)]
pub struct EpochIter<'l, 'a> {
    loader: &'l DataLoader<'a>,
    epoch: u64,
    order: Vec<usize>,
    next: usize,
    remaining: usize,
}

impl Iterator for EpochIter<'_, '_> {
    type Item = Batch;

    fn next(&mut self) -> Option<Batch> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        let l = self.loader;
        let set = l.set;
        let end = (self.next + l.cfg.batch_size).min(self.order.len());
        let indices = self.order[self.next..end].to_vec();
        self.next = end;
        let s = set.sample_len();
        let mut x = vec![0.0f32; indices.len() * s];
        for (out, &i) in x.chunks_exact_mut(s).zip(&indices) {
            l.sample_into(i, self.epoch, out);
        }
        Some(Batch {
            y: indices.iter().map(|&i| set.labels[i]).collect(),
            shape: [indices.len(), set.channels, set.height, set.width],
            x,
            indices,
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl ExactSizeIterator for EpochIter<'_, '_> {}

fn check_chw(what: &'static str, len: usize, chw: [usize; 3]) -> Result<()> {
    let want = chw[0]
        .checked_mul(chw[1])
        .and_then(|v| v.checked_mul(chw[2]));
    if want != Some(len) {
        return Err(DataError::invalid(
            what,
            format!("{len} values for a {}x{}x{} image", chw[0], chw[1], chw[2]),
        ));
    }
    Ok(())
}

fn flip_into_place(x: &mut [f32], [_, _, w]: [usize; 3]) {
    if w > 0 {
        x.chunks_exact_mut(w).for_each(|row| row.reverse());
    }
}

/// Mirrors a `[C, H, W]` image left-to-right in place.
pub fn flip_horizontal(x: &mut [f32], chw: [usize; 3]) -> Result<()> {
    check_chw("flip input", x.len(), chw)?;
    flip_into_place(x, chw);
    Ok(())
}

/// `out[c][y][x] = src[c][y + dy - pad][x + dx - pad]`, zero outside `src`.
fn shift_crop_into(
    src: &[f32],
    out: &mut [f32],
    [c, h, w]: [usize; 3],
    pad: usize,
    dy: usize,
    dx: usize,
) {
    out.fill(0.0);
    // Source rows/cols that land inside the output.
    let (y0, y1) = (pad.saturating_sub(dy), (h + pad).saturating_sub(dy).min(h));
    let (x0, x1) = (pad.saturating_sub(dx), (w + pad).saturating_sub(dx).min(w));
    if y0 >= y1 || x0 >= x1 {
        return;
    }
    for ch in 0..c {
        let base = ch * h * w;
        for y in y0..y1 {
            let sy = y + dy - pad;
            let (s, o) = (base + sy * w, base + y * w);
            let (sx0, sx1) = (x0 + dx - pad, x1 + dx - pad);
            out[o + x0..o + x1].copy_from_slice(&src[s + sx0..s + sx1]);
        }
    }
}

/// Zero-pads a `[C, H, W]` image by `pad` pixels on every side and crops an
/// `H x W` window at offset `(dy, dx)` of the padded image, each in
/// `0..=2 * pad` (`(pad, pad)` gives the image back unchanged).
pub fn shift_crop(
    src: &[f32],
    chw: [usize; 3],
    pad: usize,
    dy: usize,
    dx: usize,
) -> Result<Vec<f32>> {
    check_chw("shift input", src.len(), chw)?;
    if dy > 2 * pad || dx > 2 * pad {
        return Err(DataError::invalid(
            "shift offset",
            format!("({dy}, {dx}) is outside 0..={} for pad {pad}", 2 * pad),
        ));
    }
    let mut out = vec![0.0; src.len()];
    shift_crop_into(src, &mut out, chw, pad, dy, dx);
    Ok(out)
}

/// Adds Gaussian noise of standard deviation `std` (finite, `>= 0`) to every value.
pub fn add_gaussian_noise<R: Rng + ?Sized>(x: &mut [f32], std: f32, rng: &mut R) -> Result<()> {
    // rand_distr accepts any finite std, negative included; we do not.
    if !(std.is_finite() && std >= 0.0) {
        return Err(DataError::invalid(
            "noise std",
            format!("{std} is not finite and >= 0"),
        ));
    }
    let normal = Normal::new(0.0, std)
        .map_err(|e| DataError::invalid("noise std", format!("{std}: {e}")))?;
    x.iter_mut().for_each(|v| *v += normal.sample(rng));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `n` 1x`h`x`w` images whose pixel k of image i is `i + k / 1000`, label `i % classes`.
    fn toy(n: usize, c: usize, h: usize, w: usize) -> ImageSet {
        let s = c * h * w;
        ImageSet {
            images: (0..n * s)
                .map(|v| (v / s) as f32 + (v % s) as f32 / 1000.0)
                .collect(),
            labels: (0..n as u32).map(|i| i % 10).collect(),
            n,
            channels: c,
            height: h,
            width: w,
            classes: 10,
        }
    }

    fn all_indices(l: &DataLoader, epoch: u64) -> Vec<usize> {
        l.epoch(epoch).flat_map(|b| b.indices).collect()
    }

    #[test]
    fn same_seed_same_order_different_seed_different_order() {
        let set = toy(100, 1, 2, 2);
        let a = DataLoader::new(&set, LoaderConfig::new(16).seed(1)).unwrap();
        let b = DataLoader::new(&set, LoaderConfig::new(16).seed(1)).unwrap();
        let c = DataLoader::new(&set, LoaderConfig::new(16).seed(2)).unwrap();
        assert_eq!(all_indices(&a, 0), all_indices(&b, 0));
        assert_eq!(
            a.epoch(3).collect::<Vec<_>>(),
            b.epoch(3).collect::<Vec<_>>()
        );
        assert_ne!(all_indices(&a, 0), all_indices(&c, 0));
        assert_ne!(all_indices(&a, 0), all_indices(&a, 1), "epochs differ");
        assert_ne!(
            all_indices(&a, 0),
            (0..100).collect::<Vec<_>>(),
            "actually shuffled"
        );
        let plain = DataLoader::new(&set, LoaderConfig::new(16).shuffle(false)).unwrap();
        assert_eq!(all_indices(&plain, 5), (0..100).collect::<Vec<_>>());
    }

    #[test]
    fn every_index_once_per_epoch_and_partial_last_batch() {
        let set = toy(103, 1, 3, 3);
        let l = DataLoader::new(&set, LoaderConfig::new(10).seed(7)).unwrap();
        assert_eq!(l.num_batches(), 11);
        for epoch in 0..3 {
            let batches: Vec<Batch> = l.epoch(epoch).collect();
            assert_eq!(batches.len(), 11);
            assert!(
                batches[..10]
                    .iter()
                    .all(|b| b.shape == [10, 1, 3, 3] && b.x.len() == 90)
            );
            let last = batches.last().unwrap();
            assert_eq!(
                (last.shape, last.x.len(), last.y.len()),
                ([3, 1, 3, 3], 27, 3)
            );
            let mut seen: Vec<usize> = batches.iter().flat_map(|b| b.indices.clone()).collect();
            seen.sort_unstable();
            assert_eq!(seen, (0..103).collect::<Vec<_>>());
            // Data and labels follow the indices.
            for b in &batches {
                for (j, &i) in b.indices.iter().enumerate() {
                    assert_eq!(b.y[j], set.labels[i]);
                    assert_eq!(&b.x[j * 9..(j + 1) * 9], set.image(i).unwrap());
                }
            }
        }
        let d = DataLoader::new(&set, LoaderConfig::new(10).seed(7).drop_last(true)).unwrap();
        assert_eq!(d.num_batches(), 10);
        let batches: Vec<Batch> = d.epoch(0).collect();
        assert_eq!(batches.len(), 10);
        assert!(batches.iter().all(|b| b.len() == 10));
        // Dropping the tail does not change the order of what is kept.
        let kept: Vec<usize> = batches.iter().flat_map(|b| b.indices.clone()).collect();
        assert_eq!(kept, all_indices(&l, 0)[..100]);
        assert_eq!(d.epoch(0).len(), 10);
    }

    #[test]
    fn batch_larger_than_set_and_empty_set() {
        let set = toy(5, 1, 2, 2);
        let l = DataLoader::new(&set, LoaderConfig::new(64)).unwrap();
        let b: Vec<Batch> = l.epoch(0).collect();
        assert_eq!((b.len(), b[0].shape[0]), (1, 5));
        let d = DataLoader::new(&set, LoaderConfig::new(64).drop_last(true)).unwrap();
        assert_eq!(d.epoch(0).count(), 0);
        let empty = toy(0, 1, 2, 2);
        assert_eq!(
            DataLoader::new(&empty, LoaderConfig::new(4))
                .unwrap()
                .epoch(0)
                .count(),
            0
        );
    }

    #[test]
    fn normalisation_arithmetic() {
        let n = Normalize::new(vec![0.1307], vec![0.3081]).unwrap();
        let mut x = vec![0.0, 1.0, 0.1307, 0.5];
        n.apply(&mut x).unwrap();
        let want = [
            -0.1307 / 0.3081,
            (1.0 - 0.1307) / 0.3081,
            0.0,
            (0.5 - 0.1307) / 0.3081,
        ];
        for (a, b) in x.iter().zip(want) {
            assert!((a - b).abs() < 1e-6, "{a} vs {b}");
        }
        assert_eq!(Normalize::for_dataset(Dataset::Mnist), n);
        // Per channel: [2 channels x 2 pixels].
        let n2 = Normalize::new(vec![1.0, -1.0], vec![2.0, 0.5]).unwrap();
        let mut x = vec![3.0, 1.0, -1.0, 0.0];
        n2.apply(&mut x).unwrap();
        assert_eq!(x, vec![1.0, 0.0, 0.0, 2.0]);
        // Through the loader.
        let set = toy(4, 2, 1, 2);
        let l = DataLoader::new(
            &set,
            LoaderConfig::new(4).shuffle(false).normalize(n2.clone()),
        )
        .unwrap();
        let b = l.epoch(0).next().unwrap();
        for i in 0..4 {
            let mut want = set.image(i).unwrap().to_vec();
            n2.apply(&mut want).unwrap();
            assert_eq!(&b.x[i * 4..(i + 1) * 4], &want[..]);
        }
        // Bad arguments.
        assert!(Normalize::new(vec![0.0], vec![0.0]).is_err());
        assert!(Normalize::new(vec![0.0, 1.0], vec![1.0]).is_err());
        assert!(Normalize::new(vec![f32::NAN], vec![1.0]).is_err());
        assert!(n2.apply(&mut [1.0, 2.0, 3.0]).is_err());
        assert!(DataLoader::new(&toy(2, 1, 2, 2), LoaderConfig::new(1).normalize(n2)).is_err());
    }

    #[test]
    fn flip_is_its_own_inverse() {
        let chw = [2, 3, 4];
        let x: Vec<f32> = (0..24).map(|v| v as f32).collect();
        let mut y = x.clone();
        flip_horizontal(&mut y, chw).unwrap();
        assert_ne!(x, y);
        assert_eq!(&y[..4], &[3.0, 2.0, 1.0, 0.0]);
        assert_eq!(&y[20..], &[23.0, 22.0, 21.0, 20.0]);
        flip_horizontal(&mut y, chw).unwrap();
        assert_eq!(x, y);
        assert!(flip_horizontal(&mut y, [2, 3, 5]).is_err());
    }

    #[test]
    fn shift_keeps_shape_and_moves_pixels() {
        let chw = [2, 4, 5];
        let x: Vec<f32> = (1..=40).map(|v| v as f32).collect();
        for pad in 0..=3 {
            for dy in 0..=2 * pad {
                for dx in 0..=2 * pad {
                    let y = shift_crop(&x, chw, pad, dy, dx).unwrap();
                    assert_eq!(y.len(), x.len());
                    for c in 0..2 {
                        for r in 0..4 {
                            for col in 0..5 {
                                let (sr, sc) = (
                                    r as isize + dy as isize - pad as isize,
                                    col as isize + dx as isize - pad as isize,
                                );
                                let want = if (0..4).contains(&sr) && (0..5).contains(&sc) {
                                    x[c * 20 + sr as usize * 5 + sc as usize]
                                } else {
                                    0.0
                                };
                                assert_eq!(
                                    y[c * 20 + r * 5 + col],
                                    want,
                                    "pad {pad} dy {dy} dx {dx}"
                                );
                            }
                        }
                    }
                }
            }
        }
        assert_eq!(
            shift_crop(&x, chw, 2, 2, 2).unwrap(),
            x,
            "centre crop is identity"
        );
        assert!(shift_crop(&x, chw, 1, 3, 0).is_err());
        assert!(shift_crop(&x[1..], chw, 1, 0, 0).is_err());
    }

    #[test]
    fn augmentation_is_deterministic_per_seed_and_epoch() {
        let set = toy(40, 1, 6, 6);
        let aug = Augment {
            shift: 2,
            flip_p: 0.5,
            noise_std: 0.1,
        };
        let mk = |seed, bs| {
            DataLoader::new(&set, LoaderConfig::new(bs).seed(seed).augment(aug.clone())).unwrap()
        };
        let (a, b, c) = (mk(3, 8), mk(3, 8), mk(4, 8));
        let ea: Vec<Batch> = a.epoch(1).collect();
        assert_eq!(ea, b.epoch(1).collect::<Vec<_>>());
        assert_ne!(ea, a.epoch(2).collect::<Vec<_>>());
        assert_ne!(ea, c.epoch(1).collect::<Vec<_>>());
        // The augmentation of a sample does not depend on the batch size.
        let per_sample = |batches: Vec<Batch>| {
            let mut v: Vec<(usize, Vec<f32>)> = batches
                .iter()
                .flat_map(|b| {
                    b.indices
                        .iter()
                        .enumerate()
                        .map(|(j, &i)| (i, b.x[j * 36..(j + 1) * 36].to_vec()))
                })
                .collect();
            v.sort_by_key(|p| p.0);
            v
        };
        assert_eq!(
            per_sample(ea.clone()),
            per_sample(mk(3, 7).epoch(1).collect())
        );
        // It does change the data, and keeps the shape.
        assert!(
            ea.iter()
                .all(|b| b.x.len() == b.shape.iter().product::<usize>())
        );
        let changed = ea
            .iter()
            .flat_map(|b| b.indices.iter().enumerate().map(move |(j, &i)| (b, j, i)))
            .filter(|&(b, j, i)| &b.x[j * 36..(j + 1) * 36] != set.image(i).unwrap())
            .count();
        assert_eq!(changed, 40);
    }

    #[test]
    fn flip_probability_extremes_and_noise_statistics() {
        let set = toy(20, 1, 3, 4);
        let always = Augment {
            flip_p: 1.0,
            ..Augment::none()
        };
        let l =
            DataLoader::new(&set, LoaderConfig::new(20).shuffle(false).augment(always)).unwrap();
        let b = l.epoch(0).next().unwrap();
        for i in 0..20 {
            let mut want = set.image(i).unwrap().to_vec();
            flip_horizontal(&mut want, [1, 3, 4]).unwrap();
            assert_eq!(&b.x[i * 12..(i + 1) * 12], &want[..]);
        }
        let mut zeros = vec![0.0f32; 20_000];
        add_gaussian_noise(&mut zeros, 0.5, &mut derive_rng(1, 2, 3, 4)).unwrap();
        let mean = zeros.iter().sum::<f32>() / zeros.len() as f32;
        let std =
            (zeros.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / zeros.len() as f32).sqrt();
        assert!(
            mean.abs() < 0.02 && (std - 0.5).abs() < 0.02,
            "{mean} {std}"
        );
        assert!(add_gaussian_noise(&mut zeros, -1.0, &mut derive_rng(0, 0, 0, 0)).is_err());
    }

    #[test]
    fn bad_configs_are_errors() {
        let set = toy(4, 1, 4, 4);
        let bad = [
            LoaderConfig::new(0),
            LoaderConfig::new(2).augment(Augment {
                flip_p: 1.5,
                ..Augment::none()
            }),
            LoaderConfig::new(2).augment(Augment {
                noise_std: f32::NAN,
                ..Augment::none()
            }),
            LoaderConfig::new(2).augment(Augment {
                noise_std: -0.1,
                ..Augment::none()
            }),
            LoaderConfig::new(2).augment(Augment {
                shift: 4,
                ..Augment::none()
            }),
        ];
        for cfg in bad {
            let err = DataLoader::new(&set, cfg.clone()).unwrap_err();
            assert!(
                matches!(err, DataError::InvalidArgument { .. }),
                "{cfg:?}: {err}"
            );
        }
        let mut broken = set.clone();
        broken.labels.pop();
        assert!(DataLoader::new(&broken, LoaderConfig::new(2)).is_err());
    }
}
