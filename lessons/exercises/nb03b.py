"""Checks for the exercises of 03b_sigmoid_and_torch_where.ipynb."""

from __future__ import annotations

import math

from . import as_number as _number
from . import exercise


@exercise("03b.1", "The sum of three sigmoid outputs",
          right="Each sigmoid output stands on its own: sigmoid(2) = 0.881 twice and sigmoid(-3) = 0.047 add up "
                "to 1.81. Nothing makes them add up to 1: that is softmax's guarantee, not sigmoid's.")
def sigmoid_sum(answer) -> str | None:
    import torch

    from engine.losses import sigmoid

    truth = float(sigmoid(torch.tensor([2.0, 2.0, -3.0])).sum())
    value = _number(answer)
    if abs(value - truth) <= 0.01:
        return None
    if abs(value - 1) <= 0.01:
        return "adding up to 1 is what softmax guarantees; a sigmoid squashes each activation on its own"
    if not 0 <= value <= 3:
        return "each sigmoid output lies between 0 and 1, so three of them add up to between 0 and 3"
    return "work out sigmoid(x) = 1 / (1 + e^-x) for each of the three activations, then add them"


@exercise("03b.2", "What the two-class where recipe charges an item of a third class",
          right="Its target is not 1, so torch.where takes the else branch and charges p, the probability of "
                "class 1: 0.1, as for a class-0 item. The right distance is 1 - 0.2 = 0.8: the recipe undercharges.")
def where_charge(answer) -> str | None:
    import torch

    probs, target = torch.tensor([0.7, 0.1, 0.2]), torch.tensor(2)
    p = probs[1]
    truth = float(torch.where(target == 1, 1 - p, p))
    value = _number(answer)
    if math.isclose(value, truth, abs_tol=0.005):
        return None
    if math.isclose(value, 0.8, abs_tol=0.005):
        return "that is what the item should cost; which branch of torch.where does a target of 2 take?"
    if math.isclose(value, 0.9, abs_tol=0.005):
        return "1 - p is the branch for targets equal to 1; this item's target is 2"
    return "p is the probability of class 1; the condition asks only whether the target equals 1"
