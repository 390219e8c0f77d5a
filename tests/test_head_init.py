"""The head started from the class averages (shrinkage LDA), checked against PyTorch's Gaussians."""

import pytest
import torch
import torch.nn.functional as F
from torch.distributions import MultivariateNormal

from engine.data import DataLoaders
from engine.learning.features import compute_features
from engine.learning.fine_tune import VisionLearner
from engine.learning.frozen_phase import FrozenPhase
from engine.learning.head_init import MAX_SPREAD, fit_temperature, init_head_lda, lda_temperature, lda_weights
from engine.models import create_head, create_model
from engine.numerics import NonFiniteError


def gaussian_classes(n_per_class=(40, 60, 50), d=5, seed=0):
    """Three classes sharing one (non-diagonal) covariance, with different means and sizes."""
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(d, d, generator=g)
    cov = a @ a.T + 0.5 * torch.eye(d)
    means = 3 * torch.randn(len(n_per_class), d, generator=g)
    chol = torch.linalg.cholesky(cov)
    xs = [means[c] + torch.randn(n, d, generator=g) @ chol.T for c, n in enumerate(n_per_class)]
    ys = [torch.full((n,), c) for c, n in enumerate(n_per_class)]
    return torch.cat(xs), torch.cat(ys)


def wide_classes(seed, spread, n_test, d=200):
    """4 classes in ``d`` dimensions: 6 training photos per class, ``n_test`` test photos per class."""
    g = torch.Generator().manual_seed(seed)
    means = torch.randn(4, d, generator=g) * spread

    def draw(n):
        y = torch.arange(4).repeat(n)
        return means[y] + torch.randn(len(y), d, generator=g), y

    return draw(6), draw(n_test)


def test_plain_lda_is_the_gaussian_posterior():
    x, y = gaussian_classes()
    w, b = lda_weights(x, y, 3, shrinkage=0.0)
    # the same model written out with torch.distributions: fitted means, pooled covariance, priors
    means = torch.stack([x[y == c].mean(0) for c in range(3)]).double()
    resid = x.double() - means[y]
    cov = resid.T @ resid / len(x)
    counts = torch.bincount(y).double()
    prior = (counts + 0.5) / (counts.sum() + 1.5)
    log_joint = torch.stack([MultivariateNormal(means[c], cov).log_prob(x.double()) for c in range(3)], 1)
    expected = (log_joint + prior.log()).softmax(1)
    torch.testing.assert_close((x @ w.T + b).double().softmax(1), expected, atol=1e-4, rtol=1e-4)
    assert (expected.argmax(1) == y).float().mean() > 0.9  # the classes are separable: a real check


def test_full_shrinkage_is_the_nearest_class_average():
    x, y = gaussian_classes(n_per_class=(30, 30, 30))  # equal priors
    w, b = lda_weights(x, y, 3, shrinkage=1.0)
    means = torch.stack([x[y == c].mean(0) for c in range(3)])
    nearest = torch.cdist(x, means).argmin(1)
    assert torch.equal((x @ w.T + b).argmax(1), nearest)


def test_shrinkage_makes_more_features_than_photos_usable():
    # 200 features, 6 photos per class: the covariance alone is singular, so plain LDA is refused,
    # while the shrunk one classifies held-out photos well
    (x, y), (xt, yt) = wide_classes(seed=3, spread=0.5, n_test=100)
    with pytest.raises(ValueError, match="cannot be inverted"):
        lda_weights(x, y, 4, shrinkage=0.0)
    w, b = lda_weights(x, y, 4, shrinkage=0.9)
    assert ((xt @ w.T + b).argmax(1) != yt).float().mean() < 0.05


def test_a_class_without_photos_is_not_predicted():
    x, y = gaussian_classes()
    w, b = lda_weights(x, y, 4)  # class 3 has no photo
    assert torch.isfinite(w).all() and torch.isfinite(b).all()
    assert not ((x @ w.T + b).argmax(1) == 3).any()


@pytest.mark.parametrize("shrinkage", [-0.1, 1.5])
def test_bad_shrinkage_is_a_clear_error(shrinkage):
    x, y = gaussian_classes()
    with pytest.raises(ValueError, match="shrinkage=.*from 0"):
        lda_weights(x, y, 3, shrinkage=shrinkage)


def test_features_that_cannot_make_a_classifier_are_clear_errors():
    x, y = gaussian_classes(d=6)
    with pytest.raises(ValueError, match="cannot be inverted.*shrinkage above 0"):
        lda_weights(torch.ones(12, 6), torch.arange(3).repeat(4), 3)  # every photo the same
    with pytest.raises(ValueError, match=r"shrinkage=0.0, 3 photos, 6 features"):
        lda_weights(x[:3], y[:3], 3, shrinkage=0.0)  # fewer photos than features: singular
    x[5, 2] = float("nan")
    with pytest.raises(NonFiniteError, match="the body's features became NaN"):
        lda_weights(x, y, 3)


@pytest.mark.parametrize("calibrate", [False, True])
def test_head_in_eval_mode_computes_lda_on_the_averages(calibrate):
    x, y = gaussian_classes(d=6)
    pooled = torch.cat([x, x.abs() + 1.0], 1)  # (n, 12): "average" half, then a "max" half
    head = create_head(6, 3)
    temperature = init_head_lda(head, pooled, y, calibrate=calibrate)
    w, b = lda_weights(x, y, 3, shrinkage=0.9)
    assert temperature == (lda_temperature(x[None], y, 3) if calibrate else 1.0)
    head_tail = head[1:].eval()  # after the pooling layer, as the cached features meet it
    torch.testing.assert_close(head_tail(pooled), (x @ w.T + b) / temperature, atol=1e-4, rtol=1e-4)
    assert head[-1].weight[:, 6:].abs().sum() == 0  # the max half starts unused


def test_temperature_minimises_the_cross_entropy():
    g = torch.Generator().manual_seed(0)
    logits, targets = 5 * torch.randn(300, 4, generator=g), torch.randint(0, 4, (300,), generator=g)
    logits[torch.arange(300), targets] += 6  # right more often than not, but overconfident
    t = fit_temperature(logits, targets)
    grid = torch.logspace(-1, 1.5, 2001)
    losses = torch.stack([F.cross_entropy(logits / g_t, targets) for g_t in grid])
    assert t > 1 and abs(t / grid[losses.argmin()].item() - 1) < 0.01
    assert F.cross_entropy(logits / t, targets) <= losses.min() + 1e-6
    # perfectly separated scores would want an ever cooler temperature: it stops at the bound
    assert fit_temperature(torch.eye(3) * 10, torch.arange(3), lo=0.01) == 0.01


def test_lda_temperature_tames_overconfident_scores():
    # 200 features, 6 photos per class: in-sample LDA scores are huge, held-out ones are humbler
    (x, y), (xt, yt) = wide_classes(seed=4, spread=0.35, n_test=200)
    t = lda_temperature(x[None], y, 4)
    w, b = lda_weights(x, y, 4)
    raw, calibrated = F.cross_entropy(xt @ w.T + b, yt).item(), F.cross_entropy((xt @ w.T + b) / t, yt).item()
    assert t > 2 and calibrated < 0.8 * raw, (t, raw, calibrated)
    best = min(F.cross_entropy((xt @ w.T + b) / s, yt).item() for s in torch.logspace(-1, 3, 200))
    assert calibrated < best * 1.25, (calibrated, best)  # close to the best any temperature can do


def test_head_errors_name_the_problem():
    x, y = gaussian_classes(d=6)
    with pytest.raises(ValueError, match=r"\(n, 12\)"):
        init_head_lda(create_head(6, 3), x, y)
    with pytest.raises(TypeError, match="create_head"):
        init_head_lda(torch.nn.Sequential(torch.nn.Identity(), torch.nn.Linear(12, 3)), x, y)


def frozen_learner(folder, **dls_kw):
    torch.manual_seed(0)
    dls = DataLoaders.from_name_regex(folder, valid_pct=0.25, presize=40, size=32, batch_size=8, seed=0,
                                      device="cpu", train_augment=False, **dls_kw)
    torch.manual_seed(1)
    learn = VisionLearner(dls, create_model("resnet18", n_classes=dls.n_classes, pretrained=False), progress=False,
                    train_bn=False)
    learn.freeze()
    return learn


def test_fine_tune_starts_the_head_from_lda_with_or_without_the_cache(tiny_pets):
    heads = []
    for cache in (True, False):  # the frozen phase on the cache, or one plain pass and then through the body
        learn = frozen_learner(tiny_pets)
        frozen = FrozenPhase(learn) if cache else FrozenPhase(learn, augment=False)
        frozen.start_head("lda")
        learn.fine_tune(0, freeze_epochs=0, frozen_phase=frozen if cache else None)
        heads.append({k: v.clone() for k, v in learn.model.head.state_dict().items()})
    for k in heads[0]:
        torch.testing.assert_close(heads[0][k], heads[1][k], msg=k)
    # the head now scores the training photos the way LDA does on their features
    feats = compute_features(learn, n_views=1, augment=False)
    n_avg = feats.train.shape[-1] // 2
    w, b = lda_weights(feats.train[0, :, :n_avg], feats.train_y, learn.dls.n_classes)
    learn.model.eval()
    with torch.no_grad():
        got = learn.model.head[1:](feats.train[0])
    # these toy photos are all easy, so the temperature only keeps the scores within 50 of each other
    assert frozen.temperature > 10
    assert (got.max(1).values - got.min(1).values).max() < 1.5 * MAX_SPREAD
    expected = (feats.train[0, :, :n_avg] @ w.T + b) / frozen.temperature
    torch.testing.assert_close(got, expected, atol=1e-3, rtol=1e-3)


def test_fine_tune_trains_on_from_the_lda_head(tiny_pets):
    learn = frozen_learner(tiny_pets)
    learn.fine_tune(0, base_lr=3e-3, freeze_epochs=2, frozen_phase=FrozenPhase(learn).start_head("lda"))
    assert len(learn.recorder.epochs) == 2 and torch.isfinite(learn.model.head[-1].weight).all()


def test_unknown_head_init_is_a_clear_error(tiny_pets):
    learn = frozen_learner(tiny_pets)
    with pytest.raises(ValueError, match="head_init='zeros'.*'lda'"):
        FrozenPhase(learn).start_head("zeros")


def test_on_real_photos_the_lda_head_beats_a_random_one_before_any_training(pets_sample):
    from engine.learning.fine_tune import vision_learner

    torch.manual_seed(0)
    dls = DataLoaders.from_csv(pets_sample / "labels.csv", batch_size=32, seed=0, train_augment=False, size=160)
    learn = vision_learner(dls, progress=False, train_bn=False)
    def error():
        probs, targets = learn.get_preds()
        return (probs.argmax(1) != targets).float().mean().item()

    random_error = error()
    learn.fine_tune(0, freeze_epochs=0, frozen_phase=FrozenPhase(learn).start_head("lda"))
    error = error()
    # 17.6% at this small size (13 of 74 photos), with no gradient step; a random head: 96% wrong
    assert error < 0.25 and random_error > 0.8, (error, random_error)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
def test_lda_head_on_cuda_in_fp16(tiny_pets):
    torch.manual_seed(0)
    dls = DataLoaders.from_name_regex(tiny_pets, valid_pct=0.25, presize=40, size=32, batch_size=8, seed=0,
                                      device="cuda", train_augment=False)
    learn = VisionLearner(dls, create_model("resnet18", n_classes=dls.n_classes, pretrained=False), progress=False,
                    train_bn=False).to_fp16()
    learn.freeze()
    learn.fine_tune(0, base_lr=5e-4, freeze_epochs=2, frozen_phase=FrozenPhase(learn).start_head("lda"))
    assert learn.model.head[-1].weight.is_cuda and torch.isfinite(learn.model.head[-1].weight).all()
    assert all(torch.isfinite(torch.tensor(r["train_loss"])) for r in learn.recorder.epochs)


def test_the_recipe_and_the_frozen_phase_know_the_same_head_starts():
    from engine.learning.frozen_phase import HEAD_INITS
    from engine.recipe import LR_AFTER

    assert tuple(LR_AFTER) == HEAD_INITS == ("lda", "random")  # one value each, in every layer
