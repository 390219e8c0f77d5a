"""The lessons wherever a student works: the wheel's contents, ``python -m lessons copy``, and each
notebook's first cell in a clone with no install, from an installed package, on a fresh hosted
notebook (which installs the package and downloads the photos), and with no package at all.

(Every notebook running top to bottom from the installed wheel is in ``test_lessons.py``.)
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import re
import subprocess
import sys
import tarfile
import threading
import zipfile
from pathlib import Path

import nbformat
import pytest

from lessons import build, workspace

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = build.notebook_paths()
# What a copy holds: the notebooks, and the pictures in lessons/images/ with their attribution (notebook 03b's Q9).
FILES = [p.relative_to(workspace.LESSONS_DIR).as_posix() for p in workspace.lesson_files()]

# Run by a student's interpreter: the first code cells of a notebook, in a fresh kernel of that
# interpreter, with the kernel's working folder given; prints the outputs as JSON.
RUN_FIRST_CELLS = """
import json, sys
import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError
path, cwd, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
nb = nbformat.read(path, as_version=4)
nb.cells = [c for c in nb.cells if c.cell_type == "code"][:n]
error = None
try:
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": cwd}}).execute()
except CellExecutionError as err:
    error = err.ename
print(json.dumps({"error": error, "outputs": [o for c in nb.cells for o in c.outputs]}))
"""


def run_first_cells(python: Path, notebook: Path, cwd: Path, n: int = 1, **env: str) -> tuple[str | None, str]:
    """(the error's name or None, the text of every output) of the first ``n`` code cells."""
    environ = {k: v for k, v in os.environ.items() if k not in ("PETS_SAMPLE", "PETBREEDS_SOURCE")} | env
    environ = {k: v for k, v in environ.items() if v is not None}
    done = subprocess.run([str(python), "-c", RUN_FIRST_CELLS, str(notebook), str(cwd), str(n)], cwd=cwd,
                          env=environ, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    texts = []
    for out in result["outputs"]:
        texts.append(out.get("text", ""))
        texts.extend(out.get("traceback", []))
        texts.extend(out.get("data", {}).get("text/plain", []) if out.get("data") else [])
    return result["error"], "\n".join(texts)


def first_code_cell(path: Path) -> str:
    return next(c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code")


# --- what the wheel carries -----------------------------------------------------------------------

def test_the_wheel_carries_everything_the_lessons_need(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    needed = [p for p in (ROOT / "lessons").rglob("*") if p.is_file() and p.suffix in (".ipynb", ".py")
              and "_build" not in p.parts and "__pycache__" not in p.parts and ".ipynb_checkpoints" not in p.parts]
    needed += [*(ROOT / "demo" / "model").iterdir(), *(ROOT / "demo" / "examples").iterdir()]
    needed += [p for p in (ROOT / "lessons" / "images").iterdir() if not p.name.startswith(".")]
    needed += [ROOT / "engine" / "data" / "pets_sample.csv", ROOT / "engine" / "data" / "pets_sample.sha256"]
    missing = sorted(str(p.relative_to(ROOT)) for p in needed if str(p.relative_to(ROOT)) not in names)
    assert not missing, f"the wheel lacks {missing}"
    assert {"lessons/start.py", "lessons/workspace.py", "lessons/00_start_here.ipynb", "demo/model/meta.json",
            "demo/model/README.md", "lessons/helpers.py",
            "lessons/exercises/nb01.py", "lessons/solutions/nb07.py"} <= names
    assert sum(n.endswith(".ipynb") for n in names) == len(NOTEBOOKS) >= 9
    assert not [n for n in names if "__pycache__" in n or "_build/" in n]
    assert {n.split("/")[0] for n in names} == {"engine", "demo", "lessons", wheel.name.split("-")[0] + "-"
                                                 + wheel.name.split("-")[1] + ".dist-info"}


# --- python -m lessons copy -----------------------------------------------------------------------

def test_copy_writes_every_notebook_and_keeps_the_ones_a_student_changed(tmp_path):
    dest = tmp_path / "mine"
    report = workspace.copy_lessons(dest)
    assert sorted(report.written) == sorted(FILES) and not report.kept
    assert {p.name for p in NOTEBOOKS} | {"images/astronaut.jpg", "images/ATTRIBUTION.md"} <= set(FILES)
    for name in FILES:
        assert (dest / name).read_bytes() == (ROOT / "lessons" / name).read_bytes()
    edited = dest / NOTEBOOKS[3].name
    edited.write_text(edited.read_text(encoding="utf-8").replace("softmax", "SOFTMAX"), encoding="utf-8")
    mine = edited.read_bytes()
    again = workspace.copy_lessons(dest)
    assert again.kept == [edited.name] and not again.written and len(again.unchanged) == len(FILES) - 1
    assert edited.read_bytes() == mine  # the student's work is untouched
    assert any("--force" in line and edited.name in line for line in again.lines())
    forced = workspace.copy_lessons(dest, force=True)
    assert forced.written == [edited.name] and edited.read_bytes() == NOTEBOOKS[3].read_bytes()


def test_copy_updates_a_copy_nobody_changed_and_keeps_an_unknown_file(tmp_path):
    dest = tmp_path / "mine"
    workspace.copy_lessons(dest)
    # As if an older version of the package had copied a different notebook 01, untouched since:
    old = dest / NOTEBOOKS[1].name
    old.write_text('{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}\n', encoding="utf-8")
    manifest = json.loads((dest / workspace.MANIFEST).read_text())
    manifest[old.name] = workspace._sha256(old.read_bytes())
    (dest / workspace.MANIFEST).write_text(json.dumps(manifest))
    # ... and the student had put a notebook of their own under the name of notebook 02 before copying:
    (dest / workspace.MANIFEST).write_text(json.dumps({k: v for k, v in manifest.items() if k != NOTEBOOKS[2].name}))
    (dest / NOTEBOOKS[2].name).write_text("my own notes", encoding="utf-8")
    report = workspace.copy_lessons(dest)
    assert report.written == [old.name] and old.read_bytes() == NOTEBOOKS[1].read_bytes()
    assert report.kept == [NOTEBOOKS[2].name] and (dest / NOTEBOOKS[2].name).read_text() == "my own notes"


def test_copy_command_fills_in_the_source_and_refuses_a_file(tmp_path):
    dest = tmp_path / "for_a_hosted_notebook"
    source = "git+https://example.org/me/petbreeds"
    done = subprocess.run([sys.executable, "-m", "lessons", "copy", str(dest), "--source", source], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert f"Copied {len(FILES)} file(s) into {dest}" in done.stdout and "jupyter lab" in done.stdout
    for p in NOTEBOOKS:
        cell = first_code_cell(dest / p.name)
        assert f'SOURCE = "{source}"' in cell and workspace.SOURCE_LINE not in cell
        nbformat.validate(nbformat.read(dest / p.name, as_version=4))
    again = subprocess.run([sys.executable, "-m", "lessons", "copy", str(dest)], cwd=tmp_path, capture_output=True,
                           text=True, timeout=120)  # later, without --source: the copies keep theirs
    assert again.returncode == 0 and f'SOURCE = "{source}"' in first_code_cell(dest / NOTEBOOKS[1].name)
    assert f"({len(FILES)} already up to date)" in again.stdout
    (tmp_path / "a_file").write_text("x")
    done = subprocess.run([sys.executable, "-m", "lessons", "copy", str(tmp_path / "a_file")], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "is a file" in done.stderr and "Traceback" not in done.stderr


# --- the first cell -------------------------------------------------------------------------------

def test_every_notebook_starts_with_the_same_setup_cell():
    full = first_code_cell(NOTEBOOKS[0])
    assert workspace.SOURCE_LINE in full and "PETS = start()" in full
    compact = re.sub(r"\n{3,}", "\n\n", "\n".join(line for line in full.splitlines()
                                                 if not line.lstrip().startswith("#")))
    for p in NOTEBOOKS[1:]:
        assert first_code_cell(p) == compact, f"{p.name}: its first cell is not notebook 00's setup, compacted"


@pytest.mark.parametrize("name", ["00", "04"])
def test_a_clone_needs_no_install(name, student_python, students_home, tmp_path):
    python = student_python()  # no petbreeds installed: the clone is found above lessons/
    notebook = next(p for p in NOTEBOOKS if p.name.startswith(name))
    error, text = run_first_cells(python, notebook, ROOT / "lessons", PETBREEDS_HOME=str(students_home))
    assert error is None, text
    assert f"petbreeds 0.1.0 from {ROOT}" in text and "photos: " in text and "device: cpu" in text


def test_without_the_package_the_first_cell_says_what_to_install_in_one_line(student_python, tmp_path):
    python = student_python()
    lone = tmp_path / NOTEBOOKS[4].name
    lone.write_bytes(NOTEBOOKS[4].read_bytes())  # one notebook file, nothing else: no clone, no install
    error, text = run_first_cells(python, lone, tmp_path, PETBREEDS_HOME=str(tmp_path / "cache"))
    assert error == "SetupError"
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("SetupError: petbreeds is not installed"), text
    assert "SOURCE" in lines[0] and "pip install" in lines[0] and "Traceback" not in text


@pytest.fixture
def download_server(full_pets_home, tmp_path):
    """The dataset's two archives, made from the full-layout stand-in, served on 127.0.0.1."""
    served = tmp_path / "served"
    served.mkdir()
    root = full_pets_home / "oxford-iiit-pet"
    for name in ("images", "annotations"):
        with tarfile.open(served / f"{name}.tar.gz", "w:gz", compresslevel=1) as tar:
            tar.add(root / name, arcname=name)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    handler.log_message = lambda *args: None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.mark.parametrize("how", ["in the cell", "PETBREEDS_SOURCE"])
def test_a_fresh_hosted_notebook_installs_the_package_gets_the_photos_and_names_the_device(
        how, wheel, student_python, download_server, tmp_path):
    python = student_python()  # a fresh machine: Python and the usual packages, no petbreeds, no photos
    lone = tmp_path / NOTEBOOKS[0].name  # the one notebook file the student opened
    text = NOTEBOOKS[0].read_text(encoding="utf-8")
    lone.write_text(workspace.set_source(text, str(wheel)) if how == "in the cell" else text, encoding="utf-8")
    env = {"PETBREEDS_SOURCE": str(wheel)} if how == "PETBREEDS_SOURCE" else {}  # a teacher's hub can set it once
    cache = tmp_path / "cache"
    error, text = run_first_cells(python, lone, tmp_path, n=2, PETBREEDS_HOME=str(cache), **env,
                                  PETS_URL=f"{download_server}/images.tar.gz",
                                  PETS_ANNOTATIONS_URL=f"{download_server}/annotations.tar.gz",
                                  NO_PROXY="127.0.0.1", no_proxy="127.0.0.1")
    assert error is None, text
    site = subprocess.run([str(python), "-c", "import engine, pathlib; print(pathlib.Path(engine.__file__).parent)"],
                          capture_output=True, text=True, cwd=tmp_path).stdout.strip()
    assert site and not site.startswith(str(ROOT))  # installed by the cell, from the wheel
    assert f"petbreeds 0.1.0 from {Path(site).parent}" in text
    assert "getting them now" in text and "The 370-photo sample is in" in text
    assert f"photos: {cache / 'oxford-pets-sample'}" in text and "device: cpu" in text
    assert len(list((cache / "oxford-pets-sample" / "images").glob("*.jpg"))) == 370  # the second cell's check ran


def test_a_bad_source_is_one_line_naming_it(student_python, tmp_path):
    python = student_python()
    lone = tmp_path / NOTEBOOKS[2].name
    missing = tmp_path / "petbreeds-9.9-py3-none-any.whl"
    lone.write_text(workspace.set_source(NOTEBOOKS[2].read_text(encoding="utf-8"), str(missing)), encoding="utf-8")
    error, text = run_first_cells(python, lone, tmp_path, PETBREEDS_HOME=str(tmp_path / "cache"),
                                  PIP_NO_INDEX="1")
    lines = [line for line in text.splitlines() if line.strip()]
    assert error == "SetupError" and len(lines) == 1, text
    assert lines[0].startswith(f"SetupError: pip could not install {str(missing)!r}") and "Traceback" not in text


def test_a_clone_without_torch_is_one_line_saying_what_is_missing(packages_without_petbreeds, student_python,
                                                                  students_home, tmp_path):
    python = student_python()
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    no_torch = tmp_path / "packages"  # the same packages, less torch
    no_torch.mkdir()
    for entry in packages_without_petbreeds.iterdir():
        if not entry.name.lower().startswith(("torch", "functorch")):
            (no_torch / entry.name).symlink_to(entry.resolve())
    (site / "test_packages.pth").write_text(f"{no_torch}\n")
    error, text = run_first_cells(python, NOTEBOOKS[1], ROOT / "lessons", PETBREEDS_HOME=str(students_home))
    lines = [line for line in text.splitlines() if line.strip().startswith("SetupError")]
    assert error == "SetupError" and len(lines) == 1, text
    assert "torch is not installed" in lines[0] and "pip install" in lines[0] and "Traceback" not in text


def test_ctrl_c_during_a_copy_loses_nothing_and_the_next_copy_completes_it(tmp_path):
    import signal

    dest = tmp_path / "mine"
    # A child that copies with every write slowed down, interrupted once the first notebook is in place.
    script = ("import os, time, sys\nfrom lessons import workspace\nreal = os.replace\n"
              "def slow(a, b):\n    real(a, b)\n    print('copied', b, flush=True)\n    time.sleep(1)\n"
              "workspace.os.replace = slow\nfrom lessons.build import main\nsys.exit(main(['copy', sys.argv[1]]))\n")
    child = subprocess.Popen([sys.executable, "-c", script, str(dest)], cwd=ROOT, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    assert child.stdout.readline().startswith("copied")
    child.send_signal(signal.SIGINT)
    out, err = child.communicate(timeout=60)
    assert child.returncode == 130 and "interrupted" in err and "Traceback" not in err, err
    copied = sorted(p.name for p in dest.glob("*.ipynb"))
    assert 1 <= len(copied) < len(NOTEBOOKS)
    for name in copied:  # every file there is whole
        assert (dest / name).read_bytes() == (ROOT / "lessons" / name).read_bytes()
    report = workspace.copy_lessons(dest)  # the next copy finishes the job, nothing counted as changed
    assert not report.kept and len(report.written) + len(report.unchanged) == len(FILES)
