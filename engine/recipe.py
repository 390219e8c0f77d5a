"""The training recipe: one object with the choices, one path that runs them, for every entry point.

``python -m engine.train``, ``bench/train.py`` and the web demo's Train tab all train the same
way: a ``Recipe`` (a frozen dataclass: the architecture, the preprocessing, the head's start, the
epochs and rates ...) and ``run_recipe(data, recipe)``. Each entry point changes the fields it needs
(``dataclasses.replace(Recipe(), size=...)``, or a ``Recipe(...)`` of its own, like the demo's).

The default recipe, chosen for a small CPU by cross-validation on the sample's training photos
(the README's design notes have the evidence):

    1. data        ``DataLoaders.from_path(data)``: presize 460 on the CPU, 288 pixels for the model
    2. model       the pretrained ``efficientnet_lite0`` body with a new head, frozen
    3. features    the body's output for each training photo and its mirror image, and for each
                   validation photo and its mirror, computed once (``features.py``)
    4. head start  the head set in closed form from the class averages (shrinkage LDA, ``head_init.py``)
    5. fine_tune   32 one-cycle epochs of the head on the cached features at 5e-4, no unfrozen epoch
    6. report      the validation error with test-time augmentation (each photo and its mirror),
                   from the cached features when the body never changed

``TrainingRun.steps()`` runs them one by one and yields, after each, the step's name and the
``TrainingResult`` filled in so far, so that a web page can show the training as it goes;
``run_recipe`` runs them all.

One learning rate, one name: ``base_lr`` is what ``fine_tune`` gets (the field ``Recipe.base_lr``,
the result's ``base_lr`` once the LR finder or the default chose it, the report's and ``meta.json``'s
``base_lr``); ``lr_max`` is only ever one-cycle's peak (``fit_one_cycle``).
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .data.preprocessing import Preprocessing

if TYPE_CHECKING:
    from .data.loaders import DataLoaders
    from .learning.features import FeatureCache
    from .learning.fine_tune import VisionLearner
    from .learning.frozen_phase import FrozenPhase
    from .learning.interpret import ClassificationInterpretation
    from .learning.lr_finder import LRFindResult

__all__ = ["Recipe", "TrainingRun", "TrainingResult", "run_recipe", "forget_features", "LR_AFTER"]

LR_AFTER = {"lda": 5e-4, "random": 5e-3}  # the frozen phase's rate by how the head starts (cross-validated)


@dataclass(frozen=True)
class Recipe:
    """The choices of one training run; ``run_recipe(data, recipe)`` carries them out.

    Args:
        arch: the pretrained body (see ``models.ARCHS``).
        preprocessing: presize, final size and method (the normalization comes from the body).
        head_init: "lda" (start the head from the class averages) or "random".
        base_lr: the base learning rate of ``fine_tune``; None: ``LR_AFTER[head_init]`` (see
            ``chosen_base_lr``).
        find_lr: run the LR finder on the cached features first and use its "valley" suggestion.
        freeze_epochs: one-cycle epochs of the head alone (on cached features: fast).
        epochs: unfrozen epochs of the whole model after that (slow on a CPU).
        views: cached views of each training photo: as it is, mirrored, then random augmentations.
        cache_features: train the frozen phase on cached features (else through the body each epoch).
        mixed_precision: bfloat16 on the CPU, fp16 with a gradient scaler on a GPU.
        batch_size, workers, seed: the loaders (``workers``: DataLoader processes).
        valid_pct: the random validation share, for data that brings no split of its own.
    """

    arch: str = "efficientnet_lite0"
    preprocessing: Preprocessing = Preprocessing(size=288)
    head_init: str = "lda"
    base_lr: float | None = None
    find_lr: bool = False
    freeze_epochs: int = 32
    epochs: int = 0
    views: int = 2
    cache_features: bool = True
    mixed_precision: bool = False
    batch_size: int = 32
    workers: int = 0
    seed: int = 42
    valid_pct: float = 0.2

    def __post_init__(self):
        from .models import get_arch
        from .serving.exported import check_sizes

        get_arch(self.arch)  # a clear error for a name that is not in the registry
        try:
            check_sizes(self.preprocessing, self.arch)  # a model that could not be served is not trained
        except ValueError as err:
            raise ValueError(f"{err}; choose a smaller one (--size, --presize)") from None
        if self.head_init not in LR_AFTER:
            raise ValueError(f"head_init must be one of {', '.join(LR_AFTER)}, got {self.head_init!r}")
        if self.freeze_epochs < 0 or self.epochs < 0 or self.views < 1 or self.batch_size < 1:
            raise ValueError("freeze_epochs and epochs must be >= 0, views and batch_size >= 1")
        lr = self.base_lr
        if lr is not None and not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
            # inf or nan would train until the NaN guard stops it: refuse it before any photo is read
            raise ValueError(f"base_lr (the learning rate, --lr) must be a finite number above 0, such as "
                             f"{LR_AFTER[self.head_init]:g}; got {lr!r}")

    def chosen_base_lr(self) -> float:
        """The ``base_lr`` ``fine_tune`` gets (unless the LR finder chooses): the field, else the rate for
        how the head starts (a head that starts good only needs polishing, a random one real training)."""
        return self.base_lr if self.base_lr is not None else LR_AFTER[self.head_init]

    def to_dict(self) -> dict:
        """Plain JSON values, for an export's ``meta.json``."""
        return asdict(self) | {"preprocessing": self.preprocessing.to_dict()}


@dataclass
class TrainingResult:
    """What a run has made so far: ``TrainingRun.steps()`` fills it in, step by step (each field
    says after which step it is set; None before)."""

    recipe: Recipe
    start: float = field(default_factory=time.perf_counter)  # perf_counter() when the run began
    dls: DataLoaders | None = None  # "data"
    learn: VisionLearner | None = None  # "model"
    frozen_phase: FrozenPhase | None = None  # "features": the cached features and the head's learner
    lr_found: LRFindResult | None = None  # "lr_find"
    base_lr: float | None = None  # "lr_find", else "fine_tune": the rate fine_tune got
    train_s: float | None = None  # "fine_tune": seconds from the start to the end of training
    interp: ClassificationInterpretation | None = None  # "report": the validation photos' predictions
    report: dict | None = None  # "report": the figures (valid_error, base_lr, timings ...)

    def export(self, folder: str | Path, half: bool = False, onnx: bool = True, int8: bool = False) -> Path:
        """Export the trained model with the report's figures and the recipe in ``meta.json`` (see
        ``serving.export``: the ONNX graph with ``onnx``, an int8 copy of it with ``int8``)."""
        from .serving.export import export

        if self.report is None:
            raise ValueError("export: the run has not finished (run every step of TrainingRun.steps() first)")
        rep = self.report
        return export(self.learn, folder, half=half, onnx=onnx, int8=int8, extra={
            "valid_error": rep["valid_error"], "n_train": rep["n_train"], "n_valid": rep["n_valid"],
            "recipe": self.recipe.to_dict() | {"base_lr": self.base_lr}})


@dataclass
class TrainingRun:
    """One run of ``recipe`` on ``data``: ``steps()`` carries it out, filling a ``TrainingResult``.

    Args:
        data: what ``DataLoaders.from_path`` takes (the full download, a sample folder, a CSV ...).
        recipe: the choices.
        progress: progress bars and a line per epoch on the console.
        cbs: more callbacks for both learners (the head's and the whole model's), e.g. a web
            page's progress bar.
        on_features: called with the fraction done while the body's features are computed.
    """

    data: str | Path
    recipe: Recipe = field(default_factory=Recipe)
    progress: bool = True
    cbs: list = field(default_factory=list)
    on_features: Callable[[float], None] | None = None

    def plan(self) -> list[str]:
        """The names of the steps ``steps()`` will run, in order."""
        r = self.recipe
        features = r.cache_features and (r.freeze_epochs > 0 or r.head_init == "lda" or r.find_lr)
        return ["data", "model"] + ["features"] * features + ["lr_find"] * r.find_lr + ["fine_tune", "report"]

    def steps(self) -> Iterator[tuple[str, TrainingResult]]:
        """Run the recipe, yielding ``(name, result)`` once each step is done (see ``plan``): "data",
        "model", "features" (when the frozen phase runs on cached features), "lr_find" (with
        ``find_lr``), "fine_tune" and "report". ``result`` is one ``TrainingResult``, filled in as
        the steps go."""
        import torch

        from .data.loaders import DataLoaders
        from .learning.fine_tune import vision_learner
        from .learning.frozen_phase import FrozenPhase

        r, result = self.recipe, TrainingResult(self.recipe)
        torch.manual_seed(r.seed)
        result.dls = DataLoaders.from_path(self.data, valid_pct=r.valid_pct, preprocessing=r.preprocessing,
                                           batch_size=r.batch_size, num_workers=r.workers, seed=r.seed)
        yield "data", result
        # With a cached frozen phase the body's BatchNorm must keep its statistics: then the body is
        # a fixed function and its features can be stored.
        learn = result.learn = vision_learner(result.dls, r.arch, progress=self.progress,
                                              train_bn=not r.cache_features, cbs=list(self.cbs))
        if r.mixed_precision:
            learn.to_fp16()
        yield "model", result
        if "features" in self.plan():
            key = _plain_views_key(learn, r)
            result.frozen_phase = FrozenPhase(learn, r.views, valid_views=2, on_progress=self.on_features,
                                              reuse=_PLAIN_VIEWS.get(key, min(r.views, 2)))
            _PLAIN_VIEWS.put(key, result.frozen_phase.cache)
            for cb in self.cbs:
                result.frozen_phase.head.add_cb(cb)
            yield "features", result
        result.base_lr = r.chosen_base_lr()
        if r.find_lr:
            result.lr_found = (result.frozen_phase.head if result.frozen_phase else learn).lr_find()
            result.base_lr = result.lr_found.suggestions["valley"]
            yield "lr_find", result
        if r.head_init == "lda":  # without the cache: one pass over the photos as validation sees them
            (result.frozen_phase or FrozenPhase(learn, augment=False)).start_head("lda")
        learn.fine_tune(r.epochs, base_lr=result.base_lr, freeze_epochs=r.freeze_epochs,
                        frozen_phase=result.frozen_phase)
        result.train_s = time.perf_counter() - result.start
        yield "fine_tune", result
        result.report = self._report(result)
        yield "report", result

    def _report(self, result: TrainingResult) -> dict:
        """The figures of a trained run (and ``result.interp``, the validation photos' predictions)."""
        from .learning.interpret import ClassificationInterpretation
        from .metrics import error_rate

        learn, frozen, dls = result.learn, result.frozen_phase, result.dls
        cache = frozen.cache if frozen is not None else None
        if cache is not None and cache.valid_mirror is not None and self.recipe.epochs == 0:
            # The body never changed, so the cached features of the validation photos (and of their
            # mirror images) are what it would compute again: score them without another pass.
            (logits, targets), (plain, _) = frozen.preds(tta=True), frozen.preds(tta=False)
        else:
            logits, targets = learn.get_preds("valid", activation=None, tta=True)
            plain, _ = learn.get_preds("valid", activation=None)
        result.interp = ClassificationInterpretation(logits, targets, dls.vocab, dls)
        return {
            "valid_error": float(error_rate(result.interp.probs, result.interp.targets)),
            "valid_error_no_tta": float(error_rate(plain, targets)),
            "train_s": result.train_s,
            "total_s": time.perf_counter() - result.start,
            "n_train": len(dls.train.dataset),
            "n_valid": len(dls.valid.dataset),
            "valid_name": dls.valid_name,
            "base_lr": result.base_lr,
            "cache_s": cache.seconds if cache is not None else None,
            "n_cached": cache.n_images if cache is not None else None,
            "n_reused": cache.n_reused if cache is not None else None,  # of n_cached, kept from an earlier run
            "most_confused": result.interp.most_confused(min_val=1)[:8],
        }


class _PlainViews:
    """The features free of randomness (views 0 and 1, the validation photos and their mirrors) of
    the last few runs, for the next run of the same photos through the same body.

    A pretrained body, frozen, in eval mode, is a fixed function: a second run that differs only in
    its seed, its rates or its epochs would compute exactly the same features for these views again
    (``Recipe()`` on the sample: 13 of its 14 s). Each entry is keyed by everything that shapes
    them (``_plain_views_key``): a changed photo file, another split, preprocessing, batch size or
    body (its weights are hashed) computes them afresh. Only the random views (``views`` above 2)
    are computed every time.
    """

    def __init__(self, max_entries: int = 2):
        self.max_entries, self._entries, self._lock = max_entries, {}, threading.Lock()

    def get(self, key: tuple | None, n_plain: int) -> FeatureCache | None:
        if key is None:
            return None
        with self._lock:
            cache = self._entries.get(key)
        return cache if cache is not None and cache.n_views >= n_plain else None

    def put(self, key: tuple | None, cache: FeatureCache) -> None:
        from .learning.features import FeatureCache

        if key is None:
            return
        n_plain = min(cache.n_views, 2)
        with self._lock:
            kept = self._entries.pop(key, None)
            if kept is not None and kept.n_views > n_plain:
                self._entries[key] = kept  # it already holds more plain views
            else:
                self._entries[key] = FeatureCache(cache.train[:n_plain].clone(), cache.train_y, cache.valid,
                                                  cache.valid_y, cache.valid_mirror)
            while len(self._entries) > self.max_entries:  # the oldest goes first
                del self._entries[next(iter(self._entries))]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


_PLAIN_VIEWS = _PlainViews()


def forget_features() -> None:
    """Drop the features kept from earlier runs in this process (the next run computes them all)."""
    _PLAIN_VIEWS.clear()


def _plain_views_key(learn: VisionLearner, r: Recipe) -> tuple | None:
    """What the views free of randomness depend on: the photos (paths in order, with their files'
    size, modification and change times and inode), their labels, the body (its name and a hash of
    its weights), the preprocessing, the batches, the precision and the device. Not the seed, the
    rates, the epochs or the random augmentation. None when a photo cannot be looked at (it then goes
    to the loaders' own warning): that run keeps nothing and reuses nothing."""
    import hashlib

    import torch

    dls, photos = learn.dls, []
    try:
        for ds in (dls.train.dataset, dls.valid.dataset):
            files = tuple((str(p), st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)
                          for p in ds.items for st in (os.stat(p),))
            photos.append((files, tuple(ds.labels)))
    except OSError:
        return None
    weights = hashlib.blake2b(digest_size=16)
    for name, tensor in learn.unwrapped.body.state_dict().items():
        weights.update(name.encode())
        weights.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy())  # no copy
    return (r.arch, weights.hexdigest(), repr(dls.preprocessing), dls.batch_size, r.mixed_precision, str(dls.device),
            tuple(dls.vocab), *photos)


def run_recipe(data: str | Path, recipe: Recipe | None = None, export: str | Path | None = None, half: bool = False,
               progress: bool = True) -> dict:
    """Train on ``data`` with ``recipe`` (default ``Recipe()``), export when asked; return the report."""
    run = TrainingRun(data, recipe if recipe is not None else Recipe(), progress=progress)
    for _step, result in run.steps():  # noqa: B007 (the last step's result is the whole run's)
        pass
    if export is not None:
        result.export(export, half=half)
    return result.report
