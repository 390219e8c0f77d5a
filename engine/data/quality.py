"""Measure what presizing buys: empty pixels and lost detail, against a high-quality reference.

The same photo goes through two pipelines that apply the same rotation and zoom:

* naive: resize the photo to the final size first, then rotate, then zoom, each step with its own
  interpolation and with black where the step has no pixels (the corners a rotation uncovers);
* presizing: resize once to a large square (460) on the CPU, then do rotation, zoom and the
  random-resized crop to the final size in *one* interpolation, as ``BatchAugment`` does.

Two numbers per pipeline:

* ``empty_fraction``: the share of output pixels that had no source pixel (padding);
* ``psnr``: peak signal-to-noise ratio in dB against a reference rendered from the *original*
  full-resolution photo with the same geometry, supersampled 4x and averaged down (so it is as
  sharp as the photo allows and has no aliasing). Higher is closer to the ideal.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from .augment import MIN_SCALE, AugmentParams, rotation_matrix, warp_images, zoom_matrix
from .preprocessing import Preprocessing
from .transforms import Presize, load_image, square_box, to_rgb

__all__ = ["psnr", "compare_presizing"]


def psnr(image: np.ndarray | torch.Tensor, reference: np.ndarray | torch.Tensor, peak: float = 255.0) -> float:
    """Peak signal-to-noise ratio in dB: 10 log10(peak^2 / mean squared error). inf if identical."""
    a = torch.as_tensor(np.asarray(image), dtype=torch.float64)
    b = torch.as_tensor(np.asarray(reference), dtype=torch.float64)
    if a.shape != b.shape:
        raise ValueError(f"psnr needs images of the same shape, got {tuple(a.shape)} and {tuple(b.shape)}")
    mse = float(((a - b) ** 2).mean())
    return math.inf if mse == 0 else 10 * math.log10(peak**2 / mse)


def _to_batch(a: np.ndarray) -> torch.Tensor:
    """HWC uint8 -> (1, 3, H, W) float 0..255."""
    return torch.from_numpy(np.array(a, dtype=np.uint8)).permute(2, 0, 1)[None].float()


def _to_image(x: torch.Tensor) -> np.ndarray:
    """(1, 3, H, W) float 0..255 -> HWC uint8."""
    return x[0].permute(1, 2, 0).round().clamp(0, 255).to(torch.uint8).numpy()


def _render(src: torch.Tensor, matrix: torch.Tensor, size: int, padding: str, supersample: int = 1,
            mode: str = "bilinear") -> torch.Tensor:
    """Resample ``src`` through ``matrix`` into ``size``; with supersampling, average s x s samples."""
    out = warp_images(src, matrix, (size * supersample, size * supersample), padding_mode=padding, mode=mode)
    return F.avg_pool2d(out, supersample) if supersample > 1 else out


def _empty(src_hw: tuple[int, int], matrix: torch.Tensor, size: int) -> torch.Tensor:
    """A (1, 1, size, size) map: 1 where the output pixel has a source pixel, fading to 0 outside."""
    ones = torch.ones(1, 1, *src_hw)
    return warp_images(ones, matrix, (size, size), padding_mode="zeros")


def compare_presizing(image: Image.Image | str | Path, size: int | None = None, presize: int | None = None,
                      rotate: float = 10.0, zoom: float = 1.1, crop_scale: float = MIN_SCALE) -> dict:
    """Run one photo through the naive order and through presizing; measure both.

    Args:
        image: a PIL image or a path.
        size: final size; presize: the CPU presize (both default to ``Preprocessing()``'s).
        rotate: degrees. zoom: >= 1.
        crop_scale: area share of the random-resized crop in the presizing pipeline (its default
            ``min_scale``, i.e. the tightest crop); the crop is centred so the result is repeatable.

    Returns:
        ``{"naive": {...}, "presize": {...}}``, each with ``image`` (HWC uint8), ``reference``
        (HWC uint8), ``empty_fraction`` and ``psnr``.
    """
    size = Preprocessing.size if size is None else size
    presize = Preprocessing.presize if presize is None else presize
    img = load_image(image) if isinstance(image, (str, Path)) else to_rgb(image)
    original = np.asarray(img)
    left, top, side = square_box(img.width, img.height)  # the centre square, as Presize takes it
    original = original[top:top + side, left:left + side]
    square = _to_batch(original)  # (1, 3, side, side) at full resolution: the reference's source

    rot = rotation_matrix(torch.tensor([rotate]))
    zm = zoom_matrix(torch.tensor([zoom]), torch.zeros(1), torch.zeros(1))

    # --- naive: resize small first, then rotate, then zoom; black where there is nothing ----------
    small = _to_batch(np.asarray(Image.fromarray(original).resize((size, size), Image.Resampling.BICUBIC)))
    rotated = _render(small, rot, size, "zeros")
    naive = _render(rotated, zm, size, "zeros")
    mask = _render(_render(torch.ones(1, 1, size, size), rot, size, "zeros"), zm, size, "zeros")
    naive_matrix = rot @ zm
    naive_ref = _render(square, naive_matrix, size, "zeros", supersample=4, mode="bicubic")

    # --- presizing: one large resize on the CPU, then everything in one interpolation ------------
    big = _to_batch(Presize(presize, "crop")(img, train=False))
    crop = math.sqrt(crop_scale)
    params = AugmentParams.identity(1)
    params.rotate, params.zoom = torch.tensor([rotate]), torch.tensor([zoom])
    params.crop_w = params.crop_h = torch.tensor([crop])
    pre_matrix = params.matrices()
    presized = _render(big, pre_matrix, size, "reflection")
    pre_mask = _empty((presize, presize), pre_matrix, size)
    pre_ref = _render(square, pre_matrix, size, "reflection", supersample=4, mode="bicubic")

    out = {}
    for name, result, ref, m in (("naive", naive, naive_ref, mask), ("presize", presized, pre_ref, pre_mask)):
        result_img, ref_img = _to_image(result), _to_image(ref.clamp(0, 255))
        out[name] = {
            "image": result_img,
            "reference": ref_img,
            "empty_fraction": float((m < 0.5).float().mean()),
            "psnr": psnr(result_img, ref_img),
        }
    out["params"] = {"size": size, "presize": presize, "rotate": rotate, "zoom": zoom, "crop_scale": crop_scale}
    return out
