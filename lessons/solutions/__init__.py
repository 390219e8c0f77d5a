"""Solutions to the notebooks' exercises, one module per notebook (``nb01.py`` for ``01_...``).

Try the exercise first: the check cell gives hints. Each module has ``SOLUTIONS`` (exercise key ->
a function that works the answer out, taking what the check cell passes) and ``WRONG`` (a plausible
wrong answer, which the self-check makes sure the check refuses).
"""
