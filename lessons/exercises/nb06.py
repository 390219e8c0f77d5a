"""Checks for the exercises of 06_one_cycle_and_early_stopping.ipynb."""

from __future__ import annotations

import math

from . import exercise


def _positive(answer) -> float:
    value = float(answer)
    if not math.isfinite(value) or value < 0:
        raise ValueError("a learning rate is a number >= 0")
    return value


def peak_epoch(n_epochs: int, pct_start: float, batches_per_epoch: int) -> int:
    """The epoch (counting from 1) in which the engine's one-cycle scheduler sets its highest rate."""
    from functools import partial
    from types import SimpleNamespace

    from engine.learning.callbacks import ParamScheduler
    from engine.learning.schedules import one_cycle_lr

    group = {"lr": 0.0}
    learn = SimpleNamespace(opt=SimpleNamespace(param_groups=[group]), n_epochs=n_epochs, training=True,
                            dls=SimpleNamespace(train=range(batches_per_epoch)))  # what the scheduler reads
    scheduler = ParamScheduler([partial(one_cycle_lr, lr_max=1.0, pct_start=pct_start)])
    scheduler.before_fit(learn)
    lrs = []
    for _ in range(n_epochs * batches_per_epoch):
        scheduler.before_batch(learn)
        lrs.append(group["lr"])
    return max(range(len(lrs)), key=lrs.__getitem__) // batches_per_epoch + 1


@exercise("06.1", "The epoch in which fit_one_cycle(8, lr, pct_start=0.4) reaches its peak rate",
          right="The peak comes after 40% of the 8 epochs, 3.2 epochs in: early in the 4th epoch, and the "
                "annealing takes the remaining 60% of the run.")
def peak_at(answer) -> str | None:
    truth = peak_epoch(8, 0.4, 9)
    value = float(answer)
    if value != int(value) or not 1 <= value <= 8:
        return "give the number of an epoch: a whole number from 1 (the first epoch) to 8"
    if int(value) == truth:
        return None
    if int(value) == truth - 1:
        return "count the epochs from 1: while k whole epochs are behind you, epoch k + 1 is running"
    if int(value) in (1, 8):
        return "the peak is neither at the start nor at the end: pct_start says when it comes"
    return "the warm-up takes the first pct_start of all the steps: how many epochs is that?"


@exercise("06.2", "The one-cycle learning rate halfway through a run (peak 5e-3)",
          right="Three quarters of the peak: a third of the way into the annealing, the cosine has come down "
                "only a quarter of the way, so the rate is still high in the middle of the run.")
def halfway_lr(answer, lr_max) -> str | None:
    from engine.learning.schedules import one_cycle_lr

    value = _positive(answer)
    truth = one_cycle_lr(0.5, lr_max)
    if math.isclose(value, truth, rel_tol=0.02):
        return None
    if math.isclose(value, lr_max * 2 / 3, rel_tol=0.02):
        return "that is a straight line from the peak down to the end; the annealing follows half a cosine"
    if value >= lr_max * 0.99:
        return "at 50% of the run the peak (at 25%) is already behind: the rate has started to come down"
    if value < lr_max / 2:
        return "too low: the cosine leaves the peak slowly (it is flat at both ends)"
    return ("where in the annealing phase is 50% of the run (it spans 25% to 100%)? Then use "
            "cos_anneal(start, end, pct) = end + (start - end) / 2 * (1 + cos(pi * pct))")


def _direction(after: float, before: float, tie: float) -> str:
    return "same" if abs(after - before) <= tie else ("higher" if after > before else "lower")


@exercise("06.3", "Predict, then run: 20 epochs instead of 10 (same peak rate): is the final validation loss, and "
                  "the final error rate, higher, lower or the same?",
          right="{answer}: the longer run spends longer at high rates and longer annealing; the head grows more "
                "confident, which moves the loss and the error rate each its own way. Judge it by the error rate.")
def twenty_epochs(answer, ten, twenty) -> str | None:
    words = ("higher", "lower", "same")
    if isinstance(answer, str) or not hasattr(answer, "__len__") or len(answer) != 2 or any(
            not isinstance(a, str) or a.strip().lower() not in words for a in answer):
        return 'give two words, each "higher", "lower" or "same": (validation loss, error rate), e.g. ("lower", "same")'
    a, b = ten.recorder.epochs[-1], twenty.recorder.epochs[-1]
    n_valid = len(ten.dls.cache.valid_y)
    truth = (_direction(b["valid_loss"], a["valid_loss"], 0.005),
             _direction(b["error_rate"], a["error_rate"], 1.5 / n_valid))  # "same": within one photo
    given = tuple(x.strip().lower() for x in answer)
    if given == truth:
        return None
    if given[0] == truth[0]:
        return "the loss is right; look at the error rates the two runs printed"
    if given[1] == truth[1]:
        return "the error rate is right; look at the validation losses the two runs printed"
    return "neither matches: compare the last rows the two runs printed"
