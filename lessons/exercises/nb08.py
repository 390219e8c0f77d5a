"""Checks for the exercises of 08_how_good_can_it_get.ipynb."""

from __future__ import annotations

import math

from . import as_number, exercise


@exercise("08.1", "The three peak rates of an unfrozen stage when the LR finder suggests 2e-3",
          right="slice(2e-5, 2e-3) over 3 groups: 2e-5, 2e-4, 2e-3. The earliest layers move a hundred "
                "times less than the head, each group ten times more than the one before it.")
def unfrozen_rates(answer) -> str | None:
    from engine.learning.schedules import lr_for_groups

    truth = lr_for_groups(slice(2e-3 / 100, 2e-3), 3)
    if isinstance(answer, (str, bytes)) or not hasattr(answer, "__len__") or len(answer) != 3:
        return "give three rates, earliest group first: (first, middle, head)"
    rates = [as_number(a) for a in answer]
    if all(math.isclose(r, t, rel_tol=0.02) for r, t in zip(rates, truth)):
        return None
    if math.isclose(rates[1], (rates[0] + rates[2]) / 2, rel_tol=0.05):
        return "the rates in between are spaced by equal ratios, not equal differences"
    if not math.isclose(rates[-1], 2e-3, rel_tol=0.02):
        return "the head (the last group) gets the rate the finder suggested"
    return "the first group gets the suggestion divided by 100 (see run_full_scale: slice(top / 100, top))"


@exercise("08.2", "How many times the pixels of a 224 px image one image of the larger stage (288 px) has",
          right="(288 / 224)^2 = 1.65: every layer of a convolutional network does about that much more "
                "work per image, so a higher resolution costs as much as a larger body.")
def pixel_ratio(answer) -> str | None:
    from engine.learning.full_scale import PRESETS

    first, *_, last = PRESETS["full"].stages
    truth = (last.size / first.size) ** 2
    value = as_number(answer)
    if math.isclose(value, truth, rel_tol=0.02):
        return None
    if math.isclose(value, last.size / first.size, rel_tol=0.02):
        return "that is the ratio of the sides; an image has both a width and a height"
    return "compare the number of pixels of a square image at each size"


N_VALID = 74  # the sample's validation photos
MAX_WRONG = 7  # at most 7 of the 74 wrong, on average over the seeds: the demo's model gets exactly 7 (9.46%)
SEEDS = 2  # each recipe is trained with its own seed and the next one, and graded on the mean
_RUNS: dict = {}  # each recipe's report, per data folder: the notebook, the check and the self-check share it


def run_on_sample(data, recipe) -> dict:
    """``run_recipe(data, recipe)``'s report, run once per recipe: it trains on the training photos only and
    scores on the validation photos of the data's own split, which no field of a ``Recipe`` can change."""
    from engine.recipe import run_recipe

    key = (str(data), recipe)
    if key not in _RUNS:
        _RUNS[key] = run_recipe(data, recipe, progress=False)
    return _RUNS[key]


def runs_of(data, recipe) -> list[dict]:
    """The reports of ``recipe`` trained with ``SEEDS`` seeds in a row from its own (42 and 43 by default):
    one draw can be lucky by a photo or two, the mean of two much less."""
    import dataclasses

    return [run_on_sample(data, dataclasses.replace(recipe, seed=recipe.seed + k)) for k in range(SEEDS)]


def mean_wrong(reports: list[dict]) -> float:
    """The mean number of validation photos the runs got wrong."""
    return sum(round(r["valid_error"] * r["n_valid"]) for r in reports) / len(reports)


def recipe_and_prediction(answer):
    """``(recipe, predicted)`` from the capstone's answer ``(Recipe(...), photos you expect wrong)``, or a hint."""
    from engine.recipe import Recipe

    if isinstance(answer, Recipe):
        return None, None, ("add your prediction before you run it: answer = (Recipe(...), how many of the "
                            f"{N_VALID} photos you expect it to get wrong)")
    if not (isinstance(answer, tuple) and len(answer) == 2 and isinstance(answer[0], Recipe)):
        return None, None, (f"give a pair: (Recipe(...), how many of the {N_VALID} photos you expect it to get "
                            "wrong); Recipe?? lists its fields")
    recipe, predicted = answer
    if isinstance(predicted, bool) or not isinstance(predicted, (int, float)) or not 0 <= predicted <= N_VALID:
        return None, None, f"your prediction is a number of photos, from 0 to {N_VALID}"
    return recipe, predicted, None


def same_training(recipe) -> bool:
    """Whether ``recipe`` trains on the sample as ``Recipe()`` does: it differs at most in the seed, the loader
    processes, ``valid_pct`` (the sample brings its own split) or a ``base_lr`` equal to the one Recipe() uses."""
    import dataclasses

    from engine.recipe import Recipe

    default = Recipe()
    base_lr = None if recipe.chosen_base_lr() == dataclasses.replace(recipe, base_lr=None).chosen_base_lr() \
        else recipe.base_lr
    return dataclasses.replace(recipe, seed=default.seed, workers=default.workers, valid_pct=default.valid_pct,
                               base_lr=base_lr) == default


def refusal(answer) -> str | None:
    """Why the capstone refuses ``answer`` before training it, or None: a hint from the answer alone."""
    from engine.recipe import Recipe

    recipe, _, hint = recipe_and_prediction(answer)
    if hint:
        return hint
    if recipe == Recipe():
        return ("that is the recipe as it is, already run above: change at least one field, predict what it does "
                "to the error, then let the check run it")
    if same_training(recipe):
        return ("that trains just like Recipe(): a new seed, other loader processes, valid_pct (the sample brings "
                "its own split) or Recipe()'s own base_lr change nothing but the draw, and keeping the luckiest "
                "draw is peeking at the validation photos. Change how it trains (Recipe?? lists the fields)")
    return None


@exercise("08.3", "The capstone: a recipe of your own (not Recipe() as it is) with at most 7 of 74 wrong on the "
                  "sample (9.5%, the demo's model's score), on average over two seeds, with your prediction",
          right="Your recipe trains on the 296 training photos and, judged on the 74 validation photos it never saw, "
                "gets at most 7 of them wrong on average over two seeds. The next cell puts your prediction beside "
                "what happened, and with a GPU and the full download it also runs your recipe on the official split.")
def capstone(answer, data) -> str | None:
    hint = refusal(answer)
    if hint:
        return hint
    reports = runs_of(data, answer[0])
    if any(r["n_valid"] != N_VALID or r["n_train"] != 296 for r in reports):
        return "the challenge is judged on the 370-photo sample: pass data=PETS to the check"
    wrong = mean_wrong(reports)
    if wrong <= MAX_WRONG:
        return None
    return (f"{wrong:g} of {N_VALID} wrong on average over two seeds: more than {MAX_WRONG} yet. Change one field "
            "at a time, for a reason (Recipe?? lists them), and compare with Recipe()'s errors above")


def prediction_against_result(answer, data) -> str:
    """What the capstone's runs did beside what the student predicted, for an answer the check has run."""
    if answer is ...:
        return "nothing to show yet: write your recipe and your prediction in the answer cell, then run the check"
    hint = refusal(answer)
    if hint:
        return "nothing to show: the check did not train this answer (see its hint above)"
    (recipe, predicted), reports = answer, runs_of(data, answer[0])
    wrong = mean_wrong(reports)
    each = " and ".join(f"{round(r['valid_error'] * r['n_valid'])}" for r in reports)
    off = "exactly right" if wrong == predicted else f"off by {abs(wrong - predicted):g}"
    slowest = max(reports, key=lambda r: r["train_s"])
    kept = " (the photo and mirror features kept from an earlier run: computed once, not per run)" \
        if slowest.get("n_reused") else ""
    return (f"you predicted {predicted:g} of {N_VALID} wrong; your recipe got {each} wrong with seeds {recipe.seed} "
            f"and {recipe.seed + 1} (mean {wrong:g}, {wrong / N_VALID:.1%}), the longer run in "
            f"{slowest['train_s']:.0f} s{kept}: {off}")


def accepted_recipe(answer):
    """The answer's recipe when the check would run it, else None."""
    return None if answer is ... or refusal(answer) else answer[0]


def as_stage_result(recipe, report, name: str = "your recipe"):
    """A ``run_recipe`` report as a row of ``format_table``, beside the chapter's flow."""
    from engine.learning.full_scale import Stage, StageResult

    stage = Stage(name, recipe.arch, recipe.preprocessing.size, recipe.freeze_epochs, recipe.epochs,
                  recipe.mixed_precision)
    if report.get("n_reused"):  # its time left out the body's passes an earlier run made: not comparable
        stage = Stage(f"{name} (features of an earlier run)", recipe.arch, recipe.preprocessing.size,
                      recipe.freeze_epochs, recipe.epochs, recipe.mixed_precision)
    return StageResult(stage, report["valid_error"], report["train_s"], n_train=report["n_train"],
                       n_valid=report["n_valid"], valid_name=report.get("valid_name", "valid"))
