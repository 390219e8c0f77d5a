"""``engine.memory``: ``import engine`` keeps glibc's malloc from handing every large block back.

Measured in page faults, not seconds (no timing in tests): ten batches through two convolutions,
whose 64 MB activations get fresh pages every batch under glibc's defaults (about a million
faults) and reuse the freed memory with the engine's setting (0 to 32,768 faults, as the heap
settles).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine.memory import OPERATOR_SETTINGS, OPT_OUT, keep_freed_memory

LOOP = """
import json, resource
import torch
import engine  # noqa: F401  (the setting is made here, unless the environment opts out)
net = torch.nn.Sequential(torch.nn.Conv2d(3, 16, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(16, 16, 3, padding=1))
x = torch.randn(16, 3, 256, 256)  # a batch whose activations are 64 MB each, as a real batch's are
with torch.inference_mode():
    for _ in range(3):  # the first batches: memory is taken once
        net(x)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(10):
        net(x)
print(json.dumps(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before))
"""

GLIBC = sys.platform.startswith("linux") and os.confstr("CS_GNU_LIBC_VERSION").startswith("glibc")
THP = Path("/sys/kernel/mm/transparent_hugepage/enabled")
# With transparent huge pages "always", mmap'd blocks fault in 2 MB pages: too few faults to count on
SMALL_PAGES = not THP.exists() or "[always]" not in THP.read_text()


def _faults(opt_out: bool) -> int:
    env = {k: v for k, v in os.environ.items() if k != OPT_OUT and k not in OPERATOR_SETTINGS}
    env |= {OPT_OUT: "default"} if opt_out else {}
    done = subprocess.run([sys.executable, "-c", LOOP], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.mark.skipif(not GLIBC, reason="the setting is glibc's (Linux); elsewhere keep_freed_memory does nothing")
@pytest.mark.skipif(not SMALL_PAGES, reason="transparent huge pages are 'always' here: page faults come per 2 MB")
def test_import_engine_stops_the_page_faults_of_a_reused_large_block():
    pages = 10 * 64 * 2**20 // os.sysconf("SC_PAGE_SIZE")  # one 64 MB activation a batch, every page
    default, kept = _faults(opt_out=True), _faults(opt_out=False)
    assert default > pages, (default, pages)  # glibc's default: fresh pages every batch
    assert kept < default / 10, (kept, default)  # kept: the freed blocks are used again (measured: 30 times fewer)


def test_the_environment_can_opt_out_and_an_operators_setting_wins(monkeypatch):
    for name in OPERATOR_SETTINGS:
        monkeypatch.delenv(name, raising=False)
    for value in ("default", "off"):
        monkeypatch.setenv(OPT_OUT, value)
        assert keep_freed_memory() is False
    monkeypatch.delenv(OPT_OUT)
    assert keep_freed_memory() is GLIBC
    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "131072")  # set by whoever runs the process
    assert keep_freed_memory() is False


def test_a_limit_a_c_int_cannot_hold_is_refused():
    for bad in (2**31, 0, -1, 1.5):  # 2**32 would wrap to 0: every block would come from mmap
        with pytest.raises(ValueError, match="limit must be 1 to 2147483647 bytes"):
            keep_freed_memory(bad)
