"""Solutions for 03_softmax_cross_entropy_log_domain.ipynb."""

import math


def loss_at_one_half():
    # exp(-20) next to exp(1.5) is a share of e^-21.5, about 5e-10: the two equal activations split
    # the probability in half, so p(class 0) = 0.5 and the loss is -log(0.5) = log 2.
    p = math.exp(1.5) / (2 * math.exp(1.5) + math.exp(-20.0))
    return -math.log(p)  # 0.693


def shift_invariance():
    # exp(x + 10) = e^10 * exp(x) for every class: e^10 cancels in exp(x_i) / sum(exp(x_j)), so the
    # answer is the probability of the last class before the shift.
    x = [1.0, 2.0, 3.0, 3.5]
    return math.exp(x[3]) / sum(math.exp(v) for v in x)  # 0.523


def ratio_at_temperature():
    # p1 / p0 = exp(gap); dividing by T = 0.5 makes the gap (1 - 0) / 0.5 = 2.
    return math.exp((1.0 - 0.0) / 0.5)  # 7.39


SOLUTIONS = {"03.1": loss_at_one_half, "03.2": shift_invariance, "03.3": ratio_at_temperature}
WRONG = {
    "03.1": lambda: 0.5,                               # the probability, not the loss
    "03.2": lambda: 13.5 / (11.0 + 12.0 + 13.0 + 13.5),  # normalizing the activations, not their exps
    "03.3": lambda: math.exp(1.0 * 0.5),               # multiplying by T instead of dividing
}
