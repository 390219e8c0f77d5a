"""engine/progress.py: a live bar where someone watches, a few whole lines in a log."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

from engine.progress import LineProgress, is_interactive, progress_bar

REPO = Path(__file__).resolve().parents[1]


def test_a_log_gets_a_few_whole_lines_with_the_time_left():
    log = io.StringIO()
    bar = LineProgress(1000, "caching body features", unit="img", stream=log, quiet_for=0)
    for _ in range(1000):
        bar.update()
    bar.close()
    lines = log.getvalue().splitlines()
    assert 9 <= len(lines) <= 11 and "\r" not in log.getvalue()
    assert all(line.startswith("caching body features: ") for line in lines)
    assert "1/1000 img (0%)" in lines[0]  # at once when the quiet time is over, then every tenth
    assert "100/1000 img (10%)" in lines[1] and "left" in lines[1] and "img/s" in lines[1]
    assert lines[-1].startswith("caching body features: done, 1000/1000 img (100%)")


def test_a_quick_step_prints_nothing():
    log = io.StringIO()
    with LineProgress(50, "epoch 1/8 train", stream=log) as bar:  # over long before quiet_for (5 s)
        for _ in range(50):
            bar.update()
    assert log.getvalue() == ""


def test_a_step_without_a_total_still_reports():
    log = io.StringIO()
    bar = LineProgress(None, "reading", stream=log, quiet_for=0, interval=0)
    bar.update(3)
    bar.close()
    assert log.getvalue().splitlines()[0] == "reading: 3 it in 0 s, " + log.getvalue().split(", ")[1].split("\n")[0]
    assert "done, 3 it" in log.getvalue()


def test_progress_bar_is_plain_lines_when_the_output_is_a_file():
    code = ("from engine.progress import progress_bar, is_interactive\n"
            "bar = progress_bar(10, 'x')\n"
            "print(type(bar).__name__, is_interactive())\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.stdout.split() == ["LineProgress", "False"] and done.stderr == ""
    assert not is_interactive(io.StringIO())
    assert type(progress_bar(10, "x", disable=True)).__name__ == "LineProgress"
