"""Exports that are wrong or hostile: what ``load_predictor`` (the web demo and ``python -m engine.predict``
load through it) refuses, in one clear line, before it spends time or memory on them.

Each case is checked on the function, and through the two commands on one case each: a demo or a
folder run must never hang, fill the memory or end in a traceback because of a model folder.
"""

import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from engine.models import ARCHS
from engine.serving.exported import MAX_META_BYTES, ExportRefused, read_export
from engine.serving.predictor import load_predictor
from engine.testing import write_image

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_learner):
    return tiny_learner(tmp_path_factory.mktemp("hostile"), seed=11)


@pytest.fixture
def copy(trained, tmp_path):
    """A copy of a good export (size 48, presize 64, with its ONNX graph), to spoil."""
    folder = tmp_path / "model"
    shutil.copytree(trained[1], folder)
    return folder


def _edit(folder: Path, **changes) -> dict:
    meta = json.loads((folder / "meta.json").read_text())
    for key, value in changes.items():
        if key in ("size", "presize"):
            meta["preprocessing"][key] = value
        else:
            meta[key] = value
    (folder / "meta.json").write_text(json.dumps(meta))
    return meta


def _returns_in_time(call, unblock: Path):
    """``call()``'s outcome (its value or the exception it raised). A reader stuck on the FIFO
    ``unblock`` is freed by opening its other end, and the test fails: it would hang a server."""
    outcome = []

    def target():
        try:
            outcome.append(call())
        except BaseException as err:  # noqa: BLE001 - handed to the test
            outcome.append(err)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(60)
    if thread.is_alive():
        os.close(os.open(unblock, os.O_WRONLY | os.O_NONBLOCK))  # EOF for the blocked reader
        thread.join(60)
        pytest.fail(f"reading the export blocked on the FIFO {unblock}")
    return outcome[0]


# --- (a) sizes ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("field, value, message", [
    ("size", 8000, "the final size 8000 is too large for efficientnet_lite0: at most 896 pixels"),
    ("presize", 8000, "the presize 8000 is too large: at most 2048 pixels"),
])
def test_sizes_that_cannot_be_served_are_refused(copy, field, value, message):
    _edit(copy, **{field: value})
    with pytest.raises(ExportRefused, match=message) as refused:
        read_export(copy)
    assert str(refused.value).startswith(str(copy / "meta.json"))


def test_a_size_the_graph_was_not_made_for_is_refused(copy):
    """meta.json says 64 (a size in range) but the graph beside it takes 48x48 photos: they do not
    belong together, and the model is not served (not even by PyTorch at the other size)."""
    _edit(copy, size=64)
    read_export(copy)  # in range on its own
    with pytest.raises(ExportRefused, match="it says the model sees 64x64 pixels, but its ONNX graph takes 48x48"):
        load_predictor(copy)


def test_the_recipe_refuses_sizes_that_could_not_be_served():
    from engine.data.preprocessing import Preprocessing
    from engine.recipe import Recipe

    with pytest.raises(ValueError, match="the final size 1000 is too large for efficientnet_lite0: at most 896"):
        Recipe(preprocessing=Preprocessing(size=1000))
    with pytest.raises(ValueError, match="the presize 3000 is too large"):
        Recipe(preprocessing=Preprocessing(presize=3000))
    assert Recipe(arch="efficientnet_lite2", preprocessing=Preprocessing(size=1040)).preprocessing.size == 1040


# --- (b) files that are not regular files, or too large ----------------------------------------------

def test_a_fifo_for_meta_json_is_refused_without_blocking(copy):
    (copy / "meta.json").unlink()
    os.mkfifo(copy / "meta.json")
    err = _returns_in_time(lambda: read_export(copy), copy / "meta.json")
    assert isinstance(err, ExportRefused), err
    assert str(err).startswith(f"{copy / 'meta.json'} is not a regular file (a pipe, a device or a socket)")


@pytest.mark.parametrize("which", ["weights", "onnx"])
def test_a_fifo_for_the_weights_or_the_graph_is_refused(copy, which):
    meta = json.loads((copy / "meta.json").read_text())
    name = meta["weights"] if which == "weights" else meta["onnx"]["file"]
    (copy / name).unlink()
    os.mkfifo(copy / name)
    err = _returns_in_time(lambda: load_predictor(copy), copy / name)
    assert isinstance(err, ExportRefused) and str(err).startswith(f"{copy / name} is not a regular file"), err


def test_a_device_for_meta_json_is_refused(copy):
    (copy / "meta.json").unlink()
    (copy / "meta.json").symlink_to("/dev/zero")  # endless: read whole, it would fill the memory
    with pytest.raises(ExportRefused, match="is not a regular file"):
        read_export(copy)


def test_a_meta_json_larger_than_the_bound_is_refused(copy):
    meta = json.loads((copy / "meta.json").read_text())
    (copy / "meta.json").write_text(json.dumps(meta) + " " * MAX_META_BYTES)  # valid JSON, just too large
    with pytest.raises(ExportRefused, match=f"more than the {MAX_META_BYTES:,} such a file may have"):
        read_export(copy)


# --- (c) nesting --------------------------------------------------------------------------------------

def test_a_deeply_nested_meta_json_is_refused(copy):
    meta = json.loads((copy / "meta.json").read_text())
    deep = "[" * 100_000 + "]" * 100_000
    (copy / "meta.json").write_text(json.dumps(meta)[:-1] + f', "notes": {deep}}}')
    with pytest.raises(ExportRefused, match="is nested too deeply"):
        read_export(copy)


# --- (d) architectures --------------------------------------------------------------------------------

def test_an_unknown_architecture_is_refused_with_the_known_ones(copy):
    _edit(copy, arch="evilnet")
    with pytest.raises(ExportRefused) as refused:
        load_predictor(copy)
    assert str(refused.value).startswith(f"{copy / 'meta.json'} names the architecture 'evilnet', which petbreeds "
                                         "does not know (known: " + ", ".join(ARCHS) + ")")


def test_an_int8_tolerance_that_is_not_a_probability_gap_is_refused(copy):
    meta = json.loads((copy / "meta.json").read_text())
    _edit(copy, int8={**meta["onnx"], "tolerance": 1e9})  # would let any graph pass its check
    with pytest.raises(ExportRefused, match="gives the int8 graph the tolerance 1000000000.0"):
        load_predictor(copy)


def test_the_good_export_still_loads(copy):
    """The bounds do not refuse what export writes."""
    predictor = load_predictor(copy)
    assert predictor.runtime.name == "onnxruntime float32" and predictor.preprocessing.size == 48


# --- through the commands -------------------------------------------------------------------------------

def test_the_demo_refuses_a_fifo_meta_json_in_one_line(copy):
    (copy / "meta.json").unlink()
    os.mkfifo(copy / "meta.json")
    done = subprocess.run([sys.executable, "-m", "demo", "--model", str(copy), "--port", "1"], capture_output=True,
                          text=True, timeout=300, cwd=REPO)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1, done.stderr[-2000:]
    assert lines[0] == (f"error: --model {copy}: {copy / 'meta.json'} is not a regular file (a pipe, a device or a "
                        "socket): an export is a folder of plain files; export the model again")


def test_the_folder_cli_refuses_a_deeply_nested_meta_json_in_one_line(copy, tmp_path):
    meta = json.loads((copy / "meta.json").read_text())
    (copy / "meta.json").write_text(json.dumps(meta)[:-1] + ', "notes": ' + "[" * 50_000 + "]" * 50_000 + "}")
    write_image(tmp_path / "photos" / "pug.jpg", "rgb")
    done = subprocess.run([sys.executable, "-m", "engine.predict", str(copy), str(tmp_path / "photos")],
                          capture_output=True, text=True, timeout=300, cwd=REPO)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1 and "Traceback" not in done.stderr, done.stderr[-2000:]
    assert lines[0].startswith(f"cannot load the model {copy}: {copy / 'meta.json'} is nested too deeply")
