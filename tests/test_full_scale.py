"""The chapter's whole flow at full scale (``engine.learning.full_scale``, ``python -m engine.train --preset``):
its code path runs end to end on the CPU, on the full-download stand-in, with tiny epochs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.learning.full_scale import BOOK_ERROR, PRESETS, Stage, StageResult, choose_preset, format_table

ROOT = Path(__file__).resolve().parents[1]


def train_cli(*args: str, **kwargs) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k != "PETS_SAMPLE"} | {"PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "engine.train", *args], cwd=ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kwargs)


def test_the_full_preset_follows_the_books_flow():
    head, unfrozen, larger = PRESETS["full"].stages
    assert head.freeze_epochs > 0 and head.epochs == 0                      # 1. the head alone
    assert unfrozen.epochs > 0 and not unfrozen.new_model                   # 2. the same model, unfrozen
    assert larger.new_model and larger.mixed_precision and larger.size > head.size
    assert larger.arch == "efficientnet_lite2" and head.arch == "efficientnet_lite0"
    for name in ("tiny",):  # the smoke run takes the same steps, only shorter and smaller
        assert [(s.new_model, s.mixed_precision, s.epochs > 0, s.freeze_epochs > 0) for s in PRESETS[name].stages] == \
               [(s.new_model, s.mixed_precision, s.epochs > 0, s.freeze_epochs > 0) for s in PRESETS["full"].stages]


def test_the_preset_follows_the_hardware_and_the_data(full_pets_home, pets_sample):
    full = full_pets_home / "oxford-iiit-pet"
    assert choose_preset(full, device="cuda") == "full"
    assert choose_preset(pets_sample, device="cuda") == "tiny"  # a GPU, but only the sample
    assert choose_preset(full, device="cpu") == "tiny"          # the full download, but a CPU


def test_the_table_stands_beside_the_books_figure_and_says_how_it_differs():
    results = [StageResult(Stage("baseline: head only", "efficientnet_lite0", 224, 4, 0), 0.0815, 90.0,
                           n_train=3680, n_valid=3669, valid_name="test")]
    table = format_table(results)
    assert "8.2%" in table and "1.5" in table and f"~{BOOK_ERROR:.1%}" in table and "resnet34" in table
    assert "3669 test photos" in table and "not the official test split" in table


def test_preset_runs_the_whole_flow_on_the_full_download_stand_in_and_exports(full_pets_home, tmp_path):
    out = tmp_path / "model"
    proc = train_cli("--preset", "tiny", "--data", str(full_pets_home / "oxford-iiit-pet"), "--export", str(out),
                     "--quiet", "--no-onnx")  # the ONNX export has tests of its own
    stdout, stderr = proc.communicate(timeout=600)
    assert proc.returncode == 0, stdout[-2000:] + stderr[-3000:]
    rows = {line.split("  ")[0]: line for line in stdout.splitlines()}
    for stage in PRESETS["tiny"].stages:
        assert stage.name in rows and "%" in rows[stage.name]
    assert "the LR finder after unfreezing suggests" in stdout
    assert "the book, for comparison" in stdout
    assert "error on the 37 test photos" in stdout  # one photo per breed of the stand-in's official test list
    meta = json.loads((out / "meta.json").read_text())
    assert meta["preset"] == "tiny" and [s["arch"] for s in meta["stages"]] == [s.arch for s in PRESETS["tiny"].stages]
    assert meta["arch"] == "efficientnet_lite2" and 0 <= meta["valid_error"] <= 1


def test_preset_refuses_options_it_would_ignore(tmp_path):
    proc = train_cli("--preset", "full", "--data", str(tmp_path), "--arch", "resnet50", "--freeze-epochs", "3")
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 2 and "leave out --arch, --freeze-epochs" in stderr and "Traceback" not in stderr


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_ctrl_c_during_the_preset_stops_and_exports_nothing(full_pets_home, tmp_path):
    out = tmp_path / "model"
    proc = train_cli("--preset", "tiny", "--data", str(full_pets_home / "oxford-iiit-pet"), "--export", str(out),
                     "--quiet")
    seen = []
    deadline = time.monotonic() + 300
    for line in proc.stdout:  # wait until the second stage (the LR finder, then unfrozen epochs) starts
        seen.append(line)
        if line.startswith(PRESETS["tiny"].stages[1].name) or time.monotonic() > deadline:
            break
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, "".join(seen) + stdout + stderr[-2000:]
    assert "interrupted: training stopped, nothing was exported" in stderr and "Traceback" not in stderr
    assert not out.exists()
