"""Checks for the exercises of 04_learning_rate_finder.ipynb."""

from __future__ import annotations

import math

from . import exercise


def _positive(answer) -> float:
    value = float(answer)
    if not math.isfinite(value) or value <= 0:
        raise ValueError("a learning rate is a positive number")
    return value


def _same_rate(a: float, b: float) -> bool:
    return abs(math.log(a / b)) < 0.05  # within 5%: 1e-3 and 0.001 and 1.02e-3 all count


@exercise("04.1", "Which rate the minimum / 10 rule picks from a given finder curve",
          right="The loss is lowest at ten times that rate; the rule backs off by an order of magnitude, "
                "on the part of the curve that is still going down.")
def minimum_rule(answer, lrs, losses) -> str | None:
    from engine.learning.lr_finder import suggest_minimum, suggest_steep

    value = _positive(answer)
    if _same_rate(value, suggest_minimum(lrs, losses)):
        return None
    lowest = lrs[min(range(len(losses)), key=losses.__getitem__)]
    if _same_rate(value, lowest):
        return "that is the rate at the lowest loss itself, where the loss is about to explode; the rule backs off"
    if _same_rate(value, suggest_steep(lrs, losses)):
        return "that is where the loss falls fastest: the other rule of thumb. This one starts from the lowest loss"
    if _same_rate(value, lowest * 10) or _same_rate(value, lowest / 100):
        return ("close: find the lowest loss in the table, then change its rate by one order of magnitude, "
                "in the safe direction")
    return "find the row with the lowest loss first, then apply the rule to its rate"


@exercise("04.2", "The factor by which the LR finder multiplies the rate at each step",
          right="About 1.2045 per step: 99 multiplications by it take 1e-7 to 10, eight orders of magnitude.")
def step_factor(answer, result) -> str | None:
    value = float(answer)
    measured = result.lrs[1] / result.lrs[0]  # what the sweep above really did
    if not math.isfinite(value):
        return "give a number, the ratio between one rate and the one before it"
    if abs(value - measured) <= 1e-3:
        return None
    if abs(value - 10 ** (8 / 100)) <= 1e-3:
        return "almost: count the steps between 100 rates (the first rate is 1e-7, the last is 10)"
    if value < 1:
        return "the rate grows, so the factor is above 1; and it is a factor (multiply), not an amount added"
    if value > 5:
        return ("that is more than the sweep's factor for one step: the whole range of 1e8 is split into many "
                "equal ratios")
    return ("not quite (give at least three decimals): which number, multiplied by itself once per step, "
            "turns 1e-7 into 10 by the last of the 100 rates?")
