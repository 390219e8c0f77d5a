"""Solutions for 09_practice_and_further_reading.ipynb."""

import math
from collections import Counter


def breed_pattern(files=None):
    # ^ and $: the whole name must fit; (.+) takes as much as it can, so it stops at the LAST "_"
    # that is followed by digits; \. is a real dot (a bare . matches any character).
    return r"^(.+)_\d+\.jpg$"


def count_breeds(folder):
    # iterdir lists the folder; suffix keeps the photos (the full download also holds .mat files);
    # stem drops ".jpg", and rsplit("_", 1) cuts at the last underscore: "great_pyrenees_3" -> "great_pyrenees".
    return Counter(p.stem.rsplit("_", 1)[0] for p in folder.iterdir() if p.suffix == ".jpg")


def softmax_columns():
    activations = (1.0, 3.0, -0.5, 0.0)
    exps = [math.exp(a) for a in activations]  # 2.718, 20.09, 0.607, 1.0
    return exps, [e / sum(exps) for e in exps]  # 0.111, 0.820, 0.025, 0.041


def count_every_file(folder):
    # wrong: the .mat file of the full download is counted as a photo of its "breed"
    return Counter(p.stem.rsplit("_", 1)[0] for p in folder.iterdir())


SOLUTIONS = {"09.1": breed_pattern, "09.2": lambda folder: count_breeds, "09.3": softmax_columns}
WRONG = {
    "09.1": lambda files: r"^(.+)_\d+\.jpg",  # no $: "pug_12.jpg.bak" gets through
    "09.2": lambda folder: count_every_file,
    "09.3": lambda: ([math.exp(a) for a in (1.0, 3.0, -0.5, 0.0)], [a / 3.5 for a in (1.0, 3.0, -0.5, 0.0)]),
}
