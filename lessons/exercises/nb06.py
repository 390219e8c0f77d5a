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


def epochs_trained(valid_losses: list[float], patience: int) -> int:
    """How many epochs run before the engine's ``EarlyStopping(patience)`` stops on these losses."""
    from types import SimpleNamespace

    from engine.learning.callbacks import CancelFitException, EarlyStopping

    stopper = EarlyStopping(monitor="valid_loss", patience=patience)
    learn = SimpleNamespace(training=False, epoch=0, recorder=SimpleNamespace(epochs=[]))  # what it reads
    stopper.before_fit(learn)
    for learn.epoch, loss in enumerate(valid_losses):
        learn.recorder.epochs.append({"valid_loss": loss})
        try:
            stopper.after_epoch(learn)
        except CancelFitException:
            return learn.epoch + 1
    return len(valid_losses)


@exercise("06.3", "How many epochs early stopping lets run, with patience 1 and 2, on given losses",
          right="The callback only learns that an epoch was worse after training it, so that epoch "
                "counts too; a larger patience forgives one bad epoch when a better one follows.")
def early_stop_epochs(answer, valid_losses) -> str | None:
    truth = (epochs_trained(valid_losses, 1), epochs_trained(valid_losses, 2))
    if isinstance(answer, (str, bytes)) or not hasattr(answer, "__len__") or len(answer) != 2:
        return "give two numbers: (epochs trained with patience=1, epochs trained with patience=2)"
    given = tuple(int(a) for a in answer)
    if given == truth:
        return None
    if given == (truth[0] - 1, truth[1] - 1):
        return "count the epochs that ran, the last one (the one that was not better) included"
    if given[0] == truth[0]:
        return ("patience=1 is right; with patience=2 the count of epochs without improvement starts over at "
                "each new best")
    if given[1] == truth[1]:
        return "patience=2 is right; with patience=1 the first epoch that is not better than the best stops the run"
    return "walk through the losses keeping the best so far and a count of epochs since it improved"
