"""OpenVINO as a runtime beside onnxruntime: the export's own graph, in bfloat16 where the CPU has bf16 units.

OpenVINO compiles the ONNX graph for the CPU it runs on. On CPUs with bfloat16 units (AMX,
AVX512-BF16) it computes in bfloat16, which on this project's Xeon answers a photo in about half
the time of onnxruntime's int8 graph (the README's benchmark table has the figures). It runs the
very graph the predictor gives onnxruntime, class-activation maps included.

Precision. bf16 where OpenVINO says the CPU has it (``"BF16"`` in its ``OPTIMIZATION_CAPABILITIES``),
else f32. bf16 keeps 8 bits of mantissa: probabilities move by a few hundredths (0.04 on the check
picture for the demo's model), more than the 0.01 the float graphs are held to. So, like the int8
graph, bf16 is used only where the export measured it (``measure.py``): the float graph's breed on
at least 99% of the export's photos, the validation error no worse. At load its check picture must
come within the gap recorded at export plus the float graphs' own tolerance (``tolerance`` in
meta.json): it must answer as it did when it was measured, within what a float graph may differ.
On a CPU with bf16 units OpenVINO is offered in bf16 only: in f32 it was no faster than
onnxruntime's float graph (6.7 against 6.6 ms), so it would only add its compile time at start.
On a CPU without them, f32 OpenVINO is one more candidate, timed against onnxruntime. Either way
it is tried only for an export that measured it (``export(..., int8=True)`` or
``bench/runtimes.py``): an export's runtime does not change because a package happens to be
installed. It serves the CPU only: never on ``device="cuda"``.

OpenVINO's own int8 (NNCF post-training quantization) is not used: measured on the demo's model,
calibrated on the 296 training photos, it named the float graph's breed on all 370 photos but ran
no faster than bf16 (13.8 against 12.1 ms, interleaved, on a loaded machine), took 7.9 s to
quantize and needs nncf and its dependencies (69 MB more).

Start. Importing OpenVINO takes 0.2 s, reading the graph 0.1 s and compiling it 0.1-0.4 s (on a
loaded machine up to 1.5 s), at load: the check against PyTorch needs the compiled model anyway,
and the first visitor should not wait for it. OpenVINO's model cache (``CACHE_DIR``) cut the
compile from 0.35 to 0.12 s, but it writes 19 MB per model and version and would load compiled
binaries from a writable folder at every start: not worth 0.2 s of a start of several seconds.

Telemetry stays off. ``import openvino`` imports its model converter, which sends a usage event
through the ``openvino_telemetry`` package at import unless the user opted out (a consent file
written by ``opt_in_out --opt_out``) or ``CI=true``; there is no environment variable for it.
``import_openvino`` blocks that package in this process before OpenVINO is first imported, so the
converter falls back to its own stub, which sends nothing (and no file is written in the home
folder). The runtime itself (reading and compiling a graph) sends nothing.

Dependency. ``openvino`` is a default dependency where its wheels exist and the bf16 gain was
measured: x86-64 Linux and Windows (``pyproject.toml``'s environment markers). It adds 181 MB
installed (a 59 MB wheel, 2.5 s to install; PyTorch is 1.2 GB), and an extra would leave the
classroom server, which needs the speed, without it unless someone knows to ask. Elsewhere (macOS,
ARM Linux) ``pip install openvino`` makes it a candidate in f32, checked and timed like the rest.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from functools import cache
from pathlib import Path

import numpy as np
import torch

from .onnx import usable_cpus

__all__ = ["OpenVinoRuntime", "import_openvino", "bf16_units", "openvino_precision", "openvino_candidates",
           "usable_figures", "REDUCED_AGREEMENT"]

REDUCED_AGREEMENT = 0.99  # reduced precision must name the float graph's breed on this share of the photos


def import_openvino():
    """The ``openvino`` module, with its telemetry off for this process (see the module docstring)."""
    if "openvino" not in sys.modules:
        # None in sys.modules makes "import openvino_telemetry" fail: OpenVINO then uses its stub.
        sys.modules.setdefault("openvino_telemetry", None)
    import openvino

    return openvino


@cache
def _core():
    return import_openvino().Core()


def bf16_units() -> bool:
    """Whether OpenVINO can compute in bfloat16 on this CPU (AMX or AVX512-BF16)."""
    return "BF16" in _core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")


def openvino_precision() -> str:
    """"bf16" on CPUs with bf16 units, else "f32"."""
    return "bf16" if bf16_units() else "f32"


class OpenVinoRuntime:
    """OpenVINO on a graph from ``onnx.export_onnx`` (path or bytes), compiled for the CPU now.

    Args:
        graph: the ONNX graph, with or without the ``maps`` output.
        precision: "bf16" or "f32" (OpenVINO's inference precision).
        threads: threads per photo (default: every core, for the lowest latency, as onnxruntime).
    """

    def __init__(self, graph: str | Path | bytes, precision: str = "f32", threads: int | None = None):
        if precision not in ("bf16", "f32"):
            raise ValueError(f"precision must be 'bf16' or 'f32', got {precision!r}")
        core = _core()
        model = core.read_model(graph if isinstance(graph, bytes) else str(graph))
        # Threads not pinned to cores: a web server's other threads (decoding, Gradio) share them. With a
        # decoding thread beside it, pinned took 28-31 ms a photo against 23-24 unpinned (interleaved, loaded).
        config = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": precision,
                  "INFERENCE_NUM_THREADS": threads or usable_cpus(), "ENABLE_CPU_PINNING": False}
        self.compiled = core.compile_model(model, "CPU", config)
        self.name = f"openvino {precision}"
        self.outputs = {name: o for o in self.compiled.outputs for name in o.get_names()
                        if name in ("breeds", "imagenet", "maps")}
        self._request = self.compiled.create_infer_request()
        self._lock = threading.Lock()  # one request, one photo batch at a time

    def run(self, pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        """(n, size, size, 3) float32 pixels 0..255 -> (breed logits (n, classes), ImageNet logits or
        None, maps (n, classes, h, w) or None for a graph without them)."""
        with self._lock:
            result = self._request.infer({0: np.ascontiguousarray(pixels, np.float32)})  # copies the outputs
        out = {name: result[port] for name, port in self.outputs.items()}
        return out["breeds"], out.get("imagenet"), out.get("maps")


def usable_figures(recorded, precision: str) -> tuple[dict | None, str]:
    """The export's figures for OpenVINO in ``precision`` (meta.json's "openvino") if they allow it
    to serve, else None and the reason: reduced precision must have been measured at export."""
    figures = recorded.get(precision) if isinstance(recorded, dict) else None
    if not isinstance(figures, dict):
        return None, "the export did not measure it on photos (python bench/runtimes.py FOLDER)"
    try:
        agreement, tolerance = float(figures["agreement"]), float(figures["tolerance"])
        # written so that NaN counts against it
        worse = not float(figures[f"valid_error_{precision}"]) <= float(figures["valid_error_float32"])
    except (KeyError, TypeError, ValueError):
        return None, "meta.json's figures for it cannot be read (python bench/runtimes.py FOLDER)"
    if not 0 <= tolerance <= 1:
        return None, f"meta.json gives it the tolerance {tolerance!r:.20}, not a probability gap from 0 to 1"
    if not agreement >= REDUCED_AGREEMENT or worse:
        return None, (f"at export it named the float graph's breed on {agreement:.1%} of the photos"
                      + (", with a worse validation error" if worse else ""))
    return figures, ""


def openvino_candidates(device: torch.device, graph, meta: dict | None, reasons: list,
                        tolerance: float) -> list[tuple[str, Callable, float]]:
    """OpenVINO's candidate for ``runtime.choose_runtime`` (CPU only): (name, make, tolerance).
    ``meta`` is the export's meta.json: OpenVINO is tried only where the export measured it (its
    "openvino" figures, or its time in "runtime_ms"), so an export's runtime does not change with
    what happens to be installed; ``tolerance`` is the float graphs' own."""
    if device.type != "cpu" or graph is None:
        return []
    meta = meta if isinstance(meta, dict) else {}
    timed = meta.get("runtime_ms") if isinstance(meta.get("runtime_ms"), dict) else {}
    if not any(str(name).startswith("openvino") for name in timed) and not isinstance(meta.get("openvino"), dict):
        reasons.append(("OpenVINO is not used: the export did not measure it (python bench/runtimes.py FOLDER)", False))
        return []
    try:
        import_openvino()
    except ImportError:
        reasons.append(("OpenVINO is not installed (pip install openvino)", False))
        return []
    try:
        precision = openvino_precision()
    except Exception as err:  # an OpenVINO that cannot see the CPU
        reasons.append((f"OpenVINO is not used ({type(err).__name__}: {str(err)[:200]})", True))
        return []
    allowed = tolerance
    if precision == "f32":
        reasons.append(("this CPU has no bf16 units, so OpenVINO computes in f32", False))
    else:
        figures, why = usable_figures(meta.get("openvino"), precision)
        if figures is None:
            reasons.append((f"openvino {precision} is not used: {why}", False))
            return []
        allowed = max(float(figures["tolerance"]), tolerance)
    return [(f"openvino {precision}", lambda: OpenVinoRuntime(graph, precision), allowed)]
