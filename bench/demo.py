"""Benchmark: the web demo's prediction latency, its start, and the server under load.

    python bench/demo.py [--seconds 30] [--clients 8]

1. latency: one photo from its file to its answer (decode -> preprocess -> forward), over every
   photo of $PETS_SAMPLE/images after a warm-up, on the CPU, taking turns (10 photos each) between
   the demo's predictor (``Predictor.predict``: the fastest checked runtime, OpenVINO bf16 on CPUs
   with bf16 units, else onnxruntime, int8 where the CPU has 8-bit dot-product units), the
   baseline (``plain_onnx.py``: a plain onnxruntime session on the float32 graph with naive PIL
   preprocessing), the PyTorch eager path (``runtime="pytorch"``: BatchNorm folded, bfloat16
   where the CPU has it), the demo's predictor without the class-activation map (the shipped
   graphs as they are: ``p50_no_map_ms``; ``map_ms`` is what the map costs, target <= 1), and the
   predictor as the demo served before issues 23 and 24 (onnxruntime, no map: ``p50_before_ms``;
   issue 23 asks that ``p50_ms`` be no worse). Targets on a 2-core machine (issue 24):
   ``p50_ms`` (with the map, as the demo serves) <= 6 and ``vs_ort_plain`` (the baseline's p50 /
   ours) >= 1.8. Two more, in the same alternation, time a whole answer of the
   predict tab in our code (the handler's work but for Gradio's: read and check the upload,
   predict, write the result files, the API's answer by id): ``answer_p50_ms`` as the page
   answers now (the map on: the plain square and the square with the map, two JPEGs), and
   ``answer_before_p50_ms`` as it answered before (the "before" predictor, one JPEG);
2. start: ``python -m demo`` in a child process with ``PATH`` holding no compiler (and ``CC`` /
   ``CXX`` unset), timed from the process start to its first answered photo: ``startup_s``
   (target <= 5, issue 24), after a first start with an empty cache folder (``startup_cold_s``)
   that left the shipped graphs with their maps in it;
3. load: on that server, ``--clients`` threads asking it for predictions, each with its own
   connection and session, in five phases:
   http           the sample photos for ``--seconds``, through Gradio's HTTP API as a browser does
                  (upload, start the event, read its result stream, download the result file the
                  page shows): requests/s, p50/p95 ms per request as a client sees it;
   noop           the same clients and photos on a no-op Gradio app of the same shape
                  (``bench/noop_app.py``: the same event, queue and launch options, an answer made
                  of nothing), started beside the demo in its own process: ``noop_rps``,
                  ``noop_p50_ms``, and ``vs_noop_gradio``, the demo's requests/s over the no-op's
                  (target >= 0.8): how close the demo comes to what Gradio itself serves here;
   same           every client the same photo, so that they all get the same preview at once;
   gradio_client  one ``gradio_client.Client`` per thread (it downloads the result files too);
   training       the http phase while one training runs in tab 4, for as long as it runs.
   Errors (must be 0 in every phase: an exception, a result file that arrives incomplete, or an
   answer that is not a prediction), and the demo server's peak RSS in MB (children included).

The clients run on the same CPU as the server, so the load figures include their work too. Plain
HTTP keeps that small: gradio_client clients manage fewer requests/s.
The last line is one JSON object with all figures.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

# The repository root, for this checkout's engine/ and demo/, and for tests/support/server.py: the
# harness that starts `python -m demo` in a child process, shared with the tests (not in the package).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from plain_onnx import percentile, plain_predict, plain_session  # noqa: E402

import demo  # noqa: E402, F401  (the server's process settings, before torch is imported)
from demo.outputs import image_file  # noqa: E402
from demo.settings import SHIPPED_MODEL  # noqa: E402
from engine.data.items import get_image_files  # noqa: E402
from engine.data.locate import pets_sample  # noqa: E402
from tests.support.server import DemoServer  # noqa: E402

NOOP_APP = Path(__file__).resolve().with_name("noop_app.py")
BLOCK = 10  # photos in a row on one runtime before the next takes its turn (see ``latency``)


def answer(predictor, photo: Path) -> dict:
    """One answer of the predict tab in our code, as its handler gives it (``predict_tab.build_predict_tab``'s
    ``predict``, without Gradio): the upload read and checked, the prediction, the result files (the
    square with the map too, when the predictor gives a map) and the answer by id."""
    from demo.predict_tab import api_answer, looked_file, predict_photo

    verdict = predict_photo(str(photo), predictor)
    image_file(verdict.preview, name="what-it-saw")
    looked_file(verdict)
    return api_answer(verdict)


def latency(files: list[Path], warmup: int) -> dict:
    from engine.serving.predictor import load_predictor

    predictor = load_predictor(SHIPPED_MODEL)  # what the demo serves
    print(f"the demo's predictor: {predictor.runtime_report}", flush=True)
    eager = load_predictor(SHIPPED_MODEL, runtime="pytorch")
    session = plain_session(SHIPPED_MODEL)
    no_map = load_predictor(SHIPPED_MODEL, maps=False)
    before = load_predictor(SHIPPED_MODEL, runtime="onnx", maps=False)  # as the demo served before issues 23-24
    runs = {"demo": predictor.predict, "ort_plain": lambda f: plain_predict(session, f),
            "pytorch": eager.predict, "no_map": no_map.predict, "before": before.predict,
            "answer": lambda f: answer(predictor, f), "answer_before": lambda f: answer(before, f)}
    for f in itertools.islice(itertools.cycle(files), warmup):
        for run in runs.values():
            run(f)
    times = {name: [] for name in runs}
    labels, plain_labels = {}, {}
    # Taking turns, so that all of them see the same machine: a block of BLOCK photos each, not one
    # photo each. After a forward pass a runtime's idle threads may spin for a while (the plain
    # onnxruntime session's do, by default, and PyTorch's OpenMP threads), and each runtime evicts
    # the others' weights from the caches; photo by photo, every runtime would pay for the one
    # before it, which never happens in the demo, where one runtime answers. Measured on this
    # machine: the demo's predictor 5.6 ms alone, 6.6 ms photo by photo after the plain session,
    # 7.1 ms after PyTorch; 5.8 ms in blocks of 10.
    for i in range(0, len(files), BLOCK):
        for name, run in runs.items():
            for f in files[i:i + BLOCK]:
                start = time.perf_counter()
                out = run(f)
                times[name].append((time.perf_counter() - start) * 1000)
                if name == "demo":
                    labels[f] = out.label
                elif name == "ort_plain":
                    plain_labels[f] = predictor.vocab[int(out.argmax())]
    agree = sum(labels[f] == plain_labels[f] for f in files)
    p50, base_p50 = percentile(times["demo"], 50), percentile(times["ort_plain"], 50)
    return {"p50_ms": p50, "p95_ms": percentile(times["demo"], 95), "runtime": predictor.runtime.name,
            "ort_plain_p50_ms": base_p50, "vs_ort_plain": base_p50 / p50,
            "pytorch_p50_ms": percentile(times["pytorch"], 50), "vs_pytorch": percentile(times["pytorch"], 50) / p50,
            "p50_no_map_ms": percentile(times["no_map"], 50), "map_ms": p50 - percentile(times["no_map"], 50),
            "p50_before_ms": percentile(times["before"], 50), "before_runtime": before.runtime.name,
            "answer_p50_ms": percentile(times["answer"], 50),
            "answer_before_p50_ms": percentile(times["answer_before"], 50),
            "same_label_as_plain": agree / len(files), "n_photos": len(files)}


def predict_over_http(raw, photo: Path, fn_index: int) -> str:
    """One prediction through Gradio's HTTP API, as a page does it: upload the file, run the
    ``/predict`` event, read its result stream, and download the result file the page shows (the
    square with the map) as a browser does. Returns the page's message; raises when anything
    arrives incomplete."""
    output, error, _ = raw.call(fn_index, [raw.upload(photo), False])
    if output is None:
        raise RuntimeError(f"the event failed: {error}")
    if output[3] is not None:
        raw.fetch(output[3])  # checks the Content-Length against what arrived
    if not output[4] or not output[4].get("label"):
        raise RuntimeError(f"no breed id in the API's answer: {output[4]}")
    return output[1]


def predict_with_gradio_client(client, photo: Path) -> str:
    """The same through ``gradio_client``, which also downloads the result files."""
    import gradio_client

    _, message, _, looked, _ = client.predict(gradio_client.handle_file(str(photo)), False, api_name="/predict")
    if looked is None or not Path(looked).stat().st_size:
        raise RuntimeError("no preview file")
    return message


def load_phase(server, files: list[Path], seconds: float | None, clients: int, kind: str,
               until: threading.Event | None = None) -> dict:
    """``clients`` threads predicting for ``seconds`` (or until ``until`` is set): plain HTTP with
    the page's result file fetched (``kind`` "http"; on the no-op app too), all on the same photo
    ("same"), or through gradio_client ("gradio_client"). Returns requests/s, p50/p95 and the errors."""
    import gradio_client

    from tests.support.server import RawClient

    latencies, errors, lock = [], [], threading.Lock()
    photos = itertools.cycle(files[:1] if kind == "same" else files)
    end = time.perf_counter() + (seconds if seconds is not None else 1e9)

    def running() -> bool:
        return time.perf_counter() < end and not (until is not None and until.is_set())

    def client_loop(i: int):
        if kind == "gradio_client":
            client = gradio_client.Client(server.url, verbose=False)
            ask = lambda photo: predict_with_gradio_client(client, photo)  # noqa: E731
        else:
            # one connection pool, session and address per client, as separate visitors (the server tells
            # visitors apart by address; gradio_client cannot choose one, so its clients share 127.0.0.1)
            raw = RawClient(server.url, source=f"127.0.6.{i + 1}")
            fn = raw.fn_index("predict")
            ask = lambda photo: predict_over_http(raw, photo, fn)  # noqa: E731
        while running():
            with lock:
                photo = next(photos)
            start = time.perf_counter()
            try:
                ok, message = True, ask(photo)
                ok = "ms with the shipped model" in message or "ms with the no-op app" in message
            except Exception as err:  # counted, not raised: the run goes on
                ok, message = False, f"{type(err).__name__}: {err}"
            with lock:
                (latencies.append((time.perf_counter() - start) * 1000) if ok else errors.append(message))

    threads = [threading.Thread(target=client_loop, args=(i,)) for i in range(clients)]
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
    """The server's start with no compiler on PATH, then the server under load, phase by phase;
    peak RSS over all of them."""
    import psutil

    from tests.support.server import RawClient

    no_compilers = tempfile.mkdtemp(prefix="petbreeds-no-compilers-")  # an empty folder as the whole PATH
    # A cache folder of its own, empty at the first start (a new machine): the shipped graphs get their
    # maps added and kept there (engine/serving/maps_cache.py); the second start, measured the same way,
    # finds them, as every later start of a classroom server does.
    home = tempfile.mkdtemp(prefix="petbreeds-bench-home-")
    env = {"PATH": no_compilers, "CC": None, "CXX": None, "PETBREEDS_HOME": home}
    # The clients upload a photo per request, far more than a visitor's quota: it is lifted here, since
    # this measures what the server can serve, not what one visitor may ask.
    lifted = ["--uploads-per-minute", "1000000"]

    def first_answer(server) -> float:
        raw = RawClient(server.url)
        first = predict_over_http(raw, files[0], raw.fn_index("predict"))
        if "ms with the shipped model" not in first:
            raise RuntimeError(f"the first answer is not a prediction: {first[:300]}")
        return time.perf_counter() - started

    started = time.perf_counter()
    with DemoServer(lifted, env=env) as server:
        startup_cold_s = first_answer(server)
    print(f"start with an empty cache: first photo answered {startup_cold_s:.1f} s after the process started",
          flush=True)
    started = time.perf_counter()
    with DemoServer(lifted, env=env) as server:
        startup_s = first_answer(server)
        runtime = next((line.split("answers on ", 1)[1] for line in server.output(last=None).splitlines()
                        if "the model answers on" in line), "not said")
        print(f"start: first photo answered {startup_s:.1f} s after the process started, with no compiler on PATH",
              flush=True)
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
        phases = {"http": load_phase(server, files, seconds, clients, "http")}
        print(f"load, http: {phases['http']}", flush=True)
        with DemoServer(program=[str(NOOP_APP)]) as noop:  # beside the demo, which idles meanwhile
            warm = RawClient(noop.url)
            predict_over_http(warm, files[0], warm.fn_index("predict"))  # its first answer, not timed
            phases["noop"] = load_phase(noop, files, seconds, clients, "http")
        print(f"load, http on the no-op Gradio app of the same shape: {phases['noop']}", flush=True)
        for kind in ("same", "gradio_client"):
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
    shutil.rmtree(home, ignore_errors=True)
    main = phases["http"]
    return {"rps": main["rps"], "requests": main["requests"], "errors": sum(p["errors"] for p in phases.values()),
            "load_p50_ms": main["p50_ms"], "load_p95_ms": main["p95_ms"],
            "noop_rps": phases["noop"]["rps"], "noop_p50_ms": phases["noop"]["p50_ms"],
            "noop_p95_ms": phases["noop"]["p95_ms"], "noop_errors": phases["noop"]["errors"],
            "vs_noop_gradio": main["rps"] / phases["noop"]["rps"] if phases["noop"]["rps"] else None,
            "same_photo_errors": phases["same"]["errors"], "same_photo_rps": phases["same"]["rps"],
            "gradio_client_errors": phases["gradio_client"]["errors"],
            "gradio_client_rps": phases["gradio_client"]["rps"],
            "training_errors": phases["training"]["errors"], "training_p95_ms": phases["training"]["p95_ms"],
            "training_requests": phases["training"]["requests"], "training_s": phases["training"]["train_s"],
            "training_done": phases["training"]["trained"],
            "peak_rss_mb": peak[0] / 2**20, "clients": clients, "startup_s": startup_s,
            "startup_cold_s": startup_cold_s, "server_runtime": runtime}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=30.0, help="length of the load run (default 30)")
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients in the load run (default 8)")
    parser.add_argument("--warmup", type=int, default=10, help="predictions before timing (default 10)")
    args = parser.parse_args()
    files = get_image_files(pets_sample() / "images")

    folder = tempfile.mkdtemp(prefix="petbreeds-bench-results-")  # the latency phase's result files
    os.environ["GRADIO_TEMP_DIR"], before = folder, os.environ.get("GRADIO_TEMP_DIR")
    try:
        figures = latency(files, args.warmup)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        os.environ.pop("GRADIO_TEMP_DIR") if before is None else os.environ.update(GRADIO_TEMP_DIR=before)
    met = lambda ok: "met" if ok else "NOT met"  # noqa: E731
    print(f"latency over {figures['n_photos']} photos (decode -> preprocess -> forward, {figures['runtime']}): "
          f"p50 {figures['p50_ms']:.1f} ms with the map, as the demo serves (p50_ms), p95 {figures['p95_ms']:.1f} ms "
          f"(target p50 <= 6 ms: {met(figures['p50_ms'] <= 6)}); plain onnxruntime + naive PIL p50 "
          f"{figures['ort_plain_p50_ms']:.1f} ms, x{figures['vs_ort_plain']:.2f} (target >= 1.8: "
          f"{met(figures['vs_ort_plain'] >= 1.8)}); PyTorch eager p50 {figures['pytorch_p50_ms']:.1f} ms; "
          f"the same runtime without the map (p50_no_map_ms) {figures['p50_no_map_ms']:.1f} ms (the map costs "
          f"{figures['map_ms']:.2f} ms, target <= 1: {met(figures['map_ms'] <= 1)}); as the demo served before "
          f"issues 23-24 ({figures['before_runtime']}, no map: p50_before_ms) {figures['p50_before_ms']:.1f} ms "
          f"(issue 23: the map on no worse: {met(figures['p50_ms'] <= figures['p50_before_ms'])})", flush=True)
    print(f"the predict tab's whole answer in our code (read, predict, result files, ids): p50 "
          f"{figures['answer_p50_ms']:.1f} ms with the map on (answer_p50_ms), "
          f"{figures['answer_before_p50_ms']:.1f} ms as before issues 23-24, no map and one JPEG "
          f"(answer_before_p50_ms); issue 23's \"no worse\": "
          f"{met(figures['answer_p50_ms'] <= figures['answer_before_p50_ms'])}", flush=True)
    figures.update(load_run(files, args.seconds, args.clients))
    print(f"load: {figures['clients']} clients: {figures['rps']:.1f} requests/s, p50 "
          f"{figures['load_p50_ms'] or float('nan'):.0f} ms, p95 {figures['load_p95_ms'] or float('nan'):.0f} ms; "
          f"the no-op Gradio app of the same shape {figures['noop_rps']:.1f} requests/s, p50 "
          f"{figures['noop_p50_ms'] or float('nan'):.0f} ms: vs_noop_gradio {figures['vs_noop_gradio'] or 0:.2f} "
          f"(target >= 0.8: {met((figures['vs_noop_gradio'] or 0) >= 0.8)}); "
          f"{figures['errors']} errors in all phases (no-op {figures['noop_errors']}, same photo "
          f"{figures['same_photo_errors']}, gradio_client "
          f"{figures['gradio_client_errors']}, during a training {figures['training_errors']}, p95 "
          f"{figures['training_p95_ms'] or float('nan'):.0f} ms); server peak RSS {figures['peak_rss_mb']:.0f} MB; "
          f"start to first answer {figures['startup_s']:.1f} s (target <= 5 s: {met(figures['startup_s'] <= 5)}; "
          f"the first start, with an empty cache: {figures['startup_cold_s']:.1f} s)",
          flush=True)
    print(json.dumps({k: round(v, 2) if isinstance(v, float) else v for k, v in figures.items()}))


if __name__ == "__main__":
    main()
