"""Result images as files that are complete before anyone can read them, never rewritten, and never copied.

Handed a numpy image, Gradio encodes it and writes it into its cache under a name made from the
picture's content, *every time*: two visitors who get the same preview (the same example photo,
say) have the second write truncate and refill the file while the first one's browser is still
downloading it, and that download breaks ("Too little data for declared Content-Length"). Handed a
file path instead, Gradio serves a file that is already in its cache (the upload folder) as it is,
and copies any other file there first (hashing it, then copying it under a temporary name). So every
result image goes through ``image_file``: encoded here once, written straight into Gradio's cache
under a name no other request uses, under a temporary name and renamed into place. Gradio records
it like its own copies, and the demo's sweep (``sweeper.py``) deletes it with them after
``--delete-after`` seconds. (Written elsewhere, each answer cost a second write of each image:
Gradio's hash and copy.)
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import numpy as np

from .uploads import upload_folder

__all__ = ["image_file", "file_copy", "results_folder", "JPEG_QUALITY"]

JPEG_QUALITY = 85  # the previews are 224x224: smaller files than 90, and no visible difference at that size


def results_folder() -> Path:
    """Where result files go: Gradio's cache, which is its upload folder (created if missing)."""
    folder = upload_folder()
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _fresh(name: str) -> tuple[Path, Path]:
    """A new file's final path, ``name`` in a folder of its own (the page's download button shows
    the name), and the temporary name it is written under."""
    own = results_folder() / uuid.uuid4().hex
    own.mkdir()
    return own / name, own / f".{name}.tmp"


def image_file(image: np.ndarray, quality: int = JPEG_QUALITY, name: str = "answer") -> str:
    """Write an (H, W, 3) uint8 image as ``name``.jpg in a fresh folder in Gradio's cache,
    atomically; return its path."""
    from PIL import Image

    final, tmp = _fresh(f"{name}.jpg")
    try:
        Image.fromarray(np.ascontiguousarray(image, dtype=np.uint8)).save(tmp, format="JPEG", quality=quality)
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return str(final)


def file_copy(path: str | Path) -> str:
    """A copy of the server's file ``path`` (an example photo) in Gradio's cache, in a fresh folder
    under its own name, written atomically; returns the copy's path. Gradio hands it to the page,
    which shows its name and can send it back like an upload."""
    final, tmp = _fresh(Path(path).name)
    try:
        shutil.copyfile(path, tmp)
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return str(final)
