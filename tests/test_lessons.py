"""The lessons: every notebook runs top to bottom on the real photos (its asserts are the checks),
every question of the questionnaire has its section, and the committed notebooks carry no outputs."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from lessons import build
from lessons.questions import HEADINGS, PRACTICE, QUESTIONS, parse_practice, parse_questionnaire

ROOT = Path(__file__).resolve().parents[1]
QUESTIONNAIRE = ROOT.parent / "shared" / "QUESTIONNAIRE.md"  # beside the checkout, when it is there
NOTEBOOKS = build.notebook_paths()
HEADING = re.compile(r"^#{1,6}\s*Q(\d+)\.\s+(.+?)\s*$", re.MULTILINE)


def questions() -> dict[int, str]:
    return parse_questionnaire(QUESTIONNAIRE) if QUESTIONNAIRE.exists() else QUESTIONS


def practice() -> dict[int, str]:
    return parse_practice(QUESTIONNAIRE) if QUESTIONNAIRE.exists() else PRACTICE


def answered() -> set[int]:
    """The questions that have a ``## Qn.`` section: the table's and the practice list's (24, the
    further-research challenge, is notebook 08's graded capstone)."""
    return set(questions()) | set(practice())


def longest_shared_run(a: str, b: str) -> int:
    """How many words in a row two texts share (case, punctuation and backticks ignored)."""
    wa, wb = (re.findall(r"[a-z0-9_]+", t.lower()) for t in (a, b))
    return max((k for i in range(len(wa)) for j in range(len(wb))
                for k in range(1, min(len(wa) - i, len(wb) - j) + 1) if wa[i:i + k] == wb[j:j + k]), default=0)


def read(path: Path):
    return nbformat.read(path, as_version=4)


def question_headings(nb) -> dict[int, str]:
    """``{n: text}`` of the markdown headings ``## Qn. text`` of a notebook."""
    found = {}
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            found.update({int(n): " ".join(text.split()) for n, text in HEADING.findall(cell.source)})
    return found


def test_there_is_a_start_page_and_topic_notebooks():
    names = [p.name for p in NOTEBOOKS]
    assert names[0] == "00_start_here.ipynb" and len(names) >= 3, names


@pytest.fixture(scope="module")
def installed_lessons(wheel, student_python, tmp_path_factory):
    """A student's setup away from any clone: the wheel installed in a new environment, and
    ``python -m lessons copy`` run there into a folder of their own (no clone above it)."""
    python = student_python(install=wheel)
    dest = tmp_path_factory.mktemp("my_lessons") / "lessons"
    done = subprocess.run([str(python), "-m", "lessons", "copy", str(dest)], cwd=dest.parent, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert not any((p / "engine").is_dir() for p in (dest, *dest.parents))  # no clone above the copies
    return python, dest


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_top_to_bottom_from_the_installed_wheel(path, installed_lessons, students_home, tmp_path):
    # The copied notebook, run by `python -m lessons build --dir` of the installed package: its kernel
    # is that environment's Python, with no PETS_SAMPLE and only the full download in the cache. Any
    # error or failed assert in a cell fails the build, which then names the cell.
    python, dest = installed_lessons
    env = {k: v for k, v in os.environ.items() if k != "PETS_SAMPLE"} | {"PETBREEDS_HOME": str(students_home)}
    done = subprocess.run([str(python), "-m", "lessons", "build", path.stem, "--dir", str(dest), "--out",
                           str(tmp_path)], cwd=dest, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    page = (tmp_path / f"{path.stem}.html").read_text(encoding="utf-8")
    site = subprocess.run([str(python), "-c", "import engine, pathlib; print(pathlib.Path(engine.__file__).parent)"],
                          capture_output=True, text=True, cwd=dest).stdout.strip()
    assert f"petbreeds 0.1.0 from {Path(site).parent}" in page  # the installed package, not this checkout
    assert "Ellipsis" not in page  # an experiment left to the student asks for a prediction, never prints "..."
    for n in question_headings(read(path)):
        assert f"Q{n}." in page
    if "plt." in "".join(c.source for c in read(path).cells if c.cell_type == "code"):
        assert "data:image/png;base64" in page  # plots are embedded in the HTML


def test_every_question_has_a_section_under_its_heading():
    # Sections are found by number: the headings are our paraphrases (lessons/questions.py's HEADINGS).
    sections = {}
    for path in NOTEBOOKS:
        for n, text in question_headings(read(path)).items():
            assert n not in sections, f"Q{n} has a section in both {sections.get(n)} and {path.name}"
            sections[n] = path.name
            assert n in HEADINGS, f"{path.name}: Q{n} is not a question of the questionnaire"
            assert text == " ".join(HEADINGS[n].split()), f"{path.name}: the heading of Q{n} is not HEADINGS[{n}]"
    missing = sorted(answered() - set(sections))
    assert not missing, f"no notebook has a section for {', '.join(f'Q{n}' for n in missing)}"
    assert set(sections) == answered() == set(HEADINGS) and len(sections) == 24


def test_headings_say_each_question_in_our_own_words():
    # The book's prose is not ours to redistribute: no heading may repeat 5 words in a row of the question.
    wording = questions() | practice()
    for n, heading in HEADINGS.items():
        assert longest_shared_run(heading, wording[n]) < 5, f"HEADINGS[{n}] repeats the question's wording"
    assert longest_shared_run("Which two steps does `fine_tune` do?", "which two steps does fine_tune do") == 6


def test_readme_lists_every_question():
    readme = (build.LESSONS_DIR / "README.md").read_text(encoding="utf-8")
    notebook_names = {p.name for p in NOTEBOOKS}
    for n in sorted(answered()):
        row = next((line for line in readme.splitlines() if line.startswith(f"| {n} |")), None)
        assert row is not None, f"lessons/README.md has no table row for Q{n}"
        assert HEADINGS[n] in row, f"lessons/README.md: the row of Q{n} does not give its heading"
        assert any(name in row for name in notebook_names), f"lessons/README.md: the row of Q{n} names no notebook"


def test_copy_of_the_questions_matches_the_questionnaire():
    if not QUESTIONNAIRE.exists():
        if os.environ.get("REQUIRE_PETS_SAMPLE") == "1":  # CI has ../shared beside the checkout
            pytest.fail(f"REQUIRE_PETS_SAMPLE=1 but {QUESTIONNAIRE} is missing")
        pytest.skip("shared/QUESTIONNAIRE.md is not beside the checkout")
    assert QUESTIONS == parse_questionnaire(QUESTIONNAIRE) and len(QUESTIONS) == 19  # the table: 19 rows
    assert PRACTICE == parse_practice(QUESTIONNAIRE) and sorted(PRACTICE) == [20, 21, 22, 23, 24]  # the list below it


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_notebook_has_no_outputs(path):
    nb = read(path)
    nbformat.validate(nb)
    # every cell has its own id as committed (nbformat adds missing ones when it reads a notebook, so a
    # student's copy would differ from ours at every `python -m lessons copy`)
    raw = json.loads(path.read_text(encoding="utf-8"))["cells"]
    ids = [cell.get("id") for cell in raw]
    assert None not in ids and len(set(ids)) == len(ids), f"{path.name}: give every cell its own id"
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"{path.name}: clear the outputs"


def test_build_without_photos_says_so_without_a_traceback(tmp_path):
    env = {**os.environ, "PETS_SAMPLE": str(tmp_path / "nowhere")}
    done = subprocess.run([sys.executable, "-m", "lessons", "build", "--out", str(tmp_path / "out")], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "PETS_SAMPLE" in done.stderr and "nowhere" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "out").exists()


def test_build_without_any_data_gives_the_one_command_that_gets_it(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "PETS_SAMPLE"} | {"PETBREEDS_HOME": str(tmp_path / "empty")}
    done = subprocess.run([sys.executable, "-m", "lessons", "build", "--out", str(tmp_path / "out")], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "python -m engine.datasets sample" in done.stderr
    assert "Traceback" not in done.stderr and not (tmp_path / "out").exists()


def test_lessons_build_picks_the_sample_out_of_the_full_download(full_pets_home, tmp_path):
    # `python -m lessons build` as a student runs it (one notebook here: every notebook runs in the test above)
    home = tmp_path / "home"
    home.mkdir()
    (home / "oxford-iiit-pet").symlink_to(full_pets_home / "oxford-iiit-pet")
    env = {k: v for k, v in os.environ.items() if k != "PETS_SAMPLE"} | {"PETBREEDS_HOME": str(home)}
    done = subprocess.run([sys.executable, "-m", "lessons", "build", "00", "--out", str(tmp_path / "out")], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "picked out of it now" in done.stdout and "Picked the 370-photo pet sample" in done.stdout
    assert f"Running 1 notebook(s) on the photos in {home / 'oxford-pets-sample'}" in done.stdout
    first = (tmp_path / "out" / "00_start_here.html").read_text(encoding="utf-8")
    assert "Using the 370-photo sample in" in first  # the notebook says which photos it uses


def test_build_names_a_notebook_that_does_not_exist():
    with pytest.raises(ValueError, match="no lesson notebook starts with 99"):
        build.notebook_paths(["99"])


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_demo_links_also_say_how_to_reach_the_demo_from_a_hosted_notebook(path):
    text = "\n".join(c.source for c in read(path).cells if c.cell_type == "markdown")
    if "python -m demo" in text:
        assert "launch_in_notebook" in text and "--share --auth" in text, path.name


def test_a_cell_can_ask_for_a_longer_timeout_than_the_build_gives(tmp_path):
    # Notebook 08's training cell runs for a long time at full scale: its metadata asks for more.
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("import time; time.sleep(3)")])
    nb.cells[0].metadata["petbreeds"] = {"timeout": 30}
    path = tmp_path / "slow.ipynb"
    nbformat.write(nb, path)
    build.execute(path, timeout=1, self_check=False)  # passes: the cell's own 30 s
    del nb.cells[0].metadata["petbreeds"]
    nbformat.write(nb, path)
    with pytest.raises(Exception, match="(?i)timeout|timed out"):
        build.execute(path, timeout=1, self_check=False)
    eight = next(p for p in NOTEBOOKS if p.name.startswith("08"))
    long_cells = [c for c in read(eight).cells if c.get("metadata", {}).get("petbreeds", {}).get("timeout")]
    assert len(long_cells) == 1
    assert "run_full_scale" in long_cells[0].source


# The third edition's rules for code cells (issue 25), checked for every notebook.
LIGHT_NOTEBOOKS = NOTEBOOKS  # every notebook follows them now ("03" covers 03 and 03b)
MAX_CELL_LINES, MAX_ASSERTS_PER_CLAIM = 25, 3


def cell_rule_breaks(source: str) -> list[str]:
    """What breaks the rules in one code cell: over 25 lines; an assert with no comment naming its claim
    (a comment line above it, or one on the same line); more than 3 asserts under one comment line."""
    lines = source.splitlines()
    problems = [f"{len(lines)} lines (at most {MAX_CELL_LINES})"] if len(lines) > MAX_CELL_LINES else []
    under_comment = None  # asserts since the last comment line; None: no comment line yet
    for line in (s.strip() for s in lines):
        if line.startswith("#"):
            under_comment = 0
        elif line.startswith("assert ") and "  # " not in line:
            if under_comment is None:
                problems.append(f"an assert with no comment naming its claim: {line[:60]}")
            else:
                under_comment += 1
                if under_comment == MAX_ASSERTS_PER_CLAIM + 1:
                    problems.append(f"over {MAX_ASSERTS_PER_CLAIM} asserts under one claim, at: {line[:60]}")
    return problems


def test_cell_rules_catch_long_cells_and_unnamed_or_crowded_asserts():
    assert cell_rule_breaks("# a claim\nassert 1\nassert 2\nassert 3") == []
    assert cell_rule_breaks("assert 1  # a claim") == [] and len(cell_rule_breaks("x = 1\n" * 26)) == 1
    assert len(cell_rule_breaks("assert 1")) == 1 and len(cell_rule_breaks("# a claim\n" + "assert 1\n" * 4)) == 1


@pytest.mark.parametrize("path", LIGHT_NOTEBOOKS, ids=lambda p: p.stem)
def test_code_cells_are_short_and_name_the_claim_of_each_assert(path):
    cells = [c for c in read(path).cells if c.cell_type == "code"][1:]  # the setup cell is the same everywhere
    for i, cell in enumerate(cells, 2):
        problems = cell_rule_breaks(cell.source)
        assert not problems, f"{path.name}, code cell {i}: {'; '.join(problems)}"


def test_notebook_06_cross_validation_folds_judge_every_photo_once_with_our_split_as_fold_0():
    from types import SimpleNamespace

    import torch

    from engine.learning.features import FeatureCache
    from lessons.helpers import cross_validation_folds, one_thread

    feats = torch.arange(30 * 4, dtype=torch.float32).reshape(30, 4)  # 3 labels x 10 photos: 8 train, 2 valid
    labels = torch.arange(30) % 3
    cache = FeatureCache(feats[:24][None], labels[:24], feats[24:], labels[24:])
    folds = [fold.cache for fold in cross_validation_folds(SimpleNamespace(cache=cache), n_folds=5, seed=1)]
    assert torch.equal(folds[0].valid, cache.valid) and torch.equal(folds[0].train, cache.train)
    assert all(torch.bincount(f.valid_y).tolist() == [2, 2, 2] and f.train.shape == (1, 24, 4) for f in folds)
    judged = torch.cat([f.valid for f in folds])
    assert sorted(judged[:, 0].tolist()) == feats[:, 0].tolist()  # every photo validated exactly once
    for f in folds:  # never trained on while validated
        assert not set(f.valid[:, 0].tolist()) & set(f.train[0, :, 0].tolist())
    with pytest.raises(ValueError, match="one view"):
        two_views = FeatureCache(cache.train.repeat(2, 1, 1), cache.train_y, cache.valid, cache.valid_y)
        next(cross_validation_folds(SimpleNamespace(cache=two_views)))
    before = torch.get_num_threads()
    with one_thread():
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
