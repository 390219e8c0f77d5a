"""Checks for the exercises of 01_presizing_and_data_formats.ipynb."""

from __future__ import annotations

from . import as_number as _number
from . import exercise


@exercise("01.1", "The empty share of a square rotated by 45 degrees, predicted by geometry",
          right="The rotated square overlaps the original in a regular octagon; everything outside it "
                "({answer:.3f} of the picture) has no source pixel behind it.")
def empty_at_45(answer) -> str | None:
    import torch

    from engine.data.augment import rotation_matrix, warp_images

    coverage = torch.ones(1, 1, 224, 224)
    rotated = warp_images(coverage, rotation_matrix(torch.tensor([45.0])), (224, 224), padding_mode="zeros")
    measured = float((rotated < 0.5).float().mean())
    value = _number(answer)
    if not 0 <= value <= 1:
        return "give a share between 0 and 1 (0.25 means a quarter of the pixels)"
    if abs(value - measured) <= 0.01:
        return None
    if value > measured:
        return ("too many: the four corner triangles that the rotation uncovers are smaller than that. "
                "Draw the two squares; the overlap is an octagon")
    return "too few: at 45 degrees the corners of the rotated square stick out the furthest"


@exercise("01.2", "The black share when a 500x375 photo is presized with method 'pad'",
          right="Padding keeps the whole photo: its long side fills the square and {answer:.0%} of the "
                "square is black padding, which the model sees in every epoch.")
def pad_share(answer) -> str | None:
    import numpy as np

    from engine.data.transforms import Presize

    photo = np.full((375, 500, 3), 200, np.uint8)  # height 375, width 500, no black pixels in it
    padded = Presize(460, "pad")(photo)
    measured = float((padded.max(axis=2) == 0).mean())
    value = _number(answer)
    if not 0 <= value <= 1:
        return "give a share between 0 and 1"
    if abs(value - measured) <= 0.01:
        return None
    return ("'pad' scales the photo so that its long side fits the 460-pixel square; what fraction of "
            "the square's height does the short side then cover?")


@exercise("01.3", "How many labels a regex that stops at the first underscore finds in the 37 breeds",
          right="{answer} labels, not 37: breeds whose names start with the same word (american_..., "
                "english_...) fall together into one label, and nothing fails. After labelling, count the "
                "labels and compare them with the list of classes you expect.")
def first_word_labels(answer, files) -> str | None:
    from engine.data.items import RegexLabeller

    measured = len({RegexLabeller(r"^([^_]+)_")(f) for f in files})
    value = _number(answer)
    if value != int(value):
        return "a number of labels is a whole number"
    if value == measured:
        return None
    if value >= 37:
        return ("a pattern that keeps less of the name cannot split a breed in two, but it can merge "
                "breeds: write out the 37 names (dls_table.vocab) and look at what comes before the "
                "first underscore")
    if value < measured:
        return "too few: only breeds whose names begin with the same word fall together"
    return "close, but not every breed with an underscore in its name merges with another one: count again"
