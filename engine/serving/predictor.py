"""Prediction from an exported model: what the web demo runs for every uploaded photo.

``load_predictor(folder)`` reads an export (safetensors + JSON, never a pickle) and returns a
``Predictor``. Its ``predict(image)`` applies exactly the validation preprocessing used in
training (upright, RGB, centre presize, one resample to the final size, normalization) and
returns ``(label, probabilities)``; ``tta=True`` also looks at the mirrored photo and averages.

For speed the BatchNorm layers of the body are folded into the convolutions before them: in
inference a BatchNorm is a fixed per-channel scale and shift, which the convolution's weights and
bias can absorb, so one pass over the data disappears per layer (same outputs to ~1e-6).

``Predictor.compile()`` goes one step further, for a server that answers many photos: it swaps in a
body compiled ahead of time for this CPU (``engine/serving/compile.py``), about twice as fast. It costs
half a minute once per model and machine (then it is cached), needs a C++ compiler, and is
checked against the plain body before it is used; when anything fails the predictor says why and
keeps the plain path, which gives the same answers.
"""

from __future__ import annotations

import threading
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

from ..data.preprocessing import Preprocessing
from .export import read_export
from .fold import fold_batchnorm
from ..models import PET_IMAGENET_CLASSES, create_model, imagenet_categories
from ..data.transforms import MAX_PIXELS, load_array, pil_to_tensor, to_rgb

__all__ = ["Predictor", "load_predictor"]


class Predictor:
    """A loaded model plus its preprocessing. Use ``load_predictor`` to make one."""

    def __init__(self, model: nn.Module, meta: dict, device: str | torch.device | None = None, fast: bool = True):
        self.meta, self.vocab = meta, list(meta["vocab"])
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.preprocessing = Preprocessing.from_meta(meta)  # what the model was trained with
        self.presize, self.augment = self.preprocessing.presizer(), self.preprocessing.batch_augment()
        model = model.float().eval()
        # Half precision where the hardware does it natively: bfloat16 on CPUs with bf16 units,
        # float16 on GPUs. Probabilities move by about 0.002; the label practically never.
        self.dtype = torch.float32
        if fast:
            fold_batchnorm(model.body)
            if self.device.type == "cuda":
                self.dtype = torch.float16
            elif torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported():
                self.dtype = torch.bfloat16
        self.model = model.to(self.device, dtype=self.dtype, memory_format=torch.channels_last)
        self._imagenet_names = imagenet_categories() if model.imagenet_classifier is not None else None
        self._compiled = None  # the compiled body, once ``compile`` succeeded
        self._compiled_shape: tuple | None = None
        self._compiled_lock = threading.Lock()  # one call at a time into the compiled library
        self.compile_report: str | None = None  # what ``compile`` did, in words

    def compile(self, cache_dir: str | Path | None = None, tolerance: float = 0.02) -> "Predictor":
        """Use a compiled body for single photos (see ``engine/serving/compile.py``); returns self.

        On a CPU only (on a GPU the plain half-precision path is already fast). The first time
        for a model and machine it builds the package in a child process (half a minute or more);
        afterwards it loads it from ``cache_dir`` (default: the petbreeds cache) in a moment.
        The compiled body is used only if, on a test image, its probabilities are within
        ``tolerance`` of the plain body's with the same label, and only for inputs exactly like
        the ones ``predict_details`` makes for one photo (a TTA pair takes the plain path). Safe
        to call from a background thread while predictions are served. The outcome, in words,
        is in ``compile_report`` (and a ``RuntimeWarning`` when the plain path is kept).
        """
        from .compile import compile_body, example_input

        def keep_plain(why: str) -> "Predictor":
            self.compile_report = f"{why}; predictions stay on the plain path, which gives the same answers, a little slower"
            warnings.warn(self.compile_report, RuntimeWarning, stacklevel=3)
            return self

        if self.device.type != "cpu":
            self.compile_report = f"not compiled: on {self.device.type} the plain path is already fast"
            return self
        spec = {"arch": self.meta["arch"], "size": self.augment.size, "dtype": str(self.dtype).removeprefix("torch.")}
        x = example_input(spec)
        try:
            runner, facts = compile_body(self.model.body, spec, cache_dir=cache_dir)
            with torch.inference_mode():
                got = self.model.head(runner(x)).float().softmax(dim=1)
                want = self.model.head(self.model.body(x)).float().softmax(dim=1)
        except Exception as err:  # no C++ compiler, an unsupported platform, a damaged cache ...
            return keep_plain(f"compiling the model failed ({type(err).__name__}: {str(err)[:700]})")
        gap = float((got - want).abs().max())
        if gap > tolerance or int(got.argmax()) != int(want.argmax()):
            return keep_plain(f"the compiled model differs from the plain one (probabilities by {gap:.3f})")
        with self._compiled_lock:
            self._compiled, self._compiled_shape = runner, tuple(x.shape)
        how = "loaded from the cache" if facts["from_cache"] else "compiled"
        self.compile_report = (f"model {how} in {facts['seconds']:.1f} s (probabilities within {gap:.4f} of the "
                               f"plain model): single photos now take the fast path")
        return self

    @property
    def compiled(self) -> bool:
        """Whether single photos go through the compiled body."""
        return self._compiled is not None

    def body(self, x: torch.Tensor) -> torch.Tensor:
        """The body's features for a prepared batch: the compiled body when it fits, else the plain one."""
        if (self._compiled is not None and tuple(x.shape) == self._compiled_shape and x.dtype == self.dtype
                and x.device.type == "cpu" and x.is_contiguous(memory_format=torch.channels_last)):
            # exactly the input it was compiled for: the compiled code does not check shapes or layout
            with self._compiled_lock:
                return self._compiled(x)
        return self.model.body(x)

    def load(self, image) -> np.ndarray:
        """An upright (H, W, 3) uint8 RGB array from a path, bytes, a PIL image or an array."""
        if isinstance(image, (str, Path, bytes, bytearray)):
            return load_array(image, min_size=self.presize.size, max_pixels=MAX_PIXELS)
        if isinstance(image, np.ndarray):
            return np.asarray(to_rgb(Image.fromarray(image)))
        if isinstance(image, Image.Image):
            return np.asarray(to_rgb(image))
        raise TypeError(f"predict takes a file path, bytes, a PIL image or an array, got {type(image).__name__}")

    def preprocess(self, image, tta: bool = False) -> torch.Tensor:
        """The validation preprocessing: (1, 3, size, size), normalized, on the device; with
        ``tta`` a second image, the mirror of the first: (2, 3, size, size)."""
        x = pil_to_tensor(self.presize(self.load(image), train=False))[None].to(self.device)
        out = self.augment(x, train=False)
        return torch.cat([out, out.flip(-1)]) if tta else out

    @torch.inference_mode()
    def predict_details(self, image, tta: bool = False, imagenet_top: int = 5) -> dict:
        """Breed probabilities, plus what the original ImageNet classifier sees (when available).

        Returns a dict with ``label``, ``probabilities`` (breed -> p, in vocab order),
        ``imagenet`` (top classes as (name, p), or None) and ``imagenet_pet_probability`` (the
        ImageNet probability mass on dog and cat classes, or None).
        """
        x = self.preprocess(image, tta=tta).to(self.dtype).contiguous(memory_format=torch.channels_last)
        features = self.body(x)  # (n, C, h, w)
        probs = self.model.head(features).float().softmax(dim=1).mean(0).cpu()  # (n_classes,)
        out = {"label": self.vocab[int(probs.argmax())],
               "probabilities": {v: float(p) for v, p in zip(self.vocab, probs)},
               "imagenet": None, "imagenet_pet_probability": None}
        if self._imagenet_names is not None:
            inet = self.model.imagenet_logits(features).float().softmax(dim=1).mean(0).cpu()  # (1000,)
            top = inet.topk(imagenet_top)
            out["imagenet"] = [(self._imagenet_names[i], float(p)) for p, i in zip(top.values, top.indices)]
            out["imagenet_pet_probability"] = float(inet[sorted(PET_IMAGENET_CLASSES)].sum())
        return out

    def predict(self, image, tta: bool = False) -> tuple[str, dict[str, float]]:
        """``(label, probabilities)`` for one image (path, bytes, PIL image or array)."""
        d = self.predict_details(image, tta=tta)
        return d["label"], d["probabilities"]

    def __repr__(self) -> str:
        return (f"Predictor({self.meta['arch']}, {len(self.vocab)} classes, presize {self.presize.size} -> "
                f"{self.augment.size}, device {self.device})")


def load_predictor(path: str | Path, device: str | torch.device | None = None, fast: bool = True) -> Predictor:
    """Load an export folder (see ``export.py``); refuses pickles, checks the checksum."""
    meta, state = read_export(path)
    model = create_model(meta["arch"], n_classes=len(meta["vocab"]), pretrained=False,
                         imagenet_head=meta.get("imagenet_classifier", False))
    try:
        model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
    except RuntimeError as err:
        raise ValueError(f"the weights in {path} do not fit a {meta['arch']} with {len(meta['vocab'])} classes "
                         f"({str(err).splitlines()[0]}); export the model again") from err
    return Predictor(model, meta, device=device, fast=fast)
