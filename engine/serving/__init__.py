"""The serving layer: a trained model saved without pickles, loaded back, and answering photos.

    export      safetensors + JSON, committed atomically; read back with checks
    predictor   load_predictor, Predictor: the validation preprocessing and a fast forward pass
    fold        BatchNorm folded into the convolutions before it
    compile     an ahead-of-time compiled body for this CPU, cached
"""

from __future__ import annotations

from .._lazy import lazy_exports

_EXPORTS = {
    "export": ["export", "read_export", "PickleRefused"],
    "predictor": ["Predictor", "load_predictor"],
}

__all__, __getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
