import math

import pytest
import torch

from engine.numerics import NonFiniteError, check_finite, compare_softmax, log_of, naive_softmax


def test_log_of_negative_two():
    out = log_of(-2)
    assert out["x"] == -2 and math.isnan(out["torch.log"])  # torch carries on with a NaN ...
    assert out["math.log"] == "ValueError: math domain error"  # ... where Python refuses (reported, not raised)


def test_log_of_zero_is_minus_inf_in_torch():
    assert log_of(0)["torch.log"] == float("-inf")
    assert log_of(math.e)["torch.log"] == pytest.approx(1.0)


def test_naive_softmax_overflows_engine_does_not():
    logits = torch.tensor([[1000.0, 999.0, -5.0]])
    report = compare_softmax(logits)
    assert torch.isnan(report["naive_softmax"]).any()  # exp(1000) = inf, inf / inf = nan
    assert not report["naive_finite"]
    assert report["engine_finite"]
    expected = torch.softmax(logits, dim=-1)
    torch.testing.assert_close(report["engine_softmax"], expected)
    torch.testing.assert_close(report["engine_log_softmax"], torch.log_softmax(logits, dim=-1))


def test_naive_log_softmax_underflows_to_minus_inf():
    logits = torch.tensor([[0.0, -200.0]])  # exp(-200) is below float32's smallest number
    report = compare_softmax(logits)
    assert report["naive_log_softmax"][0, 1] == float("-inf")
    assert report["engine_log_softmax"][0, 1].item() == pytest.approx(-200.0)


def test_naive_softmax_fine_for_small_logits():
    x = torch.randn(3, 4)
    torch.testing.assert_close(naive_softmax(x), torch.softmax(x, -1))


def test_check_finite_passes_through():
    x = torch.tensor(1.5)
    assert check_finite(x) is x


def test_check_finite_names_value_and_step():
    with pytest.raises(NonFiniteError,
                       match=r"^loss became NaN at epoch 1, batch 7: the learning rate may be too high"):
        check_finite(torch.tensor(float("nan")), "loss", epoch=1, batch=7)


def test_check_finite_infinite_and_custom_hint():
    with pytest.raises(NonFiniteError, match=r"^activations became infinite: check the input"):
        check_finite(torch.tensor([1.0, float("inf")]), "activations", hint="check the input")
    assert issubclass(NonFiniteError, FloatingPointError)
