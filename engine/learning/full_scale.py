"""The chapter's whole flow, at the size the hardware allows: how good can the classifier get?

The book ends its chapter by improving a first model step by step, on a random 80% of the 7,390
photos. This module
runs the same steps with the engine, as a list of stages:

    1. baseline     a pretrained body, frozen, with a new head trained for a few epochs
    2. unfrozen     the same model unfrozen; the LR finder picks the top rate; one-cycle epochs with
                    discriminative rates, ``slice(top / 100, top)``
    3. larger       a larger body at a higher resolution, in mixed precision: head first, then
                    unfrozen with discriminative rates (the LR finder again)

Each stage reports its error on the validation split: with the full download that is the official
test split (3,669 photos; training on trainval's 3,680), with the sample its 74 held-out photos.

Two presets (``PRESETS``): ``"full"`` for a GPU and the full download, and ``"tiny"``, the same
steps with one epoch each on tiny images and at most 4 training and 1 validation photo per breed
(taken from the data's own split, so the official lists still decide which photo goes where): it
proves the path runs, in about a minute on a CPU, whatever the data (the tests, and notebook 08
where there is no GPU; its errors mean nothing). ``choose_preset`` picks by
the hardware and the data; ``python -m engine.train --preset full`` runs ``"full"`` from the shell.
Unlike ``engine/recipe.py`` (the small, cached recipe the demo's model comes
from), every epoch here runs the whole network with random augmentation, as the book does.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..data.preprocessing import Preprocessing

__all__ = ["BOOK_ERROR", "PRESETS", "FullScale", "Stage", "StageResult", "choose_preset", "default_workers",
           "format_table", "run_full_scale"]

# The book's own figure, for the table: resnet34 unfrozen with discriminative rates (its best
# resnet34 result), on a random 20% of all the photos, not the official test split.
BOOK_ERROR = 0.054


@dataclass(frozen=True)
class Stage:
    """One step of the flow.

    Args:
        name: what the table calls it.
        arch: the body (see ``models.ARCHS``).
        size: the final image size (the presize stays ``Preprocessing``'s).
        freeze_epochs: one-cycle epochs of the head alone, body frozen, at ``head_lr``.
        epochs: then unfrozen one-cycle epochs at ``slice(top / 100, top)``, ``top`` from the LR finder.
        mixed_precision: bfloat16 on the CPU, fp16 with a gradient scaler on a GPU.
        new_model: start from a fresh pretrained body; False continues the previous stage's model.
    """

    name: str
    arch: str
    size: int
    freeze_epochs: int
    epochs: int
    mixed_precision: bool = False
    new_model: bool = True


@dataclass(frozen=True)
class FullScale:
    """A preset: the stages, and what they share."""

    stages: tuple[Stage, ...]
    head_lr: float = 3e-3
    batch_size: int = 64
    lr_find_iters: int = 100
    workers: int | None = None  # DataLoader processes; None: up to 8, as the machine allows
    seed: int = 42
    per_breed: tuple[int, int] | None = None  # at most (training, validation) photos per breed; None: all
    description: str = ""


PRESETS: dict[str, FullScale] = {
    "full": FullScale(
        stages=(Stage("baseline: head only", "efficientnet_lite0", 224, freeze_epochs=4, epochs=0),
                Stage("unfrozen, discriminative rates", "efficientnet_lite0", 224, 0, 8, new_model=False),
                Stage("larger body, 288 px, mixed precision", "efficientnet_lite2", 288, 3, 8,
                      mixed_precision=True)),
        description="for a GPU and the full download: 23 epochs over the 3,680 trainval photos"),
    "tiny": FullScale(
        stages=(Stage("baseline: head only", "efficientnet_lite0", 64, freeze_epochs=1, epochs=0),
                Stage("unfrozen, discriminative rates", "efficientnet_lite0", 64, 0, 1, new_model=False),
                Stage("larger body, 96 px, mixed precision", "efficientnet_lite2", 96, 1, 1,
                      mixed_precision=True)),
        batch_size=16, lr_find_iters=8, per_breed=(4, 1),
        description="a smoke run of the path: one epoch a step, tiny images, 5 photos per breed"),
}


@dataclass
class StageResult:
    """What a stage gave: its error on the validation split and its time."""

    stage: Stage
    error: float
    seconds: float
    top_lr: float | None = None  # the LR finder's pick for the unfrozen epochs
    n_train: int = 0
    n_valid: int = 0
    valid_name: str = "valid"
    body_moved: bool = False  # whether the body's weights changed during the stage (False: it stayed frozen)


def choose_preset(data: str | Path, device=None) -> str:
    """``"full"`` on a GPU with the full download (``images/`` + ``annotations/``), else ``"tiny"``."""
    import torch

    data = Path(data)
    full_download = ((data / "images").is_dir() and (data / "annotations").is_dir()
                     and not (data / "labels.csv").exists())
    gpu = torch.device(device).type == "cuda" if device is not None else torch.cuda.is_available()
    return "full" if gpu and full_download else "tiny"


def run_full_scale(data: str | Path, plan: FullScale | str = "full", progress: bool = True,
                   show: Callable[[str], None] = print, device: str | None = None) -> tuple[list[StageResult], object]:
    """Run the plan's stages on ``data`` (what ``DataLoaders.from_path`` takes); returns the results
    and the last stage's learner (to export or interpret)."""
    import torch

    from ..metrics import error_rate
    from .fine_tune import vision_learner

    plan = PRESETS[plan] if isinstance(plan, str) else plan
    device = torch.device(device) if device is not None else None
    workers = plan.workers if plan.workers is not None else default_workers(device)
    results, learn, dls = [], None, None
    for stage in plan.stages:
        start = time.perf_counter()
        torch.manual_seed(plan.seed)
        if stage.new_model or learn is None:
            dls = _loaders(data, plan, stage.size, workers, device)
            learn = vision_learner(dls, stage.arch, progress=progress, lr=plan.head_lr)
        if stage.mixed_precision:
            learn.to_fp16()
        show(f"{stage.name}: {stage.arch} at {stage.size} px, {stage.freeze_epochs} frozen + {stage.epochs} "
             f"unfrozen epoch(s) on {len(dls.train.dataset)} photos ({learn.dls.device})")
        body_before = _fingerprint(learn)
        if stage.freeze_epochs:
            learn.freeze()
            learn.fit_one_cycle(stage.freeze_epochs, plan.head_lr)
        top = None
        if stage.epochs:
            learn.unfreeze()
            found = learn.lr_find(num_it=plan.lr_find_iters)
            top = min(max(found.suggestions["valley"], 1e-6), 1e-2)  # a sweep on little data can stray
            show(f"  the LR finder after unfreezing suggests {top:.1e}: training at slice({top / 100:.1e}, {top:.1e})")
            learn.fit_one_cycle(stage.epochs, slice(top / 100, top))
        probs, targets = learn.get_preds("valid")
        error = float(error_rate(probs, targets))
        results.append(StageResult(stage, error, time.perf_counter() - start, top, len(dls.train.dataset),
                                   len(dls.valid.dataset), dls.valid_name,
                                   body_moved=not torch.equal(body_before, _fingerprint(learn))))
        show(f"  error on the {len(dls.valid.dataset)} {dls.valid_name} photos: {error:.2%}")
    return results, learn


def _loaders(data, plan: FullScale, size: int, workers: int, device):
    """The data at ``size``; with ``plan.per_breed``, only the first photos of each breed in each split."""
    from ..data.loaders import DataLoaders
    from ..data.pets import open_data

    kwargs = dict(preprocessing=Preprocessing(size=size), batch_size=plan.batch_size, num_workers=workers,
                  seed=plan.seed, device=device)
    if plan.per_breed is None:
        return DataLoaders.from_path(data, **kwargs)
    found = open_data(data, seed=plan.seed)
    split = []
    for indices, cap in zip(found.split, plan.per_breed):
        seen: dict[str, int] = {}
        kept = []
        for i in sorted(indices, key=lambda i: str(found.items[i])):
            if seen.get(found.labels[i], 0) < cap:
                seen[found.labels[i]] = seen.get(found.labels[i], 0) + 1
                kept.append(i)
        split.append(kept)
    dls = DataLoaders.from_items(found.items, found.labels, tuple(split), **kwargs)
    dls.source, dls.valid_name, dls.notes = found.description, found.valid_name, found.notes + dls.notes
    return dls


def _fingerprint(learn):
    """A copy of the body's first weights: enough to see whether the body trained."""
    import torch

    first = next(learn.unwrapped.body.parameters(), None)
    return first.detach().float().cpu().clone() if first is not None else torch.zeros(0)


def format_table(results: list[StageResult], book: bool = True) -> str:
    """The results as a text table, with the book's figure beside them."""
    rows = [("stage", "body", "size", "epochs", "minutes", "error")]
    for r in results:
        s = r.stage
        rows.append((s.name, s.arch, str(s.size), f"{s.freeze_epochs}+{s.epochs}", f"{r.seconds / 60:.1f}",
                     f"{r.error:.1%}"))
    if book:
        rows.append(("the book, for comparison", "resnet34", "224", "", "", f"~{BOOK_ERROR:.1%}"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    if results:
        r = results[-1]
        lines.append(f"(errors on the {r.n_valid} {r.valid_name} photos, trained on {r.n_train}; the book's figure "
                     "is on a random 20% of all 7,390 photos, not the official test split)")
    return "\n".join(lines)


def default_workers(device=None) -> int:
    """DataLoader processes: one per core up to 8 where a GPU waits for the photos, none on a small CPU
    machine (there the workers would only take cores from the training itself)."""
    import os

    import torch

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    cuda = device.type == "cuda" if device is not None else torch.cuda.is_available()
    return max(1, min(8, cores)) if cuda else (min(8, cores) if cores > 2 else 0)
