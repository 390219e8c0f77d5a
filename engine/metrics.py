"""Metrics: numbers for people, computed on the validation set after each epoch.

The loss is what the optimizer follows (smooth, differentiable); a metric is what we care about
(how often is the breed wrong?). Each takes predictions of shape (n, n_classes) and targets (n,).
"""

from __future__ import annotations

from torch import Tensor

__all__ = ["accuracy", "error_rate"]


def accuracy(preds: Tensor, targets: Tensor) -> Tensor:
    """Share of items whose highest-scoring class is the target."""
    return (preds.argmax(dim=1) == targets).float().mean()


def error_rate(preds: Tensor, targets: Tensor) -> Tensor:
    """Share of items whose highest-scoring class is *not* the target: ``1 - accuracy``."""
    return 1 - accuracy(preds, targets)
