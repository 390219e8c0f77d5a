"""Solutions for 01_presizing_and_data_formats.ipynb."""

import math


def empty_at_45():
    # The rotated square and the original overlap in a regular octagon. A unit square cut by the
    # rotated one loses four corner triangles with legs (1 - 1/sqrt(2)) ... their total area is
    # (sqrt(2) - 1)^2 = 3 - 2 sqrt(2).
    return 3 - 2 * math.sqrt(2)  # 0.172


def pad_share():
    # 500 wide -> 460, so 375 tall -> 345: the photo covers 345/460 = 75% of the height.
    return 1 - 375 / 500


def first_word_labels(files):
    # The labels the right pattern gives are the 37 breeds; the short pattern keeps only the part of
    # each name before its first underscore: american_bulldog and american_pit_bull_terrier both
    # become "american", english_cocker_spaniel and english_setter both "english".
    from engine.data.items import PETS_PATTERN, RegexLabeller

    breeds = {RegexLabeller(PETS_PATTERN)(f) for f in files}
    return len({breed.split("_")[0] for breed in breeds})  # 35


SOLUTIONS = {"01.1": empty_at_45, "01.2": pad_share, "01.3": first_word_labels}
WRONG = {"01.1": lambda: 0.5, "01.2": lambda: 0.0, "01.3": lambda files: 37}
