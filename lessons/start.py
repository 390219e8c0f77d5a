"""What the first cell of every lesson does once ``import engine`` works: the photos and the device.

Each notebook's first cell first makes the engine importable, in whichever of three settings the
notebook runs (see ``00_start_here.ipynb``, "Setup"):

* **a clone** of the repository: the notebook sits in ``lessons/``, one folder below ``engine/``;
  the cell puts the clone's root on ``sys.path`` (no install needed);
* **an installed package** (``pip install`` of the repository or of a wheel, then
  ``python -m lessons copy DEST``): ``import engine`` just works;
* **a fresh hosted notebook** (a cloud GPU notebook holding only this notebook file): the cell runs
  ``pip install SOURCE``, where ``SOURCE`` is what the student set once (a git URL of their copy, or
  a wheel).

Then it calls ``start()``, which

1. finds the photos (``engine.data.locate.pets_sample()``) and, when there are none yet, gets them the
   way ``python -m engine.datasets sample`` does (the full dataset is downloaded once, ~800 MB, and
   the 370-photo sample is picked out of it);
2. prints the device the lessons will use: the GPU when there is one, else the CPU.

Errors that a student can fix are ``SetupError``: Jupyter shows them as one line that says what
to do, not as a traceback.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

__all__ = ["SetupError", "start", "describe_device", "find_photos"]


class SetupError(RuntimeError):
    """A setup problem the student can fix; IPython shows it as its one-line message."""

    def _render_traceback_(self) -> list[str]:  # IPython's hook: these lines replace the traceback
        return [f"SetupError: {self}"]


def find_photos(show=print) -> Path:
    """The 370-photo sample's folder; when there are no photos at all, get them first, as
    ``python -m engine.datasets sample`` does (a download the first time)."""
    from engine.data.locate import pets_sample
    from engine.datasets import main as datasets_command

    try:
        return pets_sample(show=show)
    except FileNotFoundError as err:
        if os.environ.get("PETS_SAMPLE"):  # a wrong setting is reported, never replaced by a download
            raise SetupError(str(err)) from None
    show("No pet photos here yet: getting them now, as `python -m engine.datasets sample` does "
         "(a one-time download of about 800 MB).")
    if datasets_command(["sample"]) != 0:
        raise SetupError("could not get the pet photos (the reason is printed above). Fix it, or run "
                         "`python -m engine.datasets sample` in a terminal, then run this cell again.")
    return pets_sample(show=show)


def describe_device() -> str:
    """One line: the device the lessons train on, and what that means for mixed precision."""
    import torch

    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        return (f"cuda: {props.name}, {props.total_memory / 2**30:.0f} GiB (mixed precision in float16 with a "
                f"gradient scaler; the full-scale section in 08 runs at full size)")
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return (f"cpu: {cores} cores, no GPU (mixed precision in bfloat16; the notebooks keep to the 370-photo "
            f"sample and small sizes)")


def start(show=print) -> Path:
    """The setup every notebook runs after ``import engine`` works: returns the photos' folder."""
    import engine

    where = Path(engine.__file__).resolve().parent.parent
    show(f"petbreeds {engine.__version__} from {where}, Python {sys.version.split()[0]}")
    try:
        photos = find_photos(show=show)
        show(f"photos: {photos}")
        show(f"device: {describe_device()}")
    except ModuleNotFoundError as err:  # the package is here, some of what it needs is not
        raise SetupError(f"{err.name} is not installed for this Python ({sys.executable}): install petbreeds with its "
                         "dependencies (`pip install -e .` in the clone, or `pip install` of its wheel), then restart "
                         "the kernel.") from None
    return photos
