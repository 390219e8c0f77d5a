"""Benchmark: the default training recipe against a plain baseline, on the sample's split.

    python bench/train.py [--baseline-epochs 2] [--skip-baseline] [--seeds 42,0,1,2,3]

Both start from the pretrained efficientnet_lite0 and train on the ``is_valid == 0`` rows of
$PETS_SAMPLE/labels.csv (296 photos), and are scored on the 74 ``is_valid == 1`` photos.

recipe    ``python -m engine.train`` defaults: presize 460 -> 288, frozen body, head started from
          the class averages (shrinkage LDA with a cross-validated temperature) and then trained
          for 32 one-cycle epochs at 5e-4 on cached features (2 views: each photo and its mirror
          image), test-time augmentation (photo + mirror) for the error. Timed from loading the
          data to the trained model, in this process (imports excluded). ``--seeds`` runs it once
          per seed (the first one gives ``valid_error``) and adds the mean and range: with 74
          validation photos one photo is 1.35 points, so a single run says little on its own.
baseline  the same model with every layer trainable, Adam at a constant 1e-4, per-image
          torchvision augmentation (RandomResizedCrop(224), flip, RandomRotation(10)), batch 32,
          for ``--baseline-epochs`` epochs (default 2: the recipe runs the body twice over the
          training photos, and a full epoch here takes about half a minute), no TTA.

It also times the frozen phase both ways (cached features vs. running the body every epoch, the
same 8 epochs, augmentation off, at 224) to show the speed-up. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.data.items import read_table  # noqa: E402
from engine.data.locate import pets_sample  # noqa: E402


def time_the_recipe(seed: int | None = None) -> dict:
    """The default recipe, as ``python -m engine.train`` runs it (the same ``engine.recipe.run_recipe``)."""
    from dataclasses import replace

    from engine.recipe import Recipe, forget_features, run_recipe

    recipe = Recipe() if seed is None else replace(Recipe(), seed=seed)
    forget_features()  # a whole run each time: not the features an earlier seed's run kept
    report = run_recipe(pets_sample() / "labels.csv", recipe, progress=False)
    return {"valid_error": report["valid_error"], "valid_error_no_tta": report["valid_error_no_tta"],
            "train_s": report["train_s"]}


def frozen_speedup(epochs: int = 8) -> dict:
    """The frozen phase with and without cached features, augmentation off, same epochs."""
    from engine.data import DataLoaders
    from engine.learning.fine_tune import vision_learner
    from engine.learning.frozen_phase import FrozenPhase

    times = {}
    for cached in (False, True):
        torch.manual_seed(0)
        dls = DataLoaders.from_csv(pets_sample() / "labels.csv", batch_size=32, seed=0, train_augment=False)
        learn = vision_learner(dls, progress=False, train_bn=False)
        start = time.perf_counter()
        if cached:
            FrozenPhase(learn).fit(epochs, 2e-3, pct_start=0.99)  # the features are computed here, timed too
        else:
            learn.fit_one_cycle(epochs, slice(2e-3), pct_start=0.99)
        times[cached] = time.perf_counter() - start
    return {"frozen_uncached_s": times[False], "frozen_cached_s": times[True],
            "frozen_speedup": times[False] / times[True]}


class Photos(Dataset):
    def __init__(self, items, labels, tfm):
        self.items, self.labels, self.tfm = items, labels, tfm

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        return self.tfm(Image.open(self.items[i]).convert("RGB")), self.labels[i]


def run_baseline(epochs: int) -> dict:
    """The plain way: every layer trainable, constant-LR Adam, torchvision augmentation per image."""
    from torchvision.transforms import v2

    from engine.models import create_model

    root = pets_sample()
    items, labels, valid = read_table(root / "labels.csv", root / "images")
    vocab = sorted(set(labels))
    y = [vocab.index(lbl) for lbl in labels]
    norm = [v2.PILToTensor(), v2.ToDtype(torch.float32, scale=True), v2.Normalize([0.5] * 3, [0.5] * 3)]
    train_tfm = v2.Compose([v2.RandomResizedCrop(224, antialias=True), v2.RandomHorizontalFlip(),
                            v2.RandomRotation(10), *norm])
    valid_tfm = v2.Compose([v2.Resize(256, antialias=True), v2.CenterCrop(224), *norm])
    tr = [i for i, v in enumerate(valid) if not v]
    va = [i for i, v in enumerate(valid) if v]
    torch.manual_seed(0)
    train_dl = DataLoader(Photos([items[i] for i in tr], [y[i] for i in tr], train_tfm), batch_size=32,
                          shuffle=True, drop_last=True)
    valid_dl = DataLoader(Photos([items[i] for i in va], [y[i] for i in va], valid_tfm), batch_size=32)
    model = create_model(n_classes=len(vocab)).to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    start = time.perf_counter()
    for _ in range(epochs):
        model.train()
        for xb, yb in train_dl:
            loss = torch.nn.functional.cross_entropy(model(xb), yb)
            loss.backward()
            opt.step()
            opt.zero_grad()
    train_s = time.perf_counter() - start
    model.eval()
    wrong = n = 0
    with torch.no_grad():
        for xb, yb in valid_dl:
            wrong += int((model(xb).argmax(1) != yb).sum())
            n += len(yb)
    return {"baseline_valid_error": wrong / n, "baseline_train_s": train_s, "baseline_epochs": epochs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline-epochs", type=int, default=2)
    parser.add_argument("--skip-baseline", action="store_true")
    parser.add_argument("--seeds", default=None,
                        help="comma-separated seeds for the recipe (default: the recipe's own seed, once)")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")] if args.seeds else [None]
    runs = []
    for seed in seeds:
        runs.append(time_the_recipe(seed))
        print(f"recipe{'' if seed is None else f' (seed {seed})'}: validation error {runs[-1]['valid_error']:.2%} "
              f"(without TTA {runs[-1]['valid_error_no_tta']:.2%}) in {runs[-1]['train_s']:.1f} s", flush=True)
    figures = dict(runs[0])
    if len(runs) > 1:
        errors = [r["valid_error"] for r in runs]
        figures.update(seeds=seeds, valid_error_mean=sum(errors) / len(errors), valid_error_min=min(errors),
                       valid_error_max=max(errors), train_s_max=max(r["train_s"] for r in runs))
    speed = frozen_speedup()
    print(f"frozen phase, 8 epochs: {speed['frozen_uncached_s']:.1f} s through the body, "
          f"{speed['frozen_cached_s']:.1f} s on cached features (x{speed['frozen_speedup']:.1f})", flush=True)
    figures.update(speed)
    if not args.skip_baseline:
        base = run_baseline(args.baseline_epochs)
        print(f"baseline: validation error {base['baseline_valid_error']:.2%} in {base['baseline_train_s']:.1f} s "
              f"({base['baseline_epochs']} epochs)", flush=True)
        figures.update(base)
    print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in figures.items()}))


if __name__ == "__main__":
    main()
