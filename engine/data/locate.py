"""Where the pet photos are: one place that every lesson, test, script and the demo asks.

``pets_path()`` looks, in order, at an explicit path, at the ``PETS_SAMPLE`` environment variable
(the 370-photo sample CI uses), and at the cache folder: the full dataset, else the sample built
from it. When nothing is there it says how to get some. A wrong setting is an error, never a silent
fall-through to other data.

The lessons want the small, fixed set of 370 photos their asserted numbers were checked on:
``pets_sample()`` gives that folder, and when only the full download is there it picks the
sample out of it first (``engine.data.pets.build_sample``; hard links, a second or two).

Getting the photos is the command's job (``python -m engine.datasets``, in ``engine/datasets.py``);
this module only finds them. Cheap on purpose (no numpy, PIL or torch): the command imports it
before anything heavy loads.
"""

from __future__ import annotations

import os
from pathlib import Path

from .files import IMAGE_EXTENSIONS

__all__ = ["GET_DATA_COMMAND", "default_cache_dir", "full_dataset_dir", "sample_dir", "download_complete",
           "pets_path", "pets_sample"]

GET_DATA_COMMAND = "python -m engine.datasets sample"
_HOW_TO_GET_DATA = (
    "To get the pet photos, run\n"
    f"    {GET_DATA_COMMAND}\n"
    "It downloads the Oxford-IIIT Pet dataset (~800 MB, resumable) into {cache} and picks out the\n"
    "370-photo sample the lessons use (set PETBREEDS_HOME to keep the cache elsewhere)."
)


def default_cache_dir() -> Path:
    """``$PETBREEDS_HOME``, else ``$XDG_CACHE_HOME/petbreeds``, else ``~/.cache/petbreeds``."""
    if os.environ.get("PETBREEDS_HOME"):
        return Path(os.environ["PETBREEDS_HOME"]).expanduser()
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]).expanduser() / "petbreeds"
    return Path.home() / ".cache" / "petbreeds"


def full_dataset_dir() -> Path:
    """Where the full download lives in the cache."""
    return default_cache_dir() / "oxford-iiit-pet"


def sample_dir() -> Path:
    """Where the sample picked out of the full download lives in the cache."""
    return default_cache_dir() / "oxford-pets-sample"


def download_complete(dest: Path) -> bool:
    """``dest/images`` holds photos: the download moves ``images/`` into place only once its archive is
    extracted whole (``engine.datasets``), so a folder with photos in it is a finished download."""
    images = dest / "images"
    return images.is_dir() and any(p.suffix.lower() in IMAGE_EXTENSIONS for p in images.iterdir())


def _check_pets_folder(folder: Path, source: str, fix: str) -> Path:
    """Return ``folder`` if it holds ``images/``; ``source`` says where the path came from."""
    if not folder.is_dir():
        problem = f"{folder} does not exist or is not a folder"
    elif not (folder / "images").is_dir():
        problem = f"{folder} has no images/ folder inside"
        if folder.name == "images":
            problem += " (it looks like the images/ folder itself: use its parent)"
    else:
        return folder
    raise FileNotFoundError(
        f"{source}: {problem}. Expected a folder holding images/<breed>_<n>.jpg, like "
        f"oxford-pets-sample/. {fix}"
    )


def pets_path(path: str | os.PathLike | None = None) -> Path:
    """The folder that contains ``images/``: ``path``, else ``$PETS_SAMPLE``, else the cache (the full
    dataset, else the sample built from it)."""
    if path is not None:
        return _check_pets_folder(Path(path).expanduser(), f"pets_path({str(path)!r})",
                                  "Pass the folder that contains images/.")
    # An empty PETS_SAMPLE counts as unset, as in the shell's ${PETS_SAMPLE:-...}.
    sample = os.environ.get("PETS_SAMPLE")
    if sample:
        return _check_pets_folder(Path(sample).expanduser(), f"PETS_SAMPLE={sample}",
                                  "Point the PETS_SAMPLE environment variable at the sample folder, "
                                  "or unset it to use the downloaded dataset.")
    full = full_dataset_dir()
    if download_complete(full):
        return full
    from .pets import sample_is_complete  # imported here: it loads PIL

    if sample_is_complete(sample_dir()):
        return sample_dir()
    raise FileNotFoundError(
        "No pet photos found: PETS_SAMPLE is not set and neither the full dataset nor the sample is in "
        f"{default_cache_dir()}.\n" + _HOW_TO_GET_DATA.format(cache=full)
    )


def pets_sample(path: str | os.PathLike | None = None, show=print) -> Path:
    """The folder of the 370-photo sample (``images/`` + ``labels.csv``) that the lessons use.

    ``pets_path(path)`` finds the photos. A folder with a ``labels.csv`` is used as it is (the
    sample itself, through ``PETS_SAMPLE`` or the cache). From the full download, the sample is
    picked out once into the cache (``engine.data.pets.build_sample``) and reused afterwards; ``show``
    says which photos are used.
    """
    from .pets import build_sample, sample_is_complete  # imported here: it loads PIL

    root = pets_path(path)
    if (root / "labels.csv").is_file():
        return root
    dest = sample_dir()
    if not sample_is_complete(dest):
        show(f"{root} is the full Oxford-IIIT Pet dataset; the lessons use its canonical 370-photo sample "
             f"(10 photos per breed), picked out of it now.")
        build_sample(root, dest, show=show)
    show(f"Using the 370-photo sample in {dest}, picked out of the full dataset in {root}.")
    return dest
