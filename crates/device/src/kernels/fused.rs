//! Element-wise fusion: the launcher of generated kernels.
//!
//! While fusion is on (`Device::set_fusion`, the default), unary ops and binary ops on operands of
//! one shape are not dispatched one by one. Each joins the device's pending [`Program`], a list of
//! steps over the same number of elements whose intermediate values stay in registers. The
//! program is emitted as one dispatch before anything else is recorded or submitted (another
//! kernel, a readback, an upload), so the order of work on the queue is unchanged.
//!
//! A step's output buffer is held weakly: when the program is emitted, outputs whose arrays were
//! all dropped are not written, and steps that only fed them are left out. A chain such as exp,
//! then times 2, then ReLU (intermediates dropped) becomes one kernel that reads its input once
//! and writes the result once, where the unfused chain pays a dispatch and a pass over memory per
//! op. Weak handles also keep identity sound: a buffer's allocation outlives its
//! `Weak`, so no new buffer can alias a step output while the program holds it.
//!
//! A program of one op runs the family's own kernel (`unary.wgsl` / `binary.wgsl`, or
//! `wide.wgsl`); longer ones are WGSL generated here from the op tables of `elementwise.wgsl`
//! (and the word helpers of `words.wgsl` where the device has wide storage access), compiled once
//! per distinct sequence of ops and cached. Op codes are constants in the generated text, so each
//! `unary_op` / `binary_op` switch folds to its case; scalars and the element count come in the
//! parameters, so a program compiles once whatever its values and sizes.

use std::fmt::Write;
use std::sync::{Arc, Weak};

use super::{BinaryOp, UnaryOp, binary, groups, unary, wide};
use crate::context::{Access, Binding, Device};
use crate::error::Result;
use crate::pool::PooledBuffer;

/// Words of eight f32 per invocation in the wide kernels, as in wide.wgsl's element-wise entries
/// (the index arithmetic and parameter loads paid once per two words).
const PER_INVOCATION: usize = 2;
/// Steps per program at most; a full program is emitted and a new one started.
const MAX_STEPS: usize = 64;
/// Storage bindings per program at most (inputs and live outputs), besides the parameters; lower
/// where the device allows fewer.
const MAX_BUFFERS: usize = 24;

/// Where a step reads a value: an input buffer of the program or an earlier step's result.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Arg {
    Input(usize),
    Step(usize),
}

#[derive(Clone, Copy, Debug)]
enum Op {
    /// A unary op; `scalar` indexes its (alpha, beta) in `Program::scalars` when it has any.
    Unary {
        code: u32,
        x: Arg,
        scalar: Option<usize>,
    },
    Binary {
        code: u32,
        a: Arg,
        b: Arg,
    },
}

/// The pending element-wise work of a device: steps over `n` elements each.
pub(crate) struct Program {
    n: usize,
    inputs: Vec<Arc<PooledBuffer>>,
    steps: Vec<Op>,
    /// One per step: the buffer its result goes to, if the step's result is an array.
    outputs: Vec<Option<Weak<PooledBuffer>>>,
    /// The ops as they came, for the one-step fallback to the families' kernels.
    origin: Vec<Origin>,
    scalars: Vec<f32>,
}

/// A fused op as the caller asked for it (a binary op with its epilogue is one origin, up to
/// three steps).
#[derive(Clone, Copy, Debug)]
enum Origin {
    Unary(UnaryOp),
    Binary(BinaryOp, [Option<UnaryOp>; 2]),
}

impl Program {
    pub(crate) fn new(n: usize) -> Self {
        Program {
            n,
            inputs: Vec::new(),
            steps: Vec::new(),
            outputs: Vec::new(),
            origin: Vec::new(),
            scalars: Vec::new(),
        }
    }

    /// The value held in `buf`: a step's result (the latest step writing it) or an input.
    fn find(&self, buf: &Arc<PooledBuffer>) -> Option<Arg> {
        let ptr = Arc::as_ptr(buf);
        if let Some(j) = self
            .outputs
            .iter()
            .rposition(|o| o.as_ref().is_some_and(|w| w.as_ptr() == ptr))
        {
            return Some(Arg::Step(j));
        }
        self.inputs
            .iter()
            .position(|b| Arc::ptr_eq(b, buf))
            .map(Arg::Input)
    }

    /// Buffers the program would bind if emitted now with `extra_inputs` more inputs and one more
    /// output: inputs plus outputs still alive.
    fn buffers_with(&self, extra_inputs: usize) -> usize {
        let live = self
            .outputs
            .iter()
            .flatten()
            .filter(|w| w.strong_count() > 0)
            .count();
        self.inputs.len() + extra_inputs + live + 1
    }

    fn arg(&mut self, buf: &Arc<PooledBuffer>) -> Arg {
        self.find(buf).unwrap_or_else(|| {
            self.inputs.push(buf.clone());
            Arg::Input(self.inputs.len() - 1)
        })
    }

    fn push_unary(&mut self, op: UnaryOp, x: Arg) -> usize {
        let (code, alpha, beta) = op.code();
        let scalar = op.has_scalars().then(|| {
            self.scalars.extend([alpha, beta]);
            self.scalars.len() - 2
        });
        self.steps.push(Op::Unary { code, x, scalar });
        self.outputs.push(None);
        self.steps.len() - 1
    }
}

/// Whether `prog` can take an op over `n` elements with `steps` steps reading `ins` now; if not, it
/// must be emitted first. `cap`: storage bindings the device allows per kernel.
pub(crate) fn room(
    prog: &Program,
    n: usize,
    ins: &[&Arc<PooledBuffer>],
    steps: usize,
    cap: usize,
) -> bool {
    let new_inputs = ins
        .iter()
        .enumerate()
        .filter(|&(i, b)| prog.find(b).is_none() && !ins[..i].iter().any(|c| Arc::ptr_eq(b, c)))
        .count();
    prog.n == n
        && prog.steps.len() + steps <= MAX_STEPS
        && prog.buffers_with(new_inputs) <= cap.min(MAX_BUFFERS)
}

impl Program {
    /// Adds y = op(x).
    pub(crate) fn unary(&mut self, x: &Arc<PooledBuffer>, y: &Arc<PooledBuffer>, op: UnaryOp) {
        let a = self.arg(x);
        let j = self.push_unary(op, a);
        self.outputs[j] = Some(Arc::downgrade(y));
        self.origin.push(Origin::Unary(op));
    }

    /// Adds y = post(op(a, b)).
    pub(crate) fn binary(
        &mut self,
        (a, b, y): (&Arc<PooledBuffer>, &Arc<PooledBuffer>, &Arc<PooledBuffer>),
        op: BinaryOp,
        post: &[UnaryOp],
    ) {
        let (ua, ub) = (self.arg(a), self.arg(b));
        self.steps.push(Op::Binary {
            code: op.code(),
            a: ua,
            b: ub,
        });
        self.outputs.push(None);
        let mut j = self.steps.len() - 1;
        for &u in post {
            j = self.push_unary(u, Arg::Step(j));
        }
        self.outputs[j] = Some(Arc::downgrade(y));
        self.origin.push(Origin::Binary(
            op,
            [post.first().copied(), post.get(1).copied()],
        ));
    }
}

/// Records `prog` as one dispatch: its live outputs, and the steps and inputs they need.
pub(crate) fn emit(dev: &Device, prog: Program) -> Result<()> {
    let live: Vec<(usize, Arc<PooledBuffer>)> = prog
        .outputs
        .iter()
        .enumerate()
        .filter_map(|(j, o)| Some((j, o.as_ref()?.upgrade()?)))
        .collect();
    if live.is_empty() {
        return Ok(()); // nothing observable
    }
    // Steps the live outputs need, walking back from the last.
    let mut needed = vec![false; prog.steps.len()];
    for &(j, _) in &live {
        needed[j] = true;
    }
    let mut inputs_used = vec![false; prog.inputs.len()];
    for j in (0..prog.steps.len()).rev() {
        if !needed[j] {
            continue;
        }
        let args: &[Arg] = match &prog.steps[j] {
            Op::Unary { x, .. } => &[*x],
            Op::Binary { a, b, .. } => &[*a, *b],
        };
        for &arg in args {
            match arg {
                Arg::Step(k) => needed[k] = true,
                Arg::Input(i) => inputs_used[i] = true,
            }
        }
    }
    if prog.origin.len() == 1 {
        return emit_single(dev, &prog, &live[0].1);
    }
    let inputs: Vec<(usize, &Arc<PooledBuffer>)> = prog
        .inputs
        .iter()
        .enumerate()
        .filter(|&(i, _)| inputs_used[i])
        .collect();
    let mut all: Vec<&PooledBuffer> = live.iter().map(|(_, b)| b.as_ref()).collect();
    all.extend(inputs.iter().map(|(_, b)| b.as_ref()));
    let wide = wide::fits(dev, &all, prog.n);
    let signature = signature(&prog, &needed, &live, &inputs, wide);
    let source = || generate(&prog, &needed, &live, &inputs, wide);

    let mut bytes: Vec<u8> = Vec::with_capacity(16 + 4 * prog.scalars.len());
    bytes.extend((prog.n as u32).to_le_bytes());
    bytes.extend([0u8; 12]);
    for s in &prog.scalars {
        bytes.extend(s.to_le_bytes());
    }
    bytes.resize(16 + 16 * scalar_vec4s(&prog), 0);
    let mut bindings: Vec<Binding<'_>> = Vec::new();
    for (k, (_, b)) in live.iter().enumerate() {
        bindings.push(Binding {
            slot: 1 + k as u32,
            buffer: b,
            access: Access::ReadWrite,
        });
    }
    for (k, (_, b)) in inputs.iter().enumerate() {
        bindings.push(Binding {
            slot: 1 + (live.len() + k) as u32,
            buffer: b,
            access: Access::Read,
        });
    }
    let per = if wide { 8 * PER_INVOCATION } else { 4 };
    dev.dispatch_generated(
        (&signature, &source),
        &bytes,
        &bindings,
        groups(prog.n.div_ceil(per)),
    )
}

/// A program made of one op: the family's own kernel.
fn emit_single(dev: &Device, prog: &Program, out: &PooledBuffer) -> Result<()> {
    let input = |arg: &Arg| match arg {
        Arg::Input(i) => prog.inputs[*i].as_ref(),
        Arg::Step(_) => unreachable!("the first step reads inputs only"),
    };
    match (prog.origin[0], prog.steps[0]) {
        (Origin::Unary(op), Op::Unary { x, .. }) => unary::record(dev, input(&x), out, prog.n, op),
        (Origin::Binary(op, post), Op::Binary { a, b, .. }) => {
            let post: Vec<UnaryOp> = post.into_iter().flatten().collect();
            binary::record_same(dev, input(&a), input(&b), out, prog.n, op, &post)
        }
        (origin, step) => unreachable!("origin {origin:?} recorded as step {step:?}"),
    }
}

/// For each input of `prog`, its position among the inputs bound (`usize::MAX`: not bound).
fn binding_order(prog: &Program, inputs: &[(usize, &Arc<PooledBuffer>)]) -> Vec<usize> {
    let mut order = vec![usize::MAX; prog.inputs.len()];
    for (k, &(i, _)) in inputs.iter().enumerate() {
        order[i] = k;
    }
    order
}

fn scalar_vec4s(prog: &Program) -> usize {
    prog.scalars.len().div_ceil(4).max(1)
}

/// What determines `generate`'s text, in short: the mode, the needed steps (op, arguments, scalar
/// slots), which steps are stored, the inputs' count and the scalars' vec4 count (0: none loaded).
fn signature(
    prog: &Program,
    needed: &[bool],
    live: &[(usize, Arc<PooledBuffer>)],
    inputs: &[(usize, &Arc<PooledBuffer>)],
    wide: bool,
) -> String {
    let input_name = binding_order(prog, inputs);
    let arg = |a: Arg| match a {
        Arg::Input(i) => format!("i{}", input_name[i]),
        Arg::Step(j) => format!("s{j}"),
    };
    let scalars = if prog.scalars.is_empty() {
        0
    } else {
        scalar_vec4s(prog)
    };
    let mut sig = format!("{}:{}:{scalars}|", u8::from(wide), inputs.len());
    for (j, step) in prog.steps.iter().enumerate().filter(|&(j, _)| needed[j]) {
        let _ = match *step {
            Op::Unary { code, x, scalar } => write!(sig, "{j}u{code}{}{scalar:?};", arg(x)),
            Op::Binary { code, a, b } => write!(sig, "{j}b{code}{}{};", arg(a), arg(b)),
        };
    }
    for (j, _) in live {
        let _ = write!(sig, "o{j}");
    }
    sig
}

/// The WGSL of `prog`: outputs at bindings 1.., then inputs; vec4 per invocation, or a word of
/// eight f32 split into two vec4 halves where `wide`.
fn generate(
    prog: &Program,
    needed: &[bool],
    live: &[(usize, Arc<PooledBuffer>)],
    inputs: &[(usize, &Arc<PooledBuffer>)],
    wide: bool,
) -> String {
    let mut s = String::from(super::ELEMENTWISE);
    if wide {
        s.push_str(super::WORDS);
    }
    let elem = if wide { "vec4<u64>" } else { "vec4<f32>" };
    let halves: &[&str] = if wide { &["l", "h"] } else { &[""] };
    let nv = scalar_vec4s(prog);
    // Writing to a String cannot fail.
    let _ = write!(
        s,
        "\nstruct FusedParams {{\n    n: u32,\n    _p0: u32,\n    _p1: u32,\n    _p2: u32,\n    \
         s: array<vec4<f32>, {nv}>,\n}}\n\n\
         @group(0) @binding(0) var<storage, read> fp: FusedParams;\n"
    );
    for k in 0..live.len() {
        let _ = writeln!(
            s,
            "@group(0) @binding({}) var<storage, read_write> fo{k}: array<{elem}>;",
            1 + k
        );
    }
    for k in 0..inputs.len() {
        let _ = writeln!(
            s,
            "@group(0) @binding({}) var<storage, read> fi{k}: array<{elem}>;",
            1 + live.len() + k
        );
    }
    s.push_str(
        "\nfn fu(op: u32, v: vec4<f32>, a: f32, b: f32) -> vec4<f32> {\n    return vec4<f32>(\
         unary_op(op, v.x, a, b), unary_op(op, v.y, a, b), unary_op(op, v.z, a, b), \
         unary_op(op, v.w, a, b));\n}\n\n\
         fn fb(op: u32, u: vec4<f32>, v: vec4<f32>) -> vec4<f32> {\n    return vec4<f32>(\
         binary_op(op, u.x, v.x), binary_op(op, u.y, v.y), binary_op(op, u.z, v.z), \
         binary_op(op, u.w, v.w));\n}\n\n",
    );
    let _ = write!(
        s,
        "// {} steps over fp.n elements, {} per invocation\n\
         @compute @workgroup_size(256)\nfn fused(\n    @builtin(workgroup_id) wid: vec3<u32>,\n    \
         @builtin(num_workgroups) nwg: vec3<u32>,\n    \
         @builtin(local_invocation_index) li: u32,\n) {{\n    \
         let i = ((wid.x + nwg.x * (wid.y + nwg.y * wid.z)) * 256u + li) * {}u;\n    \
         if (i * {}u >= fp.n) {{\n        return;\n    }}\n",
        needed.iter().filter(|&&x| x).count(),
        if wide { "words of 8" } else { "4" },
        if wide { PER_INVOCATION } else { 1 },
        if wide { 8 } else { 4 },
    );
    if !prog.scalars.is_empty() {
        for q in 0..nv {
            let _ = writeln!(s, "    let s{q} = fp.s[{q}];");
        }
    }
    // Inputs, renumbered to their bindings.
    let input_name = binding_order(prog, inputs);
    let name = |arg: Arg, h: &str| match arg {
        Arg::Input(i) => format!("x{}{h}", input_name[i]),
        Arg::Step(j) => format!("v{j}{h}"),
    };
    // The loads, steps and stores of the element group at index `idx`.
    let body = |idx: &str| {
        let mut b = String::new();
        for k in 0..inputs.len() {
            if wide {
                let _ = writeln!(
                    b,
                    "        let w{k} = fi{k}[{idx}];\n        let x{k}l = lo(w{k});\n        \
                     let x{k}h = hi(w{k});"
                );
            } else {
                let _ = writeln!(b, "        let x{k} = fi{k}[{idx}];");
            }
        }
        for (j, step) in prog.steps.iter().enumerate() {
            if !needed[j] {
                continue;
            }
            for h in halves {
                let expr = match *step {
                    Op::Unary { code, x, scalar } => {
                        let (a, b) = match scalar {
                            Some(k) => (
                                format!("s{}.{}", k / 4, ["x", "y", "z", "w"][k % 4]),
                                format!("s{}.{}", (k + 1) / 4, ["x", "y", "z", "w"][(k + 1) % 4]),
                            ),
                            None => ("0.0".into(), "0.0".into()),
                        };
                        format!("fu({code}u, {}, {a}, {b})", name(x, h))
                    }
                    Op::Binary { code, a, b } => {
                        format!("fb({code}u, {}, {})", name(a, h), name(b, h))
                    }
                };
                let _ = writeln!(b, "        let v{j}{h} = {expr};");
            }
        }
        for (k, &(j, _)) in live.iter().enumerate() {
            if wide {
                let _ = writeln!(b, "        fo{k}[{idx}] = word(v{j}l, v{j}h);");
            } else {
                let _ = writeln!(b, "        fo{k}[{idx}] = v{j};");
            }
        }
        b
    };
    let _ = writeln!(s, "    {{\n{}    }}", body("i"));
    if wide {
        // The second word of this invocation (see PER_INVOCATION).
        let _ = writeln!(
            s,
            "    if ((i + 1u) * 8u < fp.n) {{\n{}    }}",
            body("i + 1u")
        );
    }
    s.push_str("}\n");
    s
}
