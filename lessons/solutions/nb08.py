"""Solutions for 08_how_good_can_it_get.ipynb."""


def unfrozen_rates():
    # slice(top / 100, top) over 3 groups: the ends are the slice's ends, the middle their geometric mean.
    top = 2e-3
    low = top / 100
    return low, (low * top) ** 0.5, top


def pixel_ratio():
    # A square image of side s has s * s pixels.
    return (288 / 224) ** 2


def capstone(data):
    # One change, for a reason: another seed (the order of the batches, the head's random parts). Is the
    # recipe's error a lucky draw? Predicted: about the same, 6 of 74 wrong. (Other changes tried on the
    # sample: views=4 or efficientnet_lite2 gave 7 of 74, 9.5%, just under; a random head 8, 10.8%.)
    from engine.recipe import Recipe

    return Recipe(seed=0)


def _as_it_is(data):
    # A plausible mistake: the recipe as it is (the challenge asks for a change of your own).
    from engine.recipe import Recipe

    return Recipe()


SOLUTIONS = {"08.1": unfrozen_rates, "08.2": pixel_ratio, "08.3": capstone}
WRONG = {"08.1": lambda: (2e-5, 1.01e-3, 2e-3),  # evenly spaced
         "08.2": lambda: 288 / 224,  # the ratio of the sides
         "08.3": _as_it_is}
