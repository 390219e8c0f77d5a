"""Benchmark: the web demo's prediction latency, and the server under load.

    python bench/demo.py [--seconds 30] [--clients 8]

1. latency: ``Predictor.predict_details`` on a file path (decode -> preprocess -> forward, what the
   page does for each photo), over every photo of $PETS_SAMPLE/images after a warm-up of 10 calls,
   on the CPU, with the compiled body that the demo switches to once it has compiled
   (``Predictor.compile``; ``compile_s`` is the time that took: half a minute or more the first
   time on a machine, a moment from the cache): p50 and p95 in ms (target: p50 <= 20 ms on a
   2-core machine). Beside it, in the same run and alternating photo by photo, the same predictor
   not compiled (``uncompiled_p50_ms``) and a plain baseline (PIL + torchvision resize and crop,
   the same weights in float32 without folding): ``vs_baseline`` is how many times faster we are;
2. load: ``python -m demo`` in a child process, once it has said that its model is compiled (or
   that it is not), ``--clients`` threads asking it for predictions of
   the sample photos for ``--seconds``, each with its own connection, through Gradio's HTTP API as a
   browser does (upload, start the event, read its result stream): requests/s, p50/p95 ms per
   request as a client sees it, errors (must be 0: an exception, or an answer that is not a
   prediction), and the server's peak RSS in MB (children included).

The clients run on the same CPU as the server, so the load figures include their work too. Plain
HTTP keeps that small: with a gradio_client per thread the same run managed 2.7 times fewer
requests/s (4.4 against 11.9, measured side by side on a busy machine).
The last line is one JSON object with all figures.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import demo  # noqa: E402, F401  (the server's process settings, before torch is imported)
from demo.server import DemoServer  # noqa: E402
from demo.settings import SHIPPED_MODEL  # noqa: E402
from engine.datasets import pets_path  # noqa: E402
from engine.items import get_image_files  # noqa: E402


def percentile(values: list[float], q: float) -> float:
    """The ``q``-th percentile (0-100), linear between the closest ranks."""
    s = sorted(values)
    k = (len(s) - 1) * q / 100
    lo = int(k)
    return s[lo] + (s[min(lo + 1, len(s) - 1)] - s[lo]) * (k - lo)


def plain_predict(model, tfm):
    """The straightforward way, for comparison: PIL decode, torchvision resize + centre crop,
    the same weights in float32 without folding, one forward."""
    import torch
    from PIL import Image

    def predict(path):
        with torch.inference_mode():
            x = tfm(Image.open(path).convert("RGB"))[None]
            return model(x).softmax(dim=1)

    return predict


def latency(files: list[Path], warmup: int) -> dict:
    import torch
    from torchvision.transforms import v2

    from engine.predict import load_predictor

    start = time.perf_counter()
    predictor = load_predictor(SHIPPED_MODEL).compile()  # what the demo serves once it has compiled
    compile_s = time.perf_counter() - start
    print(f"compile: {predictor.compile_report}", flush=True)
    uncompiled = load_predictor(SHIPPED_MODEL)  # the same, before compiling (BatchNorm folded, bfloat16)
    plain = load_predictor(SHIPPED_MODEL, fast=False)  # float32, BatchNorm not folded
    tfm = v2.Compose([v2.Resize(256, antialias=True), v2.CenterCrop(224), v2.PILToTensor(),
                      v2.ToDtype(torch.float32, scale=True), v2.Normalize(*plain.model.normalization)])
    baseline = plain_predict(plain.model, tfm)
    runs = {"compiled": predictor.predict_details, "uncompiled": uncompiled.predict_details, "baseline": baseline}
    for f in itertools.islice(itertools.cycle(files), warmup):
        for run in runs.values():
            run(f)
    times = {name: [] for name in runs}
    for f in files:  # alternate, so that all of them see the same machine
        for name, run in runs.items():
            start = time.perf_counter()
            run(f)
            times[name].append((time.perf_counter() - start) * 1000)
    p50, base_p50 = percentile(times["compiled"], 50), percentile(times["baseline"], 50)
    return {"p50_ms": p50, "p95_ms": percentile(times["compiled"], 95), "compiled": predictor.compiled,
            "compile_s": compile_s, "uncompiled_p50_ms": percentile(times["uncompiled"], 50),
            "baseline_p50_ms": base_p50, "vs_baseline": base_p50 / p50, "n_photos": len(files),
            "torch_threads": torch.get_num_threads(), "dtype": str(predictor.dtype).removeprefix("torch.")}


def predict_over_http(http, url: str, photo: Path) -> str:
    """One prediction through Gradio's HTTP API, as a page does it: upload the file, start the
    ``/predict`` event, read its result stream. Returns the page's message."""
    with open(photo, "rb") as f:
        uploaded = http.post(url + "gradio_api/upload", files={"files": (photo.name, f, "image/jpeg")})
    uploaded.raise_for_status()
    photo_data = {"path": uploaded.json()[0], "meta": {"_type": "gradio.FileData"}}
    started = http.post(url + "gradio_api/call/predict", json={"data": [photo_data, False]})
    started.raise_for_status()
    stream = http.get(url + f"gradio_api/call/predict/{started.json()['event_id']}")
    lines = stream.text.splitlines()  # server-sent events: "event: complete" then "data: [...]"
    if "event: complete" not in lines:
        raise RuntimeError(f"the event did not complete: {stream.text[:300]}")
    return json.loads([line for line in lines if line.startswith("data:")][-1][5:])[1]


def load_run(files: list[Path], seconds: float, clients: int) -> dict:
    import httpx
    import psutil

    with DemoServer() as server:
        said = server.wait_for_output("single photos now take the fast path", "predictions stay on the plain path")
        process = psutil.Process(server.pid)
        peak, stop = [0], threading.Event()

        def watch_memory():
            while not stop.is_set():
                try:
                    rss = sum(p.memory_info().rss for p in [process, *process.children(recursive=True)])
                    peak[0] = max(peak[0], rss)
                except psutil.Error:  # a child went away between listing and reading it
                    pass
                stop.wait(0.1)

        latencies, errors, lock = [], [], threading.Lock()
        photos = itertools.cycle(files)
        end = time.perf_counter() + seconds

        def client_loop():
            with httpx.Client(timeout=120) as http:  # one connection pool per client, as separate browsers
                while time.perf_counter() < end:
                    with lock:
                        photo = next(photos)
                    start = time.perf_counter()
                    try:
                        message = predict_over_http(http, server.url, photo)
                        ok = "ms with the shipped model" in message
                    except Exception as err:  # counted, not raised: the run goes on
                        ok, message = False, f"{type(err).__name__}: {err}"
                    with lock:
                        (latencies.append((time.perf_counter() - start) * 1000) if ok else errors.append(message))

        monitor = threading.Thread(target=watch_memory, daemon=True)
        monitor.start()
        threads = [threading.Thread(target=client_loop) for _ in range(clients)]
        started = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - started
        stop.set()
        monitor.join()
    if errors:
        print(f"{len(errors)} errors, e.g. {errors[0][:300]}", file=sys.stderr)
    return {"rps": len(latencies) / elapsed, "requests": len(latencies), "errors": len(errors),
            "load_p50_ms": percentile(latencies, 50) if latencies else None,
            "load_p95_ms": percentile(latencies, 95) if latencies else None,
            "peak_rss_mb": peak[0] / 2**20, "clients": clients, "seconds": round(elapsed, 1),
            "server_compiled": said.endswith("fast path")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=30.0, help="length of the load run (default 30)")
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients in the load run (default 8)")
    parser.add_argument("--warmup", type=int, default=10, help="predictions before timing (default 10)")
    args = parser.parse_args()
    files = get_image_files(pets_path() / "images")

    figures = latency(files, args.warmup)
    print(f"latency over {figures['n_photos']} photos (decode -> preprocess -> forward, {figures['dtype']}, "
          f"{figures['torch_threads']} threads, compiled: {figures['compiled']}): p50 {figures['p50_ms']:.1f} ms, "
          f"p95 {figures['p95_ms']:.1f} ms (target p50 <= 20 ms: {'met' if figures['p50_ms'] <= 20 else 'NOT met'}); "
          f"not compiled p50 {figures['uncompiled_p50_ms']:.1f} ms; plain baseline p50 "
          f"{figures['baseline_p50_ms']:.1f} ms, x{figures['vs_baseline']:.2f}", flush=True)
    figures.update(load_run(files, args.seconds, args.clients))
    print(f"load: {figures['clients']} clients for {figures['seconds']} s: {figures['rps']:.1f} requests/s, "
          f"p50 {figures['load_p50_ms'] or float('nan'):.0f} ms, p95 {figures['load_p95_ms'] or float('nan'):.0f} ms, "
          f"{figures['errors']} errors, server peak RSS {figures['peak_rss_mb']:.0f} MB", flush=True)
    print(json.dumps({k: round(v, 2) if isinstance(v, float) else v for k, v in figures.items()}))


if __name__ == "__main__":
    main()
