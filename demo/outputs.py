"""Result images as files that are complete before anyone can read them, and never rewritten.

Handed a numpy image, Gradio encodes it and writes it into its cache under a name made from the
picture's content, *every time*: two visitors who get the same preview (the same example photo,
say) have the second write truncate and refill the file while the first one's browser is still
downloading it, and that download breaks ("Too little data for declared Content-Length"). Handed a
file path instead, Gradio copies the file into its cache under a temporary name and renames it,
and never rewrites a copy that is already there. So every result image goes through
``image_file``: encoded here, under a name no other request uses, written under a temporary name
and renamed into place. These staging files are only needed until Gradio has copied them, and
are deleted a minute later.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import threading
import time
import uuid
from pathlib import Path

import numpy as np

__all__ = ["image_file", "file_copy", "staging_folder"]

KEEP_S = 60.0  # how long a staging file lives: Gradio copies it within the same request
_folder: Path | None = None
_lock = threading.Lock()
_last_sweep = 0.0


def staging_folder() -> Path:
    """This process's folder for result files (created on first use, removed at exit)."""
    global _folder
    with _lock:
        if _folder is None:
            _folder = Path(tempfile.mkdtemp(prefix="petbreeds-results-"))
            atexit.register(shutil.rmtree, _folder, ignore_errors=True)
        return _folder


def _sweep(folder: Path) -> None:
    global _last_sweep
    now = time.time()
    if now - _last_sweep < KEEP_S / 4:
        return
    _last_sweep = now
    for path in folder.iterdir():
        try:
            if now - path.stat().st_mtime > KEEP_S:
                shutil.rmtree(path) if path.is_dir() else path.unlink()
        except OSError:  # already gone
            pass


def image_file(image: np.ndarray, quality: int = 90) -> str:
    """Write an (H, W, 3) uint8 image as a JPEG under a fresh name, atomically; return its path."""
    from PIL import Image

    folder = staging_folder()
    _sweep(folder)
    name = uuid.uuid4().hex
    final, tmp = folder / f"{name}.jpg", folder / f".{name}.tmp"
    Image.fromarray(np.ascontiguousarray(image, dtype=np.uint8)).save(tmp, format="JPEG", quality=quality)
    os.replace(tmp, final)
    return str(final)


def file_copy(path: str | Path) -> str:
    """A copy of the server's file ``path`` (an example photo), in a fresh folder under its own name,
    written atomically; returns the copy's path. Gradio hands it to the page, which shows its name and
    can send it back like an upload (Gradio's cache, where the copy goes, is the upload folder)."""
    folder = staging_folder()
    _sweep(folder)
    own = folder / uuid.uuid4().hex
    own.mkdir()
    final, tmp = own / Path(path).name, own / ".copy.tmp"
    shutil.copyfile(path, tmp)
    os.replace(tmp, final)
    return str(final)
