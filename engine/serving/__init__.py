"""The serving layer: a trained model saved without pickles, loaded back, and answering photos.

    export      safetensors + JSON + the ONNX graph, committed atomically
    exported    an export read back with checks (no pickles, bounded, checksummed)
    onnx        the graph for onnxruntime (pixels in, both heads out), its int8 copy, the session
    predictor   load_predictor, Predictor: the validation preprocessing, then the runtime's answer
    prediction  Prediction: what predict returns (probabilities, the ImageNet check, the pixels
                the model saw, the time), and the two "I don't know" thresholds
    runtime     what runs the network: the fastest of onnxruntime and OpenVINO that passes its
                check against PyTorch, else PyTorch (BatchNorm folded, half precision); where
                another runtime goes
    openvino_runtime  OpenVINO on the same graph, bf16 where the CPU has it; telemetry off
    measure     an export's runtimes measured on photos (agreement, speed), into meta.json
    fold        BatchNorm folded into the convolutions before it
"""

from __future__ import annotations

from .._lazy import lazy_exports

_EXPORTS = {
    "export": ["export"],
    "exported": ["read_export", "PickleRefused"],
    "predictor": ["Predictor", "load_predictor"],
    "prediction": ["Prediction"],
}

__all__, __getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
