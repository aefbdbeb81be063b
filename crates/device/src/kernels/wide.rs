//! Launcher for `shaders/wide.wgsl`: the element-wise and row-sum kernels that move eight f32 per
//! storage access, on devices with `DeviceInfo::wide_storage`. The unary, binary and reduce
//! launchers ask here first and fall back to their vec4 kernels where these do not fit.

use bytemuck::{Pod, Zeroable};

use super::{Kernel, groups};
use crate::context::{Device, ro, rw};
use crate::error::Result;
use crate::pool::PooledBuffer;

/// f32 per word (one vec4<u64> access).
const WORD: usize = 8;
/// Words per invocation of unary8 and binary8.
const WORDS_PER_INVOCATION: usize = 2;

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct EwParams {
    n: u32,
    _p: [u32; 3],
    s: [f32; 4],
}

/// Whether the wide kernels may run over `n` elements of each of `arrays`: the device has them and
/// every buffer holds whole words past `n` (pool classes are multiples of 32 bytes, except a
/// buffer capped at the binding limit).
pub(crate) fn fits(dev: &Device, buffers: &[&PooledBuffer], n: usize) -> bool {
    let bytes = (n.div_ceil(WORD) * WORD * 4) as u64;
    dev.wide_storage() && buffers.iter().all(|b| b.size() >= bytes)
}

/// out = OP(x; s) over the first `n` elements, when the wide kernel fits; false otherwise (nothing
/// recorded).
pub(crate) fn unary(
    dev: &Device,
    x: &PooledBuffer,
    out: &PooledBuffer,
    n: usize,
    constants: &[(&'static str, f64)],
    s: [f32; 4],
) -> Result<bool> {
    if !fits(dev, &[x, out], n) {
        return Ok(false);
    }
    let params = EwParams {
        n: n as u32,
        _p: [0; 3],
        s,
    };
    dev.dispatch(
        Kernel::Wide,
        "unary8",
        constants,
        &params,
        &[rw(1, out), ro(2, x)],
        groups(n.div_ceil(WORD * WORDS_PER_INVOCATION)),
    )?;
    Ok(true)
}

/// out = POST1(POST0(OP(a, b))) over `n` elements of three same-shape arrays, when the wide kernel
/// fits; false otherwise (nothing recorded).
pub(crate) fn binary(
    dev: &Device,
    a: &PooledBuffer,
    b: &PooledBuffer,
    out: &PooledBuffer,
    n: usize,
    constants: &[(&'static str, f64)],
    s: [f32; 4],
) -> Result<bool> {
    if !fits(dev, &[a, b, out], n) {
        return Ok(false);
    }
    let params = EwParams {
        n: n as u32,
        _p: [0; 3],
        s,
    };
    dev.dispatch(
        Kernel::Wide,
        "binary8",
        constants,
        &params,
        &[rw(1, out), ro(2, a), ro(3, b)],
        groups(n.div_ceil(WORD * WORDS_PER_INVOCATION)),
    )?;
    Ok(true)
}

/// reduce.wgsl's `sum_rows4` pass ([outer, len] -> [outer, nchunk] chunk sums, `params` in its
/// layout) with two vec4 per load, when it fits: len and chunk multiples of 8. Same bits as
/// `sum_rows4`. False otherwise (nothing recorded).
pub(crate) fn sum_rows<P: Pod>(
    dev: &Device,
    x: &PooledBuffer,
    out: &PooledBuffer,
    (outer, len, chunk): (usize, usize, usize),
    params: &P,
) -> Result<bool> {
    if !len.is_multiple_of(WORD) || !chunk.is_multiple_of(WORD) || !fits(dev, &[x], outer * len) {
        return Ok(false);
    }
    dev.dispatch(
        Kernel::Wide,
        "sum_rows8",
        &[],
        params,
        &[rw(1, out), ro(2, x)],
        groups(outer * len.div_ceil(chunk)),
    )?;
    Ok(true)
}
