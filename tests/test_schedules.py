import math

import pytest

from engine.learning.schedules import (
    combine,
    cos_anneal,
    exp_anneal,
    lin_anneal,
    lr_for_groups,
    one_cycle_lr,
    one_cycle_mom,
)


def test_cos_anneal_points():
    assert cos_anneal(1.0, 0.0, 0.0) == 1.0
    assert cos_anneal(1.0, 0.0, 1.0) == pytest.approx(0.0)
    assert cos_anneal(1.0, 0.0, 0.5) == pytest.approx(0.5)
    # a quarter of the way: 0 + 1/2 (1 + cos(pi/4)) = 0.8536
    assert cos_anneal(1.0, 0.0, 0.25) == pytest.approx(0.5 * (1 + math.sqrt(0.5)))


def test_lin_and_exp_anneal():
    assert lin_anneal(2, 4, 0.25) == 2.5
    assert exp_anneal(1e-7, 10, 0.5) == pytest.approx(math.sqrt(1e-7 * 10))
    assert exp_anneal(1e-7, 10, 1.0) == pytest.approx(10)


def test_one_cycle_lr_hand_computed_points():
    lr_max, div, div_final, pct_start = 1e-2, 25, 1e5, 0.25
    f = lambda p: one_cycle_lr(p, lr_max, div, div_final, pct_start)  # noqa: E731
    assert f(0.0) == pytest.approx(lr_max / div)  # 4e-4
    assert f(0.25) == pytest.approx(lr_max)
    assert f(1.0) == pytest.approx(lr_max / div_final)  # 1e-7
    # half-way through the warm-up: the mean of start and peak
    assert f(0.125) == pytest.approx((4e-4 + 1e-2) / 2)
    # half-way through the annealing (pct = 0.625): the mean of peak and end
    assert f(0.625) == pytest.approx((1e-2 + 1e-7) / 2)


def test_one_cycle_mom_moves_inversely():
    assert one_cycle_mom(0.0) == pytest.approx(0.95)
    assert one_cycle_mom(0.25) == pytest.approx(0.85)
    assert one_cycle_mom(1.0) == pytest.approx(0.95)
    pcts = [i / 100 for i in range(101)]
    lrs = [one_cycle_lr(p, 1.0) for p in pcts]
    moms = [one_cycle_mom(p) for p in pcts]
    peak = lrs.index(max(lrs))
    assert moms.index(min(moms)) == peak == 25


def test_combine_checks_shares():
    with pytest.raises(ValueError, match="add up to 1"):
        combine([0.3, 0.3], [lambda p: p, lambda p: p])
    f = combine([0.5, 0.5], [lambda p: p, lambda p: 1 + p])
    assert f(0.25) == 0.5 and f(0.75) == 1.5


def test_lr_for_groups():
    assert lr_for_groups(1e-3, 3) == [1e-3] * 3
    lrs = lr_for_groups(slice(1e-6, 1e-4), 3)
    assert lrs == pytest.approx([1e-6, 1e-5, 1e-4])
    assert lr_for_groups(slice(1e-3), 3) == pytest.approx([1e-4, 1e-4, 1e-3])
    four = lr_for_groups(slice(1e-5, 1e-2), 4)
    ratios = [b / a for a, b in zip(four, four[1:])]
    assert ratios == pytest.approx([10, 10, 10])  # geometric: the same factor each step
    assert lr_for_groups(slice(1e-5, 1e-3), 1) == [1e-3]


def test_lr_for_groups_errors():
    with pytest.raises(ValueError, match="0 < lo <= hi"):
        lr_for_groups(slice(1e-2, 1e-4), 3)
    with pytest.raises(ValueError, match="not a step"):
        lr_for_groups(slice(1e-4, 1e-2, 2), 3)
    with pytest.raises(ValueError, match="needs at least"):
        lr_for_groups(slice(None), 3)
