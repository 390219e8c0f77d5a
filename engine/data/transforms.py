"""Item transforms: what happens to each image on the CPU before images are batched.

Presizing, step 1. Every photo is opened, turned upright (EXIF orientation), converted to RGB
whatever its mode, and resized *once* with a high-quality filter to a square that is much larger
than the final training size (default 460 for a final 224). The crop, rotation, zoom and warp
happen later, on the whole batch at once, with a single interpolation (see ``augment.py``).
Keeping the image large here leaves room for those augmentations to work inside the picture,
instead of inventing empty corners, and doing one interpolation instead of several keeps detail.
"""

from __future__ import annotations

import io
import random
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from .files import format_of, has_jpeg_end

__all__ = ["PRESIZE_METHODS", "MAX_PIXELS", "load_image", "load_array", "jpeg_header", "to_rgb", "rgb_array",
           "Presize", "square_box", "pil_to_tensor"]

PRESIZE_METHODS = ("crop", "squish", "pad")
# The largest image decoded for a visitor or a prediction: refused from its header, before any
# pixel is decoded (a 24 KB PNG can claim 14000 x 14000 pixels, a decompression bomb).
MAX_PIXELS = 40_000_000

def to_rgb(img: Image.Image) -> Image.Image:
    """Convert any PIL mode (L, P, RGBA, CMYK, I;16, I, F, 1, LA ...) to 8-bit RGB."""
    if img.mode == "RGB":
        return img
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        # 16/32-bit grayscale: scale the actual range to 0..255 (PIL's convert would clip at 255).
        a = np.asarray(img, dtype=np.float32)
        top = 65535.0 if a.max() > 255 else 255.0
        a = np.clip(a / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return Image.fromarray(a).convert("RGB")  # 2-D uint8: mode L
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        # Transparent pixels would otherwise show whatever colour they happen to store: use white.
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")


def rgb_array(image: Image.Image | np.ndarray) -> np.ndarray:
    """A picture already in memory (PIL image or array) -> (H, W, 3) uint8 RGB array, as ``to_rgb``
    converts it. An array that is one already comes back as it is: a round trip through PIL would
    only copy it twice (a server that decoded the upload itself hands its array on)."""
    if isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3:
        return np.ascontiguousarray(image)
    return np.asarray(to_rgb(image if isinstance(image, Image.Image) else Image.fromarray(image)))


def load_image(path: str | Path | io.BytesIO, min_size: int | None = None,
               max_pixels: int | None = None) -> Image.Image:
    """Open an image file upright and in RGB.

    Args:
        path: the image file.
        min_size: if given and the file is a JPEG much larger than this, let the decoder produce a
            reduced image directly (``draft``: 1/2, 1/4 or 1/8 scale during decoding, far cheaper
            than decoding everything and resizing), never smaller than ``min_size`` on either side.
        max_pixels: refuse images with more pixels than this *before* decoding them (a 24 KB PNG
            can claim 14000 x 14000 pixels: a decompression bomb).
    """
    try:
        img = Image.open(path)
    except Image.DecompressionBombError as err:  # PIL's own limit (~179 MP): same message as ours
        name = Path(path).name if isinstance(path, (str, Path)) else "the image"
        raise ValueError(f"{name} has too many pixels to decode safely ({err}): resize it before using it") from err
    if max_pixels is not None and img.size[0] * img.size[1] > max_pixels:
        w, h = img.size
        img.close()
        name = Path(path).name if isinstance(path, (str, Path)) else "the image"
        raise ValueError(f"{name} is {w}x{h} = {w * h / 1e6:.0f} megapixels, more than the "
                         f"{max_pixels / 1e6:.0f} allowed: resize it before using it")
    if min_size is not None and img.format == "JPEG":
        img.draft("RGB", (min_size, min_size))
    try:
        img.load()
    except BaseException:
        img.close()  # a truncated or corrupt file: raise, but leave no file open
        raise
    ImageOps.exif_transpose(img, in_place=True)  # turn it upright (no copy when already upright)
    rgb = to_rgb(img)
    if rgb is not img:
        img.close()  # a GIF, say, keeps its file open for its other frames until closed
    return rgb


def load_array(path: str | Path | bytes, min_size: int | None = None, max_pixels: int | None = None) -> np.ndarray:
    """Like ``load_image``, but returns an (H, W, 3) uint8 RGB array, faster for plain JPEG files.

    A complete JPEG file is decoded by OpenCV straight into an array (upright: it applies the EXIF
    orientation too, and decodes at 1/2, 1/4 or 1/8 scale when that still covers ``min_size``),
    which saves about a fifth of the time per photo over PIL + conversion. Its size, checked
    against ``max_pixels`` before decoding, is read from its markers (``jpeg_header``, several
    times cheaper than opening the file with PIL). Everything else (PNG, GIF, 16-bit, transparency,
    truncated or odd files, a header that reader does not follow) goes through ``load_image``, so
    it gets the same conversions and the same clear errors.
    """
    if isinstance(path, (bytes, bytearray)):
        data, path = bytes(path), io.BytesIO(path)
    else:
        with open(path, "rb") as f:
            data = f.read()
    header = jpeg_header(data) if format_of(data) == "JPEG" and has_jpeg_end(data) else None  # a complete JPEG
    if header is not None and (max_pixels is None or header[0] * header[1] <= max_pixels):
        w, h = header
        reduce = 1
        while min_size is not None and reduce < 8 and min(w, h) // (reduce * 2) >= min_size:
            reduce *= 2
        cv2 = _cv2()
        rgb = getattr(cv2, "IMREAD_COLOR_RGB", None)  # OpenCV >= 4.10 decodes straight to RGB
        flags = {1: 0, 2: cv2.IMREAD_REDUCED_GRAYSCALE_2, 4: cv2.IMREAD_REDUCED_GRAYSCALE_4,
                 8: cv2.IMREAD_REDUCED_GRAYSCALE_8}[reduce] | (rgb if rgb is not None else cv2.IMREAD_COLOR)
        a = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
        # The decoder's picture has the size the header promised (turned a quarter when upright
        # needs it): the size the pixel limit was checked on. Anything else is PIL's to judge.
        if a is not None and sorted(a.shape[:2]) == sorted((-(-h // reduce), -(-w // reduce))):
            return a if rgb is not None else cv2.cvtColor(a, cv2.COLOR_BGR2RGB)
    return np.asarray(load_image(path, min_size, max_pixels))


# The start-of-frame markers (they hold the size); 0xC4, 0xC8 and 0xCC share the range but are others.
_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def jpeg_header(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a JPEG file's bytes, reading only its markers up to the first scan; None
    for anything this plain reader does not follow (bytes between markers, two frame headers, a
    marker that cuts the header short), which then goes to PIL."""
    i, n, size = 2, len(data), None
    while i + 4 <= n:
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # a fill byte before a marker
            i += 1
            continue
        if marker == 0xDA:  # start of scan: the header is over
            return size if size is not None and min(size) > 0 else None
        if 0xD0 <= marker <= 0xD9 or marker == 0x01:  # markers without a length have no place here
            return None
        length = data[i + 2] << 8 | data[i + 3]
        if length < 2 or i + 2 + length > n:
            return None
        if marker in _SOF_MARKERS:
            if size is not None or length < 8:
                return None
            size = (data[i + 7] << 8 | data[i + 8], data[i + 5] << 8 | data[i + 6])  # (width, height)
        i += 2 + length
    return None


class Presize:
    """Resize to a ``size`` x ``size`` square with one high-quality resample.

    Methods:
        crop: scale so the short side is ``size`` and cut the full-height (or full-width) square;
            at a random position for training, in the centre for validation.
        squish: stretch the whole picture to the square (changes the aspect ratio).
        pad: scale so the long side is ``size`` and pad the rest with black.

    The filter is bicubic when enlarging and area averaging when shrinking (both are smooth and
    antialiased; a plain bicubic or bilinear shrink would alias). OpenCV does the resampling: it is
    about ten times faster than PIL here, which matters because this runs for every image.
    """

    def __init__(self, size: int, method: str):
        if method not in PRESIZE_METHODS:
            raise ValueError(f"Presize method must be one of {PRESIZE_METHODS}, got {method!r}")
        if not isinstance(size, int) or size < 8:
            raise ValueError(f"Presize size must be an integer of at least 8 pixels, got {size!r}")
        self.size, self.method = size, method

    def __call__(self, img: Image.Image | np.ndarray, train: bool = False,
                 rng: random.Random | None = None) -> np.ndarray:
        """RGB image (PIL or HWC uint8 array) -> (size, size, 3) uint8 array."""
        a = np.asarray(img, dtype=np.uint8)
        s, (h, w) = self.size, a.shape[:2]
        if self.method == "squish":
            return _resize(a, s, s)
        if self.method == "pad":
            scale = s / max(w, h)
            nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
            canvas = np.zeros((s, s, 3), dtype=np.uint8)
            top, left = (s - nh) // 2, (s - nw) // 2
            canvas[top:top + nh, left:left + nw] = _resize(a, nw, nh)
            return canvas
        # crop: choose the square in the *source* image, then resample only that square, once.
        left, top, side = square_box(w, h, (rng or random).random() if train else 0.5)
        return _resize(a[top:top + side, left:left + side], s, s)

    def __repr__(self) -> str:
        return f"Presize(size={self.size}, method={self.method!r})"


def _cv2():
    """OpenCV, single-threaded: its thread pool does not survive the fork() that starts DataLoader
    workers (a worker would hang), and one image at a time gains little from threads anyway."""
    import cv2

    if cv2.getNumThreads() != 1:
        cv2.setNumThreads(1)
    return cv2


def square_box(width: int, height: int, position: float = 0.5) -> tuple[int, int, int]:
    """(left, top, side) of the largest square in a width x height image; ``position`` in [0, 1]
    slides it along the long side (0.5 = centre)."""
    side = min(width, height)
    return round((width - side) * position), round((height - side) * position), side  # one offset is 0


def _resize(a: np.ndarray, width: int, height: int) -> np.ndarray:
    cv2 = _cv2()

    if (a.shape[1], a.shape[0]) == (width, height):
        return np.ascontiguousarray(a)  # already the right size: no resampling at all
    shrinking = width < a.shape[1] or height < a.shape[0]
    # OpenCV reads a cropped view in place (rows may be strided); no copy of the crop is needed.
    return cv2.resize(a, (width, height), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_CUBIC)


def pil_to_tensor(img: Image.Image | np.ndarray):
    """HWC uint8 image -> (3, H, W) uint8 tensor, without scaling (that happens batched, on the device).

    The result is a view with channels-last strides: no copy, and the batch stays channels-last.
    """
    import torch

    a = np.array(img, dtype=np.uint8, copy=True) if isinstance(img, Image.Image) else np.ascontiguousarray(img)
    return torch.from_numpy(a).permute(2, 0, 1)
