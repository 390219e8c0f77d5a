"""``python -m lessons copy DEST``: the lesson notebooks, copied into a folder of the student's own.

An installed package keeps its notebooks inside ``site-packages``, which is no place to work in.
This copies them (and the pictures they show) into ``DEST``, where Jupyter can open, run and save
them. It never overwrites a notebook the student has changed: each copy's SHA-256 is recorded in
``DEST/.petbreeds-lessons.json``, and a notebook whose content no longer matches its record (or
that was there before, unrecorded, with other content) is kept and reported, unless ``force``.
Unchanged copies are brought up to date, so copying again after an upgrade is safe.

``source`` fills in each notebook's ``SOURCE = ""`` (where a fresh hosted notebook installs the
package from: a git URL of the student's copy, or a wheel), so that it is set once for all of them;
the record keeps it, so copying again later without ``--source`` keeps it too.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["MANIFEST", "SOURCE_LINE", "CopyReport", "notebook_files", "lesson_files", "set_source", "copy_lessons"]

LESSONS_DIR = Path(__file__).resolve().parent
MANIFEST = ".petbreeds-lessons.json"
SOURCE_LINE = 'SOURCE = ""'  # in each notebook's first cell, as shipped
SOURCE_KEY = "SOURCE"  # the record's entry for the source given with --source


@dataclass
class CopyReport:
    """What ``copy_lessons`` did, file by file (names relative to the destination)."""

    dest: Path
    written: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)  # edited by the student: left as they are

    def lines(self) -> list[str]:
        out = [f"Copied {len(self.written)} file(s) into {self.dest}"
               + (f" ({len(self.unchanged)} already up to date)" if self.unchanged else "") + "."]
        for name in self.kept:
            out.append(f"kept {name}: you have changed it. To get the original, rename or delete "
                       f"{self.dest / name} and copy again (--force replaces every notebook you changed).")
        out.append(f"Open them with: jupyter lab {self.dest}   (start with 00_start_here.ipynb)")
        return out


def notebook_files(folder: str | os.PathLike = LESSONS_DIR) -> list[Path]:
    """The lesson notebooks in ``folder``, in reading order: ``00_start_here.ipynb``, ``01_...``; a
    lesson in two parts has a letter after its number for the second (``03_...``, then ``03b_...``)."""
    return sorted(p for p in Path(folder).glob("[0-9][0-9]*_*.ipynb") if re.match(r"\d\d[a-z]?_", p.name))


def lesson_files() -> list[Path]:
    """The files a student's copy holds: the notebooks, and the pictures in ``images/`` if any."""
    files = notebook_files()
    images = LESSONS_DIR / "images"
    if images.is_dir():
        files += sorted(p for p in images.iterdir() if p.is_file() and not p.name.startswith("."))
    return files


def set_source(text: str, source: str) -> str:
    """The notebook ``text`` (its JSON) with ``SOURCE = ""`` in its first code cell set to ``source``."""
    import nbformat

    nb = nbformat.reads(text, as_version=4)
    first = next((c for c in nb.cells if c.cell_type == "code"), None)
    if first is None or SOURCE_LINE not in first.source:
        raise ValueError(f"the notebook's first code cell has no line {SOURCE_LINE!r} to set")
    first.source = first.source.replace(SOURCE_LINE, f"SOURCE = {json.dumps(source)}", 1)
    return nbformat.writes(nb) + "\n"


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def copy_lessons(dest: str | os.PathLike, force: bool = False, source: str = "") -> CopyReport:
    """Copy the lessons into ``dest`` (created if needed); see the module's docstring."""
    dest = Path(dest).expanduser()
    if dest.exists() and not dest.is_dir():
        raise NotADirectoryError(f"{dest} is a file: give a folder to copy the lessons into")
    dest.mkdir(parents=True, exist_ok=True)
    manifest_path = dest / MANIFEST
    try:
        recorded = json.loads(manifest_path.read_text(encoding="utf-8")) if manifest_path.is_file() else {}
    except (OSError, ValueError):
        recorded = {}
    if not isinstance(recorded, dict):
        recorded = {}
    source = source or recorded.get(SOURCE_KEY, "")
    report = CopyReport(dest)
    for path in lesson_files():
        name = path.relative_to(LESSONS_DIR).as_posix()
        data = path.read_bytes()
        if path.suffix == ".ipynb" and source:
            data = set_source(data.decode("utf-8"), source).encode("utf-8")
        target = dest / name
        if target.is_file():
            current = _sha256(target.read_bytes())
            if current == _sha256(data):
                report.unchanged.append(name)
                recorded[name] = current
                continue
            if current != recorded.get(name) and not force:
                report.kept.append(name)
                continue
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, target)  # a copy is either the old file or the new one, never half of it
        recorded[name] = _sha256(data)
        report.written.append(name)
    if source:
        recorded[SOURCE_KEY] = source
    tmp = manifest_path.with_name(f".{MANIFEST}.tmp")
    tmp.write_text(json.dumps(recorded, indent=1, sort_keys=True), encoding="utf-8")
    os.replace(tmp, manifest_path)
    return report
