"""Checks for the exercises of 03_softmax_cross_entropy_log_domain.ipynb."""

from __future__ import annotations

import math

from . import as_number as _number
from . import exercise


@exercise("03.1", "The cross-entropy of an item whose correct class has probability about 0.5",
          right="Two equal activations share almost all the probability (the -20 gets a share under 1e-9), "
                "so the correct class has p = 0.5 and the loss is -log(0.5) = log 2 = 0.693.")
def loss_at_one_half(answer) -> str | None:
    import torch

    from engine.losses import cross_entropy, softmax

    logits, target = torch.tensor([[1.5, 1.5, -20.0]]), torch.tensor([0])
    truth = float(cross_entropy(logits, target))
    value = _number(answer)
    if abs(value - truth) <= 0.01:
        return None
    p = float(softmax(logits)[0, 0])
    if value < 0:
        return "a loss of -log(p) is never negative: p is at most 1, so log(p) is at most 0"
    if abs(value - p) <= 0.02:
        return "that is the probability of the correct class; the loss is minus its logarithm"
    if abs(value - math.log(3)) <= 0.02:
        return ("the three classes do not share equally: how much probability does an activation of -20 get, "
                "next to two of 1.5?")
    if abs(value - math.log10(2)) <= 0.01:
        return "the loss uses the natural logarithm (base e), not log base 10"
    return "first find the probability softmax gives class 0 (compare the three activations), then take -log of it"


@exercise("03.2", "Softmax after adding the same constant to every activation",
          right="Adding 10 to every activation multiplies every exp by e^10, which cancels between the top and "
                "the bottom of softmax: the probability stays what it was, 0.523. Only the gaps count.")
def shift_invariance(answer) -> str | None:
    import torch

    from engine.losses import softmax

    before = torch.tensor([1.0, 2.0, 3.0, 3.5])
    truth = float(softmax(before + 10)[3])
    value = _number(answer)
    if not 0 <= value <= 1:
        return "a probability is between 0 and 1"
    if abs(value - truth) <= 0.005:
        return None
    if value > truth:
        return ("adding 10 to every activation does not make the leader lead by more: what happens to the gaps "
                "between the activations?")
    if abs(value - 13.5 / 49.5) <= 0.01:
        return "softmax does not divide the activations by their sum: it divides exp(activation) by the sum of exps"
    return "write softmax as exp(x_i) / sum(exp(x_j)) with x + 10 in place of x: what does e^10 do to that fraction?"


@exercise("03.3", "The ratio of two probabilities at temperature 0.5",
          right="Dividing by T = 0.5 doubles the gap, from 1 to 2, and a ratio of probabilities is e to the gap: "
                "e^2 = 7.39.")
def ratio_at_temperature(answer) -> str | None:
    import torch

    from engine.losses import softmax

    p = softmax(torch.tensor([0.0, 1.0]) / 0.5)
    truth = float(p[1] / p[0])
    value = _number(answer)
    if math.isclose(value, truth, rel_tol=0.02):
        return None
    if math.isclose(value, math.e, rel_tol=0.02):
        return "that is the ratio at T = 1; what does dividing the activations by 0.5 do to their gap?"
    if math.isclose(value, math.exp(0.5), rel_tol=0.02):
        return "the activations are divided by T, not multiplied: a temperature below 1 makes the gap larger"
    if 0 <= value <= 1:
        return "give the ratio p1 / p0 (class 1 is the likelier one, so it is above 1), not a probability"
    return "the ratio of two softmax probabilities is e to the gap between the (temperature-scaled) activations"
