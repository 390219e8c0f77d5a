"""The frozen-phase speed-up: train the head on cached body features.

While the body is frozen (and its BatchNorm layers use their stored statistics) it is a fixed
function: the same image gives the same features every epoch. So instead of running the body
(most of the compute) in every frozen epoch, run it once per *view* of the training set, keep the
pooled features, and train only the head on them. With augmentation on, each view is a differently
augmented pass, and the frozen epochs cycle through the views; with augmentation off one view is
exact, and the result equals training through the body (``tests/test_features.py`` checks it).

This module holds the cache and its loaders; ``frozen_phase.py`` trains a head on them.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch
from torch import Tensor
from torch.utils.data import DataLoader

__all__ = ["FeatureCache", "FeatureLoader", "FeatureLoaders", "compute_features", "cached_preds"]


class FeatureCache:
    """Pooled body features: ``train`` (views, n, features), ``valid`` (n, features), and labels;
    ``valid_mirror`` (n, features) holds the mirrored validation photos when they were computed
    (for test-time augmentation without running the body again)."""

    def __init__(self, train: Tensor, train_y: Tensor, valid: Tensor, valid_y: Tensor,
                 valid_mirror: Tensor | None = None):
        self.train, self.train_y, self.valid, self.valid_y = train, train_y, valid, valid_y
        self.valid_mirror = valid_mirror
        self.seconds: float | None = None  # how long computing them took (set by compute_features)
        self.n_reused = 0  # of n_images, how many were taken from an earlier cache (compute_features' reuse)

    @property
    def n_images(self) -> int:
        """How many images went through the body to make this cache (views counted separately)."""
        return self.train.shape[0] * self.train.shape[1] + self.valid.shape[0] * (1 + (self.valid_mirror is not None))

    @property
    def n_views(self) -> int:
        return self.train.shape[0]

    def __repr__(self) -> str:
        return (f"FeatureCache({self.n_views} view(s) of {self.train.shape[1]} training items, "
                f"{self.valid.shape[0]} validation items, {self.train.shape[2]} features each)")


def compute_features(learn, n_views: int = 1, augment: bool = True,
                     on_progress: Callable[[float], None] | None = None, valid_views: int = 1,
                     reuse: FeatureCache | None = None) -> FeatureCache:
    """Run the frozen body (in eval mode) over the training set ``n_views`` times and the
    validation set ``valid_views`` times (1, or 2 to add its mirror images); keep the output of
    the head's pooling layer.

    The views: 0 is the photo as validation sees it, 1 its mirror image, and 2 onwards are random
    augmentations (when ``augment``). The first two are free of randomness and cover the commonest
    variation (left/right), and they come from one pass over the photos: each batch is decoded
    once and mirrored on the device. Random views add rotations, zooms, warps, crops and lighting.
    A progress bar shows when the learner shows one; ``on_progress(fraction_done)`` is called after
    every batch (a web page can drive its own progress bar with it).

    ``reuse``: an earlier cache of the same photos, in the same order, through the same unchanged
    body and preprocessing. Its views free of randomness (0 and 1) and its validation features are
    taken as they are, since the body would compute exactly them again; only the random views run.
    Matching them is the caller's duty (``recipe.TrainingRun`` keys them by the photos, their files
    and the recipe's fields that shape the features). ``n_reused`` on the result counts them.
    """
    from ..progress import progress_bar

    if valid_views not in (1, 2):
        raise ValueError(f"valid_views must be 1 (the photos) or 2 (and their mirror images), got {valid_views}")
    model = learn.unwrapped
    pool = model.head[0]
    model.eval()
    n_views = n_views if augment else 1
    n_plain = min(n_views, 2)  # the views free of randomness
    n_train = len(learn.dls.train_in_order(augment=False).dataset)
    n_valid = len(learn.dls.valid.dataset)
    if reuse is not None and (reuse.n_views < n_plain or reuse.train.shape[1] != n_train or
                              reuse.valid.shape[0] != n_valid or (valid_views == 2 and reuse.valid_mirror is None)):
        raise ValueError(f"compute_features: the cache to reuse ({reuse!r}) does not cover {n_plain} plain view(s) "
                         f"of {n_train} training and {n_valid} validation photos: leave reuse out")
    total = (n_views - n_plain if reuse is not None else n_views) * n_train + \
        (0 if reuse is not None else valid_views * n_valid)
    bar = progress_bar(total, "caching body features", unit="img", disable=not learn.progress or total == 0,
                       leave=False)
    done, start = 0, time.perf_counter()

    def run(loader, mirror: bool) -> tuple[list[Tensor], Tensor]:
        """Features of each batch (and of its mirror image when ``mirror``): ([plain, mirrored], labels)."""
        nonlocal done
        feats, flipped, ys = [], [], []
        with torch.inference_mode(), learn.autocast():
            for xb, yb in loader:
                feats.append(pool(model.body(xb)).float())  # (bs, n_features)
                if mirror:
                    flipped.append(pool(model.body(xb.flip(-1))).float())
                ys.append(yb)
                bar.update(len(yb) * (1 + mirror))
                done += len(yb) * (1 + mirror)
                if on_progress is not None:
                    on_progress(done / total)
        return [torch.cat(feats)] + ([torch.cat(flipped)] if mirror else []), torch.cat(ys)

    try:  # a Ctrl-C here stops the whole run (it propagates); the bar is closed either way
        if reuse is not None:
            views, train_y = list(reuse.train[:n_plain]), reuse.train_y
        else:
            views, train_y = run(learn.dls.train_in_order(augment=False), mirror=n_views >= 2)
        for _ in range(2, n_views):
            views += run(learn.dls.train_in_order(augment=True), mirror=False)[0]
        if reuse is not None:
            valid, valid_y = [reuse.valid, reuse.valid_mirror], reuse.valid_y
        else:
            valid, valid_y = run(learn.dls.valid, mirror=valid_views == 2)
    finally:
        bar.close()
    if total == 0 and on_progress is not None:  # everything was reused: done at once
        on_progress(1.0)
    cache = FeatureCache(torch.stack(views), train_y, valid[0], valid_y, valid[1] if valid_views == 2 else None)
    cache.seconds = time.perf_counter() - start
    cache.n_reused = cache.n_images - total
    return cache


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


def cached_preds(learn, cache: FeatureCache, tta: bool = False) -> tuple[Tensor, Tensor]:
    """Validation logits (n, n_classes) and targets (n,) from ``cache`` (``learn``'s features): what
    ``learn.get_preds("valid", activation=None, tta=tta)`` gives while the body is still the frozen
    one the features came from, without running the body again.

    With ``tta`` the mirrored photos' features must be cached (``valid_views=2``); the logits are
    then the log of the two probabilities' average, as in ``get_preds``.
    """
    from ..losses import log_mean_softmax

    if tta and cache.valid_mirror is None:
        raise ValueError("cached_preds(tta=True) needs the mirrored validation photos: cache them with valid_views=2")
    tail = learn.unwrapped.head[1:].eval()
    with torch.no_grad():
        logits = tail(cache.valid.to(learn.dls.device)).float()  # (n, n_classes)
        if tta:
            mirrored = tail(cache.valid_mirror.to(learn.dls.device)).float()
            logits = log_mean_softmax(torch.stack([logits, mirrored]))
    return logits.cpu(), cache.valid_y.cpu()
