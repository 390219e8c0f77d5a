"""The model card's generated parts: the breeds, and the validation error and calibration, measured.

    python bench/model_card.py            # measure and print the figures (the last line is JSON)
    python bench/model_card.py --write    # and write them into demo/model/README.md
    python bench/model_card.py --check    # exit 1 if the card's breeds or figures are not what is measured

The figures come from the shipped model as the demo serves it (``load_predictor``, one photo at a
time, no mirror) on the validation photos of the 370-photo sample ($PETS_SAMPLE, or the cache:
``engine.data.locate.pets_sample``): 74 photos, 2 per breed. Calibration is measured with
``demo.model_card.reliability`` in the bins ``demo.model_card.BINS``; ``--check`` allows ``TOLERANCE`` on the
expected calibration error (a runtime's rounding may move a probability a little) and none on the
count of wrong answers.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from demo.model_card import breeds_markdown, card_breeds, reliability, replace_block  # noqa: E402
from engine.data.breeds import display_name  # noqa: E402

MODEL = ROOT / "demo" / "model"
TOLERANCE = 0.005  # on the expected calibration error


def measure(model: Path = MODEL, sample: Path | None = None) -> dict:
    """The figures of ``model`` on the validation photos of ``sample`` (default: the pet sample)."""
    from engine.data.locate import pets_sample
    from engine.serving.predictor import load_predictor

    sample = Path(sample) if sample is not None else pets_sample()
    predictor = load_predictor(model)
    with open(sample / "labels.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["is_valid"] == "1"]
    confidence, correct, wrong = [], [], []
    for row in rows:
        breed, p = predictor.predict(sample / "images" / row["name"]).top(1)[0]
        confidence.append(p)
        correct.append(breed == row["breed"])
        if breed != row["breed"]:
            wrong.append((row["breed"], breed))
    ece, table = reliability(confidence, correct)
    n, n_wrong = len(rows), len(wrong)
    return {"runtime": predictor.runtime.name,
            "n_valid": n, "n_wrong": n_wrong, "valid_error": n_wrong / n, "interval": wilson(n_wrong, n),
            "ece": ece, "mean_confidence": sum(confidence) / n, "table": table, "wrong": sorted(wrong)}


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The 95% Wilson interval of a share ``k / n``: where the true rate plausibly lies."""
    p, z2 = k / n, z * z
    centre, half = (p + z2 / (2 * n)) / (1 + z2 / n), z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def figures_markdown(fig: dict, meta: dict) -> str:
    """The card's figures block."""
    lo, hi = fig["interval"]
    lines = [f"Measured by `python bench/model_card.py` on the {fig['n_valid']} validation photos of the sample, "
             f"as the demo serves the model (one photo at a time, no mirror image) on this project's CPU, where it "
             f"runs on {fig['runtime']}. Another runtime (a CPU without bf16 or 8-bit units, a GPU) rounds a "
             "little differently, which can swap a borderline answer:", "",
             f"- **Validation error: {fig['valid_error']:.1%}** ({fig['n_wrong']} of {fig['n_valid']} photos wrong; "
             f"at training, with the mirror image too: {meta['valid_error']:.1%}). So few photos give a rough "
             f"figure: the true error rate plausibly lies between {lo:.0%} and {hi:.0%} (95% interval).",
             f"- **Calibration: expected calibration error (ECE) {fig['ece']:.1%}.** The mean confidence of the "
             f"top breed is {fig['mean_confidence']:.1%} and {1 - fig['valid_error']:.1%} of the answers are right: "
             "overall its confidence matches how often it is right, but bin by bin (below) it is off by "
             f"{fig['ece']:.1%} on average, a rough figure with so few photos per bin:", "",
             "| confidence in the top breed | photos | mean confidence | right |", "|---|---|---|---|"]
    for row in fig["table"]:
        span = f"{row['lo']:.0%} to {row['hi']:.0%}" + (" (\"not sure\")" if row["hi"] <= 0.5 else "")
        if row["n"]:
            lines.append(f"| {span} | {row['n']} | {row['confidence']:.0%} | {row['right']:.0%} |")
        else:
            lines.append(f"| {span} | 0 | - | - |")
    mixups = ", ".join(f"{display_name(a)} taken for {display_name(b)}" for a, b in fig["wrong"])
    lines += ["", f"The {fig['n_wrong']} mistakes: {mixups}."]
    return "\n".join(lines)


def card_figures(text: str) -> dict:
    """The figures a card states: ``{"n_wrong", "n_valid", "ece"}`` (ECE as a share)."""
    wrong = re.search(r"\((\d+) of (\d+) photos wrong", text)
    ece = re.search(r"expected calibration error \(ECE\) ([\d.]+)%", text)
    if not wrong or not ece:
        raise ValueError("the card states no validation error or ECE in the form bench/model_card.py writes")
    return {"n_wrong": int(wrong[1]), "n_valid": int(wrong[2]), "ece": float(ece[1]) / 100}


def problems(text: str, fig: dict, vocab: list[str]) -> list[str]:
    """What in the card ``text`` disagrees with the model's ``vocab`` and the measured figures ``fig``."""
    out = []
    if card_breeds(text) != list(vocab):
        out.append(f"the card lists {card_breeds(text)} as the breeds, the model knows {vocab}")
    stated = card_figures(text)
    if (stated["n_wrong"], stated["n_valid"]) != (fig["n_wrong"], fig["n_valid"]):
        out.append(f"the card says {stated['n_wrong']} of {stated['n_valid']} wrong, measured "
                   f"{fig['n_wrong']} of {fig['n_valid']}")
    if abs(stated["ece"] - fig["ece"]) > TOLERANCE:
        out.append(f"the card's ECE is {stated['ece']:.1%}, measured {fig['ece']:.2%} (tolerance {TOLERANCE:.1%})")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", action="store_true", help="write the figures and breeds into the card")
    parser.add_argument("--check", action="store_true", help="exit 1 if the card disagrees with what is measured")
    parser.add_argument("--model", type=Path, default=MODEL, help="model folder with meta.json and README.md")
    args = parser.parse_args(argv)
    meta = json.loads((args.model / "meta.json").read_text(encoding="utf-8"))
    card = args.model / "README.md"
    fig = measure(args.model)
    text = card.read_text(encoding="utf-8")
    if args.write:
        text = replace_block(text, "figures", figures_markdown(fig, meta))
        text = replace_block(text, "breeds", breeds_markdown(meta["vocab"]))
        card.write_text(text, encoding="utf-8")
    print(figures_markdown(fig, meta))
    print(json.dumps({k: fig[k] for k in ("n_valid", "n_wrong", "valid_error", "ece", "mean_confidence")}))
    if args.check:
        found = problems(text, fig, meta["vocab"])
        for problem in found:
            print(f"model card: {problem}; python bench/model_card.py --write updates it", file=sys.stderr)
        return 1 if found else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
