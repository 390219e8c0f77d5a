"""The Learner: data + model + loss + optimizer, and a training loop short enough to read at once.

    fit(n_epochs)
      for each epoch:  one pass over the training batches, then one over the validation batches
        for each batch:  preds = model(xb); loss = loss_func(preds, yb)
                         (training only:) loss.backward(); opt.step(); opt.zero_grad()

Everything else (recording, progress bars, schedules, mixed precision, the NaN guard, early
stopping) is a callback (``callbacks.py``). A callback can also own a step of the loop: the one
that declares it, as in ``owns = ("backward", "step")``, does that step instead of the learner
(``MixedPrecision`` owns ``autocast``, ``backward`` and ``step``; two owners of one step stop ``fit``
before it starts). On top of ``fit`` sit ``fit_one_cycle``, ``lr_find`` and ``freeze``/``unfreeze``;
``fine_tune`` is the next layer up (``fine_tune.py``: ``vision_learner`` returns a learner that has
it), and ``FrozenPhase`` (``frozen_phase.py``) lets its frozen phase run on cached features.
"""

from __future__ import annotations

import contextlib
import copy
import signal
import threading
from collections.abc import Callable, Iterable, Sequence
from functools import partial

import torch
from torch import nn

from ..losses import cross_entropy, log_mean_softmax, softmax
from ..metrics import error_rate
from ..numerics import NonFiniteError
from .callbacks import (
    Callback,
    CancelBatchException,
    CancelEpochException,
    CancelFitException,
    LastGoodState,
    MixedPrecision,
    NanGuard,
    ParamScheduler,
    ProgressCallback,
    Recorder,
    step_owners,
)
from .schedules import lr_for_groups, one_cycle_lr, one_cycle_mom

__all__ = ["Learner"]


class Learner:
    """Train ``model`` on ``dls`` with ``loss_func``.

    Args:
        dls: a ``DataLoaders`` (``train``, ``valid``, ``device``, ``vocab``).
        model: the network; if it has ``param_groups()`` (see ``models.Classifier``) those groups get
            their own learning rates, else all parameters form one group.
        loss_func: ``loss_func(preds, targets)`` -> scalar.
        lr: default learning rate.
        metrics: functions ``metric(preds, targets)`` reported after each epoch.
        cbs: extra callbacks, kept for every fit.
        wd: decoupled weight decay (AdamW).
        train_bn: train the body's BatchNorm layers even while the body is frozen, in training mode
            (batch statistics). With ``False`` they always use their stored statistics and, while
            frozen, do not train: a frozen body is then a fixed function (what feature caching
            needs), and small batches cannot disturb the pretrained statistics.
        progress: show progress bars and a line per epoch.
        recorder: a ``Recorder`` to share with another learner (the head learner of ``fine_tune``
            records into the full learner's history); default a new one.
    """

    def __init__(self, dls, model: nn.Module, loss_func: Callable = cross_entropy, lr: float = 1e-3,
                 metrics: Sequence[Callable] = (error_rate,), cbs: Iterable[Callback] = (), wd: float = 0.01,
                 train_bn: bool = True, progress: bool = True, recorder: Recorder | None = None):
        # Channels-last memory (pixels, then channels) is what the fast convolution kernels want:
        # about 1.7x faster training on the CPU here, and the layout tensor cores use on GPUs.
        model = model.to(dls.device, memory_format=torch.channels_last)
        self.dls, self.model, self.loss_func, self.lr = dls, model, loss_func, lr
        self.metrics, self.wd, self.train_bn = list(metrics), wd, train_bn
        self.opt: torch.optim.Optimizer | None = None
        self.frozen, self.interrupted, self.progress = False, False, progress
        self.epoch, self.iter, self.n_epochs, self.training = 0, -1, 0, False
        self.recorder, self.last_good = recorder if recorder is not None else Recorder(), LastGoodState()
        self.cbs: list[Callback] = [self.recorder, NanGuard(), self.last_good]
        if progress:
            self.cbs.append(ProgressCallback())
        self.cbs += list(cbs)

    @property
    def unwrapped(self) -> nn.Module:
        """The model itself, also while DistributedDataParallel wraps it for a fit."""
        return getattr(self.model, "module", self.model)

    # --- callbacks -------------------------------------------------------------------------------

    def add_cb(self, cb: Callback) -> Learner:
        self.cbs.append(cb)
        return self

    def owners(self) -> dict[str, Callback]:
        """Which callback does each step of the loop it declares it ``owns``: {"backward": cb, ...}.
        The learner does the steps left out. Raises ``ValueError`` if two callbacks own one step.
        Worked out again only when the callbacks change (it is asked three times per batch)."""
        key = tuple(self.cbs)  # the callbacks themselves (compared by identity), so none is mistaken for another
        if getattr(self, "_owners_of", (None,))[0] != key:
            self._owners_of = (key, step_owners(self.cbs))
        return self._owners_of[1]

    def _owner(self, step: str) -> Callback | None:
        """The callback that owns ``step`` of the loop ("autocast", "backward", "step"), or None."""
        return self.owners().get(step)

    def autocast(self):
        """The context the forward pass runs in: the owning callback's (``MixedPrecision``), else none."""
        owner = self._owner("autocast")
        return owner.autocast(self) if owner is not None else contextlib.nullcontext()

    @property
    def scaler(self):
        """The gradient scaler in use (fp16 on a GPU), else None."""
        return getattr(self._owner("backward"), "scaler", None)

    def callback(self, event: str) -> None:
        for cb in sorted(self.cbs, key=lambda c: c.order):
            method = getattr(cb, event, None)
            if method is not None:
                method(self)

    def _with_events(self, name: str, body: Callable[[], None], cancel: type[Exception]) -> None:
        """before_name, body(), after_name; a ``cancel`` exception skips to cleanup_name, which always runs."""
        try:
            self.callback(f"before_{name}")
            body()
            self.callback(f"after_{name}")
        except cancel:
            pass
        finally:
            self.callback(f"cleanup_{name}")

    # --- the loop --------------------------------------------------------------------------------

    def param_groups(self) -> list[list[nn.Parameter]]:
        model = self.unwrapped
        groups = model.param_groups() if hasattr(model, "param_groups") else [list(model.parameters())]
        return [g for g in groups if g]

    def create_opt(self) -> None:
        groups = [{"params": g, "lr": self.lr} for g in self.param_groups()]
        self.opt = torch.optim.AdamW(groups, lr=self.lr, betas=(0.9, 0.99), eps=1e-5, weight_decay=self.wd)

    def set_lr(self, lr: float | slice) -> None:
        for group, value in zip(self.opt.param_groups, lr_for_groups(lr, len(self.opt.param_groups))):
            group["lr"] = value

    def fit(self, n_epochs: int, lr: float | slice | None = None, cbs: Iterable[Callback] = ()) -> Learner:
        """Train for ``n_epochs`` at a constant ``lr`` (unless a callback schedules it).

        Ctrl-C stops the run: the current optimizer step finishes (no tensor is left half-updated),
        every cleanup runs, the model is put back as it was at the end of the last completed epoch
        (or the start of the fit), ``learn.interrupted`` becomes True, and the ``KeyboardInterrupt``
        goes on up, so that whatever called ``fit`` (``fine_tune``, a script) stops too. A NaN or
        infinite loss or gradient does the same with a ``NonFiniteError``.
        """
        cbs = list(cbs)
        self.cbs += cbs
        self.n_epochs, self.interrupted = n_epochs, False
        try:
            self.owners()  # two owners of one step fail here, before any event has run
            if self.opt is None:
                self.create_opt()
            if lr is not None:
                self.set_lr(lr)
            self._with_events("fit", self._all_epochs, CancelFitException)
        except KeyboardInterrupt:
            self.interrupted = True
            self.last_good.restore(self)
            print(f"Training stopped by Ctrl-C at epoch {self.epoch + 1}, batch {self.iter + 1}: the model is back "
                  f"to {self._good_state_words()}.")
            raise
        except NonFiniteError as err:
            self.last_good.restore(self)  # the step that would have written the bad values was skipped
            raise NonFiniteError(f"{err}. Training stopped; the model is back to {self._good_state_words()}.") from None
        finally:
            for cb in cbs:
                self.cbs.remove(cb)
        return self

    def _good_state_words(self) -> str:
        done = self.last_good.epochs_done
        return f"the end of epoch {done} of this fit" if done else "where it was before this fit"

    def _all_epochs(self) -> None:
        for self.epoch in range(self.n_epochs):  # noqa: B020 (the loop's state lives on the learner)
            self.one_epoch(train=True)
            with torch.no_grad():
                self.one_epoch(train=False)

    def one_epoch(self, train: bool) -> None:
        self.training = train
        self.model.train(train)
        if train and not self.train_bn:  # the body's BatchNorm layers keep their stored statistics
            for m in self._body().modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    m.eval()
        self.dl = self.dls.train if train else self.dls.valid
        self.iter = -1
        self._with_events("epoch", self._all_batches, CancelEpochException)

    def _all_batches(self) -> None:
        for self.iter, (self.xb, self.yb) in enumerate(self.dl):  # noqa: B020 (callbacks read it there)
            self._with_events("batch", self.one_batch, CancelBatchException)

    def one_batch(self) -> None:
        with self.autocast():
            self.preds = self.model(self.xb)  # (bs, n_classes)
        self.callback("after_pred")
        self.loss = self.loss_func(self.preds.float(), self.yb)  # the loss always in float32
        self.callback("after_loss")
        if not self.training:
            return
        with _finish_step_before_interrupt():
            self.backward()
            self.callback("after_backward")
            self.step()
            self.callback("after_step")
            self.opt.zero_grad(set_to_none=True)

    def backward(self) -> None:
        owner = self._owner("backward")
        owner.backward(self) if owner is not None else self.loss.backward()

    def step(self) -> None:
        owner = self._owner("step")
        owner.step(self) if owner is not None else self.opt.step()

    # --- recipes ---------------------------------------------------------------------------------

    def fit_one_cycle(self, n_epochs: int, lr_max: float | slice | None = None, div: float = 25.0,
                      div_final: float = 1e5, pct_start: float = 0.25,
                      moms: tuple[float, float, float] = (0.95, 0.85, 0.95),
                      cbs: Iterable[Callback] = ()) -> Learner:
        """Train with the one-cycle schedule (see ``schedules.py``), one peak rate per group."""
        if self.opt is None:
            self.create_opt()
        peaks = lr_for_groups(self.lr if lr_max is None else lr_max, len(self.opt.param_groups))
        lr_scheds = [partial(one_cycle_lr, lr_max=p, div=div, div_final=div_final, pct_start=pct_start)
                     for p in peaks]
        mom_sched = partial(one_cycle_mom, moms=moms, pct_start=pct_start)
        return self.fit(n_epochs, cbs=[ParamScheduler(lr_scheds, mom_sched), *cbs])

    @contextlib.contextmanager
    def restoring(self):
        """Run something as a trial: the weights, the optimizer's state and the recorded history are
        put back as they were afterwards, however the block ends (used by ``lr_find``)."""
        if self.opt is None:
            self.create_opt()
        model_state = copy.deepcopy(self.unwrapped.state_dict())
        opt_state = copy.deepcopy(self.opt.state_dict())
        mark = self.recorder.mark()
        try:
            yield self
        finally:
            self.unwrapped.load_state_dict(model_state)
            self.opt.load_state_dict(opt_state)
            self.recorder.truncate(mark)

    def lr_find(self, start_lr: float = 1e-7, end_lr: float = 10.0, num_it: int = 100, **kwargs):
        """Sweep the learning rate; see ``lr_finder.lr_find``. Weights and optimizer are restored."""
        from .lr_finder import lr_find

        return lr_find(self, start_lr, end_lr, num_it, **kwargs)

    def _body(self) -> nn.Module:
        return getattr(self.unwrapped, "body", nn.Sequential())

    def freeze_to(self, n: int) -> None:
        """Train only the parameter groups from ``n`` on (negative: count from the head)."""
        groups = self.param_groups()
        n = n % len(groups)
        bn_params = {id(p) for m in self.model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)
                     for p in m.parameters()}
        for i, group in enumerate(groups):
            for p in group:
                p.requires_grad_(i >= n or (self.train_bn and id(p) in bn_params))
        self.frozen = n > 0

    def freeze(self) -> None:
        """Train only the head (and, with ``train_bn``, the body's BatchNorm layers)."""
        self.freeze_to(-1)

    def unfreeze(self) -> None:
        """Train every parameter."""
        self.freeze_to(0)

    def to_fp16(self) -> Learner:
        """Mixed precision from now on: fp16 + gradient scaling on CUDA, bfloat16 on the CPU."""
        if not any(isinstance(cb, MixedPrecision) for cb in self.cbs):
            self.cbs.append(MixedPrecision())
        return self

    def to_fp32(self) -> Learner:
        """Back to full precision."""
        self.cbs = [cb for cb in self.cbs if not isinstance(cb, MixedPrecision)]
        return self

    # --- using the model ---------------------------------------------------------------------------

    def get_preds(self, split: str = "valid", activation: Callable | None = softmax,
                  tta: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """Predictions (n, n_classes) and targets (n,) over a whole split, in order.

        ``activation`` turns the logits into probabilities (softmax by default); ``None`` keeps
        logits. ``tta`` (test-time augmentation) also predicts every mirrored image and averages
        the two probabilities; the "logits" are then the log of that average, computed in the
        log domain (``losses.log_mean_softmax``).
        """
        dl = self.dls.valid if split == "valid" else self.dls.train_in_order(augment=False)
        self.model.eval()
        outs, targets = [], []
        with torch.no_grad(), self.autocast():
            for xb, yb in dl:
                logits = self.model(xb).float()  # (bs, n_classes)
                if tta:  # the photo and its mirror image: (2, bs, n_classes) -> (bs, n_classes)
                    logits = log_mean_softmax(torch.stack([logits, self.model(xb.flip(-1)).float()]))
                outs.append((logits if activation is None else activation(logits)).cpu())
                targets.append(yb.cpu())
        return torch.cat(outs), torch.cat(targets)


@contextlib.contextmanager
def _finish_step_before_interrupt():
    """Hold a Ctrl-C back until the optimizer step is complete, so no tensor is half-updated."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pressed = []
    previous = signal.signal(signal.SIGINT, lambda *_: pressed.append(True))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if pressed:
        raise KeyboardInterrupt

