"""Prediction from an exported model: what the web demo runs for every uploaded photo.

``load_predictor(folder)`` reads an export (safetensors + JSON, never a pickle) and returns a
``Predictor``. Its ``predict(image)`` applies exactly the validation preprocessing of training
(upright, RGB, centre presize, one resample to the final size, normalization) and returns one
``Prediction`` (``prediction.py``): the breeds' probabilities, the ImageNet check, the pixels the
model saw and the time it took. ``tta=True`` also looks at the mirrored photo and averages.
``predict_batch`` answers many photos' ``pixels`` in one forward pass (the folder command).

The network runs on the fastest runtime that passes its check against PyTorch (``runtime.py``),
timed at load: onnxruntime on the export's graph (its int8 copy where the CPU has 8-bit
dot-product units; for an export without a graph, one built from the weights at load) or OpenVINO
on the same graph (bfloat16 where the CPU has bf16 units and the export measured it), else
PyTorch. Which one, and why, is in ``runtime_report``.

Decoding shrinks big JPEGs in the DCT domain while they are decoded (never below the presize),
and the resampling is OpenCV's (``Preprocessing.validation_pixels``): the same pixels as in
training, without building a tensor or a sampling grid.
"""

from __future__ import annotations

import hashlib
import threading
import time
import warnings
from collections.abc import Sequence
from functools import partial
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

from ..cam import fold_head, where_looked
from ..data.preprocessing import Preprocessing
from ..data.transforms import MAX_PIXELS, load_array, rgb_array
from ..models import PET_IMAGENET_CLASSES, create_head, create_model, imagenet_categories
from .exported import MAX_FILE_BYTES, ExportRefused, read_export, read_regular_file
from .onnx import probabilities
from .prediction import ImagenetCheck, Prediction
from .runtime import RUNTIMES, TOLERANCE, Network, choose_runtime

__all__ = ["Predictor", "load_predictor"]

IMAGENET_TOP = 5  # the ImageNet classes a prediction names
_PET_INDICES = np.array(sorted(PET_IMAGENET_CLASSES))  # ImageNet's cat and dog classes
# One forward pass at a time in this process, whichever predictor runs it: one pass already uses
# every core (onnxruntime's threads, PyTorch's), so taking turns costs no throughput and keeps each
# photo's latency steady (two passes at once would each take twice as long and thrash the caches).
# Decoding and preprocessing, the rest of a prediction, still run in parallel.
_FORWARD = threading.Lock()


class Predictor:
    """A loaded model, its preprocessing and the runtime that answers. Use ``load_predictor``.

        predict(image, tta=False)   one photo -> its ``Prediction``
        predict_batch(pixels)       several photos' ``pixels`` -> their ``Prediction``s, one forward pass
        load(image), pixels(image)  the steps before the network: decoding, then the preprocessing
        model                       the float32 PyTorch network, for looking inside it
        runtime, runtime_report     what answers (``runtime.py``), and why that one

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
        runtimes: the runtimes to try before PyTorch (``runtime.RUNTIMES``, or some of them).
    """

    def __init__(self, model, meta: dict, device: str | torch.device | None = None, fast: bool = True,
                 graph: str | Path | bytes | None = None, int8: tuple[str | Path, float] | None = None,
                 reference: list[np.ndarray] | None = None, runtimes: tuple[str, ...] = RUNTIMES):
        self.meta, self.vocab = meta, list(meta["vocab"])
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.preprocessing = Preprocessing.from_meta(meta)  # what the model was trained with
        self._network = Network(model)
        has_imagenet = self._network.get().imagenet_classifier is not None if self._network.built \
            else meta.get("imagenet_classifier", False)
        self._imagenet_names = imagenet_categories() if has_imagenet else None
        self.runtime, self.runtime_report = choose_runtime(self._network, self.preprocessing, self.device, fast,
                                                           graph, int8, reference, meta, runtimes)

    @property
    def model(self) -> nn.Module:
        """The float32 PyTorch network on the CPU, as exported (built on first use): for looking
        inside it, as the lessons do. Predictions run on ``runtime``."""
        return self._network.get()

    def load(self, image) -> np.ndarray:
        """An upright (H, W, 3) uint8 RGB array from a path, bytes, a PIL image or an array (big
        JPEGs shrink while they are decoded, never below the presize)."""
        if isinstance(image, (str, Path, bytes, bytearray)):
            return load_array(image, min_size=self.preprocessing.presize, max_pixels=MAX_PIXELS)
        if isinstance(image, (np.ndarray, Image.Image)):
            return rgb_array(image)  # an RGB uint8 array as it is
        raise TypeError(f"predict takes a file path, bytes, a PIL image or an array, got {type(image).__name__}")

    def pixels(self, image, tta: bool = False) -> np.ndarray:
        """The model's input before normalization: (1, size, size, 3) float32 0..255; with ``tta`` a
        second picture, the mirror of the first: (2, size, size, 3)."""
        x = self.preprocessing.validation_pixels(self.load(image))[None]
        return np.concatenate([x, x[:, :, ::-1]]) if tta else x

    def predict(self, image, tta: bool = False) -> Prediction:
        """One image (path, bytes, PIL image or array) -> its ``Prediction``; ``tta``: averaged with its mirror."""
        start = time.perf_counter()
        photo = self.load(image)
        return self._answer([self.pixels(photo, tta)], start, [(photo.shape[1], photo.shape[0])])[0]

    def predict_batch(self, batch: Sequence[np.ndarray],
                      sizes: Sequence[tuple[int, int] | None] | None = None) -> list[Prediction]:
        """Several photos' ``pixels`` (each (1, size, size, 3), or (2, ...) with its mirror) -> their
        ``Prediction``s, from one forward pass; each one's ``seconds`` is its share of that pass.
        ``sizes``: each photo's (width, height) as decoded (``Prediction.photo_size``), if known."""
        return self._answer(batch, time.perf_counter(), sizes) if len(batch) else []

    def _answer(self, batch: Sequence[np.ndarray], start: float,
                sizes: Sequence[tuple[int, int] | None] | None = None) -> list[Prediction]:
        waiting = time.perf_counter()
        with _FORWARD:
            waited = time.perf_counter() - waiting
            # (rows, classes), (rows, 1000) or None, (rows, classes, h, w) or None
            breeds, inet, maps = self.runtime.run(np.concatenate(batch))
        read, row = [], 0
        for x in batch:  # a photo's rows: 1, or 2 with its mirror
            rows = slice(row, row + len(x))
            label, probs, check = self._read(breeds[rows], None if inet is None else inet[rows])
            cam = None if maps is None else _where(maps[rows, self.vocab.index(label)], x.shape[1:3])
            read.append((label, probs, check, cam))
            row += len(x)
        seconds = (time.perf_counter() - start - waited) / len(batch)
        sizes = sizes if sizes is not None else [None] * len(batch)
        return [Prediction(label, probs, check, _picture(x[0]), seconds, cam, size)
                for x, (label, probs, check, cam), size in zip(batch, read, sizes)]

    def _read(self, breeds: np.ndarray, inet: np.ndarray | None) -> tuple[str, dict[str, float], ImagenetCheck | None]:
        """One photo's logits (several rows: its mirrors, averaged) -> label, probabilities, ImageNet check."""
        probs = probabilities(breeds).mean(0)  # (n_classes,)
        check = None
        if inet is not None and self._imagenet_names is not None:
            p = probabilities(inet).mean(0)  # (1000,)
            top = np.argsort(-p)[:IMAGENET_TOP]
            check = ImagenetCheck(top=tuple((self._imagenet_names[i], float(p[i])) for i in top),
                                  pet_probability=float(p[_PET_INDICES].sum()),
                                  top_is_pet=int(top[0]) in PET_IMAGENET_CLASSES)
        return self.vocab[int(probs.argmax())], {v: float(q) for v, q in zip(self.vocab, probs)}, check

    def __repr__(self) -> str:
        spec = self.preprocessing
        return (f"Predictor({self.meta['arch']}, {len(self.vocab)} classes, presize {spec.presize} -> {spec.size}, "
                f"{self.runtime.name} on {self.device.type})")


def _where(maps: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """One photo's maps of its top breed (rows: the photo, and its mirror with TTA) -> the (size)
    0..1 map over the unmirrored picture, read-only (``cam.where_looked``)."""
    rows = [maps[0]] + [m[:, ::-1] for m in maps[1:]]  # the mirror's map, mirrored back
    where = where_looked(np.mean(rows, axis=0), size)
    where.flags.writeable = False
    return where


def _picture(pixels: np.ndarray) -> np.ndarray:
    """(size, size, 3) float pixels 0..255 -> the same picture in uint8, read-only (what a page shows)."""
    picture = np.clip(pixels + 0.5, 0, 255).astype(np.uint8)  # rounded to the nearest whole value
    picture.flags.writeable = False
    return picture


def load_predictor(path: str | Path, device: str | torch.device | None = None, fast: bool = True,
                   runtime: str = "auto", maps: bool = True) -> Predictor:
    """Load an export folder (see ``export.py``, read back by ``exported.py``); refuses pickles, checks the checksums.

    Args:
        runtime: "auto" (the fastest of onnxruntime and OpenVINO whose check passes, on the
            export's graph, else one built from the weights now; else PyTorch), "onnx"
            (onnxruntime only, and an export without a graph gets none), "openvino" (OpenVINO
            only, on the export's graph), or "pytorch".
        maps: add the class-activation maps to an export's graphs that lack them (exported before
            they existed); False serves those graphs as they are, without maps (to measure the cost).
    """
    if runtime not in ("auto", "onnx", "openvino", "pytorch"):
        raise ValueError(f"runtime must be 'auto', 'onnx', 'openvino' or 'pytorch', got {runtime!r}")
    runtimes = {"onnx": ("onnxruntime",), "openvino": ("openvino",)}.get(runtime, RUNTIMES)
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
            return Predictor(model, meta, device=device, fast=fast, graph=graph, int8=int8, runtimes=runtimes, **kwargs)
        except ExportRefused as err:  # a graph for other photos than meta.json describes
            raise ExportRefused(f"{folder / 'meta.json'}: {err}") from None

    graph = int8 = reference = None
    if runtime != "pytorch":
        with_maps = partial(_with_maps, state=state, path=path) if maps else lambda graph: graph
        graph = with_maps(_graph_file(folder, meta.get("onnx")))
        q = meta.get("int8")
        if q is not None and (quantized := with_maps(_graph_file(folder, q))) is not None:
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


def _with_maps(graph: bytes | None, state: dict[str, torch.Tensor], path: Path) -> bytes | None:
    """A graph with the ``maps`` output: as it is, or, for one exported before the maps existed,
    with their nodes added from the export's head weights (``onnx.add_activation_maps``, done once and
    then kept in the cache: ``maps_cache.py``; the export's own file stays as it is). If that cannot
    be done the graph serves without maps."""
    if graph is None:
        return None
    try:
        from .maps_cache import with_maps
        from .onnx import has_activation_maps

        if has_activation_maps(graph):
            return graph
        head = create_head(state["head.3.weight"].shape[1] // 2, state["head.3.weight"].shape[0])
        head.load_state_dict({k.removeprefix("head."): v.float() if v.is_floating_point() else v
                              for k, v in state.items() if k.startswith("head.")})
        with torch.no_grad():
            return with_maps(graph, fold_head(head.eval())[0].numpy())  # kept in the cache for the next start
    except Exception as err:  # no onnx package, a graph of another shape: answers without a map
        warnings.warn(f"petbreeds: the ONNX graph of {path} has no class-activation maps and they could not be "
                      f"added ({type(err).__name__}: {err}); predictions come without them", RuntimeWarning,
                      stacklevel=3)
        return graph


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
    from .exported import GRAPH_NAME

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
