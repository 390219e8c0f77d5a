"""Benchmark: how often the "not a pet" decision refuses a pet, and lets a non-pet through.

    python bench/not_a_pet.py

The shipped model (``demo/model``, through ``load_predictor``) looks at:

- sample: the 370 photos of $PETS_SAMPLE/images, every one a cat or a dog of a known breed;
- non_pets: every real photograph that is not a pet and needs no download (``tests/support/non_pets.py``:
  17 of scikit-image's data module, its stereo motorcycle pair and matplotlib's Grace Hopper);
- faces: scikit-image's 200 tiny (25x25) face photographs, ``lfw_subset``, as their own group;
- cats: scikit-image's ``cat`` / ``chelsea`` (the same tabby; left out of the non-pets, as it is a cat).

Each group is counted twice: ``before``, by the rule of issue 22 (the ImageNet check alone refuses a
photo, whatever the breed model says), and ``after``, by the engine's ``Prediction.verdict``
(``engine/serving/prediction.py``: "breed", "unsure", "disagree", "not_a_pet" or "too_small"). Wanted:
no sample photo refused, and every non-pet refused, "unsure" or "too_small" (the faces are 25x25).

The calibration of ``DISAGREE_FROM`` reads two figures: ``pets_imagenet_refuses_min_p``, the breed
model's lowest top probability among the sample photos ImageNet sees no cat or dog in, and
``non_pets_max_p``, its highest on any non-pet photograph (faces included). The rows behind them are
printed; the last line is one JSON object with all figures.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from demo.settings import SHIPPED_MODEL
from engine.data.items import get_image_files
from engine.data.locate import pets_sample
from engine.serving.prediction import DISAGREE_FROM, UNSURE_BELOW, Prediction
from engine.serving.predictor import load_predictor
from tests.support.non_pets import cat_photos, faces, non_pet_photos

KINDS = ("breed", "unsure", "disagree", "not_a_pet", "too_small")


def before(prediction: Prediction) -> str:
    """The rule of issue 22: the ImageNet check alone refuses; else unsure below UNSURE_BELOW, else a breed."""
    if prediction.imagenet is not None and prediction.imagenet.not_a_pet:
        return "not_a_pet"
    return "unsure" if max(prediction.probabilities.values()) < UNSURE_BELOW else "breed"


def counts(verdicts: list[str]) -> dict[str, int]:
    found = Counter(verdicts)
    return {kind: found[kind] for kind in KINDS}


def main() -> None:
    predictor = load_predictor(SHIPPED_MODEL)
    print(f"{predictor} ({predictor.runtime_report}); DISAGREE_FROM = {DISAGREE_FROM}", flush=True)
    groups = {
        "sample": {p.name: p for p in get_image_files(pets_sample() / "images")},
        "non_pets": non_pet_photos(),
        "faces": faces(),
        "cats": cat_photos(),
    }
    figures: dict = {"disagree_from": DISAGREE_FROM}
    imagenet_refused_pets, non_pet_top = [], []
    for group, photos in groups.items():
        predictions = {name: predictor.predict(photo) for name, photo in photos.items()}
        figures[group] = {"n": len(predictions), "before": counts([before(p) for p in predictions.values()]),
                          "after": counts([p.verdict for p in predictions.values()])}
        for name, p in predictions.items():
            top = max(p.probabilities.values())
            if group in ("sample", "cats") and p.imagenet.not_a_pet:
                imagenet_refused_pets.append(top)
            if group in ("non_pets", "faces"):
                non_pet_top.append(top)
            interesting = p.imagenet.not_a_pet if group in ("sample", "cats") else p.verdict != "not_a_pet"
            if interesting or group == "non_pets":
                seen = ", ".join(f"{n} {q:.0%}" for n, q in p.imagenet.top[:2])
                print(f"  {group:8} {name:28} {before(p):9} -> {p.verdict:9} breed model {p.label} {top:.1%}; "
                      f"ImageNet: {seen} (cats and dogs {p.imagenet.pet_probability:.1%})", flush=True)
        print(f"{group}: {figures[group]}", flush=True)
    figures["pets_imagenet_refuses_min_p"] = round(min(imagenet_refused_pets, default=1.0), 4)
    figures["non_pets_max_p"] = round(max(non_pet_top), 4)
    after = {g: figures[g]["after"] for g in groups}
    figures["sample_refused"] = after["sample"]["not_a_pet"]
    figures["non_pets_let_through"] = sum(after[g]["breed"] + after[g]["disagree"] for g in ("non_pets", "faces"))
    figures["met"] = figures["sample_refused"] == 0 and figures["non_pets_let_through"] == 0
    print(f"sample photos refused: {figures['sample']['before']['not_a_pet']} before, {figures['sample_refused']} "
          f"now; non-pets named as a breed: {figures['non_pets_let_through']} (wanted: 0 and 0: "
          f"{'met' if figures['met'] else 'NOT met'})", flush=True)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
