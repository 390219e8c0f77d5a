"""Solutions for 05_fine_tune_and_discriminative_lrs.ipynb."""


def four_groups(dls):
    # From 1e-6 to 1e-3 is a factor of 1000 in three equal steps: 1000 ** (1/3) = 10 per group.
    lo, hi, n = 1e-6, 1e-3, 4
    factor = (hi / lo) ** (1 / (n - 1))
    return [lo * factor ** i for i in range(n)]  # 1e-6, 1e-5, 1e-4, 1e-3


def fine_tune_peaks(learn):
    # fine_tune: base_lr /= 2 -> 5e-3; then fit_one_cycle(epochs, slice(base_lr / 100, base_lr)).
    base_lr = 1e-2 / 2
    lo, hi = base_lr / 100, base_lr
    return [lo, (lo * hi) ** 0.5, hi]  # 3 groups: the middle one halfway on the log scale


def one_rate_for_all(sliced, one_rate):
    # Both runs start from the same weights, gradients and optimizer state, so a step is the same step
    # times the rate (true of plain SGD too): each group moves in proportion to its rate, nearly exactly
    # over 2 small steps. The slice gave 1e-5, 1e-4, 1e-3 (Q16); one rate gives 1e-3 to each.
    with_slice = [1e-5, 1e-4, 1e-3]
    return [1e-3 / lr for lr in with_slice]  # 100, 10 and 1 times as far


SOLUTIONS = {"05.1": four_groups, "05.2": fine_tune_peaks, "05.3": one_rate_for_all}
WRONG = {"05.1": lambda dls: [1e-6, 1e-6 + (1e-3 - 1e-6) / 3, 1e-6 + 2 * (1e-3 - 1e-6) / 3, 1e-3],  # evenly spaced
         "05.2": lambda learn: [1e-4, 1e-3, 1e-2],  # base_lr not halved
         "05.3": lambda sliced, one_rate: [100, 2, 1]}  # the slice's middle rate taken as evenly spaced (5e-4)
