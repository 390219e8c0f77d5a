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
    # One change, for a reason: views=3 adds one randomly augmented view of each training photo to the photo
    # and its mirror, so the head sees a little more variety. Predicted: about the same as Recipe(), 6 of 74
    # wrong on average, since one more view is a small change and one photo is 1.4 points on 74.
    # Measured on the sample (photos wrong of 74 with seeds 42 / 43 / 0; 2-core CPU): Recipe() 6 / 6 / 6,
    # views=3 6 / 6 / 8 (seed 42 on one thread: 6), views=4 7 / 7 / 6, efficientnet_lite2 7 / 7 / 6,
    # freeze_epochs=48 7 / 6 / 6; with seeds 42 / 0: lite2 with views=4 6 / 10, find_lr=True 9 / 7,
    # efficientnet_lite1 10 / 8. None beats Recipe() on the sample beyond the noise: 74 photos cannot tell
    # these recipes apart; the official split (a GPU and the full download) can.
    from engine.recipe import Recipe

    return Recipe(views=3), 6


def _as_it_is(data):
    # A plausible mistake: the recipe as it is (the challenge asks for a change of your own).
    from engine.recipe import Recipe

    return Recipe(), 6


SOLUTIONS = {"08.1": unfrozen_rates, "08.2": pixel_ratio, "08.3": capstone}
WRONG = {"08.1": lambda: (2e-5, 1.01e-3, 2e-3),  # evenly spaced
         "08.2": lambda: 288 / 224,  # the ratio of the sides
         "08.3": _as_it_is}
