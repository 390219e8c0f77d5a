"""Checks for the exercises of 04_learning_rate_finder.ipynb: predict, then run (each check runs it)."""

from __future__ import annotations

from . import exercise

_RUNS: dict = {}  # each experiment's result, per head learner: check and self-check run it once


def _twin(head, state, lr: float = 1e-3):
    """A learner of its own on ``head``'s cached features, its model a copy of ``head.model`` with the
    weights ``state`` (the notebook's learner is left as it was)."""
    import copy

    from engine.learning.learner import Learner

    model = copy.deepcopy(head.model)
    model.load_state_dict(state)
    return Learner(head.dls, model, loss_func=head.loss_func, lr=lr, metrics=head.metrics, wd=head.wd,
                   progress=False)


def finder_after_training(head, before, lr: float) -> float:
    """The finder's minimum / 10 suggestion on a copy of the head after 3 one-cycle epochs at ``lr`` from
    ``before`` (the weights the first sweep started from)."""
    import torch

    key = ("finder", id(head), lr)
    if key not in _RUNS:
        twin = _twin(head, before)
        torch.manual_seed(0)
        twin.fit_one_cycle(3, lr)
        _RUNS[key] = twin.lr_find().suggestions["minimum"]
    return _RUNS[key]


def slow_valid_loss(head, before, epochs: int = 30, lr: float = 1e-5) -> float:
    """The validation loss after ``epochs`` one-cycle epochs at the too-low rate ``lr``, from ``before``."""
    import torch

    key = ("slow", id(head), epochs, lr)
    if key not in _RUNS:
        twin = _twin(head, before)
        torch.manual_seed(0)
        twin.fit_one_cycle(epochs, lr)
        _RUNS[key] = twin.recorder.epochs[-1]["valid_loss"]
    return _RUNS[key]


def _choice(answer, choices) -> str | None:
    if not isinstance(answer, str):
        return None
    given = " ".join(answer.strip().strip("'\"").lower().split())
    return given if given in choices else None


@exercise("04.1", "The finder run again after 3 epochs of training: is its minimum / 10 suggestion lower, the "
                  "same or higher?",
          right="{answer}: the finder describes the model as it is now. A head that has already learnt sits near "
                "a minimum of the loss: its curve hardly falls any more, and even small steps start to overshoot. "
                "So run the finder again for each phase (fine_tune's unfrozen phase gets its own rate).")
def finder_again(answer, head, before, lr) -> str | None:
    given = _choice(answer, ("lower", "the same", "same", "higher"))
    if given is None:
        return "answer with one of 'lower', 'the same' or 'higher'"
    later = finder_after_training(head, before, lr)  # lr: the first sweep's minimum / 10 suggestion
    truth = "lower" if later < lr * 0.95 else "higher" if later > lr * 1.05 else "same"
    if given.replace("the same", "same") == truth:
        return None
    return ("not what happened: where on its loss curve does a head that has already trained start the sweep, and "
            "how big a step does it take to overshoot from there?")


@exercise("04.2", "Ten times the epochs at the too-low rate 1e-5: does it catch up with 3 epochs at minimum / 10?",
          right="{answer}: run the next cell to see the two losses. A rate far below the finder's range is slow in "
                "every epoch; more epochs are a costly way to make up for it, and the finder saves that time.")
def too_low_longer(answer, head, before, target) -> str | None:
    if not isinstance(answer, bool):
        return "answer True (it catches up: a lower or equal validation loss) or False"
    loss = slow_valid_loss(head, before)
    if answer == (loss <= target):
        return None
    return ("not what happened: how far can 30 epochs of steps of 1e-5 move the weights, next to 3 epochs at the "
            "finder's rate?")
