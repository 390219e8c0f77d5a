"""Graphs with their class-activation maps added, kept on disk so that a server starts faster.

Exports written before the maps existed (the demo's shipped model among them) have graphs with two
outputs. ``onnx.add_activation_maps`` adds the third at load, which takes the ``onnx`` package's
import (about 0.5 s) and a parse and rewrite of each graph (about 0.2 s): time that every start of
the demo would pay. ``with_maps`` does it once per graph and keeps the result in the cache folder
(``$PETBREEDS_HOME/graphs``, see ``engine.data.locate``), under a name made from the graph, the
head's weights and ``FORMAT``; the export's own files are never changed.

A cached file is used only if its SHA-256, written beside it, still matches (a half-written or
damaged file is rebuilt), and, like every graph, it is served only after the runtime's check against
the PyTorch model's recorded answer (``runtime.check_runtime``). Where the cache cannot be written
(a read-only home, a full disk) the maps are added in memory, as before, at every start.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from pathlib import Path

import numpy as np

__all__ = ["FORMAT", "cache_folder", "with_maps"]

FORMAT = "maps-1"  # change it whenever add_activation_maps changes what it writes


def cache_folder() -> Path:
    """Where graphs with maps are kept: ``<cache>/graphs``."""
    from ..data.locate import default_cache_dir

    return default_cache_dir() / "graphs"


def _key(graph: bytes, weight: np.ndarray) -> str:
    digest = hashlib.sha256(FORMAT.encode())
    digest.update(hashlib.sha256(graph).digest())
    digest.update(np.ascontiguousarray(weight, np.float32).tobytes())
    digest.update(str(weight.shape).encode())
    return digest.hexdigest()[:32]


def _read(path: Path) -> bytes | None:
    """The cached graph at ``path`` if it is whole (its recorded SHA-256 matches), else None."""
    try:
        data, recorded = path.read_bytes(), path.with_suffix(".sha256").read_text().strip()
    except OSError:
        return None
    return data if hashlib.sha256(data).hexdigest() == recorded else None


def _write(path: Path, data: bytes) -> None:
    """Write ``data`` and its SHA-256 beside it, each atomically (a reader sees a whole file or none)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    for target, content in ((path, data), (path.with_suffix(".sha256"), hashlib.sha256(data).hexdigest().encode())):
        tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
        try:
            tmp.write_bytes(content)
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)


def with_maps(graph: bytes, weight: np.ndarray, folder: Path | None = None) -> bytes:
    """``graph`` with the ``maps`` output (``onnx.add_activation_maps`` with the head's folded
    ``weight``), from the cache when it was made before, else made now and kept there."""
    path = (folder or cache_folder()) / f"{_key(graph, weight)}.onnx"
    cached = _read(path)
    if cached is not None:
        return cached
    from .onnx import add_activation_maps

    data = add_activation_maps(graph, weight)
    try:
        _write(path, data)
    except OSError:  # a read-only or full cache: the maps are added again at the next start
        pass
    return data
