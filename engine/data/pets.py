"""The Oxford-IIIT Pet data as a student has it, and the canonical 370-photo sample picked out of it.

The full download (``python -m engine.datasets download``) is a folder with

    images/        about 7,400 photos named <breed>_<n>.jpg (cats upper-case), and a few .mat files
    annotations/   list.txt: every photo with its class id; trainval.txt and test.txt: the
                   official split (3,680 / 3,669 photos); trimaps/ and xmls/ (not used here)

The labels are in the file names, and the list files say the same with numbers
(``Abyssinian_100 1 1 1``: class 1 of 37, species 1 = cat, breed 1 of that species).

``open_data(path)`` turns whatever a user points at into items, labels and a split:

    a CSV table            name, breed and optionally is_valid columns; photos in images/ beside it
    a folder with a table  e.g. the sample: images/ + labels.csv
    the full download      images/ + annotations/: labels from the lists, the official split
    a folder of photos     images/ inside it, or the photos themselves: labels from the names,
                           a random split

The sample is 10 photos per breed, 2 of them held out for validation. Its table ships with the
engine (``pets_sample.csv``), so ``build_sample`` can pick exactly those photos out of a full
download: a student's lessons then run on the very photos that CI checks them on.
"""

from __future__ import annotations

import csv
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from .breeds import PET_BREEDS, is_cat
from .files import describe_bytes, file_hash
from .items import PETS_PATTERN, RegexLabeller, column_split, get_image_files, label_items, random_split, read_table

__all__ = ["SAMPLE_TABLE", "ListEntry", "PetsData", "breed_of_class", "read_list", "read_full_layout",
           "open_data", "sample_is_complete", "build_sample"]

SAMPLE_TABLE = Path(__file__).with_name("pets_sample.csv")
SAMPLE_HASHES = Path(__file__).with_name("pets_sample.sha256")  # 16 hex digits of each photo's SHA-256
LIST_FORMAT = "Image CLASS-ID SPECIES BREED-ID"
_CLASS_ORDER = sorted(PET_BREEDS, key=str.lower)  # the lists number the breeds alphabetically, any case


def breed_of_class(class_id: int) -> str:
    """The breed of a list file's CLASS-ID (1 = Abyssinian ... 37 = yorkshire_terrier)."""
    if not 1 <= class_id <= len(_CLASS_ORDER):
        raise ValueError(f"class id {class_id} is not between 1 and {len(_CLASS_ORDER)}")
    return _CLASS_ORDER[class_id - 1]


# --- the full download -------------------------------------------------------------------------------

@dataclass(frozen=True)
class ListEntry:
    """One line of an Oxford-IIIT list file: ``Abyssinian_100 1 1 1``."""

    name: str
    class_id: int
    species: int  # 1 cat, 2 dog
    breed_id: int
    line: int  # where it is, for messages

    @property
    def breed(self) -> str:
        return breed_of_class(self.class_id)


def read_list(path: str | Path) -> list[ListEntry]:
    """The entries of ``list.txt``, ``trainval.txt`` or ``test.txt`` (``#`` lines are comments).

    Every line is checked: four fields, whole numbers, a class id that exists, a species that
    agrees with the class, and a name whose breed is that class. Errors name the file and line.
    """
    path = Path(path)
    entries, seen = [], {}
    with open(path, encoding="utf-8", errors="replace") as f:
        for n, raw in enumerate(f, 1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            parts = line.split()
            where = f"{path}, line {n}"
            if len(parts) != 4:
                raise ValueError(f"{where}: expected 4 fields '{LIST_FORMAT}', got {len(parts)}: {line!r}. "
                                 "The file is damaged: download the annotations again (python -m engine.datasets "
                                 "download) or fix that line.")
            if not all(p.isdigit() for p in parts[1:]):
                raise ValueError(f"{where}: the last three fields of '{LIST_FORMAT}' must be whole numbers, "
                                 f"got {line!r}")
            entry = ListEntry(parts[0], int(parts[1]), int(parts[2]), int(parts[3]), n)
            if not 1 <= entry.class_id <= len(_CLASS_ORDER) or entry.species not in (1, 2):
                raise ValueError(f"{where}: class id {entry.class_id} / species {entry.species} do not exist "
                                 f"(classes 1-{len(_CLASS_ORDER)}, species 1 = cat, 2 = dog): {line!r}")
            breed = entry.breed
            named = RegexLabeller(PETS_PATTERN)(f"{entry.name}.jpg")
            if named != breed or (entry.species == 1) != is_cat(breed):
                raise ValueError(f"{where}: {entry.name} is listed as class {entry.class_id} ({breed}, species "
                                 f"{entry.species}) but its name says {named or 'no breed'}: fix that line")
            if entry.name in seen:
                raise ValueError(f"{where}: {entry.name} is listed twice (also on line {seen[entry.name]})")
            seen[entry.name] = n
            entries.append(entry)
    if not entries:
        raise ValueError(f"{path} lists no photos (expected lines '{LIST_FORMAT}'): download the annotations again")
    return entries


@dataclass
class PetsData:
    """Items, labels and a (train, valid) split, with words for what they are."""

    items: list[Path]
    labels: list[str]
    split: tuple[list[int], list[int]]
    description: str  # where the photos came from and how they were split
    valid_name: str = "validation"  # "test" for the official split
    notes: list[str] = field(default_factory=list)  # things worth saying once (files left out ...)

    def __repr__(self) -> str:
        return (f"PetsData({len(self.split[0])} training and {len(self.split[1])} {self.valid_name} photos: "
                f"{self.description})")


def read_full_layout(root: str | Path) -> PetsData:
    """The full download: the photos of ``annotations/trainval.txt`` for training and of
    ``test.txt`` for testing, labelled by their class ids (checked against their names)."""
    root = Path(root)
    images, notes = root / "images", []
    lists = {name: root / "annotations" / f"{name}.txt" for name in ("trainval", "test")}
    absent = [str(p) for p in lists.values() if not p.is_file()]
    if absent:
        raise FileNotFoundError(f"{root} has annotations/ but not {' or '.join(absent)}: the official split "
                                "needs both. Download the annotations again (python -m engine.datasets download).")
    parts = {name: read_list(path) for name, path in lists.items()}
    both = {e.name for e in parts["trainval"]} & {e.name for e in parts["test"]}
    if both:
        raise ValueError(f"{sorted(both)[:3]} are in both {lists['trainval']} and {lists['test']}: a photo is "
                         "either for training or for testing; download the annotations again")
    missing = [(lists[name], e) for name, entries in parts.items() for e in entries
               if not (images / f"{e.name}.jpg").is_file()]
    if missing:
        shown = "\n  ".join(f"{path}, line {e.line}: {e.name} (no {images / (e.name + '.jpg')})"
                            for path, e in missing[:5])
        more = f"\n  ... and {len(missing) - 5} more" if len(missing) > 5 else ""
        raise FileNotFoundError(f"{len(missing)} photos named in the official lists are not in {images}:\n  "
                                f"{shown}{more}\nThe download is incomplete: run python -m engine.datasets download "
                                "again (it resumes), or point --data at a complete copy.")
    train, test = parts["trainval"], parts["test"]
    items = [images / f"{e.name}.jpg" for e in train + test]
    labels = [e.breed for e in train + test]
    listed = {e.name for e in train + test}
    others = [p for p in images.iterdir() if p.is_file() and p.stem not in listed]
    not_photos = sorted(p.name for p in others if p.suffix.lower() != ".jpg")
    unlisted = len(others) - len(not_photos)
    if not_photos:
        notes.append(f"{len(not_photos)} file(s) in images/ are not photos and are ignored: "
                     f"{', '.join(not_photos[:5])}{' ...' if len(not_photos) > 5 else ''}")
    if unlisted:
        notes.append(f"{unlisted} photo(s) in images/ are in neither official list and are left out")
    n = len(train)
    return PetsData(items, labels, (list(range(n)), list(range(n, len(items)))),
                    f"the Oxford-IIIT Pet dataset in {root}: the official split, trainval ({len(train)}) for "
                    f"training, test ({len(test)}) for the error", valid_name="test", notes=notes)


# --- anything a user points at ------------------------------------------------------------------------

def _not_text(path: Path) -> str | None:
    """What a file that is not a text table looks like, or None when it may be one."""
    with open(path, "rb") as f:
        head = f.read(4096)
    if _is_text(head):  # a table, whatever its first letters (a column may be called "BMI" or "PKey")
        return None
    return describe_bytes(head) or "a binary file"


def _is_text(head: bytes) -> bool:
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return b"\0" not in head


def open_data(data: str | Path, valid_pct: float = 0.2, seed: int | None = 42) -> PetsData:
    """Items, labels and a split from a CSV table, a sample folder, the full download or a photo folder.

    Args:
        data: what the user passed (``--data``); see the module docstring for the layouts.
        valid_pct, seed: the random split, where the data brings none of its own.
    """
    data = Path(data).expanduser()
    expected = ("Expected a labels CSV (name and breed columns, photos in images/ beside it), the sample "
                "folder (images/ + labels.csv), the full Oxford-IIIT Pet download (images/ + annotations/), "
                "or a folder of photos named like great_pyrenees_173.jpg")
    if not data.exists():
        raise FileNotFoundError(f"--data {data}: no such file or folder. {expected}. To get the photos: "
                                "python -m engine.datasets download")
    if data.is_file():
        kind = _not_text(data)
        if kind is not None or data.suffix.lower() not in (".csv", ".txt", ".tsv"):
            what = kind or f"a {data.suffix or 'suffix-less'} file"
            raise ValueError(f"--data {data} is {what}, not a CSV table. {expected}.")
        return _from_table(data, valid_pct, seed)
    if (data / "labels.csv").is_file():
        return _from_table(data / "labels.csv", valid_pct, seed)
    if (data / "images").is_dir() and (data / "annotations").is_dir():
        return read_full_layout(data)
    folder = data / "images" if (data / "images").is_dir() else data
    try:
        items = get_image_files(folder)
    except ValueError:
        raise ValueError(f"--data {data} has no images/ folder and no photos in it. {expected}.") from None
    labels = label_items(items, RegexLabeller(PETS_PATTERN))
    return PetsData(items, labels, random_split(len(items), valid_pct, seed),
                    f"the photos in {folder}, labelled by their names; a random {valid_pct:.0%} for validation")


def _from_table(table: Path, valid_pct: float, seed: int | None) -> PetsData:
    items, labels, valid = read_table(table, table.parent / "images")
    if valid is not None:
        return PetsData(items, labels, column_split(valid),
                        f"the table {table}: validation rows by its is_valid column")
    return PetsData(items, labels, random_split(len(items), valid_pct, seed),
                    f"the table {table}; a random {valid_pct:.0%} for validation")


# --- the canonical sample ---------------------------------------------------------------------------

def _sample_rows() -> list[dict[str, str]]:
    with open(SAMPLE_TABLE, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _short_hash(path: Path) -> str:
    return file_hash(path)[:16]


def sample_is_complete(folder: str | Path) -> bool:
    """Whether ``folder`` holds the canonical sample: its exact table and every one of its photos."""
    folder = Path(folder)
    table = folder / "labels.csv"
    if not table.is_file() or table.read_bytes() != SAMPLE_TABLE.read_bytes():
        return False
    return all((folder / "images" / row["name"]).is_file() for row in _sample_rows())


def build_sample(source: str | Path, dest: str | Path, show=print) -> Path:
    """Pick the canonical 370 photos out of ``source`` (a folder with ``images/``) into ``dest``.

    ``dest`` gets ``images/`` (hard links to the source photos where the file system allows, else
    copies) and the sample's ``labels.csv``. The folder is assembled under a temporary name and
    renamed at the end, so it is complete or absent, never half-made; when ``dest`` already holds
    the complete sample nothing is done. Photos are checked against the table (present, same
    width and height) before anything is written; photos whose bytes differ from the ones the
    lessons were checked on are allowed, with a note, since their numbers may then differ a little.
    """
    from PIL import Image

    source, dest = Path(source), Path(dest)
    if sample_is_complete(dest):
        return dest
    if dest.exists():
        raise FileExistsError(f"{dest} exists but does not hold the complete pet sample: move it away or pass "
                              "another destination (--dest), then run this again")
    images = source / "images"
    if not images.is_dir():
        raise FileNotFoundError(f"{source} has no images/ folder: expected the Oxford-IIIT Pet download "
                                "(python -m engine.datasets download puts it in the cache)")
    rows = _sample_rows()
    missing = [r["name"] for r in rows if not (images / r["name"]).is_file()]
    if missing:
        raise FileNotFoundError(f"{len(missing)} of the sample's {len(rows)} photos are not in {images}, e.g. "
                                f"{', '.join(missing[:3])}: is this the complete Oxford-IIIT Pet download? "
                                "Run python -m engine.datasets download again (it resumes).")
    wrong = []
    for r in rows:
        with Image.open(images / r["name"]) as img:
            if img.size != (int(r["width"]), int(r["height"])):
                wrong.append(f"{r['name']} is {img.width}x{img.height}, expected {r['width']}x{r['height']}")
    if wrong:
        raise ValueError(f"{len(wrong)} photos in {images} are not the dataset's originals: {'; '.join(wrong[:3])}. "
                         "Download the dataset again.")
    expected = dict(line.split()[::-1] for line in SAMPLE_HASHES.read_text().splitlines() if line.strip())
    differ = [r["name"] for r in rows if _short_hash(images / r["name"]) != expected.get(r["name"])]
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        (tmp / "images").mkdir(parents=True)
        linked = 0
        for r in rows:
            src, target = images / r["name"], tmp / "images" / r["name"]
            try:
                os.link(src, target)
                linked += 1
            except OSError:  # another file system, or links not allowed: copy instead
                shutil.copyfile(src, target)
        shutil.copyfile(SAMPLE_TABLE, tmp / "labels.csv")
        try:
            os.rename(tmp, dest)  # atomic: dest is complete or absent
        except OSError:
            if not sample_is_complete(dest):  # another process may have finished the same job first
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    how = "hard links" if linked == len(rows) else f"{linked} hard links, {len(rows) - linked} copies"
    show(f"Picked the {len(rows)}-photo pet sample out of {images} into {dest} ({how}).")
    if differ:
        show(f"Note: {len(differ)} of these photos differ from the ones the lessons were checked on (e.g. "
             f"{differ[0]}), so some numbers in the lessons may come out slightly different.")
    return dest
