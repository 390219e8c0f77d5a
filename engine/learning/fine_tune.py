"""``fine_tune``: how a pretrained model learns a new task, in two steps (the book's, with its parameters).

    1. freeze the body and train the new head (a short warm-up, the body a fixed function);
    2. unfreeze and train everything, with discriminative learning rates (the earliest layers,
       which find edges and textures useful for any photo, change least).

While the body is frozen (and its BatchNorm layers keep their statistics) it gives the same
features for a photo every epoch, so step 1 can train the head on stored features, and the head
can start in closed form from their class averages. Both speed-ups are opt-in, behind one object
(``frozen_phase.FrozenPhase``) that ``fine_tune`` takes as ``frozen_phase``.

This module sits above ``learner`` (the loop): ``vision_learner`` returns a ``VisionLearner``, a
``Learner`` that has ``fine_tune``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .learner import Learner

if TYPE_CHECKING:
    from .frozen_phase import FrozenPhase

__all__ = ["VisionLearner", "vision_learner"]


class VisionLearner(Learner):
    """A ``Learner`` on a pretrained body with a new head (see ``models.Classifier``), which adds
    ``fine_tune``. Make one with ``vision_learner``."""

    def fine_tune(self, epochs: int, base_lr: float = 2e-3, freeze_epochs: int = 1, lr_mult: float = 100,
                  pct_start: float = 0.3, div: float = 5.0, *, frozen_phase: FrozenPhase | None = None,
                  **kwargs) -> VisionLearner:
        """Fit the new head with the body frozen, then unfreeze and fit everything.

        1. ``freeze()``, one-cycle for ``freeze_epochs`` at ``base_lr`` (a short warm-up);
        2. ``base_lr /= 2``, ``unfreeze()``, one-cycle for ``epochs`` with
           ``slice(base_lr / lr_mult, base_lr)``: the earliest layers change least.

        ``frozen_phase`` (a ``FrozenPhase`` of this learner) runs step 1 on its cached features
        instead of through the body: the same result when the views are not random, many times
        faster. ``kwargs`` go to each ``fit_one_cycle``.
        """
        if frozen_phase is not None and frozen_phase.learn is not self:
            raise ValueError("fine_tune: frozen_phase holds another learner's features; make it with "
                             "FrozenPhase(this learner)")
        self.freeze()
        if freeze_epochs > 0:
            if frozen_phase is not None:
                frozen_phase.fit(freeze_epochs, base_lr, pct_start=0.99, **kwargs)
            else:
                self.fit_one_cycle(freeze_epochs, slice(base_lr), pct_start=0.99, **kwargs)
        base_lr /= 2
        self.unfreeze()
        if epochs > 0:
            self.fit_one_cycle(epochs, slice(base_lr / lr_mult, base_lr), pct_start=pct_start, div=div, **kwargs)
        return self


def vision_learner(dls, arch: str = "efficientnet_lite0", pretrained: bool = True, **kwargs) -> VisionLearner:
    """A ``VisionLearner`` on ``create_model(arch)`` for ``dls``'s classes, frozen, with the data
    normalized the way the pretrained body expects (``dls.preprocessing`` then says so too)."""
    from ..models import create_model

    model = create_model(arch, n_classes=len(dls.vocab), pretrained=pretrained)
    dls.set_normalization(*model.normalization)
    learn = VisionLearner(dls, model, **kwargs)
    if pretrained:
        learn.freeze()
    return learn
