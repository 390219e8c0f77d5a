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


def _choice(answer, choices) -> str | None:
    """The answer as one of ``choices`` (case and spaces do not matter), or None."""
    given = _words(answer) if isinstance(answer, str) else None
    return given if given in choices else None


_LEARNT: dict = {}  # the experiment's result, per head learner: check and self-check run it once


def learnt_after(head, planted_train, epochs: int, lr: float = 2e-3) -> int:
    """How many planted training photos a copy of ``head`` (on the cached features) predicts with their
    wrong label after ``epochs`` more one-cycle epochs at ``lr``; ``epochs=0``: as it is now. The
    notebook's own learner is left as it was."""
    import copy

    import torch

    from engine.learning.learner import Learner

    key = (id(head), tuple(planted_train), epochs, lr)
    if key not in _LEARNT:
        model = copy.deepcopy(head.model)
        twin = Learner(head.dls, model, loss_func=head.loss_func, lr=lr, metrics=head.metrics, progress=False)
        if epochs:
            torch.manual_seed(0)
            twin.fit_one_cycle(epochs, lr)
        cache = head.dls.cache
        model.eval()
        with torch.no_grad():
            preds = model(cache.train[0].to(head.dls.device)).argmax(1).cpu()
        labels = cache.train_y.cpu()
        _LEARNT[key] = sum(int(preds[pos] == labels[pos]) for pos in planted_train)
    return _LEARNT[key]


@exercise("02.3", "Train the baseline's head longer on the noisy labels: more, fewer or the same planted "
                  "training photos predicted with their wrong label?",
          right="{answer}: trained longer on the same photos, the head fits the labels it is given, wrong ones "
                "included, and a planted photo that fits its wrong label drops out of the top losses. That is "
                "why a quick baseline, looked at early, finds them best.")
def longer_training(answer, head, planted_train) -> str | None:
    choices = ("more", "fewer", "the same")
    given = _choice(answer, choices + ("same",))
    if given is None:
        return "answer with one of 'more', 'fewer' or 'the same'"
    now, later = learnt_after(head, planted_train, 0), learnt_after(head, planted_train, 12)
    truth = "more" if later > now else "fewer" if later < now else "the same"
    if given.replace("the same", "same") == truth.replace("the same", "same"):
        return None
    return ("not what happened: which labels does the head see in every epoch for those six photos, and what "
            "does more training do to a training set's loss?")
