"""Interpretation: where is the model wrong, and how wrong?

* the confusion matrix counts, for every actual breed, which breed the model predicted;
* ``most_confused`` lists the off-diagonal cells with the largest counts: the pairs of breeds the
  model mixes up (often breeds that people mix up too);
* ``top_losses`` are the items the model was most confidently wrong about (or least confidently
  right): the place to look for mislabelled or unusual photos before cleaning the data; with
  ``plot_top_losses(model=...)`` each photo also shows where the model looked for its prediction
  (its class-activation map, ``engine/cam.py``).

Losses come from the logits through ``cross_entropy`` (the log domain), never from ``log(p)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from ..losses import cross_entropy, softmax

__all__ = ["ClassificationInterpretation"]


class ClassificationInterpretation:
    """Predictions of a learner on one split, with per-item losses."""

    def __init__(self, logits: Tensor, targets: Tensor, vocab: list[str], dls=None, split: str = "valid"):
        self.logits, self.targets, self.vocab, self.dls, self.split = logits, targets, list(vocab), dls, split
        self.probs = softmax(logits, dim=1)  # (n, n_classes)
        self.preds = self.probs.argmax(dim=1)
        self.losses = cross_entropy(logits, targets, reduction="none")  # (n,)

    @classmethod
    def from_learner(cls, learn, split: str = "valid", tta: bool = False) -> ClassificationInterpretation:
        """Predict ``split`` with ``learn`` (with test-time augmentation if ``tta``) and interpret it."""
        logits, targets = learn.get_preds(split, activation=None, tta=tta)
        return cls(logits, targets, learn.dls.vocab, learn.dls, split)

    def confusion_matrix(self) -> Tensor:
        """(n_classes, n_classes) counts: row = actual class, column = predicted class."""
        n = len(self.vocab)
        flat = self.targets * n + self.preds
        return torch.bincount(flat, minlength=n * n).reshape(n, n)

    def most_confused(self, min_val: int = 1) -> list[tuple[str, str, int]]:
        """(actual, predicted, count) for every mix-up seen at least ``min_val`` times, most first."""
        cm = self.confusion_matrix()
        pairs = [(self.vocab[a], self.vocab[p], int(cm[a, p])) for a in range(len(self.vocab))
                 for p in range(len(self.vocab)) if a != p and cm[a, p] >= min_val]
        return sorted(pairs, key=lambda t: (-t[2], t[0], t[1]))

    def top_losses(self, k: int | None = None) -> tuple[Tensor, Tensor]:
        """The ``k`` largest losses and their item indices, largest first."""
        k = len(self.losses) if k is None else min(k, len(self.losses))
        return self.losses.topk(k)

    def plot_confusion_matrix(self, normalize: bool = False, figsize: tuple[float, float] | None = None,
                              labels: Sequence[str] | None = None, fontsize: float = 7):
        """Draw the confusion matrix (rows actual, columns predicted), the classes named by ``labels``
        (default: the vocab) in ``fontsize`` points."""
        import matplotlib.pyplot as plt

        cm = self.confusion_matrix().float()
        if normalize:
            cm = cm / cm.sum(dim=1, keepdim=True).clamp(min=1)
        n = len(self.vocab)
        labels = list(self.vocab if labels is None else labels)
        if len(labels) != n:
            raise ValueError(f"plot_confusion_matrix: expected one label per class ({n}), got {len(labels)}")
        size = figsize or (max(4, n * 0.32), max(4, n * 0.32))
        fig, ax = plt.subplots(figsize=size)
        ax.imshow(cm.numpy(), cmap="Blues")
        ax.set_xticks(range(n), labels, rotation=90, fontsize=fontsize)
        ax.set_yticks(range(n), labels, fontsize=fontsize)
        ax.set_xlabel("predicted")
        ax.set_ylabel("actual")
        for a in range(n):
            for p in range(n):
                if cm[a, p] > 0:
                    ax.text(p, a, f"{cm[a, p]:.2f}" if normalize else int(cm[a, p]), ha="center", va="center",
                            fontsize=fontsize - 1, color="white" if cm[a, p] > cm.max() / 2 else "black")
        fig.tight_layout()
        return fig

    def plot_top_losses(self, k: int = 9, ncols: int = 3, model=None):
        """The ``k`` worst items: image, predicted / actual, loss, probability of the prediction.
        With ``model`` (the learner's ``Classifier``), the map of where it looked for the predicted
        breed is laid over each photo (``cam.where_looked``, ``cam.overlay``)."""
        from ..data.show import show_images

        if self.dls is None:
            raise ValueError("plot_top_losses needs the DataLoaders to load the images: use from_learner")
        losses, idx = self.top_losses(k)
        # The photos as the predictions saw them: for "train", in order and without augmentation
        # (as ``from_learner`` predicts them), not a random crop of the shuffled training loader.
        loader = self.dls.valid if self.split == "valid" else self.dls.train_in_order(augment=False)
        images, titles = [], []
        for loss, i in zip(losses.tolist(), idx.tolist()):
            x = loader.augment(loader.dataset.load(i)[None].to(self.dls.device), train=False)  # (1, 3, H, W)
            image = self.dls.decode(x)[0]
            if model is not None:
                image = self._looked(model, x, int(self.preds[i]), image)
            images.append(image)
            pred, actual = self.vocab[self.preds[i]], self.vocab[self.targets[i]]
            titles.append(f"{pred} / {actual}\nloss {loss:.2f}, p {self.probs[i, self.preds[i]]:.2f}")
        return show_images(images, titles, ncols=ncols, suptitle="predicted / actual, loss, probability")

    @staticmethod
    def _looked(model, x: Tensor, breed: int, image: Tensor):
        """``image`` (3, H, W) 0..1 as a (H, W, 3) uint8 picture with the map of where ``model``
        looked for ``breed`` in ``x`` (1, 3, H, W), normalized, laid over it."""
        from ..cam import activation_maps, overlay, where_looked

        was_training = model.training
        model.eval()  # BatchNorm with its running statistics, as the predictions were made
        try:
            with torch.no_grad():
                cam = activation_maps(model.head, model.body(x))[0, breed].cpu().numpy()  # (h, w)
        finally:
            model.train(was_training)
        picture = (image.permute(1, 2, 0).clamp(0, 1) * 255).round().byte().cpu().numpy()
        return overlay(picture, where_looked(cam, picture.shape[:2]))
