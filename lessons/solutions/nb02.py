"""Solutions for 02_inspecting_and_debugging_data.ipynb."""

import csv
from pathlib import Path


def truncated_step(dls):
    # The steps run in order, each on what the one before returned (Q5 printed them). Only the
    # first one reads the file; the truncated photo cannot be decoded, so nothing after it runs.
    first_step, _ = dls.train.dataset.steps()[0]
    return first_step  # "open image"


def rebuilt_count(folder):
    # The table lists the training photos (is_valid = 0). Building the DataLoaders checks every
    # file first and leaves the unreadable ones out: one photo is truncated, so one fewer.
    with open(Path(folder) / "labels.csv", newline="") as f:
        listed = sum(row["is_valid"] == "0" for row in csv.DictReader(f))
    return listed - 1


def longer_training(head, planted_train):
    # Run it: a copy of the head, 12 more epochs on the same cached features (and the same wrong
    # labels); count the planted photos it predicts with their planted label, before and after.
    from lessons.exercises.nb02 import learnt_after

    now, later = learnt_after(head, planted_train, 0), learnt_after(head, planted_train, 12)
    return "more" if later > now else "fewer" if later < now else "the same"


def _the_opposite(head, planted_train):
    # A plausible mistake: "more training makes the model better, so it trusts the wrong labels less".
    right = longer_training(head, planted_train)
    return "fewer" if right != "fewer" else "more"


def _every_row(folder):
    with open(Path(folder) / "labels.csv", newline="") as f:
        return sum(row["is_valid"] == "0" for row in csv.DictReader(f))


SOLUTIONS = {"02.1": truncated_step, "02.2": rebuilt_count, "02.3": longer_training}
WRONG = {"02.1": lambda dls: "collate", "02.2": _every_row, "02.3": _the_opposite}
