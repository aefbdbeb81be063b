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

// Every rule's update of four elements, one function each, shared with optim_wide.wgsl's entries
// (eight elements per access), so both give the same bits: the parameter, the gradient and the
// state in, the new parameter and state out (state a rule does not have stays zero).
struct Upd {
    w: vec4<f32>,
    s0: vec4<f32>,
    s1: vec4<f32>,
}

// w -= lr (g + wd w)
fn sgd_update(w: vec4<f32>, g: vec4<f32>, h: Hyper) -> Upd {
    return Upd(w - h.lr * (g + h.wd * w), vec4<f32>(), vec4<f32>());
}

// s0: the momentum buffer. d = g + wd w; buf = first ? d : momentum buf + (1 - dampening) d;
// w -= lr (nesterov ? d + momentum buf : buf)
fn sgd_momentum_update(w: vec4<f32>, g: vec4<f32>, s0: vec4<f32>, h: Hyper) -> Upd {
    let d = g + h.wd * w;
    var buf = d;
    if ((h.flags & FLAG_FIRST) == 0u) {
        buf = h.a * s0 + h.b * d;
    }
    var upd = buf;
    if ((h.flags & FLAG_NESTEROV) != 0u) {
        upd = d + h.a * buf;
    }
    return Upd(w - h.lr * upd, buf, vec4<f32>());
}

// s0: the sum of squared gradients. d = g + wd w; sum += d^2; w -= lr d / (sqrt(sum) + eps)
fn adagrad_update(w: vec4<f32>, g: vec4<f32>, s0: vec4<f32>, h: Hyper) -> Upd {
    let d = g + h.wd * w;
    let sum = s0 + d * d;
    return Upd(w - h.lr * d / (sqrt(sum) + h.eps), sum, vec4<f32>());
}

// s0: the running mean of squared gradients. d = g + wd w; sq = alpha sq + (1 - alpha) d^2;
// w -= lr d / (sqrt(sq) + eps)
fn rmsprop_update(w: vec4<f32>, g: vec4<f32>, s0: vec4<f32>, h: Hyper) -> Upd {
    let d = g + h.wd * w;
    let sq = h.a * s0 + (1.0 - h.a) * d * d;
    return Upd(w - h.lr * d / (sqrt(sq) + h.eps), sq, vec4<f32>());
}

// s0, s1: the first and second moments m, v. w *= decay (AdamW); d = g + wd w (Adam's L2);
// m = b1 m + (1 - b1) d; v = b2 v + (1 - b2) d^2; w -= (lr / (1 - b1^t)) m / (sqrt(v) / sqrt(1 -
// b2^t) + eps)
fn adam_update(w0: vec4<f32>, g: vec4<f32>, m0: vec4<f32>, v0: vec4<f32>, h: Hyper) -> Upd {
    let wi = w0 * h.decay;
    let d = g + h.wd * wi;
    let m = h.a * m0 + (1.0 - h.a) * d;
    let v = h.b * v0 + (1.0 - h.b) * d * d;
    return Upd(wi - h.lr * m / (sqrt(v) * h.bc2_rsqrt + h.eps), m, v);
}

// The entry points: w, g and the rule's state (s0, s1): [n] as [ceil(n / 4)] vec4.
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
    w[i] = sgd_update(w[i], g[i], h).w;
}

// The rules with one state buffer, picked by RULE (0 SGD with momentum, 1 AdaGrad, 2 RMSProp):
// one entry point each here and in optim_wide.wgsl instead of three.
override RULE: u32 = 0u;

fn one_state_update(w: vec4<f32>, g: vec4<f32>, s0: vec4<f32>, h: Hyper) -> Upd {
    switch RULE {
        case 1u: { return adagrad_update(w, g, s0, h); }
        case 2u: { return rmsprop_update(w, g, s0, h); }
        default: { return sgd_momentum_update(w, g, s0, h); }
    }
}

@compute @workgroup_size(256)
fn one_state(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let i = flat_index(wid, nwg, li);
    let h = hyper();
    if (i * 4u >= h.n) {
        return;
    }
    let r = one_state_update(w[i], g[i], s0[i], h);
    s0[i] = r.s0;
    w[i] = r.w;
}

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
    s0[i] = r.s0;
    s1[i] = r.s1;
    w[i] = r.w;
}
