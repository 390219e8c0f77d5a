"""Items, labels and splits: the two common ways image data arrives, and checking it.

1. Files in folders, the label in the file name (``great_pyrenees_173.jpg``: a regex) or in the
   parent folder's name.
2. A table (CSV or DataFrame) with a file-name column, a label column and sometimes a column that
   marks the validation rows.

Both end in the same place: a list of paths and a list of labels. Splitters then choose the
validation items: at random (reproducibly, with a seed), by a column, or by the official
Oxford-IIIT Pet list files. ``verify_images`` finds files that are not images or are truncated, so
that a dataset can leave them out up front instead of crashing in the middle of an epoch.
"""

from __future__ import annotations

import csv
import random
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from .files import IMAGE_EXTENSIONS, JPEG_TAIL, SUFFIX_FORMATS, format_of, has_jpeg_end

__all__ = [
    "PETS_PATTERN",
    "get_image_files",
    "RegexLabeller",
    "parent_label",
    "label_items",
    "read_table",
    "random_split",
    "column_split",
    "official_split",
    "BadImage",
    "verify_images",
    "format_bad_images",
    "misnamed_formats",
]

PETS_PATTERN = r"^(.+)_\d+\.jpg$"


def get_image_files(path: str | Path, extensions: Sequence[str] = IMAGE_EXTENSIONS,
                    recurse: bool = True) -> list[Path]:
    """All image files under ``path`` (by extension, case-insensitive), sorted: same order every run."""
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"image folder {path} does not exist (or is not a folder)")
    exts = {e.lower() for e in extensions}
    pattern = "**/*" if recurse else "*"
    files = sorted(p for p in path.glob(pattern) if p.is_file() and p.suffix.lower() in exts)
    if not files:
        raise ValueError(
            f"no image files in {path} (looked for {', '.join(sorted(exts))}"
            f"{' in all subfolders' if recurse else ''}): check the path"
        )
    return files


class RegexLabeller:
    """Label = the first group of ``pattern`` matched against the file name (not the full path)."""

    def __init__(self, pattern: str = PETS_PATTERN):
        self.regex = re.compile(pattern)
        if self.regex.groups < 1:
            raise ValueError(f"the label pattern {pattern!r} needs a (group) that captures the label")
        self.pattern = pattern

    def __call__(self, path: str | Path) -> str | None:
        m = self.regex.match(Path(path).name)
        return m.group(1) if m else None

    def __repr__(self) -> str:
        return f"RegexLabeller({self.pattern!r})"


def parent_label(path: str | Path) -> str:
    """Label = the name of the folder the file is in (``train/pug/1.jpg`` -> ``pug``)."""
    return Path(path).parent.name


def label_items(items: Sequence[Path], label_func: Callable[[Path], str | None]) -> list[str]:
    """Apply ``label_func`` to every item; if any item gets no label, list them all in one error."""
    labels = [label_func(p) for p in items]
    missing = [p for p, lbl in zip(items, labels) if not lbl]
    if missing:
        shown = "\n  ".join(str(p.name) for p in missing[:10])
        more = f"\n  ... and {len(missing) - 10} more" if len(missing) > 10 else ""
        pattern = getattr(label_func, "pattern", None)
        what = f"the label pattern {pattern!r}" if pattern else f"the labelling function {label_func!r}"
        raise ValueError(
            f"{len(missing)} of {len(items)} files did not match {what}:\n  {shown}{more}\n"
            "Fix the pattern (try it with re.match on one of these names), or move these files out."
        )
    return labels  # type: ignore[return-value]


def read_table(table, folder: str | Path, fn_col: str = "name", label_col: str = "breed",
               valid_col: str | None = "is_valid") -> tuple[list[Path], list[str], list[bool] | None]:
    """Items, labels and (if the column exists) validation flags from a CSV file or a DataFrame.

    Args:
        table: path to a CSV file, or a pandas DataFrame.
        folder: where the files named in ``fn_col`` are.
    """
    folder = Path(folder)
    if isinstance(table, (str, Path)):
        with open(table, newline="") as f:
            rows = list(csv.DictReader(f))
        source = str(table)
    elif hasattr(table, "to_dict"):
        rows = table.to_dict("records")
        source = "the DataFrame"
    else:
        raise TypeError(f"table must be a CSV path or a DataFrame, got {type(table).__name__}")
    if not rows:
        raise ValueError(f"{source} has no rows")
    for col in (fn_col, label_col):
        if col not in rows[0]:
            raise ValueError(f"{source} has no column {col!r}; its columns are {list(rows[0])}")
    items = [folder / str(r[fn_col]) for r in rows]
    missing = [p for p in items if not p.exists()]
    if missing:
        raise FileNotFoundError(
            f"{len(missing)} files listed in {source} are not in {folder}, e.g. {missing[0].name}: "
            "check the folder argument"
        )
    labels = [str(r[label_col]) for r in rows]
    valid = None
    if valid_col is not None and valid_col in rows[0]:
        valid = [str(r[valid_col]).strip().lower() in ("1", "true", "yes") for r in rows]
    return items, labels, valid


# --- splits: each returns (train_indices, valid_indices) -------------------------------------------

def random_split(n: int, valid_pct: float = 0.2, seed: int | None = 42) -> tuple[list[int], list[int]]:
    """Shuffle ``range(n)`` with ``seed`` and hold out ``valid_pct`` of it: same split every run."""
    if not 0 < valid_pct < 1:
        raise ValueError(f"valid_pct must be between 0 and 1, got {valid_pct}")
    idx = list(range(n))
    random.Random(seed).shuffle(idx)
    cut = int(round(n * valid_pct))
    return sorted(idx[cut:]), sorted(idx[:cut])


def column_split(is_valid: Sequence[bool]) -> tuple[list[int], list[int]]:
    """Validation = the rows flagged true (e.g. the ``is_valid`` column of labels.csv)."""
    train = [i for i, v in enumerate(is_valid) if not v]
    valid = [i for i, v in enumerate(is_valid) if v]
    if not train or not valid:
        raise ValueError(f"the validation column gives {len(train)} training and {len(valid)} validation rows; "
                         "both must be non-empty")
    return train, valid


def _read_list_file(path: Path) -> set[str]:
    """Names from an Oxford-IIIT list file: lines ``Image CLASS-ID SPECIES BREED-ID``, ``#`` comments."""
    names = set()
    with open(path) as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            parts = line.split()
            if len(parts) != 4 or not all(p.isdigit() for p in parts[1:]):
                raise ValueError(f"{path}, line {n}: expected 'Image CLASS-ID SPECIES BREED-ID', got {line!r}")
            names.add(parts[0])
    return names


def official_split(items: Sequence[Path], trainval: str | Path, test: str | Path) -> tuple[list[int], list[int]]:
    """Train on ``trainval.txt``, validate on ``test.txt`` (the dataset's own split).

    Items in neither list are left out of both (with the count in the message if nothing is left).
    """
    train_names, test_names = _read_list_file(Path(trainval)), _read_list_file(Path(test))
    stems = [Path(p).stem for p in items]
    train = [i for i, s in enumerate(stems) if s in train_names]
    valid = [i for i, s in enumerate(stems) if s in test_names]
    if not train or not valid:
        raise ValueError(f"the official lists matched {len(train)} training and {len(valid)} test items out of "
                         f"{len(items)}: are these the Oxford-IIIT Pet images?")
    return train, valid


# --- bad files ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class BadImage:
    """A file that cannot be used, and why."""

    path: Path
    reason: str


def _check_image(path: Path, full: bool) -> str | None:
    """None if ``path`` is a usable image, else the reason."""
    try:
        if path.stat().st_size == 0:
            return "empty file (0 bytes)"
        with Image.open(path) as img:
            if full:
                img.load()  # decodes everything: catches truncated and corrupt data
            else:
                img.verify()  # header and structure only: fast
                if img.format == "JPEG" and not _jpeg_has_end(path):
                    return "truncated JPEG (no end-of-image marker)"
    except Image.DecompressionBombError as err:
        return f"too many pixels ({err})"
    except Exception as err:  # PIL raises many types for bad files; all mean "unusable"
        return f"{type(err).__name__}: {err}"
    return None


def _jpeg_has_end(path: Path) -> bool:
    """A complete JPEG ends with the end marker: reads only the file's tail (``files.has_jpeg_end``)."""
    with open(path, "rb") as f:
        f.seek(0, 2)
        size = f.tell()
        f.seek(max(0, size - JPEG_TAIL))
        return has_jpeg_end(f.read())


def verify_images(paths: Iterable[str | Path], full: bool = True) -> list[BadImage]:
    """Check every file; return the unusable ones with the reason (an empty list: all good).

    Args:
        full: decode every image completely (slow but certain). With ``full=False`` only the header,
            the structure and (for JPEG) the end marker are checked, which is fast enough to run on
            every dataset build.
    """
    bad = []
    for p in map(Path, paths):
        reason = _check_image(p, full)
        if reason:
            bad.append(BadImage(p, reason))
    return bad


def format_bad_images(bad: Sequence[BadImage], limit: int = 20) -> str:
    """A readable report: one line per file, with the reason."""
    lines = [f"  {b.path.name}: {b.reason}" for b in bad[:limit]]
    if len(bad) > limit:
        lines.append(f"  ... and {len(bad) - limit} more")
    return "\n".join(lines)


def misnamed_formats(paths: Iterable[str | Path]) -> list[tuple[Path, str]]:
    """Files whose first bytes say another image format than their name (``Abyssinian_34.jpg`` holds a
    GIF in the real dataset): ``(path, actual format)``. They decode fine, by their content; this
    only lists them, reading a few bytes of each file."""
    out = []
    for p in map(Path, paths):
        expected = SUFFIX_FORMATS.get(p.suffix.lower())
        try:
            with open(p, "rb") as f:
                head = f.read(4)
        except OSError:
            continue  # verify_images reports unreadable files
        actual = format_of(head)
        if expected and actual and actual != expected:
            out.append((p, actual))
    return out
