"""``bench/gpu_check.py``: on a machine without CUDA it is a dry run that says what it skipped."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(torch.cuda.is_available(), reason="with CUDA the script runs for real (on the device machine)")
def test_without_cuda_the_gpu_check_is_a_dry_run_that_names_what_it_skipped():
    done = subprocess.run([sys.executable, "bench/gpu_check.py", "run"], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])  # one JSON line at the end
    assert report["dry_run"] is True and report["device"] == "cpu" and not report["failed"]
    assert report["passed"] == ["collect_cuda_tests", "find_lessons"]
    assert set(report["skipped"]) == {"cuda_tests", "serving_cuda", "lessons_cuda", "full_scale"}
    assert all("no CUDA device" in why for why in report["skipped"].values())
    assert "4 CUDA tests would run" in done.stdout and "notebooks would run" in done.stdout
