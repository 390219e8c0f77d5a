"""Serving on onnxruntime: the exported graph, its check against PyTorch at load, the fallbacks,
int8, the lean preprocessing and the folder CLI."""

import csv
import importlib
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from engine import predict as predict_cli
from engine.data.augment import BatchAugment
from engine.data.breeds import display_name
from engine.data.files import file_hash
from engine.data.transforms import load_array
from engine.learning.fine_tune import vision_learner
from engine.serving.export import export
from engine.serving.predictor import load_predictor
from engine.testing import write_image
from tests.support.loading import load_with_warnings, meta_of

E = importlib.import_module("engine.serving.export")  # the module (engine.serving.export is also its function)
ONNX = importlib.import_module("engine.serving.onnx")
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_learner):
    return tiny_learner(tmp_path_factory.mktemp("onnx"), seed=7)


def test_the_graph_gives_pytorchs_probabilities(trained):
    learn, out = trained
    onnx_p, said = load_with_warnings(out)
    torch_p = load_predictor(out, runtime="pytorch", fast=False)
    assert onnx_p.runtime.name == "onnxruntime float32" and "checked against PyTorch" in onnx_p.runtime_report
    assert not said and torch_p.runtime.name == "pytorch"
    probs, _ = learn.get_preds("valid")
    for i, path in enumerate(learn.dls.valid.dataset.items):
        a, b = onnx_p.predict(path), torch_p.predict(path)
        assert a.label == b.label == learn.dls.vocab[int(probs[i].argmax())]
        np.testing.assert_allclose(list(a.probabilities.values()), list(b.probabilities.values()), atol=1e-4)
        np.testing.assert_allclose([p for _, p in a.imagenet.top], [p for _, p in b.imagenet.top], atol=1e-4)
        assert [n for n, _ in a.imagenet.top] == [n for n, _ in b.imagenet.top]
    tta = onnx_p.predict(learn.dls.valid.dataset.items[0], tta=True)
    assert abs(sum(tta.probabilities.values()) - 1) < 1e-5


def test_the_graph_takes_any_batch_and_both_heads(trained):
    _, out = trained
    runner = ONNX.OnnxRunner(out / meta_of(out)["onnx"]["file"])
    x = np.random.default_rng(0).uniform(0, 255, (5, 48, 48, 3)).astype(np.float32)
    breeds, inet, maps = runner.run(x)
    assert breeds.shape == (5, 3) and inet.shape == (5, 1000) and maps.shape == (5, 3, 2, 2)
    one, _, _ = runner.run(x[2:3])
    np.testing.assert_allclose(one[0], breeds[2], atol=1e-4)


def test_a_graph_that_does_not_match_is_not_used(trained, tmp_path):
    _, out = trained
    copy = tmp_path / "m"
    shutil.copytree(out, copy)
    graph = copy / meta_of(copy)["onnx"]["file"]
    graph.write_bytes(graph.read_bytes()[:-10] + b"0123456789")  # damaged: the checksum no longer matches
    p, said = load_with_warnings(copy)
    assert any("does not match meta.json" in s for s in said)
    assert p.runtime.name == "onnxruntime float32"  # auto: a graph built from the weights instead
    p, _ = load_with_warnings(copy, runtime="onnx")
    assert p.runtime.name == "pytorch"


def test_a_graph_with_other_numbers_fails_its_check_and_pytorch_answers(trained, tmp_path):
    learn, out = trained
    copy = tmp_path / "m"
    shutil.copytree(out, copy)
    meta = meta_of(copy)
    torch.manual_seed(1)
    other = vision_learner(learn.dls, progress=False)  # another (untrained) head: a different network, same shapes
    graph = copy / meta["onnx"]["file"]
    ONNX.export_onnx(other.model, learn.dls.preprocessing, graph)
    meta["onnx"]["sha256"] = file_hash(graph)  # a consistent export, with a graph that is not its model
    (copy / "meta.json").write_text(json.dumps(meta))
    p, said = load_with_warnings(copy, runtime="onnx")
    assert p.runtime.name == "pytorch" and "differ from PyTorch" in p.runtime_report
    assert len(said) == 1 and "differ from PyTorch" in said[0]  # said once
    assert p._network.built  # the PyTorch path is built at load, not at the first photo
    assert p.predict(learn.dls.valid.dataset.items[0]).label in learn.dls.vocab


def test_without_onnxruntime_pytorch_answers_and_says_why(trained, monkeypatch):
    _, out = trained
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import fails as if not installed
    p, said = load_with_warnings(out)
    assert p.runtime.name == "pytorch" and "onnxruntime is not installed" in p.runtime_report and len(said) == 1
    assert p.predict(trained[0].dls.valid.dataset.items[0]).label in trained[0].dls.vocab


def test_an_export_without_a_graph_gets_one_built_at_load(trained, tmp_path):
    learn, _ = trained
    out = export(learn, tmp_path / "plain", onnx=False)
    assert not list(out.glob("*.onnx")) and "onnx" not in meta_of(out)
    assert load_with_warnings(out)[0].runtime.name == "onnxruntime float32"
    assert load_with_warnings(out, runtime="onnx")[0].runtime.name == "pytorch"
    with pytest.raises(ValueError, match="runtime must be"):
        load_predictor(out, runtime="tensorrt")


def test_the_demo_model_ships_a_graph_that_passes_its_check(monkeypatch):
    monkeypatch.setitem(sys.modules, "openvino", None)  # onnxruntime's graphs here; OpenVINO's: test_openvino.py
    folder = ROOT / "demo" / "model"
    meta = meta_of(folder)
    assert (folder / meta["onnx"]["file"]).is_file()
    p, said = load_with_warnings(folder)
    assert p.runtime.name.startswith("onnxruntime") and not said
    figures = meta.get("int8") or meta.get("int8_rejected")  # the int8 figures are recorded either way
    assert figures["photos"] == 370 and 0 <= figures["agreement"] <= 1
    if "int8" in meta:
        assert figures["agreement"] >= E.INT8_AGREEMENT
        assert figures["valid_error_int8"] <= figures["valid_error_float32"]
        assert p.runtime.name == ("onnxruntime int8" if ONNX.has_int8_units() else "onnxruntime float32")


# --- int8 ----------------------------------------------------------------------------------------

def test_int8_quantizes_the_inner_convolutions_and_still_classifies(trained):
    import onnx

    learn, out = trained
    graph = (out / meta_of(out)["onnx"]["file"]).read_bytes()
    spec = learn.dls.preprocessing
    photos = [spec.validation_pixels(load_array(p, min_size=spec.presize))[None] for p in learn.dls.train.dataset.items]
    q = ONNX.quantize_int8(graph, photos)
    nodes = onnx.load_from_string(q).graph.node
    convs = [n for n in onnx.load_from_string(graph).graph.node if n.op_type == "Conv"]
    dequantized = {n.input[1] for n in nodes if n.op_type == "Conv"} & {n.output[0] for n in nodes
                                                                        if n.op_type == "DequantizeLinear"}
    assert sum(n.op_type == "QuantizeLinear" for n in nodes) > 10
    assert len(dequantized) == len(convs) - 2  # int8 weights in every convolution but the first and the last
    f32, q8 = ONNX.OnnxRunner(graph), ONNX.OnnxRunner(q)
    x = np.concatenate(photos)
    a, b = ONNX.probabilities(f32.run(x)[0]), ONNX.probabilities(q8.run(x)[0])
    assert np.abs(a - b).max() < 0.2 and (a.argmax(1) == b.argmax(1)).mean() >= 0.8


def test_int8_is_kept_only_when_it_agrees(trained, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "openvino", None)  # onnxruntime's graphs here; OpenVINO's: test_openvino.py
    learn, out = trained
    graph_of = {}

    def same(graph, calibration):  # a "quantization" that changes nothing: agrees everywhere
        list(calibration)
        return graph

    monkeypatch.setattr(ONNX, "quantize_int8", same)
    kept = export(learn, tmp_path / "kept", int8=True)
    meta = meta_of(kept)
    assert meta["int8"]["agreement"] == 1.0 and meta["int8"]["photos"] == 18
    assert meta["int8"]["file"].endswith(".int8.onnx") and (kept / meta["int8"]["file"]).is_file()
    monkeypatch.setattr(ONNX, "has_int8_units", lambda: True)
    assert load_predictor(kept).runtime.name == "onnxruntime int8"
    monkeypatch.setattr(ONNX, "has_int8_units", lambda: False)
    p = load_predictor(kept)
    assert p.runtime.name == "onnxruntime float32" and "no 8-bit dot-product units" in p.runtime_report

    torch.manual_seed(1)
    other = vision_learner(learn.dls, progress=False)  # another (untrained) head
    graph_of["other"] = ONNX.export_onnx(other.model, learn.dls.preprocessing)
    monkeypatch.setattr(ONNX, "quantize_int8", lambda graph, calibration: graph_of["other"])  # disagrees
    rejected = export(learn, tmp_path / "rejected", int8=True)
    meta = meta_of(rejected)
    assert "int8" not in meta and meta["int8_rejected"]["agreement"] < E.INT8_AGREEMENT
    assert not list(rejected.glob("*.int8.onnx"))


# --- lean preprocessing --------------------------------------------------------------------------

def _training_validation_pixels(predictor, path):
    """The validation input exactly as training computes it (``DataLoaders``): the same decode
    (reduced JPEG decoding included), the presize, then ``BatchAugment``'s resample on a tensor."""
    spec = predictor.preprocessing
    a = spec.presizer()(load_array(path, min_size=spec.presize), train=False)
    x = BatchAugment(spec)(torch.tensor(a).permute(2, 0, 1)[None].contiguous(), train=False)
    mean, std = torch.tensor(spec.mean).view(1, 3, 1, 1), torch.tensor(spec.std).view(1, 3, 1, 1)
    return ((x * std + mean) * 255).permute(0, 2, 3, 1).numpy()


def test_lean_preprocessing_gives_the_training_pixels(trained, tmp_path):
    _, out = trained
    p = load_predictor(out)
    for i, (w, h) in enumerate([(60, 50), (300, 200), (1200, 900), (64, 64), (41, 90)]):
        for kind in ("rgb", "cmyk", "p"):
            path = write_image(tmp_path / f"{i}-{kind}.jpg", kind, size=(w, h), seed=i)
            want = _training_validation_pixels(p, path)
            got = p.pixels(path)
            assert got.shape == want.shape == (1, 48, 48, 3)
            assert np.abs(got - want).max() < 0.01  # 0..255 scale: the same pixels


def test_lean_preprocessing_keeps_the_demo_models_answers_on_the_sample(pets_sample):
    folder = ROOT / "demo" / "model"
    p = load_predictor(folder, runtime="onnx")
    f32 = ONNX.OnnxRunner(folder / meta_of(folder)["onnx"]["file"])  # the float graph: preprocessing differences only
    names = [r["name"] for r in csv.DictReader(open(pets_sample / "labels.csv"))]
    gaps, same = [], 0
    for name in names:
        path = pets_sample / "images" / name
        want = ONNX.probabilities(f32.run(_training_validation_pixels(p, path))[0])[0]
        got = ONNX.probabilities(f32.run(p.pixels(path))[0])[0]
        gaps.append(float(np.abs(got - want).max()))
        same += int(got.argmax() == want.argmax())
    assert len(names) == 370 and max(gaps) < 0.01 and same / len(names) >= 0.99


# --- the folder CLI ------------------------------------------------------------------------------

def test_the_folder_cli_writes_a_row_per_photo_and_lists_what_it_skipped(trained, tmp_path, capsys):
    learn, out = trained
    photos = tmp_path / "photos"
    (photos / "sub").mkdir(parents=True)
    items = learn.dls.valid.dataset.items
    for i, path in enumerate(items):
        shutil.copy(path, (photos if i % 2 else photos / "sub") / path.name)
    (photos / "notes.txt").write_text("not a photo")
    (photos / "annotations.mat").write_bytes(b"MATLAB 5.0 MAT-file" + bytes(200))
    (photos / "cut.jpg").write_bytes(items[0].read_bytes()[:300])  # a truncated JPEG
    (photos / ".hidden.jpg").write_bytes(items[0].read_bytes())
    table = tmp_path / "out" / "breeds.csv"
    assert predict_cli.main([str(out), str(photos), str(tmp_path / "missing.jpg"), "--csv", str(table),
                             "--batch", "4"]) == 0
    err = capsys.readouterr().err
    rows = list(csv.DictReader(open(table)))
    predicted = [r for r in rows if not r["skipped"]]
    skipped = {Path(r["file"]).name: r["skipped"] for r in rows if r["skipped"]}
    assert len(predicted) == len(items) and not (table.parent / "breeds.csv.partial").exists()
    assert set(skipped) == {"notes.txt", "annotations.mat", "cut.jpg", "missing.jpg"}
    assert skipped["missing.jpg"] == "no such file or folder"
    assert "skipped (4):" in err and "cut.jpg" in err
    reference = load_predictor(out)
    for r in predicted:
        d = reference.predict(r["file"])
        top = sorted(d.probabilities.items(), key=lambda kv: -kv[1])[:3]
        assert [r["breed_1"], r["breed_2"], r["breed_3"]] == [b for b, _ in top]
        assert abs(float(r["p_1"]) - top[0][1]) < 1e-3 and r["not_a_pet"] in ("yes", "no")
        assert [r["name_1"], r["name_2"], r["name_3"]] == [display_name(b) for b, _ in top]  # beside the ids
        assert r["verdict"] == d.verdict and r["imagenet_1"] == d.imagenet.top[0][0]
        assert (r["not_a_pet"] == "yes") == (d.verdict == "not_a_pet")

    assert predict_cli.main([str(out), str(photos / "sub"), "--tta"]) == 0  # rows on the screen
    printed = capsys.readouterr().out.strip().splitlines()
    assert len(printed) == len([p for p in (photos / "sub").iterdir()]) and all("%" in line for line in printed)


def test_the_folder_cli_refuses_bad_arguments_clearly(trained, tmp_path, capsys):
    _, out = trained
    assert predict_cli.main([str(out), str(tmp_path / "nothing")]) == 2
    assert "nothing to predict" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert predict_cli.main([str(out), str(tmp_path / "empty")]) == 2  # an empty folder: not an empty CSV
    assert "nothing to predict" in capsys.readouterr().err
    assert predict_cli.main([str(tmp_path), str(out)]) == 2
    assert "cannot load the model" in capsys.readouterr().err
    assert predict_cli.main([str(out), str(out), "--csv", str(tmp_path)]) == 2
    assert "is a folder" in capsys.readouterr().err


def test_ctrl_c_keeps_the_rows_so_far(trained, tmp_path, monkeypatch, capsys):
    learn, out = trained
    items = learn.dls.valid.dataset.items
    calls = {"n": 0}
    real = predict_cli._answer

    def interrupted(predictor, group):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        yield from real(predictor, group)

    monkeypatch.setattr(predict_cli, "_answer", interrupted)
    table = tmp_path / "breeds.csv"
    assert predict_cli.main([str(out), *map(str, items), "--csv", str(table), "--batch", "2"]) == 130
    assert not table.exists() and "the rows so far are in" in capsys.readouterr().err
    rows = list(csv.DictReader(open(tmp_path / "breeds.csv.partial")))
    assert [Path(r["file"]).name for r in rows] == [p.name for p in items[:2]]


def test_the_recorded_check_spares_building_the_pytorch_model_at_start(trained, tmp_path):
    import subprocess

    learn, out = trained
    check = meta_of(out)["onnx"]["check"]
    assert len(check["breeds"]) == 3 and len(check["imagenet"]) == 1000 and abs(sum(check["breeds"]) - 1) < 1e-5
    p, said = load_with_warnings(out)
    assert p.runtime.name == "onnxruntime float32" and not p._network.built and not said  # not built
    photo = learn.dls.valid.dataset.items[0]
    onnx_answer = p.predict(photo).probabilities
    assert p.model is not None and p._network.built  # built when asked for (the lessons use it)
    torch_answer = load_predictor(out, runtime="pytorch", fast=False).predict(photo).probabilities
    assert max(abs(onnx_answer[k] - torch_answer[k]) for k in onnx_answer) < 1e-4

    # a start of the demo's predictor: no timm, no torchvision (seconds of imports at every start)
    code = ("import sys; from engine.serving.predictor import load_predictor; "
            f"p = load_predictor({str(ROOT / 'demo' / 'model')!r}); "
            f"print(p.runtime.name, p.predict({str(ROOT / 'demo' / 'examples' / 'pug_140.jpg')!r}).label, "
            "'timm' in sys.modules, 'torchvision' in sys.modules)")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert run.stdout.split()[-3:] == ["pug", "False", "False"], run.stdout + run.stderr

    # a recorded answer that the graph does not give (meta.json edited): PyTorch answers
    bad = tmp_path / "m"
    shutil.copytree(out, bad)
    meta = meta_of(bad)
    meta["onnx"]["check"]["breeds"] = meta["onnx"]["check"]["breeds"][::-1]
    (bad / "meta.json").write_text(json.dumps(meta))
    p, said = load_with_warnings(bad, runtime="onnx")
    assert p.runtime.name == "pytorch" and len(said) == 1 and "differ from PyTorch" in said[0]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (run on the device machine)")
def test_on_a_gpu_the_cuda_provider_or_pytorch_in_float16_answers(trained):
    from engine.serving.runtime import cuda_provider

    learn, out = trained
    p, _ = load_with_warnings(out, device="cuda")
    if cuda_provider():
        assert p.runtime.name == "onnxruntime float32"
        assert p.runtime.session.get_providers()[0] == "CUDAExecutionProvider"
    else:
        assert p.runtime.name == "pytorch" and p.runtime.dtype == torch.float16
        assert "onnxruntime-gpu" in p.runtime_report
    reference = load_predictor(out, runtime="pytorch", device="cpu", fast=False)
    for path in learn.dls.valid.dataset.items:
        a, b = p.predict(path).probabilities, reference.predict(path).probabilities
        assert max(abs(a[k] - b[k]) for k in a) < 0.02
