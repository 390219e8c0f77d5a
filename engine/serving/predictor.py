"""Prediction from an exported model: what the web demo runs for every uploaded photo.

``load_predictor(folder)`` reads an export (safetensors + JSON, never a pickle) and returns a
``Predictor``. Its ``predict(image)`` applies exactly the validation preprocessing of training
(upright, RGB, centre presize, one resample to the final size, normalization) and returns
``(label, probabilities)``; ``tta=True`` also looks at the mirrored photo and averages.

Two ways to run the network, the faster one when it can be trusted:

* **onnxruntime** (``onnx.py``): the export's ONNX graph (its int8 copy on CPUs with 8-bit dot
  product units, when the export has one), or, for an export without a graph, one built from the
  weights at load time. It needs no compiler and starts in a moment.
* **PyTorch**: BatchNorm folded into the convolutions, bfloat16 on CPUs that have it, fp16 on a
  GPU (on a GPU onnxruntime serves only when onnxruntime-gpu is installed).

Before a graph is used, its probabilities on a fixed test picture are compared with the PyTorch
path's: within a tolerance everywhere (0.01, which also keeps the label wherever it is clear;
for int8 the agreement ``export`` measured). If anything fails, the predictor keeps PyTorch and says why,
once (``runtime_report``, and a ``RuntimeWarning``).

Decoding shrinks big JPEGs in the DCT domain while they are decoded (never below the presize),
and the resampling is OpenCV's (``Preprocessing.validation_pixels``): the same pixels as in
training, without building a tensor or a sampling grid.
"""

from __future__ import annotations

import functools
import hashlib
import threading
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

from ..data.augment import BatchAugment
from ..data.preprocessing import Preprocessing
from ..data.transforms import MAX_PIXELS, load_array, to_rgb
from ..models import PET_IMAGENET_CLASSES, create_model, imagenet_categories
from .export import MAX_FILE_BYTES, ExportRefused, read_export, read_regular_file
from .fold import fold_batchnorm
from .onnx import probabilities

__all__ = ["Predictor", "load_predictor", "NOT_A_PET_BELOW", "is_not_a_pet"]

TOLERANCE = 0.01  # the largest probability gap allowed between a graph and the PyTorch path
NOT_A_PET_BELOW = 0.10  # ImageNet's total probability on its cat and dog classes


_PET_INDICES = np.array(sorted(PET_IMAGENET_CLASSES))  # ImageNet's cat and dog classes


@functools.cache
def _pet_imagenet_names() -> frozenset[str]:
    names = imagenet_categories()
    return frozenset(names[i] for i in PET_IMAGENET_CLASSES)


def is_not_a_pet(details: dict) -> bool:
    """Whether the ImageNet check says "no cat or dog here": under ``NOT_A_PET_BELOW`` on all its cat
    and dog classes together, and its top class not one of them (``predict_details`` output)."""
    inet, pet_p = details.get("imagenet"), details.get("imagenet_pet_probability")
    if not inet or pet_p is None:
        return False
    return pet_p < NOT_A_PET_BELOW and inet[0][0] not in _pet_imagenet_names()


class Predictor:
    """A loaded model, its preprocessing and the runtime that answers. Use ``load_predictor``.

    Args:
        model: the network (a ``models.Classifier``), for the PyTorch path and the checks; or a
            function that builds it, called only when it is first needed (``load_predictor``
            passes one when the export records what the graph must answer: a server on
            onnxruntime then never builds the PyTorch model, nor imports timm, at start).
        meta: the export's ``meta.json``.
        device: "cpu" or "cuda" (default: a GPU when there is one).
        fast: fold BatchNorm and use half precision on the PyTorch path (False: plain float32).
        graph: an ONNX graph (path or bytes) to try, or None for PyTorch only.
        int8: an int8 graph to try first, with the tolerance ``export`` measured for it.
        reference: the PyTorch model's probabilities on the check picture (``onnx.reference_probabilities``),
            when the export recorded them; else they are computed from ``model``.
    """

    def __init__(self, model, meta: dict, device: str | torch.device | None = None, fast: bool = True,
                 graph: str | Path | bytes | None = None, int8: tuple[str | Path, float] | None = None,
                 reference: list[np.ndarray] | None = None):
        self.meta, self.vocab = meta, list(meta["vocab"])
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.preprocessing = Preprocessing.from_meta(meta)  # what the model was trained with
        self.presize = self.preprocessing.presizer()
        self.augment = BatchAugment(self.preprocessing)  # for batches of tensors (summary, the labs)
        spec = self.preprocessing
        self._scale = torch.tensor([1 / (255 * s) for s in spec.std]).view(1, 3, 1, 1).to(self.device)
        self._shift = torch.tensor([-m / s for m, s in zip(spec.mean, spec.std)]).view(1, 3, 1, 1).to(self.device)
        self._build_lock = threading.Lock()
        self._lock = threading.Lock()  # one forward pass at a time through the session
        # the float32 model, and the PyTorch path's copy: BatchNorm folded, and half precision where
        # the hardware does it natively (probabilities move by about 0.002, the label practically
        # never); each built when first used
        self._float = model.float().eval().cpu() if isinstance(model, nn.Module) else None
        self._fast, self._model = fast, None
        self._build = model if not isinstance(model, nn.Module) else None
        self.dtype = _fast_dtype(self.device) if fast else torch.float32
        has_imagenet = meta.get("imagenet_classifier", False) if self._float is None \
            else self._float.imagenet_classifier is not None
        self._imagenet_names = imagenet_categories() if has_imagenet else None
        if reference is None and (graph is not None or int8 is not None):
            from .onnx import reference_probabilities

            reference = reference_probabilities(self.float_model, spec)
        self._reference = reference
        self.runner, self.runtime = None, "pytorch"
        self.runtime_report = self._choose_runtime(graph, int8)

    @property
    def float_model(self) -> nn.Module:
        """The network in float32 on the CPU, as exported."""
        if self._float is None:
            with self._build_lock:
                if self._float is None:
                    self._float = self._build().float().eval().cpu()
        return self._float

    @property
    def model(self) -> nn.Module:
        """The PyTorch path's network (built on first use: a server on onnxruntime never needs it)."""
        if self._model is None:
            m = self.float_model
            with self._build_lock:
                if self._model is None:
                    self._model = _fast_copy(m, self.device) if self._fast else m.to(self.device)
        return self._model

    # --- which runtime -----------------------------------------------------------------------------

    def _choose_runtime(self, graph, int8) -> str:
        from .onnx import has_int8_units

        reasons = []
        if graph is None and int8 is None:
            return f"PyTorch ({self._torch_words()})"
        try:
            import onnxruntime  # noqa: F401
        except ImportError:
            report = f"PyTorch ({self._torch_words()}): onnxruntime is not installed (pip install onnxruntime)"
            warnings.warn(f"petbreeds: predictions run on {report}", RuntimeWarning, stacklevel=3)
            self.model  # noqa: B018 - built now (see below)
            return report
        if self.device.type == "cuda" and not _cuda_provider():
            self.model  # noqa: B018 - built now (see below)
            return f"PyTorch ({self._torch_words()}): onnxruntime-gpu is not installed, so the GPU runs PyTorch"
        candidates = []
        if int8 is not None and self.device.type == "cpu":
            if has_int8_units():
                candidates.append(("onnxruntime int8", int8[0], max(int8[1], TOLERANCE)))
            else:
                reasons.append("the int8 graph is not used: this CPU has no 8-bit dot-product units (VNNI/AMX)")
        if graph is not None:
            candidates.append(("onnxruntime float32", graph, TOLERANCE))
        for name, source, tolerance in candidates:
            try:
                runner = self._checked_runner(source, tolerance)
            except ExportRefused:  # a graph for other photos than meta.json says: the export is not served
                raise
            except Exception as err:  # an unreadable graph, an onnxruntime that refuses it, a mismatch
                reasons.append(f"{name} is not used ({type(err).__name__}: {str(err)[:300]})")
                continue
            self.runner, self.runtime = runner, name
            return f"{name}, checked against PyTorch" + (f" ({'; '.join(reasons)})" if reasons else "")
        report = f"PyTorch ({self._torch_words()}): " + "; ".join(reasons)
        warnings.warn(f"petbreeds: predictions run on {report}", RuntimeWarning, stacklevel=3)
        self.model  # noqa: B018 - built now: weights that do not fit fail at load, not at the first photo
        return report

    def _torch_words(self) -> str:
        return f"{str(self.dtype).removeprefix('torch.')} on {self.device.type}"

    def _checked_runner(self, source, tolerance: float):
        """An ``OnnxRunner`` for ``source`` whose probabilities on the test picture agree with PyTorch's."""
        from .onnx import OnnxRunner, check_input

        runner = OnnxRunner(source, device=self.device.type)
        shape = runner.session.get_inputs()[0].shape  # [n, size, size, 3] from export_onnx
        size = self.preprocessing.size
        if any(isinstance(d, int) and d != size for d in shape[1:3]):
            raise ExportRefused(f"it says the model sees {size}x{size} pixels, but its ONNX graph takes {shape[1]}x"
                                f"{shape[2]}: the two do not belong together; export the model again")
        got = [probabilities(x) for x in runner.run(check_input(self.preprocessing.size)) if x is not None]
        want = self._reference
        if len(got) != len(want) or any(g.shape != w.shape for g, w in zip(got, want)):
            raise ValueError("the graph's outputs do not fit the model")
        # Within the tolerance everywhere also means the same breed wherever PyTorch's top two are
        # more than twice the tolerance apart: no separate label check is needed.
        gap = max(float(np.abs(g - w).max()) for g, w in zip(got, want))
        if gap > tolerance:
            raise ValueError(f"its probabilities differ from PyTorch's by {gap:.3f} (allowed: {tolerance:.3f})")
        return runner

    # --- one photo ---------------------------------------------------------------------------------

    def load(self, image) -> np.ndarray:
        """An upright (H, W, 3) uint8 RGB array from a path, bytes, a PIL image or an array (big
        JPEGs shrink while they are decoded, never below the presize)."""
        if isinstance(image, (str, Path, bytes, bytearray)):
            return load_array(image, min_size=self.preprocessing.presize, max_pixels=MAX_PIXELS)
        if isinstance(image, np.ndarray):
            return np.asarray(to_rgb(Image.fromarray(image)))
        if isinstance(image, Image.Image):
            return np.asarray(to_rgb(image))
        raise TypeError(f"predict takes a file path, bytes, a PIL image or an array, got {type(image).__name__}")

    def pixels(self, image, tta: bool = False) -> np.ndarray:
        """The model's input before normalization: (1, size, size, 3) float32 0..255; with ``tta`` a
        second picture, the mirror of the first: (2, size, size, 3)."""
        x = self.preprocessing.validation_pixels(self.load(image))[None]
        return np.concatenate([x, x[:, :, ::-1]]) if tta else x

    def preprocess(self, image, tta: bool = False) -> torch.Tensor:
        """The normalized model input as a tensor on the device: (1 or 2, 3, size, size)."""
        return self._normalized(self.pixels(image, tta))

    def _normalized(self, pixels: np.ndarray) -> torch.Tensor:
        x = torch.from_numpy(np.ascontiguousarray(pixels)).to(self.device).permute(0, 3, 1, 2)
        return (x * self._scale + self._shift).to(self.dtype).contiguous(memory_format=torch.channels_last)

    def logits(self, pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Breed and ImageNet logits of a batch of ``pixels`` (see ``pixels``), on the chosen runtime."""
        with self._lock:
            if self.runner is not None:
                return self.runner.run(pixels)
            with torch.inference_mode():
                features = self.model.body(self._normalized(pixels))
                breeds = self.model.head(features).float().cpu().numpy()
                inet = self.model.imagenet_logits(features).float().cpu().numpy() \
                    if self._imagenet_names is not None else None
            return breeds, inet

    def details_from_logits(self, breeds: np.ndarray, inet: np.ndarray | None, imagenet_top: int = 5) -> dict:
        """``predict_details``'s answer for one photo's logits (several rows: their mirrors, averaged)."""
        probs = probabilities(breeds).mean(0)  # (n_classes,)
        out = {"label": self.vocab[int(probs.argmax())],
               "probabilities": {v: float(p) for v, p in zip(self.vocab, probs)},
               "imagenet": None, "imagenet_pet_probability": None}
        if inet is not None and self._imagenet_names is not None:
            p = probabilities(inet).mean(0)  # (1000,)
            top = np.argsort(-p)[:imagenet_top]
            out["imagenet"] = [(self._imagenet_names[i], float(p[i])) for i in top]
            out["imagenet_pet_probability"] = float(p[_PET_INDICES].sum())
        return out

    def predict_details(self, image, tta: bool = False, imagenet_top: int = 5) -> dict:
        """Breed probabilities, plus what the original ImageNet classifier sees (when available).

        Returns a dict with ``label``, ``probabilities`` (breed -> p, in vocab order),
        ``imagenet`` (top classes as (name, p), or None) and ``imagenet_pet_probability`` (the
        ImageNet probability mass on dog and cat classes, or None).
        """
        return self.details_from_logits(*self.logits(self.pixels(image, tta)), imagenet_top=imagenet_top)

    def predict(self, image, tta: bool = False) -> tuple[str, dict[str, float]]:
        """``(label, probabilities)`` for one image (path, bytes, PIL image or array)."""
        d = self.predict_details(image, tta=tta)
        return d["label"], d["probabilities"]

    def __repr__(self) -> str:
        spec = self.preprocessing
        return (f"Predictor({self.meta['arch']}, {len(self.vocab)} classes, presize {spec.presize} -> {spec.size}, "
                f"{self.runtime} on {self.device.type})")


def _fast_copy(model: nn.Module, device: torch.device) -> nn.Module:
    """The PyTorch path's model: BatchNorm folded, in bfloat16 on CPUs with bf16 units, fp16 on a GPU."""
    import copy

    fast = copy.deepcopy(model)
    fold_batchnorm(fast.body)
    return fast.to(device, dtype=_fast_dtype(device), memory_format=torch.channels_last)


def _fast_dtype(device: torch.device) -> torch.dtype:
    """float16 on a GPU, bfloat16 on CPUs with bf16 units, else float32."""
    if device.type == "cuda":
        return torch.float16
    if torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported():
        return torch.bfloat16
    return torch.float32


def _cuda_provider() -> bool:
    try:
        import onnxruntime as ort
    except ImportError:
        return False
    return "CUDAExecutionProvider" in ort.get_available_providers()


def load_predictor(path: str | Path, device: str | torch.device | None = None, fast: bool = True,
                   runtime: str = "auto") -> Predictor:
    """Load an export folder (see ``export.py``); refuses pickles, checks the checksums.

    Args:
        runtime: "auto" (onnxruntime when its check passes: the export's graph, else one built
            from the weights now; else PyTorch), "onnx" (the same, but an export without a graph
            gets none), or "pytorch".
    """
    if runtime not in ("auto", "onnx", "pytorch"):
        raise ValueError(f"runtime must be 'auto', 'onnx' or 'pytorch', got {runtime!r}")
    path = Path(path)
    meta, state = read_export(path)
    folder = path if path.is_dir() else path.parent

    def build() -> nn.Module:
        model = create_model(meta["arch"], n_classes=len(meta["vocab"]), pretrained=False,
                             imagenet_head=meta.get("imagenet_classifier", False))
        try:
            model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
        except RuntimeError as err:
            raise ValueError(f"the weights in {path} do not fit a {meta['arch']} with {len(meta['vocab'])} "
                             f"classes ({str(err).splitlines()[0]}); export the model again") from err
        return model

    def predictor(model, **kwargs) -> Predictor:
        try:
            return Predictor(model, meta, device=device, fast=fast, graph=graph, int8=int8, **kwargs)
        except ExportRefused as err:  # a graph for other photos than meta.json describes
            raise ExportRefused(f"{folder / 'meta.json'}: {err}") from None

    graph = int8 = reference = None
    if runtime != "pytorch":
        graph = _graph_file(folder, meta.get("onnx"))
        q = meta.get("int8")
        if q is not None and (quantized := _graph_file(folder, q)) is not None:
            int8 = (quantized, _tolerance(folder / "meta.json", q.get("tolerance", TOLERANCE)))
        reference = _recorded_reference(meta, len(meta["vocab"]))
        if graph is None and runtime == "auto":
            model = build()
            try:
                from .onnx import export_onnx

                graph = export_onnx(model, Preprocessing.from_meta(meta))  # in memory, from the weights
            except Exception as err:  # no onnx package, an exporter that fails: PyTorch answers
                warnings.warn(f"petbreeds: could not build an ONNX graph from {path} ({err}); PyTorch answers",
                              RuntimeWarning, stacklevel=2)
            return predictor(model)
    # With a recorded reference and a graph to try, the PyTorch model is built only if it is needed.
    lazy = reference is not None and (graph is not None or int8 is not None)
    return predictor(build if lazy else build(), reference=reference if lazy else None)


def _recorded_reference(meta: dict, n_classes: int) -> list[np.ndarray] | None:
    """The PyTorch model's probabilities on the check picture as ``export`` recorded them, when
    they are there and have the right shapes (else None: they are computed at load)."""
    check = (meta.get("onnx") or {}).get("check") if isinstance(meta.get("onnx"), dict) else None
    try:
        breeds = np.asarray(check["breeds"], dtype=np.float32)[None]
        inet = check.get("imagenet")
        want = [breeds] + ([np.asarray(inet, dtype=np.float32)[None]] if inet is not None else [])
    except (TypeError, KeyError, ValueError):
        return None
    if breeds.shape != (1, n_classes) or (meta.get("imagenet_classifier") and len(want) != 2) \
            or any(not np.isfinite(w).all() for w in want):
        return None
    return want


def _graph_file(folder: Path, entry: dict | None) -> bytes | None:
    """The graph an export's meta.json names, if it is there and its checksum matches (read once:
    what is checked is what runs). A graph that is not a regular file is refused (``ExportRefused``)."""
    from .export import GRAPH_NAME

    if not isinstance(entry, dict) or not isinstance(entry.get("file"), str) or not GRAPH_NAME.match(entry["file"]):
        return None
    file = folder / entry["file"]
    data = read_regular_file(file, MAX_FILE_BYTES) if file.exists() else None
    if data is None or hashlib.sha256(data).hexdigest() != entry.get("sha256"):
        warnings.warn(f"petbreeds: {file} is missing or does not match meta.json; it is not used", RuntimeWarning,
                      stacklevel=3)
        return None
    return data


def _tolerance(file: Path, value) -> float:
    """The int8 graph's tolerance from meta.json: a probability gap, so a number from 0 to 1."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise ExportRefused(f"{file} gives the int8 graph the tolerance {value!r:.40}, not a probability gap from "
                            "0 to 1; export the model again")
    return float(value)
