"""Debugging a data pipeline: walk one sample and one small batch through every step.

``summary(dls)`` prints each step's input and output (type, shape, dtype) in order. When a step
fails it stops there and says which step, which file, the error, and a hint, instead of the long
traceback a DataLoader worker would give in the middle of training. The classic failure: no
resize item transform, so images of different sizes cannot be collated into one batch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from .loaders import collate
from .preprocessing import Preprocessing

__all__ = ["StepRecord", "PipelineSummary", "describe", "summary"]

HINTS = {
    "collate": f"add an item transform that resizes every image to the same size (presize={Preprocessing.presize})",
    "open image": "the file is not a readable image: run engine.data.items.verify_images() on the folder "
                  "and remove or replace the files it lists",
    "presize": "check the presize settings (size, method) and that the image has pixels",
    "augment": "check the BatchAugment's specs (the Preprocessing's size, the AugmentOptions' min_scale and "
               "max_zoom) and that the batch is uint8 (batch, 3, H, W)",
}


def describe(x: Any) -> str:
    """A short type/shape/dtype description of a value flowing through the pipeline."""
    if isinstance(x, torch.Tensor):
        return f"Tensor{tuple(x.shape)} {str(x.dtype).replace('torch.', '')} on {x.device.type}"
    if isinstance(x, np.ndarray):
        return f"ndarray{x.shape} {x.dtype}"
    if isinstance(x, Image.Image):
        return f"PIL.Image {x.mode} {x.size[0]}x{x.size[1]}"
    if isinstance(x, Path):
        return f"Path {x.name}"
    if isinstance(x, (tuple, list)):
        return "(" + ", ".join(describe(v) for v in x) + ")"
    return type(x).__name__


@dataclass
class StepRecord:
    """One step: its name, what went in and came out (or the error)."""

    name: str
    input: str
    output: str | None = None
    error: str | None = None


@dataclass
class PipelineSummary:
    """What ``summary`` found. ``ok`` is False if a step failed; ``failed_step`` names it."""

    steps: list[StepRecord] = field(default_factory=list)
    failed_step: str | None = None
    error: str | None = None
    hint: str | None = None
    files: list[str] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.failed_step is None

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    def __repr__(self) -> str:
        return self.text


def _hint_for(step: str) -> str:
    for key, hint in HINTS.items():
        if step.startswith(key):
            return hint
    return "read the error above; run this step by hand on the file to reproduce it"


def summary(dls, n: int = 4, split: str = "train", show: Callable[[str], None] | None = print) -> PipelineSummary:
    """Run ``n`` items of ``dls`` (split "train" or "valid") through each step; print and return what happened."""
    loader = dls.valid if split == "valid" else dls.train
    ds = loader.dataset
    rep = PipelineSummary()

    def say(line: str) -> None:
        rep.lines.append(line)
        if show is not None:
            show(line)

    def run(name: str, fn: Callable, x: Any, files: list[str]) -> tuple[bool, Any]:
        rec = StepRecord(name, describe(x))
        rep.steps.append(rec)
        try:
            out = fn(x)
        except Exception as err:  # report any failure, whatever its type, with the step that raised it
            rec.error = f"{type(err).__name__}: {err}"
            rep.failed_step, rep.error, rep.hint, rep.files = name, rec.error, _hint_for(name), files
            say(f"  {name:<22} {rec.input}  ->  FAILED")
            say("")
            say(f"Step '{name}' failed on {', '.join(files)}")
            say(f"  error: {rec.error}")
            say(f"  hint:  {rep.hint}")
            return False, None
        rec.output = describe(out)
        say(f"  {name:<22} {rec.input}  ->  {rec.output}")
        return True, out

    n = min(n, len(ds))
    say(f"Data pipeline summary: {split} split, {len(ds)} items, {len(dls.vocab)} classes, device {dls.device}")
    samples = []
    for i in range(n):
        path = ds.items[i]
        label = ds.labels[i]
        if i == 0:
            say(f"One item: {path.name}  label {dls.vocab[label]!r} -> {label}")
        x = path
        for name, step in ds.steps():
            if i == 0:
                ok, x = run(name, step, x, [path.name])
            else:  # the other items of the batch run quietly, but a failure is still reported
                try:
                    x = step(x)
                    ok = True
                except Exception:
                    say(f"Item {i} ({path.name}):")
                    ok, x = run(name, step, x, [path.name])
            if not ok:
                return rep
        samples.append((x, label))

    say(f"A batch of {n}:")
    names = [f"{p.name} {describe(s[0])}" for p, s in zip(ds.items[:n], samples)]
    ok, batch = run("collate", collate, samples, names)
    if not ok:
        return rep
    ok, batch = run(f"to device ({dls.device})", lambda b: (b[0].to(dls.device), b[1].to(dls.device)), batch,
                    names)
    if not ok:
        return rep
    xb, _ = batch
    ok, _ = run("augment (1 grid_sample)", lambda x: loader.augment(x, train=loader.random), xb, names)
    if ok:
        say(f"OK: all {len(rep.steps)} steps worked. {loader.augment!r}")
    return rep
