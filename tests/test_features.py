"""The frozen-phase speed-up gives the same head as training through the frozen body."""

import pytest
import torch

from engine.data import DataLoaders
from engine.learning.features import cached_preds, compute_features
from engine.learning.fine_tune import VisionLearner, fit_head_on_features, head_learner
from engine.learning.learner import Learner
from engine.models import create_model


@pytest.fixture
def folder(tiny_pets):
    return tiny_pets


def frozen_learner(folder, **dls_kw):
    torch.manual_seed(0)
    dls = DataLoaders.from_name_regex(folder, valid_pct=0.25, presize=40, size=32, batch_size=8, seed=0,
                                      device="cpu", **dls_kw)
    torch.manual_seed(1)  # the same initial head for both paths
    model = create_model("resnet18", n_classes=dls.c, pretrained=False)
    learn = VisionLearner(dls, model, progress=False, train_bn=False)
    learn.freeze()
    return learn


def test_cached_equals_uncached_without_augmentation(folder):
    a = frozen_learner(folder, train_augment=False)
    torch.manual_seed(5)
    a.fit_one_cycle(3, slice(3e-3), pct_start=0.5)
    b = frozen_learner(folder, train_augment=False)
    torch.manual_seed(5)  # same dropout masks in the head
    fit_head_on_features(b, 3, 3e-3, n_views=1, pct_start=0.5)
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


def test_head_learner_shares_the_head_and_finds_a_rate(folder):
    learn = frozen_learner(folder)
    hl = head_learner(learn, n_views=2)
    assert hl.model[-1] is learn.model.head[-1]
    result = hl.lr_find(num_it=30)
    assert len(result.lrs) >= 5 and set(result.suggestions) == {"minimum", "steep", "valley"}
    before = learn.model.head[-1].weight.clone()
    learn.fine_tune(0, base_lr=3e-3, freeze_epochs=2, cache_features=True, head_learn=hl)
    assert not torch.equal(before, learn.model.head[-1].weight)
    assert len(learn.recorder.epochs) == 2 and learn.recorder.lrs


@pytest.mark.parametrize("tta", [False, True])
def test_cached_preds_equal_get_preds_while_frozen(folder, tta):
    learn = frozen_learner(folder)
    learn.feature_cache = compute_features(learn, valid_views=2)
    logits, targets = cached_preds(learn, tta=tta)
    want, want_targets = learn.get_preds("valid", activation=None, tta=tta)
    torch.testing.assert_close(logits, want, rtol=1e-4, atol=1e-5)
    assert targets.tolist() == want_targets.tolist()
