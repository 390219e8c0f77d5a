"""Classification losses, built from scratch in the order the lesson teaches them.

1. ``where_loss``: the two-category loss written with ``torch.where``, used before softmax exists.
   It cannot express three or more categories, which is why we need softmax.
2. ``softmax``: turns activations into probabilities that sum to one, amplifying differences.
3. ``logsumexp`` and ``log_softmax``: the same thing in the log domain, stable for huge logits;
   ``log_mean_softmax`` averages several predictions' probabilities there (test-time augmentation).
4. ``nll_loss``: picks minus the log-probability of the correct class.
5. ``cross_entropy``: ``nll_loss(log_softmax(logits))``, optionally with label smoothing.
6. ``sigmoid`` and ``binary_cross_entropy_with_logits``: one independent yes/no per class, for
   multi-label data and for inputs that belong to none of the classes.

Every function is checked against ``torch.nn.functional`` on values and gradients in
``tests/test_losses.py``, including logits of +/-1e4, where naive formulas overflow.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = [
    "where_loss",
    "softmax",
    "logsumexp",
    "log_softmax",
    "log_mean_softmax",
    "nll_loss",
    "cross_entropy",
    "sigmoid",
    "binary_cross_entropy_with_logits",
]

_REDUCTIONS = ("none", "mean", "sum")


# --- input checks: every loss fails with a message that says what it expected ---------------------

def _check_logits(logits: Tensor, name: str = "logits") -> None:
    if not isinstance(logits, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(logits).__name__}")
    if not logits.is_floating_point():
        raise TypeError(
            f"{name} must be a floating-point tensor (the model's raw outputs), got dtype {logits.dtype}; "
            f"convert with {name}.float()"
        )


def _check_batch(logits: Tensor, targets: Tensor, name: str = "logits") -> None:
    """Logits of shape (batch, n_classes) and integer class indices of shape (batch,)."""
    _check_logits(logits, name)
    if logits.ndim != 2:
        raise ValueError(f"{name} must have shape (batch, n_classes), got shape {tuple(logits.shape)}")
    if logits.shape[0] == 0:
        raise ValueError(
            f"empty batch: {name} has shape {tuple(logits.shape)}; a loss needs at least one item "
            "(check that the dataset and DataLoader are not empty)"
        )
    if not isinstance(targets, Tensor):
        raise TypeError(f"targets must be a torch.Tensor of class indices, got {type(targets).__name__}")
    if targets.dtype != torch.long:
        raise TypeError(
            f"targets must hold class indices as torch.long (int64), got dtype {targets.dtype}; "
            "convert with targets.long()"
        )
    if targets.shape != logits.shape[:1]:
        raise ValueError(
            f"targets must have shape ({logits.shape[0]},) to match {name} of shape {tuple(logits.shape)}, "
            f"got shape {tuple(targets.shape)}"
        )
    n_classes = logits.shape[1]
    if targets.device.type != "cpu":
        # Reading the values back would make the GPU wait for every batch: check on the device
        # instead, which stops the run with this message if the check ever fails.
        torch._assert_async(((targets >= 0) & (targets < n_classes)).all(),
                            f"targets must be class indices in [0, {n_classes - 1}] for {n_classes} classes")
        return
    lo, hi = int(targets.min()), int(targets.max())
    if lo < 0 or hi >= n_classes:
        raise ValueError(
            f"targets must be class indices in [0, {n_classes - 1}] for {n_classes} classes, "
            f"got values from {lo} to {hi}"
        )


def _check_reduction(reduction: str) -> None:
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")


def _reduce(loss: Tensor, reduction: str) -> Tensor:
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss


# --- 1. the two-category loss, before softmax ----------------------------------------------------

def where_loss(logits: Tensor, targets: Tensor) -> Tensor:
    """Two-category loss: distance of ``sigmoid(logit)`` from the target (1 = yes, 0 = no).

    ``torch.where`` chooses between exactly two expressions, so this loss can only say "how far
    from 1" or "how far from 0": it has no way to express a third category.
    """
    _check_logits(logits)
    if logits.numel() == 0:
        raise ValueError("empty batch: where_loss needs at least one prediction")
    if logits.shape != targets.shape:
        raise ValueError(
            f"where_loss expects one logit per item: logits of shape {tuple(logits.shape)} "
            f"and targets of shape {tuple(targets.shape)} must match"
        )
    values = torch.unique(targets).tolist()
    if not set(values) <= {0, 1}:
        raise ValueError(
            f"where_loss handles exactly two categories (targets 0 and 1), got target values {values}: "
            "torch.where picks between two branches only; for 3 or more categories use cross_entropy"
        )
    probs = sigmoid(logits)
    return torch.where(targets == 1, 1 - probs, probs).mean()


# --- 2. softmax ----------------------------------------------------------------------------------

def softmax(logits: Tensor, dim: int = -1) -> Tensor:
    """``exp(x) / exp(x).sum()``: probabilities that sum to one along ``dim``.

    Subtracting the maximum first changes nothing mathematically (it cancels between numerator
    and denominator) but keeps ``exp`` from overflowing: the largest exponent becomes ``exp(0) = 1``.
    """
    _check_logits(logits)
    shifted = logits - logits.amax(dim=dim, keepdim=True).detach()
    exps = shifted.exp()
    return exps / exps.sum(dim=dim, keepdim=True)


# --- 3. the log domain -----------------------------------------------------------------------------

def logsumexp(x: Tensor, dim: int = -1, keepdim: bool = False) -> Tensor:
    """``log(sum(exp(x)))`` computed as ``m + log(sum(exp(x - m)))`` with ``m = max(x)``.

    The shifted exponentials are all <= 1 and at least one equals 1, so the sum is in [1, n]:
    it can neither overflow nor underflow to a ``log(0)``.
    """
    # m does not change the result, so no gradient needs to flow through it.
    m = x.amax(dim=dim, keepdim=True).detach()
    out = m + (x - m).exp().sum(dim=dim, keepdim=True).log()
    return out if keepdim else out.squeeze(dim)


def log_softmax(logits: Tensor, dim: int = -1) -> Tensor:
    """``log(softmax(x)) = x - logsumexp(x)``, without ever taking the log of a tiny probability."""
    _check_logits(logits)
    # Shift first, as softmax does: x - max is exact, and keeps the subtraction below precise even
    # when the logits are around 1e4 (where float32 has only ~0.001 of resolution).
    shifted = logits - logits.amax(dim=dim, keepdim=True).detach()
    return shifted - logsumexp(shifted, dim=dim, keepdim=True)


def log_mean_softmax(logits: Tensor, dim: int = 0) -> Tensor:
    """``log(mean(softmax(logits), dim))``: the log of several predictions' averaged probabilities.

    Test-time augmentation averages a photo's and its mirror image's probabilities. Averaging in
    the log domain keeps the result a log-probability without leaving it:
    ``log((p1 + ... + pn) / n) = logsumexp(log p1, ..., log pn) - log n``.

    Args:
        logits: the predictions stacked along ``dim``, classes along the last axis, e.g.
            ``torch.stack([logits, mirrored_logits])`` of shape (2, bs, n_classes).
        dim: the axis that holds the predictions to average (not the classes' axis).
    """
    _check_logits(logits)
    if logits.ndim < 2 or dim % logits.ndim == logits.ndim - 1:
        raise ValueError(f"log_mean_softmax averages over an axis other than the classes' (the last); got dim={dim} "
                         f"for shape {tuple(logits.shape)}: stack the predictions first, e.g. torch.stack([a, b])")
    return logsumexp(log_softmax(logits), dim=dim) - math.log(logits.shape[dim])


# --- 4. negative log likelihood -----------------------------------------------------------------

def nll_loss(
    log_probs: Tensor,
    targets: Tensor,
    weight: Tensor | None = None,
    reduction: str = "mean",
) -> Tensor:
    """Minus the log-probability of each item's correct class.

    Args:
        log_probs: (batch, n_classes) log-probabilities, e.g. from ``log_softmax``.
        targets: (batch,) class indices (int64).
        weight: optional (n_classes,) weight per class; with ``reduction="mean"`` the result is a
            weighted mean (divided by the sum of the targets' weights), as in PyTorch.
        reduction: "mean", "sum" or "none".
    """
    _check_batch(log_probs, targets, name="log_probs")
    _check_reduction(reduction)
    picked = log_probs[torch.arange(len(targets), device=targets.device), targets]  # (batch,)
    if weight is None:
        return _reduce(-picked, reduction)
    _check_weight(weight, log_probs.shape[1])
    w = weight[targets]  # (batch,)
    loss = -picked * w
    if reduction == "mean":
        return loss.sum() / w.sum()
    return _reduce(loss, reduction)


def _check_weight(weight: Tensor, n_classes: int) -> None:
    if weight.shape != (n_classes,):
        raise ValueError(f"weight must have one value per class, shape ({n_classes},), got {tuple(weight.shape)}")


# --- 5. cross-entropy ------------------------------------------------------------------------------

def cross_entropy(
    logits: Tensor,
    targets: Tensor,
    weight: Tensor | None = None,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
) -> Tensor:
    """``nll_loss(log_softmax(logits), targets)``: the loss for single-label classification.

    Args:
        logits: (batch, n_classes) raw model outputs.
        targets: (batch,) class indices (int64).
        weight: optional (n_classes,) weight per class.
        reduction: "mean", "sum" or "none".
        label_smoothing: eps in [0, 1]. The target becomes ``1 - eps`` on the true class plus
            ``eps / n_classes`` spread over all classes, so the model is not pushed to infinite logits.
    """
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"label_smoothing must be in [0, 1], got {label_smoothing}")
    _check_batch(logits, targets)
    _check_reduction(reduction)
    log_probs = log_softmax(logits, dim=1)  # (batch, n_classes)
    nll = nll_loss(log_probs, targets, weight=weight, reduction=reduction)
    if label_smoothing == 0.0:
        return nll
    # The smoothing term: minus the (weighted) log-probability summed over every class.
    per_class = log_probs if weight is None else log_probs * weight  # (batch, n_classes)
    smooth = -per_class.sum(dim=1)  # (batch,)
    if reduction == "mean":
        smooth = smooth.sum() / weight[targets].sum() if weight is not None else smooth.mean()
    else:
        smooth = _reduce(smooth, reduction)
    n_classes = logits.shape[1]
    return (1 - label_smoothing) * nll + (label_smoothing / n_classes) * smooth


# --- 6. one independent probability per class ----------------------------------------------------

def sigmoid(logits: Tensor) -> Tensor:
    """``1 / (1 + exp(-x))``, squashing each value into (0, 1) independently of the others.

    Written with ``z = exp(-|x|)``, which is always in (0, 1]: neither branch can overflow,
    so no inf (and no NaN gradient) appears even at x = -1e4.
    """
    _check_logits(logits)
    z = (-logits.abs()).exp()
    return torch.where(logits >= 0, 1 / (1 + z), z / (1 + z))


def binary_cross_entropy_with_logits(
    logits: Tensor,
    targets: Tensor,
    weight: Tensor | None = None,
    reduction: str = "mean",
) -> Tensor:
    """Binary cross-entropy of ``sigmoid(logits)`` against 0/1 (or soft) targets, element by element.

    ``-[y log s + (1 - y) log(1 - s)]`` with ``s = sigmoid(x)`` simplifies to
    ``(1 - y) * x + log(1 + exp(-x))``, and ``log(1 + exp(-x)) = logsumexp([0, -x])``: the log
    domain again, so no probability is ever rounded to 0 and then logged.
    """
    _check_logits(logits)
    _check_reduction(reduction)
    if logits.numel() == 0:
        raise ValueError("empty batch: binary_cross_entropy_with_logits needs at least one prediction")
    if not isinstance(targets, Tensor) or not targets.is_floating_point():
        got = targets.dtype if isinstance(targets, Tensor) else type(targets).__name__
        raise TypeError(
            f"targets must be a float tensor of 0/1 (or soft) labels, one per logit, got {got}; "
            "convert with targets.float()"
        )
    if targets.shape != logits.shape:
        raise ValueError(
            f"targets must have the same shape as logits {tuple(logits.shape)}, got {tuple(targets.shape)}"
        )
    softplus_neg = logsumexp(torch.stack([torch.zeros_like(logits), -logits]), dim=0)  # log(1 + e^-x)
    loss = (1 - targets) * logits + softplus_neg
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction)
