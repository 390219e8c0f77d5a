"""The whole preprocessing of a photo, as one small frozen object with its defaults written once.

Between a photo file and the model's input there are a few numbers that must be the same in
training, in validation, in the exported model and in the web demo: the size of the CPU presize
square and how the photo is fitted into it, the final size the model sees, and the mean and
standard deviation that normalize its pixels. ``Preprocessing`` holds them. ``DataLoaders`` owns
one (``dls.preprocessing``): its datasets' ``Presize`` comes from it and its ``BatchAugment`` holds
it; ``export`` writes it as it is into ``meta.json``, and ``load_predictor`` reads it back: nothing
else restates them. It is frozen: a change is a new spec (``replace``, ``with_normalization``).

    Preprocessing()                    presize 460 (crop) -> 224, ImageNet's statistics
    Preprocessing(size=288)            the training recipe's final size
    spec.with_normalization(mean, std) the statistics a pretrained body expects
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace

import numpy as np

from ..models import IMAGENET_STATS
from .transforms import PRESIZE_METHODS, Presize, _cv2

__all__ = ["Preprocessing"]


@dataclass(frozen=True)
class Preprocessing:
    """What happens to every photo before the model sees it (validation and prediction exactly;
    training adds random augmentation on top, see ``BatchAugment``).

    Args:
        presize: side of the square each photo is resized to on the CPU, once, with a high-quality
            filter; large enough to leave room for the augmentations. None: no resize (only for
            debugging a pipeline with ``summary``: photos of different sizes cannot be batched).
        method: how the photo is fitted into that square: "crop" (the centre square for
            validation, a random one for training), "squish" or "pad".
        size: side of the square the model sees, after the single resample on the device.
        mean, std: per-channel statistics the pixels (0..1) are normalized with.
    """

    presize: int | None = 460
    method: str = "crop"
    size: int = 224
    mean: tuple[float, float, float] = IMAGENET_STATS[0]
    std: tuple[float, float, float] = IMAGENET_STATS[1]

    def __post_init__(self):
        object.__setattr__(self, "mean", tuple(float(v) for v in self.mean))
        object.__setattr__(self, "std", tuple(float(v) for v in self.std))
        if self.method not in PRESIZE_METHODS:
            raise ValueError(f"Preprocessing: method must be one of {PRESIZE_METHODS}, got {self.method!r}")
        for name in ("presize", "size"):
            value = getattr(self, name)
            if not (value is None and name == "presize") and (type(value) is not int or value < 8):
                raise ValueError(f"Preprocessing: {name} must be a whole number of at least 8 pixels, got {value!r}")
        if len(self.mean) != 3 or len(self.std) != 3 or not all(math.isfinite(v) for v in self.mean + self.std) \
                or not all(s > 0 for s in self.std):
            raise ValueError(f"Preprocessing: mean and std need 3 finite values each, std above 0; got {self.mean}, "
                             f"{self.std}")

    def with_normalization(self, mean: Sequence[float], std: Sequence[float]) -> Preprocessing:
        """The same preprocessing, normalized with other statistics (a pretrained model's)."""
        return replace(self, mean=tuple(mean), std=tuple(std))

    def scale_shift(self, device=None):
        """The normalization as one affine map on 0..255 pixels: ``x * scale + shift`` equals
        ``(x / 255 - mean) / std``. Two (1, 3, 1, 1) float32 tensors on ``device``; an exported graph
        stores them as buffers, so a server feeds it raw pixels."""
        import torch

        std = torch.tensor(self.std, dtype=torch.float32, device=device).view(1, 3, 1, 1)
        mean = torch.tensor(self.mean, dtype=torch.float32, device=device).view(1, 3, 1, 1)
        return 1 / (255 * std), -mean / std

    def normalize(self, x, in_place: bool = False):
        """(N, 3, H, W) pixels 0..255 -> ``(x / 255 - mean) / std``: the one place the normalization
        is written. ``in_place`` reuses ``x`` (a float tensor) and saves a copy of the batch."""
        scale, shift = self.scale_shift(x.device)
        return x.mul_(scale).add_(shift) if in_place else x * scale + shift

    def denormalize(self, x):
        """The inverse, for showing a batch: normalized (N, 3, H, W) -> pixels 0..1, clipped."""
        scale, shift = self.scale_shift(x.device)
        return ((x - shift) / (255 * scale)).clamp(0, 1)

    def presizer(self) -> Presize | None:
        """The CPU step: ``Presize(presize, method)``, or None without a presize."""
        return Presize(self.presize, self.method) if self.presize is not None else None

    def validation_pixels(self, image: np.ndarray) -> np.ndarray:
        """An (H, W, 3) uint8 RGB photo -> its (size, size, 3) float32 pixels, 0..255, exactly as
        validation feeds them to the model (before normalization), with OpenCV instead of torch.

        The presize (the same OpenCV resample as training's), then a bilinear resample to the final
        size, computed in float like ``BatchAugment``'s identity warp (``grid_sample``, pixel
        centres aligned): the same pixels, without a tensor or a sampling grid to build, which
        matters when a server answers one photo at a time."""
        cv2 = _cv2()  # OpenCV with its thread pool off (see transforms.py)
        presizer = self.presizer()
        a = presizer(image, train=False) if presizer is not None else np.asarray(image)
        return cv2.resize(a.astype(np.float32), (self.size, self.size), interpolation=cv2.INTER_LINEAR)

    def to_dict(self) -> dict:
        """Plain JSON values (what ``export`` writes to ``meta.json``)."""
        d = asdict(self)
        return {**d, "mean": list(d["mean"]), "std": list(d["std"])}

    @classmethod
    def from_dict(cls, d: dict) -> Preprocessing:
        """Back from ``to_dict``; unknown keys are an error, so a misspelt one cannot pass unseen."""
        unknown = sorted(set(d) - {"presize", "method", "size", "mean", "std"})
        if unknown:
            raise ValueError(f"Preprocessing: unknown fields {unknown}")
        return cls(**{k: tuple(v) if k in ("mean", "std") else v for k, v in d.items()})

    @classmethod
    def from_meta(cls, meta: dict) -> Preprocessing:
        """From an export's ``meta.json``: its ``preprocessing``, or the separate fields of exports
        written before it existed (``presize``, ``presize_method``, ``size``, ``normalization``)."""
        if "preprocessing" in meta:
            return cls.from_dict(meta["preprocessing"])
        norm = meta["normalization"]
        return cls(presize=meta["presize"], method=meta.get("presize_method") or "crop", size=meta["size"],
                   mean=tuple(norm["mean"]), std=tuple(norm["std"]))
