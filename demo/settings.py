"""What the server operator chooses: which model to serve, what to train on, how big an upload may be.

Visitors never choose paths on the server. The training data in particular is fixed when the
server starts (``--train-data``, else ``$PETS_SAMPLE/labels.csv``); without it tab 4 is switched
off and says how to switch it on.
"""

from __future__ import annotations

import csv
import os
import re
from dataclasses import dataclass
from pathlib import Path

__all__ = ["SHIPPED_MODEL", "DemoSettings", "default_train_data", "parse_size", "example_photos",
           "TRAINING_DISABLED"]

SHIPPED_MODEL = Path(__file__).resolve().parent / "model"
TRAINING_DISABLED = ("Training is switched off on this server: it has no training data. To switch it on, "
                     "start the demo with `python -m demo --train-data path/to/labels.csv` (a labels CSV with "
                     "images/ beside it, or a folder of photos named like `beagle_12.jpg`), or set "
                     "PETS_SAMPLE to the pet sample folder.")

_UNITS = {"b": 1, "kb": 1024, "mb": 1024**2, "gb": 1024**3}


def parse_size(value: str | int) -> int:
    """``"10mb"`` -> 10485760 bytes (units b, kb, mb, gb, any case); an int is already bytes."""
    if isinstance(value, int):
        n = value
    else:
        match = re.fullmatch(r"\s*(\d+)\s*([kmg]?b)?\s*", str(value).lower())
        if not match:
            raise ValueError(f"file size {value!r}: expected a number of bytes or e.g. '10mb' (units b, kb, mb, gb)")
        n = int(match[1]) * _UNITS[match[2] or "b"]
    if n <= 0:
        raise ValueError(f"file size {value!r}: must be more than 0 bytes")
    return n


def default_train_data() -> Path | None:
    """``$PETS_SAMPLE/labels.csv`` when ``PETS_SAMPLE`` is set, else None (training switched off)."""
    sample = os.environ.get("PETS_SAMPLE")
    return (Path(sample) / "labels.csv").resolve() if sample else None


@dataclass(frozen=True)
class DemoSettings:
    """The operator's choices. ``train_data`` None switches training off."""

    model: Path = SHIPPED_MODEL
    train_data: Path | None = None
    max_file_size: int = 10 * 1024**2  # bytes

    @classmethod
    def from_env(cls) -> "DemoSettings":
        """The defaults: the shipped model, and the sample's labels.csv when PETS_SAMPLE is set."""
        return cls(train_data=default_train_data())


def example_photos(n_per_species: int = 2) -> list[Path]:
    """A few validation photos of the sample, cats and dogs, to click on; none when it is absent.

    The photos stay where they are (``$PETS_SAMPLE/images``): the repository holds no photos.
    """
    sample = os.environ.get("PETS_SAMPLE")
    table = Path(sample) / "labels.csv" if sample else None
    if table is None or not table.is_file():
        return []
    picked: dict[str, list[Path]] = {"cat": [], "dog": []}
    breeds: set[str] = set()
    with open(table, newline="") as f:
        for row in csv.DictReader(f):
            species, breed = row.get("species"), row.get("breed")
            path = table.parent / "images" / row.get("name", "")
            if (row.get("is_valid") == "1" and species in picked and len(picked[species]) < n_per_species
                    and breed not in breeds and path.is_file()):
                picked[species].append(path)
                breeds.add(breed)
    return picked["cat"] + picked["dog"]
