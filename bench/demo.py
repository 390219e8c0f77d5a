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
   that it is not), ``--clients`` threads asking it for predictions, each with its own connection
   and session, in four phases:
   http           the sample photos for ``--seconds``, through Gradio's HTTP API as a browser does
                  (upload, start the event, read its result stream, download the result file):
                  requests/s, p50/p95 ms per request as a client sees it;
   same           every client the same photo, so that they all get the same preview at once;
   gradio_client  one ``gradio_client.Client`` per thread (it downloads the result files too);
   training       the http phase while one training runs in tab 4, for as long as it runs.
   Errors (must be 0 in every phase: an exception, a result file that arrives incomplete, or an
   answer that is not a prediction), and the server's peak RSS in MB (children included).

The clients run on the same CPU as the server, so the load figures include their work too. Plain
HTTP keeps that small: gradio_client clients manage fewer requests/s.
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
from engine.datasets import pets_sample  # noqa: E402
from engine.data.items import get_image_files  # noqa: E402


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

    from engine.serving.predictor import load_predictor

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


def predict_over_http(raw, photo: Path, fn_index: int) -> str:
    """One prediction through Gradio's HTTP API, as a page does it: upload the file, run the
    ``/predict`` event, read its result stream, and download the result file (the preview) as a
    browser does. Returns the page's message; raises when anything arrives incomplete."""
    output, error, _ = raw.call(fn_index, [raw.upload(photo), False])
    if output is None:
        raise RuntimeError(f"the event failed: {error}")
    if output[2] is not None:
        raw.fetch(output[2])  # checks the Content-Length against what arrived
    return output[1]


def predict_with_gradio_client(client, photo: Path) -> str:
    """The same through ``gradio_client``, which also downloads the result file."""
    import gradio_client

    _, message, preview = client.predict(gradio_client.handle_file(str(photo)), False, api_name="/predict")
    if preview is None or not Path(preview).stat().st_size:
        raise RuntimeError("no preview file")
    return message


def load_phase(server, files: list[Path], seconds: float | None, clients: int, kind: str,
               until: threading.Event | None = None) -> dict:
    """``clients`` threads predicting for ``seconds`` (or until ``until`` is set): plain HTTP with
    every result file fetched (``kind`` "http"), all on the same photo ("same"), or through
    gradio_client ("gradio_client"). Returns requests/s, p50/p95 and the errors."""
    import gradio_client

    from demo.server import RawClient

    latencies, errors, lock = [], [], threading.Lock()
    photos = itertools.cycle(files[:1] if kind == "same" else files)
    end = time.perf_counter() + (seconds if seconds is not None else 1e9)

    def running() -> bool:
        return time.perf_counter() < end and not (until is not None and until.is_set())

    def client_loop():
        if kind == "gradio_client":
            client = gradio_client.Client(server.url, verbose=False)
            ask = lambda photo: predict_with_gradio_client(client, photo)  # noqa: E731
        else:
            raw = RawClient(server.url)  # one connection pool and session per client, as separate browsers
            fn = raw.fn_index("predict")
            ask = lambda photo: predict_over_http(raw, photo, fn)  # noqa: E731
        while running():
            with lock:
                photo = next(photos)
            start = time.perf_counter()
            try:
                ok, message = True, ask(photo)
                ok = "ms with the shipped model" in message
            except Exception as err:  # counted, not raised: the run goes on
                ok, message = False, f"{type(err).__name__}: {err}"
            with lock:
                (latencies.append((time.perf_counter() - start) * 1000) if ok else errors.append(message))

    threads = [threading.Thread(target=client_loop) for _ in range(clients)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    if errors:
        print(f"  {kind}: {len(errors)} errors, e.g. {errors[0][:300]}", file=sys.stderr)
    return {"rps": len(latencies) / elapsed, "requests": len(latencies), "errors": len(errors),
            "p50_ms": percentile(latencies, 50) if latencies else None,
            "p95_ms": percentile(latencies, 95) if latencies else None, "seconds": round(elapsed, 1)}


def load_run(files: list[Path], seconds: float, clients: int) -> dict:
    """The server under load, phase by phase; peak RSS over all of them."""
    import psutil

    from demo.server import RawClient

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

        monitor = threading.Thread(target=watch_memory, daemon=True)
        monitor.start()
        phases = {}
        for kind in ("http", "same", "gradio_client"):
            phases[kind] = load_phase(server, files, seconds, clients, kind)
            print(f"load, {kind}: {phases[kind]}", flush=True)
        trainer = RawClient(server.url)
        done, result = threading.Event(), {}

        def train():
            output, error, _ = trainer.call(trainer.fn_index("train"), [0, 8, True, 0.002, False])
            result["status"] = (output or [str(error)])[0]
            done.set()

        training = threading.Thread(target=train)
        t0 = time.perf_counter()
        training.start()
        phases["training"] = load_phase(server, files, None, clients, "http", until=done)
        training.join()
        phases["training"]["train_s"] = round(time.perf_counter() - t0, 1)
        phases["training"]["trained"] = "Done in" in result.get("status", "")
        print(f"load while one training runs: {phases['training']}", flush=True)
        stop.set()
        monitor.join()
    main = phases["http"]
    return {"rps": main["rps"], "requests": main["requests"], "errors": sum(p["errors"] for p in phases.values()),
            "load_p50_ms": main["p50_ms"], "load_p95_ms": main["p95_ms"],
            "same_photo_errors": phases["same"]["errors"], "same_photo_rps": phases["same"]["rps"],
            "gradio_client_errors": phases["gradio_client"]["errors"], "gradio_client_rps": phases["gradio_client"]["rps"],
            "training_errors": phases["training"]["errors"], "training_p95_ms": phases["training"]["p95_ms"],
            "training_requests": phases["training"]["requests"], "training_s": phases["training"]["train_s"],
            "training_done": phases["training"]["trained"],
            "peak_rss_mb": peak[0] / 2**20, "clients": clients, "server_compiled": said.endswith("fast path")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=30.0, help="length of the load run (default 30)")
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients in the load run (default 8)")
    parser.add_argument("--warmup", type=int, default=10, help="predictions before timing (default 10)")
    args = parser.parse_args()
    files = get_image_files(pets_sample() / "images")

    figures = latency(files, args.warmup)
    print(f"latency over {figures['n_photos']} photos (decode -> preprocess -> forward, {figures['dtype']}, "
          f"{figures['torch_threads']} threads, compiled: {figures['compiled']}): p50 {figures['p50_ms']:.1f} ms, "
          f"p95 {figures['p95_ms']:.1f} ms (target p50 <= 20 ms: {'met' if figures['p50_ms'] <= 20 else 'NOT met'}); "
          f"not compiled p50 {figures['uncompiled_p50_ms']:.1f} ms; plain baseline p50 "
          f"{figures['baseline_p50_ms']:.1f} ms, x{figures['vs_baseline']:.2f}", flush=True)
    figures.update(load_run(files, args.seconds, args.clients))
    print(f"load: {figures['clients']} clients: {figures['rps']:.1f} requests/s, p50 "
          f"{figures['load_p50_ms'] or float('nan'):.0f} ms, p95 {figures['load_p95_ms'] or float('nan'):.0f} ms; "
          f"{figures['errors']} errors in all phases (same photo {figures['same_photo_errors']}, gradio_client "
          f"{figures['gradio_client_errors']}, during a training {figures['training_errors']}, p95 "
          f"{figures['training_p95_ms'] or float('nan'):.0f} ms); server peak RSS {figures['peak_rss_mb']:.0f} MB",
          flush=True)
    print(json.dumps({k: round(v, 2) if isinstance(v, float) else v for k, v in figures.items()}))


if __name__ == "__main__":
    main()
