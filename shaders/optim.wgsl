// Fused, in-place optimiser updates: one dispatch per parameter tensor updates the parameter and its
// state (momentum, accumulators, moments) from the gradient. See OptimRule in
// crates/device/src/kernels/optim.rs, which also computes the step-dependent factors on the host
// (Adam's bias corrections, AdaGrad's decayed lr, AdamW's decoupled decay multiplier).
//
// Every entry point uses the same bindings: w (the parameter) and the state buffers s0, s1 are
// read_write and updated in place, g (the gradient) is read-only. An entry point that needs fewer
// state buffers does not touch the others, so its pipeline layout leaves them out.

struct Params {
    n: u32,
    flags: u32,          // FLAG_NESTEROV | FLAG_FIRST
    lr: f32,             // step size (Adam: lr / (1 - beta1^t); AdaGrad: lr / (1 + (t - 1) lr_decay))
    weight_decay: f32,   // L2 coefficient added to the gradient (0 for AdamW)
    decay: f32,          // multiplier applied to w before the update: 1 - lr wd for AdamW, else 1
    a: f32,              // SGD momentum, RMSProp alpha, Adam beta1
    b: f32,              // SGD 1 - dampening, Adam beta2
    eps: f32,
    bc2_rsqrt: f32,      // Adam: 1 / sqrt(1 - beta2^t)
    _p0: u32,
    _p1: u32,
    _p2: u32,
}

const FLAG_NESTEROV: u32 = 1u;
const FLAG_FIRST: u32 = 2u;   // the first step of this parameter: the momentum buffer starts as g

@group(0) @binding(0) var<storage, read> p: Params;
@group(0) @binding(1) var<storage, read_write> w: array<f32>;
@group(0) @binding(2) var<storage, read> g: array<f32>;
@group(0) @binding(3) var<storage, read_write> s0: array<f32>;
@group(0) @binding(4) var<storage, read_write> s1: array<f32>;

fn flat_index(wid: vec3<u32>, nwg: vec3<u32>, li: u32) -> u32 {
    return (wid.x + nwg.x * (wid.y + nwg.y * wid.z)) * 256u + li;
}

// w, g: [n]
// w -= lr (g + wd w)
@compute @workgroup_size(256)
fn sgd(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let i = flat_index(wid, nwg, li);
    if (i >= p.n) {
        return;
    }
    let wi = w[i];
    w[i] = wi - p.lr * (g[i] + p.weight_decay * wi);
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
    if (i >= p.n) {
        return;
    }
    let wi = w[i];
    let d = g[i] + p.weight_decay * wi;
    var buf = d;
    if ((p.flags & FLAG_FIRST) == 0u) {
        buf = p.a * s0[i] + p.b * d;
    }
    s0[i] = buf;
    var upd = buf;
    if ((p.flags & FLAG_NESTEROV) != 0u) {
        upd = d + p.a * buf;
    }
    w[i] = wi - p.lr * upd;
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
    if (i >= p.n) {
        return;
    }
    let wi = w[i];
    let d = g[i] + p.weight_decay * wi;
    let sum = s0[i] + d * d;
    s0[i] = sum;
    w[i] = wi - p.lr * d / (sqrt(sum) + p.eps);
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
    if (i >= p.n) {
        return;
    }
    let wi = w[i];
    let d = g[i] + p.weight_decay * wi;
    let sq = p.a * s0[i] + (1.0 - p.a) * d * d;
    s0[i] = sq;
    w[i] = wi - p.lr * d / (sqrt(sq) + p.eps);
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
    if (i >= p.n) {
        return;
    }
    let wi = w[i] * p.decay;
    let d = g[i] + p.weight_decay * wi;
    let m = p.a * s0[i] + (1.0 - p.a) * d;
    let v = p.b * s1[i] + (1.0 - p.b) * d * d;
    s0[i] = m;
    s1[i] = v;
    w[i] = wi - p.lr * m / (sqrt(v) * p.bc2_rsqrt + p.eps);
}
