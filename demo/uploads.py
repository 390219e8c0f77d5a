"""Reading a visitor's photo safely: our code, not the web framework, decides what gets decoded.

Anything can arrive as an "image": a text file named ``.jpg``, half a JPEG, an empty file, an SVG
drawing, an animated GIF, or a decompression bomb (a 24 KB PNG can claim 14000 x 14000 pixels,
which takes 200 MB to 600 MB of memory to decode). ``read_photo`` checks, cheapest first:

1. the size of the file in bytes, against the server's upload limit;
2. its first bytes: empty? an SVG/XML text?
3. its header only (PIL reads the format, size and frame count without decoding any pixel),
   against the list of formats we accept and the pixel limits;
4. and only then decodes it, upright and in RGB, with the engine's loader.

The pixel limits keep one decode near 150 MB. A JPEG is decoded at 1/2, 1/4 or 1/8 of its size
straight from its compressed data (the engine's loader never needs more than the presize), so even
40 megapixels cost a few MB; every other format is decoded whole, at about 12 bytes a pixel through
the prediction (measured: a 40-megapixel PNG took 490 MB, 12 megapixels 141 MB). So JPEGs may have
up to ``MAX_PIXELS`` (40 megapixels), other formats ``MAX_PIXELS_WHOLE`` (12). And images above
``BIG_DECODE`` pixels are decoded one at a time (``decode``), so a dozen of them sent at once wait
for each other instead of multiplying the memory.

Before any of that, the file must be one the visitor may have sent: a file inside Gradio's upload
folder, or one of the server's own example photos (``allowed_files``). A payload can name any path
(an event that skips Gradio's preprocessing, as the photo input's does, receives it as sent), so a
path anywhere else is answered exactly like an upload that did not arrive: no preview, no hint of
whether such a file exists or how big it is.

Every refusal is an ``UploadRefused`` whose text is written for the visitor: what is wrong and what
to do. It never contains a path on the server.
"""

from __future__ import annotations

import logging
import os
import threading
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from engine.data.transforms import MAX_PIXELS

__all__ = ["UploadRefused", "PhotoInfo", "FORMATS", "upload_path", "upload_folder", "may_read", "check_upload",
           "decode", "read_photo", "NO_PHOTO", "NOT_ARRIVED", "MAX_PIXELS_WHOLE", "BIG_DECODE", "pixel_limit"]

log = logging.getLogger(__name__)

# Formats PIL may open here (JPEG includes cameras' MPO). Others are refused at the header: EPS, say,
# would run Ghostscript. PIL registers some of these formats only in init(), so run it now.
FORMATS = ("JPEG", "PNG", "GIF", "WEBP", "BMP", "TIFF")
Image.init()
MAX_PIXELS_WHOLE = 12_000_000  # formats decoded at full size (all but JPEG): about 141 MB through a prediction
BIG_DECODE = 4_000_000  # above this, one decode at a time
DECODE_WAIT_S = 60.0
_big_decodes = threading.BoundedSemaphore(1)
NO_PHOTO = "No photo yet: upload one (JPEG, PNG, WebP or GIF), take one with the webcam, or click an example."
NOT_ARRIVED = "The upload did not arrive completely: please upload the photo again."


class UploadRefused(ValueError):
    """A visitor's file cannot be used; ``str(err)`` is the message to show them."""


@dataclass
class PhotoInfo:
    """What the header says, before any decoding."""

    format: str
    width: int
    height: int
    frames: int = 1

    @property
    def notes(self) -> list[str]:
        """Things worth telling the visitor even though the photo can be used."""
        w, h, out = self.width, self.height, []
        if self.frames > 1:
            out.append(f"This is an animated {self.format} with {self.frames} frames: the first frame was used.")
        if max(w, h) > 4 * min(w, h):  # (a tiny photo gets its own verdict: prediction.TOO_SMALL_BELOW)
            out.append(f"The image is {w}x{h}, very {'wide' if w > h else 'tall'}: the model only sees its "
                       f"centre square ({min(w, h)}x{min(w, h)} pixels).")
        return out


def upload_path(value) -> Path | None:
    """The local file of an upload: a path (str or Path) or Gradio's file dict ``{"path": ...}``."""
    if isinstance(value, dict):
        value = value.get("path")
    if value is None or value == "":
        return None
    if not isinstance(value, (str, os.PathLike)):
        raise TypeError(f"an upload is a file path or Gradio's file dict, got {type(value).__name__}")
    return Path(value)


def upload_folder() -> Path:
    """Where Gradio stores uploads (and its cache): ``$GRADIO_TEMP_DIR``, else the system's temp/gradio."""
    from gradio.utils import get_upload_folder

    return Path(get_upload_folder()).resolve()


def may_read(path: Path, allowed: Sequence[Path]) -> bool:
    """Whether ``path``, links resolved, is inside one of the ``allowed`` folders or is one of its files."""
    try:
        real = path.resolve(strict=True)
    except (OSError, RuntimeError, ValueError):  # missing, a loop of links, a NUL in the name
        return False
    for entry in allowed:
        entry = Path(entry).resolve()
        if real == entry or (entry.is_dir() and real.is_relative_to(entry)):
            return True
    return False


def pixel_limit(fmt: str, max_pixels: int = MAX_PIXELS) -> int:
    """The most pixels an image of format ``fmt`` may have: JPEGs are decoded reduced, others whole."""
    return max_pixels if fmt in ("JPEG", "MPO") else min(max_pixels, MAX_PIXELS_WHOLE)


def _too_many_pixels(limit: int, width: int | None = None, height: int | None = None,
                     fmt: str | None = None) -> UploadRefused:
    # Without a size, PIL refused the header itself: past twice its own limit (about 179 megapixels).
    size = (f"is {width}x{height} = {width * height / 1e6:.0f} megapixels" if width else
            f"has over {2 * Image.MAX_IMAGE_PIXELS / 1e6:.0f} megapixels")
    kind = "" if fmt in (None, "JPEG", "MPO") else f" {fmt} images (JPEG photos up to {MAX_PIXELS / 1e6:.0f})"
    return UploadRefused(
        f"This image {size}; the demo refuses{kind or ' images'} over {limit / 1e6:.0f} megapixels before decoding "
        "them (a small file can hold a huge picture: a decompression bomb). Resize it and upload it again.")


def check_upload(path: Path, max_bytes: int, max_pixels: int = MAX_PIXELS) -> PhotoInfo:
    """Steps 1-3: size in bytes, first bytes, header. Raises ``UploadRefused``; decodes nothing."""
    n_bytes = path.stat().st_size
    if n_bytes == 0:
        raise UploadRefused("The file is empty (0 bytes): upload a photo.")
    if n_bytes > max_bytes:
        raise UploadRefused(f"The file is {n_bytes / 2**20:.1f} MB; this demo takes photos up to "
                            f"{max_bytes / 2**20:.0f} MB: upload a smaller one.")
    with open(path, "rb") as f:
        head = f.read(512).lstrip().lower()
    if head.startswith(b"<") and b"<svg" in head:  # an XML text whose root is <svg>
        raise UploadRefused("This is an SVG drawing (vector graphics), not a photo: export it as PNG or JPEG "
                            "and upload that.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # we refuse those ourselves
            with Image.open(path, formats=FORMATS) as img:  # the header only: no pixel is decoded
                info = PhotoInfo(img.format, *img.size, getattr(img, "n_frames", 1))
    except Image.DecompressionBombError:  # PIL refuses outright past ~179 megapixels
        raise _too_many_pixels(max_pixels) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError):
        raise UploadRefused("This file is not an image the demo can read (is it a text or other file renamed "
                            "to .jpg?): upload a JPEG, PNG, WebP or GIF photo.") from None
    limit = pixel_limit(info.format, max_pixels)
    if info.width * info.height > limit:
        raise _too_many_pixels(limit, info.width, info.height, info.format)
    return info


def decode(load: Callable[[Path], np.ndarray], path: Path, info: PhotoInfo | None = None) -> np.ndarray:
    """Step 4: ``load(path)`` (the engine's decoder), its failures turned into ``UploadRefused``. An image
    decoded whole above ``BIG_DECODE`` pixels waits for the other big ones (one at a time)."""
    big = info is not None and info.format not in ("JPEG", "MPO") and info.width * info.height > BIG_DECODE
    if big and not _big_decodes.acquire(timeout=DECODE_WAIT_S):
        raise UploadRefused("The server is busy decoding other large images: try again in a minute, or send a "
                            "smaller photo.")
    try:
        return load(path)
    except Image.DecompressionBombError:
        raise _too_many_pixels(MAX_PIXELS) from None
    except Exception:  # PIL and OpenCV fail in many ways on damaged files: OSError, SyntaxError, ...
        log.warning("could not decode an upload", exc_info=True)  # for the operator, not the visitor
        raise UploadRefused("The photo could not be decoded completely: the file seems truncated or damaged. "
                            "Upload it again, or try another photo.") from None
    finally:
        if big:
            _big_decodes.release()


def read_photo(value, load: Callable[[Path], np.ndarray], max_bytes: int, max_pixels: int = MAX_PIXELS,
               allowed: Sequence[Path] | None = None) -> tuple[np.ndarray, PhotoInfo]:
    """An upload -> ``(photo, info)``: the decoded (H, W, 3) uint8 RGB photo and its header facts.

    Args:
        value: a file path or Gradio's file dict; None when nothing was uploaded.
        load: the decoder, e.g. ``predictor.load`` (upright RGB, shrinks big JPEGs while decoding).
        max_bytes: the upload limit in bytes. max_pixels: the pixel limit, checked on the header.
        allowed: the folders and files a visitor's path may point into (the server passes Gradio's
            upload folder and its example photos); None, for direct calls, checks nothing.
    """
    try:
        path = upload_path(value)
    except TypeError:
        raise UploadRefused(NOT_ARRIVED) from None
    if path is None:
        raise UploadRefused(NO_PHOTO)
    if (allowed is not None and not may_read(path, allowed)) or not path.is_file():
        raise UploadRefused(NOT_ARRIVED)  # the same words whether it is elsewhere, missing or a folder
    info = check_upload(path, max_bytes, max_pixels)
    return decode(load, path, info), info
