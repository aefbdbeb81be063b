//! Launcher for `shaders/random.wgsl`: counter-based (Threefry-2x32) uniform, normal, bernoulli.

use bytemuck::{Pod, Zeroable};

use super::{Kernel, groups};
use crate::array::{DType, GpuArray};
use crate::context::{Device, rw};
use crate::error::Result;

/// Which distribution to draw from.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Distribution {
    /// Uniform on `[low, high)`.
    Uniform { low: f32, high: f32 },
    /// Normal with the given mean and standard deviation.
    Normal { mean: f32, std: f32 },
    /// 1.0 with probability `p`, else 0.0.
    Bernoulli { p: f32 },
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Params {
    n: u32,
    k0: u32,
    k1: u32,
    offset: u32,
    a: f32,
    b: f32,
    _p: [u32; 2],
}

impl GpuArray {
    /// Draws `shape` values. Element `i` depends only on `(seed, offset, i)`, so a draw is
    /// reproducible on every adapter; callers advance `offset` (or the seed) between draws.
    pub fn random(
        dev: &Device,
        shape: &[usize],
        dist: Distribution,
        seed: u64,
        offset: u32,
    ) -> Result<GpuArray> {
        let out = GpuArray::uninit(dev, "random", shape, DType::F32)?;
        let n = out.numel();
        let (entry, a, b) = match dist {
            Distribution::Uniform { low, high } => ("uniform", low, high),
            Distribution::Normal { mean, std } => ("normal", mean, std),
            Distribution::Bernoulli { p } => ("bernoulli", p, 0.0),
        };
        let params = Params {
            n: n as u32,
            k0: seed as u32,
            k1: (seed >> 32) as u32,
            offset,
            a,
            b,
            _p: [0; 2],
        };
        dev.dispatch(
            Kernel::Random,
            entry,
            &[],
            &params,
            &[rw(1, &out.buf)],
            groups(n),
        )?;
        Ok(out)
    }
}

/// Threefry-2x32 (20 rounds) on the host: the reference the GPU kernel is tested against, and a
/// seeded generator for host-side shuffles that match the device's stream.
pub fn threefry2x32(key: [u32; 2], counter: [u32; 2]) -> [u32; 2] {
    const ROT: [u32; 8] = [13, 15, 26, 6, 17, 29, 16, 24];
    let ks = [key[0], key[1], key[0] ^ key[1] ^ 0x1BD1_1BDA];
    let mut x0 = counter[0].wrapping_add(ks[0]);
    let mut x1 = counter[1].wrapping_add(ks[1]);
    for i in 0..20u32 {
        x0 = x0.wrapping_add(x1);
        x1 = x1.rotate_left(ROT[(i % 8) as usize]);
        x1 ^= x0;
        if i % 4 == 3 {
            let s = i / 4 + 1;
            x0 = x0.wrapping_add(ks[(s % 3) as usize]);
            x1 = x1.wrapping_add(ks[((s + 1) % 3) as usize]).wrapping_add(s);
        }
    }
    [x0, x1]
}
