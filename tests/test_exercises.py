"""The notebooks' exercises: each notebook has 2-3, every one is registered with a check and a
solution, the self-check proves both directions, and lessons/README.md indexes them."""

from __future__ import annotations

import re

import nbformat
import pytest

from lessons import build
from lessons.exercises import SELF_CHECK, all_exercises, check, get_exercise, is_right, said

CALL = re.compile(r"""check\(\s*["'](\d\d[a-z]?\.\d+)["']\s*,\s*answer\b""")
TOPICS = [p for p in build.notebook_paths() if not p.name.startswith("00")]


def _keys_in(path) -> list[str]:
    nb = nbformat.read(path, as_version=4)
    return [k for c in nb.cells if c.cell_type == "code" for k in CALL.findall(c.source)]


@pytest.mark.parametrize("path", TOPICS, ids=lambda p: p.stem)
def test_each_notebook_ends_with_two_or_three_exercises_left_to_the_student(path):
    nb = nbformat.read(path, as_version=4)
    keys = _keys_in(path)
    number = path.name.split("_")[0]  # "03", or "03b" for the second part of lesson 03
    assert 2 <= len(keys) <= 3 and keys == [f"{number}.{i}" for i in range(1, len(keys) + 1)], keys
    answers = [c.source for c in nb.cells if c.cell_type == "code" and re.match(r"\s*answer\s*=", c.source)]
    assert len(answers) == len(keys) and all(re.match(r"\s*answer\s*=\s*\.\.\.", a) for a in answers)
    headings = [c.source for c in nb.cells if c.cell_type == "markdown" and c.source.lstrip().startswith("## ")]
    assert headings[-1].lstrip().startswith("## Exercises"), "the exercises are the notebook's last section"
    for key in keys:
        assert get_exercise(key).title


def test_every_registered_exercise_is_in_its_notebook_and_the_index():
    in_notebooks = {k for p in TOPICS for k in _keys_in(p)}
    registered = [e.key for e in all_exercises()]
    assert set(registered) == in_notebooks and len(registered) == len(set(registered))
    index = (build.LESSONS_DIR / "README.md").read_text(encoding="utf-8")
    for e in all_exercises():
        assert f"| {e.key} |" in index and e.title in index, e.key


def test_a_check_grades_without_revealing_and_refuses_odd_answers(capsys, monkeypatch):
    monkeypatch.delenv(SELF_CHECK, raising=False)
    assert check("01.1", 3 - 2 * 2 ** 0.5) is None and is_right("01.1", 0.172)
    assert capsys.readouterr().out.startswith("Right!")
    for wrong in (0.5, 0.05, "a lot", float("nan"), -1):
        assert not is_right("01.1", wrong)
        check("01.1", wrong)
        said = capsys.readouterr().out
        assert said.startswith("Not yet:") and "0.17" not in said and "Traceback" not in said
    check("01.1")
    assert "replace the ..." in capsys.readouterr().out
    with pytest.raises(KeyError, match="no exercise"):
        check("99.1", 1)


def test_the_self_check_fails_when_a_check_cannot_say_no(monkeypatch):
    import lessons.solutions.nb01 as solutions

    monkeypatch.setenv(SELF_CHECK, "1")
    check("01.1")  # the solution passes and the wrong answer fails: no error
    monkeypatch.setitem(solutions.WRONG, "01.1", lambda: 3 - 2 * 2 ** 0.5)  # a "wrong" answer that is right
    with pytest.raises(AssertionError, match="the check cannot fail"):
        check("01.1")
    monkeypatch.setitem(solutions.WRONG, "01.1", lambda: 0.5)
    monkeypatch.setitem(solutions.SOLUTIONS, "01.1", lambda: 0.3)  # a solution that is wrong
    with pytest.raises(AssertionError, match="does not pass"):
        check("01.1")


def test_the_self_check_never_prints_its_wrong_answer(capsys, monkeypatch):
    # What the self-check prints ends up in the HTML pages of `python -m lessons build`: it must not show
    # the deliberately wrong answer (a page would hand every reader a plausible mistake per exercise).
    import inspect
    from importlib import import_module

    monkeypatch.setenv(SELF_CHECK, "1")
    checked = 0
    for e in all_exercises():
        wrong = import_module(f"lessons.solutions.nb{e.key.split('.')[0]}").WRONG[e.key]
        if inspect.signature(wrong).parameters:  # needs a notebook's objects (dls=...): the build covers it
            continue
        check(e.key)
        said = capsys.readouterr().out
        assert said.startswith(f"Exercise {e.key} (self-check): the solution passes") and said.count("\n") == 1
        assert repr(wrong()) not in said
        checked += 1
    assert checked >= 10


def test_a_built_page_shows_the_self_check_without_its_wrong_answer(tmp_path, monkeypatch):
    # The page as `python -m lessons build` renders it: a notebook with exercise 03.2 left to the student,
    # run by a kernel that imports this checkout's lessons (not an installed copy).
    from pathlib import Path

    from lessons.solutions.nb03 import WRONG

    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).resolve().parents[1]))

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("answer = ..."), nbformat.v4.new_code_cell(
        "from lessons.exercises import check\ncheck('03.2', answer)"), nbformat.v4.new_code_cell(
        "from lessons.exercises import said\nprint(said({'a': ..., 'b': ...}, {'a': True, 'b': False}))")])
    path = tmp_path / "03_x.ipynb"
    nbformat.write(nb, path)
    page = build.render_html(build.execute(path, timeout=120), tmp_path / "03_x.html").read_text(encoding="utf-8")
    assert "Exercise 03.2 (self-check): the solution passes" in page
    assert repr(WRONG["03.2"]()) not in page and f"{WRONG['03.2']():.3f}" not in page
    # An experiment's prediction left as ... reads as a reminder on the page, not as "Ellipsis":
    assert "you have not written a prediction yet" in page and "Ellipsis" not in page


def test_an_experiment_shows_the_prediction_or_asks_for_it():
    assert said(...) == said({"x": ..., "y": True}) != said(None)
    assert said(...).startswith("you have not written a prediction yet") and "Ellipsis" not in said(..., {"x": 1})
    assert said("lower, on 3 of 4") == "you predicted 'lower, on 3 of 4'"
    assert said({"x": True}, {"x": False}) == "you predicted {'x': True}; what happened: {'x': False}"


def test_the_capstone_wants_a_change_of_recipe_and_a_prediction_before_it_trains(monkeypatch):
    # Every answer below is refused before any training: the hints come from the answer alone.
    import lessons.exercises.nb08 as nb08
    from engine.recipe import LR_AFTER, Recipe

    monkeypatch.setattr(nb08, "run_on_sample", lambda data, recipe: pytest.fail("trained a refused answer"))
    same = [(Recipe(seed=0), 6), (Recipe(seed=1, workers=2), 6), (Recipe(seed=7, valid_pct=0.3), 6),
            (Recipe(base_lr=LR_AFTER["lda"]), 6), (Recipe(head_init="lda", base_lr=LR_AFTER["lda"], seed=3), 6)]
    hints = {answer: get_exercise("08.3").grade(answer, data="unused") for answer in [
        Recipe(views=4), (Recipe(views=4), "five"), (Recipe(views=4), 75), (Recipe(views=4), True),
        (Recipe(), 6), ("Recipe(views=4)", 6), *same]}
    assert all(hints.values()), hints
    assert "prediction" in hints[Recipe(views=4)] and "0 to 74" in hints[(Recipe(views=4), 75)]
    assert all("trains just like Recipe()" in hints[answer] for answer in same)
    assert "as it is" in hints[(Recipe(), 6)]
    # What does change the training is not refused, and neither is a prediction of 6.5 photos on average:
    assert nb08.refusal((Recipe(base_lr=1e-3), 6.5)) is None and nb08.refusal((Recipe(head_init="random"), 8)) is None
    assert "did not train" in nb08.prediction_against_result((Recipe(seed=0), 6), "unused")
    assert nb08.accepted_recipe((Recipe(seed=0), 6)) is None and nb08.accepted_recipe(...) is None


def test_the_capstone_grades_the_mean_of_two_seeds_and_shows_the_prediction_beside_it(monkeypatch):
    import lessons.exercises.nb08 as nb08
    from engine.learning.full_scale import format_table
    from engine.recipe import Recipe

    wrong_by_seed = {42: 5, 43: 8, 0: 8, 1: 9}  # a recipe's photos wrong, by its seed
    trained = []

    def fake_run(data, recipe):
        trained.append(recipe.seed)
        return {"valid_error": wrong_by_seed[recipe.seed] / 74, "n_valid": 74, "n_train": 296,
                "train_s": 61.0 - recipe.seed % 2, "valid_name": "test", "n_reused": 0}

    monkeypatch.setattr(nb08, "run_on_sample", fake_run)
    assert get_exercise("08.3").grade((Recipe(views=4), 7), data="data") is None  # (5 + 8) / 2 = 6.5 <= 7
    assert trained == [42, 43]
    assert nb08.prediction_against_result((Recipe(views=4), 7), "data") == (
        "you predicted 7 of 74 wrong; your recipe got 5 and 8 wrong with seeds 42 and 43 (mean 6.5, 8.8%), the "
        "longer run in 61 s: off by 0.5")
    assert "exactly right" in nb08.prediction_against_result((Recipe(views=4), 6.5), "data")
    assert nb08.prediction_against_result(..., "data").startswith("nothing to show yet")
    assert "8.5 of 74 wrong on average" in get_exercise("08.3").grade((Recipe(views=4, seed=0), 7), data="data")
    table = format_table([nb08.as_stage_result(Recipe(views=4), fake_run("data", Recipe(views=4)))])
    assert re.search(r"your recipe\s+efficientnet_lite0\s+288\s+32\+0\s+1\.0\s+6\.8%", table), table
    assert "errors on the 74 test photos" in table
    reused = {**fake_run("data", Recipe(views=4)), "train_s": 3.0, "n_reused": 740}  # its time is not the whole run's
    assert "your recipe (features of an earlier run)" in format_table([nb08.as_stage_result(Recipe(views=4), reused)])
    monkeypatch.setattr(nb08, "run_on_sample", lambda data, recipe: {**fake_run(data, recipe), "n_reused": 740})
    assert "in 61 s (the photo and mirror features kept from an earlier run" in \
        nb08.prediction_against_result((Recipe(views=4), 7), "data")


def test_exercise_05_3_grades_the_prediction_against_what_the_run_measured():
    # 05.3: one rate for every group instead of slice(1e-5, 1e-3). The worked solution reasons from the rates;
    # the check compares it with how far each group moved in the run (lessons.helpers.moved). A toy model with
    # three parameter groups, on random batches, stands in for the notebook's efficientnet.
    import math
    from types import SimpleNamespace

    import torch
    from torch import nn

    from engine.learning.learner import Learner
    from engine.models import Classifier
    from lessons.helpers import moved
    from lessons.solutions.nb05 import SOLUTIONS, WRONG

    torch.manual_seed(0)
    body = nn.Sequential(nn.Sequential(nn.Linear(4, 8), nn.ReLU()), nn.Sequential(nn.Linear(8, 8), nn.ReLU()))
    model = Classifier(body, nn.Sequential(nn.Linear(8, 3)), "toy", 3, ((0.0,), (1.0,)))
    learn = Learner(SimpleNamespace(device=torch.device("cpu")), model, progress=False)
    batches = [(torch.randn(8, 4), torch.randint(0, 3, (8,))) for _ in range(2)]
    before = [p.detach().clone() for p in model.parameters()]
    model.eval()
    model.head.train()  # a mix of modes, each to be put back
    rng = torch.random.get_rng_state()
    run = {"sliced": moved(learn, slice(1e-5, 1e-3), batches), "one_rate": moved(learn, 1e-3, batches)}
    assert all(torch.equal(p, p0) for p, p0 in zip(model.parameters(), before))  # a trial: the weights are put back
    # ... and so are the modes and torch's random stream (it goes on as if moved had not run):
    assert [m.training for m in model.modules()] == [m in set(model.head.modules()) for m in model.modules()]
    assert torch.equal(torch.random.get_rng_state(), rng)
    ratios = [o / s for o, s in zip(run["one_rate"], run["sliced"])]
    assert all(math.isclose(r, t, rel_tol=0.1) for r, t in zip(ratios, [100, 10, 1]))  # each step scales with the rate
    assert is_right("05.3", SOLUTIONS["05.3"](**run), **run) and not is_right("05.3", WRONG["05.3"](**run), **run)
    # Graded against the run, not a fixed answer: had every group moved alike, [1, 1, 1] would be right.
    alike = {"sliced": run["sliced"], "one_rate": run["sliced"]}
    assert is_right("05.3", [1, 1, 1], **alike) and not is_right("05.3", SOLUTIONS["05.3"](**alike), **alike)


def test_exercise_06_3_counts_a_change_of_one_photo_as_the_same_error_rate():
    # The notebook says "same" means within 0.005 for the loss and within one photo for the error rate.
    from types import SimpleNamespace

    from lessons.solutions.nb06 import SOLUTIONS, WRONG

    def run(valid_loss, wrong):  # what the check reads of a learner: its last epoch and the validation set
        row = {"valid_loss": valid_loss, "error_rate": wrong / 74}
        return SimpleNamespace(recorder=SimpleNamespace(epochs=[row]), dls=SimpleNamespace(cache=SimpleNamespace(
            valid_y=[0] * 74)))

    for wrong, want in ((9, "same"), (11, "same"), (10, "same"), (8, "lower"), (12, "higher")):
        runs = {"ten": run(0.500, 10), "twenty": run(0.560, wrong)}
        assert SOLUTIONS["06.3"](**runs) == ("higher", want)
        assert is_right("06.3", ("higher", want), **runs) and not is_right("06.3", WRONG["06.3"](**runs), **runs)
    runs = {"ten": run(0.500, 10), "twenty": run(0.504, 10)}
    assert is_right("06.3", ("same", "same"), **runs) and not is_right("06.3", ("lower", "same"), **runs)
