"""The serving layer: a trained model saved without pickles, loaded back, and answering photos.

    export      safetensors + JSON + the ONNX graph, committed atomically; read back with checks
    onnx        the graph for onnxruntime (pixels in, both heads out), its int8 copy, the session
    predictor   load_predictor, Predictor: the validation preprocessing, and onnxruntime after a
                check against PyTorch (else PyTorch: BatchNorm folded, half precision)
    fold        BatchNorm folded into the convolutions before it
"""

from __future__ import annotations

from .._lazy import lazy_exports

_EXPORTS = {
    "export": ["export", "read_export", "PickleRefused"],
    "predictor": ["Predictor", "load_predictor"],
}

__all__, __getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
