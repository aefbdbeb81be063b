// Fused, in-place optimiser updates: one dispatch per parameter tensor updates the parameter and its
// state (momentum, accumulators, moments) from the gradient. See OptimRule in
// crates/device/src/kernels/optim.rs, which also computes the step-dependent factors on the host
// (Adam's bias corrections, AdaGrad's decayed lr, AdamW's decoupled decay multiplier).
//
// Every entry point uses the same bindings: w (the parameter) and the state buffers s0, s1 are
// read_write and updated in place, g (the gradient) is read-only. An entry point that needs fewer
// state buffers does not touch the others, so its pipeline layout leaves them out.
// Four elements per invocation, all seen as vec4 (buffers are allocated in multiples of 16 bytes;
// lanes past n update the padding, which nothing reads), and the parameters read as three vec4s:
// on lavapipe every storage access, parameters included, costs a loop over the SIMD lanes.

// The layout of OptimRule's params, as three vec4 (bitcast where a field is a u32):
//   q0: n (u32), flags (u32), lr, weight_decay
//   q1: decay, a, b, eps
//   q2: bc2_rsqrt, _, _, _
// lr: step size (Adam: lr / (1 - beta1^t); AdaGrad: lr / (1 + (t - 1) lr_decay)); weight_decay:
// L2 coefficient added to the gradient (0 for AdamW); decay: multiplier applied to w before the
// update (1 - lr wd for AdamW, else 1); a: SGD momentum, RMSProp alpha, Adam beta1; b: SGD
// 1 - dampening, Adam beta2; bc2_rsqrt: Adam's 1 / sqrt(1 - beta2^t).
struct Params {
    q0: vec4<u32>,
    q1: vec4<f32>,
    q2: vec4<f32>,
}

const FLAG_NESTEROV: u32 = 1u;
const FLAG_FIRST: u32 = 2u;   // the first step of this parameter: the momentum buffer starts as g

@group(0) @binding(0) var<storage, read> p: Params;
@group(0) @binding(1) var<storage, read_write> w: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> g: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> s0: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> s1: array<vec4<f32>>;

// The parameters, unpacked (loads of fields an entry point does not use are dropped by the
// compiler).
struct Hyper {
    n: u32,
    flags: u32,
    lr: f32,
    wd: f32,
    decay: f32,
    a: f32,
    b: f32,
    eps: f32,
    bc2_rsqrt: f32,
}

fn hyper() -> Hyper {
    let q0 = p.q0;
    let q1 = p.q1;
    return Hyper(q0.x, q0.y, bitcast<f32>(q0.z), bitcast<f32>(q0.w), q1.x, q1.y, q1.z, q1.w, p.q2.x);
}

fn flat_index(wid: vec3<u32>, nwg: vec3<u32>, li: u32) -> u32 {
    return (wid.x + nwg.x * (wid.y + nwg.y * wid.z)) * 256u + li;
}

// w, g: [n] as [ceil(n / 4)] vec4 (likewise the state buffers below)
// w -= lr (g + wd w)
@compute @workgroup_size(256)
fn sgd(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let i = flat_index(wid, nwg, li);
    let h = hyper();
    if (i * 4u >= h.n) {
        return;
    }
    let wi = w[i];
    w[i] = wi - h.lr * (g[i] + h.wd * wi);
}

// w, g, s0 (momentum buffer): [n]
// d = g + wd w; buf = first ? d : momentum buf + (1 - dampening) d;
// w -= lr (nesterov ? d + momentum buf : buf)
@compute @workgroup_size(256)
fn sgd_momentum(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let i = flat_index(wid, nwg, li);
    let h = hyper();
    if (i * 4u >= h.n) {
        return;
    }
    let wi = w[i];
    let d = g[i] + h.wd * wi;
    var buf = d;
    if ((h.flags & FLAG_FIRST) == 0u) {
        buf = h.a * s0[i] + h.b * d;
    }
    s0[i] = buf;
    var upd = buf;
    if ((h.flags & FLAG_NESTEROV) != 0u) {
        upd = d + h.a * buf;
    }
    w[i] = wi - h.lr * upd;
}

// w, g, s0 (sum of squared gradients): [n]
// d = g + wd w; sum += d^2; w -= lr d / (sqrt(sum) + eps)
@compute @workgroup_size(256)
fn adagrad(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let i = flat_index(wid, nwg, li);
    let h = hyper();
    if (i * 4u >= h.n) {
        return;
    }
    let wi = w[i];
    let d = g[i] + h.wd * wi;
    let sum = s0[i] + d * d;
    s0[i] = sum;
    w[i] = wi - h.lr * d / (sqrt(sum) + h.eps);
}

// w, g, s0 (running mean of squared gradients): [n]
// d = g + wd w; sq = alpha sq + (1 - alpha) d^2; w -= lr d / (sqrt(sq) + eps)
@compute @workgroup_size(256)
fn rmsprop(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let i = flat_index(wid, nwg, li);
    let h = hyper();
    if (i * 4u >= h.n) {
        return;
    }
    let wi = w[i];
    let d = g[i] + h.wd * wi;
    let sq = h.a * s0[i] + (1.0 - h.a) * d * d;
    s0[i] = sq;
    w[i] = wi - h.lr * d / (sqrt(sq) + h.eps);
}

// w, g, s0 (first moment m), s1 (second moment v): [n]
// w *= decay (AdamW); d = g + wd w (Adam's L2); m = b1 m + (1 - b1) d; v = b2 v + (1 - b2) d^2;
// w -= (lr / (1 - b1^t)) m / (sqrt(v) / sqrt(1 - b2^t) + eps)
@compute @workgroup_size(256)
fn adam(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let i = flat_index(wid, nwg, li);
    let h = hyper();
    if (i * 4u >= h.n) {
        return;
    }
    let r = adam_update(w[i], g[i], s0[i], s1[i], h);
    s0[i] = r.m;
    s1[i] = r.v;
    w[i] = r.w;
}

// Adam's update of four elements: the parameter, the gradient and the moments in, the new
// parameter and moments out (shared with optim_wide.wgsl's adam8, so both give the same bits).
struct Adam4 {
    w: vec4<f32>,
    m: vec4<f32>,
    v: vec4<f32>,
}

fn adam_update(w0: vec4<f32>, g: vec4<f32>, m0: vec4<f32>, v0: vec4<f32>, h: Hyper) -> Adam4 {
    let wi = w0 * h.decay;
    let d = g + h.wd * wi;
    let m = h.a * m0 + (1.0 - h.a) * d;
    let v = h.b * v0 + (1.0 - h.b) * d * d;
    return Adam4(wi - h.lr * m / (sqrt(v) * h.bc2_rsqrt + h.eps), m, v);
}
