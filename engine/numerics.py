"""Log-domain numerics: why the engine keeps logits and log-probabilities, and a NaN/inf guard.

* ``log(-2)`` has no real answer. Python's ``math.log`` refuses it (``ValueError: math domain
  error``); PyTorch returns ``nan`` and carries on, so one bad value silently poisons every number
  computed from it. ``log(0)`` is ``-inf``, just as poisonous.
* Probabilities are between 0 and 1, and in float32 a probability below about 1e-45 rounds to 0.
  Taking its log then gives ``-inf``. The engine therefore never computes ``log(softmax(x))``: it
  computes ``log_softmax(x) = x - logsumexp(x)`` directly from the logits, which stays finite.
* The naive ``exp(x) / exp(x).sum()`` overflows for logits above about 88 (float32): ``exp(89)``
  is ``inf`` and ``inf / inf`` is ``nan``. :func:`engine.losses.softmax` subtracts the maximum
  first and stays finite. :func:`compare_softmax` shows both side by side.

The learner calls :func:`check_finite` on every loss so that a NaN stops training at once with a
message naming the value, the epoch and the batch, instead of many epochs of ``nan`` later.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from .losses import log_softmax, softmax

__all__ = [
    "NonFiniteError",
    "check_finite",
    "log_of",
    "naive_softmax",
    "naive_log_softmax",
    "compare_softmax",
]


class NonFiniteError(FloatingPointError):
    """A NaN or infinity appeared in a value that must stay finite (a loss, activations, gradients)."""


def check_finite(
    value: Tensor,
    name: str = "loss",
    *,
    epoch: int | None = None,
    batch: int | None = None,
    hint: str = "the learning rate may be too high: run lr_find() and pick a smaller one, "
    "or train without mixed precision (to_fp32())",
) -> Tensor:
    """Return ``value`` unchanged, or raise :class:`NonFiniteError` naming it and the step.

    Example message: ``loss became NaN at epoch 1, batch 7: the learning rate may be too high ...``
    """
    if bool(torch.isfinite(value).all()):
        return value
    kind = "NaN" if bool(torch.isnan(value).any()) else "infinite"
    where = []
    if epoch is not None:
        where.append(f"epoch {epoch}")
    if batch is not None:
        where.append(f"batch {batch}")
    at = f" at {', '.join(where)}" if where else ""
    raise NonFiniteError(f"{name} became {kind}{at}: {hint}")


def log_of(x: float) -> dict[str, object]:
    """What ``math.log`` and ``torch.log`` each do with ``x`` (try ``x = -2`` and ``x = 0``)."""
    try:
        math_result: object = math.log(x)
    except ValueError as err:  # math refuses to leave the real numbers
        math_result = f"ValueError: {err}"
    return {"x": x, "math.log": math_result, "torch.log": float(torch.log(torch.tensor(float(x))))}


def naive_softmax(x: Tensor, dim: int = -1) -> Tensor:
    """The textbook ``exp(x) / exp(x).sum()``: correct on paper, overflows for large logits."""
    e = x.exp()
    return e / e.sum(dim=dim, keepdim=True)


def naive_log_softmax(x: Tensor, dim: int = -1) -> Tensor:
    """``log(naive_softmax(x))``: gives -inf (and then NaN losses) where a probability underflows."""
    return naive_softmax(x, dim).log()


def compare_softmax(logits: Tensor) -> dict[str, Tensor | bool]:
    """Run the naive and the engine's (log-)softmax on the same logits and report finiteness."""
    naive, engine = naive_softmax(logits), softmax(logits)
    naive_log, engine_log = naive_log_softmax(logits), log_softmax(logits)
    return {
        "naive_softmax": naive,
        "engine_softmax": engine,
        "naive_log_softmax": naive_log,
        "engine_log_softmax": engine_log,
        "naive_finite": bool(torch.isfinite(naive).all() and torch.isfinite(naive_log).all()),
        "engine_finite": bool(torch.isfinite(engine).all() and torch.isfinite(engine_log).all()),
    }
