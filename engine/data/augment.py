"""Batch augmentation: presizing, step 2, on the batch's device (the GPU when there is one).

Each geometric augmentation is a map from output pixel coordinates to input coordinates, written
as a 3x3 matrix in normalized coordinates ([-1, 1] across the image, as ``grid_sample`` uses):

    flip, rotation, zoom, perspective warp, random-resized crop + resize to the final size

Multiplying the matrices composes the maps, so the whole chain becomes *one* matrix per image and
the pixels are interpolated *once*, by a single ``grid_sample`` over the batch. Applying the steps
one after the other would interpolate (and blur) the image at every step, and each rotation would
fill its corners with padding that later steps then carry along.

Every image gets its own random parameters. Validation uses the identity (centre, no
augmentation) and the same single resample to the final size, so train and valid differ only by
the augmentation. Lighting (brightness, contrast) and normalization follow, per pixel.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, fields

import torch
import torch.nn.functional as F
from torch import Tensor

from .preprocessing import Preprocessing

__all__ = [
    "MIN_SCALE",
    "AugmentParams",
    "AugmentOptions",
    "BatchAugment",
    "flip_matrix",
    "rotation_matrix",
    "zoom_matrix",
    "crop_matrix",
    "warp_matrix",
    "compose",
    "sample_grid",
    "warp_images",
]


MIN_SCALE = 0.75  # the random-resized crop keeps at least this share of the image's area

# --- one 3x3 matrix per step, batched: every function returns (n, 3, 3) ---------------------------

def _eye(n: int, device=None, dtype=torch.float32) -> Tensor:
    return torch.eye(3, device=device, dtype=dtype).repeat(n, 1, 1)


def flip_matrix(flip: Tensor) -> Tensor:
    """Mirror left-right where ``flip`` is true: x -> -x."""
    m = _eye(len(flip), flip.device)
    m[:, 0, 0] = 1 - 2 * flip.float()
    return m


def rotation_matrix(degrees: Tensor, aspect: float = 1.0) -> Tensor:
    """Rotate by ``degrees`` about the centre. ``aspect`` = width / height of the input, so that
    the rotation is a true rotation in pixels even though normalized coordinates are square."""
    t = degrees * math.pi / 180
    c, s = torch.cos(t), torch.sin(t)
    m = _eye(len(t), t.device)
    m[:, 0, 0], m[:, 0, 1] = c, -s / aspect
    m[:, 1, 0], m[:, 1, 1] = s * aspect, c
    return m


def zoom_matrix(zoom: Tensor, cx: Tensor, cy: Tensor) -> Tensor:
    """Zoom in by ``zoom`` (>= 1) around the point (cx, cy): the output shows 1/zoom of the input."""
    m = _eye(len(zoom), zoom.device)
    m[:, 0, 0] = m[:, 1, 1] = 1 / zoom
    m[:, 0, 2], m[:, 1, 2] = cx, cy
    return m


def crop_matrix(w: Tensor, h: Tensor, cx: Tensor, cy: Tensor) -> Tensor:
    """Take the window of relative width ``w`` and height ``h`` centred at (cx, cy), stretched to
    the whole output (its size is set by the grid, i.e. the final size)."""
    m = _eye(len(w), w.device)
    m[:, 0, 0], m[:, 1, 1] = w, h
    m[:, 0, 2], m[:, 1, 2] = cx, cy
    return m


def warp_matrix(mag_x: Tensor, mag_y: Tensor) -> Tensor:
    """Perspective warp: the homography that moves the four corners inwards/outwards by the
    magnitudes, as if the picture were seen from a little to the side (or above/below)."""
    n = len(mag_x)
    src = torch.tensor([[-1.0, -1.0], [1.0, -1.0], [-1.0, 1.0], [1.0, 1.0]], device=mag_x.device)
    x, y = mag_x[:, None], mag_y[:, None]
    dst = torch.stack(
        [
            torch.cat([-1 - y, -1 - x], 1),
            torch.cat([1 + y, -1 + x], 1),
            torch.cat([-1 + y, 1 + x], 1),
            torch.cat([1 - y, 1 - x], 1),
        ],
        dim=1,
    )  # (n, 4, 2)
    return _homography(src.expand(n, 4, 2), dst)


def _homography(src: Tensor, dst: Tensor) -> Tensor:
    """The (n, 3, 3) perspective maps taking the 4 points ``src`` to ``dst`` (solve an 8x8 system)."""
    n = src.shape[0]
    rows = []
    for i in range(4):
        (x, y), (u, v) = src[:, i].unbind(-1), dst[:, i].unbind(-1)
        one, zero = torch.ones_like(x), torch.zeros_like(x)
        rows.append(torch.stack([x, y, one, zero, zero, zero, -u * x, -u * y], -1))
        rows.append(torch.stack([zero, zero, zero, x, y, one, -v * x, -v * y], -1))
    a = torch.stack(rows, 1)  # (n, 8, 8)
    b = dst.reshape(n, 8, 1)  # u0, v0, u1, v1 ...
    h = torch.linalg.solve(a.double(), b.double()).float().squeeze(-1)  # (n, 8)
    return torch.cat([h, torch.ones(n, 1, device=h.device)], 1).reshape(n, 3, 3)


def compose(*matrices: Tensor) -> Tensor:
    """Chain output->input maps: ``compose(A, B)`` first maps with B, then with A (so A @ B)."""
    out = matrices[0]
    for m in matrices[1:]:
        out = out @ m
    return out


# --- sampling ---------------------------------------------------------------------------------------

def sample_grid(matrices: Tensor, size: tuple[int, int]) -> Tensor:
    """The (n, H, W, 2) ``grid_sample`` grid of the output pixel centres mapped through ``matrices``."""
    h, w = size
    dev = matrices.device
    ys = (torch.arange(h, device=dev, dtype=torch.float32) * 2 + 1) / h - 1
    xs = (torch.arange(w, device=dev, dtype=torch.float32) * 2 + 1) / w - 1
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    base = torch.stack([gx, gy, torch.ones_like(gx)], -1).view(h * w, 3)  # (H*W, 3): x, y, 1 per pixel
    pts = matrices.float() @ base.T  # (n, 3, H*W); multiplying by the transposed view is the fast path
    grid = pts[:, :2] / pts[:, 2:]  # perspective divide by w (w = 1 for affine maps)
    return grid.permute(0, 2, 1).view(-1, h, w, 2)  # (n, H, W, 2), a strided view: no copy


def warp_images(
    images: Tensor,
    matrices: Tensor,
    size: tuple[int, int],
    padding_mode: str = "reflection",
    mode: str = "bilinear",
) -> Tensor:
    """Resample a float (n, C, H, W) batch through per-image matrices into ``size``: one interpolation."""
    grid = sample_grid(matrices.to(images.device), size)
    return F.grid_sample(images, grid, mode=mode, padding_mode=padding_mode, align_corners=False)


# --- random parameters -----------------------------------------------------------------------------

@dataclass
class AugmentParams:
    """The random draws for one batch, one value per image (all tensors of shape (n,))."""

    flip: Tensor
    rotate: Tensor  # degrees
    zoom: Tensor
    zoom_cx: Tensor
    zoom_cy: Tensor
    warp_x: Tensor
    warp_y: Tensor
    crop_w: Tensor
    crop_h: Tensor
    crop_cx: Tensor
    crop_cy: Tensor
    contrast: Tensor
    brightness: Tensor

    @classmethod
    def identity(cls, n: int) -> AugmentParams:
        zeros, ones = torch.zeros(n), torch.ones(n)
        return cls(flip=zeros.bool(), rotate=zeros, zoom=ones, zoom_cx=zeros, zoom_cy=zeros,
                   warp_x=zeros, warp_y=zeros, crop_w=ones, crop_h=ones, crop_cx=zeros,
                   crop_cy=zeros, contrast=ones, brightness=zeros)

    def to(self, device) -> AugmentParams:
        return AugmentParams(**{f.name: getattr(self, f.name).to(device) for f in fields(self)})

    def matrices(self, aspect: float = 1.0) -> Tensor:
        """The composed output->input map of every image: (n, 3, 3)."""
        return compose(
            flip_matrix(self.flip),
            rotation_matrix(self.rotate, aspect),
            zoom_matrix(self.zoom, self.zoom_cx, self.zoom_cy),
            warp_matrix(self.warp_x, self.warp_y),
            crop_matrix(self.crop_w, self.crop_h, self.crop_cx, self.crop_cy),
        )


@dataclass(frozen=True)
class AugmentOptions:
    """The random augmentation's settings: what training draws from (validation uses none of them).

    Args:
        flip: mirror half of the images left-right.
        max_rotate: rotation drawn from [-max_rotate, max_rotate] degrees.
        max_zoom: zoom drawn from [1, max_zoom].
        max_warp: perspective magnitude drawn from [-max_warp, max_warp] along x and y.
        min_scale: random-resized crop keeps between ``min_scale`` and all of the image's area.
        ratio: the crop's aspect ratio is drawn (log-uniformly) from this range.
        p_affine: probability that an image gets rotation, zoom and warp.
        max_lighting: brightness shift in [-max_lighting/2, max_lighting/2], contrast factor
            between (1 - max_lighting) and 1 / (1 - max_lighting); applied with ``p_lighting``.
        padding_mode: what fills the pixels that come from outside the photo (``grid_sample``'s).
    """

    flip: bool = True
    max_rotate: float = 10.0
    max_zoom: float = 1.1
    max_warp: float = 0.2
    min_scale: float = MIN_SCALE
    ratio: tuple[float, float] = (3 / 4, 4 / 3)
    p_affine: float = 0.75
    max_lighting: float = 0.2
    p_lighting: float = 0.75
    padding_mode: str = "reflection"

    def __post_init__(self):
        if not 0 < self.min_scale <= 1:
            raise ValueError(f"AugmentOptions: min_scale must be in (0, 1], got {self.min_scale}")
        if self.max_zoom < 1:
            raise ValueError(f"AugmentOptions: max_zoom must be >= 1 (1 = no zoom), got {self.max_zoom}")
        if not 0 <= self.max_lighting < 1:
            raise ValueError(f"AugmentOptions: max_lighting must be in [0, 1), got {self.max_lighting}")
        object.__setattr__(self, "ratio", tuple(self.ratio))


class BatchAugment:
    """Augment a uint8 batch on its device and produce normalized float images of the final size.

    Two frozen specs say everything it does: the data's ``Preprocessing`` (the final size and the
    normalization, shared with validation, export and prediction) and the ``AugmentOptions`` of the
    random augmentation. To change either, build a new ``BatchAugment``: it never changes.

        BatchAugment(Preprocessing(size=288))                          default augmentation
        BatchAugment(spec, AugmentOptions(max_rotate=20, flip=False))  other random settings
    """

    def __init__(self, preprocessing: Preprocessing | None = None, options: AugmentOptions | None = None):
        if preprocessing is not None and not isinstance(preprocessing, Preprocessing):
            raise TypeError(f"BatchAugment: preprocessing must be a Preprocessing, got {type(preprocessing).__name__}")
        if options is not None and not isinstance(options, AugmentOptions):
            raise TypeError(f"BatchAugment: options must be an AugmentOptions (the random settings), got "
                            f"{type(options).__name__}")
        self._preprocessing = preprocessing if preprocessing is not None else Preprocessing()
        self._options = options if options is not None else AugmentOptions()
        # Reused float input buffers (allocating 80 MB per batch is slow), one set per thread, so
        # that a web server may call the same object from several threads at once.
        self._local = threading.local()

    @property
    def preprocessing(self) -> Preprocessing:
        """The final size and the normalization (read-only: build a new ``BatchAugment`` to change it)."""
        return self._preprocessing

    @property
    def options(self) -> AugmentOptions:
        """The random augmentation's settings (read-only)."""
        return self._options

    def sample(self, n: int, generator: torch.Generator | None = None) -> AugmentParams:
        """Draw independent random parameters for ``n`` images (on the CPU, from ``generator``)."""
        def u(lo, hi):
            return torch.rand(n, generator=generator) * (hi - lo) + lo

        def sometimes(x, default, p):
            return torch.where(torch.rand(n, generator=generator) < p, x, torch.full_like(x, default))

        o = self.options
        p = o.p_affine
        zoom = sometimes(u(1.0, o.max_zoom), 1.0, p)
        zoom_room = 1 - 1 / zoom  # how far the zoom centre can move and stay inside the image
        area = u(o.min_scale, 1.0)
        log_ratio = u(math.log(o.ratio[0]), math.log(o.ratio[1]))
        crop_w = (area * log_ratio.exp()).sqrt().clamp(max=1.0)
        crop_h = (area / log_ratio.exp()).sqrt().clamp(max=1.0)
        contrast = sometimes(u(math.log(1 - o.max_lighting), -math.log(1 - o.max_lighting)).exp(), 1.0, o.p_lighting)
        brightness = sometimes(u(-o.max_lighting / 2, o.max_lighting / 2), 0.0, o.p_lighting)
        return AugmentParams(
            flip=(torch.rand(n, generator=generator) < 0.5) & o.flip,
            rotate=sometimes(u(-o.max_rotate, o.max_rotate), 0.0, p),
            zoom=zoom,
            zoom_cx=u(-1, 1) * zoom_room,
            zoom_cy=u(-1, 1) * zoom_room,
            warp_x=sometimes(u(-o.max_warp, o.max_warp), 0.0, p),
            warp_y=sometimes(u(-o.max_warp, o.max_warp), 0.0, p),
            crop_w=crop_w,
            crop_h=crop_h,
            crop_cx=u(-1, 1) * (1 - crop_w),
            crop_cy=u(-1, 1) * (1 - crop_h),
            contrast=contrast,
            brightness=brightness,
        )

    def _as_float(self, xb: Tensor) -> Tensor:
        """uint8 -> float32 (0..255) into a reused channels-last buffer."""
        if xb.is_floating_point():
            return xb.float()
        key = (xb.shape, xb.device, torch.is_inference_mode_enabled())  # inference tensors stay inside
        buffers = self._local.__dict__.setdefault("buffers", {})
        buf = buffers.get(key)
        if buf is None:
            buffers.clear()  # keep only the latest shape (the last batch of an epoch is smaller)
            buf = buffers[key] = torch.empty(xb.shape, device=xb.device, memory_format=torch.channels_last)
        return buf.copy_(xb)

    def __call__(self, xb: Tensor, train: bool = True, generator: torch.Generator | None = None,
                 params: AugmentParams | None = None) -> Tensor:
        """(n, 3, H, W) uint8 -> (n, 3, size, size) float, augmented when ``train``, normalized."""
        n, _, h, w = xb.shape
        size = (self.preprocessing.size, self.preprocessing.size)
        if params is None and not train:  # validation: the identity map and no lighting change
            x = warp_images(self._as_float(xb), torch.eye(3).expand(n, 3, 3), size)
            return self.preprocessing.normalize(x, in_place=True)  # x is a fresh tensor: no copy
        params = (params if params is not None else self.sample(n, generator)).to(xb.device)
        x = warp_images(self._as_float(xb), params.matrices(aspect=w / h), size,
                        padding_mode=self.options.padding_mode)  # (n, 3, size, size), values 0..255
        return self.light_and_normalize(x, params)

    def light_and_normalize(self, x: Tensor, params: AugmentParams) -> Tensor:
        """Apply contrast and brightness, clip to the pixel range, normalize per channel.

        Lighting is an affine map on the 0..255 pixels, ``(x/255 - 0.5) * c + 0.5 + b`` (times 255),
        and the normalization is one too (``Preprocessing.scale_shift``): composed, they are a single
        multiply and add per pixel. Clipping the lit pixels to 0..255 before normalizing equals
        clipping to the normalized images of 0 and 255 after it, so one clamp follows.
        """
        scale, shift = self.preprocessing.scale_shift()  # (1, C, 1, 1) each, on the CPU
        # The clamp's bounds as plain numbers, read on the CPU: reading them from the GPU would wait for it.
        lows, highs = shift.flatten().tolist(), (255 * scale + shift).flatten().tolist()
        scale, shift = scale.to(x.device), shift.to(x.device)
        c = params.contrast.view(-1, 1, 1, 1)
        b = params.brightness.view(-1, 1, 1, 1)
        x = x.mul_(c * scale).add_((0.5 - 0.5 * c + b) * 255 * scale + shift)  # (n, C, 1, 1) factors
        for ch, (lo, hi) in enumerate(zip(lows, highs)):  # a clamp with plain numbers is fast
            x[:, ch].clamp_(lo, hi)
        return x

    def decode(self, x: Tensor) -> Tensor:
        """Undo the normalization: back to 0..1 for display (``Preprocessing.denormalize``)."""
        return self.preprocessing.denormalize(x)

    def __repr__(self) -> str:
        return f"BatchAugment({self.preprocessing}, {self.options})"
