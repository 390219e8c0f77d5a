"""The frozen-phase speed-up gives the same head as training through the frozen body."""

import os

import pytest
import torch

from engine.data import DataLoaders
from engine.learning.features import cached_preds, compute_features
from engine.learning.fine_tune import VisionLearner
from engine.learning.frozen_phase import FrozenPhase
from engine.models import create_model


@pytest.fixture
def folder(tiny_pets):
    return tiny_pets


def frozen_learner(folder, **dls_kw):
    torch.manual_seed(0)
    dls = DataLoaders.from_name_regex(folder, valid_pct=0.25, presize=40, size=32, batch_size=8, seed=0,
                                      device="cpu", **dls_kw)
    torch.manual_seed(1)  # the same initial head for both paths
    model = create_model("resnet18", n_classes=dls.n_classes, pretrained=False)
    learn = VisionLearner(dls, model, progress=False, train_bn=False)
    learn.freeze()
    return learn


def test_cached_equals_uncached_without_augmentation(folder):
    a = frozen_learner(folder, train_augment=False)
    torch.manual_seed(5)
    a.fit_one_cycle(3, slice(3e-3), pct_start=0.5)
    b = frozen_learner(folder, train_augment=False)
    torch.manual_seed(5)  # same dropout masks in the head
    FrozenPhase(b, views=1).fit(3, 3e-3, pct_start=0.5)
    for (name, p), q in zip(a.model.head.named_parameters(), b.model.head.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-4, atol=1e-5, msg=name)
    for k, v in a.model.body.state_dict().items():  # and the body is untouched by both
        torch.testing.assert_close(v, b.model.body.state_dict()[k])
    ra, rb = a.recorder.epochs, b.recorder.epochs
    assert [round(r["train_loss"], 4) for r in ra] == [round(r["train_loss"], 4) for r in rb]
    assert [round(r["valid_loss"], 4) for r in ra] == [round(r["valid_loss"], 4) for r in rb]
    assert ra[-1]["train_loss"] < ra[0]["train_loss"]


def test_views(folder):
    learn = frozen_learner(folder)
    cache = compute_features(learn, n_views=3)
    assert cache.train.shape == (3, 24, 1024) and cache.valid.shape == (8, 1024)
    clean, mirrored, augmented = cache.train
    assert not torch.allclose(clean, mirrored) and not torch.allclose(clean, augmented)
    assert cache.train_y.tolist() == learn.dls.train.dataset.labels  # dataset order
    again = compute_features(learn, n_views=1)
    torch.testing.assert_close(again.train[0], clean)  # view 0 is deterministic


def test_the_frozen_phase_head_shares_the_head_and_finds_a_rate(folder):
    learn = frozen_learner(folder)
    frozen = FrozenPhase(learn, views=2)
    hl = frozen.head
    assert hl.model[-1] is learn.model.head[-1]
    result = hl.lr_find(num_it=30)
    assert len(result.lrs) >= 5 and set(result.suggestions) == {"minimum", "steep", "valley"}
    before = learn.model.head[-1].weight.clone()
    learn.fine_tune(0, base_lr=3e-3, freeze_epochs=2, frozen_phase=frozen)
    assert not torch.equal(before, learn.model.head[-1].weight)
    assert len(learn.recorder.epochs) == 2 and learn.recorder.lrs


def test_the_frozen_phase_owns_its_cache_and_scores_like_get_preds(folder):
    learn = frozen_learner(folder, train_augment=False)
    frozen = FrozenPhase(learn, views=2, valid_views=2)
    assert frozen.cache.train.shape == (1, 24, 1024)  # no augmentation: one view, whatever was asked
    assert not hasattr(learn, "feature_cache")  # nothing is stored on the learner it speeds up
    learn.fine_tune(0, base_lr=3e-3, freeze_epochs=1, frozen_phase=frozen)
    for tta in (False, True):  # the body is unchanged, so the cache gives what running it gives
        logits, targets = frozen.preds(tta=tta)
        expected, expected_targets = learn.get_preds("valid", activation=None, tta=tta)
        torch.testing.assert_close(logits, expected, rtol=1e-4, atol=1e-4)
        assert targets.tolist() == expected_targets.tolist()
    one_view = FrozenPhase(learn)  # a cache without the mirrored validation photos
    with pytest.raises(ValueError, match="valid_views=2"):
        cached_preds(learn, one_view.cache, tta=True)


def test_fine_tune_refuses_another_learners_frozen_phase(folder):
    a, b = frozen_learner(folder), frozen_learner(folder)
    with pytest.raises(ValueError, match="another learner's features"):
        a.fine_tune(0, freeze_epochs=1, frozen_phase=FrozenPhase(b))


def test_a_second_run_reuses_the_plain_views_and_trains_exactly_as_a_fresh_one(tiny_pets, tmp_path):
    """``TrainingRun`` keeps the features free of randomness (views 0 and 1, the validation photos and
    their mirrors) for the next run of the same photos through the same body; only what shapes them
    (a photo's file, the preprocessing, the batches, the body's weights ...) makes it compute them again."""
    import shutil
    from dataclasses import replace

    from engine.data.preprocessing import Preprocessing
    from engine.recipe import Recipe, TrainingRun, forget_features

    folder = shutil.copytree(tiny_pets, tmp_path / "pets")
    small = Recipe(preprocessing=Preprocessing(presize=72, size=64), freeze_epochs=3, batch_size=8, valid_pct=0.25)

    def run(recipe, fresh=False, at_model=None):
        if fresh:
            forget_features()
        for name, result in TrainingRun(folder, recipe, progress=False).steps():
            if name == "model" and at_model is not None:
                at_model(result.learn)
        return result

    def same(a, b):  # the same features, the same head, the same answers: to the bit
        ca, cb = a.frozen_phase.cache, b.frozen_phase.cache
        for x, y in ((ca.train, cb.train), (ca.valid, cb.valid), (ca.valid_mirror, cb.valid_mirror),
                     (ca.train_y, cb.train_y), (a.interp.probs, b.interp.probs)):
            assert torch.equal(x, y)
        head_a, head_b = a.learn.unwrapped.head.state_dict(), b.learn.unwrapped.head.state_dict()
        for name in head_a:
            assert torch.equal(head_a[name], head_b[name]), name

    forget_features()
    assert run(small).report["n_reused"] == 0  # nothing kept yet
    plain = 2 * 24 + 2 * 8  # views 0 and 1 of 24 training photos, 8 validation photos and their mirrors
    for recipe in (replace(small, freeze_epochs=4, base_lr=1e-3), replace(small, views=3)):
        reused = run(recipe)
        assert reused.report["n_reused"] == plain and reused.report["n_cached"] == plain + 24 * (recipe.views - 2)
        fresh = run(recipe, fresh=True)
        assert fresh.report["n_reused"] == 0
        same(reused, fresh)
    assert run(replace(small, batch_size=4)).report["n_reused"] == 0  # other batches
    assert run(replace(small, preprocessing=Preprocessing(presize=80, size=64))).report["n_reused"] == 0
    assert run(replace(small, seed=43)).report["n_reused"] == 0  # here the seed draws the validation photos

    def nudge(learn):  # a caller that changes the body before the features: its weights are in the key
        with torch.no_grad():
            next(learn.unwrapped.body.parameters()).add_(0.01)

    run(small)
    assert run(small, at_model=nudge).report["n_reused"] == 0
    photo = next(p for p in sorted(folder.glob("*.jpg")))
    os.utime(photo, ns=(photo.stat().st_atime_ns, photo.stat().st_mtime_ns + 10**9))  # the same bytes, touched
    assert run(small).report["n_reused"] == 0  # a changed file: computed again
    forget_features()
