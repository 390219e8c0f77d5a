"""The Learner on tiny generated data: events, cancelling, NaN guard, Ctrl-C, schedules, freezing,
discriminative learning rates, fine_tune, mixed precision, early stopping."""

import copy
import signal

import pytest
import torch
from torch import nn

from engine.data import DataLoaders
from engine.learning.callbacks import (
    Callback,
    CancelBatchException,
    CancelEpochException,
    CancelFitException,
    EarlyStopping,
    MixedPrecision,
    ParamScheduler,
    SaveBestModel,
)
from engine.learning.fine_tune import VisionLearner, vision_learner
from engine.learning.schedules import one_cycle_lr, one_cycle_mom
from engine.models import create_model
from engine.numerics import NonFiniteError


@pytest.fixture
def tiny_folder(tiny_pets):
    return tiny_pets


def make_dls(folder, **kw):
    kw = {"presize": 40, "size": 32, "batch_size": 8, "seed": 0, "device": "cpu", **kw}
    return DataLoaders.from_name_regex(folder, valid_pct=0.25, **kw)


def make_learner(folder, dls_kw=None, **kw):
    torch.manual_seed(0)
    dls = make_dls(folder, **(dls_kw or {}))
    model = create_model("resnet18", n_classes=dls.n_classes, pretrained=False)
    return VisionLearner(dls, model, progress=False, **kw)  # a Learner that also has fine_tune


def params_of(model):
    return [p.detach().clone() for p in model.parameters()]


class EventLog(Callback):
    def __init__(self):
        self.events = []

    def __getattribute__(self, name):
        if name.split("_")[0] in ("before", "after", "cleanup"):
            return lambda learn: self.events.append((name, learn.training))
        return object.__getattribute__(self, name)


def test_fit_trains_and_records(tiny_folder):
    learn = make_learner(tiny_folder)
    learn.fit(4, lr=1e-3)
    rec = learn.recorder
    assert len(rec.epochs) == 4 and len(rec.losses) == 4 * len(learn.dls.train)
    assert set(rec.epochs[0]) == {"epoch", "train_loss", "valid_loss", "error_rate", "time"}
    first, last = rec.epochs[0]["train_loss"], rec.epochs[-1]["train_loss"]
    assert last < 0.75 * first  # it learns the breed colours
    errors = [e["error_rate"] for e in rec.epochs]
    assert all(0 <= e <= 1 for e in errors) and all(e * 8 == round(e * 8) for e in errors)  # 8 valid photos


def test_event_order(tiny_folder):
    learn = make_learner(tiny_folder)
    log = EventLog()
    learn.fit(1, cbs=[log])
    names = [e for e, _ in log.events]
    assert names[0] == "before_fit" and names[-2:] == ["after_fit", "cleanup_fit"]
    assert names[1:8] == ["before_epoch", "before_batch", "after_pred", "after_loss", "after_backward",
                          "after_step", "after_batch"]
    n_train, n_valid = len(learn.dls.train), len(learn.dls.valid)
    assert names.count("after_step") == n_train  # no steps while validating
    assert names.count("after_batch") == n_train + n_valid
    assert [t for e, t in log.events if e == "before_epoch"] == [True, False]
    assert log not in learn.cbs  # fit-only callbacks are removed afterwards


class CancelAt(Callback):
    def __init__(self, event, exc, at=1):
        self.event, self.exc, self.at, self.seen = event, exc, at, 0
        setattr(self, event, self._maybe)

    def _maybe(self, learn):
        if learn.training:
            self.seen += 1
            if self.seen == self.at:
                raise self.exc()


def test_cancel_batch_skips_the_step(tiny_folder):
    learn = make_learner(tiny_folder)
    log = EventLog()
    learn.fit(1, cbs=[CancelAt("after_loss", CancelBatchException), log])
    names = [e for e, _ in log.events]
    assert names.count("after_step") == len(learn.dls.train) - 1
    assert names.count("cleanup_batch") == len(learn.dls.train) + len(learn.dls.valid)


def test_cancel_epoch_and_fit_still_clean_up(tiny_folder):
    learn = make_learner(tiny_folder)
    log = EventLog()
    learn.fit(2, cbs=[CancelAt("after_batch", CancelEpochException), log])
    names = [e for e, _ in log.events]
    assert names.count("after_step") == 1 + len(learn.dls.train)  # epoch 1 cut after one step, epoch 2 whole
    learn = make_learner(tiny_folder)
    log = EventLog()
    learn.fit(3, cbs=[log, CancelAt("after_step", CancelFitException, at=2)])
    names = [e for e, _ in log.events]
    assert names.count("after_step") == 2 and "after_fit" not in names and names[-1] == "cleanup_fit"


def state_of(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def same_state(model, state):
    return all(torch.equal(v, state[k]) for k, v in model.state_dict().items())


class Snapshot(Callback):
    """Keeps the weights at the end of every completed epoch (after validation), by epoch number."""

    order = 50

    def __init__(self):
        self.states = {}

    def after_epoch(self, learn):
        if not learn.training:
            self.states[learn.epoch + 1] = state_of(learn.model)


def test_nan_loss_names_epoch_and_batch_and_restores_the_last_epoch(tiny_folder):
    calls = []
    dls = make_dls(tiny_folder)
    n_batches = len(dls.train) + len(dls.valid)

    def loss_that_breaks(preds, targets):
        calls.append(1)
        loss = nn.functional.cross_entropy(preds, targets)
        return loss * float("nan") if len(calls) == n_batches + 3 else loss  # all of epoch 1, then 3 batches

    learn = make_learner(tiny_folder, loss_func=loss_that_breaks)
    snap = Snapshot()
    with pytest.raises(NonFiniteError, match=r"^loss became NaN at epoch 2, batch 3: the learning rate may be too high"
                                             r".*the model is back to the end of epoch 1 of this fit"):
        learn.fit(3, lr=1e-3, cbs=[snap])
    assert same_state(learn.model, snap.states[1]) and list(snap.states) == [1]


def test_a_nan_gradient_with_a_finite_loss_is_never_applied(tiny_folder):
    class PoisonGradient(Callback):
        order = -1  # before the guard looks at the gradients

        def after_backward(self, learn):
            if learn.iter == 1:
                next(learn.model.parameters()).grad[0].fill_(float("nan"))

    learn = make_learner(tiny_folder)
    before = state_of(learn.model)
    with pytest.raises(NonFiniteError, match=r"^the gradients became NaN or infinite at epoch 1, batch 2 \(the loss "
                                             r"was still finite\).*back to where it was before this fit"):
        learn.fit(2, lr=1e-3, cbs=[PoisonGradient()])
    assert same_state(learn.model, before)  # one step was applied, then undone: the snapshot is back


def test_a_huge_learning_rate_leaves_finite_weights_equal_to_the_snapshot(tiny_folder):
    learn = make_learner(tiny_folder)
    before = state_of(learn.model)
    with pytest.raises(NonFiniteError, match=r"became (NaN|NaN or infinite|infinite) at epoch 1, batch \d+"):
        learn.fit(20, lr=1e8)
    assert same_state(learn.model, before)
    assert all(torch.isfinite(v).all() for v in learn.model.state_dict().values() if v.is_floating_point())


class Interrupt(Callback):
    """Presses Ctrl-C (a real SIGINT, raised in this thread so it lands at once) in the middle of a
    step, between backward and the optimizer step, at the ``at``-th step of the fit."""

    def __init__(self, at: int):
        self.at, self.steps, self.after = at, 0, None

    def after_backward(self, learn):
        self.steps += 1
        if self.steps == self.at:
            signal.raise_signal(signal.SIGINT)

    def after_step(self, learn):
        if self.steps == self.at:
            self.after = state_of(learn.model)  # the step that was running when Ctrl-C came, finished


def test_ctrl_c_finishes_the_step_stops_and_restores_the_last_epoch(tiny_folder, capsys):
    learn = make_learner(tiny_folder)
    n = len(learn.dls.train)
    cb, log, snap = Interrupt(at=n + 3), EventLog(), Snapshot()
    with pytest.raises(KeyboardInterrupt):
        learn.fit(3, lr=1e-3, cbs=[cb, log, snap])
    assert learn.interrupted
    assert "stopped by Ctrl-C at epoch 2, batch 3: the model is back to the end of epoch 1 of this fit" in \
        capsys.readouterr().out
    assert cb.after is not None and not same_state(learn.model, cb.after)  # the step ran (no half-updated tensor) ...
    assert same_state(learn.model, snap.states[1])  # ... and then the model went back to the end of epoch 1
    assert [e for e, _ in log.events][-1] == "cleanup_fit" and "after_fit" not in [e for e, _ in log.events]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handler restored
    learn.fit(1, lr=1e-3)  # and it can go on training
    assert not learn.interrupted


def test_ctrl_c_in_the_first_epoch_puts_the_model_back_as_before_fit(tiny_folder):
    learn = make_learner(tiny_folder)
    before = state_of(learn.model)
    with pytest.raises(KeyboardInterrupt):
        learn.fit(2, lr=1e-3, cbs=[Interrupt(at=2)])
    assert same_state(learn.model, before)


def test_one_cycle_sets_the_scheduled_rates(tiny_folder):
    learn = make_learner(tiny_folder)
    learn.fit_one_cycle(3, lr_max=1e-2, pct_start=0.25)
    lrs = [lr[-1] for lr in learn.recorder.lrs]
    n = len(lrs)
    for i in range(n):
        assert lrs[i] == pytest.approx(one_cycle_lr(i / (n - 1), 1e-2, pct_start=0.25))
        assert learn.recorder.moms[i] == pytest.approx(one_cycle_mom(i / (n - 1), pct_start=0.25))
    assert lrs[0] == pytest.approx(1e-2 / 25) and lrs[-1] == pytest.approx(1e-2 / 1e5)


def test_discriminative_rates_the_optimizer_holds(tiny_folder):
    learn = make_learner(tiny_folder)
    learn.create_opt()
    learn.set_lr(slice(1e-6, 1e-4))
    assert [g["lr"] for g in learn.opt.param_groups] == pytest.approx([1e-6, 1e-5, 1e-4])
    learn.set_lr(slice(1e-3))
    assert [g["lr"] for g in learn.opt.param_groups] == pytest.approx([1e-4, 1e-4, 1e-3])
    # during one-cycle every group follows its own schedule, 10x apart at every step
    learn.fit_one_cycle(1, slice(1e-5, 1e-3), pct_start=0.5)
    for step in learn.recorder.lrs:
        assert [step[1] / step[0], step[2] / step[1]] == pytest.approx([10, 10])
    assert learn.recorder.lrs[1][2] == pytest.approx(1e-3)  # the middle step of three is the peak


def _trainable(learn):
    body, head = learn.model.body, learn.model.head
    bn = [p for m in body.modules() if isinstance(m, nn.BatchNorm2d) for p in m.parameters()]
    bn_ids = {id(p) for p in bn}
    other = [p for p in body.parameters() if id(p) not in bn_ids]
    return (all(p.requires_grad for p in head.parameters()), any(p.requires_grad for p in other),
            all(p.requires_grad for p in bn))


def test_freeze_and_unfreeze(tiny_folder):
    learn = make_learner(tiny_folder)
    learn.freeze()
    assert _trainable(learn) == (True, False, True)  # head, body convs, body BatchNorm
    learn.unfreeze()
    assert _trainable(learn) == (True, True, True)
    learn = make_learner(tiny_folder, train_bn=False)
    learn.freeze()
    assert _trainable(learn) == (True, False, False)


def test_frozen_body_does_not_change(tiny_folder):
    learn = make_learner(tiny_folder, train_bn=False)
    learn.freeze()
    before = copy.deepcopy(learn.model.body.state_dict())
    learn.fit(1, lr=1e-2)
    for k, v in learn.model.body.state_dict().items():
        assert torch.equal(v, before[k]), k  # weights *and* BatchNorm statistics


class Phases(Callback):
    """Records, at the start of each fit, what is trainable, and the rates of every step."""

    def __init__(self):
        self.phases = []

    def before_fit(self, learn):
        body_convs = [p.requires_grad for m in learn.model.body.modules() if isinstance(m, nn.Conv2d)
                      for p in m.parameters()]
        self.phases.append({"body_trainable": any(body_convs), "lrs": [],
                            "head_trainable": all(p.requires_grad for p in learn.model.head.parameters())})

    def after_step(self, learn):
        self.phases[-1]["lrs"].append([g["lr"] for g in learn.opt.param_groups])


def test_fine_tune_phases(tiny_folder):
    learn = make_learner(tiny_folder)
    phases = Phases()
    learn.add_cb(phases)
    learn.fine_tune(1, base_lr=2e-3, freeze_epochs=1)
    first, second = phases.phases
    assert first["body_trainable"] is False and first["head_trainable"]
    assert second["body_trainable"] is True
    n1, n2 = len(first["lrs"]), len(second["lrs"])
    # 1. frozen: slice(base_lr) -> the head at base_lr, one-cycle with pct_start 0.99
    for i, lrs in enumerate(first["lrs"]):
        assert lrs[-1] == pytest.approx(one_cycle_lr(i / (n1 - 1), 2e-3, pct_start=0.99))
    # 2. base_lr halves; slice(base_lr / 100, base_lr) over 3 groups peaks at 1e-5, 1e-4, 1e-3
    for i, lrs in enumerate(second["lrs"]):
        pct = i / (n2 - 1)
        assert lrs == pytest.approx([one_cycle_lr(pct, peak, div=5.0, pct_start=0.3) for peak in (1e-5, 1e-4, 1e-3)])
    assert len(learn.recorder.epochs) == 2


def test_mixed_precision_on_cpu_runs_bfloat16_and_learns(tiny_folder):
    learn = make_learner(tiny_folder).to_fp16()
    dtypes = []
    hook = learn.model.body[0][0].register_forward_hook(lambda m, i, o: dtypes.append(o.dtype))
    learn.fit(4, lr=1e-3)
    hook.remove()
    assert dtypes and set(dtypes) == {torch.bfloat16}
    rec = learn.recorder.epochs
    assert rec[-1]["train_loss"] < rec[0]["train_loss"] / 2
    assert learn.scaler is None  # bfloat16 on a CPU: no loss scaling
    assert isinstance(learn.autocast(), torch.autocast)  # the callback owns the forward pass's context ...
    learn.to_fp32()
    assert not any(isinstance(cb, MixedPrecision) for cb in learn.cbs)  # ... until to_fp32 takes it away
    dtypes.clear()
    hook = learn.model.body[0][0].register_forward_hook(lambda m, i, o: dtypes.append(o.dtype))
    learn.fit(1)
    hook.remove()
    assert set(dtypes) == {torch.float32}


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
def test_mixed_precision_on_cuda_uses_fp16_and_a_scaler(tiny_folder):
    learn = make_learner(tiny_folder, dls_kw={"device": "cuda"}).to_fp16()
    dtypes, scales = [], []

    class Spy(Callback):
        def after_loss(self, learn):
            if learn.training:
                scales.append(learn.scaler.get_scale())

    hook = learn.model.body[0][0].register_forward_hook(lambda m, i, o: dtypes.append(o.dtype))
    learn.fit(4, lr=1e-3, cbs=[Spy()])
    hook.remove()
    assert set(dtypes) == {torch.float16} and scales and scales[0] > 1
    assert learn.recorder.epochs[-1]["train_loss"] < learn.recorder.epochs[0]["train_loss"]


class FakeValid(Callback):
    """Replaces the recorded validation loss with a scripted series."""

    order = -9

    def __init__(self, series):
        self.series = list(series)

    def after_epoch(self, learn):
        if not learn.training:
            learn.recorder.epochs[-1]["valid_loss"] = self.series[learn.epoch]


def test_early_stopping(tiny_folder):
    learn = make_learner(tiny_folder)
    stop = EarlyStopping(patience=2)
    learn.fit(10, lr=1e-3, cbs=[FakeValid([1.0, 0.8, 0.9, 0.85, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2]), stop])
    assert stop.stopped_epoch == 3 and len(learn.recorder.epochs) == 4


def test_save_best_model_restores_the_best_epoch(tiny_folder):
    learn = make_learner(tiny_folder)
    snapshots = []

    class Snap(Callback):
        order = 7

        def after_epoch(self, learn):
            if not learn.training:
                snapshots.append(copy.deepcopy(learn.model.state_dict()))

    best = SaveBestModel()
    learn.fit(3, lr=1e-3, cbs=[FakeValid([0.9, 0.5, 0.7]), best, Snap()])
    assert best.best_epoch == 1
    for k, v in learn.model.state_dict().items():
        assert torch.equal(v, snapshots[1][k])


def test_vision_learner_sets_normalization_and_freezes(tiny_folder):
    dls = make_dls(tiny_folder)
    learn = vision_learner(dls, "efficientnet_lite0", progress=False)
    assert dls.augment.preprocessing.mean == (0.5, 0.5, 0.5) and learn.frozen
    assert _trainable(learn)[:2] == (True, False)


def test_get_preds_and_tta(tiny_folder):
    learn = make_learner(tiny_folder)
    learn.fit(2, lr=1e-3)
    probs, targets = learn.get_preds()
    assert probs.shape == (len(learn.dls.valid.dataset), 4) and targets.dtype == torch.long
    torch.testing.assert_close(probs.sum(1), torch.ones(len(probs)))
    tta, _ = learn.get_preds(tta=True)
    torch.testing.assert_close(tta.sum(1), torch.ones(len(probs)))
    with torch.no_grad():  # the direct formula: the mean of the photo's and its mirror's probabilities
        direct = torch.cat([(learn.model(xb).softmax(1) + learn.model(xb.flip(-1)).softmax(1)) / 2
                            for xb, _ in learn.dls.valid])
    torch.testing.assert_close(tta, direct)
    assert not torch.allclose(tta, probs)  # the mirror did change the predictions
    logits, _ = learn.get_preds(activation=None)
    torch.testing.assert_close(logits.softmax(1), probs)


def test_a_callback_can_own_a_step_of_the_loop(tiny_folder):
    class CountingStep(Callback):
        """Owns the optimizer step (as MixedPrecision does): the learner calls this instead."""

        owns = ("step",)

        def __init__(self):
            self.steps = 0

        def step(self, learn):
            self.steps += 1
            learn.opt.step()

    learn = make_learner(tiny_folder)
    owner = CountingStep()
    before = state_of(learn.model)
    learn.fit(1, lr=1e-3, cbs=[owner])
    assert owner.steps == len(learn.dls.train) and not same_state(learn.model, before)


class StepMethodUndeclared(Callback):
    """Has a method called ``step`` but does not declare that it owns the step: it must not be called."""

    def __init__(self):
        self.calls = 0

    def step(self, learn):
        self.calls += 1  # (and no optimizer step: the model would stay put)


class SeesOwners(Callback):
    def before_batch(self, learn):
        self.owners = learn.owners()
        self.scheduler_steps = [cb.step for cb in learn.cbs if isinstance(cb, ParamScheduler)]


def test_only_a_declared_step_is_handed_over(tiny_folder):
    learn = make_learner(tiny_folder)
    undeclared, seen = StepMethodUndeclared(), SeesOwners()
    before = state_of(learn.model)
    learn.fit_one_cycle(1, 1e-3, cbs=[undeclared, seen])  # ParamScheduler's counter is called self.step
    assert seen.scheduler_steps == [len(learn.dls.train)]  # its counter (read in validation), not an owner
    assert undeclared.calls == 0 and seen.owners == {}
    assert not same_state(learn.model, before)  # the learner took the optimizer steps itself
    learn.to_fp16()
    learn.fit_one_cycle(1, 1e-3, cbs=[seen])
    mp = next(cb for cb in learn.cbs if isinstance(cb, MixedPrecision))
    assert seen.owners == {"autocast": mp, "backward": mp, "step": mp}


def test_two_owners_of_one_step_stop_fit_before_it_starts(tiny_folder):
    class OwnStep(Callback):
        owns = ("step",)

        def step(self, learn):
            learn.opt.step()

    learn = make_learner(tiny_folder).to_fp16()
    log, before = EventLog(), state_of(learn.model)
    with pytest.raises(ValueError, match="MixedPrecision and OwnStep both own the loop's 'step'.*to_fp32"):
        learn.fit(1, cbs=[OwnStep(), log])
    assert log.events == [] and same_state(learn.model, before)
    assert not any(isinstance(cb, (OwnStep, EventLog)) for cb in learn.cbs)  # fit's callbacks are gone again
    mp = next(cb for cb in learn.cbs if isinstance(cb, MixedPrecision))
    with pytest.raises(ValueError, match="MixedPrecision is among the callbacks twice"):
        learn.fit(1, cbs=[mp])
    with pytest.raises(ValueError, match="both own the loop's 'autocast'"):
        learn.add_cb(MixedPrecision()).get_preds()  # also outside fit


def test_a_wrong_declaration_says_what_to_write(tiny_folder):
    class Typo(Callback):
        owns = ("backwards",)

    class NoMethod(Callback):
        owns = ("backward",)

    class Bare(Callback):
        owns = "step"

        def step(self, learn):
            learn.opt.step()

    learn = make_learner(tiny_folder)
    with pytest.raises(ValueError, match="'backwards', which is not a step of the loop: .*autocast, backward, step"):
        learn.fit(1, cbs=[Typo()])
    with pytest.raises(TypeError, match="NoMethod declares that it owns 'backward' but has no method backward"):
        learn.fit(1, cbs=[NoMethod()])
    with pytest.raises(TypeError, match=r"write owns = \('step',\)"):
        learn.fit(1, cbs=[Bare()])
