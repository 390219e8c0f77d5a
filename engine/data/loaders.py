"""Datasets and DataLoaders: from files and labels to augmented batches on the device.

The path of one training image, step by step (``summary`` prints exactly these steps):

    on the CPU, per image (in DataLoader workers when ``num_workers > 0``):
      1. open image  - decode, EXIF orientation, any mode -> RGB          (transforms.load_array)
      2. presize     - one high-quality resize to a large square (460)    (transforms.Presize)
      3. to tensor   - (3, 460, 460) uint8, no copy                       (transforms.pil_to_tensor)
    per batch:
      4. collate     - stack into (bs, 3, 460, 460) uint8
      5. to device   - the GPU when there is one
      6. augment     - flip/rotate/zoom/warp/crop/resize in one grid_sample, lighting, normalize

Images stay uint8 until they reach the device: four times less memory to move than float32.
"""

from __future__ import annotations

import copy
import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from .augment import AugmentOptions, BatchAugment
from .items import (
    PETS_PATTERN,
    RegexLabeller,
    column_split,
    format_bad_images,
    get_image_files,
    label_items,
    misnamed_formats,
    parent_label,
    random_split,
    read_table,
    verify_images,
)
from .preprocessing import Preprocessing
from .transforms import Presize, load_array, pil_to_tensor

__all__ = ["ImageDataset", "CollateError", "collate", "DeviceLoader", "LoaderOptions", "DataLoaders", "default_device"]


def default_device() -> torch.device:
    """``cuda`` when a GPU is available, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


class ImageDataset(Dataset):
    """Image files with integer labels, loaded through the CPU item steps.

    ``DataLoaders.from_items`` checks the files first and leaves the unreadable ones out with one
    warning that lists them. If a file still fails later (say it changed on disk), that item is
    replaced by the next one, with a warning, so an epoch never stops half-way.
    """

    def __init__(self, items: Sequence[Path], labels: Sequence[int], presize: Presize | None = None,
                 random: bool = False):
        items, labels = [Path(p) for p in items], list(labels)
        if len(items) != len(labels):
            raise ValueError(f"got {len(items)} items but {len(labels)} labels")
        if not items:
            raise ValueError("the dataset is empty: no usable image files")
        # random: a training set's random treatment (a random presize crop, then random batch augmentation);
        # without it, exactly the validation treatment.
        self.items, self.labels, self.presize, self.random = items, labels, presize, random
        # Draft decoding may shrink big JPEGs while decoding, as long as they stay >= the presize.
        self.min_size = presize.size if presize is not None else None

    def __len__(self) -> int:
        return len(self.items)

    def steps(self) -> list[tuple[str, Callable]]:
        """The per-image steps, in order, as (name, function) pairs: what ``__getitem__`` runs."""
        out: list[tuple[str, Callable]] = [("open image", lambda p: load_array(p, self.min_size))]
        if self.presize is not None:
            out.append((f"presize ({self.presize.method} {self.presize.size})",
                        lambda img: self.presize(img, train=self.random, rng=_TorchRandom())))
        out.append(("to tensor", pil_to_tensor))
        return out

    def load(self, i: int) -> Tensor:
        x = self.items[i]
        for _, step in self.steps():
            x = step(x)
        return x

    def __getitem__(self, i: int) -> tuple[Tensor, int]:
        for attempt in range(len(self.items)):
            j = (i + attempt) % len(self.items)
            try:
                return self.load(j), self.labels[j]
            except OSError as err:  # PIL's errors for corrupt/truncated files are OSErrors
                warnings.warn(f"could not read {self.items[j]} ({err}); using the next image instead", stacklevel=2)
        raise RuntimeError("no image in the dataset could be read")


class _TorchRandom:
    """``random()`` from torch's generator: DataLoader seeds it in each worker from its own seed."""

    def random(self) -> float:
        return float(torch.rand(()))


class CollateError(RuntimeError):
    """Items of a batch cannot be stacked into one tensor."""


def collate(batch: list[tuple[Tensor, int]]) -> tuple[Tensor, Tensor]:
    """Stack images into a (bs, 3, H, W) uint8 channels-last batch, labels into (bs,) int64."""
    shapes = {tuple(x.shape) for x, _ in batch}
    if len(shapes) > 1:
        raise CollateError(
            f"cannot collate images of different sizes into one batch: got shapes {sorted(shapes)[:4]}"
            f"{' ...' if len(shapes) > 4 else ''}. Add an item transform that resizes every image to "
            f"the same size (presize={Preprocessing.presize})."
        )
    first = batch[0][0]
    shape = (len(batch), *first.shape)
    if torch.utils.data.get_worker_info() is None:
        out = torch.empty(shape, dtype=first.dtype, memory_format=torch.channels_last)
    else:
        # In a worker process, build the batch directly in shared memory (as PyTorch's own
        # default_collate does), so that handing it to the main process copies nothing.
        storage = torch.UntypedStorage._new_shared(math.prod(shape) * first.element_size())
        out = first.new_empty(0).set_(storage, 0, shape, _channels_last_strides(shape))
    torch.stack([x for x, _ in batch], out=out)
    return out, torch.tensor([y for _, y in batch], dtype=torch.long)


def _channels_last_strides(shape: tuple[int, ...]) -> tuple[int, ...]:
    n, c, h, w = shape
    return (h * w * c, 1, w * c, c)  # memory order: batch, row, column, channel


class DeviceLoader:
    """A DataLoader whose batches are moved to ``device`` and then augmented there: with random
    augmentation when ``random`` (drawn from ``generator``), else the validation treatment."""

    def __init__(self, dl: DataLoader, augment: BatchAugment, device: torch.device, random: bool,
                 generator: torch.Generator | None = None):
        self.dl, self.augment, self.device, self.random, self.generator = dl, augment, device, random, generator

    def with_augment(self, augment: BatchAugment) -> DeviceLoader:
        """The same batches, augmented by ``augment`` instead."""
        return DeviceLoader(self.dl, augment, self.device, self.random, self.generator)

    @property
    def dataset(self) -> ImageDataset:
        return self.dl.dataset

    def __len__(self) -> int:
        return len(self.dl)

    def __iter__(self):
        for xb, yb in self.dl:
            xb = xb.to(self.device, non_blocking=True)
            yb = yb.to(self.device, non_blocking=True)
            yield self.augment(xb, train=self.random, generator=self.generator), yb


@dataclass(frozen=True)
class LoaderOptions:
    """How the images are batched and loaded, the same for both splits.

    Args:
        batch_size: images per training batch.
        valid_batch_size: images per validation batch (None: ``batch_size``).
        num_workers: DataLoader worker processes for the CPU steps (0: in the main process).
        pin_memory: page-locked batches for faster copies to the GPU (None: when the device is one).
        seed: seeds the shuffling and the augmentation's draws (None: different every run).
    """

    batch_size: int = 32
    valid_batch_size: int | None = None
    num_workers: int = 0
    pin_memory: bool | None = None
    seed: int | None = None


class DataLoaders:
    """Training and validation loaders, the vocabulary, and what is needed to show a batch.

    Build with one of the constructors: ``from_name_regex`` (labels in file names),
    ``from_folder`` (labels = folder names), ``from_csv`` (a table), ``from_path`` or ``from_items``.
    ``dls.preprocessing`` (the sizes and the normalization) lives in one place, ``dls.augment``.

    Args:
        train_ds, valid_ds: the datasets, used as they are; the training one's ``random`` says
            whether training batches are randomly augmented.
        vocab: the class names, in label order.
        augment: the device step (default ``BatchAugment()``: ``Preprocessing()``'s sizes).
        options: batching and loading (``LoaderOptions``).
        device: where batches go (default: the GPU when there is one).
    """

    def __init__(self, train_ds: ImageDataset, valid_ds: ImageDataset, vocab: Sequence[str],
                 augment: BatchAugment | None = None, options: LoaderOptions | None = None,
                 device: str | torch.device | None = None):
        self.vocab = list(vocab)
        # What was read: set by the constructors (``from_path`` says where the photos came from).
        self.source, self.valid_name, self.notes = None, "validation", []
        self.device = torch.device(device) if device is not None else default_device()
        self.augment = augment if augment is not None else BatchAugment()
        self.options = options if options is not None else LoaderOptions()
        spec, opts = self.preprocessing, self.options
        want = (spec.presize, spec.method) if spec.presize is not None else None
        for name, ds in (("train_ds", train_ds), ("valid_ds", valid_ds)):  # the presize is kept in one place too
            got = (ds.presize.size, ds.presize.method) if ds.presize is not None else None
            if got != want:
                raise ValueError(f"DataLoaders: {name} presizes to {got} but the preprocessing to {want}: build the "
                                 "datasets with preprocessing.presizer() (the from_* constructors do)")
        shuffle_gen = torch.Generator()
        aug_gen = torch.Generator()
        if opts.seed is not None:
            shuffle_gen.manual_seed(opts.seed)
            aug_gen.manual_seed(opts.seed + 1)
        pin = self.device.type == "cuda" if opts.pin_memory is None else opts.pin_memory
        self._common = {"num_workers": opts.num_workers, "pin_memory": pin, "collate_fn": collate,
                        "persistent_workers": opts.num_workers > 0}
        # drop_last on train: a last batch of 1 would break BatchNorm and give a noisy step.
        train_dl = DataLoader(train_ds, batch_size=opts.batch_size, shuffle=True,
                              drop_last=len(train_ds) > opts.batch_size, generator=shuffle_gen, **self._common)
        # Loaders that do not shuffle get a generator anyway: iterating a DataLoader draws a seed from
        # its generator, and without one it would draw from torch's global generator, which dropout
        # uses too (then merely validating would change the next training steps' dropout masks).
        valid_dl = DataLoader(valid_ds, batch_size=opts.valid_batch_size or opts.batch_size, shuffle=False,
                              generator=torch.Generator(), **self._common)
        self.train = DeviceLoader(train_dl, self.augment, self.device, random=train_ds.random, generator=aug_gen)
        self.valid = DeviceLoader(valid_dl, self.augment, self.device, random=False)

    @property
    def preprocessing(self) -> Preprocessing:
        """The presize, the final size and the normalization: the augment's, the one place they are kept."""
        return self.augment.preprocessing

    @property
    def batch_size(self) -> int:
        """Images per training batch."""
        return self.options.batch_size

    @property
    def seed(self) -> int | None:
        """What seeds the shuffling and the augmentation (None: nothing)."""
        return self.options.seed

    def train_in_order(self, augment: bool = True) -> DeviceLoader:
        """The training set in dataset order (no shuffling, nothing dropped), augmented or not;
        not augmented means exactly the validation treatment (centre crop, no batch augmentation)."""
        augment = augment and self.train.random
        ds = copy.copy(self.train.dataset)  # a copy: the training set itself stays as it is
        ds.random = augment
        dl = DataLoader(ds, batch_size=self.batch_size, shuffle=False, generator=torch.Generator(), **self._common)
        return DeviceLoader(dl, self.augment, self.device, random=augment, generator=self.train.generator)

    def with_train_sampler(self, sampler) -> None:
        """Draw training batches through ``sampler`` (e.g. a DistributedSampler)."""
        dl = DataLoader(self.train.dataset, batch_size=self.batch_size, sampler=sampler,
                        drop_last=self.train.dl.drop_last, **self._common)
        self.train = DeviceLoader(dl, self.augment, self.device, random=self.train.random,
                                  generator=self.train.generator)

    # --- constructors --------------------------------------------------------------------------

    @classmethod
    def from_items(cls, items: Sequence[Path], labels: Sequence[str], split: tuple[Sequence[int], Sequence[int]],
                   preprocessing: Preprocessing | None = None, augment: AugmentOptions | None = None,
                   vocab: Sequence[str] | None = None, train_augment: bool = True,
                   device: str | torch.device | None = None, **kwargs) -> DataLoaders:
        """Build from paths, string labels and a (train_indices, valid_indices) split.

        Args:
            preprocessing: the presize, final size and normalization (default ``Preprocessing()``);
                ``presize=``, ``method=`` and ``size=`` among the keyword arguments change single
                fields of it (``presize=None``: no resize, only for debugging with ``summary``).
            augment: the random augmentation's settings (default ``AugmentOptions()``).
            train_augment: False gives the training images exactly the validation treatment.
            device: where batches go (default: the GPU when there is one).
            **kwargs: those ``Preprocessing`` fields, and the ``LoaderOptions`` fields: batch_size,
                valid_batch_size, num_workers, pin_memory, seed.
        """
        spec_fields, loader_fields = ("presize", "method", "size"), tuple(f.name for f in fields(LoaderOptions))
        unknown = sorted(set(kwargs) - set(spec_fields) - set(loader_fields))
        if unknown:
            raise TypeError(f"DataLoaders: unknown keyword argument(s) {unknown}; expected preprocessing, augment, "
                            f"vocab, train_augment, device, or one of {list(spec_fields + loader_fields)}")
        spec = replace(preprocessing if preprocessing is not None else Preprocessing(),
                       **{k: v for k, v in kwargs.items() if k in spec_fields})
        options = LoaderOptions(**{k: v for k, v in kwargs.items() if k in loader_fields})
        vocab = sorted(set(labels)) if vocab is None else list(vocab)
        index = {v: i for i, v in enumerate(vocab)}
        unknown = sorted(set(labels) - set(index))
        if unknown:
            raise ValueError(f"labels not in the vocabulary: {unknown[:5]}")
        y = [index[lbl] for lbl in labels]
        train_idx, valid_idx = split
        pre = spec.presizer()
        # Check every file once, up front, and leave out the unreadable ones with a single warning.
        bad = {b.path: b for b in verify_images(items, full=False)}
        if bad:
            warnings.warn(f"skipping {len(bad)} unreadable image file(s):\n{format_bad_images(list(bad.values()))}",
                          stacklevel=3)
        odd = [(p, fmt) for p, fmt in misnamed_formats(items) if p not in bad]
        notes = [f"{len(odd)} file(s) hold another image format than their name says, and are decoded as what "
                 f"they are: " + ", ".join(f"{p.name} ({fmt})" for p, fmt in odd[:8])
                 + (" ..." if len(odd) > 8 else "")] if odd else []

        def subset(idx, random):
            idx = [i for i in idx if Path(items[i]) not in bad]
            return ImageDataset([items[i] for i in idx], [y[i] for i in idx], pre, random=random)

        dls = cls(subset(train_idx, train_augment), subset(valid_idx, False), vocab, BatchAugment(spec, augment),
                  options, device)
        dls.notes = list(notes)
        if bad:
            dls.notes.append(f"{len(bad)} unreadable file(s) left out: "
                             + ", ".join(p.name for p in list(bad)[:8]) + (" ..." if len(bad) > 8 else ""))
        return dls

    @classmethod
    def from_path(cls, data: str | Path, valid_pct: float = 0.2, seed: int | None = 42, **kwargs) -> DataLoaders:
        """From whatever ``data`` is: a labels CSV, the sample folder, the full Oxford-IIIT Pet download
        (its official split) or a folder of photos named by breed (see ``engine.data.pets.open_data``).

        ``dls.source`` then says what was read and how it was split, ``dls.notes`` what was left out.
        """
        from .pets import open_data

        found = open_data(data, valid_pct, seed)
        dls = cls.from_items(found.items, found.labels, found.split, seed=seed, **kwargs)
        dls.source, dls.valid_name, dls.notes = found.description, found.valid_name, found.notes + dls.notes
        return dls

    @classmethod
    def from_name_regex(cls, path: str | Path, pattern: str = PETS_PATTERN, valid_pct: float = 0.2,
                        seed: int | None = 42, **kwargs) -> DataLoaders:
        """Every image under ``path``, labelled by ``pattern``'s first group on the file name."""
        items = get_image_files(path)
        labels = label_items(items, RegexLabeller(pattern))
        return cls.from_items(items, labels, random_split(len(items), valid_pct, seed), seed=seed, **kwargs)

    @classmethod
    def from_folder(cls, path: str | Path, valid_pct: float = 0.2, seed: int | None = 42, **kwargs) -> DataLoaders:
        """Every image under ``path``, labelled by its parent folder's name."""
        items = get_image_files(path)
        labels = label_items(items, parent_label)
        return cls.from_items(items, labels, random_split(len(items), valid_pct, seed), seed=seed, **kwargs)

    @classmethod
    def from_csv(cls, table, folder: str | Path | None = None, fn_col: str = "name", label_col: str = "breed",
                 valid_col: str | None = "is_valid", valid_pct: float = 0.2, seed: int | None = 42,
                 **kwargs) -> DataLoaders:
        """From a table; the split is ``valid_col`` when the table has it, else random.

        ``folder`` defaults to ``images/`` beside the CSV file (the sample's layout).
        """
        if folder is None:
            if not isinstance(table, (str, Path)):
                raise ValueError("pass folder= (where the images are) when the table is a DataFrame")
            folder = Path(table).parent / "images"
        items, labels, valid = read_table(table, folder, fn_col, label_col, valid_col)
        split = column_split(valid) if valid is not None else random_split(len(items), valid_pct, seed)
        return cls.from_items(items, labels, split, seed=seed, **kwargs)

    # --- using them --------------------------------------------------------------------------------

    @property
    def n_classes(self) -> int:
        """The number of classes (the vocabulary's length)."""
        return len(self.vocab)

    def one_batch(self, split: str = "train") -> tuple[Tensor, Tensor]:
        """The first batch of the training (or ``"valid"``) loader."""
        return next(iter(self.valid if split == "valid" else self.train))

    def decode(self, xb: Tensor) -> Tensor:
        """Undo normalization: (bs, 3, H, W) in 0..1, ready to show."""
        return self.augment.decode(xb)

    def set_normalization(self, mean: Sequence[float], std: Sequence[float]) -> None:
        """Normalize with these statistics (a pretrained model's) from now on: a new ``preprocessing``
        and a new ``augment`` holding it, so the batches of both loaders and what ``export`` writes.
        The specs themselves never change: loaders built before keep the old ones."""
        self.augment = BatchAugment(self.preprocessing.with_normalization(mean, std), self.augment.options)
        self.train, self.valid = self.train.with_augment(self.augment), self.valid.with_augment(self.augment)

    def __repr__(self) -> str:
        return (f"DataLoaders(train={len(self.train.dataset)} images, valid={len(self.valid.dataset)} images, "
                f"{self.n_classes} classes, batch_size={self.batch_size}, device={self.device})")
