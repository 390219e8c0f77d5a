"""Solutions for 04_learning_rate_finder.ipynb."""


def minimum_rule(lrs, losses):
    # Find the row with the lowest loss (1.50, at 1e-1), then take one tenth of its rate.
    lowest_loss, lr_at_lowest = min(zip(losses, lrs))
    return lr_at_lowest / 10


def step_factor(result):
    # 100 rates from 1e-7 to 10 are 99 equal ratios: the factor f with f ** 99 = 10 / 1e-7 = 1e8.
    return (10 / 1e-7) ** (1 / 99)  # 10 ** (8 / 99) = 1.2045


SOLUTIONS = {"04.1": minimum_rule, "04.2": step_factor}
WRONG = {"04.1": lambda lrs, losses: 1e-1, "04.2": lambda result: 10 ** (8 / 100)}
