"""Tests for engine/data/locate.py (finding the photos) and engine/datasets.py with engine/data/download.py
(downloading and extracting them safely).

Downloads go to a threaded HTTP server on 127.0.0.1 started by the tests: no internet is used. The
server honours ``Range`` requests and can be told to cut responses short, like a dropped connection.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import re
import subprocess
import sys
import tarfile
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from engine.data.breeds import PET_BREEDS, display_name, is_cat
from engine.data.download import UnsafeArchiveError, download_file, safe_extract
from engine.data.locate import default_cache_dir, pets_path
from engine.datasets import PETS_IMAGES_MD5, download_pets, main
from engine.testing import write_synthetic_pets

REPO = Path(__file__).resolve().parents[1]


def _md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


# --- a local HTTP server ----------------------------------------------------------------------------

@dataclass
class ServerState:
    """What the server serves and how it misbehaves; ``requests`` logs (path, Range header)."""

    base_url: str = ""
    files: dict[str, bytes] = field(default_factory=dict)
    cut: dict[str, tuple[int, int]] = field(default_factory=dict)  # path -> (bytes sent, times)
    ignore_range: bool = False
    requests: list[tuple[str, str | None]] = field(default_factory=list)

    def url(self, path: str) -> str:
        return self.base_url + path


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (the name http.server expects)
        state: ServerState = self.server.state
        state.requests.append((self.path, self.headers.get("Range")))
        body = state.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        start, status = 0, 200
        requested = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
        if requested and not state.ignore_range:
            start, status = int(requested[1]), 206
            if start >= len(body):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(body)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
        payload = body[start:]
        self.send_response(status)
        self.send_header("Content-Length", str(len(payload)))  # always the full length...
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        self.end_headers()
        sent, times = state.cut.get(self.path, (0, 0))
        if times > 0:  # ...then hang up early: a dropped connection
            state.cut[self.path] = (sent, times - 1)
            payload = payload[:sent]
        self.wfile.write(payload)

    def log_message(self, *args):  # keep the test output clean
        pass


@pytest.fixture
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    httpd.state = ServerState(base_url=f"http://127.0.0.1:{httpd.server_address[1]}")
    thread = threading.Thread(target=httpd.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    yield httpd.state
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(autouse=True)
def clean_env(monkeypatch, tmp_path):
    """No PETS_SAMPLE, an empty cache in tmp_path, and no proxy between us and 127.0.0.1."""
    for name in ("PETS_SAMPLE", "XDG_CACHE_HOME", "PETS_URL", "PETS_ANNOTATIONS_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PETBREEDS_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")


# --- archives ---------------------------------------------------------------------------------------

def _tar_gz(entries: list[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for info, data in entries:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def _file(name: str, data: bytes) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


def _special(name: str, kind: bytes, linkname: str = "") -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, linkname
    return info, None


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> dict[str, bytes]:
    """Four small synthetic photos, by file name."""
    folder = tmp_path_factory.mktemp("photos")
    paths = write_synthetic_pets(folder, breeds=["Bengal", "pug"], n_per_breed=2, size=(40, 30))
    return {p.name: p.read_bytes() for p in paths}


@pytest.fixture(scope="module")
def images_archive(photos) -> bytes:
    folder = tarfile.TarInfo("images")
    folder.type = tarfile.DIRTYPE
    return _tar_gz([(folder, None)] + [_file(f"images/{n}", d) for n, d in photos.items()])


@pytest.fixture(scope="module")
def annotations_archive() -> bytes:
    return _tar_gz([_file("annotations/list.txt", b"# Image CLASS-ID SPECIES BREED ID\nBengal_1 2 1 2\n")])


# --- breeds -----------------------------------------------------------------------------------------

def test_pet_breeds_are_the_37_dataset_names():
    assert len(PET_BREEDS) == 37 and len(set(PET_BREEDS)) == 37
    assert sum(map(is_cat, PET_BREEDS)) == 12
    assert list(PET_BREEDS) == sorted(PET_BREEDS)
    assert PET_BREEDS[:2] == ("Abyssinian", "Bengal") and PET_BREEDS[-1] == "yorkshire_terrier"
    assert {"British_Shorthair", "great_pyrenees", "german_shorthaired"} <= set(PET_BREEDS)


@pytest.mark.parametrize("name, cat", [("Bengal", True), ("Bengal_12.jpg", True),
                                       ("images/Sphynx_3.jpg", True), ("beagle_3.jpg", False),
                                       ("great_pyrenees", False)])
def test_is_cat(name, cat):
    assert is_cat(name) is cat


def test_is_cat_rejects_an_empty_name():
    with pytest.raises(ValueError, match="breed or file name"):
        is_cat("")


def test_display_names_are_for_people_and_say_cat_or_dog():
    assert display_name("British_Shorthair") == "British Shorthair (cat)"
    assert display_name("american_pit_bull_terrier") == "American Pit Bull Terrier (dog)"
    assert display_name("pug") == "Pug (dog)"
    names = [display_name(b) for b in PET_BREEDS]
    assert len(set(names)) == 37 and sum(n.endswith(" (cat)") for n in names) == 12 and "_" not in "".join(names)
    assert display_name("Maine__Coon_") == "Maine Coon (cat)"  # a stray underscore in a custom model's vocab
    for bad in ("", "_", "__"):
        with pytest.raises(ValueError, match="expected a breed id"):
            display_name(bad)


def test_real_sample_breeds_are_all_known(pets_sample, monkeypatch):
    """Runs when PETS_SAMPLE is set (CI); fails if it points nowhere (conftest's policy)."""
    with open(pets_sample / "labels.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert {r["breed"] for r in rows} <= set(PET_BREEDS)
    assert all((r["species"] == "cat") == is_cat(r["name"]) and r["name"].startswith(r["breed"] + "_")
               for r in rows)
    monkeypatch.setenv("PETS_SAMPLE", str(pets_sample))
    assert pets_path() == pets_sample


# --- pets_path --------------------------------------------------------------------------------------

def _dataset_folder(root: Path) -> Path:
    (root / "images").mkdir(parents=True)
    return root


def test_explicit_path_wins_even_over_a_bad_pets_sample(tmp_path, monkeypatch):
    folder = _dataset_folder(tmp_path / "mine")
    monkeypatch.setenv("PETS_SAMPLE", str(tmp_path / "nowhere"))
    assert pets_path(folder) == folder
    assert pets_path(str(folder)) == folder


@pytest.mark.parametrize("make, message", [
    (lambda p: p, "does not exist"),
    (lambda p: p.mkdir() or p, "has no images/ folder"),
    (lambda p: _dataset_folder(p) / "images", "use its parent"),
])
def test_explicit_path_errors_say_what_is_missing(tmp_path, make, message):
    path = make(tmp_path / "data")
    with pytest.raises(FileNotFoundError, match=message) as err:
        pets_path(path)
    assert str(path) in str(err.value)


def test_pets_sample_is_used_when_set(tmp_path, monkeypatch):
    sample = _dataset_folder(tmp_path / "oxford-pets-sample")
    _dataset_folder(tmp_path / "cache" / "oxford-iiit-pet")  # there, but the variable comes first
    monkeypatch.setenv("PETS_SAMPLE", str(sample))
    assert pets_path() == sample


def test_a_wrong_pets_sample_is_an_error_not_a_fall_through(tmp_path, monkeypatch):
    _dataset_folder(tmp_path / "cache" / "oxford-iiit-pet")  # would be found if we fell through
    (tmp_path / "empty").mkdir()
    monkeypatch.setenv("PETS_SAMPLE", str(tmp_path / "empty"))
    with pytest.raises(FileNotFoundError) as err:
        pets_path()
    message = str(err.value)
    assert f"PETS_SAMPLE={tmp_path / 'empty'}" in message and "images/" in message


def test_the_cached_full_dataset_is_found(tmp_path, monkeypatch):
    full = _dataset_folder(tmp_path / "cache" / "oxford-iiit-pet")
    write_synthetic_pets(full / "images", breeds=["pug"], n_per_breed=1, size=(20, 20))
    assert pets_path() == full
    monkeypatch.setenv("PETS_SAMPLE", "")  # empty counts as unset
    assert pets_path() == full


def test_the_cached_sample_is_found_when_the_full_dataset_is_not(tmp_path, full_pets_home):
    from engine.data.pets import build_sample

    sample = build_sample(full_pets_home / "oxford-iiit-pet", tmp_path / "cache" / "oxford-pets-sample",
                          show=lambda s: None)
    assert pets_path() == sample
    full = _dataset_folder(tmp_path / "cache" / "oxford-iiit-pet")  # an empty images/: an unfinished download
    assert pets_path() == sample
    write_synthetic_pets(full / "images", breeds=["pug"], n_per_breed=1, size=(20, 20))
    assert pets_path() == full  # the full dataset comes first


def test_nothing_found_says_how_to_get_data(tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        pets_path()
    message = str(err.value)
    assert "PETS_SAMPLE is not set" in message
    assert "python -m engine.datasets sample" in message and "downloads the Oxford-IIIT Pet dataset" in message
    assert str(tmp_path / "cache" / "oxford-iiit-pet") in message


def test_default_cache_dir_order(tmp_path, monkeypatch):
    assert default_cache_dir() == tmp_path / "cache"
    monkeypatch.delenv("PETBREEDS_HOME")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "petbreeds"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_cache_dir() == tmp_path / "home" / ".cache" / "petbreeds"


# --- download_file ----------------------------------------------------------------------------------

def test_a_dropped_transfer_resumes_with_a_range_request(server, images_archive, tmp_path):
    half = len(images_archive) // 2
    server.files["/images.tar.gz"] = images_archive
    server.cut["/images.tar.gz"] = (half, 1)
    dest = download_file(server.url("/images.tar.gz"), tmp_path / "images.tar.gz",
                         md5=_md5(images_archive), progress=True, retry_wait=0)
    assert server.requests == [("/images.tar.gz", None), ("/images.tar.gz", f"bytes={half}-")]
    assert half > 0 and _md5(dest.read_bytes()) == _md5(images_archive)
    assert not (tmp_path / "images.tar.gz.part").exists()


def test_a_server_that_ignores_range_makes_us_start_over(server, images_archive, tmp_path):
    server.files["/a.tgz"] = images_archive
    server.cut["/a.tgz"] = (100, 1)
    server.ignore_range = True
    dest = download_file(server.url("/a.tgz"), tmp_path / "a.tgz", md5=_md5(images_archive),
                         progress=False, retry_wait=0)
    assert server.requests[1] == ("/a.tgz", "bytes=100-")  # asked to resume, got a 200
    assert dest.read_bytes() == images_archive


@pytest.mark.parametrize("on_disk", ["first 1000 bytes", "all of it", "too much"])
def test_a_part_file_left_by_an_earlier_run_is_resumed(server, images_archive, tmp_path, on_disk):
    data = {"first 1000 bytes": images_archive[:1000], "all of it": images_archive,
            "too much": images_archive + b"garbage"}[on_disk]
    server.files["/a.tgz"] = images_archive
    (tmp_path / "a.tgz.part").write_bytes(data)
    dest = download_file(server.url("/a.tgz"), tmp_path / "a.tgz", md5=_md5(images_archive),
                         progress=False, retry_wait=0)
    assert server.requests[0] == ("/a.tgz", f"bytes={len(data)}-")
    assert dest.read_bytes() == images_archive
    assert len(server.requests) == {"first 1000 bytes": 1, "all of it": 1, "too much": 2}[on_disk]


def test_a_wrong_checksum_raises_and_leaves_nothing(server, images_archive, tmp_path):
    server.files["/a.tgz"] = images_archive
    with pytest.raises(ValueError, match=f"expected MD5 {'0' * 32}, got {_md5(images_archive)}.*retry"):
        download_file(server.url("/a.tgz"), tmp_path / "a.tgz", md5="0" * 32, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_giving_up_after_the_retries_keeps_the_part_file(server, images_archive, tmp_path):
    server.files["/a.tgz"] = images_archive
    server.cut["/a.tgz"] = (500, 99)
    url = server.url("/a.tgz")
    with pytest.raises(ConnectionError, match=re.escape(url) + r".*3 attempts.*PETS_URL"):
        download_file(url, tmp_path / "a.tgz", retries=2, progress=False, retry_wait=0)
    assert len(server.requests) == 3
    assert (tmp_path / "a.tgz.part").read_bytes() == images_archive[:1500]
    assert not (tmp_path / "a.tgz").exists()


def test_a_missing_file_fails_at_once(server, tmp_path):
    with pytest.raises(ConnectionError, match="HTTP 404"):
        download_file(server.url("/nope.tgz"), tmp_path / "a.tgz", retries=3, progress=False)
    assert len(server.requests) == 1


def test_an_existing_good_file_needs_no_network(server, tmp_path):
    (tmp_path / "a.tgz").write_bytes(b"done")
    assert download_file(server.url("/a.tgz"), tmp_path / "a.tgz", md5=_md5(b"done")) == tmp_path / "a.tgz"
    assert download_file(server.url("/a.tgz"), tmp_path / "a.tgz") == tmp_path / "a.tgz"
    assert server.requests == []


# --- safe_extract -----------------------------------------------------------------------------------

def test_safe_extract_writes_the_regular_files(images_archive, photos, tmp_path):
    archive = tmp_path / "images.tar.gz"
    archive.write_bytes(images_archive)
    written = safe_extract(archive, tmp_path / "dest")
    root = (tmp_path / "dest").resolve()
    assert sorted(written) == sorted(root / "images" / name for name in photos)
    assert all((root / "images" / n).read_bytes() == data for n, data in photos.items())


BAD_MEMBERS = {  # kind -> (member, the reason the error must give)
    "dotdot": (lambda tmp: _file("../evil.txt", b"evil"), "outside the destination"),
    "nested dotdot": (lambda tmp: _file("images/../../evil.txt", b"evil"), "outside the destination"),
    "absolute": (lambda tmp: _file(str(tmp / "out" / "evil.txt"), b"evil"), "absolute path"),
    "symlink": (lambda tmp: _special("images/link.jpg", tarfile.SYMTYPE, "../../evil.txt"), "symlink"),
    "hardlink": (lambda tmp: _special("images/hard.jpg", tarfile.LNKTYPE, "images/good.jpg"), "hardlink"),
    "fifo": (lambda tmp: _special("images/pipe", tarfile.FIFOTYPE), "FIFO"),
    "char device": (lambda tmp: _special("images/null", tarfile.CHRTYPE), "device file"),
    "block device": (lambda tmp: _special("images/sda", tarfile.BLKTYPE), "device file"),
}


@pytest.mark.parametrize("kind", BAD_MEMBERS)
def test_an_unsafe_member_stops_everything(tmp_path, kind):
    make, reason = BAD_MEMBERS[kind]
    bad = make(tmp_path)
    archive = tmp_path / "bad.tar.gz"
    archive.write_bytes(_tar_gz([_file("images/good.jpg", b"fine"), bad]))  # the good one first
    (tmp_path / "out").mkdir()
    with pytest.raises(UnsafeArchiveError, match=re.escape(str(archive))) as err:
        safe_extract(archive, tmp_path / "out" / "dest")
    assert repr(bad[0].name) in str(err.value) and reason in str(err.value)
    assert isinstance(err.value, ValueError)
    assert list((tmp_path / "out").rglob("*")) == []  # neither evil.txt nor good.jpg
    assert not (tmp_path / "evil.txt").exists()


def test_a_symlink_already_in_dest_cannot_redirect_writes(tmp_path):
    (tmp_path / "outside").mkdir()
    (tmp_path / "dest").mkdir()
    (tmp_path / "dest" / "images").symlink_to(tmp_path / "outside")
    archive = tmp_path / "a.tar.gz"
    archive.write_bytes(_tar_gz([_file("images/good.jpg", b"fine")]))
    with pytest.raises(UnsafeArchiveError, match="outside the destination"):
        safe_extract(archive, tmp_path / "dest")
    assert list((tmp_path / "outside").iterdir()) == []


@pytest.mark.parametrize("content", ["junk", "truncated"])
def test_a_corrupt_archive_is_a_clear_value_error(tmp_path, images_archive, content):
    archive = tmp_path / "images.tar.gz"
    archive.write_bytes(os.urandom(3000) if content == "junk" else images_archive[: len(images_archive) // 2])
    with pytest.raises(ValueError, match=re.escape(str(archive)) + ".*download again") as err:
        safe_extract(archive, tmp_path / "dest")
    assert not isinstance(err.value, UnsafeArchiveError)
    assert not (tmp_path / "dest").exists()


# --- download_pets ----------------------------------------------------------------------------------

def test_download_pets_downloads_extracts_and_cleans_up(server, images_archive, annotations_archive,
                                                        photos, tmp_path):
    server.files.update({"/images.tar.gz": images_archive, "/annotations.tar.gz": annotations_archive})
    dest = tmp_path / "pets"
    got = download_pets(dest, url=server.url("/images.tar.gz"), md5=_md5(images_archive),
                        annotations_url=server.url("/annotations.tar.gz"),
                        annotations_md5=_md5(annotations_archive), progress=False)
    assert got == dest and pets_path(got) == dest
    assert sorted(p.name for p in (dest / "images").glob("*.jpg")) == sorted(photos)
    assert (dest / "annotations" / "list.txt").read_text().startswith("# Image CLASS-ID")
    assert sorted(p.name for p in dest.iterdir()) == ["annotations", "images"]  # archives removed
    asked = len(server.requests)
    assert asked == 2 and download_pets(dest, url=server.url("/images.tar.gz")) == dest
    assert len(server.requests) == asked  # already there: no network


@pytest.mark.parametrize("how", ["argument", "PETS_URL"])
def test_a_mirror_url_is_not_checked_against_the_official_md5(server, images_archive, tmp_path,
                                                              monkeypatch, how):
    assert _md5(images_archive) != PETS_IMAGES_MD5
    server.files["/mirror/images.tar.gz"] = images_archive
    url = server.url("/mirror/images.tar.gz")
    if how == "PETS_URL":
        monkeypatch.setenv("PETS_URL", url)
    dest = download_pets(url=url if how == "argument" else None, annotations=False, progress=False)
    assert dest == tmp_path / "cache" / "oxford-iiit-pet" and len(list((dest / "images").iterdir())) == 4
    assert server.requests == [("/mirror/images.tar.gz", None)]


def test_an_explicit_md5_is_checked_for_a_mirror_too(server, images_archive, tmp_path):
    server.files["/images.tar.gz"] = images_archive
    with pytest.raises(ValueError, match="expected MD5 " + "1" * 32):
        download_pets(tmp_path / "pets", url=server.url("/images.tar.gz"), md5="1" * 32,
                      annotations=False, progress=False)
    assert not (tmp_path / "pets" / "images").exists()


def test_download_pets_keeps_an_unsafe_archive_and_extracts_nothing(server, tmp_path):
    server.files["/images.tar.gz"] = _tar_gz([_file("images/a.jpg", b"x"), _file("../evil.txt", b"x")])
    with pytest.raises(UnsafeArchiveError, match="'../evil.txt'"):
        download_pets(tmp_path / "pets", url=server.url("/images.tar.gz"), annotations=False,
                      progress=False)
    assert sorted(p.name for p in (tmp_path / "pets").iterdir()) == ["images.tar.gz"]
    assert not (tmp_path / "evil.txt").exists()


# --- command line -----------------------------------------------------------------------------------

def _run_cli(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "engine.datasets", *args], cwd=REPO,
                          env={**os.environ, **env}, capture_output=True, text=True, timeout=60)


def test_cli_where_with_a_bad_pets_sample_exits_1_without_a_traceback(tmp_path):
    result = _run_cli("where", PETS_SAMPLE=str(tmp_path / "missing"))
    assert result.returncode == 1
    assert f"PETS_SAMPLE={tmp_path / 'missing'}" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_cli_where_prints_the_folder(tmp_path):
    folder = _dataset_folder(tmp_path / "sample")
    result = _run_cli("where", PETS_SAMPLE=str(folder))
    assert (result.returncode, result.stdout.strip()) == (0, str(folder))


def test_cli_download(server, images_archive, tmp_path, capsys):
    server.files["/images.tar.gz"] = images_archive
    dest = tmp_path / "pets"
    assert main(["download", "--dest", str(dest), "--url", server.url("/images.tar.gz"),
                 "--no-annotations", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert f"is in {dest}" in out and f"pets_path('{dest}')" in out
    assert len(list((dest / "images").iterdir())) == 4
    assert main(["download", "--dest", str(tmp_path / "x"), "--url", server.url("/gone.tar.gz"),
                 "--no-annotations", "--quiet"]) == 1
    assert "error: download of" in capsys.readouterr().err


def _archive_of(folder: Path, top: str) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz", compresslevel=1) as tar:
        tar.add(folder, arcname=top)
    return buf.getvalue()


def test_cli_sample_downloads_the_full_dataset_and_reproduces_the_sample(server, full_pets_home, pets_sample,
                                                                         tmp_path, monkeypatch, capsys):
    root = full_pets_home / "oxford-iiit-pet"
    server.files.update({"/images.tar.gz": _archive_of(root / "images", "images"),
                         "/annotations.tar.gz": _archive_of(root / "annotations", "annotations")})
    monkeypatch.setenv("PETS_URL", server.url("/images.tar.gz"))
    monkeypatch.setenv("PETS_ANNOTATIONS_URL", server.url("/annotations.tar.gz"))
    assert main(["sample", "--quiet"]) == 0
    out = capsys.readouterr().out
    cache = tmp_path / "cache"
    assert "downloading it first" in out and f"The 370-photo sample is in {cache / 'oxford-pets-sample'}" in out
    sample = cache / "oxford-pets-sample"
    assert (sample / "labels.csv").read_bytes() == (pets_sample / "labels.csv").read_bytes()
    for photo in (pets_sample / "images").iterdir():
        assert hashlib.sha256((sample / "images" / photo.name).read_bytes()).digest() == \
            hashlib.sha256(photo.read_bytes()).digest(), photo.name
    assert sorted(p.name for p in (cache / "oxford-iiit-pet").iterdir()) == ["annotations", "images"]
    assert len(list((cache / "oxford-iiit-pet" / "images").iterdir())) == 375  # 370 + the awkward files
    asked = len(server.requests)
    assert main(["sample", "--quiet"]) == 0 and len(server.requests) == asked  # all there: no network


def test_an_interrupted_extraction_is_never_taken_as_complete(server, images_archive, tmp_path, monkeypatch):
    import engine.data.download

    server.files["/images.tar.gz"] = images_archive
    real_copy = engine.data.download.shutil.copyfileobj
    copied = []

    def copy_then_stop(source, out, *args):
        if copied:  # the second photo: as if Ctrl-C were pressed mid-extraction
            raise KeyboardInterrupt
        copied.append(1)
        return real_copy(source, out, *args)

    monkeypatch.setattr(engine.data.download.shutil, "copyfileobj", copy_then_stop)
    dest = tmp_path / "pets"
    with pytest.raises(KeyboardInterrupt):
        download_pets(dest, url=server.url("/images.tar.gz"), annotations=False, progress=False)
    assert not (dest / "images").exists()  # one photo was written, but only in the temporary folder
    with pytest.raises(FileNotFoundError):
        pets_path()  # not taken as a dataset
    monkeypatch.setattr(engine.data.download.shutil, "copyfileobj", real_copy)
    assert download_pets(dest, url=server.url("/images.tar.gz"), annotations=False, progress=False) == dest
    assert len(list((dest / "images").iterdir())) == 4 and sorted(p.name for p in dest.iterdir()) == ["images"]
    assert [r for r in server.requests] == [("/images.tar.gz", None)]  # the archive was kept: no second download


def test_importing_the_module_stays_cheap():
    code = ("import sys, engine.datasets\n"
            "print(sorted(m for m in ('torch', 'tqdm', 'numpy', 'PIL') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=REPO)
    assert (result.returncode, result.stdout.strip()) == (0, "[]")
