"""engine/data/pets.py: the full download's layout, any --data a user passes, and the canonical sample.

The full-layout fixture (``full_pets_home`` in conftest.py) is built from the real sample's photos
plus the awkward files the real archive has; everything else is generated here.
"""

from __future__ import annotations

import csv
import hashlib
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from engine.data import DataLoaders
from engine.data.breeds import PET_BREEDS
from engine.data.locate import pets_sample
from engine.data.pets import (
    SAMPLE_TABLE,
    breed_of_class,
    build_sample,
    open_data,
    read_full_layout,
    read_list,
    sample_is_complete,
)
from engine.testing import AWKWARD_FILES, list_line, write_full_layout, write_labels_csv, write_synthetic_pets

REPO = Path(__file__).resolve().parents[1]


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _fresh_home(tmp_path: Path, full_pets_home: Path) -> Path:
    """An empty cache folder whose oxford-iiit-pet/ is the fixture's (nothing built in it yet)."""
    home = tmp_path / "home"
    home.mkdir()
    (home / "oxford-iiit-pet").symlink_to(full_pets_home / "oxford-iiit-pet")
    return home


# --- list files -----------------------------------------------------------------------------------

def test_class_ids_follow_the_datasets_alphabetical_order():
    assert breed_of_class(1) == "Abyssinian" and breed_of_class(2) == "american_bulldog"
    assert breed_of_class(6) == "Bengal" and breed_of_class(37) == "yorkshire_terrier"
    assert sorted(breed_of_class(i) for i in range(1, 38)) == sorted(PET_BREEDS)
    # the lines the real list files have
    assert list_line("Abyssinian_100") == "Abyssinian_100 1 1 1"
    assert list_line("yorkshire_terrier_99.jpg") == "yorkshire_terrier_99 37 2 25"
    assert list_line("Sphynx_1") == "Sphynx_1 34 1 12"


def test_read_list_skips_comments_and_checks_every_line(tmp_path):
    path = tmp_path / "list.txt"
    path.write_text("#Image CLASS-ID SPECIES BREED ID\n#comment\n\nAbyssinian_100 1 1 1\npug_3 26 2 19\n")
    entries = read_list(path)
    assert [(e.name, e.breed, e.line) for e in entries] == [("Abyssinian_100", "Abyssinian", 4), ("pug_3", "pug", 5)]


@pytest.mark.parametrize("line, message", [
    ("Abyssinian_100 1 1", "line 2: expected 4 fields 'Image CLASS-ID SPECIES BREED-ID', got 3"),
    ("Abyssinian_100 1 1 1 7", "line 2: expected 4 fields"),
    ("Abyssinian_100 one 1 1", "line 2: the last three fields .* must be whole numbers"),
    ("Abyssinian_100 38 1 1", "line 2: class id 38 / species 1 do not exist"),
    ("Abyssinian_100 26 2 19", "line 2: Abyssinian_100 is listed as class 26 \\(pug, species 2\\) but its name says "
                               "Abyssinian"),
    ("pug_1 26 2 19", "line 2: pug_1 is listed twice \\(also on line 1\\)"),
])
def test_a_bad_list_line_names_the_file_and_the_line(tmp_path, line, message):
    path = tmp_path / "trainval.txt"
    path.write_text(f"pug_1 26 2 19\n{line}\n")
    with pytest.raises(ValueError, match=str(path).replace(".", r"\.") + ", " + message):
        read_list(path)


# --- the full download ------------------------------------------------------------------------------

def test_the_full_layout_gives_the_official_split_with_labels_from_the_lists(full_pets_home, pets_sample):
    root = full_pets_home / "oxford-iiit-pet"
    found = open_data(root)
    with open(pets_sample / "labels.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    listed_awkward = [n for n, (_, listed) in AWKWARD_FILES.items() if listed]
    train, test = found.split
    assert len(train) == 296 + len(listed_awkward) and len(test) == 74 and found.valid_name == "test"
    assert {found.items[i].name for i in test} == {r["name"] for r in rows if r["is_valid"] == "1"}
    truth = {r["name"]: r["breed"] for r in rows}
    assert all(truth.get(p.name, label) == label for p, label in zip(found.items, found.labels))
    assert "official split" in found.description and "trainval (300)" in found.description
    assert found.notes == ["1 file(s) in images/ are not photos and are ignored: Abyssinian_100.mat"]


def test_awkward_files_are_listed_once_and_decoded_or_skipped(full_pets_home):
    root = full_pets_home / "oxford-iiit-pet"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dls = DataLoaders.from_path(root, presize=40, size=32, batch_size=64, seed=0)
    skipped = [str(w.message) for w in caught if "unreadable" in str(w.message)]
    assert len(skipped) == 1 and "chihuahua_121.jpg: truncated JPEG" in skipped[0]
    assert len(dls.train.dataset) == 299 and len(dls.valid.dataset) == 74  # the truncated one left out
    assert any("Abyssinian_34.jpg (GIF)" in n and "Egyptian_Mau_14.jpg (PNG)" in n for n in dls.notes)
    assert any(n.startswith("1 unreadable file(s) left out: chihuahua_121.jpg") for n in dls.notes)
    # a whole epoch over every photo, the GIF, the PNG and the CMYK JPEG included, without a warning
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        seen = sum(len(yb) for _, yb in dls.train_in_order(augment=False))
    assert seen == 299


def test_an_awkward_file_decodes_to_its_picture(full_pets_home):
    import numpy as np

    from engine.data.transforms import load_array
    from engine.testing import breed_color

    images = full_pets_home / "oxford-iiit-pet" / "images"
    for name, breed in [("Abyssinian_34.jpg", "Abyssinian"), ("Egyptian_Mau_14.jpg", "Egyptian_Mau"),
                        ("beagle_116.jpg", "beagle")]:
        a = load_array(images / name)
        assert a.shape == (150, 200, 3)
        # the picture's background is its breed colour: the decoded median pixel is close to it
        assert np.abs(np.median(a.reshape(-1, 3), axis=0) - breed_color(breed)).max() < 30, name


def test_a_list_that_names_missing_photos_says_which_and_where(tmp_path):
    paths = write_synthetic_pets(tmp_path / "full" / "images", breeds=["pug", "Bengal"], n_per_breed=3,
                                 size=(40, 30))
    root = write_full_layout(tmp_path / "full", [], [], awkward=False)
    (root / "annotations" / "trainval.txt").write_text("".join(f"{list_line(p.name)}\n" for p in paths[:4])
                                                       + "pug_99 26 2 19\n")
    (root / "annotations" / "test.txt").write_text(f"{list_line(paths[4].name)}\n")
    with pytest.raises(FileNotFoundError, match=r"(?s)1 photos named in the official lists are not in .*trainval\.txt, "
                                                r"line 5: pug_99 \(no .*pug_99\.jpg\).*engine\.datasets download"):
        read_full_layout(root)


def test_one_list_missing_is_an_error(tmp_path):
    write_synthetic_pets(tmp_path / "full" / "images", breeds=["pug"], n_per_breed=2, size=(40, 30))
    (tmp_path / "full" / "annotations").mkdir()
    (tmp_path / "full" / "annotations" / "trainval.txt").write_text("pug_1 26 2 19\n")
    with pytest.raises(FileNotFoundError, match="test.txt: the official split needs both"):
        open_data(tmp_path / "full")


# --- any --data --------------------------------------------------------------------------------------

def test_a_csv_a_sample_folder_and_a_photo_folder(tmp_path):
    paths = write_synthetic_pets(tmp_path / "images", breeds=["pug", "Bengal"], n_per_breed=5, size=(40, 30))
    write_labels_csv(tmp_path, paths, valid_per_breed=2)
    by_table, by_folder = open_data(tmp_path / "labels.csv"), open_data(tmp_path)
    assert by_table.items == by_folder.items and len(by_table.split[1]) == 4
    assert "is_valid column" in by_table.description
    (tmp_path / "labels.csv").unlink()
    by_names = open_data(tmp_path, valid_pct=0.2, seed=0)
    assert sorted(by_names.items) == sorted(paths) and len(by_names.split[1]) == 2
    assert "labelled by their names" in by_names.description
    assert open_data(tmp_path / "images", seed=0).items == by_names.items


@pytest.mark.parametrize("make, message", [
    (lambda p: p, "no such file or folder"),
    (lambda p: (p.mkdir(), p)[1], "has no images/ folder and no photos in it"),
    (lambda p: (p.write_bytes(b"\xff\xd8\xff\xe0 not really"), p)[1], "is a JPEG image, not a CSV table"),
    (lambda p: (p.write_bytes(b"\x80\x04pickle"), p)[1], "is a pickle"),
    (lambda p: (p.write_text("hello"), p.rename(p.with_suffix(".md")), p.with_suffix(".md"))[2],
     "is a .md file, not a CSV table"),
])
def test_bad_data_is_one_clear_error(tmp_path, make, message):
    data = make(tmp_path / "data")
    with pytest.raises((FileNotFoundError, ValueError), match=message):
        open_data(data)


@pytest.mark.parametrize("first_column", ["BMI", "PKey", "GIF8_ok", "%PDF_pages"])
def test_a_table_is_read_whatever_its_first_letters(tmp_path, first_column):
    """The file signatures name binary files only: a text table whose first column starts like one
    ("BM" is a BMP's, "PK" a zip's) is still a table."""
    paths = write_synthetic_pets(tmp_path / "images", breeds=["pug", "Bengal"], n_per_breed=3, size=(40, 30))
    table = tmp_path / "labels.csv"
    rows = "".join(f"1,{p.name},{p.name.rsplit('_', 1)[0]}\n" for p in paths)
    table.write_text(f"{first_column},name,breed\n{rows}")
    data = open_data(table, valid_pct=0.34, seed=0)
    assert sorted(data.items) == sorted(paths) and set(data.labels) == {"pug", "Bengal"}


# --- the canonical sample ----------------------------------------------------------------------------

def test_the_shipped_table_is_the_samples(pets_sample):
    assert SAMPLE_TABLE.read_bytes() == (pets_sample / "labels.csv").read_bytes()


def test_the_sample_is_reproduced_from_the_full_download(full_pets_home, pets_sample, tmp_path):
    dest = build_sample(full_pets_home / "oxford-iiit-pet", tmp_path / "sample", show=lambda s: None)
    assert (dest / "labels.csv").read_bytes() == (pets_sample / "labels.csv").read_bytes()
    ours = sorted(p.name for p in (dest / "images").iterdir())
    assert ours == sorted(p.name for p in (pets_sample / "images").iterdir()) and len(ours) == 370
    assert all(_sha(dest / "images" / n) == _sha(pets_sample / "images" / n) for n in ours)
    assert sample_is_complete(dest) and sorted(p.name for p in tmp_path.iterdir()) == ["sample"]  # no temp left
    said = []
    assert build_sample(full_pets_home / "oxford-iiit-pet", dest, show=said.append) == dest and said == []


def test_build_sample_refuses_an_incomplete_source_and_writes_nothing(tmp_path, pets_sample):
    some = sorted((pets_sample / "images").iterdir())[:20]
    root = write_full_layout(tmp_path / "full", some, [], awkward=False)
    with pytest.raises(FileNotFoundError, match="350 of the sample's 370 photos are not in"):
        build_sample(root, tmp_path / "sample")
    assert not (tmp_path / "sample").exists() and sorted(p.name for p in tmp_path.iterdir()) == ["full"]


def test_build_sample_refuses_photos_of_another_size(tmp_path, pets_sample):
    from PIL import Image

    root = write_full_layout(tmp_path / "full", sorted((pets_sample / "images").iterdir()), [], awkward=False)
    victim = root / "images" / "pug_140.jpg"
    victim.unlink()  # a link to the sample's file: replace it, never write through it
    Image.new("RGB", (10, 10)).save(victim)
    with pytest.raises(ValueError, match="pug_140.jpg is 10x10, expected 300x225"):
        build_sample(root, tmp_path / "sample")
    assert not (tmp_path / "sample").exists()


def test_pets_sample_picks_the_sample_out_of_the_full_download_and_says_so(full_pets_home, tmp_path, monkeypatch):
    home = _fresh_home(tmp_path, full_pets_home)
    monkeypatch.delenv("PETS_SAMPLE", raising=False)
    monkeypatch.setenv("PETBREEDS_HOME", str(home))
    said = []
    folder = pets_sample(show=said.append)
    assert folder == home / "oxford-pets-sample" and sample_is_complete(folder)
    assert "full Oxford-IIIT Pet dataset" in said[0] and "Picked the 370-photo pet sample" in said[1]
    said.clear()
    assert pets_sample(show=said.append) == folder and len(said) == 1 and "Using the 370-photo sample" in said[0]


def test_cli_sample_from_a_given_source(full_pets_home, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "PETS_SAMPLE"}
    done = subprocess.run([sys.executable, "-m", "engine.datasets", "sample", "--source",
                           str(full_pets_home / "oxford-iiit-pet"), "--dest", str(tmp_path / "s")],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "The 370-photo sample is in" in done.stdout and sample_is_complete(tmp_path / "s")
    again = subprocess.run([sys.executable, "-m", "engine.datasets", "sample", "--source", str(tmp_path / "nowhere"),
                            "--dest", str(tmp_path / "t")], cwd=REPO, env=env, capture_output=True, text=True,
                           timeout=120)
    assert again.returncode == 1 and "has no images/ folder" in again.stderr and "Traceback" not in again.stderr
    assert not (tmp_path / "t").exists()
