"""``fine_tune``: how a pretrained model learns a new task, in two steps, and the frozen phase's speed-up.

    1. freeze the body and train the new head (a short warm-up, the body a fixed function);
    2. unfreeze and train everything, with discriminative learning rates (the earliest layers,
       which find edges and textures useful for any photo, change least).

While the body is frozen (and its BatchNorm layers keep their statistics) it gives the same
features for a photo every epoch, so step 1 can run the body once per view and train the head
on the stored features (``features.py``): many times faster, and exactly the same when the views
are not random. The head can also start in closed form from the class averages of those features
(``head_init.py``) instead of from random numbers.

This module sits above ``learner`` (the loop) and ``features`` (the cache): ``vision_learner``
returns a ``VisionLearner``, a ``Learner`` that has ``fine_tune``. The head learner it trains on
the cached features shares the full learner's recorder, so both phases land in one history.
"""

from __future__ import annotations

from typing import Callable

from torch import nn

from .features import FeatureLoaders, compute_features
from .head_init import init_head_lda
from .learner import Learner

__all__ = ["VisionLearner", "vision_learner", "head_learner", "fit_head_on_features"]


class VisionLearner(Learner):
    """A ``Learner`` on a pretrained body with a new head (see ``models.Classifier``), which adds
    ``fine_tune``. Make one with ``vision_learner``."""

    head_temperature: float | None = None  # set by fine_tune(head_init="lda")

    def fine_tune(self, epochs: int, base_lr: float = 2e-3, freeze_epochs: int = 1, lr_mult: float = 100,
                  pct_start: float = 0.3, div: float = 5.0, cache_features: bool = False, n_views: int = 1,
                  head_learn=None, head_init: str | None = None, valid_views: int = 1, **kwargs) -> "VisionLearner":
        """Fit the new head with the body frozen, then unfreeze and fit everything.

        1. ``freeze()``, one-cycle for ``freeze_epochs`` at ``base_lr`` (a short warm-up);
        2. ``base_lr /= 2``, ``unfreeze()``, one-cycle for ``epochs`` with
           ``slice(base_lr / lr_mult, base_lr)``: the earliest layers change least.

        With ``cache_features`` the frozen phase runs the body once per augmented view
        (``n_views``) and trains the head on the stored features: the same result as running the
        body every epoch when augmentation is off, and many times faster (see ``features.py``);
        ``head_learn`` reuses the features of an earlier ``head_learner(learn)``.

        ``head_init="lda"`` first sets the head in closed form from the class averages of the
        body's features (shrinkage LDA, see ``head_init.py``), so the frozen phase starts from a
        good classifier instead of a random one.

        ``valid_views=2`` also caches the mirrored validation photos, so that a frozen model can be
        scored with test-time augmentation from the cache (``features.cached_preds``).
        """
        self.freeze()
        if cache_features and head_learn is None and (freeze_epochs > 0 or head_init is not None):
            head_learn = head_learner(self, n_views, valid_views=valid_views)
        if head_init is not None:
            self._init_head(head_init, head_learn)
        if freeze_epochs > 0:
            if head_learn is not None:
                fit_head_on_features(self, freeze_epochs, base_lr, head_learn=head_learn, pct_start=0.99, **kwargs)
            else:
                self.fit_one_cycle(freeze_epochs, slice(base_lr), pct_start=0.99, **kwargs)
        base_lr /= 2
        self.unfreeze()
        if epochs > 0:
            self.fit_one_cycle(epochs, slice(base_lr / lr_mult, base_lr), pct_start=pct_start, div=div, **kwargs)
        return self

    def _init_head(self, how: str, head_learn) -> None:
        """Set the head from the body's features of the training set: the head learner's cache, or
        one pass over the training photos as validation sees them."""
        if how != "lda":
            raise ValueError(f"head_init={how!r}: expected 'lda' (start from the class averages) or None (random)")
        cache = head_learn.dls.cache if head_learn is not None else compute_features(self, n_views=1, augment=False)
        self.head_temperature = init_head_lda(self.unwrapped.head, cache.train.cpu(), cache.train_y.cpu())


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


def head_learner(learn: Learner, n_views: int = 1, augment: bool | None = None,
                 on_progress: Callable[[float], None] | None = None, valid_views: int = 1) -> Learner:
    """A ``Learner`` that trains ``learn``'s head on cached body features (computed here, once).

    The head's parameters are shared with ``learn.model``, so training this learner trains the
    model in place, and so is the recorder: its epochs go into ``learn.recorder``. Use it for a
    fast ``lr_find`` of the frozen phase, or let ``fine_tune(cache_features=True)`` run the whole
    frozen phase on it.
    """
    model = learn.unwrapped
    if not isinstance(getattr(model, "body", None), nn.Module) or not isinstance(getattr(model, "head", None),
                                                                                nn.Module):
        raise TypeError("feature caching needs a model with a body and a head (see engine.models.create_model)")
    augment = learn.dls.train.random if augment is None else augment
    cache = compute_features(learn, n_views=n_views if augment else 1, augment=augment, on_progress=on_progress,
                             valid_views=valid_views)
    loaders = FeatureLoaders(cache, learn.dls.batch_size, learn.dls.device, learn.dls.vocab, learn.dls.seed,
                             drop_last=cache.train.shape[1] > learn.dls.batch_size)
    head_tail = model.head[1:]  # everything after the pooling layer
    learn.feature_cache = cache
    return Learner(loaders, head_tail, loss_func=learn.loss_func, lr=learn.lr, metrics=learn.metrics, wd=learn.wd,
                   progress=learn.progress, recorder=learn.recorder)


def fit_head_on_features(learn: Learner, n_epochs: int, lr: float, n_views: int = 1, augment: bool | None = None,
                         head_learn: Learner | None = None, **one_cycle_kwargs) -> Learner:
    """The frozen phase of ``fine_tune`` on cached features: one-cycle over ``learn``'s head.

    ``head_learn`` reuses a ``head_learner(learn)`` made earlier (say for ``lr_find``) instead
    of computing the features again. Returns the head learner.
    """
    hl = head_learn if head_learn is not None else head_learner(learn, n_views, augment)
    hl.fit_one_cycle(n_epochs, lr, **one_cycle_kwargs)
    learn.opt = None  # the full model's optimizer starts afresh for the next phase
    return hl
