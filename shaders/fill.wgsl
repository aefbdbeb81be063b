// Constructors: fill with a constant, arange, one-hot. Values are written as 32-bit words so `fill`
// serves f32, u32 and i32 alike.

struct Params {
    n: u32,
    word: u32,      // fill: the value's bits
    start: f32,     // arange
    step: f32,      // arange
    classes: u32,   // one_hot
    _p0: u32,
    _p1: u32,
    _p2: u32,
}

@group(0) @binding(0) var<storage, read> p: Params;
// The first four fields as one vec4 (n, word, start bits, step bits): one storage access.
@group(0) @binding(0) var<storage, read> head: vec4<u32>;
@group(0) @binding(1) var<storage, read_write> y: array<u32>;
// y seen as vec4 (buffers are allocated in multiples of 16 bytes; lanes past n write the padding).
@group(0) @binding(1) var<storage, read_write> y4: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read> labels: array<u32>;

fn linear(wid: vec3<u32>, nwg: vec3<u32>, li: u32) -> u32 {
    return (wid.x + nwg.x * (wid.y + nwg.y * wid.z)) * 256u + li;
}

// y: [n] as [ceil(n / 4)] vec4, four words per invocation
@compute @workgroup_size(256)
fn fill(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let i = linear(wid, nwg, li);
    let h = head;
    if (i * 4u < h.x) {
        y4[i] = vec4<u32>(h.y);
    }
}

// y: [n] f32 as [ceil(n / 4)] vec4, y[j] = start + j * step
@compute @workgroup_size(256)
fn arange(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let i = linear(wid, nwg, li);
    let h = head;
    if (i * 4u < h.x) {
        let j = vec4<f32>(vec4<u32>(4u * i) + vec4<u32>(0u, 1u, 2u, 3u));
        y4[i] = bitcast<vec4<u32>>(bitcast<f32>(h.z) + j * bitcast<f32>(h.w));
    }
}

// labels: [m] u32, y: [m, classes] f32 with n = m * classes
@compute @workgroup_size(256)
fn one_hot(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let i = linear(wid, nwg, li);
    if (i < p.n) {
        let row = i / p.classes;
        let col = i % p.classes;
        y[i] = bitcast<u32>(select(0.0, 1.0, labels[row] == col));
    }
}
