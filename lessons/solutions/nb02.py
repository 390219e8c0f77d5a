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


def planted_cell(interp, clean, position):
    # Rows are the labels as they are in the data: the planted (wrong) one. Columns are the
    # predictions: the photo's title in the top losses ("predicted / actual").
    label = interp.vocab[interp.targets[position]]
    predicted = interp.vocab[interp.preds[position]]
    return (label, predicted)


def _on_the_diagonal(interp, clean, position):
    # A plausible mistake: "the model is right, so the photo is on the diagonal of its real breed".
    return (clean.vocab[clean.targets[position]], interp.vocab[interp.preds[position]])


def _every_row(folder):
    with open(Path(folder) / "labels.csv", newline="") as f:
        return sum(row["is_valid"] == "0" for row in csv.DictReader(f))


SOLUTIONS = {"02.1": truncated_step, "02.2": rebuilt_count, "02.3": planted_cell}
WRONG = {"02.1": lambda dls: "collate", "02.2": _every_row, "02.3": _on_the_diagonal}
