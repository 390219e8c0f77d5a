"""Loading an export in a test: its meta.json, and a predictor with the RuntimeWarnings it gave."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

from engine.serving.predictor import load_predictor

__all__ = ["meta_of", "load_with_warnings"]


def meta_of(folder: Path) -> dict:
    """The export's ``meta.json``."""
    return json.loads((Path(folder) / "meta.json").read_text())


def load_with_warnings(folder: Path, **kw):
    """``load_predictor(folder, **kw)`` and the texts of the RuntimeWarnings it gave: a test checks what
    was said, and how often."""
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        p = load_predictor(folder, **kw)
    return p, [str(w.message) for w in said if issubclass(w.category, RuntimeWarning)]
