"""The chapter's questionnaire: the questions the lesson notebooks answer, and their headings.

``QUESTIONS`` is a copy of the question column of ``shared/QUESTIONNAIRE.md`` (next to the
repository): its table of 19 one-line questions. ``PRACTICE`` copies the titles of the list below
that table: the practice questions 20 to 23 and the further research, 24. With these copies the
tests can check that the notebooks cover every question even where that file is not around; when it
is, ``tests/test_lessons.py`` also checks that the copies still match it.

``HEADINGS`` is what the notebooks (and ``lessons/README.md``) call each question: the same question
in our own words, ``## Q7. <heading>``. The book's wording is not ours to redistribute, so the
headings are paraphrases, and the tests find a question's section by its number.
"""

from __future__ import annotations

import re
from pathlib import Path

__all__ = ["QUESTIONS", "PRACTICE", "HEADINGS", "parse_questionnaire", "parse_practice"]

QUESTIONS: dict[int, str] = {
    1: 'Why resize to a large size on the CPU first, then to the final size on the GPU ("presizing")?',
    2: "What are the two most common ways data is provided?",
    3: "Two ways image transforms can degrade data?",
    4: "How do you view the data in a DataLoader?",
    5: "How do you debug a data pipeline?",
    6: "Should you clean data fully before training a first model?",
    7: "Which two pieces make cross-entropy loss in PyTorch?",
    8: "Which two properties does softmax ensure, and why does it matter?",
    9: "When would you not want those properties?",
    10: "Why can't `torch.where` build a loss for more than two categories?",
    11: "What is log(-2), and why?",
    12: "Two rules of thumb for picking a learning rate from the LR finder?",
    13: "Which two steps does `fine_tune` do?",
    14: "How do you see a function's source in Jupyter?",
    15: "What are discriminative learning rates?",
    16: "How is a `slice` learning rate interpreted?",
    17: "Why is early stopping a poor fit for one-cycle training?",
    18: "What is the difference between resnet50 and resnet101?",
    19: "What does `to_fp16` do?",
}

PRACTICE: dict[int, str] = {
    20: "Practise regular expressions.",
    21: "Try the methods of Python's `pathlib.Path`, and of fastai's `L` list class.",
    22: "Compute the exp and softmax columns of a small table of activations yourself.",
    23: "Read the paper that introduced the learning-rate finder.",
    24: "How good can the classifier get?",
}

HEADINGS: dict[int, str] = {
    1: "Presizing: why one generous resize per photo on the CPU, and the final size only in the batch step "
       "on the device?",
    2: "In which two forms does a dataset usually arrive?",
    3: "Name two ways in which transforming an image can damage it.",
    4: "How can you look at what a DataLoader produces?",
    5: "When a data pipeline breaks, how do you find the faulty step?",
    6: "Must the data be cleaned completely before the first model is trained?",
    7: "Cross-entropy in PyTorch is built from which two parts?",
    8: "What two guarantees does softmax give, and why do they matter?",
    9: "In which situations are those guarantees unwelcome?",
    10: "Why is `torch.where` no way to write a loss for three or more classes?",
    11: "What comes out of log(-2), and why?",
    12: "How do two rules of thumb turn the LR finder's curve into a learning rate?",
    13: "What are the two stages of `fine_tune`?",
    14: "How can Jupyter show you the source code of a function?",
    15: "What does it mean to train with discriminative learning rates?",
    16: "How does a `slice` of learning rates spread over the layer groups?",
    17: "Why do early stopping and a one-cycle schedule get in each other's way?",
    18: "How do resnet50 and resnet101 differ?",
    19: "What changes when you call `to_fp16`?",
    20: "Regular expressions at work: reading breed and species off a file name",
    21: "Listing, filtering and grouping the photos with `pathlib.Path` (and what replaces fastai's `L`)",
    22: "Softmax by hand: from a few activations to their exponentials and probabilities",
    23: "The paper behind the LR finder: what it proposed, and what the engine took from it",
    24: "The accuracy challenge: a recipe of your own under 9.5% error, judged on photos it never trained on",
}

_ROW = re.compile(r"^\|\s*(\d+)\s*\|\s*(.+?)\s*\|.*\|\s*$")


def parse_questionnaire(path: str | Path) -> dict[int, str]:
    """``{number: question}`` from the table rows ``| n | question | evidence |`` of QUESTIONNAIRE.md."""
    out = {}
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        m = _ROW.match(line)
        if m:
            out[int(m.group(1))] = m.group(2)
    if not out:
        raise ValueError(f"{path}: found no question rows like '| 1 | question | evidence |'")
    return out


_ITEM = re.compile(r"^- \*\*(\d+)\.\s+(.+?)\*\*")


def parse_practice(path: str | Path) -> dict[int, str]:
    """``{number: title}`` from the list items ``- **20. Title.**`` below the table of QUESTIONNAIRE.md."""
    out = {int(m.group(1)): m.group(2) for line in Path(path).read_text(encoding="utf-8").splitlines()
           if (m := _ITEM.match(line))}
    if not out:
        raise ValueError(f"{path}: found no numbered list items like '- **20. Title.** ...'")
    return out
