import copy
import math

import matplotlib
import pytest
import torch

from engine.data import DataLoaders
from engine.learning.learner import Learner
from engine.learning.lr_finder import suggest_minimum, suggest_steep, suggest_valley
from engine.learning.plots import plot_lr_find
from engine.models import create_model
from engine.testing import write_synthetic_pets


@pytest.fixture(scope="module")
def learn(tmp_path_factory):
    folder = tmp_path_factory.mktemp("lrf")
    write_synthetic_pets(folder, breeds=["pug", "beagle", "Bengal"], n_per_breed=8, size=(40, 32), seed=4)
    torch.manual_seed(0)
    dls = DataLoaders.from_name_regex(folder, valid_pct=0.25, presize=32, size=24, batch_size=6, seed=0, device="cpu")
    return Learner(dls, create_model("resnet18", n_classes=dls.n_classes, pretrained=False), progress=False)


def test_lr_find_restores_weights_and_optimizer(learn):
    learn.fit(1, lr=1e-3)  # the optimizer now has state
    model_before = copy.deepcopy(learn.model.state_dict())
    opt_before = copy.deepcopy(learn.opt.state_dict())
    history = len(learn.recorder.losses), len(learn.recorder.epochs)
    result = learn.lr_find(num_it=40)
    for k, v in learn.model.state_dict().items():
        assert torch.equal(v, model_before[k]), k
    opt_after = learn.opt.state_dict()
    assert [g["lr"] for g in opt_after["param_groups"]] == [g["lr"] for g in opt_before["param_groups"]]
    for k, state in opt_before["state"].items():
        assert torch.equal(state["exp_avg"], opt_after["state"][k]["exp_avg"])
    assert (len(learn.recorder.losses), len(learn.recorder.epochs)) == history
    # an exponential sweep: equal ratios between steps
    ratios = [b / a for a, b in zip(result.lrs, result.lrs[1:])]
    assert ratios == pytest.approx([(10 / 1e-7) ** (1 / 39)] * len(ratios))
    assert result.lrs[0] == pytest.approx(1e-7)


def test_lr_find_stops_when_the_loss_explodes_and_restores_the_weights(learn):
    before = copy.deepcopy(learn.model.state_dict())
    result = learn.lr_find(start_lr=1e-4, end_lr=1e4, num_it=60)
    assert len(result.losses) < 60  # stopped early: 4x the minimum, or a NaN
    assert result.lrs[-1] < 1e4
    assert all(torch.equal(v, before[k]) for k, v in learn.model.state_dict().items())


def test_ctrl_c_during_lr_find_stops_it_and_restores_the_weights(learn):
    import signal

    from engine.learning.callbacks import Callback

    class Press(Callback):
        steps = 0

        def after_step(self, learn):
            self.steps += 1
            if self.steps == 5:
                signal.raise_signal(signal.SIGINT)

    before = copy.deepcopy(learn.model.state_dict())
    history = len(learn.recorder.losses)
    learn.add_cb(press := Press())
    try:
        with pytest.raises(KeyboardInterrupt):
            learn.lr_find(num_it=40)
    finally:
        learn.cbs.remove(press)
    assert all(torch.equal(v, before[k]) for k, v in learn.model.state_dict().items())
    assert len(learn.recorder.losses) == history  # the sweep left nothing in the history


def test_smoothing_is_debiased(learn):
    result = learn.lr_find(num_it=12, stop_div=False)
    # the first smoothed value equals the first raw loss (debiasing), later ones lag behind
    assert result.losses[0] == pytest.approx(result.raw_losses[0])
    beta, avg = 0.98, 0.0
    for i, raw in enumerate(result.raw_losses):
        avg = beta * avg + (1 - beta) * raw
        assert result.losses[i] == pytest.approx(avg / (1 - beta ** (i + 1)))


def test_suggestions_on_a_known_curve():
    lrs = [10 ** (-7 + 8 * i / 99) for i in range(100)]
    # flat, then falling fastest around 1e-3, lowest near 1e-1, then exploding
    losses = [2.5 - 2 / (1 + math.exp(-(math.log10(lr) + 3) * 3)) + (max(0, math.log10(lr) + 1)) ** 2 * 3
              for lr in lrs]
    lo = lrs[losses.index(min(losses))]
    assert suggest_minimum(lrs, losses) == pytest.approx(lo / 10)
    assert 3e-4 < suggest_steep(lrs, losses) < 3e-3
    valley = suggest_valley(lrs, losses)
    assert 1e-5 < valley < lo


def test_plot_marks_the_suggestions(learn):
    result = learn.lr_find(num_it=30)
    fig = plot_lr_find(result)
    ax = fig.axes[0]
    assert ax.get_xscale() == "log"
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any(t.startswith("minimum") for t in labels) and any(t.startswith("steep") for t in labels)
    # the "minimum" suggestion is a tenth of the rate at the lowest loss, and the legend says so
    assert f"minimum / 10: {result.suggestions['minimum']:.1e}" in labels
    matplotlib.pyplot.close(fig)
