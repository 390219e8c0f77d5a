"""Checks for the exercises of 09_practice_and_further_reading.ipynb."""

from __future__ import annotations

import math
import tempfile
from collections import Counter
from pathlib import Path

from . import as_number as _number
from . import exercise

# Names a pets pattern must refuse: no number, another format, something after ".jpg", no dot before
# "jpg", a word for the number, no breed before the underscore.
MISFITS = ("Bengal.jpg", "pug_12.png", "pug_12.jpg.bak", "pug_12xjpg", "pug_twelve.jpg", "_12.jpg")
# A made-up corner of the full download: photos, and a MATLAB file beside them (the full images/ has a few).
TOY_FOLDER = ("Abyssinian_1.jpg", "Abyssinian_12.jpg", "great_pyrenees_3.jpg", "Abyssinian_100.mat")
TABLE = (1.0, 3.0, -0.5, 0.0)  # the activations of 09.3's table (pug, beagle, Bengal, Persian)


@exercise("09.1", "A regular expression that reads the breed off every photo name and refuses misfits",
          right="Your pattern gives every photo its breed and refuses all six misfits: the two anchors and the "
                "escaped dot are what make it strict.")
def breed_pattern(answer, files) -> str | None:
    from engine.data.items import PETS_PATTERN, RegexLabeller

    if not isinstance(answer, str):
        return "give the pattern as a string, e.g. r'^...$'"
    mine, truth = RegexLabeller(answer), RegexLabeller(PETS_PATTERN)  # RegexLabeller refuses a pattern without a group
    for f in files:
        if mine(f) != truth(f):
            return f"on {Path(f).name} your pattern gives {mine(f)!r}: the breed is everything before the last '_'"
    for name in MISFITS:
        if mine(name) is not None:
            return f"your pattern accepts {name!r}, which is not a photo name: where must the match stop?"
    return None


@exercise("09.2", "A function that counts the photos of each breed in a folder, with pathlib.Path alone",
          right="Your function counts every breed right, in the photo folder and in a folder that also holds a "
                "file that is not a photo.")
def breed_counts(answer, folder) -> str | None:
    from engine.data.items import RegexLabeller, get_image_files

    if not callable(answer):
        return "give a function: def count(folder): ... returning a dict {breed: number of photos}"

    def truth(where: Path) -> Counter:
        return Counter(RegexLabeller()(f) for f in get_image_files(where) if f.suffix == ".jpg")

    with tempfile.TemporaryDirectory() as tmp:
        for name in TOY_FOLDER:
            (Path(tmp) / name).touch()
        for where, what in ((Path(tmp), "a small folder laid out like the full download"), (Path(folder), "images/")):
            got, want = dict(answer(where)), dict(truth(where))
            if got != want:
                wrong = sorted(set(got) ^ set(want)) or sorted(k for k in got if got[k] != want[k])
                return (f"in {what}, your counts differ for {', '.join(map(str, wrong[:3]))}: does every file "
                        f"in a folder hold a photo, and where does a breed's name end?")
    return None


@exercise("09.3", "The exp and softmax columns of four activations, worked out by hand",
          right="Both columns match the engine's softmax: each exp divided by the sum of the exps. The largest "
                "activation, 3, takes over 80% of the probability.")
def softmax_columns(answer) -> str | None:
    import torch

    from engine.losses import softmax

    x = torch.tensor(TABLE, dtype=torch.float64)
    exps, probs = answer
    exps, probs = [_number(v) for v in exps], [_number(v) for v in probs]
    if len(exps) != len(TABLE) or len(probs) != len(TABLE):
        return f"give two lists of {len(TABLE)} numbers: (exps, probs), one number per row of the table"
    if not all(math.isclose(e, math.exp(a), rel_tol=0.01) for e, a in zip(exps, TABLE)):
        return "the exp column: e (2.718...) to the power of each activation; exp of a negative number is below 1"
    if not math.isclose(sum(probs), 1, abs_tol=0.01):
        return f"your softmax column adds up to {sum(probs):.3f}; softmax's column always adds up to 1"
    if not all(abs(p - float(t)) <= 0.005 for p, t in zip(probs, softmax(x))):
        return "the softmax column: divide each exp by the sum of the exp column (not the activations by their sum)"
    return None

