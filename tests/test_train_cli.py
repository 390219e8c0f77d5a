"""python -m engine.train end to end on generated photos, and its errors."""

import json
import subprocess
import sys
from pathlib import Path

from engine.synthetic import write_labels_csv, write_synthetic_pets

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
    assert "validation error" in out.stdout and "on 8 photos; trained on 16 photos" in out.stdout
    meta = json.loads((tmp_path / "model" / "meta.json").read_text())
    assert meta["dtype"] == "float16" and meta["n_train"] == 16 and 0 <= meta["valid_error"] <= 1
    assert meta["recipe"]["freeze_epochs"] == 6 and meta["vocab"] == ["Bengal", "beagle", "boxer", "pug"]
    # the head started from the class averages, so the frozen epochs ran at the polishing rate
    assert meta["recipe"]["head_init"] == "lda" and meta["recipe"]["lr"] == 5e-4


def test_missing_data_is_a_clear_error(tmp_path):
    out = run("--data", str(tmp_path / "nothing.csv"), timeout=120)
    assert out.returncode == 1
    assert "error: --data" in out.stderr and "Traceback" not in out.stderr
