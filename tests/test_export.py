"""Export to safetensors + JSON, and prediction that never unpickles."""

import json
import pickle

import numpy as np
import pytest
import torch
from PIL import Image

from engine.serving.export import export
from engine.serving.exported import PickleRefused, read_export
from engine.serving.fold import fold_batchnorm
from engine.serving.predictor import load_predictor
from engine.testing import write_image


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_learner):
    return tiny_learner(tmp_path_factory.mktemp("exp"), seed=5)


def weights_of(folder):
    """The weights file an export's meta.json names."""
    return folder / json.loads((folder / "meta.json").read_text())["weights"]


def test_export_writes_plain_files_named_by_their_content(trained):
    import hashlib

    learn, out = trained
    meta = json.loads((out / "meta.json").read_text())
    assert sorted(p.name for p in out.iterdir()) == sorted(["meta.json", meta["onnx"]["file"], meta["weights"]])
    assert meta["weights"] == f"model-{meta['sha256'][:16]}.safetensors"
    graph = (out / meta["onnx"]["file"]).read_bytes()
    assert meta["onnx"]["sha256"] == hashlib.sha256(graph).hexdigest() and meta["onnx"]["file"].endswith(".onnx")
    assert meta["arch"] == "efficientnet_lite0" and meta["vocab"] == learn.dls.vocab
    assert meta["preprocessing"] == {"presize": 64, "method": "crop", "size": 48, "mean": [0.5] * 3, "std": [0.5] * 3}
    assert meta["preprocessing"] == learn.dls.preprocessing.to_dict() and meta["dtype"] == "float32"
    assert meta["imagenet_classifier"] is True and len(meta["sha256"]) == 64
    assert weights_of(out).read_bytes()[:1] != b"\x80"  # not a pickle


def test_predictor_gives_the_learners_predictions(trained):
    learn, out = trained
    pred = load_predictor(out, fast=False)
    probs, targets = learn.get_preds("valid")
    for i, path in enumerate(learn.dls.valid.dataset.items):
        prediction = pred.predict(path)
        label, p = prediction.label, prediction.probabilities
        assert list(p) == learn.dls.vocab
        assert label == learn.dls.vocab[int(probs[i].argmax())]
        torch.testing.assert_close(torch.tensor(list(p.values())), probs[i], atol=1e-4, rtol=1e-3)


def test_fast_predictor_agrees(trained):
    learn, out = trained
    slow, fast = load_predictor(out, fast=False), load_predictor(out)
    for path in learn.dls.valid.dataset.items:
        pa, pb = slow.predict(path).probabilities, fast.predict(path).probabilities
        assert max(abs(pa[k] - pb[k]) for k in pa) < 0.05  # folded BatchNorm, and bfloat16 where supported
    # every input kind: path, bytes, PIL image, array
    path = learn.dls.valid.dataset.items[0]
    for image in (str(path), path.read_bytes(), Image.open(path), np.asarray(Image.open(path).convert("RGB"))):
        assert fast.predict(image).label == fast.predict(path).label


def test_tta_and_details(trained):
    learn, out = trained
    pred = load_predictor(out)
    d = pred.predict(learn.dls.valid.dataset.items[0], tta=True)
    assert abs(sum(d.probabilities.values()) - 1) < 1e-3
    assert len(d.imagenet.top) == 5 and 0 <= d.imagenet.pet_probability <= 1


def test_fold_batchnorm_keeps_outputs(trained):
    import copy

    learn, _ = trained
    model = copy.deepcopy(learn.model).float().eval()
    x = torch.randn(2, 3, 48, 48)
    with torch.no_grad():
        before = model(x)
        n_bn = sum(isinstance(m, torch.nn.BatchNorm2d) for m in model.body.modules())
        fold_batchnorm(model.body)
        after = model(x)
    assert n_bn > 40 and sum(isinstance(m, torch.nn.BatchNorm2d) for m in model.body.modules()) == 0
    torch.testing.assert_close(after, before, atol=1e-4, rtol=1e-4)


def test_half_export_is_half_the_size_and_still_predicts(trained, tmp_path):
    learn, out = trained
    half = export(learn, tmp_path / "half", half=True, onnx=False)
    full_size, half_size = weights_of(out).stat().st_size, weights_of(half).stat().st_size
    assert half_size < 0.55 * full_size
    path = learn.dls.valid.dataset.items[0]
    assert load_predictor(half).predict(path).label == load_predictor(out).predict(path).label


def test_pickles_are_refused(trained, tmp_path):
    learn, _ = trained
    p = tmp_path / "model.pth"
    torch.save(learn.model.state_dict(), p)
    with pytest.raises(PickleRefused, match="never loads pickles"):
        load_predictor(p)
    q = tmp_path / "evil.pkl"
    q.write_bytes(pickle.dumps({"x": 1}))
    with pytest.raises(PickleRefused):
        load_predictor(q)
    # a pickle hiding under the safetensors name in an export folder
    fake = tmp_path / "fake"
    fake.mkdir()
    torch.save({"a": torch.zeros(1)}, fake / "model.safetensors")
    (fake / "meta.json").write_text("{}")
    with pytest.raises(PickleRefused):
        load_predictor(fake)


def test_damaged_exports_are_clear_errors(trained, tmp_path):
    import shutil

    _, out = trained
    bad = tmp_path / "bad"
    shutil.copytree(out, bad)
    data = bytearray(weights_of(bad).read_bytes())
    data[-10] ^= 0xFF
    weights_of(bad).write_bytes(bytes(data))
    with pytest.raises(ValueError, match="does not match meta.json"):
        read_export(bad)
    meta = json.loads((bad / "meta.json").read_text())
    for elsewhere in ("../../etc/passwd", "/etc/passwd", "model.pth"):  # meta.json can only name a file beside it
        (bad / "meta.json").write_text(json.dumps({**meta, "weights": elsewhere}))
        with pytest.raises(ValueError, match="not a model-\\*.safetensors file beside it"):
            read_export(bad)
    for broken in ("{not json", "[1, 2]", ""):
        (bad / "meta.json").write_text(broken)
        with pytest.raises(ValueError, match="meta.json"):
            read_export(bad)
    (bad / "meta.json").unlink()
    with pytest.raises(FileNotFoundError, match="missing meta.json"):
        read_export(bad)
    with pytest.raises(FileNotFoundError, match="no exported model"):
        read_export(tmp_path / "nowhere")


@pytest.mark.parametrize("where", ["weights", "meta.json"])
def test_a_failed_export_leaves_the_previous_one_loadable(trained, tmp_path, monkeypatch, where):
    """Exporting over an existing export fails half-way: before the weights are written, or after
    them while meta.json is written. The previous export still loads, with its own weights."""
    import engine.serving.export as E

    learn, _ = trained
    target = export(learn, tmp_path / "m")
    before = sorted(p.name for p in target.iterdir())
    old_meta, old_state = read_export(target)
    with torch.no_grad():  # a different model, so the new export would differ
        for p in learn.model.head.parameters():
            p.add_(1.0)

    def crash(*args, **kwargs):
        raise OSError("disk full")

    if where == "weights":
        monkeypatch.setattr("safetensors.torch.save_file", crash)
    else:
        monkeypatch.setattr(E, "_write_atomically", crash)
    try:
        with pytest.raises(OSError, match="disk full"):
            E.export(learn, target)
    finally:
        with torch.no_grad():
            for p in learn.model.head.parameters():
                p.sub_(1.0)
    assert sorted(p.name for p in target.iterdir()) == before  # nothing new left behind, nothing old gone
    meta, state = read_export(target)
    assert meta == old_meta and all(torch.equal(state[k], old_state[k]) for k in old_state)
    monkeypatch.undo()
    E.export(learn, target, half=True, onnx=False)  # and a later export replaces it completely
    meta = json.loads((target / "meta.json").read_text())
    assert sorted(p.name for p in target.iterdir()) == ["meta.json", meta["weights"]] and meta["dtype"] == "float16"
    assert "onnx" not in meta  # the old graph went with the old weights
    read_export(target)


def test_an_export_from_before_content_named_weights_still_loads(trained, tmp_path):
    import shutil

    _, out = trained
    old = tmp_path / "old"
    shutil.copytree(out, old)
    meta = json.loads((old / "meta.json").read_text())
    (old / meta.pop("weights")).rename(old / "model.safetensors")
    (old / "meta.json").write_text(json.dumps(meta))
    assert load_predictor(old).vocab == meta["vocab"]


def test_bad_images_are_clear_errors(trained, tmp_path):
    _, out = trained
    pred = load_predictor(out)
    text = tmp_path / "x.jpg"
    text.write_text("hello")
    with pytest.raises(Exception, match="cannot identify image file"):
        pred.predict(text)
    big = tmp_path / "bomb.png"
    Image.new("1", (8000, 6000)).save(big)
    with pytest.raises(ValueError, match="megapixels, more than the 40 allowed"):
        pred.predict(big)
    for kind in ("cmyk", "i16", "rgba", "tiny", "wide", "p", "exif_rotated"):
        prediction = pred.predict(write_image(tmp_path / f"{kind}.jpg", kind=kind))
        assert prediction.label in prediction.probabilities


def test_the_predictor_reads_the_preprocessing_back_as_it_was_written(trained):
    from engine.data.preprocessing import Preprocessing

    learn, out = trained
    pred = load_predictor(out)
    assert pred.preprocessing == learn.dls.preprocessing  # the same frozen object, field for field
    presize = pred.preprocessing.presizer()
    assert (presize.size, presize.method, pred.preprocessing.size) == (64, "crop", 48)
    old_style = {"presize": 64, "presize_method": "crop", "size": 48, "normalization": {"mean": [0.5] * 3,
                                                                                         "std": [0.5] * 3}}
    assert Preprocessing.from_meta(old_style) == pred.preprocessing  # exports from before it still load


def test_preprocessing_refuses_what_cannot_work():
    from engine.data.preprocessing import Preprocessing

    for bad, message in [(dict(method="stretch"), "method must be one of"), (dict(size=4), "size must be a whole"),
                         (dict(presize=460.0), "presize must be a whole"), (dict(std=(0.5, 0, 0.5)), "std above 0"),
                         (dict(mean=(0.5, 0.5)), "3 finite values")]:
        with pytest.raises(ValueError, match=message):
            Preprocessing(**bad)
    with pytest.raises(ValueError, match="unknown fields \\['sise'\\]"):
        Preprocessing.from_dict({"sise": 224})
    assert Preprocessing(presize=None).presizer() is None


def test_a_full_disk_leaves_nothing_behind_and_says_so(trained, tmp_path, monkeypatch):
    """safetensors reports a full disk as a SafetensorError with the OS error in its text: the export
    says it in one line, and the folders it created are removed again."""
    import errno

    from safetensors import SafetensorError

    import engine.serving.export as E

    learn, _ = trained

    def full(state, filename, *args, **kwargs):
        open(filename, "wb").write(b"part of the weights")
        raise SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")

    monkeypatch.setattr("safetensors.torch.save_file", full)
    target = tmp_path / "new" / "model"
    with pytest.raises(E.ExportFailed) as failed:
        E.export(learn, target)
    assert failed.value.errno == errno.ENOSPC and "\n" not in str(failed.value)
    assert str(failed.value).startswith(f"cannot export to {target}: no space left on the device")
    assert list(tmp_path.iterdir()) == []  # model/ and new/ were made by the export: both gone


def test_ctrl_c_as_meta_json_is_replaced_completes_the_export_then_says_so(trained, tmp_path, monkeypatch):
    """Past the commit point a press cannot undo the export: it is completed (the previous export's
    files removed) and then reported as ``InterruptedAfterExport``, a ``KeyboardInterrupt``."""
    import signal

    import engine.serving.export as E

    learn, _ = trained
    target = export(learn, tmp_path / "m", onnx=False)
    old_weights = json.loads((target / "meta.json").read_text())["weights"]
    real = E._write_atomically

    def pressed_at_the_rename(path, write, before_replace):
        def commit():
            before_replace()
            signal.raise_signal(signal.SIGINT)  # right after the last check, before os.replace
        real(path, write, commit)

    monkeypatch.setattr(E, "_write_atomically", pressed_at_the_rename)
    with pytest.raises(E.InterruptedAfterExport):
        E.export(learn, target, half=True, onnx=False)
    meta, _ = read_export(target)
    assert meta["dtype"] == "float16" and sorted(p.name for p in target.iterdir()) == ["meta.json", meta["weights"]]
    assert meta["weights"] != old_weights
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # put back as it was
