import csv
from pathlib import Path

import pytest
from PIL import Image

from engine.data.items import (
    PETS_PATTERN,
    RegexLabeller,
    column_split,
    format_bad_images,
    get_image_files,
    label_items,
    official_split,
    parent_label,
    random_split,
    read_table,
    verify_images,
)
from engine.testing import write_image


def test_get_image_files_recursive_sorted_filtered(tmp_path):
    for name in ["b/pug_2.jpg", "a/Bengal_1.JPG", "a/notes.txt", "c/d/beagle_3.png", "z.jpeg"]:
        p = tmp_path / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"x")
    files = get_image_files(tmp_path)
    assert [f.relative_to(tmp_path).as_posix() for f in files] == [
        "a/Bengal_1.JPG", "b/pug_2.jpg", "c/d/beagle_3.png", "z.jpeg"]
    assert get_image_files(tmp_path, recurse=False) == [tmp_path / "z.jpeg"]


def test_empty_or_missing_folder(tmp_path):
    with pytest.raises(ValueError, match="no image files in"):
        get_image_files(tmp_path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        get_image_files(tmp_path / "nope")


def test_regex_labeller_on_pet_names():
    lab = RegexLabeller(PETS_PATTERN)
    assert lab(Path("/x/great_pyrenees_173.jpg")) == "great_pyrenees"
    assert lab("Egyptian_Mau_12.jpg") == "Egyptian_Mau"
    assert lab("pug.jpg") is None


def test_regex_needs_a_group():
    with pytest.raises(ValueError, match="needs a \\(group\\)"):
        RegexLabeller(r"^.+\.jpg$")


def test_label_items_lists_every_file_that_does_not_match():
    items = [Path("pug_1.jpg"), Path("pug.jpg"), Path("beagle_2.png"), Path("Bengal_3.jpg")]
    with pytest.raises(ValueError) as err:
        label_items(items, RegexLabeller())
    msg = str(err.value)
    assert "2 of 4 files did not match the label pattern" in msg
    assert "pug.jpg" in msg and "beagle_2.png" in msg and "Bengal_3.jpg" not in msg


def test_parent_label():
    assert parent_label("train/pug/001.jpg") == "pug"


def test_same_items_and_labels_from_regex_and_from_table(synthetic_pets):
    files = get_image_files(synthetic_pets / "images")
    labels = label_items(files, RegexLabeller())
    t_items, t_labels, t_valid = read_table(synthetic_pets / "labels.csv", synthetic_pets / "images")
    assert sorted(zip(t_items, t_labels)) == sorted(zip(files, labels))
    assert t_valid is not None and sum(t_valid) == 6  # one per breed


def test_table_from_a_dataframe(synthetic_pets):
    import pandas as pd  # comes with gradio: always installed here
    df = pd.read_csv(synthetic_pets / "labels.csv")
    items, labels, valid = read_table(df, synthetic_pets / "images")
    assert len(items) == 24 and set(labels) == set(df["breed"])
    assert valid == [bool(v) for v in df["is_valid"]]


def test_table_errors(synthetic_pets, tmp_path):
    with pytest.raises(ValueError, match="no column 'label'.*columns are"):
        read_table(synthetic_pets / "labels.csv", synthetic_pets / "images", label_col="label")
    with pytest.raises(FileNotFoundError, match="are not in"):
        read_table(synthetic_pets / "labels.csv", tmp_path)


def test_real_sample_regex_equals_table(pets_sample):
    files = get_image_files(pets_sample / "images")
    labels = label_items(files, RegexLabeller())
    t_items, t_labels, t_valid = read_table(pets_sample / "labels.csv", pets_sample / "images")
    assert len(files) == 370 and len(set(labels)) == 37
    assert sorted(zip(t_items, t_labels)) == sorted(zip(files, labels))
    assert sum(t_valid) == 74


def test_random_split_reproducible():
    a = random_split(100, 0.2, seed=1)
    assert a == random_split(100, 0.2, seed=1)
    assert a != random_split(100, 0.2, seed=2)
    train, valid = a
    assert len(valid) == 20 and len(train) == 80 and not set(train) & set(valid)
    with pytest.raises(ValueError, match="valid_pct"):
        random_split(10, 1.5)


def test_column_split():
    assert column_split([False, True, False, True]) == ([0, 2], [1, 3])
    with pytest.raises(ValueError, match="both must be non-empty"):
        column_split([False, False])


def test_official_split(tmp_path):
    (tmp_path / "trainval.txt").write_text("#Image CLASS-ID SPECIES BREED-ID\npug_1 30 2 16\nBengal_2 2 1 2\n")
    (tmp_path / "test.txt").write_text("pug_3 30 2 16\n")
    items = [Path(f"/x/{n}.jpg") for n in ("Bengal_2", "pug_1", "pug_3", "beagle_9")]
    assert official_split(items, tmp_path / "trainval.txt", tmp_path / "test.txt") == ([0, 1], [2])
    (tmp_path / "bad.txt").write_text("pug_1 thirty\n")
    with pytest.raises(ValueError, match="bad.txt, line 1: expected 'Image CLASS-ID SPECIES BREED-ID'"):
        official_split(items, tmp_path / "bad.txt", tmp_path / "test.txt")


@pytest.fixture
def messy_folder(tmp_path):
    good = [write_image(tmp_path / f"pug_{i}.jpg") for i in range(2)]
    (tmp_path / "notes_1.jpg").write_text("this is a text file named .jpg")
    (tmp_path / "empty_1.jpg").write_bytes(b"")
    data = good[0].read_bytes()
    (tmp_path / "cut_1.jpg").write_bytes(data[: len(data) // 2])
    return tmp_path


@pytest.mark.parametrize("full", [True, False])
def test_verify_images_lists_bad_files_with_reasons(messy_folder, full):
    bad = verify_images(get_image_files(messy_folder), full=full)
    reasons = {b.path.name: b.reason for b in bad}
    assert set(reasons) == {"notes_1.jpg", "empty_1.jpg", "cut_1.jpg"}
    assert "0 bytes" in reasons["empty_1.jpg"]
    assert "UnidentifiedImageError" in reasons["notes_1.jpg"]
    assert "truncated" in reasons["cut_1.jpg"]
    report = format_bad_images(bad)
    assert report.count("\n") == 2 and "cut_1.jpg: " in report


def test_verify_images_accepts_png_named_jpg(tmp_path):
    p = tmp_path / "Bengal_1.jpg"
    Image.new("RGBA", (8, 8)).save(p, format="PNG")
    assert verify_images([p]) == []


def test_table_with_is_valid_column_written_by_csv_module(tmp_path):
    write_image(tmp_path / "pug_1.jpg")
    with open(tmp_path / "t.csv", "w", newline="") as f:
        csv.writer(f).writerows([["file", "lbl", "valid"], ["pug_1.jpg", "pug", "True"]])
    items, labels, valid = read_table(tmp_path / "t.csv", tmp_path, "file", "lbl", "valid")
    assert labels == ["pug"] and valid == [True]
