// Tiles of the strided copy, shared by its kernels (movement.wgsl `copy` and `pad`, one element
// per access; wide.wgsl `copy8`, eight). The copy iterates a shape of RANK dims (the launcher drops dims
// of size 1 and merges dims that are contiguous in both arrays), reading x at in_off + sum k_d is_d
// and writing y at out_off + sum k_d os_d. Its last two dims are cut into tiles of TILE_ROWS x
// TILE_COLS (1 x TILE_COLS at rank 1), one per invocation, so the index arithmetic (integer
// divisions, which CPU adapters run lane by lane) is paid once per tile, and a transpose reads and
// writes runs of 8.

struct CopyParams {
    head: vec4<u32>,   // tiles, rank, in_off, out_off
    shape: array<vec4<u32>, 2>,
    is: array<vec4<u32>, 2>,
    os: array<vec4<u32>, 2>,
}

override RANK: u32 = 1u;
const TILE_ROWS: u32 = 8u;
const TILE_COLS: u32 = 8u;

// Element d of a shape or strides array (dims 0-3 in [0], 4-7 in [1]).
fn at(v: array<vec4<u32>, 2>, d: u32) -> u32 {
    return v[d / 4u][d % 4u];
}

struct Tile {
    src: u32,   // element (0, 0) of the tile in x
    dst: u32,   // and in y
    nr: u32,    // rows and columns of the tile inside the shape
    nc: u32,
    isr: u32,   // strides between rows of the tile in x and y
    osr: u32,
    isc: u32,   // and between columns
    osc: u32,
    r0: u32,    // the tile's first row and column in the shape
    c0: u32,
    inside: bool,  // whether its index in the other dims lies inside [lo, lo + len) (see below)
}

// Tile t of the copy whose head, shape and strides are given (dims 4-7 zero where RANK <= 4). A
// pad (movement.wgsl) iterates the output and reads x only inside [lo_d, lo_d + len_d) of each
// dim: `inside` says so for the dims other than the tile's rows and columns (a copy passes lo 0
// and len = the shape).
fn copy_tile(head: vec4<u32>, sh: array<vec4<u32>, 2>, is: array<vec4<u32>, 2>, os: array<vec4<u32>, 2>, t: u32, lo: array<vec4<u32>, 2>, len: array<vec4<u32>, 2>) -> Tile {
    let c = RANK - 1u;                         // the tile's column dim
    let r = select(0u, RANK - 2u, RANK > 1u);  // its row dim (none at rank 1)
    let cols = at(sh, c);
    let rows = select(1u, at(sh, r), RANK > 1u);
    let tile_rows = select(1u, TILE_ROWS, RANK > 1u);
    let tc = (cols + TILE_COLS - 1u) / TILE_COLS;
    let tr = (rows + tile_rows - 1u) / tile_rows;
    var tile: Tile;
    tile.c0 = (t % tc) * TILE_COLS;
    tile.r0 = (t / tc % tr) * tile_rows;
    tile.isc = at(is, c);
    tile.osc = at(os, c);
    tile.isr = select(0u, at(is, r), RANK > 1u);
    tile.osr = select(0u, at(os, r), RANK > 1u);
    tile.src = head.z + tile.c0 * tile.isc + tile.r0 * tile.isr;
    tile.dst = head.w + tile.c0 * tile.osc + tile.r0 * tile.osr;
    tile.inside = true;
    var rem = t / tc / tr;
    for (var d = i32(RANK) - 3; d >= 0; d--) {
        let k = rem % at(sh, u32(d));
        rem = rem / at(sh, u32(d));
        tile.src += k * at(is, u32(d));
        tile.dst += k * at(os, u32(d));
        // k - lo wraps below lo, so one compare checks both ends.
        tile.inside = tile.inside && k - at(lo, u32(d)) < at(len, u32(d));
    }
    tile.nr = min(tile_rows, rows - tile.r0);
    tile.nc = min(TILE_COLS, cols - tile.c0);
    return tile;
}
