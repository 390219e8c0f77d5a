"""Tests for engine/testing.py: every kind of picture, and a fake dataset folder that looks real."""

from __future__ import annotations

import csv
import hashlib
import itertools
import re

import numpy as np
import pytest
from PIL import Image, ImageOps

from engine.data.breeds import PET_BREEDS, is_cat
from engine.testing import (
    SYNTHETIC_KINDS,
    breed_color,
    make_image,
    write_image,
    write_labels_csv,
    write_synthetic_pets,
)

# kind -> (file format, accepted modes when reopened, stored size for the default size (160, 120))
EXPECTED = {
    "rgb": ("JPEG", {"RGB"}, (160, 120)),
    "l": ("JPEG", {"L"}, (160, 120)),
    "p": ("PNG", {"P"}, (160, 120)),
    "rgba": ("PNG", {"RGBA"}, (160, 120)),
    "cmyk": ("JPEG", {"CMYK"}, (160, 120)),
    "i16": ("PNG", {"I;16", "I"}, (160, 120)),
    "exif_rotated": ("JPEG", {"RGB"}, (120, 160)),
    "tiny": ("PNG", {"RGB"}, (1, 1)),
    "wide": ("JPEG", {"RGB"}, (1000, 20)),
}
NAME = re.compile(r"^(.+)_\d+\.jpg$")


def _rgb(img: Image.Image) -> np.ndarray:
    return np.asarray(img.convert("RGB"), dtype=np.float64)  # (h, w, 3)


def test_expected_table_covers_every_kind():
    assert set(EXPECTED) == set(SYNTHETIC_KINDS)


@pytest.mark.parametrize("kind", SYNTHETIC_KINDS)
def test_write_image_has_the_expected_format_mode_and_size(tmp_path, kind):
    fmt, modes, size = EXPECTED[kind]
    path = write_image(tmp_path / "sub" / f"Bengal_{kind}.jpg", kind)
    assert path == tmp_path / "sub" / f"Bengal_{kind}.jpg" and path.is_file()
    with Image.open(path) as img:
        img.load()
        assert (img.format, img.size) == (fmt, size)
        assert img.mode in modes


@pytest.mark.parametrize("kind", [k for k in SYNTHETIC_KINDS if k != "tiny"])
def test_pictures_have_structure_not_a_flat_fill(kind):
    pixels = np.asarray(make_image(kind).convert("RGB") if kind != "i16" else make_image(kind),
                        dtype=np.float64)
    assert pixels.std() > (1000 if kind == "i16" else 10)


def test_rgba_alpha_fades_and_i16_spans_the_full_range():
    alpha = np.asarray(make_image("rgba").getchannel("A"))
    assert alpha[:, 0].max() < 64 and alpha[:, -1].min() == 255
    assert make_image("i16").getextrema() == (0, 65535)


def test_exif_rotated_shows_the_upright_rgb_picture(tmp_path):
    upright = _rgb(make_image("rgb"))
    stored = make_image("exif_rotated")
    assert stored.getexif()[0x0112] == 6
    assert np.array_equal(_rgb(ImageOps.exif_transpose(stored)), upright)  # lossless in memory
    with Image.open(write_image(tmp_path / "a.jpg", "exif_rotated")) as img:
        assert img.getexif()[0x0112] == 6 and img.size == (120, 160)
        shown = _rgb(ImageOps.exif_transpose(img))
    assert shown.shape == upright.shape
    # After JPEG the right rotation is close; the wrong one (upside down) is far off.
    right, wrong = np.abs(shown - upright).mean(), np.abs(shown[::-1, ::-1] - upright).mean()
    assert right < 8 and wrong > 4 * right, (right, wrong)


def test_seed_moves_the_shapes_and_resizing_changes_pixels():
    a, b = _rgb(make_image(seed=0)), _rgb(make_image(seed=1))
    assert np.abs(a - b).mean() > 5
    img = make_image()
    roundtrip = _rgb(img.resize((40, 30), Image.Resampling.BILINEAR).resize(img.size))
    assert np.abs(roundtrip - _rgb(img)).mean() > 2


def test_tiny_is_the_colour_it_was_given():
    assert np.abs(_rgb(make_image("tiny", color=(10, 200, 90)))[0, 0] - (10, 200, 90)).max() < 25


def test_unknown_kind_and_bad_size_are_explained():
    with pytest.raises(ValueError, match=r"unknown kind 'jpeg'.*'rgb'"):
        make_image("jpeg")
    with pytest.raises(ValueError, match=r"size must be .*\(0, 10\)"):
        make_image("rgb", size=(0, 10))


def test_write_synthetic_pets_names_files_like_the_real_dataset(tmp_path):
    breeds = ["Abyssinian", "great_pyrenees", "Maine_Coon"]
    paths = write_synthetic_pets(tmp_path / "images", breeds=breeds, n_per_breed=2, size=(40, 30),
                                 start_index=5)
    assert paths == sorted(paths) and len(paths) == 6
    assert sorted(p.name for p in (tmp_path / "images").iterdir()) == sorted(
        f"{b}_{n}.jpg" for b in breeds for n in (5, 6))
    for p in paths:
        assert NAME.match(p.name)[1] in breeds


def test_kinds_cycle_over_the_files(tmp_path):
    paths = write_synthetic_pets(tmp_path, breeds=["pug"], n_per_breed=4, kinds=("rgb", "p", "l"),
                                 size=(40, 30))
    modes = []
    for n in range(1, 5):
        with Image.open(tmp_path / f"pug_{n}.jpg") as img:
            modes.append(img.mode)
    assert modes == ["RGB", "P", "L", "RGB"] and len(paths) == 4


def test_every_breed_gets_its_own_colour(tmp_path):
    colors = [breed_color(b) for b in PET_BREEDS]
    assert len(set(colors)) == 37
    paths = write_synthetic_pets(tmp_path, n_per_breed=1, size=(40, 30))
    means = {NAME.match(p.name)[1]: _rgb(Image.open(p)).mean(axis=(0, 1)) for p in paths}
    assert sorted(means) == sorted(PET_BREEDS)
    closest = min(np.linalg.norm(means[a] - means[b]) for a, b in itertools.combinations(means, 2))
    assert closest > 10, f"two breeds' mean colours are only {closest:.1f} apart"


def test_sizes_vary_around_the_requested_size(tmp_path):
    paths = write_synthetic_pets(tmp_path, breeds=PET_BREEDS[:4], n_per_breed=3, size=(100, 50))
    sizes = [Image.open(p).size for p in paths]
    assert len(set(sizes)) >= 6  # batching these without a resize must fail
    assert all(80 <= w <= 120 and 40 <= h <= 60 for w, h in sizes)


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path):
    def digests(folder, seed):
        paths = write_synthetic_pets(folder, breeds=["Bombay", "boxer"], n_per_breed=2,
                                     kinds=("rgb", "i16", "exif_rotated"), size=(40, 30), seed=seed)
        return [(p.name, hashlib.md5(p.read_bytes()).hexdigest()) for p in paths]

    first = digests(tmp_path / "a", seed=3)
    assert digests(tmp_path / "b", seed=3) == first
    other = digests(tmp_path / "c", seed=4)
    assert all(x[1] != y[1] for x, y in zip(first, other))


def test_unknown_breed_or_kind_is_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown breeds.*'Tabby'"):
        write_synthetic_pets(tmp_path, breeds=["Tabby"])
    with pytest.raises(ValueError, match="kinds must be"):
        write_synthetic_pets(tmp_path, breeds=["pug"], kinds=("gif",))
    assert list(tmp_path.iterdir()) == []


def test_labels_csv_matches_the_files(tmp_path):
    paths = write_synthetic_pets(tmp_path / "images", breeds=["Bengal", "pug"], n_per_breed=3,
                                 kinds=("rgb", "exif_rotated", "p"), size=(40, 30))
    out = write_labels_csv(tmp_path, paths, valid_per_breed=1)
    assert out == tmp_path / "labels.csv"
    assert out.read_bytes().startswith(b"name,breed,species,is_valid,width,height,mode\r\n")
    with open(out, newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["name"] for r in rows] == [f"{b}_{n}.jpg" for b in ("Bengal", "pug") for n in (1, 2, 3)]
    assert [r["is_valid"] for r in rows] == ["0", "0", "1"] * 2
    assert [r["species"] for r in rows] == ["cat"] * 3 + ["dog"] * 3
    for r in rows:
        with Image.open(tmp_path / "images" / r["name"]) as img:
            assert (int(r["width"]), int(r["height"]), r["mode"]) == (*img.size, img.mode)
    assert [r["mode"] for r in rows] == ["RGB", "RGB", "P"] * 2


def test_labels_csv_refuses_a_split_with_no_training_images(tmp_path):
    paths = write_synthetic_pets(tmp_path, breeds=["pug"], n_per_breed=1, size=(20, 20))
    with pytest.raises(ValueError, match="pug has 1 images.*valid_per_breed=1"):
        write_labels_csv(tmp_path, paths, valid_per_breed=1)


def test_labels_csv_has_the_real_samples_columns(pets_sample, tmp_path):
    with open(pets_sample / "labels.csv", newline="") as f:
        real = next(csv.reader(f))
    paths = write_synthetic_pets(tmp_path, breeds=["pug"], n_per_breed=2, size=(20, 20))
    with open(write_labels_csv(tmp_path, paths), newline="") as f:
        assert next(csv.reader(f)) == real


def test_conftest_fixture_is_a_small_sample_lookalike(synthetic_pets):
    with open(synthetic_pets / "labels.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 24 and sum(r["is_valid"] == "1" for r in rows) == 6
    assert all((r["species"] == "cat") == is_cat(r["name"]) for r in rows)
