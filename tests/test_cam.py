"""Where the model looked (engine/cam.py): the maps are exact for our head, the ONNX graph gives
PyTorch's maps, an export from before the maps gets them at load, and on a pet pasted onto a
plain background the map lies on the pet."""

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from engine.cam import activation_maps, fold_head, overlay, where_looked
from engine.models import create_head
from engine.serving.onnx import MAPS, OnnxRunner, export_onnx, graph_outputs, has_activation_maps
from engine.serving.predictor import load_predictor

DEMO_MODEL = Path(__file__).resolve().parents[1] / "demo" / "model"


def _head(n_features: int, n_classes: int, seed: int = 0) -> torch.nn.Sequential:
    torch.manual_seed(seed)
    head = create_head(n_features, n_classes).eval()
    bn = head[1]  # a BatchNorm that is far from the identity, so that folding it matters
    torch.nn.init.normal_(bn.weight), torch.nn.init.normal_(bn.bias)
    bn.running_mean.normal_(), bn.running_var.uniform_(0.3, 3)
    return head


def test_the_maps_add_up_to_the_logits_ties_included():
    head = _head(16, 5)
    features = (torch.rand(3, 16, 7, 7) * 8).clamp(max=6)  # ReLU6 features: many cells tie at 6
    features[0, 0] = 0  # a channel that is zero everywhere: all 49 cells tie
    maps = activation_maps(head, features)
    _, bias = fold_head(head)
    assert maps.shape == (3, 5, 7, 7)
    torch.testing.assert_close(maps.sum((2, 3)) + bias, head(features), atol=1e-5, rtol=1e-5)
    # the average half alone is the classic CAM: not the logit (the max half is missing)
    weight, _ = fold_head(head)
    classic = torch.einsum("kc,nchw->nkhw", weight[:, :16], features) / 49
    assert (classic.sum((2, 3)) + bias - head(features)).abs().max() > 0.1


def test_fold_head_refuses_a_head_it_is_not_exact_for():
    with pytest.raises(ValueError, match="ConcatPool, BatchNorm1d, Dropout, Linear"):
        fold_head(torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(4, 2)))


def test_where_looked_is_the_positive_part_resized_as_pytorch_does():
    cam = np.random.default_rng(0).normal(size=(7, 5)).astype(np.float32)
    got = where_looked(cam, (224, 160))
    positive = torch.from_numpy(np.maximum(cam, 0) / np.maximum(cam, 0).max())[None, None]
    want = F.interpolate(positive, size=(224, 160), mode="bilinear", align_corners=False)[0, 0].numpy()
    np.testing.assert_allclose(got, want, atol=1e-5)
    assert 0.9 < got.max() <= 1 and got.min() >= 0
    assert not where_looked(-np.ones((7, 7)), (32, 32)).any()  # no cell speaks for the class: nothing shown
    picture = np.full((32, 32, 3), 100, np.uint8)
    where = np.zeros((32, 32), np.float32)
    where[:16] = 1
    laid = overlay(picture, where)
    assert (laid[16:] == 100).all() and laid[:16, :, 0].min() > 150  # warm where it looked, the photo elsewhere


def test_the_overlay_in_whole_numbers_is_the_formula_in_floats():
    rng = np.random.default_rng(0)
    picture = rng.integers(0, 256, (40, 30, 3), dtype=np.uint8)
    where = rng.random((40, 30), dtype=np.float32)
    where[:5], where[5:10] = 0, 1
    for strength in (0.6, 1.0):
        a = (strength * where)[..., None]
        heat = np.stack([np.ones_like(where), where ** 0.5, np.zeros_like(where)], -1) * 255
        want = picture * (1 - a) + heat * a
        got = overlay(picture, where, strength)
        assert got.dtype == np.uint8 and got.shape == picture.shape
        assert np.abs(got - want).max() <= 2 and np.abs(got - want).mean() < 0.6
    assert (overlay(picture, where * 3 - 1) == overlay(picture, np.clip(where * 3 - 1, 0, 1))).all()  # clipped


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_learner):
    return tiny_learner(tmp_path_factory.mktemp("cam"), seed=3)


def test_the_graph_gives_pytorchs_maps(trained):
    learn, out = trained
    model = learn.unwrapped.float().eval().cpu()
    spec = learn.dls.preprocessing
    graph = (out / json.loads((out / "meta.json").read_text())["onnx"]["file"]).read_bytes()
    assert has_activation_maps(graph)
    x = np.random.default_rng(1).uniform(0, 255, (4, spec.size, spec.size, 3)).astype(np.float32)
    _, _, maps = OnnxRunner(graph).run(x)
    with torch.no_grad():
        features = model.body(spec.normalize(torch.from_numpy(x).permute(0, 3, 1, 2)))
        want = activation_maps(model.head, features).numpy()
    np.testing.assert_allclose(maps, want, atol=1e-4)
    # and through the predictors: the same map over the same pixels, TTA included
    onnx_p, torch_p = load_predictor(out, runtime="onnx"), load_predictor(out, runtime="pytorch", fast=False)
    for tta in (False, True):
        a, b = (p.predict(learn.dls.valid.dataset.items[0], tta=tta) for p in (onnx_p, torch_p))
        assert a.cam.shape == a.pixels.shape[:2] and a.cam.dtype == np.float32 and not a.cam.flags.writeable
        assert a.label == b.label
        np.testing.assert_allclose(a.cam, b.cam, atol=1e-3)


def test_a_graph_exported_before_the_maps_gets_them_at_load(trained, tmp_path):
    learn, out = trained
    import onnx

    old = onnx.load_from_string(export_onnx(learn.unwrapped, learn.dls.preprocessing))
    g = old.graph  # back to what export_onnx wrote before the maps: without their nodes and output
    for part, keep in ((g.output, lambda o: o.name != MAPS), (g.initializer, lambda t: not t.name.startswith("/maps/")),
                       (g.node, lambda n: not any(o == MAPS or o.startswith("/maps/") for o in n.output))):
        kept = [x for x in part if keep(x)]
        del part[:]
        part.extend(kept)
    old = old.SerializeToString()
    assert not has_activation_maps(old) and len(OnnxRunner(old).session.get_outputs()) == 2
    folder = tmp_path / "old"
    folder.mkdir()
    meta = json.loads((out / "meta.json").read_text())
    for name in (meta["weights"], "meta.json"):
        (folder / name).write_bytes((out / name).read_bytes())
    (folder / meta["onnx"]["file"]).write_bytes(old)
    meta["onnx"]["sha256"] = hashlib.sha256(old).hexdigest()
    (folder / "meta.json").write_text(json.dumps(meta))
    photo = learn.dls.valid.dataset.items[0]
    p = load_predictor(folder, runtime="onnx")
    assert p.runtime.name == "onnxruntime float32"
    np.testing.assert_allclose(p.predict(photo).cam, load_predictor(out, runtime="onnx").predict(photo).cam,
                               atol=1e-5)
    assert load_predictor(folder, runtime="onnx", maps=False).predict(photo).cam is None
    assert (folder / meta["onnx"]["file"]).read_bytes() == old  # the file itself is left as it is


def _pasted(photo: Path, at: int = 15, longest: int = 420) -> tuple[Image.Image, tuple[int, int, int, int]]:
    """The photo, shrunk to ``longest`` pixels, pasted at (at, at) onto a plain grey 900x900 picture."""
    pet = Image.open(photo).convert("RGB")
    pet.thumbnail((longest, longest))
    canvas = Image.new("RGB", (900, 900), (128, 128, 128))
    canvas.paste(pet, (at, at))
    return canvas, (at, at, at + pet.width, at + pet.height)


@pytest.mark.parametrize("runtime", ["auto", "pytorch"])
def test_on_a_pet_pasted_onto_a_plain_background_the_map_lies_on_the_pet(pets_sample, runtime):
    """The shipped model (its graphs predate the maps: they are added at load). The map has 7x7
    cells of 32 pixels, so "on the pet" is judged at that resolution: the pet's box grown by half
    a cell. Over all 370 sample photos 361 (int8) and 365 (PyTorch) pass; those that fail are
    mostly wrong answers whose evidence spreads onto the background. These ten all pass."""
    predictor = load_predictor(DEMO_MODEL, runtime=runtime)
    photos = sorted((pets_sample / "images").glob("*.jpg"))[::37]
    assert len(photos) == 10
    for photo in photos:
        canvas, (x0, y0, x1, y1) = _pasted(photo)
        cam = predictor.predict(canvas).cam
        scale, grow = cam.shape[0] / 900, cam.shape[0] / 7 / 2
        on_pet = np.zeros(cam.shape, bool)
        on_pet[max(0, int(y0 * scale - grow)):int(y1 * scale + grow) + 1,
               max(0, int(x0 * scale - grow)):int(x1 * scale + grow) + 1] = True
        assert on_pet.mean() < 0.3  # the pet's region is a small part of the picture
        assert on_pet[np.unravel_index(cam.argmax(), cam.shape)], photo.name
        assert cam[on_pet].sum() > 0.5 * cam.sum(), photo.name


def test_the_shipped_export_is_left_as_it_is_and_gets_its_maps_at_load():
    meta = json.loads((DEMO_MODEL / "meta.json").read_text())
    for entry in (meta, meta["onnx"], meta["int8"]):
        name = entry["weights"] if entry is meta else entry["file"]
        assert hashlib.sha256((DEMO_MODEL / name).read_bytes()).hexdigest() == entry["sha256"]
    assert not has_activation_maps((DEMO_MODEL / meta["onnx"]["file"]).read_bytes())
    import onnx

    for entry in (meta["onnx"], meta["int8"]):  # the output names read without the onnx package, as it reads them
        graph = (DEMO_MODEL / entry["file"]).read_bytes()
        assert graph_outputs(graph) == [o.name for o in onnx.load_from_string(graph).graph.output] == \
            ["breeds", "imagenet"]
    p = load_predictor(DEMO_MODEL, runtime="onnx")
    picture = np.full((300, 300, 3), 128, np.uint8)
    assert p.predict(picture).cam.shape == (224, 224)


def test_maps_are_added_once_then_read_from_the_cache(tmp_path, monkeypatch):
    """The shipped graphs get their maps at the first load; later loads read them from the cache
    (no onnx import, no rewrite), with the same answers; a damaged cached file is rebuilt."""
    from engine.serving import maps_cache
    from engine.serving import onnx as onnx_module

    monkeypatch.setenv("PETBREEDS_HOME", str(tmp_path))
    picture = np.random.default_rng(0).integers(0, 256, (300, 300, 3), dtype=np.uint8)
    first = load_predictor(DEMO_MODEL, runtime="onnx").predict(picture)
    cached = sorted(maps_cache.cache_folder().glob("*.onnx"))
    assert len(cached) == 2  # the float graph and the int8 graph
    assert all(has_activation_maps(path.read_bytes()) for path in cached)

    def refuse(*args):
        raise AssertionError("the maps were added again instead of read from the cache")

    monkeypatch.setattr(onnx_module, "add_activation_maps", refuse)
    again = load_predictor(DEMO_MODEL, runtime="onnx").predict(picture)
    assert again.label == first.label
    np.testing.assert_allclose(again.cam, first.cam, atol=1e-6)
    assert list(again.probabilities.values()) == pytest.approx(list(first.probabilities.values()), abs=1e-6)

    monkeypatch.undo()  # the real add_activation_maps again, and the same cache
    monkeypatch.setenv("PETBREEDS_HOME", str(tmp_path))
    cached[0].write_bytes(cached[0].read_bytes()[:1000])  # a half-written file
    rebuilt = load_predictor(DEMO_MODEL, runtime="onnx").predict(picture)
    assert rebuilt.label == first.label and has_activation_maps(cached[0].read_bytes())


def test_a_read_only_cache_still_gives_maps(tmp_path, monkeypatch):
    from engine.serving import maps_cache

    blocked = tmp_path / "file-not-folder"
    blocked.write_text("")
    monkeypatch.setattr(maps_cache, "cache_folder", lambda: blocked / "graphs")  # cannot be created
    picture = np.full((300, 300, 3), 128, np.uint8)
    assert load_predictor(DEMO_MODEL, runtime="onnx").predict(picture).cam.shape == (224, 224)
