"""The chapter's questionnaire: the 19 questions the lesson notebooks answer, word for word.

A copy of the question column of ``shared/QUESTIONNAIRE.md`` (next to the repository), so that the
tests can check the notebooks cover every question even where that file is not around. When it is,
``tests/test_lessons.py`` also checks that this copy still matches it.
"""

from __future__ import annotations

import re
from pathlib import Path

__all__ = ["QUESTIONS", "parse_questionnaire"]

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
