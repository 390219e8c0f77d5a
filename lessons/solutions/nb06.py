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


def early_stop_epochs(valid_losses):
    # patience=1: 1.90, 1.52, 1.31 improve; 1.34 does not -> stop after 4 epochs.
    # patience=2: 1.34 (1 bad), 1.27 a new best (count back to 0), 1.29 (1), 1.30 (2) -> stop after 7.
    def run(patience):
        best, bad = math.inf, 0
        for epoch, loss in enumerate(valid_losses, 1):
            best, bad = (loss, 0) if loss < best else (best, bad + 1)
            if bad >= patience:
                return epoch
        return len(valid_losses)

    return run(1), run(2)


SOLUTIONS = {"06.1": peak_at, "06.2": halfway_lr, "06.3": early_stop_epochs}
WRONG = {"06.1": lambda: 3,  # 3.2 rounded down, counting from 0
         "06.2": lambda lr_max: lr_max * 2 / 3,  # a straight line down from the peak
         "06.3": lambda valid_losses: (3, 6)}  # counting the epochs before the bad one
