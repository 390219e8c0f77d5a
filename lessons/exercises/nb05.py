"""Checks for the exercises of 05_fine_tune_and_discriminative_lrs.ipynb."""

from __future__ import annotations

import math

from . import exercise


def _rates(answer, n: int, what: str = "learning rates", like: str = "[1e-5, 1e-4, 1e-3]") -> list[float] | str:
    """The answer as ``n`` positive floats, or a hint saying what is wrong with its shape."""
    if isinstance(answer, (str, bytes)) or not hasattr(answer, "__len__"):
        return f"give a list of {n} {what}, earliest group first, like {like}"
    rates = [float(a) for a in answer]
    if len(rates) != n:
        return f"give one number per parameter group: {n} numbers, not {len(rates)}"
    if not all(math.isfinite(r) and r > 0 for r in rates):
        return f"{what} are positive numbers"
    return rates


def _close(a: list[float], b: list[float]) -> bool:
    return all(math.isclose(x, y, rel_tol=0.02) for x, y in zip(a, b))


def optimizer_rates(lr, n_groups: int, dls) -> list[float]:
    """The per-group rates the engine's optimizer gets from ``learn.set_lr(lr)`` for a model with
    ``n_groups`` parameter groups (a tiny stand-in model; only the number of groups matters)."""
    from torch import nn

    from engine.learning.learner import Learner
    from engine.models import Classifier

    body = nn.Sequential(*(nn.Linear(2, 2) for _ in range(n_groups - 1)))
    model = Classifier(body, nn.Sequential(nn.Linear(2, 2)), "toy", 2, ((0.0,), (1.0,)))
    learn = Learner(dls, model, progress=False)
    learn.create_opt()
    learn.set_lr(lr)
    return [group["lr"] for group in learn.opt.param_groups]


@exercise("05.1", "slice(1e-6, 1e-3) over 4 parameter groups, by hand",
          right="Each group's rate is ten times the one before: three equal ratios span the three orders of "
                "magnitude between 1e-6 and 1e-3, just as the optimizer got them.")
def four_groups(answer, dls) -> str | None:
    truth = optimizer_rates(slice(1e-6, 1e-3), 4, dls)
    rates = _rates(answer, 4)
    if isinstance(rates, str):
        return rates
    if _close(rates, truth):
        return None
    if _close(rates[::-1], truth):
        return "the right numbers, in the wrong order: the earliest group (first in the list) gets the smallest rate"
    if not (math.isclose(rates[0], truth[0], rel_tol=0.02) and math.isclose(rates[-1], truth[-1], rel_tol=0.02)):
        return "the first group gets the slice's first value and the head (the last group) its second"
    gaps = [b - a for a, b in zip(rates, rates[1:])]
    if all(math.isclose(g, gaps[0], rel_tol=0.05) for g in gaps):
        return "those are evenly spaced (equal differences); the slice spaces the rates by equal ratios"
    return "the ends are right; the two in between: what one factor, applied three times, takes 1e-6 to 1e-3?"


@exercise("05.2", "The peak rates of fine_tune(5, base_lr=1e-2) in its unfrozen phase, for 3 groups",
          right="fine_tune halves base_lr before it unfreezes, and passes slice(base_lr / 100, base_lr): "
                "the head peaks at half of base_lr, each group before it ten times lower.")
def fine_tune_peaks(answer, learn) -> str | None:
    from engine.learning.schedules import lr_for_groups

    calls = []  # what fine_tune hands to fit_one_cycle; nothing is trained
    learn.fit_one_cycle = lambda n_epochs, lr_max=None, **kwargs: calls.append(lr_max)
    try:
        learn.fine_tune(5, base_lr=1e-2)
    finally:
        del learn.fit_one_cycle  # the method of the class again
    truth = lr_for_groups(calls[-1], len(learn.param_groups()))
    rates = _rates(answer, len(truth))
    if isinstance(rates, str):
        return rates
    if _close(rates, truth):
        return None
    if _close([r / 2 for r in rates], truth):
        return ("the right pattern, twice too high: read the source of fine_tune (Q14) and see what happens to "
                "base_lr before the unfrozen phase")
    if _close(rates[::-1], truth):
        return "the earliest group comes first in the list, and it gets the smallest rate"
    return "read the source of fine_tune (Q14): which slice does the second fit_one_cycle get? Then apply Q16"


@exercise("05.3", "Predict, then run: one rate for every group (the head's 1e-3) instead of slice(1e-5, 1e-3): "
                  "how many times as far does each group move?",
          right="{answer}: both runs start from the same weights, gradients and optimizer state, so each step "
                "is the same step scaled by the rate (plain SGD would give the same ratios): a hundred times the "
                "rate moves the earliest layers about a hundred times as far (not exactly, since after the first "
                "step the weights, and so the gradients, differ a little). Without the slice, the pretrained early "
                "layers are moved with the new head's rate.")
def one_rate_for_all(answer, sliced, one_rate) -> str | None:
    truth = [o / s for o, s in zip(one_rate, sliced)]  # what the run measured, group by group
    factors = _rates(answer, len(truth), what="factors", like="[2, 1.5, 1]")
    if isinstance(factors, str):
        return factors
    near = [abs(math.log(f / t)) <= math.log(2) for f, t in zip(factors, truth)]  # within a factor of 2
    if all(near):
        return None
    if all(abs(math.log(f)) <= math.log(2) for f in factors):
        return ("the gradients are the same in both runs at the start, but the rates are not: how much higher is "
                "each group's rate with one rate for all? (from the same start, how does the step grow with the rate?)")
    if all(abs(math.log(f / t)) <= math.log(2) for f, t in zip(factors[::-1], truth)):
        return "the earliest group comes first in the list; which group had the smallest rate in the slice?"
    if near[0] and near[-1]:
        return "the first and the last are right; the middle group: what rate does the slice give it (Q16)?"
    return ("with the slice the groups had lr_for_groups(slice(1e-5, 1e-3), 3); with one rate, 1e-3 each. "
            "Compare the two, group by group")
