"""Solutions for 08_how_good_can_it_get.ipynb."""


def unfrozen_rates():
    # slice(top / 100, top) over 3 groups: the ends are the slice's ends, the middle their geometric mean.
    top = 2e-3
    low = top / 100
    return low, (low * top) ** 0.5, top


def pixel_ratio():
    # A square image of side s has s * s pixels.
    return (288 / 224) ** 2


SOLUTIONS = {"08.1": unfrozen_rates, "08.2": pixel_ratio}
WRONG = {"08.1": lambda: (2e-5, 1.01e-3, 2e-3),  # evenly spaced
         "08.2": lambda: 288 / 224}  # the ratio of the sides
