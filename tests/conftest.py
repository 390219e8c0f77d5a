"""Shared fixtures: the real pet sample (through PETS_SAMPLE) and generated images.

Policy for the real photos: when ``PETS_SAMPLE`` is set (CI sets it) but does not hold the sample,
tests that need it fail; when it is unset they are skipped with a reason, unless
``REQUIRE_PETS_SAMPLE=1`` asks for them, in which case they fail too.
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import tempfile
from pathlib import Path

# Before torch loads: idle OpenMP threads sleep instead of spinning. The suite runs servers and
# worker processes beside the test process on two cores, and spinning threads would steal their CPU.
# A suite started in the background by a non-interactive shell inherits SIGINT ignored. The Ctrl-C
# tests (here and in the child processes they start) need what a terminal gives: the default.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
# The tests (and the servers they start) keep their cache (datasets, weights) apart from the user's.
_HOME = tempfile.mkdtemp(prefix="petbreeds-test-home-")
os.environ["PETBREEDS_HOME"] = _HOME
atexit.register(shutil.rmtree, _HOME, ignore_errors=True)

import matplotlib  # noqa: E402
import pytest  # noqa: E402

matplotlib.use("Agg")  # no screen in CI


def _sample_or_fail() -> Path:
    value = os.environ.get("PETS_SAMPLE")
    if not value:
        if os.environ.get("REQUIRE_PETS_SAMPLE") == "1":
            pytest.fail("REQUIRE_PETS_SAMPLE=1 but PETS_SAMPLE is not set: point it at oxford-pets-sample/")
        pytest.skip("PETS_SAMPLE is not set: tests on the real pet photos are skipped")
    path = Path(value)
    missing = [p for p in ("images", "labels.csv") if not (path / p).exists()]
    if missing:
        pytest.fail(f"PETS_SAMPLE={value} does not hold the pet sample (missing: {', '.join(missing)})")
    n = len(list((path / "images").glob("*.jpg")))
    if n < 370:
        pytest.fail(f"PETS_SAMPLE={value}: expected 370 photos in images/, found {n}")
    return path


@pytest.fixture(scope="session")
def pets_sample() -> Path:
    """The folder holding the real sample's ``images/`` and ``labels.csv``."""
    return _sample_or_fail()


@pytest.fixture(scope="session")
def synthetic_pets(tmp_path_factory) -> Path:
    """A folder like the sample's, with generated images: 6 breeds x 4 photos, varied sizes."""
    from engine.data.breeds import PET_BREEDS
    from engine.testing import write_labels_csv, write_synthetic_pets

    root = tmp_path_factory.mktemp("synthetic_pets")
    breeds = [PET_BREEDS[i] for i in (0, 3, 7, 14, 20, 30)]
    paths = write_synthetic_pets(root / "images", breeds=breeds, n_per_breed=4, size=(96, 72), seed=1)
    write_labels_csv(root, paths, valid_per_breed=1)
    return root


@pytest.fixture(scope="session")
def tiny_pets(tmp_path_factory) -> Path:
    """4 breeds x 8 generated photos of about 48x40 pixels: enough to train a small model in seconds."""
    from engine.testing import write_synthetic_pets

    folder = tmp_path_factory.mktemp("tiny_pets")
    write_synthetic_pets(folder, breeds=["pug", "beagle", "Bengal", "boxer"], n_per_breed=8, size=(48, 40), seed=2)
    return folder


@pytest.fixture(scope="session")
def full_pets_home(pets_sample, tmp_path_factory) -> Path:
    """A cache folder (for ``PETBREEDS_HOME``) holding ``oxford-iiit-pet/`` laid out like the full
    download: the sample's 370 photos (hard links) in ``images/``, the awkward files the real archive
    has (a .mat, a GIF and a PNG named .jpg, a CMYK JPEG, a truncated JPEG), and ``annotations/``
    with the official list files; the sample's validation photos form the test list."""
    import csv

    from engine.testing import write_full_layout

    home = tmp_path_factory.mktemp("full_pets_home")
    with open(pets_sample / "labels.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    write_full_layout(home / "oxford-iiit-pet", [pets_sample / "images" / r["name"] for r in rows],
                      [r["name"] for r in rows if r["is_valid"] == "1"])
    return home


@pytest.fixture(scope="session")
def tiny_learner():
    """``tiny_learner(folder, seed)``: a 3-breed learner trained in seconds (frozen body, cached
    features) on generated photos in ``folder``, and the folder it exported to."""
    def make(folder: Path, seed: int):
        import torch

        from engine.data import DataLoaders
        from engine.learning.fine_tune import vision_learner
        from engine.learning.frozen_phase import FrozenPhase
        from engine.serving.export import export
        from engine.testing import write_synthetic_pets

        write_synthetic_pets(folder / "images", breeds=["pug", "beagle", "Bengal"], n_per_breed=6, size=(60, 50),
                             seed=seed)
        dls = DataLoaders.from_name_regex(folder / "images", presize=64, size=48, batch_size=6, device="cpu",
                                          valid_pct=0.34, seed=0)
        torch.manual_seed(0)
        learn = vision_learner(dls, progress=False, train_bn=False)
        learn.fine_tune(0, freeze_epochs=2, base_lr=3e-3, frozen_phase=FrozenPhase(learn))
        return learn, export(learn, folder / "model")

    return make


# --- a student's Python: the test environment's packages, with or without petbreeds ----------------

@pytest.fixture(scope="session")
def wheel(tmp_path_factory) -> Path:
    """The package built as a wheel from this checkout, as a student would get it."""
    import shutil
    import subprocess
    import sys

    out = tmp_path_factory.mktemp("wheel")
    root = Path(__file__).resolve().parents[1]
    # Built from a copy of the files git knows (or, outside git, of the tree): nothing stale from an
    # earlier build/ folder, nothing written into the checkout.
    source = tmp_path_factory.mktemp("source") / "petbreeds"
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=root,
                            capture_output=True)
    names = [n for n in listed.stdout.decode().split("\0") if n] if listed.returncode == 0 else None
    if names:
        for name in names:
            if (root / name).is_file():
                (source / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(root / name, source / name)
    else:
        shutil.copytree(root, source, ignore=shutil.ignore_patterns(".git", ".venv", "build", "*.egg-info",
                                                                     "__pycache__", "_build"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(out),
                    str(source)], check=True, capture_output=True, timeout=300)
    (found,) = out.glob("petbreeds-*.whl")
    return found


@pytest.fixture(scope="session")
def packages_without_petbreeds(tmp_path_factory) -> Path:
    """A folder of links to every package of the test environment except petbreeds itself (its
    editable install would put this checkout on the path): a student's machine, without us."""
    import sysconfig

    site = Path(sysconfig.get_paths()["purelib"])
    folder = tmp_path_factory.mktemp("packages")
    for entry in site.iterdir():
        if entry.name.endswith(".pth") or "petbreeds" in entry.name.lower() or entry.name == "__pycache__":
            continue
        (folder / entry.name).symlink_to(entry)
    return folder


@pytest.fixture(scope="session")
def student_python(packages_without_petbreeds, tmp_path_factory):
    """``student_python(install=wheel_or_None)``: the interpreter of a new virtual environment that
    sees the test environment's packages (not petbreeds), with the given wheel installed into it."""
    import subprocess
    import sys

    def make(install: Path | None = None) -> Path:
        venv = tmp_path_factory.mktemp("student_venv")
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", "--clear", str(venv)], check=True,
                       timeout=120)
        python = venv / "bin" / "python"
        site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                              check=True, capture_output=True, text=True).stdout.strip()
        Path(site, "test_packages.pth").write_text(f"{packages_without_petbreeds}\n")
        shared = Path(sys.prefix) / "share" / "jupyter"  # kernel specs, nbconvert's templates: as an install has
        if shared.is_dir():
            (venv / "share").mkdir(exist_ok=True)
            (venv / "share" / "jupyter").symlink_to(shared)
        if install is not None:
            subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(install)],
                           check=True, capture_output=True, timeout=300)
        return python

    return make


@pytest.fixture(scope="session")
def students_home(full_pets_home, tmp_path_factory):
    """What a student has after ``python -m engine.datasets download``: the full layout in the cache,
    and no PETS_SAMPLE. The first notebook to ask picks the sample out of it; the others reuse it.
    (That sample is byte for byte the one PETS_SAMPLE points at: see test_pets.py.)"""
    home = tmp_path_factory.mktemp("students_home")
    (home / "oxford-iiit-pet").symlink_to(full_pets_home / "oxford-iiit-pet")
    return home
