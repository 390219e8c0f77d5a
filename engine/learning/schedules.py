"""Schedules as pure functions of the training progress ``pct`` in [0, 1].

One-cycle training (Leslie Smith) changes the learning rate and the momentum over the run:

    1. warm-up (the first ``pct_start`` of the steps): the learning rate rises from lr_max / div to
       lr_max along half a cosine, while momentum falls from 0.95 to 0.85;
    2. annealing (the rest): the learning rate falls from lr_max to lr_max / div_final along half
       a cosine, while momentum climbs back to 0.95.

A low rate at the start lets the new head settle without wrecking the pretrained body; the high
middle explores; the long, slow end is where the loss drops most. Momentum moves the other way
because a high rate and high momentum together overshoot.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

__all__ = ["cos_anneal", "lin_anneal", "exp_anneal", "combine", "one_cycle_lr", "one_cycle_mom",
           "lr_for_groups"]


def cos_anneal(start: float, end: float, pct: float) -> float:
    """From ``start`` (pct 0) to ``end`` (pct 1) along half a cosine: flat at both ends."""
    return end + (start - end) / 2 * (1 + math.cos(math.pi * pct))


def lin_anneal(start: float, end: float, pct: float) -> float:
    """Straight line from ``start`` to ``end``."""
    return start + (end - start) * pct


def exp_anneal(start: float, end: float, pct: float) -> float:
    """Geometric: equal *ratios* per step, as the LR finder sweeps from 1e-7 to 10."""
    return start * (end / start) ** pct


def combine(pcts: Sequence[float], schedules: Sequence[Callable[[float], float]]) -> Callable[[float], float]:
    """Chain schedules: the i-th runs over a share ``pcts[i]`` of the progress, with its own 0..1."""
    if abs(sum(pcts) - 1) > 1e-9:
        raise ValueError(f"the shares of the schedules must add up to 1, got {list(pcts)}")
    bounds = [0.0]
    for p in pcts:
        bounds.append(bounds[-1] + p)

    def schedule(pct: float) -> float:
        for i, sched in enumerate(schedules):
            lo, hi = bounds[i], bounds[i + 1]
            if pct <= hi or i == len(schedules) - 1:
                return sched(min(1.0, (pct - lo) / (hi - lo)) if hi > lo else 1.0)
        raise AssertionError("unreachable")

    return schedule


def one_cycle_lr(pct: float, lr_max: float, div: float = 25.0, div_final: float = 1e5,
                 pct_start: float = 0.25) -> float:
    """The learning rate at progress ``pct`` of one cycle."""
    return combine([pct_start, 1 - pct_start], [
        lambda p: cos_anneal(lr_max / div, lr_max, p),   # 1. warm up
        lambda p: cos_anneal(lr_max, lr_max / div_final, p),  # 2. anneal
    ])(pct)


def one_cycle_mom(pct: float, moms: tuple[float, float, float] = (0.95, 0.85, 0.95),
                  pct_start: float = 0.25) -> float:
    """The momentum (Adam's beta1) at progress ``pct``: down while the rate goes up, then back."""
    return combine([pct_start, 1 - pct_start], [
        lambda p: cos_anneal(moms[0], moms[1], p),
        lambda p: cos_anneal(moms[1], moms[2], p),
    ])(pct)


def lr_for_groups(lr: float | slice, n_groups: int) -> list[float]:
    """One learning rate per parameter group, earliest group first.

    * a number: the same rate for every group;
    * ``slice(hi)``: ``hi / 10`` for every body group, ``hi`` for the head (the last group);
    * ``slice(lo, hi)``: ``lo`` for the first group, ``hi`` for the head, and the ones between spaced
      geometrically (each a constant factor above the previous): ``slice(1e-6, 1e-4)`` over three
      groups gives 1e-6, 1e-5, 1e-4.
    """
    if not isinstance(lr, slice):
        return [float(lr)] * n_groups
    if lr.step is not None:
        raise ValueError("a learning-rate slice takes slice(hi) or slice(lo, hi), not a step")
    if lr.start is None:
        if lr.stop is None:
            raise ValueError("slice() needs at least the head's learning rate: slice(hi)")
        return [lr.stop / 10] * (n_groups - 1) + [float(lr.stop)]
    lo, hi = float(lr.start), float(lr.stop)
    if not 0 < lo <= hi:
        raise ValueError(f"slice(lo, hi) needs 0 < lo <= hi, got slice({lo}, {hi})")
    if n_groups == 1:
        return [hi]
    return [exp_anneal(lo, hi, i / (n_groups - 1)) for i in range(n_groups)]
