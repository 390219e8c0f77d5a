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

A fair comparison shows both pipelines the same field of view: with ``naive_crop=True`` the naive
order first cuts the same centred crop out of the photo and resizes it to the final size (what a
per-item random-resized crop to 224 does), so only the order of the steps differs.
``presizing_ablation`` then changes one thing at a time, from that naive order to presizing, and
says which gain comes from what: composing the steps into one warp, warping from a large source,
and keeping the margin around the crop.
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

__all__ = ["psnr", "compare_presizing", "presizing_ablation"]


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


def _crop_window(side: int, crop_scale: float) -> tuple[int, float]:
    """The centred crop of a ``side``-pixel square in whole pixels: (margin on each side, its side
    as a share of the square). Equal whole-pixel margins make cutting it out exact, so a pipeline
    that cuts it out and one that crops with a matrix see exactly the same window."""
    margin = round(side * (1 - math.sqrt(crop_scale)) / 2)
    return margin, (side - 2 * margin) / side


def _centre_square(image: Image.Image | str | Path) -> tuple[Image.Image, np.ndarray]:
    """The image (RGB) and its centre square at full resolution, as ``Presize(.., "crop")`` takes it."""
    img = load_image(image) if isinstance(image, (str, Path)) else to_rgb(image)
    left, top, side = square_box(img.width, img.height)
    return img, np.asarray(img)[top:top + side, left:left + side]


def _matrices(rotate: float, zoom: float, crop: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The rotation, the (centred) zoom, and presizing's whole map: rotation, zoom and crop in one."""
    rot = rotation_matrix(torch.tensor([float(rotate)]))
    zm = zoom_matrix(torch.tensor([float(zoom)]), torch.zeros(1), torch.zeros(1))
    params = AugmentParams.identity(1)
    params.rotate, params.zoom = torch.tensor([float(rotate)]), torch.tensor([float(zoom)])
    params.crop_w = params.crop_h = torch.tensor([crop])
    return rot, zm, params.matrices()


def _naive_cover(rot: torch.Tensor, zm: torch.Tensor, size: int) -> torch.Tensor:
    """Where the naive order (rotate, then zoom, a ``size`` image) has a source pixel, as ``_empty``."""
    return _render(_render(torch.ones(1, 1, size, size), rot, size, "zeros"), zm, size, "zeros")


def _small(a: np.ndarray, size: int) -> torch.Tensor:
    """The naive order's first step: one high-quality (bicubic) resize straight to the final size."""
    return _to_batch(np.asarray(Image.fromarray(a).resize((size, size), Image.Resampling.BICUBIC)))


def compare_presizing(image: Image.Image | str | Path, size: int | None = None, presize: int | None = None,
                      rotate: float = 10.0, zoom: float = 1.1, crop_scale: float = MIN_SCALE,
                      naive_crop: bool = False) -> dict:
    """Run one photo through the naive order and through presizing; measure both.

    Args:
        image: a PIL image or a path.
        size: final size; presize: the CPU presize (both default to ``Preprocessing()``'s).
        rotate: degrees. zoom: >= 1.
        crop_scale: area share of the random-resized crop in the presizing pipeline (its default
            ``min_scale``, i.e. the tightest crop); the crop is centred so the result is repeatable.
        naive_crop: the naive order first cuts the same crop out of the photo and resizes it to
            ``size`` (as a per-item random-resized crop would), so that both pipelines show the
            same field of view. False: it resizes the whole centre square (a wider view).

    Returns:
        ``{"naive": {...}, "presize": {...}, "params": {...}}``; each pipeline with ``image`` (HWC
        uint8), ``reference`` (HWC uint8: the same geometry rendered from the full-size photo, with
        only the pixels that pipeline's source holds), ``empty_fraction``, ``psnr`` and
        ``interpolations`` (resampling passes from the photo to the result).
    """
    size = Preprocessing.size if size is None else size
    presize = Preprocessing.presize if presize is None else presize
    img, original = _centre_square(image)
    square = _to_batch(original)  # (1, 3, side, side) at full resolution: the reference's source
    if naive_crop:
        margin, crop = _crop_window(len(original), crop_scale)
        naive_source = original[margin:len(original) - margin, margin:len(original) - margin]
    else:
        naive_source, crop = original, math.sqrt(crop_scale)
    rot, zm, pre_matrix = _matrices(rotate, zoom, crop)

    # --- naive: resize small first, then rotate, then zoom; black where there is nothing ----------
    small = _small(naive_source, size)
    naive = _render(_render(small, rot, size, "zeros"), zm, size, "zeros")
    mask = _naive_cover(rot, zm, size)
    naive_ref = _render(_to_batch(naive_source), rot @ zm, size, "zeros", supersample=4, mode="bicubic")

    # --- presizing: one large resize on the CPU, then everything in one interpolation ------------
    big = _to_batch(Presize(presize, "crop")(img, train=False))
    presized = _render(big, pre_matrix, size, "reflection")
    pre_mask = _empty((presize, presize), pre_matrix, size)
    pre_ref = _render(square, pre_matrix, size, "reflection", supersample=4, mode="bicubic")

    out = {}
    for name, result, ref, m, passes in (("naive", naive, naive_ref, mask, 3),
                                         ("presize", presized, pre_ref, pre_mask, 2)):
        result_img, ref_img = _to_image(result), _to_image(ref.clamp(0, 255))
        out[name] = {
            "image": result_img,
            "reference": ref_img,
            "empty_fraction": float((m < 0.5).float().mean()),
            "psnr": psnr(result_img, ref_img),
            "interpolations": passes,
        }
    out["params"] = {"size": size, "presize": presize, "rotate": rotate, "zoom": zoom, "crop_scale": crop_scale,
                     "naive_crop": naive_crop, "crop": crop}
    return out


def presizing_ablation(image: Image.Image | str | Path, size: int | None = None, presize: int | None = None,
                       rotate: float = 10.0, zoom: float = 1.1, crop_scale: float = MIN_SCALE) -> dict:
    """From the naive order to presizing, one change at a time, all with the same field of view.

    1. ``naive``: cut the crop out, resize it to ``size``, rotate, zoom (3 interpolations);
    2. ``one_warp``: the same, with rotation and zoom composed into one warp (2);
    3. ``large_source``: the one warp reads the crop presized to the large scale (``presize``)
       instead of ``size``; the margin around the crop is still black (2);
    4. ``presize``: the engine's pipeline, the margin kept (2).

    Args: as ``compare_presizing``.

    Returns:
        ``{"variants": {name: {...}}, "reference": HWC uint8, "covered": share}``: the variants in
        that order, each with ``image``, ``empty_fraction``, ``interpolations``, ``source`` (side in
        pixels of the image the last warp reads), ``margin`` (whether it holds photo around the
        crop) and ``psnr`` against ``reference`` (the view rendered from the full-size photo, as in
        ``compare_presizing``) over the pixels that every variant covers, at least 2 pixels inside
        (so that it measures detail, not the empty corners); ``covered`` is their share.
    """
    size = Preprocessing.size if size is None else size
    presize = Preprocessing.presize if presize is None else presize
    img, original = _centre_square(image)
    side = len(original)
    margin, crop = _crop_window(side, crop_scale)
    window = original[margin:side - margin, margin:side - margin]
    rot, zm, matrix = _matrices(rotate, zoom, crop)

    small = _small(window, size)
    no_margin = original.copy()
    no_margin[:margin], no_margin[side - margin:], no_margin[:, :margin], no_margin[:, side - margin:] = 0, 0, 0, 0
    variants = {  # name: (result, interpolations, source side, margin kept)
        "naive": (_render(_render(small, rot, size, "zeros"), zm, size, "zeros"), 3, size, False),
        "one_warp": (_render(small, rot @ zm, size, "zeros"), 2, size, False),
        "large_source": (_render(_to_batch(Presize(presize, "crop")(no_margin)), matrix, size, "zeros"), 2,
                         round(presize * crop), False),
        "presize": (_render(_to_batch(Presize(presize, "crop")(img, train=False)), matrix, size, "reflection"), 2,
                    presize, True),
    }
    # Without the margin a variant has photo exactly where the naive order has: inside the crop.
    window_cover = _naive_cover(rot, zm, size)
    covered = (-F.max_pool2d(-window_cover, 5, stride=1, padding=2))[0, 0].numpy() > 0.999
    reference = _to_image(_render(_to_batch(original), matrix, size, "reflection", supersample=4,
                                  mode="bicubic").clamp(0, 255))
    out = {}
    for name, (result, passes, source, kept) in variants.items():
        result_img = _to_image(result)
        cover = _empty((presize, presize), matrix, size) if kept else window_cover
        out[name] = {
            "image": result_img,
            "empty_fraction": float((cover < 0.5).float().mean()),
            "interpolations": passes,
            "source": source,
            "margin": kept,
            "psnr": psnr(result_img[covered], reference[covered]),
        }
    return {"variants": out, "reference": reference, "covered": float(covered.mean())}
