"""What runs the network: the fastest runtime whose check against PyTorch passes, else PyTorch.

A runtime is anything with a ``name`` and a ``run(pixels)`` that takes the pixels the
preprocessing leaves, (n, size, size, 3) float32 0..255, and returns the logits of both heads
and the class-activation maps: (breeds (n, classes), ImageNet (n, 1000) or None, maps (n,
classes, h, w) or None; see ``engine/cam.py``). That is all a ``Predictor`` asks of it
(``Runtime``). Three exist:

* ``OnnxRuntime``: onnxruntime on the export's ONNX graph (``onnx.py``), or its int8 copy on CPUs
  with 8-bit dot-product units. It needs no compiler and starts in a moment.
* ``OpenVinoRuntime`` (``openvino_runtime.py``): OpenVINO on the same graph, compiled for this
  CPU, in bfloat16 where the CPU has bf16 units and the export measured it; CPU only.
* ``TorchRuntime``: PyTorch, BatchNorm folded into the convolutions, bfloat16 on CPUs that have
  it, float16 on a GPU (on a GPU onnxruntime serves only when onnxruntime-gpu is installed).

``choose_runtime`` builds every installed runtime and checks it: its probabilities on a fixed test
picture (``onnx.check_input``) must agree with the float32 PyTorch model's within a tolerance
everywhere (``TOLERANCE``, which also keeps the label wherever it is clear; for reduced precision,
int8 or bf16, what ``export`` measured). Within a runtime its graphs are tried fastest first
(onnxruntime: int8, then float32) and the first that passes stands for it. Those that pass are then
timed here, a few photos each, interleaved (``time_runtimes``, well under a second), and the
fastest answers; the report gives its time, the others', and what the export measured
(meta.json's "runtime_ms"). If none passes, PyTorch answers, and the report says why, once (also
as a ``RuntimeWarning``).

To add a runtime: write a class with ``name`` ("<runtime> <precision>") and ``run`` (its
constructor raising when it cannot serve this model or this machine), and add it to
``_candidates`` with its tolerance. The check, the timing, the fallback and the report then apply
to it as to the others.
"""

from __future__ import annotations

import threading
import time
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
           "time_runtimes", "fast_dtype", "cuda_provider", "RUNTIMES"]

TOLERANCE = 0.01  # the largest probability gap allowed between a runtime and the PyTorch model
RUNTIMES = ("onnxruntime", "openvino")  # the runtimes choose_runtime tries before PyTorch
TIMING_BUDGET = 0.3  # seconds: at most this long (after one round) timing the candidates at load


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


def _candidates(device: torch.device, size: int, graph, int8, reasons: list[Reason],
                recorded: dict | None = None, runtimes: tuple[str, ...] = RUNTIMES) -> list[Candidate]:
    """The candidates of ``runtimes``, each runtime's graphs fastest first; what is left out, and
    why, goes to ``reasons``. ``recorded`` is the export's meta.json (its "openvino" figures). A new
    runtime adds its candidates here."""
    from .openvino_runtime import openvino_candidates

    out = _onnx_candidates(device, size, graph, int8, reasons) if "onnxruntime" in runtimes else []
    if "openvino" in runtimes:
        out += openvino_candidates(device, graph, recorded, reasons, TOLERANCE)
    return out


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
                   reference: list[np.ndarray] | None = None, recorded: dict | None = None,
                   runtimes: tuple[str, ...] = RUNTIMES) -> tuple[Runtime, str]:
    """The runtime that answers, and a sentence that says which one and why.

    Args:
        network: the float32 PyTorch model (``Network``): the fallback, and the check's reference.
        graph: an ONNX graph (path or bytes) to try, or None for PyTorch only.
        int8: an int8 graph to try first, with the tolerance ``export`` measured for it.
        reference: the PyTorch model's probabilities on the check picture, when the export
            recorded them; else they are computed from ``network`` (which builds it).
        recorded: the export's meta.json: what it measured (OpenVINO's agreement, "runtime_ms").
        runtimes: the runtimes to try (``RUNTIMES``, or some of them).
    """
    reasons: list[Reason] = []
    candidates = _candidates(device, preprocessing.size, graph, int8, reasons, recorded, runtimes=runtimes)
    if candidates and reference is None:
        from .onnx import reference_probabilities

        reference = reference_probabilities(network.get(), preprocessing)
    passed: dict[str, Runtime] = {}  # one per runtime: its fastest graph that passes
    for name, make, tolerance in candidates:
        if name.split()[0] in {n.split()[0] for n in passed}:
            continue
        try:
            runtime = make()
            check_runtime(runtime, reference, preprocessing.size, tolerance)
        except ExportRefused:  # a graph for other photos than meta.json says: the export is not served
            raise
        except Exception as err:  # an unreadable graph, a runtime that refuses it, a compile error, a mismatch
            reasons.append((f"{name} is not used ({type(err).__name__}: {str(err)[:300]})", True))
            continue
        passed[name] = runtime
    why = "; ".join(text for text, _ in reasons)
    if passed:
        name, speed = _fastest(passed, preprocessing.size, (recorded or {}).get("runtime_ms"))
        return passed[name], f"{name}{speed}, checked against PyTorch" + (f" ({why})" if why else "")
    runtime = TorchRuntime(network.get(), preprocessing, device, fast)  # built now: weights that do not fit fail here
    report = f"PyTorch ({runtime})" + (f": {why}" if why else "")
    if any(warn for _, warn in reasons):
        warnings.warn(f"petbreeds: predictions run on {report}", RuntimeWarning, stacklevel=3)
    return runtime, report


def _fastest(passed: dict[str, Runtime], size: int, recorded_ms) -> tuple[str, str]:
    """The fastest of the runtimes that passed, timed here, and the words that say so (with the
    export's own timing, when it recorded one for each of them)."""
    if len(passed) == 1:
        return next(iter(passed)), ""
    ms = time_runtimes(passed, size)
    order = sorted(ms, key=ms.get)
    here = " vs ".join(f"{name} {ms[name]:.1f} ms" for name in order[1:])
    speed = f", {ms[order[0]]:.1f} ms vs {here} here"
    if isinstance(recorded_ms, dict) and all(isinstance(recorded_ms.get(n), (int, float)) for n in order):
        speed += " (at export: " + " vs ".join(f"{recorded_ms[n]:.1f}" for n in order) + " ms)"
    return order[0], speed


def time_runtimes(runtimes: dict[str, Runtime], size: int, rounds: int = 5,
                  budget: float = TIMING_BUDGET) -> dict[str, float]:
    """Median milliseconds of one forward pass of one photo, per runtime: ``rounds`` rounds,
    interleaved (one photo on each, in turn, the order alternating), fewer if they take more than
    ``budget`` seconds; the check picture's own run was the warm-up."""
    x = check_input(size)
    times: dict[str, list[float]] = {name: [] for name in runtimes}
    start = time.perf_counter()
    for i in range(rounds):
        for name in (list(runtimes) if i % 2 == 0 else list(runtimes)[::-1]):
            t = time.perf_counter()
            runtimes[name].run(x)
            times[name].append(time.perf_counter() - t)
        if time.perf_counter() - start > budget:
            break
    return {name: 1000 * float(np.median(t)) for name, t in times.items()}


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
