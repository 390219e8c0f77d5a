"""The labs' handlers (tabs 2 and 3) and their live updates, directly and through the real server.

The browser side (a visitor clicking an example, moving sliders, typing 50) is
``tests/test_labs_browser.py``; here are the numbers, the bounds on the work, and raw HTTP.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from demo.checks import InputRefused, clamped
from demo.latest import SKIPPED, Latest
from demo.presize_lab import NO_LAB_PHOTO, presize_lab
from demo.softmax_lab import CLASSES, DEFAULT_ACTIVATIONS, softmax_lab, softmax_numbers
from tests.support.server import DemoServer, RawClient

PHOTO = Path(__file__).resolve().parents[1] / "demo" / "examples" / "pug_140.jpg"


# --- clamping a typed number ------------------------------------------------------------------------

def test_clamped_moves_a_number_to_the_nearest_end_and_says_so():
    assert clamped(3, "x", -10, 10) == (3.0, None)
    assert clamped(50, "The activation of pug", -10, 10) == (
        10.0, "The activation of pug must be between -10 and 10: 50 was taken as 10.")
    assert clamped(-1e308, "x", -10, 10)[0] == -10.0
    assert clamped(float("inf"), "x", -10, 10)[0] == 10.0
    assert clamped(10**400, "x", 0.1, 5) == (5.0, "x must be between 0.1 and 5: a number far too large was taken "
                                                 "as 5.")  # valid JSON, too large for a float
    for bad in (float("nan"), "50", None, True, [1]):
        with pytest.raises(InputRefused, match="between -10 and 10"):
            clamped(bad, "x", -10, 10)


def test_a_typed_activation_out_of_range_gives_the_chart_for_the_clamped_value():
    rows, text, fig = softmax_lab("pug", 1.0, 1.0, -0.5, 3.0, 0.5, 50)
    assert fig is not None and len(rows) == len(CLASSES)  # the chart is not blanked
    assert text.startswith("**Out of range:** The activation of pug must be between -10 and 10: 50 was taken as 10.")
    n = softmax_numbers((1.0, -0.5, 3.0, 0.5, 10.0), CLASSES.index("pug"))
    assert [r[3] for r in rows] == pytest.approx(n["softmax"], abs=1e-4)
    assert rows[-1][1] == 10.0
    rows, text, fig = softmax_lab("beagle", 99, *DEFAULT_ACTIVATIONS)  # the temperature too
    assert fig is not None and "The temperature must be between 0.1 and 5: 99 was taken as 5." in text
    assert "T=5" in text
    assert softmax_lab("beagle", 1.0, *DEFAULT_ACTIVATIONS)[1].startswith("**True class")  # no note when in range
    rows, text, fig = softmax_lab("beagle", 1.0, float("nan"), *DEFAULT_ACTIVATIONS[1:])  # NaN: still refused
    assert rows == [] and fig is None and "must be between -10 and 10" in text


def test_the_note_stays_while_the_page_echoes_the_value_it_was_moved_to():
    from demo.softmax_lab import _Notes

    notes, values = _Notes(capacity=2), (1.0, -0.5, 3.0, 0.5)
    typed = softmax_lab("pug", 1.0, *values, 50)[1]
    assert notes.keep("page", typed, 1.0, (*values, 50)) == typed
    echo = softmax_lab("pug", 1.0, *values, 10.0)[1]  # the slider's box moved 50 to 10 and sent it
    assert notes.keep("page", echo, 1.0, (*values, 10.0)).startswith("**Out of range:** The activation of pug")
    assert notes.keep("other page", echo, 1.0, (*values, 10.0)) == echo  # another page never typed 50
    moved = softmax_lab("pug", 1.0, *values, 9.0)[1]  # a new value: the note has done its job
    assert notes.keep("page", moved, 1.0, (*values, 9.0)) == moved
    assert notes.keep("page", echo, 1.0, (*values, 10.0)) == echo
    for page in ("a", "b", "c"):  # bounded: the oldest page is forgotten
        notes.keep(page, typed, 1.0, (*values, 50))
    assert list(notes._notes) == ["b", "c"]


def test_the_presizing_lab_without_a_photo_does_not_mention_a_webcam():
    *images, report = presize_lab(None)
    assert images == [None, [], None, None] and NO_LAB_PHOTO in report and "webcam" not in report


# --- one computation per page, the newest inputs win ----------------------------------------------

def test_latest_computes_once_at_a_time_per_page_and_answers_with_the_newest():
    started, release, computed = threading.Event(), threading.Event(), []

    def compute(x):
        computed.append(x)
        if x == 1:
            started.set()
            release.wait(10)
        return x * 10

    latest, answers = Latest(compute), {}
    first = threading.Thread(target=lambda: answers.update(first=latest.run("page", 1)))
    first.start()
    assert started.wait(10)
    assert latest.run("page", 2) is SKIPPED and latest.run("page", 3) is SKIPPED  # no work while 1 runs
    assert latest.run("other page", 7) == 70  # another page is not held up
    release.set()
    first.join(10)
    assert answers["first"] == 30  # the running one answered with the newest inputs, 3
    assert computed == [1, 7, 3]  # 2 was never computed
    assert latest.busy() == 0 and latest.run("page", 4) == 40


def test_latest_frees_the_page_when_the_computation_fails():
    def compute(x):
        raise RuntimeError("boom")

    latest = Latest(compute)
    with pytest.raises(RuntimeError):
        latest.run("page", 1)
    assert latest.busy() == 0


# --- through the real server -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def server(pets_sample, tmp_path_factory):
    with DemoServer(env={"GRADIO_TEMP_DIR": str(tmp_path_factory.mktemp("gradio"))}) as running:
        yield running


def _skipped(output) -> bool:
    return all(isinstance(o, dict) and o.get("__type__") == "update" and len(o) == 1 for o in output)


def test_an_example_becomes_the_photo_that_later_events_use(server):
    raw = RawClient(server.url)
    compare = raw.fn_index(first_input="Photo", trigger="click")
    example = raw.fn_index(first_input="Rotation (degrees)", trigger="select")
    output, error, _ = raw.call(example, [10, 1.1, 2, 0], {"index": 1, "value": None})
    assert error is None and "rotate by 10 degrees" in output[-1]
    photo = output[0]
    assert photo["orig_name"].startswith("Bengal_") and photo["orig_name"].endswith(".jpg"), photo  # shown by name
    # what the page sends after a slider moves or "Compare": that photo, new settings
    output, error, _ = raw.call(compare, [photo, 30, 1.1, 2, 0])
    assert error is None and "rotate by 30 degrees" in output[-1] and "PSNR" in output[-1], output
    assert output[0] and output[2] and output[3] and len(output[1]) == 2
    raw.close()


def test_a_burst_of_slider_moves_from_one_page_does_less_work_and_ends_on_the_newest(server):
    raw = RawClient(server.url)
    compare = raw.fn_index(first_input="Photo", trigger="click")
    photo = raw.upload(PHOTO)
    angles = [0, 5, 10, 15, 20, 25, 30, 35]
    events = [raw.join(compare, [photo, angle, 1.3, 12, 0]) for angle in angles]  # as fast as a script can
    started = time.monotonic()
    answers = raw.results(events)
    outputs = [answers[e][0] for e in events]
    assert all(o is not None for o in outputs), answers
    computed = [o for o in outputs if not _skipped(o)]
    assert len(outputs) - len(computed) >= 1, [o[-1][:40] for o in computed]  # some did no work at all
    reports = [o[-1] for o in computed]
    assert any("rotate by 35 degrees" in r for r in reports), reports  # the newest inputs were computed
    assert time.monotonic() - started < 60
    raw.close()
