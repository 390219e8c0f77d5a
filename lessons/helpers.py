"""Helper code the lessons use, kept out of the notebooks so that their cells stay short.

Read any of it from a notebook with ``??``, e.g. ``head_learner??``. Each notebook has its own section.
"""

from __future__ import annotations

import copy

import torch

# --- notebooks 06 and 07 ---


def head_learner(frozen, start, seed: int = 0, batch_size: int = 32):
    """A learner for a copy of the head ``start`` on the features ``frozen.cache`` (a ``FrozenPhase``).

    The same ``seed`` gives the same batch order and the same dropout, so two runs stay identical until
    something (a callback, a setting) makes them differ.
    """
    from engine.learning.features import FeatureLoaders
    from engine.learning.learner import Learner

    torch.manual_seed(seed)  # dropout draws from torch's global random generator
    dls = frozen.head.dls
    loaders = FeatureLoaders(frozen.cache, batch_size, dls.device, dls.vocab, seed=seed, drop_last=True)
    return Learner(loaders, copy.deepcopy(start), progress=False)


def confidence(learn) -> dict:
    """How many validation photos ``learn`` gets wrong, how sure it is of its answers (the mean top
    probability), and the mean loss of the photos it gets right and of those it gets wrong."""
    probs, targets = learn.get_preds()
    losses = -probs[torch.arange(len(targets)), targets].clamp_min(1e-12).log()
    wrong = probs.argmax(1) != targets
    return {"wrong": int(wrong.sum()), "confidence": probs.max(1).values.mean().item(),
            "loss right": losses[~wrong].mean().item(), "loss wrong": losses[wrong].mean().item()}


def full_against_early(frozen, seeds, n_epochs: int, lr_max: float, stopper_factory) -> list[tuple[int, int, int]]:
    """For each seed, a freshly initialised head trained with one-cycle to the end and with the early
    stopper ``stopper_factory()``: ``(seed, photos wrong after the full run, photos wrong after early stopping)``."""
    n_valid = len(frozen.cache.valid_y)
    rows = []
    for seed in seeds:
        torch.manual_seed(seed)
        start = copy.deepcopy(frozen.head.model)
        for layer in start.modules():
            if isinstance(layer, (torch.nn.Linear, torch.nn.BatchNorm1d)):
                layer.reset_parameters()  # a new random head for each seed
        wrong = []
        for cbs in ([], [stopper_factory()]):
            run = head_learner(frozen, start, seed)
            run.fit_one_cycle(n_epochs, lr_max, cbs=cbs)
            wrong.append(round(run.recorder.epochs[-1]["error_rate"] * n_valid))
        rows.append((seed, *wrong))
    return rows
