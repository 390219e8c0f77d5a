"""Benchmark: glibc's malloc left as it is, against ``engine.memory.keep_freed_memory`` (what
``import engine`` does on Linux), on the training the lessons run most.

    python bench/memory.py [--rounds 2] [--unfrozen]

Each round trains ``Recipe()`` on $PETS_SAMPLE twice, each in a fresh Python process: once with
``PETBREEDS_MALLOC=default`` (the baseline: malloc's own settings) and once with the engine's, in
alternating order. ``--unfrozen`` adds one unfrozen epoch (the whole body trained: the largest
blocks). Reported per setting: the median wall seconds, CPU seconds in the kernel (``sys``), minor
page faults, and peak memory (max RSS). ``time_ratio`` is kept / default (below 1: faster),
``peak_memory_ratio`` likewise (above 1: the memory the process keeps). Both processes must reach the
same validation error. The last line is one JSON object with all figures.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

CHILD = """
import json, os, resource, sys, time
from engine.recipe import Recipe, run_recipe
recipe = Recipe(epochs=1) if sys.argv[1] == "1" else Recipe()
start = time.perf_counter()
report = run_recipe(os.environ["PETS_SAMPLE"], recipe, progress=False)
seconds = time.perf_counter() - start
use = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"s": seconds, "sys_s": use.ru_stime, "faults": use.ru_minflt, "max_rss_mb": use.ru_maxrss / 1024,
                  "valid_error": report["valid_error"]}))
"""


def one_run(kept: bool, unfrozen: bool) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "PETBREEDS_MALLOC"}
    if not kept:
        env["PETBREEDS_MALLOC"] = "default"
    done = subprocess.run([sys.executable, "-c", CHILD, "1" if unfrozen else "0"], env=env, capture_output=True,
                          text=True, timeout=1800, cwd=Path(__file__).resolve().parents[1])
    if done.returncode != 0:
        sys.exit(f"bench/memory.py: a training run failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--unfrozen", action="store_true", help="add one unfrozen epoch")
    args = parser.parse_args()
    if not os.environ.get("PETS_SAMPLE"):
        sys.exit("bench/memory.py: set PETS_SAMPLE to the sample's folder (python -m engine.datasets sample)")
    runs = {"default": [], "kept": []}
    for r in range(args.rounds):
        for kept in ((False, True) if r % 2 == 0 else (True, False)):
            run = one_run(kept, args.unfrozen)
            runs["kept" if kept else "default"].append(run)
            print(f"round {r + 1}, malloc {'kept' if kept else 'default'}: {run['s']:.1f} s, {run['sys_s']:.1f} s in "
                  f"the kernel, {run['faults']:,} page faults, peak {run['max_rss_mb']:,.0f} MB, "
                  f"error {run['valid_error']:.2%}", flush=True)
    figures = {"unfrozen_epochs": int(args.unfrozen), "rounds": args.rounds}
    for name, rs in runs.items():
        for key in ("s", "sys_s", "faults", "max_rss_mb"):
            figures[f"{name}_{key}"] = statistics.median(r[key] for r in rs)
    figures["time_ratio"] = figures["kept_s"] / figures["default_s"]
    figures["peak_memory_ratio"] = figures["kept_max_rss_mb"] / figures["default_max_rss_mb"]
    figures["same_error"] = len({r["valid_error"] for rs in runs.values() for r in rs}) == 1
    print(f"kept / default: time x{figures['time_ratio']:.2f}, peak memory x{figures['peak_memory_ratio']:.2f}, "
          f"same validation error: {figures['same_error']}")
    print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in figures.items()}))


if __name__ == "__main__":
    main()
