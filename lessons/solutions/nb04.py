"""Solutions for 04_learning_rate_finder.ipynb: each runs the experiment, as the student does after predicting."""

from lessons.exercises.nb04 import finder_after_training, slow_valid_loss


def finder_again(head, before, lr):
    # Train a copy of the head 3 epochs at lr (the first sweep's minimum / 10), run the finder on it, compare.
    later = finder_after_training(head, before, lr)
    return "lower" if later < lr * 0.95 else "higher" if later > lr * 1.05 else "the same"


def too_low_longer(head, before, target):
    # Train a copy of the head 30 epochs at 1e-5 and compare its last validation loss with the target.
    return slow_valid_loss(head, before) <= target


def _higher_or_lower(head, before, lr):
    # A plausible mistake: the opposite direction ("a trained model can take bigger steps", or the reverse).
    return "higher" if finder_again(head, before, lr) != "higher" else "lower"


SOLUTIONS = {"04.1": finder_again, "04.2": too_low_longer}
WRONG = {"04.1": _higher_or_lower, "04.2": lambda head, before, target: not too_low_longer(head, before, target)}
