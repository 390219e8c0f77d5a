"""Solutions for 03b_sigmoid_and_torch_where.ipynb."""

import math


def sigmoid_sum():
    # A sigmoid output is 1 / (1 + e^-x), each on its own: 0.881 + 0.881 + 0.047.
    return sum(1 / (1 + math.exp(-x)) for x in (2.0, 2.0, -3.0))  # 1.81


def where_charge():
    # torch.where(target == 1, 1 - p, p): the target 2 is not 1, so the else branch, p = P(class 1) = 0.1.
    return 0.1


SOLUTIONS = {"03b.1": sigmoid_sum, "03b.2": where_charge}
WRONG = {
    "03b.1": lambda: 1.0,  # softmax's guarantee, not sigmoid's
    "03b.2": lambda: 0.8,  # what the item should cost, 1 - P(class 2)
}
