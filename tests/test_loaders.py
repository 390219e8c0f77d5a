import shutil
import warnings

import pytest
import torch

from engine.data import CollateError, DataLoaders, ImageDataset, LoaderOptions, collate
from engine.data.augment import AugmentOptions, BatchAugment
from engine.data.preprocessing import Preprocessing
from engine.testing import write_synthetic_pets


def small_dls(folder, **kw):
    kw = {"presize": 64, "size": 32, "batch_size": 4, "seed": 0, "device": "cpu", **kw}
    return DataLoaders.from_name_regex(folder, valid_pct=0.25, **kw)


def test_from_name_regex_batches(synthetic_pets):
    dls = small_dls(synthetic_pets / "images")
    assert dls.n_classes == 6 and dls.vocab == sorted(dls.vocab)
    assert len(dls.train.dataset) == 18 and len(dls.valid.dataset) == 6
    xb, yb = dls.one_batch()
    assert xb.shape == (4, 3, 32, 32) and xb.dtype == torch.float32
    assert yb.shape == (4,) and yb.dtype == torch.long and yb.max() < 6
    shown = dls.decode(xb)
    assert shown.min() >= 0 and shown.max() <= 1
    # normalized with ImageNet statistics by default: roughly centred
    assert -1.5 < xb.mean() < 1.5


def test_from_csv_matches_regex(synthetic_pets):
    a = DataLoaders.from_csv(synthetic_pets / "labels.csv", presize=64, size=32, batch_size=4, device="cpu")
    b = small_dls(synthetic_pets / "images")
    assert a.vocab == b.vocab
    items_a = sorted(zip(a.train.dataset.items + a.valid.dataset.items,
                         a.train.dataset.labels + a.valid.dataset.labels))
    items_b = sorted(zip(b.train.dataset.items + b.valid.dataset.items,
                         b.train.dataset.labels + b.valid.dataset.labels))
    assert items_a == items_b
    assert len(a.valid.dataset) == 6  # the is_valid column, one per breed


def _epoch_labels(dls):
    return torch.cat([yb for _, yb in dls.train]).tolist()


def test_shuffle_is_reproducible_with_a_seed(synthetic_pets):
    a = _epoch_labels(small_dls(synthetic_pets / "images", seed=3))
    b = _epoch_labels(small_dls(synthetic_pets / "images", seed=3))
    c = _epoch_labels(small_dls(synthetic_pets / "images", seed=4))
    assert a == b and a != c
    dls = small_dls(synthetic_pets / "images", seed=3)
    assert _epoch_labels(dls) != _epoch_labels(dls)  # a new order every epoch


def test_validation_is_deterministic(synthetic_pets):
    dls = small_dls(synthetic_pets / "images")
    x1, _ = dls.one_batch("valid")
    x2, _ = dls.one_batch("valid")
    torch.testing.assert_close(x1, x2)


def test_workers_give_the_same_batches_shapes(synthetic_pets):
    dls = small_dls(synthetic_pets / "images", num_workers=2)
    n = sum(len(xb) for xb, _ in dls.train)
    assert n == 16  # 18 items, batch 4, last partial batch dropped
    assert sum(len(xb) for xb, _ in dls.valid) == 6


def test_bad_files_are_skipped_with_one_warning(tmp_path):
    write_synthetic_pets(tmp_path, breeds=["pug", "beagle"], n_per_breed=4, size=(48, 40))
    (tmp_path / "pug_99.jpg").write_text("not an image")
    (tmp_path / "beagle_98.jpg").write_bytes(b"")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dls = small_dls(tmp_path)
    msgs = [str(w.message) for w in caught if "unreadable" in str(w.message)]
    assert len(msgs) == 1
    assert "skipping 2 unreadable" in msgs[0] and "pug_99.jpg" in msgs[0] and "beagle_98.jpg: empty file" in msgs[0]
    n_items = len(dls.train.dataset) + len(dls.valid.dataset)
    assert n_items == 8


def test_a_file_that_breaks_mid_epoch_does_not_stop_the_epoch(tmp_path):
    write_synthetic_pets(tmp_path, breeds=["pug", "beagle"], n_per_breed=6, size=(48, 40))
    dls = small_dls(tmp_path)
    victim = dls.train.dataset.items[0]
    victim.write_bytes(victim.read_bytes()[:50])  # truncated after the dataset was built
    with pytest.warns(UserWarning, match=f"could not read .*{victim.name}.*using the next image"):
        n = sum(len(xb) for xb, _ in dls.train)
    assert n == 8


def test_collating_different_sizes_is_a_clear_error(synthetic_pets):
    dls = small_dls(synthetic_pets / "images", presize=None)
    with pytest.raises(CollateError, match=r"different sizes.*presize=460"):
        dls.one_batch()


def test_collate_output_layout():
    batch = [(torch.zeros(8, 8, 3, dtype=torch.uint8).permute(2, 0, 1), i) for i in range(3)]
    xb, yb = collate(batch)
    assert xb.shape == (3, 3, 8, 8) and xb.is_contiguous(memory_format=torch.channels_last)
    assert yb.tolist() == [0, 1, 2]


def test_empty_dataset_is_an_error(tmp_path):
    (tmp_path / "pug_1.jpg").write_text("x")
    (tmp_path / "pug_2.jpg").write_text("x")
    with pytest.raises(ValueError, match="dataset is empty"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        small_dls(tmp_path, )


def test_set_normalization(synthetic_pets):
    dls = small_dls(synthetic_pets / "images")
    dls.set_normalization((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
    xb, _ = dls.one_batch("valid")
    assert xb.min() >= -1 - 1e-5 and xb.max() <= 1 + 1e-5
    assert dls.decode(xb).min() >= 0


def test_real_sample_dataloaders(pets_sample):
    dls = DataLoaders.from_csv(pets_sample / "labels.csv", batch_size=8, device="cpu", seed=0)
    assert (len(dls.train.dataset), len(dls.valid.dataset), dls.n_classes) == (296, 74, 37)
    xb, yb = dls.one_batch()
    assert xb.shape == (8, 3, 224, 224)
    names = {dls.vocab[i] for i in yb.tolist()}
    assert names <= set(dls.vocab)


def test_folder_labels(tmp_path, synthetic_pets):
    for p in (synthetic_pets / "images").glob("*.jpg"):
        breed = p.name.rsplit("_", 1)[0]
        (tmp_path / breed).mkdir(exist_ok=True)
        shutil.copy(p, tmp_path / breed / p.name.replace(breed, "photo"))
    dls = DataLoaders.from_folder(tmp_path, presize=64, size=32, batch_size=4, device="cpu")
    assert dls.n_classes == 6


def test_set_normalization_builds_new_specs(synthetic_pets):
    dls = small_dls(synthetic_pets / "images", augment=AugmentOptions(max_rotate=20))
    before, old_valid = dls.augment, dls.valid
    dls.set_normalization((0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
    assert before.preprocessing.mean != (0.5, 0.5, 0.5)  # the old spec did not change
    assert dls.preprocessing == Preprocessing(presize=64, size=32, mean=(0.5,) * 3, std=(0.25,) * 3)
    assert dls.augment.options == AugmentOptions(max_rotate=20)  # the random settings carried over
    assert dls.train.augment is dls.augment and dls.valid.augment is dls.augment
    new, old = dls.one_batch("valid")[0], next(iter(old_valid))[0]
    mean, std = (torch.tensor(v).view(1, 3, 1, 1) for v in (before.preprocessing.mean, before.preprocessing.std))
    torch.testing.assert_close(new, (old * std + mean - 0.5) / 0.25, atol=1e-5, rtol=0)  # the same pixels
    with pytest.raises(AttributeError):
        dls.augment.preprocessing = Preprocessing()  # read-only: build a new BatchAugment instead


def test_dataloaders_leave_the_datasets_as_given(synthetic_pets):
    items = sorted((synthetic_pets / "images").glob("*.jpg"))
    spec = Preprocessing(presize=64, size=32)
    train = ImageDataset(items[:8], [0, 1] * 4, spec.presizer(), random=True)
    valid = ImageDataset(items[8:12], [0, 1] * 2, spec.presizer())
    dls = DataLoaders(train, valid, ["a", "b"], BatchAugment(spec), LoaderOptions(batch_size=4, seed=0), "cpu")
    assert dls.train.random and train.random and not valid.random
    ordered = dls.train_in_order(augment=False)
    assert not ordered.random and not ordered.dataset.random and train.random  # a copy was switched, not ours
    assert (dls.batch_size, dls.seed, dls.n_classes, dls.preprocessing) == (4, 0, 2, spec)
    off = small_dls(synthetic_pets / "images", train_augment=False)
    assert not off.train.random and not off.train.dataset.random


def test_presize_and_options_are_kept_in_one_place(synthetic_pets):
    items = sorted((synthetic_pets / "images").glob("*.jpg"))[:4]
    ds = ImageDataset(items, [0, 1, 0, 1], Preprocessing(presize=64).presizer())
    with pytest.raises(ValueError, match="presizes to .64, 'crop'. but the preprocessing to .460, 'crop'."):
        DataLoaders(ds, ds, ["a", "b"], BatchAugment(Preprocessing()), device="cpu")
    with pytest.raises(TypeError, match="unknown keyword argument.*'max_rotate'"):
        small_dls(synthetic_pets / "images", max_rotate=20)  # an augment option: AugmentOptions(max_rotate=20)
