//! Training reports: per-epoch metrics as JSON lines (appended each epoch, read back by `--resume`),
//! loss/accuracy curves as a PNG, and a grayscale image grid (auto-encoder reconstructions).
//! Every PNG is written atomically (temp file + rename).
//!
//! Text in plots is drawn with a TrueType font loaded at run time: `$WGRAD_FONT` if set, else
//! DejaVu Sans or Liberation Sans from the usual system paths (`fonts-dejavu-core` on Debian). With
//! no font, the curves and grid are still drawn, without title, labels or legend.
//!
//! ```no_run
//! use std::path::Path;
//! use wgrad_models::report::{self, EpochMetrics};
//! # fn main() -> Result<(), report::ReportError> {
//! let m = EpochMetrics { epoch: 1, train_loss: 0.4, train_acc: Some(0.88), test_loss: 0.3,
//!                        test_acc: Some(0.91), seconds: 12.5 };
//! report::append_jsonl(Path::new("runs/mlp/metrics.jsonl"), &m)?;
//! let history = report::read_jsonl(Path::new("runs/mlp/metrics.jsonl"))?;
//! report::plot_curves(Path::new("runs/mlp/curves.png"), &history, "MLP on MNIST")?;
//! # Ok(()) }
//! ```

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::prelude::*;
use serde::{Deserialize, Serialize};

use crate::checkpoint::write_atomic;

/// Why a report file could not be written or read. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("{path}: I/O error: {source}")]
    Io { path: PathBuf, source: io::Error },

    #[error("{path}: line {line}: not a metrics record: {source}")]
    Json {
        path: PathBuf,
        line: usize,
        source: serde_json::Error,
    },

    #[error("{path}: drawing failed: {message}")]
    Plot { path: PathBuf, message: String },

    #[error("{path}: PNG encoding failed: {source}")]
    Png {
        path: PathBuf,
        source: png::EncodingError,
    },

    #[error("{path}: {reason}")]
    InvalidArgument { path: PathBuf, reason: String },
}

pub type Result<T, E = ReportError> = std::result::Result<T, E>;

/// One epoch's numbers, one JSON object per line in `metrics.jsonl`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochMetrics {
    pub epoch: usize,
    /// A diverged (NaN or infinite) loss is written as `null` and read back as NaN.
    #[serde(deserialize_with = "f64_or_nan")]
    pub train_loss: f64,
    pub train_acc: Option<f64>,
    #[serde(deserialize_with = "f64_or_nan")]
    pub test_loss: f64,
    pub test_acc: Option<f64>,
    /// Wall-clock seconds the epoch took.
    pub seconds: f64,
}

fn f64_or_nan<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> ReportError + '_ {
    move |source| ReportError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Appends `m` as one JSON line to `path` (created with its directories if needed) and fsyncs.
/// A torn last line left by a crash is cut off first (with a warning), so the file stays readable.
pub fn append_jsonl(path: &Path, m: &EpochMetrics) -> Result<()> {
    let mut line = serde_json::to_string(m).map_err(|source| ReportError::Json {
        path: path.to_path_buf(),
        line: 0,
        source,
    })?;
    line.push('\n');
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir).map_err(io_err(path))?;
    }
    let mut f = OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .open(path)
        .map_err(io_err(path))?;
    let len = f.metadata().map_err(io_err(path))?.len();
    if len > 0 {
        let text = fs::read(path).map_err(io_err(path))?;
        if text.last() != Some(&b'\n') {
            let keep = text.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
            log::warn!(
                "{}: dropping a torn last line ({} bytes) before appending",
                path.display(),
                text.len() - keep
            );
            f.set_len(keep as u64).map_err(io_err(path))?;
        }
    }
    // One write call per record: with O_APPEND the line lands whole or (on a crash) torn at the end.
    f.write_all(line.as_bytes()).map_err(io_err(path))?;
    f.sync_data().map_err(io_err(path))?;
    Ok(())
}

/// Replaces `path` atomically with `history`, one JSON line each (e.g. `--resume` cutting the
/// history back to the checkpoint's epoch).
pub fn write_jsonl(path: &Path, history: &[EpochMetrics]) -> Result<()> {
    let mut text = String::new();
    for m in history {
        text += &serde_json::to_string(m).map_err(|source| ReportError::Json {
            path: path.to_path_buf(),
            line: 0,
            source,
        })?;
        text.push('\n');
    }
    write_atomic(path, |f| f.write_all(text.as_bytes())).map_err(io_err(path))
}

/// Reads every record written by [`append_jsonl`]. Blank lines are skipped. An unparsable last line
/// without a trailing newline (a write cut short by a crash) is ignored with a warning; any other
/// bad line is an error naming its line number.
pub fn read_jsonl(path: &Path) -> Result<Vec<EpochMetrics>> {
    let text = fs::read_to_string(path).map_err(io_err(path))?;
    let torn_tail = !text.is_empty() && !text.ends_with('\n');
    let lines: Vec<&str> = text.split('\n').collect();
    let mut out = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        if l.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<EpochMetrics>(l) {
            Ok(m) => out.push(m),
            Err(_) if torn_tail && i + 1 == lines.len() => {
                log::warn!(
                    "{}: ignoring a torn last line {}: {l:?}",
                    path.display(),
                    i + 1
                );
            }
            Err(source) => {
                return Err(ReportError::Json {
                    path: path.to_path_buf(),
                    line: i + 1,
                    source,
                });
            }
        }
    }
    Ok(out)
}

/// Registers a TrueType font with plotters under "sans-serif", once per process. False when none
/// could be found, so plots are drawn without text.
fn font_available() -> bool {
    static FONT: OnceLock<bool> = OnceLock::new();
    *FONT.get_or_init(|| {
        let mut candidates: Vec<PathBuf> = std::env::var_os("WGRAD_FONT").map(PathBuf::from).into_iter().collect();
        candidates.extend(
            [
                "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", // Debian, Ubuntu
                "/usr/share/fonts/TTF/DejaVuSans.ttf",             // Arch
                "/usr/share/fonts/dejavu/DejaVuSans.ttf",          // Fedora
                "/usr/share/fonts/dejavu-sans-fonts/DejaVuSans.ttf",
                "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
                "/usr/share/fonts/liberation-sans/LiberationSans-Regular.ttf",
                "/System/Library/Fonts/Supplemental/Arial.ttf", // macOS
                "C:\\Windows\\Fonts\\arial.ttf",
            ]
            .map(PathBuf::from),
        );
        for p in candidates {
            let Ok(bytes) = fs::read(&p) else { continue };
            // plotters keeps fonts for the life of the process; this leaks one font, once.
            let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
            if plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).is_ok() {
                log::debug!("plots use the font {}", p.display());
                return true;
            }
            log::warn!("{}: not a usable TrueType font", p.display());
        }
        log::warn!(
            "no TrueType font found (install fonts-dejavu-core or set WGRAD_FONT); plots are drawn without text"
        );
        false
    })
}

/// Draws train/test loss per epoch (left) and accuracy per epoch (right, when any epoch has one)
/// into a PNG at `path`, written atomically. Non-finite values are left out.
pub fn plot_curves(path: &Path, history: &[EpochMetrics], title: &str) -> Result<()> {
    plot_curves_with(path, history, title, font_available())
}

fn plot_curves_with(path: &Path, history: &[EpochMetrics], title: &str, text: bool) -> Result<()> {
    let has_acc = history
        .iter()
        .any(|m| m.train_acc.is_some() || m.test_acc.is_some());
    let (w, h) = (if has_acc { 1200u32 } else { 700 }, 480u32);
    let mut rgb = vec![0u8; (w * h * 3) as usize];
    let plot_err = |e: &dyn std::fmt::Display| ReportError::Plot {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    {
        let root = BitMapBackend::with_buffer(&mut rgb, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| plot_err(&e))?;
        let body = if text {
            root.titled(title, ("sans-serif", 22))
                .map_err(|e| plot_err(&e))?
        } else {
            root.margin(10, 0, 0, 0)
        };
        let panels: Vec<DrawingArea<_, Shift>> = if has_acc {
            body.split_evenly((1, 2))
        } else {
            vec![body]
        };

        // Epochs are integers: half an epoch of room on each side.
        let x = match history.iter().map(|m| m.epoch as f64).fold(None, extend) {
            Some((lo, hi)) => lo - 0.5..hi + 0.5,
            None => 0.0..1.0,
        };
        let series = |f: fn(&EpochMetrics) -> Option<f64>| -> Vec<(f64, f64)> {
            history
                .iter()
                .filter_map(|m| Some((m.epoch as f64, f(m)?)))
                .filter(|p| p.1.is_finite())
                .collect()
        };
        let train_loss = series(|m| Some(m.train_loss));
        let test_loss = series(|m| Some(m.test_loss));
        panel(
            &panels[0],
            text,
            "loss",
            SeriesLabelPosition::UpperRight,
            x.clone(),
            &[
                ("train loss", BLUE, train_loss),
                ("test loss", RED, test_loss),
            ],
        )
        .map_err(|e| plot_err(&e))?;
        if has_acc {
            panel(
                &panels[1],
                text,
                "accuracy",
                SeriesLabelPosition::LowerRight,
                x,
                &[
                    ("train accuracy", BLUE, series(|m| m.train_acc)),
                    ("test accuracy", RED, series(|m| m.test_acc)),
                ],
            )
            .map_err(|e| plot_err(&e))?;
        }
        root.present().map_err(|e| plot_err(&e))?;
    }
    let png = encode_png(path, &rgb, w, h, png::ColorType::Rgb)?;
    write_atomic(path, |f| f.write_all(&png)).map_err(io_err(path))
}

/// A curve: legend label, colour, (epoch, value) points.
type Series<'a> = (&'a str, RGBColor, Vec<(f64, f64)>);

/// One chart: a line with point markers per series, y range fitted to the data.
fn panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    text: bool,
    y_desc: &str,
    legend_at: SeriesLabelPosition,
    x: Range<f64>,
    series: &[Series],
) -> std::result::Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let y = padded(
        series
            .iter()
            .flat_map(|s| s.2.iter().map(|p| p.1))
            .fold(None, extend),
        0.05,
    );
    let mut builder = ChartBuilder::on(area);
    builder.margin(12);
    if text {
        builder.x_label_area_size(40).y_label_area_size(60);
    }
    let mut chart = builder.build_cartesian_2d(x, y)?;
    let mut mesh = chart.configure_mesh();
    mesh.light_line_style(RGBColor(235, 235, 235));
    if text {
        mesh.x_desc("epoch")
            .y_desc(y_desc)
            .label_style(("sans-serif", 14))
            .x_label_formatter(&epoch_label);
    }
    mesh.draw()?;
    for (label, color, pts) in series {
        if pts.is_empty() {
            continue;
        }
        let color = *color;
        let line =
            chart.draw_series(LineSeries::new(pts.iter().copied(), color.stroke_width(2)))?;
        if text {
            line.label(*label).legend(move |(x, y)| {
                PathElement::new([(x, y), (x + 20, y)], color.stroke_width(2))
            });
        }
        // Markers, so a single epoch still shows up.
        chart.draw_series(pts.iter().map(|&p| Circle::new(p, 3, color.filled())))?;
    }
    if text && series.iter().any(|s| !s.2.is_empty()) {
        chart
            .configure_series_labels()
            .position(legend_at)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font(("sans-serif", 14))
            .draw()?;
    }
    Ok(())
}

/// Tick labels on whole epochs only.
fn epoch_label(v: &f64) -> String {
    if (v - v.round()).abs() < 1e-9 {
        format!("{}", v.round())
    } else {
        String::new()
    }
}

fn extend(acc: Option<(f64, f64)>, v: f64) -> Option<(f64, f64)> {
    if !v.is_finite() {
        return acc;
    }
    Some(match acc {
        None => (v, v),
        Some((lo, hi)) => (lo.min(v), hi.max(v)),
    })
}

/// The range widened by `frac` of its span on each side (by 0.5 when it is a single value, 0..1
/// when empty): the y axis of a panel.
fn padded(r: Option<(f64, f64)>, frac: f64) -> Range<f64> {
    match r {
        None => 0.0..1.0,
        Some((lo, hi)) if hi - lo <= f64::EPSILON * hi.abs().max(1.0) => lo - 0.5..hi + 0.5,
        Some((lo, hi)) => {
            let pad = (hi - lo) * frac;
            lo - pad..hi + pad
        }
    }
}

/// Writes `n` grayscale images (`images` is `[n, h, w]`, values in [0, 1], clamped) as one PNG grid
/// with `cols` columns (fewer if `n < cols`), atomically. Tiles are separated and framed by a
/// 2-pixel mid-gray border, so the PNG is `cols*w + 2*(cols+1)` by `rows*h + 2*(rows+1)` pixels.
pub fn save_image_grid(
    path: &Path,
    images: &[f32],
    n: usize,
    h: usize,
    w: usize,
    cols: usize,
) -> Result<()> {
    const PAD: usize = 2;
    const BORDER: u8 = 128;
    let invalid = |reason: String| ReportError::InvalidArgument {
        path: path.to_path_buf(),
        reason,
    };
    if n == 0 || h == 0 || w == 0 || cols == 0 {
        return Err(invalid(format!(
            "image grid needs n, h, w, cols > 0 (got {n}, {h}, {w}, {cols})"
        )));
    }
    if n.checked_mul(h).and_then(|x| x.checked_mul(w)) != Some(images.len()) {
        return Err(invalid(format!(
            "image grid: {} values given for {n} images of {h}x{w}",
            images.len()
        )));
    }
    let cols = cols.min(n);
    let rows = n.div_ceil(cols);
    let (gw, gh) = (cols * w + PAD * (cols + 1), rows * h + PAD * (rows + 1));
    let (gw32, gh32) = match (u32::try_from(gw), u32::try_from(gh)) {
        (Ok(a), Ok(b)) => (a, b),
        _ => {
            return Err(invalid(format!(
                "image grid of {gw}x{gh} pixels is too large"
            )));
        }
    };
    let mut pixels = vec![BORDER; gw * gh];
    for (i, img) in images.chunks_exact(h * w).enumerate() {
        let (r, c) = (i / cols, i % cols);
        let (y0, x0) = (PAD + r * (h + PAD), PAD + c * (w + PAD));
        for (y, row) in img.chunks_exact(w).enumerate() {
            let dst = &mut pixels[(y0 + y) * gw + x0..][..w];
            for (d, &v) in dst.iter_mut().zip(row) {
                // NaN becomes 0 (f32::clamp keeps NaN, and `as u8` maps NaN to 0).
                *d = (v.clamp(0.0, 1.0) * 255.0).round() as u8;
            }
        }
    }
    // Empty cells of the last row stay border-gray.
    let png = encode_png(path, &pixels, gw32, gh32, png::ColorType::Grayscale)?;
    write_atomic(path, |f| f.write_all(&png)).map_err(io_err(path))
}

fn encode_png(path: &Path, data: &[u8], w: u32, h: u32, color: png::ColorType) -> Result<Vec<u8>> {
    let png_err = |source| ReportError::Png {
        path: path.to_path_buf(),
        source,
    };
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, w, h);
    enc.set_color(color);
    enc.set_depth(png::BitDepth::Eight);
    let mut writer = enc.write_header().map_err(png_err)?;
    writer.write_image_data(data).map_err(png_err)?;
    writer.finish().map_err(png_err)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    type TestResult = std::result::Result<(), Box<dyn std::error::Error>>;

    fn history(n: usize, acc: bool) -> Vec<EpochMetrics> {
        (1..=n)
            .map(|e| {
                let t = e as f64;
                EpochMetrics {
                    epoch: e,
                    train_loss: 2.3 / t + 0.05,
                    train_acc: acc.then(|| 1.0 - 0.5 / t),
                    test_loss: 2.2 / t + 0.1,
                    test_acc: acc.then(|| 0.97 - 0.45 / t),
                    seconds: 1.5 * t,
                }
            })
            .collect()
    }

    fn png_size(
        bytes: &[u8],
    ) -> std::result::Result<(u32, u32, png::ColorType), Box<dyn std::error::Error>> {
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
        let mut reader = png::Decoder::new(io::Cursor::new(bytes)).read_info()?;
        let mut buf = vec![0; reader.output_buffer_size().ok_or("png too large")?];
        let info = reader.next_frame(&mut buf)?;
        Ok((info.width, info.height, info.color_type))
    }

    #[test]
    fn jsonl_round_trip_skips_a_torn_last_line() -> TestResult {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("run/metrics.jsonl");
        let hist = history(3, true);
        for m in &hist {
            append_jsonl(&path, m)?;
        }
        let mut no_acc = history(4, false).pop().ok_or("empty")?;
        no_acc.seconds = 0.25;
        append_jsonl(&path, &no_acc)?;
        let mut want = hist.clone();
        want.push(no_acc.clone());
        assert_eq!(read_jsonl(&path)?, want);
        assert_eq!(fs::read_to_string(&path)?.lines().count(), 4);

        // A crash mid-write leaves part of a line and no newline: ignored on read...
        let mut f = OpenOptions::new().append(true).open(&path)?;
        f.write_all(br#"{"epoch":5,"train_loss":0.1"#)?;
        drop(f);
        assert_eq!(read_jsonl(&path)?, want);
        // ...and cut off before the next append, so the file stays valid.
        let next = history(5, true).pop().ok_or("empty")?;
        append_jsonl(&path, &next)?;
        want.push(next);
        assert_eq!(read_jsonl(&path)?, want);

        // Corruption that is not a torn tail is an error naming the line.
        let bad = dir.path().join("bad.jsonl");
        fs::write(&bad, "{\"epoch\":1}\n")?; // missing fields, complete line
        assert!(matches!(
            read_jsonl(&bad),
            Err(ReportError::Json { line: 1, .. })
        ));
        let text = fs::read_to_string(&path)?;
        let mut lines: Vec<&str> = text.lines().collect();
        lines[1] = "garbage";
        fs::write(&bad, lines.join("\n") + "\n")?;
        let e = read_jsonl(&bad).unwrap_err();
        assert!(matches!(e, ReportError::Json { line: 2, .. }), "{e}");
        assert!(e.to_string().contains("bad.jsonl"), "{e}");

        // write_jsonl rewrites the history (e.g. --resume from an earlier epoch).
        write_jsonl(&path, &want[..2])?;
        assert_eq!(read_jsonl(&path)?, &want[..2]);
        // A diverged loss is written as null and read back as NaN.
        let nan = dir.path().join("nan.jsonl");
        let mut diverged = history(1, false).remove(0);
        diverged.train_loss = f64::NAN;
        diverged.test_loss = f64::INFINITY;
        append_jsonl(&nan, &diverged)?;
        assert!(fs::read_to_string(&nan)?.contains(r#""train_loss":null"#));
        let back = read_jsonl(&nan)?;
        assert!(back[0].train_loss.is_nan() && back[0].test_loss.is_nan());

        // Empty and missing files.
        fs::write(&bad, "")?;
        assert!(read_jsonl(&bad)?.is_empty());
        assert!(matches!(
            read_jsonl(&dir.path().join("nope.jsonl")),
            Err(ReportError::Io { .. })
        ));
        Ok(())
    }

    #[test]
    fn plot_curves_writes_a_png() -> TestResult {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("plots/curves.png");
        let mut hist = history(20, true);
        hist[4].test_acc = None; // a missing value is skipped
        plot_curves(&path, &hist, "MLP on MNIST (test)")?;
        let bytes = fs::read(&path)?;
        assert!(bytes.len() > 1024, "{} bytes", bytes.len());
        assert_eq!(png_size(&bytes)?, (1200, 480, png::ColorType::Rgb));
        if let Some(keep) = std::env::var_os("WGRAD_KEEP_PLOT") {
            fs::copy(&path, keep)?;
        }

        // Loss only: one panel. A single epoch and a NaN loss still draw.
        let mut one = history(1, false);
        one[0].test_loss = f64::NAN;
        plot_curves(&path, &one, "one epoch")?;
        assert_eq!(png_size(&fs::read(&path)?)?.0, 700);
        plot_curves(&path, &[], "empty")?;

        // Without a font: no text, but the curves are drawn and nothing fails.
        let bare = dir.path().join("bare.png");
        plot_curves_with(&bare, &hist, "no font", false)?;
        let bytes = fs::read(&bare)?;
        assert!(bytes.len() > 1024);
        assert_eq!(png_size(&bytes)?.0, 1200);
        let leftovers: Vec<_> = fs::read_dir(dir.path().join("plots"))?.collect();
        assert_eq!(leftovers.len(), 1, "temp files left: {leftovers:?}");
        Ok(())
    }

    #[test]
    fn image_grid_has_the_documented_size() -> TestResult {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("recon.png");
        let (n, h, w) = (10, 28, 28);
        // Image i is a horizontal ramp with brightness scaled by i; out-of-range values clamp.
        let images: Vec<f32> = (0..n * h * w)
            .map(|k| (k / (h * w)) as f32 / 9.0 * ((k % w) as f32 / (w - 1) as f32) * 1.2 - 0.1)
            .collect();
        save_image_grid(&path, &images, n, h, w, 4)?;
        let bytes = fs::read(&path)?;
        // 4 columns, 3 rows: 4*28 + 2*5 = 122 wide, 3*28 + 2*4 = 92 high.
        assert_eq!(png_size(&bytes)?, (122, 92, png::ColorType::Grayscale));
        if let Some(keep) = std::env::var_os("WGRAD_KEEP_GRID") {
            fs::copy(&path, keep)?;
        }

        // Pixel check: image 0 is all <= 0 (black); the top-left corner is border gray.
        let mut reader = png::Decoder::new(io::Cursor::new(&bytes)).read_info()?;
        let mut px = vec![0; reader.output_buffer_size().ok_or("png too large")?];
        reader.next_frame(&mut px)?;
        assert_eq!(px[0], 128);
        assert_eq!(px[2 * 122 + 2], 0);
        // Image 9 (row 2, col 1) at its right edge: 1.2 - 0.1 clamps to 1.0 -> 255.
        assert_eq!(px[(2 + 2 * 30) * 122 + 2 + 30 + 27], 255);

        // More columns than images: the grid is only as wide as needed.
        save_image_grid(&path, &images[..2 * h * w], 2, h, w, 8)?;
        assert_eq!(png_size(&fs::read(&path)?)?.0, 2 * 28 + 6);
        // Wrong lengths are errors, not panics.
        assert!(matches!(
            save_image_grid(&path, &images[1..], n, h, w, 4),
            Err(ReportError::InvalidArgument { .. })
        ));
        assert!(save_image_grid(&path, &images, n, h, w, 0).is_err());
        Ok(())
    }
}
