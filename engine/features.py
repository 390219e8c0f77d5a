"""The frozen-phase speed-up: train the head on cached body features.

While the body is frozen (and its BatchNorm layers use their stored statistics) it is a fixed
function: the same image gives the same features every epoch. So instead of running the body
(most of the compute) in every frozen epoch, run it once per *view* of the training set, keep the
pooled features, and train only the head on them. With augmentation on, each view is a differently
augmented pass, and the frozen epochs cycle through the views; with augmentation off one view is
exact, and the result equals training through the body (``tests/test_features.py`` checks it).
"""

from __future__ import annotations

import contextlib
from typing import Callable

import torch
from torch import Tensor
from torch.utils.data import DataLoader

from .callbacks import MixedPrecision

__all__ = ["FeatureCache", "FeatureLoader", "FeatureLoaders", "compute_features", "head_learner",
           "fit_head_on_features"]


class FeatureCache:
    """Pooled body features: ``train`` (views, n, features), ``valid`` (n, features), and labels."""

    def __init__(self, train: Tensor, train_y: Tensor, valid: Tensor, valid_y: Tensor):
        self.train, self.train_y, self.valid, self.valid_y = train, train_y, valid, valid_y

    @property
    def n_views(self) -> int:
        return self.train.shape[0]

    def __repr__(self) -> str:
        return (f"FeatureCache({self.n_views} view(s) of {self.train.shape[1]} training items, "
                f"{self.valid.shape[0]} validation items, {self.train.shape[2]} features each)")


def _autocast(learn):
    if any(isinstance(cb, MixedPrecision) for cb in learn.cbs):
        dtype = torch.float16 if learn.dls.device.type == "cuda" else torch.bfloat16
        return torch.autocast(learn.dls.device.type, dtype=dtype)
    return contextlib.nullcontext()


def compute_features(learn, n_views: int = 1, augment: bool = True,
                     on_progress: Callable[[float], None] | None = None) -> FeatureCache:
    """Run the frozen body (in eval mode) over the training set ``n_views`` times and the
    validation set once; keep the output of the head's pooling layer.

    The views: 0 is the photo as validation sees it, 1 its mirror image, and 2 onwards are random
    augmentations (when ``augment``). The first two are free of randomness and cover the commonest
    variation (left/right); random views add rotations, zooms, warps, crops and lighting.
    A progress bar shows when the learner shows one; ``on_progress(fraction_done)`` is called after
    every batch (a web page can drive its own progress bar with it).
    """
    from tqdm.auto import tqdm

    model = getattr(learn.model, "module", learn.model)
    pool = model.head[0]
    model.eval()
    n_views = n_views if augment else 1
    total = n_views * len(learn.dls.train_in_order(augment=False)) + len(learn.dls.valid)
    show = any(type(cb).__name__ == "ProgressCallback" for cb in learn.cbs)
    bar = tqdm(total=total, desc="caching body features", leave=False, disable=not show)

    def run(loader, flip: bool = False) -> tuple[Tensor, Tensor]:
        feats, ys = [], []
        with torch.inference_mode(), _autocast(learn):
            for xb, yb in loader:
                if flip:
                    xb = xb.flip(-1)
                feats.append(pool(model.body(xb)).float())  # (bs, n_features)
                ys.append(yb)
                bar.update(1)
                if on_progress is not None:
                    on_progress(bar.n / total)
        return torch.cat(feats), torch.cat(ys)

    views, train_y = [], None
    for v in range(n_views):
        f, train_y = run(learn.dls.train_in_order(augment=v >= 2), flip=v == 1)
        views.append(f)
    valid, valid_y = run(learn.dls.valid)
    bar.close()
    return FeatureCache(torch.stack(views), train_y, valid, valid_y)


class FeatureLoader:
    """Batches of cached features, shuffled like the image loader would be; one view per epoch."""

    def __init__(self, feats: Tensor, ys: Tensor, batch_size: int, shuffle: bool,
                 generator: torch.Generator | None, drop_last: bool):
        self.feats, self.ys = feats, ys  # feats: (views, n, ...)
        # A DataLoader over indices: the same sampler as the image loader, so the same batch order.
        self.index = DataLoader(range(len(ys)), batch_size=batch_size, shuffle=shuffle,
                                generator=generator if generator is not None else torch.Generator(),
                                drop_last=drop_last)
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.index)

    def __iter__(self):
        view = self.feats[self.epoch % self.feats.shape[0]]
        self.epoch += 1
        for idx in self.index:
            yield view[idx], self.ys[idx]


class FeatureLoaders:
    """``DataLoaders``-like train/valid loaders over a ``FeatureCache``."""

    def __init__(self, cache: FeatureCache, batch_size: int, device: torch.device, vocab, seed: int | None,
                 drop_last: bool):
        gen = torch.Generator()
        if seed is not None:
            gen.manual_seed(seed)
        self.train = FeatureLoader(cache.train, cache.train_y, batch_size, True, gen, drop_last)
        self.valid = FeatureLoader(cache.valid[None], cache.valid_y, batch_size, False, None, False)
        self.device, self.vocab, self.cache = device, vocab, cache


def head_learner(learn, n_views: int = 1, augment: bool | None = None,
                 on_progress: Callable[[float], None] | None = None):
    """A ``Learner`` that trains ``learn``'s head on cached body features (computed here, once).

    The head's parameters are shared with ``learn.model``, so training this learner trains the
    model in place. Use it for a fast ``lr_find`` of the frozen phase, or let
    ``fit_head_on_features`` (and ``fine_tune(cache_features=True)``) do the whole frozen phase.
    """
    from .learner import Learner

    model = getattr(learn.model, "module", learn.model)
    if not hasattr(model, "body") or not hasattr(model, "head"):
        raise TypeError("feature caching needs a model with a body and a head (see engine.models.create_model)")
    augment = learn.dls.train.train if augment is None else augment
    cache = compute_features(learn, n_views=n_views if augment else 1, augment=augment, on_progress=on_progress)
    train_len = cache.train.shape[1]
    loaders = FeatureLoaders(cache, learn.dls.batch_size, learn.dls.device, learn.dls.vocab, learn.dls.seed,
                             drop_last=train_len > learn.dls.batch_size)
    progress = any(type(cb).__name__ == "ProgressCallback" for cb in learn.cbs)
    head_tail = model.head[1:]  # everything after the pooling layer
    hl = Learner(loaders, head_tail, loss_func=learn.loss_func, lr=learn.lr, metrics=learn.metrics,
                 wd=learn.wd, progress=progress)
    learn.feature_cache = cache
    return hl


def fit_head_on_features(learn, n_epochs: int, lr: float, n_views: int = 1, augment: bool | None = None,
                         head_learn=None, **one_cycle_kwargs):
    """The frozen phase of ``fine_tune`` on cached features: one-cycle over ``learn``'s head.

    ``head_learn`` reuses a ``head_learner(learn)`` made earlier (say for ``lr_find``) instead
    of computing the features again. Returns the head learner; its recorder is also appended to
    ``learn.recorder``.
    """
    hl = head_learn if head_learn is not None else head_learner(learn, n_views, augment)
    start = len(hl.recorder.epochs), len(hl.recorder.losses), len(hl.recorder.lrs), len(hl.recorder.moms)
    hl.fit_one_cycle(n_epochs, lr, **one_cycle_kwargs)
    rec = hl.recorder
    learn.recorder.epochs += rec.epochs[start[0]:]
    learn.recorder.losses += rec.losses[start[1]:]
    learn.recorder.lrs += rec.lrs[start[2]:]  # one group (the head): plots use the last group
    learn.recorder.moms += rec.moms[start[3]:]
    learn.opt = None  # the full model's optimizer starts afresh for the next phase
    return hl
