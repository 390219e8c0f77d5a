"""Each engine loss against torch.nn.functional: values and gradients, float32 and float64."""

import pytest
import torch
import torch.nn.functional as F

from engine import losses as L

DTYPES = [torch.float32, torch.float64]
TOL = {torch.float32: dict(rtol=1e-5, atol=1e-5), torch.float64: dict(rtol=1e-10, atol=1e-10)}


def _pair(shape, dtype, scale=3.0, seed=0):
    """The same random logits twice, as two leaf tensors, so both sides get their own gradients."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(*shape, generator=g, dtype=dtype) * scale
    return x.clone().requires_grad_(), x.clone().requires_grad_()


def _targets(n, n_classes, seed=0):
    return torch.randint(0, n_classes, (n,), generator=torch.Generator().manual_seed(seed + 1))


def _assert_same(ours, ref, a, b, dtype):
    assert torch.isfinite(ours).all(), "engine value is not finite"
    torch.testing.assert_close(ours, ref, **TOL[dtype])
    upstream = torch.randn_like(ours)  # a random upstream gradient checks the whole Jacobian product
    ours.backward(upstream)
    ref.backward(upstream)
    assert torch.isfinite(a.grad).all(), "engine gradient is not finite"
    torch.testing.assert_close(a.grad, b.grad, **TOL[dtype])


SHAPES = [(1, 2), (5, 3), (17, 37), (64, 10)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("scale", [1.0, 30.0, 1e4])
def test_softmax_and_log_softmax_match_torch(dtype, shape, scale):
    a, b = _pair(shape, dtype, scale)
    _assert_same(L.softmax(a), F.softmax(b, dim=-1), a, b, dtype)
    a, b = _pair(shape, dtype, scale)
    _assert_same(L.log_softmax(a), F.log_softmax(b, dim=-1), a, b, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("dim", [0, 1, -1])
def test_logsumexp_matches_torch(dtype, dim):
    a, b = _pair((7, 11), dtype, 1e4)
    _assert_same(L.logsumexp(a, dim=dim), torch.logsumexp(b, dim=dim), a, b, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("views", [1, 2, 3])
@pytest.mark.parametrize("dim", [0, 1])
def test_log_mean_softmax_is_the_log_of_the_averaged_probabilities(dtype, views, dim):
    """Test-time augmentation's average, against the direct formula: mean of the softmaxes, then log."""
    shape = [17, 37]
    shape.insert(dim, views)
    a, b = _pair(shape, dtype)
    _assert_same(L.log_mean_softmax(a, dim=dim), F.softmax(b, dim=-1).mean(dim).log(), a, b, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_log_mean_softmax_stays_finite_where_the_direct_formula_does_not(dtype):
    a, b = _pair((2, 8, 37), dtype, scale=1e4)
    assert torch.isinf(F.softmax(b, dim=-1).mean(0).log()).any()  # probabilities that underflow to 0
    ref = torch.logsumexp(F.log_softmax(b, dim=-1), dim=0) - torch.log(torch.tensor(2.0, dtype=dtype))
    _assert_same(L.log_mean_softmax(a), ref, a, b, dtype)


def test_log_mean_softmax_refuses_to_average_the_classes():
    with pytest.raises(ValueError, match="other than the classes'"):
        L.log_mean_softmax(torch.randn(2, 5), dim=-1)
    with pytest.raises(ValueError, match="stack the predictions first"):
        L.log_mean_softmax(torch.randn(5))


def test_softmax_rows_sum_to_one():
    p = L.softmax(torch.randn(8, 37) * 5)
    torch.testing.assert_close(p.sum(dim=1), torch.ones(8))
    assert (p > 0).all()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("weighted", [False, True])
def test_nll_loss_matches_torch(dtype, shape, reduction, weighted):
    a, b = _pair(shape, dtype)
    t = _targets(shape[0], shape[1])
    w = torch.rand(shape[1], dtype=dtype) + 0.1 if weighted else None
    ours = L.nll_loss(L.log_softmax(a), t, weight=w, reduction=reduction)
    ref = F.nll_loss(F.log_softmax(b, dim=1), t, weight=w, reduction=reduction)
    _assert_same(ours, ref, a, b, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
@pytest.mark.parametrize("scale", [3.0, 1e4])
def test_cross_entropy_matches_torch(dtype, shape, reduction, weighted, smoothing, scale):
    a, b = _pair(shape, dtype, scale)
    t = _targets(shape[0], shape[1])
    w = torch.rand(shape[1], dtype=dtype) + 0.1 if weighted else None
    ours = L.cross_entropy(a, t, weight=w, reduction=reduction, label_smoothing=smoothing)
    ref = F.cross_entropy(b, t, weight=w, reduction=reduction, label_smoothing=smoothing)
    _assert_same(ours, ref, a, b, dtype)


def test_cross_entropy_is_nll_of_log_softmax():
    x, t = torch.randn(9, 5), _targets(9, 5)
    torch.testing.assert_close(L.cross_entropy(x, t), L.nll_loss(L.log_softmax(x), t))


def test_worked_example_by_hand():
    """The example a student can recompute: 6 items, 2 classes."""
    torch.manual_seed(42)
    acts = torch.randn(6, 2) * 2
    targets = torch.tensor([0, 1, 0, 1, 1, 0])
    ours = L.cross_entropy(acts, targets)
    assert ours.item() == pytest.approx(F.cross_entropy(acts, targets).item(), abs=1e-6)
    assert ours.item() == pytest.approx(1.8045, abs=1e-4)
    # By hand: softmax, pick the target's probability, -log, mean.
    probs = acts.exp() / acts.exp().sum(dim=1, keepdim=True)
    by_hand = -probs[range(6), targets].log().mean()
    assert ours.item() == pytest.approx(by_hand.item(), abs=1e-6)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("scale", [1.0, 50.0, 1e4])
def test_sigmoid_matches_torch(dtype, scale):
    a, b = _pair((6, 9), dtype, scale)
    _assert_same(L.sigmoid(a), torch.sigmoid(b), a, b, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("scale", [1.0, 1e4])
@pytest.mark.parametrize("weighted", [False, True])
def test_bce_with_logits_matches_torch(dtype, reduction, scale, weighted):
    a, b = _pair((8, 5), dtype, scale)
    y = (torch.rand(8, 5, generator=torch.Generator().manual_seed(3)) > 0.5).to(dtype)
    w = torch.rand(8, 5, dtype=dtype) if weighted else None
    ours = L.binary_cross_entropy_with_logits(a, y, weight=w, reduction=reduction)
    ref = F.binary_cross_entropy_with_logits(b, y, weight=w, reduction=reduction)
    _assert_same(ours, ref, a, b, dtype)


def test_bce_gradient_at_exactly_zero():
    """max/abs tricks give a wrong gradient at x = 0; the logsumexp form does not."""
    a = torch.zeros(4, requires_grad=True)
    b = torch.zeros(4, requires_grad=True)
    y = torch.tensor([0.0, 1.0, 0.0, 1.0])
    L.binary_cross_entropy_with_logits(a, y).backward()
    F.binary_cross_entropy_with_logits(b, y).backward()
    torch.testing.assert_close(a.grad, b.grad)


def test_where_loss_two_categories():
    x = torch.tensor([2.0, -1.0, 0.5, -3.0], requires_grad=True)
    t = torch.tensor([1, 0, 0, 1])
    loss = L.where_loss(x, t)
    s = torch.sigmoid(x.detach())
    expected = torch.tensor([1 - s[0], s[1], s[2], 1 - s[3]]).mean()
    assert loss.item() == pytest.approx(expected.item(), abs=1e-6)
    loss.backward()
    # d/dx of mean(1 - s) is -s(1-s)/n for targets 1, +s(1-s)/n for targets 0.
    grad = s * (1 - s) / 4 * torch.tensor([-1.0, 1.0, 1.0, -1.0])
    torch.testing.assert_close(x.grad, grad)


def test_where_loss_refuses_three_categories():
    with pytest.raises(ValueError, match=r"exactly two categories.*\[0, 1, 2\].*cross_entropy"):
        L.where_loss(torch.randn(3), torch.tensor([0, 1, 2]))


# --- bad input: clear errors naming what was expected ------------------------------------------

@pytest.mark.parametrize("func", [L.cross_entropy, lambda x, t: L.nll_loss(L.log_softmax(x), t)])
def test_empty_batch_is_a_clear_error(func):
    with pytest.raises(ValueError, match="empty batch"):
        func(torch.randn(0, 37), torch.zeros(0, dtype=torch.long))


def test_bce_empty_batch():
    with pytest.raises(ValueError, match="empty batch"):
        L.binary_cross_entropy_with_logits(torch.randn(0, 3), torch.zeros(0, 3))


def test_wrong_target_dtype():
    with pytest.raises(TypeError, match=r"torch.long.*float32.*targets.long\(\)"):
        L.cross_entropy(torch.randn(4, 3), torch.tensor([0.0, 1.0, 2.0, 1.0]))


def test_wrong_target_shape():
    with pytest.raises(ValueError, match=r"shape \(4,\).*got shape \(4, 1\)"):
        L.cross_entropy(torch.randn(4, 3), torch.zeros(4, 1, dtype=torch.long))


@pytest.mark.parametrize("bad", [3, -1])
def test_target_out_of_range(bad):
    with pytest.raises(ValueError, match=r"\[0, 2\] for 3 classes"):
        L.cross_entropy(torch.randn(4, 3), torch.tensor([0, 1, bad, 1]))


def test_integer_logits_rejected():
    with pytest.raises(TypeError, match="floating-point"):
        L.softmax(torch.tensor([1, 2, 3]))


def test_logits_must_be_2d_for_cross_entropy():
    with pytest.raises(ValueError, match=r"\(batch, n_classes\)"):
        L.cross_entropy(torch.randn(4), torch.zeros(4, dtype=torch.long))


def test_bce_targets_must_be_float_and_same_shape():
    with pytest.raises(TypeError, match="float tensor"):
        L.binary_cross_entropy_with_logits(torch.randn(2, 3), torch.ones(2, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="same shape"):
        L.binary_cross_entropy_with_logits(torch.randn(2, 3), torch.ones(2, 4))


def test_bad_reduction_and_smoothing():
    with pytest.raises(ValueError, match="reduction must be one of"):
        L.cross_entropy(torch.randn(2, 3), torch.tensor([0, 1]), reduction="avg")
    with pytest.raises(ValueError, match="label_smoothing"):
        L.cross_entropy(torch.randn(2, 3), torch.tensor([0, 1]), label_smoothing=1.5)
    with pytest.raises(ValueError, match="one value per class"):
        L.nll_loss(torch.randn(2, 3), torch.tensor([0, 1]), weight=torch.ones(4))
