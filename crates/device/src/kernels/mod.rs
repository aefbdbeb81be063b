//! Kernel families: one WGSL file in `shaders/` and one launcher module each.

pub(crate) mod binary;
mod conv;
mod fill;
pub(crate) mod fused;
mod matmul;
mod movement;
mod optim;
mod pool;
pub(crate) mod random;
mod reduce;
pub(crate) mod unary;
mod wide;

pub use binary::BinaryOp;
pub use conv::Conv2dParams;
pub use matmul::{Epilogue, Transpose};
pub use optim::OptimRule;
pub use pool::Pool2dParams;
pub use reduce::ReduceOp;
pub use unary::UnaryOp;

/// A kernel family: one WGSL source file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kernel {
    Unary,
    Binary,
    Fill,
    Random,
    Matmul,
    MatmulSubgroup,
    MatmulWide,
    Conv,
    Pool,
    Reduce,
    Movement,
    Optim,
    OptimWide,
    Wide,
}

impl Kernel {
    pub const ALL: [Kernel; 14] = [
        Kernel::Unary,
        Kernel::Binary,
        Kernel::Fill,
        Kernel::Random,
        Kernel::Matmul,
        Kernel::MatmulSubgroup,
        Kernel::MatmulWide,
        Kernel::Conv,
        Kernel::Pool,
        Kernel::Reduce,
        Kernel::Movement,
        Kernel::Optim,
        Kernel::OptimWide,
        Kernel::Wide,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Kernel::Unary => "unary",
            Kernel::Binary => "binary",
            Kernel::Fill => "fill",
            Kernel::Random => "random",
            Kernel::Matmul => "matmul",
            Kernel::MatmulSubgroup => "matmul_subgroup",
            Kernel::MatmulWide => "matmul_wide",
            Kernel::Conv => "conv",
            Kernel::Pool => "pool",
            Kernel::Reduce => "reduce",
            Kernel::Movement => "movement",
            Kernel::Optim => "optim",
            Kernel::OptimWide => "optim_wide",
            Kernel::Wide => "wide",
        }
    }

    pub fn source(self) -> &'static str {
        match self {
            // The element-wise op tables are shared by the three families (see elementwise.wgsl).
            Kernel::Unary => concat!(
                include_str!("../../../../shaders/elementwise.wgsl"),
                include_str!("../../../../shaders/unary.wgsl")
            ),
            Kernel::Binary => concat!(
                include_str!("../../../../shaders/elementwise.wgsl"),
                include_str!("../../../../shaders/binary.wgsl")
            ),
            Kernel::Wide => concat!(
                include_str!("../../../../shaders/elementwise.wgsl"),
                include_str!("../../../../shaders/words.wgsl"),
                include_str!("../../../../shaders/copy_tiles.wgsl"),
                include_str!("../../../../shaders/wide.wgsl")
            ),
            Kernel::Fill => include_str!("../../../../shaders/fill.wgsl"),
            Kernel::Random => include_str!("../../../../shaders/random.wgsl"),
            Kernel::Matmul => include_str!("../../../../shaders/matmul.wgsl"),
            Kernel::MatmulSubgroup => include_str!("../../../../shaders/matmul_subgroup.wgsl"),
            Kernel::MatmulWide => concat!(
                include_str!("../../../../shaders/words.wgsl"),
                include_str!("../../../../shaders/matmul_wide.wgsl")
            ),
            Kernel::Conv => include_str!("../../../../shaders/conv.wgsl"),
            Kernel::Pool => include_str!("../../../../shaders/pool.wgsl"),
            Kernel::Reduce => include_str!("../../../../shaders/reduce.wgsl"),
            // The strided copy's tiles are shared with wide.wgsl's copy8 (see copy_tiles.wgsl).
            Kernel::Movement => concat!(
                include_str!("../../../../shaders/copy_tiles.wgsl"),
                include_str!("../../../../shaders/movement.wgsl")
            ),
            Kernel::Optim => include_str!("../../../../shaders/optim.wgsl"),
            // The updates of optim.wgsl a word per access (needs SHADER_INT64).
            Kernel::OptimWide => concat!(
                include_str!("../../../../shaders/words.wgsl"),
                include_str!("../../../../shaders/optim.wgsl"),
                include_str!("../../../../shaders/optim_wide.wgsl")
            ),
        }
    }
}

/// The element-wise op tables (`shaders/elementwise.wgsl`) and the word helpers
/// (`shaders/words.wgsl`), for the generated kernels of `fused`.
pub(crate) const ELEMENTWISE: &str = include_str!("../../../../shaders/elementwise.wgsl");
pub(crate) const WORDS: &str = include_str!("../../../../shaders/words.wgsl");

/// Invocations per workgroup of the 1-D kernels (`@workgroup_size(256)` in their WGSL).
pub(crate) const WG: u64 = 256;

/// Workgroups needed to cover `n` elements with 1-D kernels.
pub(crate) fn groups(n: usize) -> u64 {
    (n as u64).div_ceil(WG)
}

/// Row-major strides of a contiguous shape.
pub(crate) fn contiguous_strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * shape[i + 1];
    }
    s
}

/// Max rank of the strided kernels (binary broadcast, copy); params carry arrays of this length.
pub const MAX_DIMS: usize = 8;

/// Packs a shape-like list into a fixed-size params array.
pub(crate) fn pack(vals: &[usize]) -> [u32; MAX_DIMS] {
    let mut out = [0u32; MAX_DIMS];
    for (o, &v) in out.iter_mut().zip(vals) {
        *o = v as u32;
    }
    out
}
