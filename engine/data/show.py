"""Looking at data: a grid of images with their labels, drawn with matplotlib.

Every function returns the ``Figure`` (it also shows inline in Jupyter), so tests and the web demo
can use the same code as the lessons.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

__all__ = ["show_images", "show_batch", "to_display"]


def to_display(img) -> np.ndarray:
    """A (3, H, W) tensor in 0..1, a (H, W, 3) array or a PIL image -> HWC float array in 0..1."""
    if isinstance(img, torch.Tensor):
        a = img.detach().float().cpu()
        if a.ndim == 3 and a.shape[0] in (1, 3):
            a = a.permute(1, 2, 0)
        a = a.numpy()
        return np.clip(a / 255.0 if a.max() > 1.5 else a, 0, 1)
    a = np.asarray(img)
    return a / 255.0 if a.dtype == np.uint8 else a


def show_images(images: Sequence, titles: Sequence[str] | None = None, ncols: int = 3,
                size: float = 2.6, suptitle: str | None = None):
    """Draw images in a grid, each with an optional title; return the Figure."""
    import matplotlib.pyplot as plt

    n = len(images)
    ncols = max(1, min(ncols, n))
    nrows = math.ceil(n / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows + (0.4 if suptitle else 0)),
                             squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < n:
            ax.imshow(to_display(images[i]))
            if titles is not None:
                ax.set_title(str(titles[i]), fontsize=9)
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return fig


def show_batch(dls, n: int = 9, split: str = "train", ncols: int = 3, batch=None):
    """Decode one batch (undo normalization) and draw ``n`` images with their labels.

    Args:
        dls: a ``DataLoaders``.
        split: "train" (augmented) or "valid".
        batch: an ``(xb, yb)`` batch to draw instead of a fresh one.
    """
    xb, yb = batch if batch is not None else dls.one_batch(split)
    n = min(n, len(xb))
    images = dls.decode(xb[:n])  # (n, 3, H, W) in 0..1
    titles = [dls.vocab[int(y)] for y in yb[:n]]
    return show_images(list(images), titles, ncols=ncols)
