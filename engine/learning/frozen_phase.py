"""The frozen phase's two speed-ups, opt-in, behind one object: cached features and a head started from them.

``fine_tune``'s first step trains the new head while the body is frozen. A frozen body (with its
BatchNorm layers on their stored statistics) is a fixed function, which allows two speed-ups:

    1. cache    run the body once per view of the training photos, keep its features, and train
                the head on those (``features.py``): many times faster, and exactly the same when
                the views are not random;
    2. start    set the head in closed form from the class averages of those features (shrinkage
                LDA, ``head_init.py``) instead of from random numbers.

A ``FrozenPhase`` owns the cache and the small learner that trains the head on it; the learner it
speeds up is left as it was (nothing is stored on it)::

    frozen = FrozenPhase(learn, views=2, valid_views=2)  # the body runs here, once per view
    frozen.start_head("lda")                             # optional: the head from the class averages
    learn.fine_tune(0, base_lr=5e-4, freeze_epochs=32, frozen_phase=frozen)
    logits, targets = frozen.preds(tta=True)             # scored from the cache while the body is unchanged

``frozen.head`` shares the head's parameters and the recorder with ``learn``: training it trains
``learn.model`` in place, and its epochs land in ``learn.recorder``. Use it for a fast ``lr_find``.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor, nn

from .features import FeatureCache, FeatureLoaders, cached_preds, compute_features
from .head_init import init_head_lda
from .learner import Learner

__all__ = ["HEAD_INITS", "FrozenPhase"]

HEAD_INITS = ("lda", "random")  # how the new head starts: from the class averages, or as created


class FrozenPhase:
    """The features of ``learn``'s frozen body, computed here once, and a learner for its head on them.

    Args:
        learn: a learner on a model with a ``body`` and a ``head`` (see ``models.create_model``).
        views: views of each training photo: as it is, mirrored, then random augmentations
            (with ``augment``).
        valid_views: 1, or 2 to also cache the mirrored validation photos (for ``preds(tta=True)``).
        augment: take the random views (default: when the training loader augments); False: one view.
        on_progress: called with the fraction done while the body runs (a web page's progress bar).
        reuse: an earlier ``FeatureCache`` of the same photos through the same body, whose views free
            of randomness are taken instead of computed (see ``features.compute_features``).
    """

    def __init__(self, learn: Learner, views: int = 1, valid_views: int = 1, augment: bool | None = None,
                 on_progress: Callable[[float], None] | None = None, reuse: FeatureCache | None = None):
        model = learn.unwrapped
        if not (isinstance(getattr(model, "body", None), nn.Module) and isinstance(getattr(model, "head", None),
                                                                                   nn.Module)):
            raise TypeError("FrozenPhase needs a model with a body and a head (see engine.models.create_model)")
        augment = learn.dls.train.random if augment is None else augment
        self.learn = learn
        self.cache: FeatureCache = compute_features(learn, n_views=views if augment else 1, augment=augment,
                                                    on_progress=on_progress, valid_views=valid_views, reuse=reuse)
        loaders = FeatureLoaders(self.cache, learn.dls.batch_size, learn.dls.device, learn.dls.vocab, learn.dls.seed,
                                 drop_last=self.cache.train.shape[1] > learn.dls.batch_size)
        head_tail = model.head[1:]  # everything after the pooling layer
        self.head = Learner(loaders, head_tail, loss_func=learn.loss_func, lr=learn.lr, metrics=learn.metrics,
                            wd=learn.wd, progress=learn.progress, recorder=learn.recorder)
        self.temperature: float | None = None  # the LDA head's temperature, once start_head("lda") set it

    def start_head(self, head_init: str = "lda") -> FrozenPhase:
        """Start the head as ``head_init`` says: "lda" sets it from the class averages of the cached
        training features (every view), "random" keeps the random start it was created with."""
        if head_init not in HEAD_INITS:
            raise ValueError(f"head_init={head_init!r}: expected 'lda' (start from the class averages) or 'random' "
                             "(keep the new head's random start)")
        if head_init == "lda":
            self.temperature = init_head_lda(self.learn.unwrapped.head, self.cache.train.cpu(),
                                             self.cache.train_y.cpu())
        return self

    def fit(self, n_epochs: int, lr_max: float, **one_cycle_kwargs) -> Learner:
        """One-cycle over the head on the cached features (``fine_tune``'s frozen phase); returns the
        head learner. The full learner's optimizer starts afresh for the next phase."""
        self.head.fit_one_cycle(n_epochs, lr_max, **one_cycle_kwargs)
        self.learn.opt = None
        return self.head

    def preds(self, tta: bool = False) -> tuple[Tensor, Tensor]:
        """Validation logits and targets from the cache (see ``features.cached_preds``): right only while
        the body is the frozen one the features came from."""
        return cached_preds(self.learn, self.cache, tta=tta)

    def __repr__(self) -> str:
        return f"FrozenPhase({self.cache!r})"
