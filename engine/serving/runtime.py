"""What runs the network: onnxruntime when its check against PyTorch passes, else PyTorch.

A runtime is anything with a ``name`` and a ``run(pixels)`` that takes the pixels the
preprocessing leaves, (n, size, size, 3) float32 0..255, and returns the logits of both heads
and the class-activation maps: (breeds (n, classes), ImageNet (n, 1000) or None, maps (n,
classes, h, w) or None; see ``engine/cam.py``). That is all a ``Predictor`` asks of it
(``Runtime``). Two exist:

* ``OnnxRuntime``: onnxruntime on the export's ONNX graph (``onnx.py``), or its int8 copy on CPUs
  with 8-bit dot-product units. It needs no compiler and starts in a moment.
* ``TorchRuntime``: PyTorch, BatchNorm folded into the convolutions, bfloat16 on CPUs that have
  it, float16 on a GPU (on a GPU onnxruntime serves only when onnxruntime-gpu is installed).

``choose_runtime`` tries the graphs, fastest first. A graph is used only if its probabilities on a
fixed test picture (``onnx.check_input``) agree with the float32 PyTorch model's within a
tolerance everywhere (``TOLERANCE``, which also keeps the label wherever it is clear; for int8 the
agreement ``export`` measured). Otherwise PyTorch answers, and the report says why, once (also as
a ``RuntimeWarning``).

To add a runtime (OpenVINO, say): write a class with ``name`` and ``run`` (its constructor raising
when it cannot serve this model or this machine), and add it to ``_candidates`` with its
tolerance. The check, the fallback and the report then apply to it as to the graphs.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from torch import nn

from ..cam import activation_maps
from .exported import ExportRefused
from .fold import fold_batchnorm
from .onnx import OnnxRunner, check_input, probabilities

__all__ = ["TOLERANCE", "Runtime", "Network", "TorchRuntime", "OnnxRuntime", "choose_runtime", "check_runtime",
           "fast_dtype", "cuda_provider"]

TOLERANCE = 0.01  # the largest probability gap allowed between a runtime and the PyTorch model


class Runtime(Protocol):
    """What a ``Predictor`` needs from a runtime."""

    name: str  # e.g. "onnxruntime float32", "pytorch": what the predictor reports

    def run(self, pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        """(n, size, size, 3) float32 pixels 0..255 -> (breed logits (n, classes), ImageNet logits or
        None, class-activation maps (n, classes, h, w) or None)."""
        ...


class Network:
    """The float32 PyTorch network on the CPU, as exported: the model itself, or a function that
    builds it on first use (thread-safe). A server on onnxruntime whose export recorded the check's
    answer never builds it, nor imports timm."""

    def __init__(self, model: nn.Module | Callable[[], nn.Module]):
        self._model = model.float().eval().cpu() if isinstance(model, nn.Module) else None
        self._build = None if isinstance(model, nn.Module) else model
        self._lock = threading.Lock()

    @property
    def built(self) -> bool:
        """Whether the network exists yet."""
        return self._model is not None

    def get(self) -> nn.Module:
        """The network, built now if it was not yet."""
        if self._model is None:
            with self._lock:
                if self._model is None:
                    self._model = self._build().float().eval().cpu()
        return self._model


class TorchRuntime:
    """PyTorch on ``device``: with ``fast``, a copy with BatchNorm folded, in half precision where
    the hardware does it natively (probabilities move by about 0.002, the label practically
    never); else the float32 network itself. Built at once: weights that do not fit fail at load."""

    name = "pytorch"

    def __init__(self, model: nn.Module, preprocessing, device: str | torch.device = "cpu", fast: bool = True):
        self.device = torch.device(device)
        self.preprocessing = preprocessing
        self.dtype = fast_dtype(self.device) if fast else torch.float32
        self.model = _fast_copy(model, self.device) if fast else model.to(self.device)

    def run(self, pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
        """(n, size, size, 3) float32 pixels 0..255 -> (breed logits, ImageNet logits or None, maps)."""
        x = torch.from_numpy(np.ascontiguousarray(pixels)).to(self.device).permute(0, 3, 1, 2)  # (n, 3, size, size)
        with torch.inference_mode():
            x = self.preprocessing.normalize(x).to(self.dtype).contiguous(memory_format=torch.channels_last)
            features = self.model.body(x)
            breeds = self.model.head(features).float().cpu().numpy()
            inet = self.model.imagenet_logits(features).float().cpu().numpy() \
                if self.model.imagenet_classifier is not None else None
            maps = activation_maps(self.model.head, features).cpu().numpy()  # (n, classes, h, w)
        return breeds, inet, maps

    def __str__(self) -> str:
        return f"{str(self.dtype).removeprefix('torch.')} on {self.device.type}"


class OnnxRuntime(OnnxRunner):
    """onnxruntime on a graph from ``onnx.export_onnx`` (path or bytes). Refuses (``ExportRefused``)
    a graph that takes another image size than the preprocessing gives: it belongs to another export."""

    def __init__(self, graph: str | Path | bytes, name: str = "onnxruntime float32", device: str = "cpu",
                 size: int | None = None):
        super().__init__(graph, device=device)
        self.name = name
        shape = self.session.get_inputs()[0].shape  # [n, size, size, 3] from export_onnx
        if size is not None and any(isinstance(d, int) and d != size for d in shape[1:3]):
            raise ExportRefused(f"it says the model sees {size}x{size} pixels, but its ONNX graph takes {shape[1]}x"
                                f"{shape[2]}: the two do not belong together; export the model again")


def check_runtime(runtime: Runtime, reference: list[np.ndarray], size: int, tolerance: float) -> None:
    """Raise ``ValueError`` unless ``runtime``'s probabilities on ``check_input(size)`` are within
    ``tolerance`` of ``reference`` (``onnx.reference_probabilities``) everywhere."""
    got = [probabilities(x) for x in runtime.run(check_input(size))[:2] if x is not None]
    if len(got) != len(reference) or any(g.shape != w.shape for g, w in zip(got, reference)):
        raise ValueError("its outputs do not fit the model (other heads, or other classes)")
    # Within the tolerance everywhere also means the same breed wherever PyTorch's top two are
    # more than twice the tolerance apart: no separate label check is needed.
    gap = max(float(np.abs(g - w).max()) for g, w in zip(got, reference))
    if gap > tolerance:
        raise ValueError(f"its probabilities differ from PyTorch's by {gap:.3f} (allowed: {tolerance:.3f})")


Candidate = tuple[str, Callable[[], Runtime], float]  # a name, a function that makes it, its tolerance
Reason = tuple[str, bool]  # why something is not used, and whether that deserves a warning


def _candidates(device: torch.device, size: int, graph, int8, reasons: list[Reason]) -> list[Candidate]:
    """The runtimes to try, fastest first; what is left out, and why, goes to ``reasons``. A new
    runtime adds its candidates here."""
    return _onnx_candidates(device, size, graph, int8, reasons)


def _onnx_candidates(device: torch.device, size: int, graph, int8, reasons: list[Reason]) -> list[Candidate]:
    """The int8 graph, then the float32 graph, where onnxruntime can run them."""
    from .onnx import has_int8_units

    if graph is None and int8 is None:
        return []
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        reasons.append(("onnxruntime is not installed (pip install onnxruntime)", True))
        return []
    if device.type == "cuda" and not cuda_provider():  # PyTorch in float16 serves a GPU well: no warning
        reasons.append(("onnxruntime-gpu is not installed, so the GPU runs PyTorch", False))
        return []
    graphs = []
    if int8 is not None and device.type == "cpu":
        if has_int8_units():
            graphs.append(("onnxruntime int8", int8[0], max(int8[1], TOLERANCE)))
        else:
            reasons.append(("the int8 graph is not used: this CPU has no 8-bit dot-product units (VNNI/AMX)", True))
    if graph is not None:
        graphs.append(("onnxruntime float32", graph, TOLERANCE))
    return [(name, lambda name=name, source=source: OnnxRuntime(source, name, device.type, size), tolerance)
            for name, source, tolerance in graphs]


def choose_runtime(network: Network, preprocessing, device: torch.device, fast: bool = True,
                   graph: str | Path | bytes | None = None, int8: tuple[str | Path | bytes, float] | None = None,
                   reference: list[np.ndarray] | None = None) -> tuple[Runtime, str]:
    """The runtime that answers, and a sentence that says which one and why.

    Args:
        network: the float32 PyTorch model (``Network``): the fallback, and the check's reference.
        graph: an ONNX graph (path or bytes) to try, or None for PyTorch only.
        int8: an int8 graph to try first, with the tolerance ``export`` measured for it.
        reference: the PyTorch model's probabilities on the check picture, when the export
            recorded them; else they are computed from ``network`` (which builds it).
    """
    reasons: list[Reason] = []
    candidates = _candidates(device, preprocessing.size, graph, int8, reasons)
    if candidates and reference is None:
        from .onnx import reference_probabilities

        reference = reference_probabilities(network.get(), preprocessing)
    for name, make, tolerance in candidates:
        try:
            runtime = make()
            check_runtime(runtime, reference, preprocessing.size, tolerance)
        except ExportRefused:  # a graph for other photos than meta.json says: the export is not served
            raise
        except Exception as err:  # an unreadable graph, an onnxruntime that refuses it, a mismatch
            reasons.append((f"{name} is not used ({type(err).__name__}: {str(err)[:300]})", True))
            continue
        why = "; ".join(text for text, _ in reasons)
        return runtime, f"{name}, checked against PyTorch" + (f" ({why})" if why else "")
    runtime = TorchRuntime(network.get(), preprocessing, device, fast)  # built now: weights that do not fit fail here
    why = "; ".join(text for text, _ in reasons)
    report = f"PyTorch ({runtime})" + (f": {why}" if why else "")
    if any(warn for _, warn in reasons):
        warnings.warn(f"petbreeds: predictions run on {report}", RuntimeWarning, stacklevel=3)
    return runtime, report


def _fast_copy(model: nn.Module, device: torch.device) -> nn.Module:
    """The PyTorch path's model: BatchNorm folded, in bfloat16 on CPUs with bf16 units, fp16 on a GPU."""
    import copy

    fast = copy.deepcopy(model)
    fold_batchnorm(fast.body)
    return fast.to(device, dtype=fast_dtype(device), memory_format=torch.channels_last)


def fast_dtype(device: torch.device) -> torch.dtype:
    """float16 on a GPU, bfloat16 on CPUs with bf16 units, else float32."""
    if device.type == "cuda":
        return torch.float16
    if torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported():
        return torch.bfloat16
    return torch.float32


def cuda_provider() -> bool:
    """Whether onnxruntime can run graphs on a GPU here (onnxruntime-gpu is installed)."""
    try:
        import onnxruntime as ort
    except ImportError:
        return False
    return "CUDAExecutionProvider" in ort.get_available_providers()
