import matplotlib
import pytest
import torch

from engine.learning.interpret import ClassificationInterpretation
from engine.losses import cross_entropy


def make(vocab=("a", "b", "c")):
    # 6 items: actual a,a,b,b,c,c ; predicted a,b,b,b,a,a (by logits)
    logits = torch.tensor([[3.0, 0, 0], [0, 2.0, 0], [0, 3.0, 0], [0, 4.0, 0], [5.0, 0, 0], [1.0, 0, 0.5]])
    targets = torch.tensor([0, 0, 1, 1, 2, 2])
    return ClassificationInterpretation(logits, targets, list(vocab))


def test_confusion_matrix_and_most_confused():
    interp = make()
    assert interp.confusion_matrix().tolist() == [[1, 1, 0], [0, 2, 0], [2, 0, 0]]
    assert interp.most_confused() == [("c", "a", 2), ("a", "b", 1)]
    assert interp.most_confused(min_val=2) == [("c", "a", 2)]


def test_top_losses_are_the_largest_cross_entropies():
    interp = make()
    losses, idx = interp.top_losses(2)
    expected = cross_entropy(interp.logits, interp.targets, reduction="none")
    assert idx.tolist() == expected.topk(2).indices.tolist() == [4, 1]
    torch.testing.assert_close(losses, expected.topk(2).values)
    assert interp.probs.sum(1).allclose(torch.ones(6))


def test_plot_confusion_matrix():
    fig = make().plot_confusion_matrix()
    assert isinstance(fig, matplotlib.figure.Figure)
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert sorted(texts) == ["1", "1", "2", "2"]
    matplotlib.pyplot.close(fig)


def test_plot_confusion_matrix_names_the_classes_in_the_size_asked():
    interp = make()
    names = [f"breed {v}" for v in interp.vocab]
    fig = interp.plot_confusion_matrix(labels=names, fontsize=9, figsize=(5, 5))
    ticks = fig.axes[0].get_yticklabels()
    assert [t.get_text() for t in ticks] == names and {t.get_fontsize() for t in ticks} == {9}
    assert {t.get_fontsize() for t in fig.axes[0].texts} == {8}  # the counts, a point smaller
    matplotlib.pyplot.close(fig)
    with pytest.raises(ValueError, match="one label per class"):
        interp.plot_confusion_matrix(labels=names[:-1])


def test_plot_top_losses_needs_data():
    with pytest.raises(ValueError, match="needs the DataLoaders"):
        make().plot_top_losses(2)


def test_from_learner_and_plot_top_losses(tmp_path):
    from engine.data import DataLoaders
    from engine.learning.learner import Learner
    from engine.models import create_model
    from engine.testing import write_synthetic_pets

    write_synthetic_pets(tmp_path, breeds=["pug", "beagle", "Bengal"], n_per_breed=6, size=(40, 32))
    dls = DataLoaders.from_name_regex(tmp_path, presize=32, size=24, batch_size=6, device="cpu", valid_pct=0.33)
    learn = Learner(dls, create_model("resnet18", n_classes=3, pretrained=False), progress=False)
    interp = ClassificationInterpretation.from_learner(learn)
    assert interp.confusion_matrix().sum() == len(dls.valid.dataset)
    fig = interp.plot_top_losses(4, ncols=2)
    titles = [ax.get_title() for ax in fig.axes if ax.images]
    assert len(titles) == 4 and all(" / " in t and "loss" in t for t in titles)
    matplotlib.pyplot.close(fig)
    tta = ClassificationInterpretation.from_learner(learn, tta=True)
    assert tta.probs.shape == interp.probs.shape
    # with the model: the same photos, with where it looked laid over them; the model keeps its mode
    learn.model.train()
    plain = interp.plot_top_losses(4, ncols=2)
    looked = interp.plot_top_losses(4, ncols=2, model=learn.model)
    assert learn.model.training
    a = [ax.images[0].get_array() for ax in plain.axes if ax.images]
    b = [ax.images[0].get_array() for ax in looked.axes if ax.images]
    assert [x.shape for x in a] == [x.shape for x in b] and any(abs(x - y).max() > 0.08 for x, y in zip(a, b))
    matplotlib.pyplot.close(plain), matplotlib.pyplot.close(looked)


def test_plot_top_losses_of_the_training_split_shows_the_photos_as_predicted(tmp_path):
    from engine.data import DataLoaders
    from engine.learning.learner import Learner
    from engine.models import create_model
    from engine.testing import write_synthetic_pets

    write_synthetic_pets(tmp_path, breeds=["pug", "beagle", "Bengal"], n_per_breed=6, size=(48, 30))
    dls = DataLoaders.from_name_regex(tmp_path, presize=32, size=24, batch_size=6, device="cpu", valid_pct=0.33)
    learn = Learner(dls, create_model("resnet18", n_classes=3, pretrained=False), progress=False)
    interp = ClassificationInterpretation.from_learner(learn, split="train")
    assert len(interp.targets) == len(dls.train.dataset)
    _, idx = interp.top_losses(3)
    xb = torch.cat([xb for xb, _ in dls.train_in_order(augment=False)])  # what get_preds("train") saw
    expected = dls.decode(xb[idx])  # (3, 3, 24, 24) in 0..1
    for _ in range(2):  # the same pictures every time: no random crop of a wide photo
        fig = interp.plot_top_losses(3)
        shown = [torch.from_numpy(ax.images[0].get_array().data).float() for ax in fig.axes if ax.images]
        for picture, want in zip(shown, expected):
            torch.testing.assert_close(picture, want.permute(1, 2, 0), atol=1e-5, rtol=0)
        matplotlib.pyplot.close(fig)
