"""Benchmark: photos per second of the folder CLI (``python -m engine.predict``) on the sample.

    python bench/predict_folder.py [--rounds 3]

Alternating round by round in one run, over every photo of $PETS_SAMPLE/images:

- folder: what ``python -m engine.predict demo/model FOLDER`` does once the model is loaded
  (``engine.predict.predict_files``: decoding on worker threads while the network runs on
  batches of 16, on the runtime the demo's predictor picks);
- loop: the plain per-photo loop a user would write (``plain_onnx.py``: naive PIL preprocessing
  and one plain onnxruntime float32 session, one photo at a time).

``folder_ips`` and ``loop_ips`` are the best round's photos/s; ``vs_loop`` their ratio (target
>= 2 on the 2-core machine). ``same_top1`` is the share of photos both name the same breed. The
whole CLI (start, load, predict, write the CSV) is timed once too: ``cli_s``. The last line is one
JSON object with all figures.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from plain_onnx import plain_predict, plain_session  # noqa: E402

from demo.settings import SHIPPED_MODEL  # noqa: E402
from engine.data.items import get_image_files  # noqa: E402
from engine.data.locate import pets_sample  # noqa: E402
from engine.predict import predict_files  # noqa: E402
from engine.serving.predictor import load_predictor  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3, help="rounds of each, alternating (default 3)")
    args = parser.parse_args()
    images = pets_sample() / "images"
    files = get_image_files(images)
    predictor, session = load_predictor(SHIPPED_MODEL), plain_session(SHIPPED_MODEL)
    print(f"{len(files)} photos; the folder CLI runs on {predictor.runtime_report}", flush=True)
    for f in files[:10]:  # warm-up
        plain_predict(session, f)
    list(predict_files(predictor, files[:32]))
    best = {"folder": 0.0, "loop": 0.0}
    labels = {}
    for r in range(args.rounds):
        start = time.perf_counter()
        got = {path: d.label for path, d, _ in predict_files(predictor, files)}
        folder = len(files) / (time.perf_counter() - start)
        start = time.perf_counter()
        plain = {f: predictor.vocab[int(plain_predict(session, f).argmax())] for f in files}
        loop = len(files) / (time.perf_counter() - start)
        best = {"folder": max(best["folder"], folder), "loop": max(best["loop"], loop)}
        labels = {f: (got[f], plain[f]) for f in files}
        print(f"round {r + 1}: folder {folder:.0f} photos/s, plain loop {loop:.0f} photos/s", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "engine.predict", str(SHIPPED_MODEL), str(images), "--csv",
                        str(Path(tmp, "breeds.csv"))], cwd=ROOT, check=True, capture_output=True)
        cli_s = time.perf_counter() - start
    figures = {"folder_ips": best["folder"], "loop_ips": best["loop"], "vs_loop": best["folder"] / best["loop"],
               "same_top1": sum(a == b for a, b in labels.values()) / len(labels), "n_photos": len(files),
               "cli_s": cli_s, "runtime": predictor.runtime.name}
    print(f"folder CLI {figures['folder_ips']:.0f} photos/s vs the plain loop {figures['loop_ips']:.0f}: "
          f"x{figures['vs_loop']:.2f} (target >= 2: {'met' if figures['vs_loop'] >= 2 else 'NOT met'}); the whole "
          f"CLI on {len(files)} photos took {cli_s:.1f} s", flush=True)
    print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in figures.items()}))


if __name__ == "__main__":
    main()
