"""python -m engine.train end to end on generated photos, and its errors."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from engine.testing import write_image, write_labels_csv, write_synthetic_pets

REPO = Path(__file__).resolve().parents[1]


def run(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "engine.train", *args], capture_output=True, text=True,
                          cwd=REPO, timeout=timeout)


def test_train_from_a_csv_and_export(tmp_path):
    paths = write_synthetic_pets(tmp_path / "images", breeds=["pug", "beagle", "Bengal", "boxer"], n_per_breed=6,
                                 size=(72, 60), seed=7)
    write_labels_csv(tmp_path, paths, valid_per_breed=2)
    out = run("--data", str(tmp_path / "labels.csv"), "--export", str(tmp_path / "model"), "--presize", "64",
              "--size", "48", "--freeze-epochs", "6", "--bs", "8", "--quiet", "--half", "--fp16")
    assert out.returncode == 0, out.stderr[-2000:]
    assert "validation error" in out.stdout and "on 8 validation photos; trained on 16 photos" in out.stdout
    meta = json.loads((tmp_path / "model" / "meta.json").read_text())
    assert meta["dtype"] == "float16" and meta["n_train"] == 16 and 0 <= meta["valid_error"] <= 1
    assert meta["recipe"]["freeze_epochs"] == 6 and meta["vocab"] == ["Bengal", "beagle", "boxer", "pug"]
    # the head started from the class averages, so the frozen epochs ran at the polishing rate
    assert meta["recipe"]["head_init"] == "lda" and meta["recipe"]["base_lr"] == 5e-4


def test_missing_data_is_a_clear_error(tmp_path):
    out = run("--data", str(tmp_path / "nothing.csv"), timeout=120)
    assert out.returncode == 1
    assert "error: --data" in out.stderr and "no such file or folder" in out.stderr and "Traceback" not in out.stderr


def test_train_on_the_full_download_reports_the_official_test_split(full_pets_home, tmp_path):
    root = full_pets_home / "oxford-iiit-pet"
    out = run("--data", str(root), "--export", str(tmp_path / "model"), "--presize", "96", "--size", "64",
              "--freeze-epochs", "2", "--quiet")
    assert out.returncode == 0, out.stderr[-2000:]
    assert "the official split, trainval (300) for training, test (74) for the error" in out.stdout
    assert "note: 1 file(s) in images/ are not photos and are ignored: Abyssinian_100.mat" in out.stdout
    assert "Abyssinian_34.jpg (GIF)" in out.stdout and "1 unreadable file(s) left out: chihuahua_121.jpg" in out.stdout
    assert "test error" in out.stdout and "on 74 test photos; trained on 299 photos" in out.stdout
    assert json.loads((tmp_path / "model" / "meta.json").read_text())["n_valid"] == 74


def _bad_list(tmp_path: Path, line: str) -> Path:
    paths = write_synthetic_pets(tmp_path / "full" / "images", breeds=["pug", "beagle"], n_per_breed=3, size=(40, 30))
    (tmp_path / "full" / "annotations").mkdir()
    (tmp_path / "full" / "annotations" / "trainval.txt").write_text("pug_1 26 2 19\n" + line + "\n")
    (tmp_path / "full" / "annotations" / "test.txt").write_text("beagle_1 5 2 4\n")
    return paths[0].parents[1]


@pytest.mark.parametrize("make, message", [
    (lambda p: (p / "empty").mkdir() or p / "empty", "has no images/ folder and no photos in it"),
    (lambda p: _bad_list(p, "pug_9 26 2 19"), "trainval.txt, line 2: pug_9"),
    (lambda p: _bad_list(p, "pug_2 26 2"), "trainval.txt, line 2: expected 4 fields"),
    (lambda p: write_image(p / "photo.jpg", "rgb"), "photo.jpg is a JPEG image, not a CSV table"),
])
def test_bad_data_is_one_line_and_nothing_is_written(tmp_path, make, message):
    data = make(tmp_path)
    out = run("--data", str(data), "--export", str(tmp_path / "model"), timeout=120)
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert out.stderr.startswith("error: ") and message in out.stderr, out.stderr
    assert not (tmp_path / "model").exists()


# A child process runs the real command; a hook presses Ctrl-C (a real SIGINT, raised in the child's
# own main thread, so it lands at a known point) when the chosen phase is under way.
_INTERRUPT = """
import signal, sys
import torch
from torch import nn
import engine.learning.features as features
from engine.learning.learner import Learner
from engine.train import main

PHASE = sys.argv[1]
real_compute, real_one_batch = features.compute_features, Learner.one_batch

def compute_features(learn, *args, **kwargs):
    if PHASE == "caching":
        body = getattr(learn.model, "module", learn.model).body
        calls = []
        def press(module, inputs):
            calls.append(1)
            if len(calls) == 2:
                signal.raise_signal(signal.SIGINT)
        body.register_forward_pre_hook(press)
    return real_compute(learn, *args, **kwargs)

def one_batch(self):
    head_phase = isinstance(self.model, nn.Sequential)  # the head learner trains the head on features
    if self.training and self.epoch == 1 and self.iter == 1 and PHASE == ("head" if head_phase else "unfrozen"):
        signal.raise_signal(signal.SIGINT)
    return real_one_batch(self)

features.compute_features = compute_features
Learner.one_batch = one_batch
sys.exit(main(sys.argv[2:]))
"""


@pytest.mark.parametrize("phase", ["caching", "head", "unfrozen"])
def test_ctrl_c_in_any_phase_stops_the_run_and_exports_nothing(tmp_path, phase):
    paths = write_synthetic_pets(tmp_path / "images", breeds=["pug", "beagle", "Bengal"], n_per_breed=6,
                                 size=(64, 56), seed=9)
    write_labels_csv(tmp_path, paths, valid_per_breed=2)
    args = ["--data", str(tmp_path / "labels.csv"), "--export", str(tmp_path / "model"), "--presize", "56",
            "--size", "48", "--freeze-epochs", "3", "--epochs", "2", "--bs", "4", "--quiet"]
    done = subprocess.run([sys.executable, "-c", _INTERRUPT, phase, *args], capture_output=True, text=True,
                          cwd=REPO, timeout=300)
    assert done.returncode == 130, (done.stdout[-1500:], done.stderr[-1500:])
    assert "interrupted: training stopped, nothing was exported" in done.stderr and "Traceback" not in done.stderr
    if phase != "caching":  # a fit was under way: it put its model back to its last completed epoch
        assert "Training stopped by Ctrl-C at epoch 2, batch 2: the model is back to the end of epoch 1" in done.stdout
    assert not (tmp_path / "model").exists()
    assert "validation error" not in done.stdout  # nothing after the interrupted phase ran


def test_a_nan_in_training_is_one_line_and_exit_1(tmp_path):
    paths = write_synthetic_pets(tmp_path / "images", breeds=["pug", "beagle"], n_per_breed=5, size=(64, 56), seed=9)
    write_labels_csv(tmp_path, paths, valid_per_breed=1)
    out = run("--data", str(tmp_path / "labels.csv"), "--export", str(tmp_path / "model"), "--presize", "56", "--size",
              "48", "--freeze-epochs", "2", "--head-init", "random", "--lr", "1e8", "--bs", "4", "--quiet")
    assert out.returncode == 1 and "Traceback" not in out.stderr, out.stderr[-2000:]
    assert out.stderr.startswith("error: ") and "became NaN" in out.stderr and "the model is back to" in out.stderr
    assert not (tmp_path / "model").exists()


@pytest.mark.parametrize("lr", [float("inf"), float("-inf"), float("nan"), 0.0, -1e-3])
def test_the_recipe_refuses_a_learning_rate_that_cannot_train(lr):
    from engine.recipe import Recipe

    with pytest.raises(ValueError, match=r"base_lr \(the learning rate, --lr\) must be a finite number above 0"):
        Recipe(base_lr=lr)
    assert Recipe(base_lr=1e-3).chosen_base_lr() == 1e-3
    assert Recipe().chosen_base_lr() == 5e-4 and Recipe(head_init="random").chosen_base_lr() == 5e-3


def test_an_infinite_learning_rate_is_refused_before_any_photo_is_read(tmp_path):
    paths = write_synthetic_pets(tmp_path / "images", breeds=["pug", "beagle"], n_per_breed=4, size=(64, 56), seed=9)
    write_labels_csv(tmp_path, paths, valid_per_breed=1)
    out = run("--data", str(tmp_path / "labels.csv"), "--export", str(tmp_path / "model"), "--presize", "56", "--size",
              "48", "--freeze-epochs", "2", "--lr", "inf", "--bs", "4", "--quiet", timeout=120)
    assert out.returncode == 1 and "Traceback" not in out.stderr, out.stderr[-2000:]
    assert out.stderr.strip().splitlines() == [
        "error: base_lr (the learning rate, --lr) must be a finite number above 0, such as 0.0005; got inf"]
    assert "data:" not in out.stdout  # refused before the data was opened, not stopped by the NaN guard
    assert not (tmp_path / "model").exists()


# Ctrl-C at the report or the export, in a real child process. How the press lands matters: Python
# raises the KeyboardInterrupt in whatever Python code runs next, and where that is a finalizer
# (``__del__``), Python can only print "Exception ignored ... KeyboardInterrupt" and go on (numpy's
# ctypes check, called from C, even clears it without a word). So "finalizer" presses Ctrl-C inside a
# ``__del__``, the way a press is lost in real runs; "plain" presses it in ordinary code.
_INTERRUPT_EXPORT = """
import signal, sys
import engine.recipe as recipe
import engine.serving.export as export
from engine.train import main

WHERE, HOW = sys.argv[1], sys.argv[2]

class Finalizer:
    def __del__(self):
        signal.raise_signal(signal.SIGINT)

def press():
    if HOW == "finalizer":
        Finalizer()  # collected at once: its __del__ runs here
    else:
        signal.raise_signal(signal.SIGINT)

real_report, real_stage, real_write = recipe.TrainingRun._report, export._stage, export._write_atomically

def _report(self, *args):
    if WHERE == "report":
        press()
    return real_report(self, *args)

def _stage(folder, suffix, write):
    if (WHERE, suffix) in (("weights", ".safetensors"), ("graph", ".onnx")):
        press()
    return real_stage(folder, suffix, write)

def _write_atomically(path, write, *args):
    if WHERE == "meta.json":  # the last moment before the commit point
        press()
    return real_write(path, write, *args)

recipe.TrainingRun._report, export._stage, export._write_atomically = _report, _stage, _write_atomically
sys.exit(main(sys.argv[3:]))
"""


@pytest.fixture(scope="module")
def earlier_export(tmp_path_factory, tiny_learner):
    """An export made before: a run into its folder that does not complete must leave it as it is."""
    return tiny_learner(tmp_path_factory.mktemp("earlier"), seed=3)[1]


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def _train_child(script: str, tmp_path: Path, *script_args: str):
    paths = write_synthetic_pets(tmp_path / "images", breeds=["pug", "beagle", "Bengal"], n_per_breed=5,
                                 size=(64, 56), seed=9)
    write_labels_csv(tmp_path, paths, valid_per_breed=2)
    args = ["--data", str(tmp_path / "labels.csv"), "--export", str(tmp_path / "model"), "--presize", "56",
            "--size", "48", "--freeze-epochs", "2", "--bs", "4", "--quiet"]
    return subprocess.run([sys.executable, "-c", script, *script_args, *args], capture_output=True, text=True,
                          cwd=REPO, timeout=300)


@pytest.mark.parametrize("where, how, earlier", [
    ("report", "finalizer", False), ("weights", "finalizer", True), ("graph", "plain", True),
    ("graph", "finalizer", False), ("meta.json", "finalizer", True),
])
def test_ctrl_c_at_the_report_or_the_export_exports_nothing(tmp_path, earlier_export, where, how, earlier):
    import shutil

    from engine.serving.predictor import load_predictor

    if earlier:
        shutil.copytree(earlier_export, tmp_path / "model")
        before = _snapshot(tmp_path / "model")
    done = _train_child(_INTERRUPT_EXPORT, tmp_path, where, how)
    assert done.returncode == 130, (done.stdout[-1500:], done.stderr[-1500:])
    stage = "training stopped" if where == "report" else f"the export to {tmp_path / 'model'} stopped"
    assert done.stderr.strip().splitlines() == [f"interrupted: {stage}, nothing was exported"], done.stderr
    assert "validation error" not in done.stdout and "exported to" not in done.stdout
    if earlier:  # the earlier export is still there, byte for byte, and loads
        assert _snapshot(tmp_path / "model") == before
        assert load_predictor(tmp_path / "model").vocab == ["Bengal", "beagle", "pug"]
    else:
        assert not (tmp_path / "model").exists()


# A full disk, simulated where the export writes: safetensors reports it as a SafetensorError with
# the OS error in its text, a plain write as OSError(ENOSPC) after part of the file was written.
_DISK_FULL = """
import errno, os, sys
import safetensors.torch
from safetensors import SafetensorError
import engine.serving.export as export
from engine.train import main

WHERE = sys.argv[1]

def save_file(state, filename, *args, **kwargs):
    open(filename, "wb").write(b"partial")
    raise SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")

real_stage = export._stage

def _stage(folder, suffix, write):
    if suffix == ".onnx" and WHERE == "graph":
        def write(path):
            path.write_bytes(b"partial")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
    return real_stage(folder, suffix, write)

if WHERE == "weights":
    safetensors.torch.save_file = save_file
export._stage = _stage
sys.exit(main(sys.argv[2:]))
"""


@pytest.mark.parametrize("where, earlier", [("weights", False), ("graph", True)])
def test_a_full_disk_during_the_export_is_one_line_and_leaves_the_folder_as_it_was(tmp_path, earlier_export, where,
                                                                                  earlier):
    import shutil

    if earlier:
        shutil.copytree(earlier_export, tmp_path / "model")
        before = _snapshot(tmp_path / "model")
    done = _train_child(_DISK_FULL, tmp_path, where)
    assert done.returncode == 1, (done.stdout[-1500:], done.stderr[-1500:])
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert lines[0].startswith(f"error: cannot export to {tmp_path / 'model'}: no space left on the device")
    if earlier:
        assert "the export already there is unchanged" in lines[0]
        assert _snapshot(tmp_path / "model") == before  # no staged file left, nothing old removed
    else:
        assert "nothing was left behind" in lines[0]
        assert not (tmp_path / "model").exists()  # the folder the export created is gone too


def test_the_recipe_options_are_made_from_the_recipe_fields():
    from dataclasses import dataclass, fields, replace

    from engine.recipe import Recipe
    from engine.train import RECIPE_FLAGS, build_parser, recipe_flags, recipe_from

    parser = build_parser()
    assert recipe_from(parser.parse_args(["--data", "x"])) == Recipe()  # the defaults are the recipe's
    paths = {path for path, _, _ in recipe_flags()}
    assert {f.name for f in fields(Recipe)} - {"preprocessing"} <= paths
    assert {"preprocessing.size", "preprocessing.presize"} <= paths and set(RECIPE_FLAGS) >= paths
    args = parser.parse_args(["--data", "x", "--lr", "1e-3", "--no-cache", "--fp16", "--find-lr", "--bs", "4",
                              "--size", "64", "--presize", "96", "--head-init", "random", "--valid-pct", "0.3"])
    assert recipe_from(args) == replace(Recipe(), base_lr=1e-3, cache_features=False, mixed_precision=True,
                                        find_lr=True, batch_size=4, head_init="random", valid_pct=0.3,
                                        preprocessing=replace(Recipe().preprocessing, size=64, presize=96))

    @dataclass(frozen=True)
    class Grown(Recipe):
        dropout: float = 0.5

    with pytest.raises(KeyError, match="'dropout' has no entry in engine/train.py's RECIPE_FLAGS"):
        recipe_flags(Grown())
