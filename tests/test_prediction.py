"""A prediction and the runtime behind it: ``Prediction`` (its verdict, the pixels the model saw,
the time), ``Predictor.predict_batch``, predictions from many threads at once, and the contract a
new runtime meets in ``engine/serving/runtime.py``."""

import copy
import importlib
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from engine.serving.onnx import probabilities, reference_probabilities
from engine.serving.prediction import DISAGREE_FROM, NOT_A_PET_BELOW, UNSURE_BELOW, ImagenetCheck, Prediction
from engine.serving.predictor import load_predictor
from engine.serving.runtime import TOLERANCE, TorchRuntime, check_runtime

R = importlib.import_module("engine.serving.runtime")


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_learner):
    return tiny_learner(tmp_path_factory.mktemp("prediction"), seed=11)


def _prediction(top: float, check: ImagenetCheck | None) -> Prediction:
    breeds = ["beagle", "pug", "Bengal"]
    probs = dict(zip(breeds, [top, (1 - top) * 0.75, (1 - top) * 0.25]))
    return Prediction("beagle", probs, check, np.zeros((4, 4, 3), np.uint8), 0.001)


def test_the_verdict_applies_the_thresholds():
    pet = ImagenetCheck((("beagle", 0.9),), pet_probability=0.95, top_is_pet=True)
    assert _prediction(0.9, pet).verdict == "breed"
    assert _prediction(UNSURE_BELOW, pet).verdict == "breed"
    assert _prediction(UNSURE_BELOW - 0.01, pet).verdict == "unsure"
    car = ImagenetCheck((("sports car", 0.7), ("beagle", 0.01)), pet_probability=NOT_A_PET_BELOW - 0.01,
                        top_is_pet=False)
    assert car.not_a_pet and _prediction(DISAGREE_FROM - 0.01, car).verdict == "not_a_pet"
    # a breed model this sure is not overruled: the two disagree, and a page says both
    assert _prediction(DISAGREE_FROM, car).verdict == "disagree" and _prediction(0.99, car).verdict == "disagree"
    assert _prediction(UNSURE_BELOW - 0.01, car).verdict == "not_a_pet"  # "not a pet" comes before "unsure"
    boxer = ImagenetCheck((("boxer", 0.06), ("tennis ball", 0.05)), pet_probability=0.08, top_is_pet=True)
    assert not boxer.not_a_pet and _prediction(0.99, boxer).verdict == "breed"  # its top class is a dog
    some = ImagenetCheck((("sofa", 0.5),), pet_probability=NOT_A_PET_BELOW, top_is_pet=False)
    assert not some.not_a_pet  # 10% on cats and dogs is enough
    assert _prediction(0.4, None).verdict == "unsure" and _prediction(0.99, None).verdict == "breed"  # no check


def test_top_and_vocab():
    p = _prediction(0.6, None)
    assert p.top(2) == [("beagle", 0.6), ("pug", pytest.approx(0.3))] and len(p.top()) == 3
    assert p.vocab == ["beagle", "pug", "Bengal"]


def test_a_prediction_holds_the_pixels_the_model_saw(trained):
    learn, out = trained
    predictor = load_predictor(out)
    path = learn.dls.valid.dataset.items[0]
    seen = predictor.pixels(path)  # (1, 48, 48, 3) float32 0..255
    p = predictor.predict(path)
    assert p.pixels.shape == (48, 48, 3) and p.pixels.dtype == np.uint8 and not p.pixels.flags.writeable
    assert np.abs(p.pixels - seen[0]).max() <= 0.5  # the same picture, rounded
    assert 0 < p.seconds < 10
    # fed back to the runtime, those pixels give the prediction's probabilities
    again = probabilities(predictor.runtime.run(p.pixels[None].astype(np.float32))[0])[0]
    assert np.abs(again - list(p.probabilities.values())).max() < 0.02
    mirrored = predictor.predict(path, tta=True)
    assert np.array_equal(mirrored.pixels, p.pixels)  # the unmirrored picture
    assert list(mirrored.probabilities) == predictor.vocab and p.label in predictor.vocab


def test_a_batch_answers_each_photo_as_predict_does(trained):
    learn, out = trained
    predictor = load_predictor(out)
    paths = learn.dls.valid.dataset.items[:4]
    batch = [predictor.pixels(path, tta=i % 2 == 1) for i, path in enumerate(paths)]  # 1 and 2 rows mixed
    answers = predictor.predict_batch(batch)
    assert len(answers) == 4 and predictor.predict_batch([]) == []
    for i, (path, got) in enumerate(zip(paths, answers)):
        want = predictor.predict(path, tta=i % 2 == 1)
        assert got.label == want.label and [n for n, _ in got.imagenet.top] == [n for n, _ in want.imagenet.top]
        assert max(abs(got.probabilities[k] - want.probabilities[k]) for k in want.probabilities) < 1e-4
        assert got.imagenet.pet_probability == pytest.approx(want.imagenet.pet_probability, abs=1e-4)
        assert np.array_equal(got.pixels, want.pixels)
    assert len({a.seconds for a in answers}) == 1 and answers[0].seconds > 0  # shares of one pass


@pytest.mark.parametrize("runtime", ["auto", "pytorch"])
def test_predictions_from_many_threads_are_the_ones_made_one_at_a_time(trained, runtime):
    learn, out = trained
    predictor = load_predictor(out, runtime=runtime)
    paths = list(learn.dls.train.dataset.items[:6]) + list(learn.dls.valid.dataset.items[:6])
    alone = [predictor.predict(p).probabilities for p in paths]
    with ThreadPoolExecutor(8) as pool:
        together = list(pool.map(lambda p: predictor.predict(p).probabilities, paths * 2))
    for a, b in zip(alone * 2, together):
        assert max(abs(a[k] - b[k]) for k in a) < 1e-5


class _Reversed:
    """A runtime that gets the breeds backwards: what a broken new runtime looks like."""

    name = "reversed"

    def __init__(self, inner):
        self.inner = inner

    def run(self, pixels):
        breeds, inet, maps = self.inner.run(pixels)
        return breeds[:, ::-1], inet, maps


def test_a_new_runtime_is_checked_and_used_or_refused(trained, monkeypatch):
    learn, out = trained
    model, spec = copy.deepcopy(learn.unwrapped).float().eval(), learn.dls.preprocessing
    reference = reference_probabilities(model, spec)
    plain = TorchRuntime(model, spec, "cpu", fast=False)
    check_runtime(plain, reference, spec.size, TOLERANCE)  # PyTorch in float32 passes the graphs' check
    with pytest.raises(ValueError, match="differ from PyTorch"):
        check_runtime(_Reversed(plain), reference, spec.size, TOLERANCE)

    def candidates(make):
        return lambda device, size, graph, int8, reasons, recorded=None, **_: [(make().name, make, TOLERANCE)]

    class Plain(TorchRuntime):  # a "new" runtime that answers as PyTorch does
        name = "plain"

    monkeypatch.setattr(R, "_candidates", candidates(lambda: Plain(model, spec, "cpu", fast=False)))
    p = load_predictor(out, runtime="onnx")
    assert p.runtime.name == "plain" and p.runtime_report == "plain, checked against PyTorch"
    assert p.predict(learn.dls.valid.dataset.items[0]).label in learn.dls.vocab

    monkeypatch.setattr(R, "_candidates", candidates(lambda: _Reversed(TorchRuntime(model, spec, "cpu", fast=False))))
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        p = load_predictor(out, runtime="onnx")
    assert p.runtime.name == "pytorch"
    assert "reversed is not used (ValueError: its probabilities differ" in p.runtime_report
    assert len(said) == 1 and "predictions run on PyTorch" in str(said[0].message)
