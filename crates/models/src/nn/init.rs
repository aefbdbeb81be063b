//! Parameter initialisers. Draws come from the device's counter-based generator, so the same seed
//! gives the same parameters on every adapter.

use wgrad_graph::{Device, Distribution, GraphError, Result, Tensor};

/// How to fill a new parameter. Fan-in / fan-out are those of a `[fan_in, fan_out]` matrix or of a
/// conv kernel `[out, in, kh, kw]` (fan_in = in·kh·kw, fan_out = out·kh·kw).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Init {
    Zeros,
    Constant(f32),
    Normal {
        std: f32,
    },
    Uniform {
        bound: f32,
    },
    /// Glorot: U(-a, a) with a = gain·sqrt(6 / (fan_in + fan_out)).
    XavierUniform {
        gain: f32,
    },
    /// Glorot: N(0, gain²·2 / (fan_in + fan_out)).
    XavierNormal {
        gain: f32,
    },
    /// He: U(-a, a) with a = gain·sqrt(3 / fan_in); gain sqrt(2) for ReLU.
    KaimingUniform {
        gain: f32,
    },
    /// He: N(0, gain² / fan_in).
    KaimingNormal {
        gain: f32,
    },
    /// A (semi-)orthogonal matrix (QR of a Gaussian matrix), scaled by gain.
    Orthogonal {
        gain: f32,
    },
}

impl Init {
    pub const RELU_GAIN: f32 = std::f32::consts::SQRT_2;
}

/// Hands out initialised parameters from one seed, each draw with its own counter offset.
pub struct Initializer {
    dev: Device,
    seed: u64,
    draws: u32,
}

impl Initializer {
    pub fn new(dev: &Device, seed: u64) -> Self {
        Self {
            dev: dev.clone(),
            seed,
            draws: 0,
        }
    }

    pub fn device(&self) -> &Device {
        &self.dev
    }

    /// A new leaf parameter (requires grad) of `shape`.
    pub fn param(&mut self, shape: &[usize], init: Init) -> Result<Tensor> {
        Ok(self.tensor(shape, init)?.requires_grad())
    }

    /// A tensor of `shape` drawn from `init` (not requiring grad).
    pub fn tensor(&mut self, shape: &[usize], init: Init) -> Result<Tensor> {
        let (fan_in, fan_out) = fans(shape);
        let offset = self.draws;
        self.draws += 1;
        let dist = |d| Tensor::random(shape, d, self.seed, offset, &self.dev);
        let uniform = |a: f32| dist(Distribution::Uniform { low: -a, high: a });
        let normal = |s: f32| dist(Distribution::Normal { mean: 0.0, std: s });
        match init {
            Init::Zeros => Tensor::zeros(shape, &self.dev),
            Init::Constant(v) => Tensor::full(shape, v, &self.dev),
            Init::Normal { std } => normal(std),
            Init::Uniform { bound } => uniform(bound),
            Init::XavierUniform { gain } => {
                uniform(gain * (6.0 / (fan_in + fan_out) as f32).sqrt())
            }
            Init::XavierNormal { gain } => normal(gain * (2.0 / (fan_in + fan_out) as f32).sqrt()),
            Init::KaimingUniform { gain } => uniform(gain * (3.0 / fan_in as f32).sqrt()),
            Init::KaimingNormal { gain } => normal(gain / (fan_in as f32).sqrt()),
            Init::Orthogonal { gain } => {
                let rows = shape.first().copied().unwrap_or(1);
                let cols = shape.iter().skip(1).product::<usize>().max(1);
                let g = normal(1.0)?.to_vec()?;
                let q = orthogonal(&g, rows, cols).ok_or(GraphError::InvalidArgument {
                    op: "orthogonal init",
                    reason: format!("QR failed for shape {shape:?}"),
                })?;
                Tensor::from_vec(q.iter().map(|v| v * gain).collect(), shape, &self.dev)
            }
        }
    }
}

/// (fan_in, fan_out) of a parameter shape: [in, out] for matrices, [out, in, k..] for kernels.
fn fans(shape: &[usize]) -> (usize, usize) {
    match shape.len() {
        0 => (1, 1),
        1 => (shape[0], shape[0]),
        2 => (shape[0], shape[1]),
        _ => {
            let rf: usize = shape[2..].iter().product();
            (shape[1] * rf, shape[0] * rf)
        }
    }
}

/// Rows x cols with orthonormal rows (rows <= cols) or columns, from Gaussian values `g`.
fn orthogonal(g: &[f32], rows: usize, cols: usize) -> Option<Vec<f32>> {
    let tall = rows >= cols;
    let (r, c) = if tall { (rows, cols) } else { (cols, rows) };
    let m = nalgebra::DMatrix::from_fn(r, c, |i, j| f64::from(g[i * c + j]));
    let qr = m.qr();
    let mut q = qr.q();
    // Sign-fix so the distribution is uniform (Mezzadri 2007): multiply columns by sign(diag R).
    let rdiag = qr.r().diagonal();
    for j in 0..c {
        if rdiag[j] < 0.0 {
            q.column_mut(j).neg_mut();
        }
    }
    if !q.iter().all(|v| v.is_finite()) {
        return None;
    }
    let q = if tall { q } else { q.transpose() };
    Some(
        (0..rows)
            .flat_map(|i| (0..cols).map(move |j| (i, j)))
            .map(|(i, j)| q[(i, j)] as f32)
            .collect(),
    )
}
