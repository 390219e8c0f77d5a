import matplotlib
import numpy as np
import torch

from engine.data import DataLoaders
from engine.data.show import show_batch, show_images, to_display


def test_show_batch_draws_labelled_images(synthetic_pets):
    dls = DataLoaders.from_name_regex(synthetic_pets / "images", presize=64, size=32, batch_size=8,
                                      device="cpu", seed=0)
    fig = show_batch(dls, n=6, ncols=3)
    assert isinstance(fig, matplotlib.figure.Figure)
    drawn = [ax for ax in fig.axes if ax.images]
    assert len(drawn) == 6
    titles = [ax.get_title() for ax in drawn]
    assert all(t in dls.vocab for t in titles)
    shown = drawn[0].images[0].get_array()
    assert shown.shape == (32, 32, 3) and 0 <= shown.min() and shown.max() <= 1
    matplotlib.pyplot.close(fig)


def test_show_images_and_to_display():
    assert to_display(torch.full((3, 2, 2), 255.0)).max() == 1.0
    assert to_display(np.zeros((2, 2, 3), np.uint8)).dtype == np.float64
    fig = show_images([np.zeros((4, 4, 3), np.uint8)] * 4, ["a", "b", "c", "d"], ncols=2, suptitle="s")
    assert len([ax for ax in fig.axes if ax.images]) == 4
    matplotlib.pyplot.close(fig)
