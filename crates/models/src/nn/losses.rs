//! Losses, composed from graph ops so every one is differentiable (twice).

use wgrad_graph::{GraphError, Result, Tensor, no_grad};

fn same_shape(op: &'static str, a: &Tensor, b: &Tensor) -> Result<()> {
    if a.shape() != b.shape() {
        return Err(GraphError::InvalidArgument {
            op,
            reason: format!(
                "prediction {:?} and target {:?} differ",
                a.shape(),
                b.shape()
            ),
        });
    }
    Ok(())
}

/// Mean squared error, averaged over every element.
pub fn mse(pred: &Tensor, target: &Tensor) -> Result<Tensor> {
    same_shape("mse", pred, target)?;
    pred.sub(target)?.square()?.mean_all()
}

/// Binary cross-entropy from logits, averaged: softplus(x) - x·t, stable for any |x|.
pub fn bce_with_logits(logits: &Tensor, target: &Tensor) -> Result<Tensor> {
    same_shape("bce_with_logits", logits, target)?;
    logits.softplus()?.sub(&logits.mul(target)?)?.mean_all()
}

/// Softmax cross-entropy of logits [N, C] against u32 labels [N], averaged over the batch: the
/// max-subtracted log-softmax kernel followed by a gather of each row's label.
pub fn cross_entropy(logits: &Tensor, labels: &Tensor) -> Result<Tensor> {
    if logits.rank() != 2 || labels.shape() != [logits.shape()[0]] {
        return Err(GraphError::InvalidArgument {
            op: "cross_entropy",
            reason: format!(
                "logits {:?} and labels {:?}: expected [N, C] and [N]",
                logits.shape(),
                labels.shape()
            ),
        });
    }
    logits.cross_entropy(labels)
}

/// 0.5 · λ · Σ ||w||² over `params` (L2 weight decay as a loss term).
pub fn l2_penalty(params: &[Tensor], lambda: f32) -> Result<Tensor> {
    let first = params.first().ok_or(GraphError::InvalidArgument {
        op: "l2_penalty",
        reason: "no parameters".into(),
    })?;
    let mut total = first.square()?.sum_all()?;
    for p in &params[1..] {
        total = total.add(&p.square()?.sum_all()?)?;
    }
    total.mul_scalar(0.5 * lambda)
}

/// Number of rows whose arg-max equals the label, as a 0-d f32 tensor on the device (so metrics
/// can be accumulated without a readback per step).
pub fn accuracy_count(logits: &Tensor, labels: &Tensor) -> Result<Tensor> {
    no_grad(|| {
        let c = logits.shape()[logits.rank() - 1];
        let pred = logits.argmax(-1)?.one_hot(c)?;
        pred.mul(&labels.one_hot(c)?)?.sum_all()
    })
}
