//! Launcher for `shaders/wide.wgsl`: the element-wise, fill, row-sum, softmax and strided-copy
//! kernels that move eight f32 per storage access, on devices with `DeviceInfo::wide_storage`. The
//! unary, binary, fill, reduce and movement launchers ask here first and fall back to their own
//! kernels where these do not fit.

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
    /// fill8's 32-bit pattern.
    word: u32,
    _p: [u32; 2],
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
        word: 0,
        _p: [0; 2],
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
        word: 0,
        _p: [0; 2],
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

/// The first `n` elements of `out` set to the 32-bit pattern `word`, a word per store, when the
/// wide kernels fit; false otherwise (nothing recorded).
pub(crate) fn fill(dev: &Device, out: &PooledBuffer, n: usize, word: u32) -> Result<bool> {
    if !fits(dev, &[out], n) {
        return Ok(false);
    }
    let params = EwParams {
        n: n as u32,
        word,
        _p: [0; 2],
        s: [0.0; 4],
    };
    dev.dispatch(
        Kernel::Wide,
        "fill8",
        &[],
        &params,
        &[rw(1, out)],
        groups(n.div_ceil(WORD)),
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

/// reduce.wgsl's `softmax_rows4` (`code` 0 softmax, 1 log-softmax; `params` in its layout) over
/// contiguous rows [outer, len] with two vec4 per access, when len is a multiple of 8. Same bits as
/// `softmax_rows4`. False otherwise (nothing recorded).
pub(crate) fn softmax_rows<P: Pod>(
    dev: &Device,
    x: &PooledBuffer,
    out: &PooledBuffer,
    (outer, len): (usize, usize),
    code: u32,
    params: &P,
) -> Result<bool> {
    if !len.is_multiple_of(WORD) || !fits(dev, &[x, out], outer * len) {
        return Ok(false);
    }
    dev.dispatch(
        Kernel::Wide,
        "softmax_rows8",
        &[("OP", f64::from(code))],
        params,
        &[rw(1, out), ro(2, x)],
        groups(outer),
    )?;
    Ok(true)
}

/// movement.wgsl's strided copy (`params` in its layout, over `tiles` tiles) with a word per access,
/// when the collapsed `shape` and strides (see `copy_tiles.wgsl`) and the offsets allow it: the
/// tile's rows are runs of whole words in both arrays, or the copy is a transpose of whole 8 x 8
/// tiles (x's tile columns and y's tile rows are words). False otherwise (nothing recorded).
pub(crate) fn copy<P: Pod>(
    dev: &Device,
    x: &PooledBuffer,
    out: &PooledBuffer,
    (shape, is, os): (&[usize], &[usize], &[usize]),
    (in_off, out_off): (usize, usize),
    (params, tiles): (&P, usize),
) -> Result<bool> {
    let r = shape.len();
    let aligned = |v: usize| v.is_multiple_of(WORD);
    // Every dim but the tile's columns (rows: the tile's rows too) steps by whole words.
    let outer_aligned = |dims: usize| (0..dims).all(|d| aligned(is[d]) && aligned(os[d]));
    if !dev.wide_storage() || !aligned(in_off) || !aligned(out_off) || !aligned(shape[r - 1]) {
        return Ok(false);
    }
    let mode = if is[r - 1] == 1 && os[r - 1] == 1 && outer_aligned(r - 1) {
        0.0
    } else if r > 1
        && is[r - 2] == 1
        && os[r - 1] == 1
        && aligned(shape[r - 2])
        && aligned(is[r - 1])
        && aligned(os[r - 2])
        && outer_aligned(r - 2)
    {
        1.0
    } else {
        return Ok(false);
    };
    dev.dispatch(
        Kernel::Wide,
        "copy8",
        &[("RANK", r as f64), ("COPY_MODE", mode)],
        params,
        &[rw(1, out), ro(2, x)],
        groups(tiles),
    )?;
    Ok(true)
}
