"""The model card (``demo/model/README.md``, ``demo/model_card.py``, ``bench/model_card.py``): it lists exactly
the model's breeds, and its error and calibration are what the shipped model measures on the sample."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from demo.model_card import card_breeds, card_text, reliability, replace_block
from engine.data.breeds import display_name

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "demo" / "model"


def test_the_card_lists_exactly_the_models_breeds_with_human_names():
    vocab = json.loads((MODEL / "meta.json").read_text())["vocab"]
    text = (MODEL / "README.md").read_text()
    assert card_breeds(text) == vocab and len(vocab) == 37
    assert "- British Shorthair (cat): `British_Shorthair`" in text
    assert "- American Pit Bull Terrier (dog): `american_pit_bull_terrier`" in text
    assert display_name("great_pyrenees") == "Great Pyrenees (dog)"


def test_the_card_says_what_the_issue_asks_for():
    text = (MODEL / "README.md").read_text()
    meta = json.loads((MODEL / "meta.json").read_text())
    for needed in ("## What it was trained on", f"{meta['n_train']} photos", f"{meta['n_valid']} photos",
                   "Validation error", "expected calibration error", "\"Not sure\"", "Mixed breeds",
                   "Other animals", "Several pets", "lessons/README.md"):
        assert needed in text, needed
    assert "(filled in by" not in text  # both generated blocks are filled


def test_reliability_on_known_numbers():
    # bins [0, .5) [.5, .8) [.8, .95) [.95, 1]: two answers at 0.9 (one right), one at 1.0 (right), one at 0.3 (wrong)
    ece, rows = reliability([0.9, 0.9, 1.0, 0.3], [True, False, True, False])
    assert [r["n"] for r in rows] == [1, 0, 2, 1]
    assert rows[2]["confidence"] == pytest.approx(0.9) and rows[2]["right"] == 0.5
    assert rows[1]["right"] is None
    assert ece == pytest.approx((1 * 0.3 + 2 * 0.4 + 1 * 0.0) / 4)
    with pytest.raises(ValueError, match="two equal 1-D"):
        reliability([0.5], [True, False])


def test_blocks_are_replaced_and_a_missing_block_is_said():
    text = "a\n<!-- x -->\nold\n<!-- /x -->\nb"
    assert replace_block(text, "x", "new") == "a\n<!-- x -->\nnew\n<!-- /x -->\nb"
    with pytest.raises(ValueError, match="no <!-- y -->"):
        replace_block(text, "y", "new")


def test_a_model_without_a_card_gets_one_from_its_meta(tmp_path):
    meta = {"arch": "resnet18", "vocab": ["Bengal", "pug"], "valid_error": 0.25, "n_train": 6, "n_valid": 4}
    (tmp_path / "meta.json").write_text(json.dumps(meta))
    text = card_text(tmp_path)
    assert card_breeds(text) == ["Bengal", "pug"] and "validation error 25.0% on 4 photos" in text


def test_the_cards_figures_are_what_the_model_measures(pets_sample):
    # recomputes the error and the calibration on the 74 validation photos, checks the card within tolerance
    done = subprocess.run([sys.executable, "bench/model_card.py", "--check"], cwd=ROOT, capture_output=True,
                          text=True, timeout=600, env={**os.environ, "PETS_SAMPLE": str(pets_sample)})
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    assert figures["n_valid"] == 74 and 0 <= figures["ece"] < 0.2
