"""The baseline of the serving benchmarks: what a user would write with onnxruntime by hand.

A plain ``onnxruntime`` session on the export's float32 graph (graph optimizations on, 2 intra-op
threads, spinning off) and naive PIL preprocessing: open, ``draft`` (the JPEG decoder's own
downscale) to at least 256 pixels, resize the short side to 256 bicubic, centre crop 224, float
array. ``bench/demo.py`` times it photo by photo beside the demo's predictor, and
``bench/predict_folder.py`` runs it as the per-photo loop beside the folder CLI.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

__all__ = ["plain_session", "naive_pixels", "plain_predict", "percentile"]


def percentile(values: list[float], q: float) -> float:
    """The ``q``-th percentile (0-100), linear between the closest ranks."""
    s = sorted(values)
    k = (len(s) - 1) * q / 100
    lo = int(k)
    return s[lo] + (s[min(lo + 1, len(s) - 1)] - s[lo]) * (k - lo)


def plain_session(model_folder: str | Path, threads: int = 2):
    """An onnxruntime session on the float32 graph that ``model_folder/meta.json`` names."""
    import onnxruntime as ort

    meta = json.loads(Path(model_folder, "meta.json").read_text())
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(Path(model_folder, meta["onnx"]["file"])), options,
                                providers=["CPUExecutionProvider"])


def naive_pixels(path: str | Path, size: int = 224) -> np.ndarray:
    """(1, size, size, 3) float32 0..255: PIL draft, bicubic resize of the short side, centre crop."""
    from PIL import Image

    with Image.open(path) as img:
        img.draft("RGB", (size + 32, size + 32))
        img = img.convert("RGB")
        w, h = img.size
        scale = (size + 32) / min(w, h)
        img = img.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.Resampling.BICUBIC)
        w, h = img.size
        left, top = (w - size) // 2, (h - size) // 2
        return np.asarray(img.crop((left, top, left + size, top + size)), dtype=np.float32)[None]


def plain_predict(session, path: str | Path) -> np.ndarray:
    """Breed probabilities (classes,) for one photo: naive preprocessing, one plain session run."""
    logits = session.run(None, {"pixels": naive_pixels(path)})[0][0]
    e = np.exp(logits - logits.max())
    return e / e.sum()
