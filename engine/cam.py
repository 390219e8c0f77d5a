"""Where the model looked: class-activation maps (CAM), exact for the head we have.

A class-activation map splits a class's logit over the positions of the body's last feature map
(n, C, h, w). For global average pooling followed by a linear layer the split is the classic CAM,
``W[c] . F[:, y, x] / (h * w)``, and it is exact: the cells add up to the logit minus the bias.

Our head (``models.create_head``) is ConcatPool -> BatchNorm -> dropout -> linear. In eval mode
the dropout does nothing and the BatchNorm is a per-feature scale and shift, so it folds into the
linear layer (``fold_head``): logit = W_avg . mean(F) + W_max . max(F) + b. The average half is
the classic CAM. The max half is exact too: each channel's maximum comes from one cell (or is
shared by the cells that tie for it), so that cell gets the channel's whole max-term. Together:

    maps[c, y, x] = W_avg[c] . F[:, y, x] / (h w)  +  sum over channels k that peak at (y, x) of
                    W_max[c, k] F[k, y, x] / (number of cells tied at that peak)
    maps[c].sum() + b[c] == logit[c]                      (exactly, up to float rounding)

``activation_maps`` computes that in PyTorch; the ONNX graph computes the same as extra nodes
(``serving/onnx.add_activation_maps``). ``where_looked`` turns one class's map into a picture:
only the cells that speak *for* the class (the positive part), scaled to 0..1 and resized
bilinearly to the photo the model saw; ``overlay`` lays it over that photo.
"""

from __future__ import annotations

import functools

import numpy as np
import torch
from torch import nn

__all__ = ["fold_head", "activation_maps", "where_looked", "overlay"]


def fold_head(head: nn.Sequential) -> tuple[torch.Tensor, torch.Tensor]:
    """The head in eval mode as one linear layer on [mean(F), max(F)]: (weight (classes, 2C), bias (classes,)).

    ``head`` must be ``models.create_head``'s ConcatPool -> BatchNorm1d -> Dropout -> Linear."""
    from .models import ConcatPool

    kinds = (ConcatPool, nn.BatchNorm1d, nn.Dropout, nn.Linear)
    if len(head) != len(kinds) or not all(isinstance(m, k) for m, k in zip(head, kinds)):
        raise ValueError("a class-activation map needs the head models.create_head builds (ConcatPool, BatchNorm1d, "
                         f"Dropout, Linear), got {[type(m).__name__ for m in head]}")
    bn, linear = head[1], head[3]
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)  # BatchNorm in eval mode: x * scale + shift
    shift = bn.bias - bn.running_mean * scale
    return linear.weight * scale, linear.bias + linear.weight @ shift


def activation_maps(head: nn.Sequential, features: torch.Tensor) -> torch.Tensor:
    """Every class's map: features (n, C, h, w) -> (n, classes, h, w), in logit units; each map sums
    to its logit minus the folded bias (see the module's docstring)."""
    weight, _ = fold_head(head)
    n, _, h, w = features.shape
    flat = features.float().flatten(2)  # (n, C, h*w)
    peak = (flat == flat.amax(2, keepdim=True)).float()  # the cells where each channel has its maximum
    share = peak / peak.sum(2, keepdim=True)  # ties share the max-term evenly
    parts = torch.cat([flat / (h * w), flat * share], dim=1)  # (n, 2C, h*w): what each cell adds to mean and max
    return (weight.float() @ parts).view(n, -1, h, w)


@functools.cache  # a few sizes, asked for at every prediction
def _resize_matrix(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) bilinear interpolation, cell centres aligned (PyTorch's ``align_corners=False``); read-only."""
    src = np.clip((np.arange(n_out) + 0.5) * n_in / n_out - 0.5, 0, n_in - 1)
    lo = np.floor(src).astype(int)
    hi = np.minimum(lo + 1, n_in - 1)
    m = np.zeros((n_out, n_in), np.float32)
    m[np.arange(n_out), lo] += 1 - (src - lo)
    m[np.arange(n_out), hi] += src - lo
    m.flags.writeable = False
    return m


def where_looked(cam: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """One class's map (h, w) in logit units -> (H, W) float32 in 0..1 for a picture of ``size``
    (H, W): the positive part (the evidence for the class), divided by its peak, resized bilinearly.
    All zeros when no cell speaks for the class."""
    positive = np.maximum(np.asarray(cam, np.float32), 0)
    top = float(positive.max(initial=0))
    if not np.isfinite(top) or top <= 0:
        return np.zeros(size, np.float32)
    out = _resize_matrix(positive.shape[0], size[0]) @ (positive / top) @ _resize_matrix(positive.shape[1], size[1]).T
    return np.clip(out, 0, 1).astype(np.float32)


@functools.cache  # one per strength
def _overlay_tables(strength: float) -> tuple[np.ndarray, np.ndarray]:
    """For each level q = 0..255 of the map (q / 255): the heat colour times its opacity ``a =
    strength * q / 255`` (256, 1, 3), and the photo's share ``1 - a`` out of 255 (256,); uint8, read-only."""
    where = np.arange(256) / 255
    a = strength * where
    heat = np.stack([np.ones_like(where), where ** 0.5, np.zeros_like(where)], -1) * 255  # red -> yellow
    tables = np.rint(heat * a[:, None]).astype(np.uint8).reshape(256, 1, 3), np.rint((1 - a) * 255).astype(np.uint8)
    for table in tables:
        table.flags.writeable = False
    return tables


def overlay(picture: np.ndarray, where: np.ndarray, strength: float = 0.6) -> np.ndarray:
    """A (H, W, 3) uint8 picture with a (H, W) 0..1 map laid over it: warm where the map is high,
    the photo itself where it is low: ``picture * (1 - a) + heat * a`` with ``a = strength * where``.

    The demo draws one for every answer, so it is done in uint8 with OpenCV: the map in 256 levels,
    looked up in two tables (within 2 of the same formula in floats, and 2-3x faster)."""
    import cv2

    heat, keep = _overlay_tables(float(strength))
    level = cv2.convertScaleAbs(np.clip(where, 0, 1, dtype=np.float32), alpha=255)  # rounded, 0..255
    levels = cv2.merge([level, level, level])  # (H, W, 3)
    photo = cv2.multiply(np.ascontiguousarray(picture, np.uint8), cv2.LUT(levels, keep), scale=1 / 255)
    return cv2.add(photo, cv2.LUT(levels, heat))
