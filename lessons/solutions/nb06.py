"""Solutions for 06_one_cycle_and_early_stopping.ipynb."""

import math


def peak_at():
    # The warm-up is the first 40% of the run: 0.4 * 8 = 3.2 epochs done at the peak, so it falls
    # in the 4th epoch (epochs 1-3 are over after 3 epochs).
    return math.floor(0.4 * 8) + 1


def halfway_lr(lr_max):
    # Annealing runs from 25% to 100% of the run: 50% is a third of the way into it.
    pct = (0.5 - 0.25) / (1 - 0.25)
    end = lr_max / 1e5
    return end + (lr_max - end) / 2 * (1 + math.cos(math.pi * pct))  # cos(pi/3) = 1/2: 3/4 of the peak


def twenty_epochs(ten, twenty):
    # Read off the two runs: a change of at most 0.005 in the loss, or of at most one photo in the error
    # rate (1 / n_valid each; 1.5 / n_valid leaves room for rounding), counts as "same".
    def direction(after, before, tie):
        return "same" if abs(after - before) <= tie else ("higher" if after > before else "lower")

    a, b, n_valid = ten.recorder.epochs[-1], twenty.recorder.epochs[-1], len(ten.dls.cache.valid_y)
    return (direction(b["valid_loss"], a["valid_loss"], 0.005),
            direction(b["error_rate"], a["error_rate"], 1.5 / n_valid))


SOLUTIONS = {"06.1": peak_at, "06.2": halfway_lr, "06.3": twenty_epochs}
WRONG = {"06.1": lambda: 3,  # 3.2 rounded down, counting from 0
         "06.2": lambda lr_max: lr_max * 2 / 3,  # a straight line down from the peak
         "06.3": lambda ten, twenty: tuple("lower" if w == "higher" else "higher"  # the opposite of each
                                           for w in twenty_epochs(ten, twenty))}
