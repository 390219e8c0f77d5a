"""An export's runtimes measured on photos: the figures in meta.json that the choice at load reads.

Two entries (``runtime.choose_runtime`` reads them back):

* "openvino": for the reduced precision OpenVINO computes in on this CPU (bf16), how often it
  names the float graph's breed on the export's photos ("agreement", "photos"), the validation
  error of both, the largest probability gap over the photos, its gap from PyTorch on the check
  picture ("check_gap") and the tolerance the check at load allows: that gap plus ``TOLERANCE``
  (it must answer as it did here, within what a float graph may differ). Not written where the
  CPU computes in f32 only, or OpenVINO is not installed: f32 needs no agreement.
* "runtime_ms": each runtime's median milliseconds for one photo's forward pass on the machine
  that measured ("cpu", "threads"), the runtimes interleaved photo by photo.

``export(..., int8=True)`` records them for a new export. For an existing one,
``measure_export(folder, sample)`` (the command: ``python bench/runtimes.py demo/model``) runs the
same measurement on a sample folder (``images/`` + ``labels.csv``: the photos the model was
trained and validated on) and rewrites only ``meta.json``, atomically: the graphs and the weights
stay byte-identical. The graphs measured are those the predictor serves (maps included).
"""

from __future__ import annotations

import csv
import json
import os
import time
import warnings
from pathlib import Path

import numpy as np

from ..data.transforms import load_array
from .onnx import OnnxRunner, check_input, probabilities, usable_cpus

__all__ = ["runtime_figures", "measure_export"]

Photo = tuple[Path, int, bool]  # a photo, its breed's index, whether it is a validation photo


def runtime_figures(graph: bytes, int8: bytes | None, photos: list[Photo], spec,
                    reference: list[np.ndarray]) -> dict:
    """The "openvino" and "runtime_ms" entries for meta.json, measured on ``photos`` with the
    float ``graph`` (and its ``int8`` copy, timed only) as the reference; ``reference`` is
    PyTorch's answer on the check picture."""
    from .runtime import TOLERANCE

    runners = {"onnxruntime float32": OnnxRunner(graph).run}
    if int8 is not None:
        runners["onnxruntime int8"] = OnnxRunner(int8).run
    precision, version = None, None
    try:
        from .openvino_runtime import OpenVinoRuntime, import_openvino, openvino_precision

        version = import_openvino().__version__.split("-")[0]
        precision = openvino_precision()
        runners[f"openvino {precision}"] = OpenVinoRuntime(graph, precision).run
    except ImportError:
        pass
    except Exception as err:  # an OpenVINO that cannot compile the graph: the export goes on without it
        warnings.warn(f"OpenVINO could not be measured ({type(err).__name__}: {err})", RuntimeWarning, stacklevel=2)
        precision = None
    times: dict[str, list[float]] = {name: [] for name in runners}
    agree, gap, wrong, n_valid = 0, 0.0, {"float32": 0, "reduced": 0}, 0
    for i, (path, label, is_valid) in enumerate(photos):
        x = spec.validation_pixels(load_array(path, min_size=spec.presize))[None]
        answers = {}
        for name in (list(runners) if i % 2 == 0 else list(runners)[::-1]):
            start = time.perf_counter()
            answers[name] = probabilities(runners[name](x)[0][0])
            times[name].append(time.perf_counter() - start)
        if precision in (None, "f32"):
            continue
        pa, pb = answers["onnxruntime float32"], answers[f"openvino {precision}"]
        agree += int(pa.argmax() == pb.argmax())
        gap = max(gap, float(np.abs(pa - pb).max()))
        if is_valid:
            n_valid += 1
            wrong["float32"] += int(pa.argmax() != label)
            wrong["reduced"] += int(pb.argmax() != label)
    out = {"runtime_ms": {name: round(1000 * float(np.median(t)), 2) for name, t in times.items() if t}}
    out["runtime_ms"].update(cpu=_cpu_name(), threads=usable_cpus(), photos=len(photos),
                             measured=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    if precision not in (None, "f32") and photos:
        got = runners[f"openvino {precision}"](check_input(spec.size))
        check_gap = max(float(np.abs(probabilities(g) - w).max()) for g, w in zip(got[:2], reference) if g is not None)
        out["openvino"] = {"version": version, precision: {
            "agreement": agree / len(photos), "photos": len(photos), "max_probability_gap": round(gap, 4),
            "valid_error_float32": wrong["float32"] / max(n_valid, 1),
            f"valid_error_{precision}": wrong["reduced"] / max(n_valid, 1),
            "check_gap": round(check_gap, 4), "tolerance": round(check_gap + TOLERANCE, 4)}}
    return out


def measure_export(folder: str | Path, sample: str | Path) -> dict:
    """Measure the export in ``folder`` on the photos of ``sample`` (``images/`` + ``labels.csv``
    with name, breed, is_valid) and add the figures to its meta.json; return them."""
    from ..data.preprocessing import Preprocessing
    from .exported import META, read_export
    from .predictor import _graph_file, _recorded_reference, _with_maps

    folder, sample = Path(folder), Path(sample)
    meta, state = read_export(folder)
    graph = _with_maps(_graph_file(folder, meta.get("onnx")), state, folder)
    int8 = _with_maps(_graph_file(folder, meta.get("int8")), state, folder) if meta.get("int8") else None
    reference = _recorded_reference(meta, len(meta["vocab"]))
    if graph is None or reference is None:
        raise ValueError(f"{folder} has no ONNX graph with its check recorded in {META}: export the model again "
                         "(export(learn, folder, int8=True) measures the runtimes itself)")
    with open(sample / "labels.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    unknown = sorted({r["breed"] for r in rows} - set(meta["vocab"]))
    if unknown:
        raise ValueError(f"{sample}/labels.csv has breeds the model does not know ({', '.join(unknown[:5])}): "
                         "measure it on the photos it was trained on")
    photos = [(sample / "images" / r["name"], meta["vocab"].index(r["breed"]), r["is_valid"] == "1") for r in rows]
    figures = runtime_figures(graph, int8, photos, Preprocessing.from_meta(meta), reference)
    meta.pop("openvino", None)  # figures from another OpenVINO or CPU would no longer hold
    meta.update(figures)
    tmp = folder / f".{META}.{os.getpid()}.tmp"  # as export writes it: the old meta.json or the new, never half
    try:
        tmp.write_text(json.dumps(meta, indent=2) + "\n")
        os.chmod(tmp, 0o644)
        os.replace(tmp, folder / META)
    finally:
        tmp.unlink(missing_ok=True)
    return figures


def _cpu_name() -> str:
    """The CPU's model name (Linux), else its architecture."""
    import platform

    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.machine()
