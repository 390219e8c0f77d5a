"""Checks for the exercises of 02_inspecting_and_debugging_data.ipynb."""

from __future__ import annotations

from . import exercise


def _words(answer) -> str:
    """A step or breed name as typed: quotes, case, underscores and extra spaces do not matter."""
    if not isinstance(answer, str):
        raise TypeError(f"expected a name (a string), got {type(answer).__name__}")
    return " ".join(answer.strip().strip("'\"").replace("_", " ").lower().split())


@exercise("02.1", "The step where summary stops on a photo truncated after the DataLoaders were built",
          right="The pipeline stops at its very first step, 'open image': decoding the file needs all of its "
                "bytes, and no later step runs without pixels. summary names the file and says what to do.")
def truncated_step(answer, dls) -> str | None:
    from engine.data.summary import summary

    report = summary(dls, show=None)  # what the engine really reports for this pipeline
    if report.ok:
        return ("summary finds nothing wrong with this pipeline: run the exercise's setup cell again, it "
                "truncates a photo after building the DataLoaders")
    if not isinstance(answer, str):
        return "give the step's name as a string, as summary prints it (for example 'to tensor')"
    given, truth = _words(answer), _words(report.failed_step)
    if given and (given == truth or (len(given) >= 4 and truth.startswith(given))):
        return None
    if given.startswith("collate"):
        return ("collate failed in Q5 because of photos of different sizes; here one file is broken, and the "
                "steps run in order, each on what the one before returned: does the broken photo get that far?")
    if given.startswith(("presize", "to tensor", "tensor", "to device", "device", "augment")):
        return ("that step works on pixels, so it never gets to run: the steps run in order. Which step is "
                "the first to need the file's bytes?")
    return "give the name of one of the steps that summary printed in Q5 (for example 'to tensor')"


@exercise("02.2", "How many training photos the DataLoaders keep when a photo is already truncated",
          right="DataLoaders.from_items checks every file before it builds the datasets and leaves "
                "the unreadable one out, with one warning (and a line in dls.notes); summary then finds no fault.")
def rebuilt_count(answer, folder) -> str | None:
    import re
    import warnings
    from pathlib import Path

    from engine.data import DataLoaders
    from engine.data.items import read_table
    from engine.data.summary import summary

    folder = Path(folder)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the warning about the unreadable file: the student sees it later
        dls = DataLoaders.from_csv(folder / "labels.csv", presize=460, size=224, batch_size=4, seed=0)
    report = summary(dls, show=None)
    reported = int(re.search(r"(\d+) items", report.lines[0]).group(1))  # "train split, N items, ..."
    assert reported == len(dls.train.dataset)
    listed = sum(not v for v in read_table(folder / "labels.csv", folder / "images")[2])
    if isinstance(answer, bool) or not float(answer).is_integer():
        return "give a whole number: how many training items the first line of summary reports"
    value = int(answer)
    if value == reported:
        return None
    if value == listed:
        return ("that is every training row of the table. Does a broken file even get into the dataset? "
                "Read DataLoaders.from_items?? (what it does with the files before it builds the datasets)")
    if value < reported:
        return "too few: only one photo is broken, and the validation photos are not counted here"
    return f"the table lists only {listed} training photos, and one of them is broken"


@exercise("02.3", "The cell of the confusion matrix that counts a planted (mislabelled) photo",
          right="Row {answer[0]}, column {answer[1]}: the matrix counts the labels as they are in the data, right "
                "or wrong, against what the model predicted. That is how a mislabelled photo shows up off the "
                "diagonal even when the model is right.")
def planted_cell(answer, interp, clean, position) -> str | None:
    vocab = interp.vocab
    if isinstance(answer, str) or not hasattr(answer, "__len__") or len(answer) != 2:
        return "give a pair (row, column) of breed names, for example ('Bengal', 'pug')"
    by_words = {_words(b): b for b in vocab}
    row, col = (by_words.get(_words(a)) for a in answer)
    for typed, found in zip(answer, (row, col)):
        if found is None:
            return f"{typed!r} is not one of the 37 breeds: write the names as dls.vocab does"
    label, predicted = vocab[interp.targets[position]], vocab[interp.preds[position]]
    real = vocab[clean.targets[position]]
    if (row, col) == (label, predicted):
        return None
    if (row, col) == (predicted, label):
        return "rows and columns are swapped: a row is the actual label, a column the prediction"
    if row == real != label:
        return ("a row counts the photos that carry that label in the data, whether the label is right or "
                "not. Which label does this photo carry?")
    if row == label:
        return ("the row is right; the column is what the model predicted: the photo's title in the top "
                "losses above says it (predicted / actual)")
    return "find the photo in the top losses above: its title says the prediction and the label (predicted / actual)"
