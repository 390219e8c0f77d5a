"""OpenVINO beside onnxruntime: the same graph's answers, the choice by measured speed (with fake
timings: never a timing assertion), every fallback said once, telemetry off, and the figures an
export records (``engine/serving/openvino_runtime.py``, ``measure.py``, ``runtime.py``)."""

import csv
import hashlib
import importlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from engine.serving.export import export
from tests.support.loading import load_with_warnings, meta_of

pytest.importorskip("openvino")

OV = importlib.import_module("engine.serving.openvino_runtime")
R = importlib.import_module("engine.serving.runtime")
ONNX = importlib.import_module("engine.serving.onnx")
E = importlib.import_module("engine.serving.export")
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def measured(tmp_path_factory, tiny_learner):
    """A tiny model exported with int8=True: its meta.json has OpenVINO's figures and the timings,
    and the meta.json it was written with. No int8 graph is kept (its quantization is skipped), so
    onnxruntime's candidate is the float graph. The tiny model's breeds are nearly tied, so bf16
    may name another on a photo or two: its agreement is then set to what the demo's model measured
    (every photo), for the tests of the choice; the check at load is the real one."""
    learn, _ = tiny_learner(tmp_path_factory.mktemp("ov"), seed=7)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(E, "_int8_copy", lambda *args: {})
        out = export(learn, tmp_path_factory.mktemp("ov-export") / "model", int8=True)
    raw = meta_of(out)
    if "bf16" in raw.get("openvino", {}):
        meta = json.loads(json.dumps(raw))
        meta["openvino"]["bf16"].update(agreement=1.0, valid_error_bf16=meta["openvino"]["bf16"]["valid_error_float32"])
        (out / "meta.json").write_text(json.dumps(meta))
    return learn, out, raw


def _timings(**ms):
    """A fake ``time_runtimes``: these milliseconds, whatever the runtimes do."""
    return lambda runtimes, size: {name: ms[name.replace(" ", "_")] for name in runtimes}


def test_openvino_gives_the_graphs_answers(measured):
    _, out, _ = measured
    graph = (out / meta_of(out)["onnx"]["file"]).read_bytes()
    x = np.random.default_rng(0).uniform(0, 255, (3, 48, 48, 3)).astype(np.float32)
    want = ONNX.OnnxRunner(graph).run(x)
    f32 = OV.OpenVinoRuntime(graph, "f32")
    got = f32.run(x)
    assert f32.name == "openvino f32" and [g.shape for g in got] == [w.shape for w in want]  # maps included
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, atol=1e-3, rtol=1e-3)
    bf16 = OV.OpenVinoRuntime(graph, "bf16").run(x)  # on a CPU without bf16 units OpenVINO computes in f32
    assert np.abs(ONNX.probabilities(bf16[0]) - ONNX.probabilities(want[0])).max() < 0.1
    with pytest.raises(ValueError, match="precision must be"):
        OV.OpenVinoRuntime(graph, "int4")


def test_an_int8_export_records_openvinos_agreement_and_every_runtimes_time(measured):
    _, _, meta = measured
    ms = meta["runtime_ms"]
    assert {"onnxruntime float32", "openvino " + OV.openvino_precision()} <= set(ms) and ms["photos"] == 18
    assert all(ms[k] > 0 for k in ms if k.split()[0] in R.RUNTIMES)
    if OV.bf16_units():
        bf16 = meta["openvino"]["bf16"]
        assert bf16["photos"] == 18 and 0.5 <= bf16["agreement"] <= 1 and 0 <= bf16["max_probability_gap"] < 0.5
        assert bf16["tolerance"] == pytest.approx(bf16["check_gap"] + R.TOLERANCE, abs=2e-4)


@pytest.mark.skipif(not OV.bf16_units(), reason="this CPU has no bf16 units")
def test_the_faster_runtime_answers_and_the_report_says_why(measured, monkeypatch):
    learn, out, _ = measured
    monkeypatch.setattr(R, "time_runtimes", _timings(openvino_bf16=2.5, onnxruntime_float32=7.0))
    p, said = load_with_warnings(out)
    assert p.runtime.name == "openvino bf16" and not said
    assert p.runtime_report.startswith("openvino bf16, 2.5 ms vs onnxruntime float32 7.0 ms here (at export: ")
    assert "checked against PyTorch" in p.runtime_report
    assert p.predict(learn.dls.valid.dataset.items[0]).cam is not None  # the maps come through
    monkeypatch.setattr(R, "time_runtimes", _timings(openvino_bf16=9.0, onnxruntime_float32=7.0))
    assert load_with_warnings(out)[0].runtime.name == "onnxruntime float32"
    # one runtime: nothing to time
    assert load_with_warnings(out, runtime="openvino")[0].runtime.name == "openvino bf16"
    assert load_with_warnings(out, runtime="onnx")[0].runtime.name == "onnxruntime float32"


def test_without_openvino_onnxruntime_answers_and_says_so_once(measured, monkeypatch):
    _, out, _ = measured
    monkeypatch.setitem(sys.modules, "openvino", None)  # import fails as if not installed
    p, said = load_with_warnings(out)
    assert p.runtime.name == "onnxruntime float32" and not said
    assert p.runtime_report.count("OpenVINO is not installed") == 1


@pytest.mark.skipif(not OV.bf16_units(), reason="this CPU has no bf16 units")
def test_openvino_that_fails_its_check_is_not_used(measured, monkeypatch):
    _, out, _ = measured
    run = OV.OpenVinoRuntime.run

    def shifted(self, pixels):  # the first breed's logit up by 3: a runtime that computes something else
        breeds, inet, maps = run(self, pixels)
        return breeds + np.eye(breeds.shape[1], dtype=breeds.dtype)[0] * 3, inet, maps

    monkeypatch.setattr(OV.OpenVinoRuntime, "run", shifted)
    monkeypatch.setattr(R, "time_runtimes", lambda *a: pytest.fail("one runtime passed: nothing to time"))
    p, said = load_with_warnings(out)
    assert p.runtime.name == "onnxruntime float32" and not said
    assert p.runtime_report.count("openvino bf16 is not used (ValueError: its probabilities differ") == 1


def test_a_compile_error_leaves_onnxruntime(measured, monkeypatch):
    _, out, _ = measured

    def broken(*args, **kwargs):
        raise RuntimeError("Exception from src/plugins/intel_cpu: unsupported node")

    monkeypatch.setattr(OV, "OpenVinoRuntime", broken)
    p, said = load_with_warnings(out)
    assert p.runtime.name == "onnxruntime float32" and not said
    assert p.runtime_report.count("is not used (RuntimeError: Exception from src/plugins/intel_cpu") == 1


def test_without_bf16_units_openvino_f32_is_timed_against_onnxruntime(measured, monkeypatch):
    learn, out, _ = measured
    monkeypatch.setattr(OV, "bf16_units", lambda: False)
    monkeypatch.setattr(R, "time_runtimes", _timings(openvino_f32=4.0, onnxruntime_float32=7.0))
    p, said = load_with_warnings(out)
    assert p.runtime.name == "openvino f32" and not said
    assert "no bf16 units" in p.runtime_report and "4.0 ms vs onnxruntime float32 7.0 ms" in p.runtime_report
    monkeypatch.setattr(R, "time_runtimes", _timings(openvino_f32=8.0, onnxruntime_float32=7.0))
    p, _ = load_with_warnings(out)
    assert p.runtime.name == "onnxruntime float32"
    a, b = p.predict(learn.dls.valid.dataset.items[0]), load_with_warnings(out, runtime="openvino")[0].predict(
        learn.dls.valid.dataset.items[0])
    np.testing.assert_allclose(list(a.probabilities.values()), list(b.probabilities.values()), atol=1e-4)


def test_reduced_precision_needs_figures_measured_at_export(measured, tmp_path, monkeypatch):
    _, out, _ = measured
    monkeypatch.setattr(OV, "bf16_units", lambda: True)
    cases = {"unmeasured": (None, "the export did not measure it on photos"),
             "disagrees": ({"agreement": 0.98}, "on 98.0% of the photos"),
             "worse": ({"valid_error_bf16": 0.5, "valid_error_float32": 0.25}, "a worse validation error"),
             "unreadable": ({"agreement": "all"}, "cannot be read"),
             "not a number": ({"agreement": float("nan")}, "on nan% of the photos"),
             "loose": ({"tolerance": 7}, "not a probability gap")}
    for case, (change, why) in cases.items():
        copy = tmp_path / case
        shutil.copytree(out, copy)
        meta = meta_of(copy)
        good = {"agreement": 1.0, "photos": 18, "valid_error_float32": 0.0, "valid_error_bf16": 0.0, "tolerance": 0.05}
        meta["openvino"] = {"bf16": None if change is None else {**good, **change}}
        (copy / "meta.json").write_text(json.dumps(meta))
        p, said = load_with_warnings(copy)
        assert p.runtime.name == "onnxruntime float32" and not said, case
        assert "openvino bf16 is not used: " in p.runtime_report and why in p.runtime_report, case
    plain = export(measured[0], tmp_path / "plain")  # measured nothing: OpenVINO is not even imported for it
    p, _ = load_with_warnings(plain)
    assert p.runtime.name == "onnxruntime float32" and "the export did not measure it" in p.runtime_report


def test_a_gpu_never_gets_openvino(measured):
    _, out, _ = measured
    graph = (out / meta_of(out)["onnx"]["file"]).read_bytes()
    reasons = []
    names = [c[0] for c in R._candidates(torch.device("cuda"), 48, graph, None, reasons, meta_of(out))]
    assert not any(n.startswith("openvino") for n in names)
    assert [c[0] for c in R._candidates(torch.device("cpu"), 48, graph, None, [], meta_of(out))][-1].startswith(
        "openvino")  # the same export on the CPU: OpenVINO is a candidate


def test_openvinos_telemetry_stays_off(tmp_path):
    """Importing OpenVINO as the engine does uses OpenVINO's own stub instead of its telemetry
    package: no connection is tried and nothing is written to the home folder. (A plain
    ``import openvino`` writes ~/intel/, and sends an event unless one opted out.)"""
    script = """
import os, socket, sys, time
tried = []
def refuse(*args, **kwargs):
    tried.append(args)
    raise OSError("no network in this test")
socket.socket.connect = refuse
socket.create_connection = refuse
socket.getaddrinfo = refuse
if sys.argv[1] == "engine":
    from engine.serving.openvino_runtime import import_openvino
    import_openvino().Core()
else:
    import openvino
import openvino.tools.ovc.telemetry_utils as tu
time.sleep(0.5)
print(tu.tm.__name__, len(tried), os.path.exists(os.path.join(os.environ["HOME"], "intel")))
"""
    def run(how):
        home = tmp_path / how
        home.mkdir()
        env = {**os.environ, "HOME": str(home), "CI": "", "PYTHONPATH": str(ROOT)}
        done = subprocess.run([sys.executable, "-c", script, how], env=env, capture_output=True, text=True,
                              timeout=120)
        assert done.returncode == 0, done.stderr
        return done.stdout.split()

    assert run("engine") == ["openvino.tools.ovc.telemetry_stub", "0", "False"]
    assert run("plain")[0] == "openvino_telemetry"  # what the engine avoids: the real package, at import


@pytest.mark.skipif(not OV.bf16_units(), reason="this CPU has no bf16 units")
def test_the_demo_model_records_openvino_and_passes_its_check(monkeypatch):
    folder = ROOT / "demo" / "model"
    meta = meta_of(folder)
    bf16 = meta["openvino"]["bf16"]
    assert bf16["photos"] == 370 and bf16["agreement"] >= OV.REDUCED_AGREEMENT
    assert bf16["valid_error_bf16"] <= bf16["valid_error_float32"]
    assert bf16["tolerance"] <= bf16["check_gap"] + R.TOLERANCE + 1e-9 < 0.1
    monkeypatch.setattr(R, "time_runtimes", _timings(openvino_bf16=1.0, onnxruntime_int8=2.0,
                                                     onnxruntime_float32=3.0))
    p, said = load_with_warnings(folder)
    assert p.runtime.name == "openvino bf16" and not said


def test_measuring_an_export_changes_only_its_meta_json(pets_sample, tmp_path):
    copy = tmp_path / "model"
    shutil.copytree(ROOT / "demo" / "model", copy)
    sample = tmp_path / "sample"
    (sample / "images").mkdir(parents=True)
    with open(pets_sample / "labels.csv", newline="") as f:
        rows = list(csv.DictReader(f))[:6]
    with open(sample / "labels.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    for r in rows:
        (sample / "images" / r["name"]).symlink_to(pets_sample / "images" / r["name"])

    def sums():
        return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in copy.iterdir() if p.name != "meta.json"}

    before, meta = sums(), meta_of(copy)
    done = subprocess.run([sys.executable, "bench/runtimes.py", str(copy), "--sample", str(sample)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    assert sums() == before
    after = meta_of(copy)
    assert after["runtime_ms"]["photos"] == 6 and after["runtime_ms"] == figures["runtime_ms"]
    assert {k: v for k, v in after.items() if k not in ("runtime_ms", "openvino")} == \
        {k: v for k, v in meta.items() if k not in ("runtime_ms", "openvino")}
    if OV.bf16_units():
        assert after["openvino"]["bf16"]["photos"] == 6
