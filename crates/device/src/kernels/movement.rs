//! Launcher for `shaders/movement.wgsl`: strided copy and the ops built on it (permute, transpose,
//! broadcast, narrow, concat, pad), index_select, gather, and their scatter-add inverses.

use bytemuck::{Pod, Zeroable};

use super::binary::{broadcast_strides, collapse};
use super::{Kernel, MAX_DIMS, contiguous_strides, groups, pack, wide};
use crate::array::{DType, GpuArray, numel};
use crate::context::{ro, rw};
use crate::error::{DeviceError, Result};

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable, Default)]
struct Params {
    n: u32,
    rank: u32,
    in_off: u32,
    out_off: u32,
    shape: [u32; MAX_DIMS],
    is: [u32; MAX_DIMS],
    os: [u32; MAX_DIMS],
}

/// One strided copy: iterate `shape`, read `src` at `in_off + k·is`, write `dst` at `out_off + k·os`.
struct Strided<'a> {
    shape: &'a [usize],
    is: &'a [usize],
    in_off: usize,
    os: &'a [usize],
    out_off: usize,
}

fn copy_into(dst: &GpuArray, src: &GpuArray, s: Strided<'_>) -> Result<()> {
    if s.shape.len() > MAX_DIMS {
        return Err(DeviceError::InvalidShape {
            op: "copy",
            shape: s.shape.to_vec(),
            reason: format!("rank above {MAX_DIMS}"),
        });
    }
    if numel(s.shape) == 0 {
        return Ok(());
    }
    let (shape, strides) = collapse(s.shape, &[s.is.to_vec(), s.os.to_vec()]);
    let (is, os) = (&strides[0], &strides[1]);
    let r = shape.len();
    let tiles = copy_tiles(&shape);
    let p = Params {
        n: tiles as u32,
        rank: r as u32,
        in_off: s.in_off as u32,
        out_off: s.out_off as u32,
        shape: pack(&shape),
        is: pack(is),
        os: pack(os),
    };
    let words = wide::copy(
        &dst.dev,
        &src.buf,
        &dst.buf,
        (&shape, is, os),
        (s.in_off, s.out_off),
        (&p, tiles),
    )?;
    if words {
        return Ok(());
    }
    dst.dev.dispatch(
        Kernel::Movement,
        "copy",
        &[("RANK", r as f64)],
        &p,
        &[rw(1, &dst.buf), ro(2, &src.buf)],
        groups(tiles),
    )
}

/// The copy kernels' tile (`TILE_ROWS` and `TILE_COLS` in copy_tiles.wgsl).
const COPY_TILE_ROWS: usize = 8;
const COPY_TILE_COLS: usize = 8;

/// Tiles of 8 x 8 over the last two dims of `shape` (1 x 8 at rank 1), one per invocation of the
/// copy kernels (copy_tiles.wgsl). `shape` has at least one dim.
fn copy_tiles(shape: &[usize]) -> usize {
    let r = shape.len();
    let (rows, cols) = (if r > 1 { shape[r - 2] } else { 1 }, shape[r - 1]);
    let tile_rows = if r > 1 { COPY_TILE_ROWS } else { 1 };
    let planes = numel(shape) / (rows * cols);
    planes * rows.div_ceil(tile_rows) * cols.div_ceil(COPY_TILE_COLS)
}

/// movement.wgsl's `pad` parameters: the copy's over the output, then where x lies in each dim
/// and the fill value's bits.
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct PadParams {
    copy: Params,
    lo: [u32; MAX_DIMS],
    len: [u32; MAX_DIMS],
    value: [u32; 4],
}

/// Normalises a dimension index, naming `op` on failure.
fn dim_of(op: &'static str, shape: &[usize], dim: usize) -> Result<usize> {
    if dim < shape.len() {
        Ok(dim)
    } else {
        Err(DeviceError::InvalidArgument {
            op,
            reason: format!("dim {dim} out of range for shape {shape:?}"),
        })
    }
}

/// [outer, size, inner] around `dim`.
fn around(shape: &[usize], dim: usize) -> (usize, usize, usize) {
    (
        shape[..dim].iter().product(),
        shape[dim],
        shape[dim + 1..].iter().product(),
    )
}

impl GpuArray {
    /// A contiguous copy with dims reordered: output dim i is input dim `dims[i]`.
    pub fn permute(&self, dims: &[usize]) -> Result<GpuArray> {
        let r = self.shape.len();
        let mut seen = vec![false; r];
        if dims.len() != r
            || dims
                .iter()
                .any(|&d| d >= r || std::mem::replace(&mut seen[d], true))
        {
            return Err(DeviceError::InvalidArgument {
                op: "permute",
                reason: format!(
                    "{dims:?} is not a permutation of the dims of {:?}",
                    self.shape
                ),
            });
        }
        let cs = contiguous_strides(&self.shape);
        let shape: Vec<usize> = dims.iter().map(|&d| self.shape[d]).collect();
        let is: Vec<usize> = dims.iter().map(|&d| cs[d]).collect();
        let out = GpuArray::uninit(&self.dev, "permute", &shape, self.dtype)?;
        let os = contiguous_strides(&shape);
        copy_into(
            &out,
            self,
            Strided {
                shape: &shape,
                is: &is,
                in_off: 0,
                os: &os,
                out_off: 0,
            },
        )?;
        Ok(out)
    }

    /// Overwrites this array's storage in place with `src` (same shape and dtype), on the device.
    /// Every handle sharing the storage sees the new values.
    pub fn assign(&self, src: &GpuArray) -> Result<()> {
        self.same_device("assign", src)?;
        src.expect_dtype("assign", self.dtype)?;
        if src.shape != self.shape {
            return Err(DeviceError::ShapeMismatch {
                op: "assign",
                lhs: self.shape.clone(),
                rhs: src.shape.clone(),
                detail: String::new(),
            });
        }
        let cs = contiguous_strides(&self.shape);
        copy_into(
            self,
            src,
            Strided {
                shape: &self.shape,
                is: &cs,
                in_off: 0,
                os: &cs,
                out_off: 0,
            },
        )
    }

    /// Swaps two dims (a contiguous copy).
    pub fn transpose(&self, d0: usize, d1: usize) -> Result<GpuArray> {
        dim_of("transpose", &self.shape, d0)?;
        dim_of("transpose", &self.shape, d1)?;
        let mut dims: Vec<usize> = (0..self.shape.len()).collect();
        dims.swap(d0, d1);
        self.permute(&dims)
    }

    /// Materialises a NumPy broadcast of this array to `shape`.
    pub fn broadcast_to(&self, shape: &[usize]) -> Result<GpuArray> {
        let ok = shape.len() >= self.shape.len()
            && self
                .shape
                .iter()
                .zip(&shape[shape.len() - self.shape.len()..])
                .all(|(&s, &t)| s == t || s == 1);
        if !ok {
            return Err(DeviceError::ShapeMismatch {
                op: "broadcast_to",
                lhs: self.shape.clone(),
                rhs: shape.to_vec(),
                detail: String::new(),
            });
        }
        let out = GpuArray::uninit(&self.dev, "broadcast_to", shape, self.dtype)?;
        let is = broadcast_strides(&self.shape, shape);
        let os = contiguous_strides(shape);
        copy_into(
            &out,
            self,
            Strided {
                shape,
                is: &is,
                in_off: 0,
                os: &os,
                out_off: 0,
            },
        )?;
        Ok(out)
    }

    /// `len` entries of `dim` starting at `start` (a copy).
    pub fn narrow(&self, dim: usize, start: usize, len: usize) -> Result<GpuArray> {
        dim_of("narrow", &self.shape, dim)?;
        if start + len > self.shape[dim] {
            return Err(DeviceError::InvalidArgument {
                op: "narrow",
                reason: format!(
                    "range {start}..{} exceeds dim {dim} of shape {:?}",
                    start + len,
                    self.shape
                ),
            });
        }
        let mut shape = self.shape.clone();
        shape[dim] = len;
        let out = GpuArray::uninit(&self.dev, "narrow", &shape, self.dtype)?;
        let is = contiguous_strides(&self.shape);
        let os = contiguous_strides(&shape);
        copy_into(
            &out,
            self,
            Strided {
                shape: &shape,
                is: &is,
                in_off: start * is[dim],
                os: &os,
                out_off: 0,
            },
        )?;
        Ok(out)
    }

    /// Joins arrays along `dim`; all other dims must agree.
    pub fn concat(parts: &[&GpuArray], dim: usize) -> Result<GpuArray> {
        let first = parts.first().ok_or(DeviceError::InvalidArgument {
            op: "concat",
            reason: "no arrays given".into(),
        })?;
        dim_of("concat", &first.shape, dim)?;
        let mut shape = first.shape.clone();
        shape[dim] = 0;
        for p in parts {
            first.same_device("concat", p)?;
            p.expect_dtype("concat", first.dtype)?;
            let same_rest = p.shape.len() == first.shape.len()
                && p.shape
                    .iter()
                    .zip(&first.shape)
                    .enumerate()
                    .all(|(i, (a, b))| i == dim || a == b);
            if !same_rest {
                return Err(DeviceError::ShapeMismatch {
                    op: "concat",
                    lhs: first.shape.clone(),
                    rhs: p.shape.clone(),
                    detail: format!(" along dim {dim}"),
                });
            }
            shape[dim] += p.shape[dim];
        }
        let out = GpuArray::uninit(&first.dev, "concat", &shape, first.dtype)?;
        let os = contiguous_strides(&shape);
        let mut at = 0;
        for p in parts {
            let is = contiguous_strides(&p.shape);
            copy_into(
                &out,
                p,
                Strided {
                    shape: &p.shape,
                    is: &is,
                    in_off: 0,
                    os: &os,
                    out_off: at * os[dim],
                },
            )?;
            at += p.shape[dim];
        }
        Ok(out)
    }

    /// Pads each dim with `(before, after)` entries of `value`.
    pub fn pad(&self, pads: &[(usize, usize)], value: f32) -> Result<GpuArray> {
        if pads.len() != self.shape.len() {
            return Err(DeviceError::InvalidArgument {
                op: "pad",
                reason: format!("{} pads for shape {:?}", pads.len(), self.shape),
            });
        }
        let shape: Vec<usize> = self
            .shape
            .iter()
            .zip(pads)
            .map(|(&d, &(b, a))| b + d + a)
            .collect();
        if shape.len() > MAX_DIMS {
            return Err(DeviceError::InvalidShape {
                op: "pad",
                shape: self.shape.clone(),
                reason: format!("rank above {MAX_DIMS}"),
            });
        }
        let out = GpuArray::uninit(&self.dev, "pad", &shape, self.dtype)?;
        if out.numel() == 0 {
            return Ok(out);
        }
        // One pass over the output (its dims as they are: a pad's dims do not merge), reading x
        // where it lies. A 0-d array is one dim of 1.
        let (oshape, lo, len) = if shape.is_empty() {
            (vec![1], vec![0], vec![1])
        } else {
            let lo: Vec<usize> = pads.iter().map(|&(b, _)| b).collect();
            (shape, lo, self.shape.clone())
        };
        let is = contiguous_strides(&len);
        let before: usize = lo.iter().zip(&is).map(|(l, s)| l * s).sum();
        let tiles = copy_tiles(&oshape);
        let p = PadParams {
            copy: Params {
                n: tiles as u32,
                rank: oshape.len() as u32,
                in_off: 0u32.wrapping_sub(before as u32),
                out_off: 0,
                shape: pack(&oshape),
                is: pack(&is),
                os: pack(&contiguous_strides(&oshape)),
            },
            lo: pack(&lo),
            len: pack(&len),
            value: [value.to_bits(), 0, 0, 0],
        };
        self.dev.dispatch(
            Kernel::Movement,
            "pad",
            &[("RANK", oshape.len() as f64)],
            &p,
            &[rw(1, &out.buf), ro(2, &self.buf)],
            groups(tiles),
        )?;
        Ok(out)
    }

    fn index_params(n: usize, outer: usize, src: usize, nidx: usize, inner: usize) -> Params {
        Params {
            n: n as u32,
            shape: pack(&[outer, src, nidx, inner]),
            ..Default::default()
        }
    }

    /// Entries `idx` (u32, 1-D) of `dim`: output dim `dim` has `idx.len()` entries.
    pub fn index_select(&self, dim: usize, idx: &GpuArray) -> Result<GpuArray> {
        dim_of("index_select", &self.shape, dim)?;
        idx.expect_dtype("index_select", DType::U32)?;
        self.same_device("index_select", idx)?;
        if idx.shape.len() != 1 {
            return Err(DeviceError::InvalidShape {
                op: "index_select",
                shape: idx.shape.clone(),
                reason: "indices must be 1-D".into(),
            });
        }
        idx.check_indices("index_select", self.shape[dim])?;
        let (outer, src, inner) = around(&self.shape, dim);
        let mut shape = self.shape.clone();
        shape[dim] = idx.shape[0];
        let out = GpuArray::uninit(&self.dev, "index_select", &shape, self.dtype)?;
        let n = out.numel();
        let p = Self::index_params(n, outer, src, idx.shape[0], inner);
        self.dev.dispatch(
            Kernel::Movement,
            "index_select",
            &[],
            &p,
            &[rw(1, &out.buf), ro(2, &self.buf), ro(3, &idx.buf)],
            groups(n),
        )?;
        Ok(out)
    }

    /// Backward of `index_select`: sums `self` ([.., idx.len(), ..]) into `size` rows of `dim`.
    pub fn index_add(&self, dim: usize, idx: &GpuArray, size: usize) -> Result<GpuArray> {
        dim_of("index_add", &self.shape, dim)?;
        self.expect_dtype("index_add", DType::F32)?;
        idx.expect_dtype("index_add", DType::U32)?;
        self.same_device("index_add", idx)?;
        if idx.shape != [self.shape[dim]] {
            return Err(DeviceError::ShapeMismatch {
                op: "index_add",
                lhs: self.shape.clone(),
                rhs: idx.shape.clone(),
                detail: format!(": indices must have one entry per row of dim {dim}"),
            });
        }
        idx.check_indices("index_add", size)?;
        let (outer, nidx, inner) = around(&self.shape, dim);
        let mut shape = self.shape.clone();
        shape[dim] = size;
        let out = GpuArray::uninit(&self.dev, "index_add", &shape, DType::F32)?;
        let n = out.numel();
        let p = Self::index_params(n, outer, size, nidx, inner);
        self.dev.dispatch(
            Kernel::Movement,
            "index_add",
            &[],
            &p,
            &[rw(1, &out.buf), ro(2, &self.buf), ro(3, &idx.buf)],
            groups(n),
        )?;
        Ok(out)
    }

    fn check_gather(&self, op: &'static str, dim: usize, idx: &GpuArray) -> Result<()> {
        dim_of(op, &self.shape, dim)?;
        idx.expect_dtype(op, DType::U32)?;
        self.same_device(op, idx)?;
        let ok = idx.shape.len() == self.shape.len()
            && idx
                .shape
                .iter()
                .zip(&self.shape)
                .enumerate()
                .all(|(i, (a, b))| i == dim || a == b);
        if !ok {
            return Err(DeviceError::ShapeMismatch {
                op,
                lhs: self.shape.clone(),
                rhs: idx.shape.clone(),
                detail: format!(": indices must match every dim but {dim}"),
            });
        }
        idx.check_indices(op, self.shape[dim])
    }

    /// `torch.gather`: out[.., j, ..] = self[.., idx[.., j, ..], ..] along `dim`; out has idx's shape.
    pub fn gather(&self, dim: usize, idx: &GpuArray) -> Result<GpuArray> {
        self.check_gather("gather", dim, idx)?;
        let (outer, src, inner) = around(&self.shape, dim);
        let out = GpuArray::uninit(&self.dev, "gather", &idx.shape, self.dtype)?;
        let n = out.numel();
        let p = Self::index_params(n, outer, src, idx.shape[dim], inner);
        self.dev.dispatch(
            Kernel::Movement,
            "gather",
            &[],
            &p,
            &[rw(1, &out.buf), ro(2, &self.buf), ro(3, &idx.buf)],
            groups(n),
        )?;
        Ok(out)
    }

    /// `torch.scatter_add`: a copy of `self` with `src[.., j, ..]` added at row `idx[.., j, ..]` of
    /// `dim`. idx and src share a shape that matches `self` on every other dim.
    pub fn scatter_add(&self, dim: usize, idx: &GpuArray, src: &GpuArray) -> Result<GpuArray> {
        self.check_gather("scatter_add", dim, idx)?;
        self.expect_dtype("scatter_add", DType::F32)?;
        src.expect_dtype("scatter_add", DType::F32)?;
        self.same_device("scatter_add", src)?;
        if src.shape != idx.shape {
            return Err(DeviceError::ShapeMismatch {
                op: "scatter_add",
                lhs: src.shape.clone(),
                rhs: idx.shape.clone(),
                detail: ": src and indices must have the same shape".into(),
            });
        }
        let (outer, size, inner) = around(&self.shape, dim);
        let out = GpuArray::uninit(&self.dev, "scatter_add", &self.shape, DType::F32)?;
        let n = out.numel();
        let p = Self::index_params(n, outer, size, idx.shape[dim], inner);
        self.dev.dispatch(
            Kernel::Movement,
            "scatter_add",
            &[],
            &p,
            &[
                rw(1, &out.buf),
                ro(2, &src.buf),
                ro(3, &idx.buf),
                ro(4, &self.buf),
            ],
            groups(n),
        )?;
        Ok(out)
    }
}
