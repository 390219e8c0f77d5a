"""The learning layer: the training loop and everything that trains on top of it.

    learner     the training loop: fit, fit_one_cycle, freeze/unfreeze, to_fp16, lr_find
    callbacks   recorder, progress, NaN guard, last good state, schedules, mixed precision, early stopping
    schedules   one-cycle and friends as pure functions; slice -> per-group rates
    lr_finder   the learning-rate finder and its suggestions
    features    the frozen-phase speed-up: the body's features, cached
    head_init   start the head from the class averages (shrinkage LDA), in closed form
    frozen_phase  both speed-ups of fine_tune's frozen phase behind one object (FrozenPhase)
    fine_tune   vision_learner and fine_tune, with the book's parameters
    interpret   confusion matrix, most confused, top losses
    plots       loss, schedule and LR-finder plots
    distributed DistributedDataParallel under torchrun
"""

from __future__ import annotations
