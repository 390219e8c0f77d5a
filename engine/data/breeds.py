"""The 37 breeds of the Oxford-IIIT Pet dataset, and telling cats from dogs by the name.

Cat breeds are written with an upper-case first letter (``Bengal``), dog breeds in lower case
(``great_pyrenees``), in the breed names and so in the file names (``Bengal_12.jpg``). Those ids
stay in exports, CSVs and the API; a person reads ``display_name``: "British Shorthair (cat)".
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["PET_BREEDS", "is_cat", "display_name"]

# Sorted as Python sorts strings: the 12 cats (upper-case first letter) come before the 25 dogs.
PET_BREEDS: tuple[str, ...] = (
    "Abyssinian", "Bengal", "Birman", "Bombay", "British_Shorthair", "Egyptian_Mau", "Maine_Coon",
    "Persian", "Ragdoll", "Russian_Blue", "Siamese", "Sphynx",
    "american_bulldog", "american_pit_bull_terrier", "basset_hound", "beagle", "boxer",
    "chihuahua", "english_cocker_spaniel", "english_setter", "german_shorthaired",
    "great_pyrenees", "havanese", "japanese_chin", "keeshond", "leonberger",
    "miniature_pinscher", "newfoundland", "pomeranian", "pug", "saint_bernard", "samoyed",
    "scottish_terrier", "shiba_inu", "staffordshire_bull_terrier", "wheaten_terrier",
    "yorkshire_terrier",
)  # fmt: skip


def is_cat(name: str) -> bool:
    """True for a cat breed or file name (``Bengal``, ``Bengal_12.jpg``): cats start upper-case."""
    base = Path(name).name
    if not base:
        raise ValueError(f"is_cat: expected a breed or file name like 'Bengal_12.jpg', got {name!r}")
    return base[0].isupper()


def display_name(breed: str) -> str:
    """A breed id as a person reads it: ``British_Shorthair`` -> ``British Shorthair (cat)``,
    ``american_pit_bull_terrier`` -> ``American Pit Bull Terrier (dog)``."""
    words = [w for w in breed.split("_") if w]
    if not words:
        raise ValueError(f"display_name: expected a breed id like 'British_Shorthair' or 'pug', got {breed!r}")
    species = "cat" if is_cat(breed) else "dog"
    return f"{' '.join(w[0].upper() + w[1:] for w in words)} ({species})"
