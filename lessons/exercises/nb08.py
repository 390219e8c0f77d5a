"""Checks for the exercises of 08_how_good_can_it_get.ipynb."""

from __future__ import annotations

import math

from . import as_number, exercise


@exercise("08.1", "The three peak rates of an unfrozen stage when the LR finder suggests 2e-3",
          right="slice(2e-5, 2e-3) over 3 groups: 2e-5, 2e-4, 2e-3. The earliest layers move a hundred "
                "times less than the head, each group ten times more than the one before it.")
def unfrozen_rates(answer) -> str | None:
    from engine.learning.schedules import lr_for_groups

    truth = lr_for_groups(slice(2e-3 / 100, 2e-3), 3)
    if isinstance(answer, (str, bytes)) or not hasattr(answer, "__len__") or len(answer) != 3:
        return "give three rates, earliest group first: (first, middle, head)"
    rates = [as_number(a) for a in answer]
    if all(math.isclose(r, t, rel_tol=0.02) for r, t in zip(rates, truth)):
        return None
    if math.isclose(rates[1], (rates[0] + rates[2]) / 2, rel_tol=0.05):
        return "the rates in between are spaced by equal ratios, not equal differences"
    if not math.isclose(rates[-1], 2e-3, rel_tol=0.02):
        return "the head (the last group) gets the rate the finder suggested"
    return "the first group gets the suggestion divided by 100 (see run_full_scale: slice(top / 100, top))"


@exercise("08.2", "How many times the pixels of a 224 px image one image of the larger stage (288 px) has",
          right="(288 / 224)^2 = 1.65: every layer of a convolutional network does about that much more "
                "work per image, so a higher resolution costs as much as a larger body.")
def pixel_ratio(answer) -> str | None:
    from engine.learning.full_scale import PRESETS

    first, *_, last = PRESETS["full"].stages
    truth = (last.size / first.size) ** 2
    value = as_number(answer)
    if math.isclose(value, truth, rel_tol=0.02):
        return None
    if math.isclose(value, last.size / first.size, rel_tol=0.02):
        return "that is the ratio of the sides; an image has both a width and a height"
    return "compare the number of pixels of a square image at each size"
