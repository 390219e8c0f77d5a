"""The model card: what the shipped model knows, how well, and what it cannot do, in the demo's "About" tab.

The card is one Markdown file beside the model, ``demo/model/README.md``, shown as it is in the
"About" tab (one source for both). Two parts of it are generated, between marker comments, by
``python bench/model_card.py --write``, and checked by the tests:

    <!-- breeds -->  ... <!-- /breeds -->    the model's breeds, from the vocab in meta.json
    <!-- figures --> ... <!-- /figures -->   validation error and calibration, measured on the sample

Calibration asks whether the model's confidence can be taken at its word: of the answers given
with about 90% confidence, are about 90% right? ``reliability`` bins the answers by confidence and
compares; the expected calibration error (ECE) is the photo-weighted mean gap, 0 for a perfectly
calibrated model. A model served with ``--model`` elsewhere shows its own folder's README.md, or a
short card made from its meta.json.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from engine.data.breeds import display_name, is_cat

__all__ = ["breeds_markdown", "card_breeds", "reliability", "replace_block", "card_text",
           "build_about_tab", "BINS"]

BINS = (0.0, 0.5, 0.8, 0.95, 1.0)  # confidence bins: under 0.5 is the demo's "not sure" (UNSURE_BELOW)


def breeds_markdown(vocab) -> str:
    """The breeds as a Markdown list, cats then dogs: ``- British Shorthair (cat): `British_Shorthair```."""
    cats, dogs = [b for b in vocab if is_cat(b)], [b for b in vocab if not is_cat(b)]
    lines = [f"{len(vocab)} breeds: {len(cats)} cats and {len(dogs)} dogs (the id in the API and the exports "
             "after the colon).", ""]
    lines += [f"- {display_name(b)}: `{b}`" for b in cats + dogs]
    return "\n".join(lines)


def card_breeds(text: str) -> list[str]:
    """The breed ids a card lists (the ``- Name (cat): `id``` lines), in its order."""
    return re.findall(r"^- [^\n:]+ \((?:cat|dog)\): `([^`]+)`$", text, flags=re.MULTILINE)


def reliability(confidence, correct, bins=BINS) -> tuple[float, list[dict]]:
    """``(ece, rows)`` for answers given with ``confidence`` (each in [0, 1]) that were ``correct`` or not.

    Each row is one bin ``[lo, hi)`` (the last one includes 1.0) with its number of answers ``n``, their
    mean confidence and the share right (None for an empty bin). ECE = sum over bins of
    n / total * |right - mean confidence|.
    """
    confidence, correct = np.asarray(confidence, dtype=np.float64), np.asarray(correct, dtype=bool)
    if confidence.shape != correct.shape or confidence.ndim != 1 or not len(confidence):
        raise ValueError(f"reliability: expected two equal 1-D sequences, got shapes {confidence.shape} and "
                         f"{correct.shape}")
    rows, ece = [], 0.0
    for i, (lo, hi) in enumerate(zip(bins[:-1], bins[1:])):
        last = i == len(bins) - 2
        inside = (confidence >= lo) & ((confidence <= hi) if last else (confidence < hi))
        n = int(inside.sum())
        mean, right = (float(confidence[inside].mean()), float(correct[inside].mean())) if n else (None, None)
        if n:
            ece += n / len(confidence) * abs(right - mean)
        rows.append({"lo": lo, "hi": hi, "n": n, "confidence": mean, "right": right})
    return ece, rows


def replace_block(text: str, name: str, content: str) -> str:
    """``text`` with what lies between ``<!-- name -->`` and ``<!-- /name -->`` replaced by ``content``."""
    pattern = re.compile(rf"(<!-- {name} -->\n).*?(\n<!-- /{name} -->)", flags=re.DOTALL)
    if not pattern.search(text):
        raise ValueError(f"the card has no <!-- {name} --> ... <!-- /{name} --> block to fill in")
    return pattern.sub(lambda m: m[1] + content + m[2], text, count=1)


def card_text(model: str | Path) -> str:
    """The card of the model in folder ``model``: its README.md, else a short one made from its meta.json."""
    folder = Path(model)
    card = folder / "README.md"
    if card.is_file():
        return card.read_text(encoding="utf-8")
    meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
    error = meta.get("valid_error")
    trained = (f"Trained on {meta['n_train']} photos; validation error {error:.1%} on {meta['n_valid']} photos."
               if error is not None and "n_train" in meta and "n_valid" in meta else "")
    return "\n\n".join(s for s in (f"# This server's model: {meta.get('arch', 'a model')}",
                                   "This model folder has no model card (README.md); what its meta.json says:",
                                   trained, "## The breeds it knows", breeds_markdown(meta["vocab"])) if s)


def build_about_tab(model: str | Path) -> None:
    """The "About" tab: the model card (call inside ``gr.Blocks``)."""
    import gradio as gr

    with gr.Tab("About", id="about"):
        gr.Markdown(card_text(model), elem_id="model-card")
