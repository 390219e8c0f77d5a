"""Callbacks: everything the training loop does beyond "predict, loss, backward, step".

The learner calls ``before_*``, ``after_*`` and ``cleanup_*`` events around fit, each epoch pass
(training and validation are separate passes, ``learn.training`` tells which) and each batch,
plus ``after_pred``, ``after_loss``, ``after_backward`` and ``after_step`` inside a batch. A callback
implements the events it needs; ``order`` decides who goes first. To stop early, a callback raises
``CancelBatchException``, ``CancelEpochException`` or ``CancelFitException``: the learner skips
the rest of that batch, epoch or fit, and still runs every ``cleanup_*``.

A callback can also take over a step of the loop by declaring it in ``owns`` (``MixedPrecision``
owns the forward pass's ``autocast``, ``backward`` and the optimizer ``step``); the learner asks
``step_owners`` who owns what, and refuses two owners of one step.

Callbacks *record*; the ``plot_*`` functions in ``plots.py`` draw what they recorded.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Sequence

import torch

from ..numerics import NonFiniteError, check_finite

__all__ = [
    "Order", "CancelFitException", "CancelEpochException", "CancelBatchException", "Callback", "Recorder",
    "ProgressCallback", "NanGuard", "gradients_finite", "LastGoodState", "ParamScheduler", "MixedPrecision",
    "EarlyStopping", "SaveBestModel", "LOOP_STEPS", "step_owners",
]


class CancelFitException(Exception):
    """Stop training now; cleanup still runs."""


class CancelEpochException(Exception):
    """Skip the rest of this epoch pass."""


class CancelBatchException(Exception):
    """Skip the rest of this batch."""


class Order:
    """Who goes first at each event, lower first: every callback's ``order`` comes from here."""

    SETUP = -20  # wrap or copy the model before anyone looks at it (DistributedTrainer, LastGoodState)
    RECORD = -10  # the recorder, before everything that reads what it records
    SWEEP = -5  # the LR finder, before the NaN guard: divergence is how its sweep ends
    DEFAULT = 0  # the NaN guard, mixed precision, and callbacks that do not say
    SCHEDULE = 1  # this batch's learning rates and momentum
    EARLY_STOP = 5
    SAVE_BEST = 6  # after early stopping has looked at the epoch
    PROGRESS = 10  # report what the epoch recorded
    REPORT = 20  # outside reporting (a web page's progress bar)


class Callback:
    """Base class: override the events you need. Lower ``order`` runs first (see ``Order``).

    To do a step of the loop instead of the learner, name it in ``owns`` and define the method of
    that name, taking the learner: ``autocast(learn)`` returns the context the forward pass runs in,
    ``backward(learn)`` replaces ``learn.loss.backward()``, ``step(learn)`` replaces
    ``learn.opt.step()``. Only a declared step is handed over: an attribute that merely has one of
    these names (``ParamScheduler``'s counter ``self.step``) is never taken for an owner.
    """

    order = Order.DEFAULT
    owns: tuple[str, ...] = ()  # the steps of the loop (from LOOP_STEPS) this callback does itself


LOOP_STEPS = ("autocast", "backward", "step")  # the steps of the loop a callback can own


def step_owners(cbs: Sequence[Callback]) -> dict[str, Callback]:
    """Which callback does each step of the loop that one declares it ``owns``: {step: callback}.
    A step nobody owns is left out (the learner does it). Two owners of one step are an error."""
    owners: dict[str, Callback] = {}
    for cb in cbs:
        name, owns = type(cb).__name__, getattr(cb, "owns", ())
        if isinstance(owns, str):
            raise TypeError(f"{name}.owns must be a tuple of step names, got the string {owns!r}: "
                            f"write owns = ({owns!r},)")
        for step in owns:
            if step not in LOOP_STEPS:
                raise ValueError(f"{name}.owns names {step!r}, which is not a step of the loop: "
                                 f"a callback can own {', '.join(LOOP_STEPS)}")
            if not callable(getattr(cb, step, None)):
                raise TypeError(f"{name} declares that it owns {step!r} but has no method {step}(self, learn): "
                                "define it, or take the step out of owns")
            if step in owners:
                other = type(owners[step]).__name__
                what = f"{name} is among the callbacks twice" if owners[step] is cb else \
                    f"{other} and {name} both own the loop's {step!r}"
                hint = " (learn.to_fp32() removes MixedPrecision)" if "MixedPrecision" in (name, other) else ""
                raise ValueError(f"{what}: only one callback can do a step of the loop; remove one{hint}")
            owners[step] = cb
    return owners


class Recorder(Callback):
    """Records per-step loss, learning rates and momentum, and per-epoch losses and metrics."""

    order = Order.RECORD

    def __init__(self):
        self.losses, self.lrs, self.moms, self.epochs = [], [], [], []

    def mark(self) -> tuple[int, int, int, int]:
        """Where the history ends now (``truncate`` goes back there)."""
        return len(self.losses), len(self.lrs), len(self.moms), len(self.epochs)

    def truncate(self, mark: tuple[int, int, int, int]) -> None:
        """Forget everything recorded after ``mark`` (a trial such as the LR finder's sweep)."""
        del self.losses[mark[0]:], self.lrs[mark[1]:], self.moms[mark[2]:], self.epochs[mark[3]:]

    def before_epoch(self, learn):
        self._sum, self._count = 0.0, 0
        if learn.training:
            self._start = time.perf_counter()  # the epoch's time covers training and validation
        else:
            self._preds, self._targets = [], []

    def after_batch(self, learn):
        n = len(learn.yb)
        self._sum, self._count = self._sum + learn.loss.item() * n, self._count + n
        if learn.training:
            self.losses.append(learn.loss.item())
            self.lrs.append([g["lr"] for g in learn.opt.param_groups])
            self.moms.append(learn.opt.param_groups[-1]["betas"][0])
        else:
            self._preds.append(learn.preds.detach().float().cpu())
            self._targets.append(learn.yb.detach().cpu())

    def after_epoch(self, learn):
        mean = self._sum / max(self._count, 1)
        if learn.training:
            self._train = {"epoch": learn.epoch, "train_loss": mean}
            return
        row = {**self.__dict__.pop("_train", {"epoch": learn.epoch}), "valid_loss": mean}
        if self._preds:
            preds, targets = torch.cat(self._preds), torch.cat(self._targets)
            row.update({m.__name__: float(m(preds, targets)) for m in learn.metrics})
        row["time"] = time.perf_counter() - getattr(self, "_start", time.perf_counter())
        self.epochs.append(row)


class ProgressCallback(Callback):
    """A progress bar per epoch with the live training loss, and one line per epoch of results.

    In a log file (not a terminal or notebook) the bar becomes a few plain lines, and none at all
    for an epoch that takes only a few seconds (see ``engine.progress``)."""

    order = Order.PROGRESS

    def __init__(self, show: Callable[[str], None] = print):
        self.show = show

    def before_fit(self, learn):
        self._header_done = False

    def before_epoch(self, learn):
        from ..progress import progress_bar

        what = "train" if learn.training else "valid"
        self.bar = progress_bar(len(learn.dl), f"epoch {learn.epoch + 1}/{learn.n_epochs} {what}", unit="batch",
                                leave=False)

    def after_batch(self, learn):
        self.bar.update(1)
        if learn.training:
            self.bar.set_postfix(loss=f"{learn.loss.item():.4f}")

    def after_epoch(self, learn):
        if learn.training or not learn.recorder.epochs:
            return
        row = learn.recorder.epochs[-1]
        if not self._header_done:
            self.show("  ".join(f"{k:>12}" for k in row))
            self._header_done = True
        self.show("  ".join(f"{v:>12.4f}" if isinstance(v, float) else f"{v:>12}" for v in row.values()))

    def cleanup_epoch(self, learn):
        self.bar.close()


class NanGuard(Callback):
    """Stop at the first NaN or infinite loss or gradient, naming the epoch and batch, *before* the
    optimizer step could write it into the weights (the learner then restores the last good state).

    With a gradient scaler (fp16) the gradients are not checked: overflowing gradients are the
    scaler's normal signal to skip that step and lower its scale."""

    def after_loss(self, learn):
        check_finite(learn.loss, "loss" if learn.training else "validation loss",
                     epoch=learn.epoch + 1, batch=learn.iter + 1)

    def after_backward(self, learn):
        if learn.scaler is None and not gradients_finite(learn):
            raise NonFiniteError(f"the gradients became NaN or infinite at epoch {learn.epoch + 1}, batch "
                                 f"{learn.iter + 1} (the loss was still finite): the learning rate may be too high: "
                                 "run lr_find() and pick a smaller one")


def gradients_finite(learn) -> bool:
    """Whether every gradient the optimizer would apply is finite (one check, one sync, per step)."""
    grads = [p.grad for group in learn.opt.param_groups for p in group["params"] if p.grad is not None]
    return not grads or bool(torch.stack([g.isfinite().all() for g in grads]).all())


class LastGoodState(Callback):
    """Keeps a copy of the weights from the start of fit and after every completed epoch, so that a
    run stopped half-way (Ctrl-C, a NaN) can put the model back as it was at the last epoch's end."""

    order = Order.SETUP

    def __init__(self):
        self.state, self.epochs_done = None, 0

    def _take(self, learn):
        self.state = {k: v.detach().clone() for k, v in learn.unwrapped.state_dict().items()}

    def before_fit(self, learn):
        self._take(learn)
        self.epochs_done = 0

    def after_epoch(self, learn):
        if not learn.training:  # the validation pass ends an epoch
            self._take(learn)
            self.epochs_done = learn.epoch + 1

    def restore(self, learn) -> None:
        """Load the kept weights back into ``learn.model``."""
        if self.state is not None:
            learn.unwrapped.load_state_dict(self.state)


class ParamScheduler(Callback):
    """Set each parameter group's learning rate (and momentum) from schedules of the progress."""

    order = Order.SCHEDULE

    def __init__(self, lr_schedules: Sequence[Callable[[float], float]],
                 mom_schedule: Callable[[float], float] | None = None):
        self.lr_schedules, self.mom_schedule = list(lr_schedules), mom_schedule

    def before_fit(self, learn):
        if len(self.lr_schedules) != len(learn.opt.param_groups):
            raise ValueError(f"{len(self.lr_schedules)} learning-rate schedules for "
                             f"{len(learn.opt.param_groups)} parameter groups")
        self.step, self.total = 0, learn.n_epochs * len(learn.dls.train)

    def before_batch(self, learn):
        if not learn.training:
            return
        pct = min(self.step / max(self.total - 1, 1), 1.0)
        for group, schedule in zip(learn.opt.param_groups, self.lr_schedules):
            group["lr"] = schedule(pct)
            if self.mom_schedule is not None:
                group["betas"] = (self.mom_schedule(pct), group["betas"][1])
        self.step += 1


class MixedPrecision(Callback):
    """Half precision where it pays, owning the three steps it changes (``owns``): the forward pass
    runs in ``autocast`` (fp16 on CUDA, bfloat16 on the CPU), and ``backward`` and ``step`` go
    through a gradient scaler on CUDA.

    fp16 has a small range, so tiny gradients would round to zero: the scaler multiplies the loss
    before ``backward`` and divides the gradients before the step, and skips any step whose
    gradients overflowed (then lowers the scale). bfloat16 has float32's range: no scaler needed.
    """

    owns = ("autocast", "backward", "step")

    def __init__(self):
        self.scaler = None

    @staticmethod
    def dtype_for(device: torch.device) -> torch.dtype:
        return torch.float16 if device.type == "cuda" else torch.bfloat16

    def autocast(self, learn):
        return torch.autocast(learn.dls.device.type, dtype=self.dtype_for(learn.dls.device))

    def before_fit(self, learn):
        if learn.dls.device.type == "cuda" and self.scaler is None:
            self.scaler = torch.amp.GradScaler("cuda")

    def backward(self, learn):
        (self.scaler.scale(learn.loss) if self.scaler is not None else learn.loss).backward()

    def step(self, learn):
        if self.scaler is None:
            learn.opt.step()
            return
        self.scaler.step(learn.opt)  # skipped if the scaled gradients overflowed
        self.scaler.update()


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved by ``min_delta`` for ``patience`` epochs."""

    order = Order.EARLY_STOP

    def __init__(self, monitor: str = "valid_loss", patience: int = 1, min_delta: float = 0.0,
                 higher_is_better: bool = False):
        self.monitor, self.patience, self.min_delta, self.higher = monitor, patience, min_delta, higher_is_better

    def before_fit(self, learn):
        self.best, self.wait, self.stopped_epoch = math.inf, 0, None

    def after_epoch(self, learn):
        if learn.training:
            return
        value = learn.recorder.epochs[-1][self.monitor] * (-1 if self.higher else 1)
        if value < self.best - self.min_delta:
            self.best, self.wait = value, 0
            return
        self.wait += 1
        if self.wait >= self.patience:
            self.stopped_epoch = learn.epoch
            raise CancelFitException()


class SaveBestModel(Callback):
    """Keep the weights of the best epoch by ``monitor`` and restore them when training ends."""

    order = Order.SAVE_BEST

    def __init__(self, monitor: str = "valid_loss", higher_is_better: bool = False, load_best: bool = True):
        self.monitor, self.higher, self.load_best = monitor, higher_is_better, load_best

    def before_fit(self, learn):
        self.best, self.best_epoch, self.state = math.inf, None, None

    def after_epoch(self, learn):
        if learn.training:
            return
        value = learn.recorder.epochs[-1][self.monitor] * (-1 if self.higher else 1)
        if value < self.best:
            self.best, self.best_epoch = value, learn.epoch
            self.state = copy.deepcopy(learn.unwrapped.state_dict())

    def cleanup_fit(self, learn):
        if self.load_best and self.state is not None:
            learn.model.load_state_dict(self.state)
