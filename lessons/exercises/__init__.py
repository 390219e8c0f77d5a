"""Exercises at the end of each notebook: predict, then run.

A notebook's exercise is two cells. In the first the student writes an answer (it starts as
``answer = ...``); the second grades it:

    check("01.1", answer)                 # or check("02.1", answer, dls=dls) with what it needs

``check`` prints "Right: ..." with what the answer shows, or a hint that helps without giving the
answer away. The checks live here, one module per notebook (``nb01.py`` for ``01_...``, ``nb03b.py`` for
``03b_...``; keys ``"01.2"``, ``"03b.1"``), and compute
the truth with the engine; the solutions live apart, in ``lessons/solutions/`` (``nb01.py``: one
function per exercise that works the answer out, and a plausible wrong answer).

Self-check: when the environment variable ``LESSONS_SELF_CHECK`` is set (``python -m lessons build``
and the tests set it) and the student's cell still holds ``...``, ``check`` grades the solution,
which must pass, and the wrong answer, which must fail, and raises if either does not. So every
build proves that each exercise can be solved and that each check can say no.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["Exercise", "exercise", "check", "is_right", "as_number", "get_exercise", "all_exercises", "said",
           "SELF_CHECK"]

SELF_CHECK = "LESSONS_SELF_CHECK"
NOTEBOOKS = ("00", "01", "02", "03", "03b", "04", "05", "06", "07", "08", "09")


@dataclass(frozen=True)
class Exercise:
    """One exercise: ``grade(answer, **context)`` returns None when the answer is right, else a hint."""

    key: str  # "01.2": notebook 01, exercise 2
    title: str  # one line, for the exercise index in lessons/README.md
    grade: Callable[..., str | None]
    right: str  # what the student sees when the answer is right (may use {answer})


_REGISTRY: dict[str, Exercise] = {}


def exercise(key: str, title: str, right: str):
    """Register the decorated ``grade(answer, **context) -> None | hint`` as exercise ``key``."""
    def register(grade):
        _REGISTRY[key] = Exercise(key, title, grade, right)
        return grade

    return register


def as_number(answer) -> float:
    """The answer as a float; a clear error (which ``check`` turns into a hint) for text, a bool or NaN."""
    import math

    if isinstance(answer, (str, bytes)):  # "0.17" would pass float(), not the {answer:.3f} of a reply
        raise TypeError("give a number, without quotes")
    if isinstance(answer, bool):
        raise TypeError("give a number, not True or False")
    value = float(answer)
    if math.isnan(value):
        raise ValueError("the answer is NaN")
    return value


def _module_of(key: str) -> str:
    notebook = key.split(".")[0]
    if notebook not in NOTEBOOKS:
        raise KeyError(f"no exercise {key!r}: keys look like '01.2' (notebook 01, exercise 2) or '03b.1'")
    return f"nb{notebook}"


def get_exercise(key: str) -> Exercise:
    importlib.import_module(f"{__name__}.{_module_of(key)}")
    try:
        return _REGISTRY[key]
    except KeyError:
        raise KeyError(f"no exercise {key!r} in lessons/exercises/{_module_of(key)}.py") from None


def all_exercises() -> list[Exercise]:
    """Every exercise of every notebook, in order."""
    for notebook in NOTEBOOKS:
        try:
            importlib.import_module(f"{__name__}.nb{notebook}")
        except ModuleNotFoundError as err:
            if err.name != f"{__name__}.nb{notebook}":
                raise
    return [_REGISTRY[k] for k in sorted(_REGISTRY, key=lambda k: (k.split(".")[0], int(k.split(".")[1])))]


def _grade(ex: Exercise, answer: Any, context: dict) -> str | None:
    try:
        return ex.grade(answer, **context)
    except Exception as err:  # an answer of the wrong kind: a hint, not a traceback
        return f"that answer could not be checked ({type(err).__name__}: {err}); see what the exercise asks for"


def is_right(key: str, answer: Any, **context) -> bool:
    """Whether ``answer`` is right for exercise ``key`` (nothing printed)."""
    return _grade(get_exercise(key), answer, context) is None


def check(key: str, answer: Any = ..., **context) -> None:
    """Grade ``answer`` for exercise ``key`` and print the verdict (returns nothing, so a notebook
    shows only the verdict; ``is_right`` gives the bool)."""
    ex = get_exercise(key)
    if answer is ... and os.environ.get(SELF_CHECK):
        solutions = importlib.import_module(f"lessons.solutions.{_module_of(key)}")
        good, bad = solutions.SOLUTIONS[key](**context), solutions.WRONG[key](**context)
        if _grade(ex, good, context) is not None:
            raise AssertionError(f"exercise {key}: the solution {good!r} does not pass: {_grade(ex, good, context)}")
        if _grade(ex, bad, context) is None:
            raise AssertionError(f"exercise {key}: the wrong answer {bad!r} passes: the check cannot fail")
        # Not the wrong answer itself: the rendered pages (python -m lessons build) would print it for every reader.
        print(f"Exercise {key} (self-check): the solution passes, and a plausible wrong answer gets a hint.")
        return
    if answer is ...:
        print(f"Exercise {key}: write your answer in the cell above (replace the ...), then run this cell again.")
        return
    hint = _grade(ex, answer, context)
    print("Right! " + ex.right.format(answer=answer) if hint is None else f"Not yet: {hint}")


def said(prediction, happened=None) -> str:
    """One line for an experiment that is not graded: the student's prediction (or, while its cell still
    holds ``...``, a reminder to write it first, never "Ellipsis") and, when given, what happened."""
    unwritten = prediction is ... or (isinstance(prediction, dict) and any(v is ... for v in prediction.values()))
    line = ("you have not written a prediction yet: replace the ... in the cell above, then run this cell again"
            if unwritten else f"you predicted {prediction!r}")
    return line if happened is None else f"{line}; what happened: {happened!r}"
