"""The learning-rate finder: one short run with the rate growing exponentially, watching the loss.

Start tiny (1e-7), multiply the rate by the same factor every batch up to ``end_lr``, and record
the loss, smoothed with an exponentially weighted average (beta 0.98) that is debiased for the
first steps. Stop once the smoothed loss is more than 4x its minimum: the rate is now far too high.
Afterwards the weights and the optimizer are put back exactly as they were.

Rules of thumb for reading the curve (all three are marked on the plot; they are read off the
curve without its first tenth, where the average rests on a few batches, and its last 5 steps):
    minimum  the rate at the lowest loss, divided by 10 (at the minimum it is already too high);
    steep    where the loss falls fastest (the steepest downward slope on the log scale);
    valley   a point inside the longest stretch where the loss keeps going down.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from .callbacks import Callback, CancelEpochException, CancelFitException, Order, gradients_finite
from .schedules import exp_anneal

__all__ = ["LRFinder", "LRFindResult", "lr_find", "suggest_minimum", "suggest_steep", "suggest_valley"]


class LRFinder(Callback):
    """Sets the exponential rate each batch, records the smoothed loss, stops on divergence."""

    order = Order.SWEEP

    def __init__(self, start_lr: float, end_lr: float, num_it: int, beta: float = 0.98, stop_div: bool = True):
        self.start_lr, self.end_lr, self.num_it, self.beta, self.stop_div = start_lr, end_lr, num_it, beta, stop_div
        self.lrs, self.losses, self.raw_losses = [], [], []
        self.avg, self.best = 0.0, math.inf

    def before_batch(self, learn):
        if not learn.training:
            return
        lr = exp_anneal(self.start_lr, self.end_lr, len(self.lrs) / max(self.num_it - 1, 1))
        for group in learn.opt.param_groups:
            group["lr"] = lr
        self.lrs.append(lr)

    def after_loss(self, learn):
        if not learn.training:
            return
        loss = learn.loss.item()
        if not math.isfinite(loss):  # diverged for good: record the last rate and stop
            self.lrs.pop()
            raise CancelFitException()
        self.avg = self.beta * self.avg + (1 - self.beta) * loss
        smooth = self.avg / (1 - self.beta ** (len(self.losses) + 1))  # debiased for the first steps
        self.raw_losses.append(loss)
        self.losses.append(smooth)
        self.best = min(self.best, smooth)

    def after_backward(self, learn):
        if learn.scaler is None and not gradients_finite(learn):  # diverging: the loss is next
            raise CancelFitException()

    def after_batch(self, learn):
        if not learn.training:
            return
        if self.stop_div and self.losses[-1] > 4 * self.best:
            raise CancelFitException()
        if len(self.lrs) >= self.num_it:
            raise CancelFitException()

    def before_epoch(self, learn):
        if not learn.training:
            raise CancelEpochException()  # no validation during the sweep


@dataclass
class LRFindResult:
    """The sweep's rates and smoothed losses, and the suggested rates by rule of thumb."""

    lrs: list[float]
    losses: list[float]
    raw_losses: list[float] = field(default_factory=list)
    suggestions: dict[str, float] = field(default_factory=dict)

    def __repr__(self) -> str:
        s = ", ".join(f"{k}={v:.2e}" for k, v in self.suggestions.items())
        return f"LRFindResult({len(self.lrs)} steps; {s})"


def suggest_minimum(lrs: list[float], losses: list[float]) -> float:
    """The rate at the minimum loss, divided by 10."""
    return lrs[min(range(len(losses)), key=losses.__getitem__)] / 10


def suggest_steep(lrs: list[float], losses: list[float]) -> float:
    """The rate where the loss decreases fastest per step of log(lr)."""
    if len(lrs) < 3:
        return lrs[0]
    slopes = [(losses[i + 1] - losses[i]) / (math.log(lrs[i + 1]) - math.log(lrs[i])) for i in range(len(lrs) - 1)]
    return lrs[min(range(len(slopes)), key=slopes.__getitem__)]


def suggest_valley(lrs: list[float], losses: list[float]) -> float:
    """A rate well inside the longest run of decreasing losses.

    Find the longest decreasing subsequence of the losses (how many earlier points each point is
    below), take the stretch it spans, and pick a point about halfway into its middle third: far
    enough down to learn fast, far enough from the end where the loss turns up.
    """
    n = len(losses)
    if n < 3:
        return lrs[0]
    run = [1] * n
    best_end, best_len = 0, 1
    for i in range(1, n):
        for j in range(i):
            if losses[i] < losses[j] and run[j] + 1 > run[i]:
                run[i] = run[j] + 1
        if run[i] > best_len:
            best_end, best_len = i, run[i]
    start = best_end - best_len + 1
    third = (best_end - start) / 3
    return lrs[min(n - 1, start + int(third) + int(third / 2))]


def lr_find(learn, start_lr: float = 1e-7, end_lr: float = 10.0, num_it: int = 100, beta: float = 0.98,
            stop_div: bool = True) -> LRFindResult:
    """Run the sweep on ``learn``; return the curve and the suggestions. Nothing is changed."""
    finder = LRFinder(start_lr, end_lr, num_it, beta, stop_div)
    n_epochs = math.ceil(num_it / max(len(learn.dls.train), 1))
    with learn.restoring():  # weights, optimizer and history as they were, however the sweep ends
        learn.fit(n_epochs, cbs=[finder])
    if len(finder.losses) < 2:
        raise RuntimeError("the LR finder ran fewer than 2 batches: the training set is too small for a sweep")
    lrs, losses = finder.lrs[: len(finder.losses)], finder.losses
    # Judge the curve without its ends: the first tenth of the smoothed losses rests on only a few
    # batches, and the last few steps are the blow-up that stopped the sweep.
    lo, hi = num_it // 10, len(losses) - 5
    if hi - lo < 5:
        lo, hi = 0, len(losses)
    judged_lrs, judged = lrs[lo:hi], losses[lo:hi]
    suggestions = {"minimum": suggest_minimum(judged_lrs, judged), "steep": suggest_steep(judged_lrs, judged),
                   "valley": suggest_valley(judged_lrs, judged)}
    return LRFindResult(lrs, losses, finder.raw_losses, suggestions)

