//! Reverse-mode autodiff: `backward`, `grad`, and the higher-order helpers built on it
//! (`hessian`, `jacobian`, `hvp`).

use std::collections::{HashMap, HashSet};

use crate::backward::rule;
use crate::error::{GraphError, Result};
use crate::tensor::{Tensor, lock, set_grad_enabled};

/// Tensors reachable from `root` through recorded ops, inputs before the ops that use them.
fn topo_order(root: &Tensor) -> Result<Vec<Tensor>> {
    let mut order = Vec::new();
    let mut visited = HashSet::new();
    let mut stack = vec![(root.clone(), false)];
    while let Some((t, done)) = stack.pop() {
        if done {
            order.push(t);
            continue;
        }
        if !visited.insert(t.id()) {
            continue;
        }
        let inputs: Vec<Tensor> = match &*lock(&t.0.op) {
            Some(op) => op
                .inputs()
                .into_iter()
                .filter(|x| x.0.requires_grad)
                .cloned()
                .collect(),
            None if *lock(&t.0.freed) => return Err(GraphError::GraphFreed),
            None => Vec::new(),
        };
        stack.push((t, true));
        stack.extend(
            inputs
                .into_iter()
                .filter(|i| !visited.contains(&i.id()))
                .map(|i| (i, false)),
        );
    }
    Ok(order)
}

/// The gradient seed: `seed`, or 1 for a single-element output.
fn seed_for(y: &Tensor, seed: Option<&Tensor>, op: &'static str) -> Result<Tensor> {
    match seed {
        Some(s) if s.shape() == y.shape() => Ok(s.clone()),
        Some(s) => Err(GraphError::InvalidArgument {
            op,
            reason: format!(
                "seed of shape {:?} for an output of shape {:?}",
                s.shape(),
                y.shape()
            ),
        }),
        None if y.numel() == 1 => y.ones_like(),
        None => Err(GraphError::NotScalar {
            op,
            shape: y.shape().to_vec(),
        }),
    }
}

/// Walks the graph from `y` in reverse, calling `visit(node, grad)` for every node's total gradient.
/// With `create_graph` the rules are recorded; with `free` each op is dropped once used.
fn reverse(
    y: &Tensor,
    seed: Tensor,
    create_graph: bool,
    free: bool,
    mut visit: impl FnMut(&Tensor, &Tensor) -> Result<()>,
) -> Result<()> {
    if !y.0.requires_grad {
        return Err(GraphError::NoGrad { op: "backward" });
    }
    let order = topo_order(y)?;
    let _mode = set_grad_enabled(create_graph);
    let mut grads: HashMap<u64, Tensor> = HashMap::new();
    grads.insert(y.id(), seed);
    for node in order.iter().rev() {
        let Some(g) = grads.remove(&node.id()) else {
            continue;
        };
        visit(node, &g)?;
        let op = if free { lock(&node.0.op).take() } else { None };
        if free && op.is_some() {
            *lock(&node.0.freed) = true;
        }
        let guard = lock(&node.0.op);
        let op_ref = if free { op.as_ref() } else { guard.as_ref() };
        let Some(op) = op_ref else { continue };
        let inputs = op.inputs();
        let needs: Vec<bool> = inputs.iter().map(|x| x.0.requires_grad).collect();
        let input_grads = rule(op, node, &g, &needs)?;
        for (x, gx) in inputs.into_iter().zip(input_grads) {
            let Some(gx) = gx else { continue };
            if !x.0.requires_grad {
                continue;
            }
            let total = match grads.remove(&x.id()) {
                Some(prev) => prev.add(&gx)?,
                None => gx,
            };
            grads.insert(x.id(), total);
        }
    }
    Ok(())
}

impl Tensor {
    /// Accumulates d(self)/d(leaf) into every leaf that requires grad, then frees the recorded
    /// graph (PyTorch's `loss.backward()`). `self` must have one element.
    pub fn backward(&self) -> Result<()> {
        self.backward_impl(None, false, false)
    }

    /// Like `backward` but keeps the graph, so it can be walked again.
    pub fn backward_retain(&self) -> Result<()> {
        self.backward_impl(None, true, false)
    }

    /// Backward from a non-scalar output with an explicit upstream gradient; `create_graph`
    /// records the accumulated gradients so they can be differentiated again.
    pub fn backward_with(&self, seed: &Tensor, create_graph: bool) -> Result<()> {
        self.backward_impl(Some(seed), true, create_graph)
    }

    fn backward_impl(&self, seed: Option<&Tensor>, retain: bool, create_graph: bool) -> Result<()> {
        let seed = seed_for(self, seed, "backward")?;
        reverse(self, seed, create_graph, !retain, |node, g| {
            if node.is_leaf() {
                let mut slot = lock(&node.0.grad);
                let g = if create_graph { g.clone() } else { g.detach() };
                *slot = Some(match slot.take() {
                    Some(prev) => prev.add(&g)?,
                    None => g,
                });
            }
            Ok(())
        })
    }
}

/// Gradients of `y` (one element) with respect to each of `xs`; inputs `y` does not depend on get
/// zeros. With `create_graph` the results are recorded tensors that can be differentiated again.
pub fn grad(y: &Tensor, xs: &[&Tensor], create_graph: bool) -> Result<Vec<Tensor>> {
    grad_with(y, xs, None, create_graph)
}

/// Vector-Jacobian product: like `grad` with the upstream gradient `seed` (shape of `y`).
pub fn grad_with(
    y: &Tensor,
    xs: &[&Tensor],
    seed: Option<&Tensor>,
    create_graph: bool,
) -> Result<Vec<Tensor>> {
    let seed = seed_for(y, seed, "grad")?;
    let wanted: HashSet<u64> = xs.iter().map(|x| x.id()).collect();
    let mut found: HashMap<u64, Tensor> = HashMap::new();
    reverse(y, seed, create_graph, false, |node, g| {
        if wanted.contains(&node.id()) {
            found.insert(node.id(), g.clone());
        }
        Ok(())
    })?;
    xs.iter()
        .map(|x| match found.remove(&x.id()) {
            Some(g) => Ok(g),
            None => x.zeros_like(),
        })
        .collect()
}

/// Basis seed e_i of `shape`.
fn basis(shape: &[usize], i: usize, like: &Tensor) -> Result<Tensor> {
    let n: usize = shape.iter().product();
    let mut v = vec![0.0f32; n];
    v[i] = 1.0;
    Tensor::from_vec(v, shape, like.device())
}

/// The Hessian of a scalar function at `x`, shape `x.shape ++ x.shape` ([n, n] for a vector).
pub fn hessian(f: impl Fn(&Tensor) -> Result<Tensor>, x: &Tensor) -> Result<Tensor> {
    let x = x.detach().requires_grad();
    let y = f(&x)?;
    let g = grad(&y, &[&x], true)?.remove(0);
    if !g.0.requires_grad {
        // f is at most linear in x: the Hessian is zero.
        let mut shape = x.shape().to_vec();
        shape.extend_from_slice(x.shape());
        return Tensor::zeros(&shape, x.device());
    }
    let rows = (0..x.numel())
        .map(|i| {
            let e = basis(g.shape(), i, &x)?;
            Ok(grad_with(&g, &[&x], Some(&e), false)?.remove(0))
        })
        .collect::<Result<Vec<_>>>()?;
    stack_rows(&rows, x.shape(), x.shape())
}

/// The Jacobian of `f` at `x`, shape `f(x).shape ++ x.shape` ([m, n] for vectors).
pub fn jacobian(f: impl Fn(&Tensor) -> Result<Tensor>, x: &Tensor) -> Result<Tensor> {
    let x = x.detach().requires_grad();
    let y = f(&x)?;
    if !y.0.requires_grad {
        let mut shape = y.shape().to_vec();
        shape.extend_from_slice(x.shape());
        return Tensor::zeros(&shape, x.device());
    }
    let rows = (0..y.numel())
        .map(|i| {
            let e = basis(y.shape(), i, &x)?;
            Ok(grad_with(&y, &[&x], Some(&e), false)?.remove(0))
        })
        .collect::<Result<Vec<_>>>()?;
    stack_rows(&rows, y.shape(), x.shape())
}

/// Hessian-vector product H(x)·v of a scalar function, without forming H (two backward passes).
pub fn hvp(f: impl Fn(&Tensor) -> Result<Tensor>, x: &Tensor, v: &Tensor) -> Result<Tensor> {
    let x = x.detach().requires_grad();
    let y = f(&x)?;
    let g = grad(&y, &[&x], true)?.remove(0);
    if !g.0.requires_grad {
        return x.zeros_like();
    }
    Ok(grad_with(&g, &[&x], Some(v), false)?.remove(0))
}

fn stack_rows(rows: &[Tensor], outer: &[usize], inner: &[usize]) -> Result<Tensor> {
    let flat: Vec<Tensor> = rows
        .iter()
        .map(|r| r.reshape(&[1, r.numel()]))
        .collect::<Result<_>>()?;
    let m = Tensor::concat(&flat.iter().collect::<Vec<_>>(), 0)?;
    let mut shape = outer.to_vec();
    shape.extend_from_slice(inner);
    m.reshape(&shape)
}
