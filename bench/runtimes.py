"""Measure an existing export's runtimes on photos and record the figures in its meta.json.

    python bench/runtimes.py demo/model                  # on the 370-photo sample ($PETS_SAMPLE or the cache)
    python bench/runtimes.py FOLDER --sample PHOTOS      # a folder with images/ and labels.csv

What it measures, and how the predictor uses it, is ``engine/serving/measure.py``: OpenVINO's
reduced precision (bf16) against the float graph on every photo, and each runtime's forward pass,
interleaved photo by photo. Only ``meta.json`` changes; the graphs and weights stay as they are.
The last line printed is the figures as JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main(argv: list[str] | None = None) -> dict:
    from engine.data.locate import pets_sample
    from engine.serving.measure import measure_export

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="an export folder (meta.json + graphs)")
    parser.add_argument("--sample", type=Path, default=None, help="photos: images/ + labels.csv (default: the sample)")
    args = parser.parse_args(argv)
    figures = measure_export(args.folder, args.sample or pets_sample())
    print(json.dumps(figures))
    return figures


if __name__ == "__main__":
    main()
