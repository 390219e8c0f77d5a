"""``python -m engine.datasets``: fetch the full Oxford-IIIT Pet dataset safely, and pick the sample out of it.

Finding the photos is ``engine.data.locate`` (``pets_path``, ``pets_sample``): everything asks it.
This module is the command that puts them where it looks.

The full dataset is ~800 MB, so ``download_pets`` uses ``engine.data.download``: transfers resume with
HTTP ``Range`` requests and are checked against an MD5, and archives are extracted only when no
member could write outside the destination (``../``, absolute paths, links, devices).

Command line::

    python -m engine.datasets download [--dest DIR] [--url URL] [--no-annotations]
    python -m engine.datasets sample [--dest DIR] [--source DIR]    (downloads first when needed)
    python -m engine.datasets where
"""

from __future__ import annotations

import argparse
import enum
import os
import shutil
import sys
from pathlib import Path

from .data.download import download_file, safe_extract
from .data.locate import download_complete, full_dataset_dir, pets_path, sample_dir

__all__ = [
    "PETS_IMAGES_URL",
    "PETS_IMAGES_MD5",
    "PETS_ANNOTATIONS_URL",
    "PETS_ANNOTATIONS_MD5",
    "OFFICIAL_MD5",
    "download_pets",
    "main",
]

PETS_IMAGES_URL = "https://www.robots.ox.ac.uk/~vgg/data/pets/data/images.tar.gz"
PETS_IMAGES_MD5 = "5c4f3ee8e5d25df40f4fd59a7f44e54c"
PETS_ANNOTATIONS_URL = "https://www.robots.ox.ac.uk/~vgg/data/pets/data/annotations.tar.gz"
PETS_ANNOTATIONS_MD5 = "95a8c909bbe2e81eed6a22bccdf3f68f"


# --- the whole dataset ------------------------------------------------------------------------------

class _Official(enum.Enum):
    MD5 = "the official checksum when downloading from the official URL, else no check"

    def __repr__(self) -> str:
        return "OFFICIAL_MD5"


# Default ``md5`` of ``download_pets``: check the official MD5 only when the URL is the official one,
# since a mirror or a test server may serve a different (e.g. re-packed or smaller) archive.
OFFICIAL_MD5 = _Official.MD5


def _extract_into(archive: Path, dest: Path) -> None:
    """Extract into a temporary folder inside ``dest``, then move each top-level entry into place.

    A rename is atomic, so ``dest/images`` appears only when all its files are there: an
    interrupted extraction leaves the temporary folder (removed by the next run), never a partial
    ``images/`` that the next run would take as complete.
    """
    tmp = dest / f".extracting-{archive.name}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        safe_extract(archive, tmp)
        for entry in sorted(tmp.iterdir()):
            target = dest / entry.name
            if target.is_dir():  # e.g. an annotations/ left by an earlier, older run
                shutil.rmtree(target)
            os.replace(entry, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _resolve(url: str | None, env_var: str, official_url: str, md5: str | None | _Official,
             official_md5: str) -> tuple[str, str | None]:
    url = url or os.environ.get(env_var) or official_url
    if md5 is OFFICIAL_MD5:
        md5 = official_md5 if url == official_url else None
    return url, md5


def download_pets(dest: str | os.PathLike | None = None, *, url: str | None = None,
                  md5: str | None | _Official = OFFICIAL_MD5, annotations: bool = True,
                  annotations_url: str | None = None,
                  annotations_md5: str | None | _Official = OFFICIAL_MD5,
                  progress: bool = True) -> Path:
    """Download and extract the Oxford-IIIT Pet dataset; returns the folder holding ``images/``.

    Args:
        dest: target folder; default ``full_dataset_dir()`` (``<cache>/oxford-iiit-pet``). If ``dest/images``
            already holds images, nothing is downloaded.
        url: images archive; default ``$PETS_URL``, else ``PETS_IMAGES_URL``.
        md5: expected MD5 of the images archive, or None for no check. The default ``OFFICIAL_MD5``
            checks ``PETS_IMAGES_MD5`` when ``url`` is the official URL and skips the check otherwise.
        annotations: also fetch the annotations archive (breeds list, trimaps, head boxes).
        annotations_url: default ``$PETS_ANNOTATIONS_URL``, else the official one.
        annotations_md5: as ``md5``, for the annotations archive.
        progress: show progress bars.
    """
    dest = Path(dest).expanduser() if dest is not None else full_dataset_dir()
    if download_complete(dest):
        return dest
    jobs = {"images.tar.gz": _resolve(url, "PETS_URL", PETS_IMAGES_URL, md5, PETS_IMAGES_MD5)}
    if annotations and not (dest / "annotations").is_dir():  # it survives an earlier, failed run
        jobs = {"annotations.tar.gz": _resolve(annotations_url, "PETS_ANNOTATIONS_URL",
                                               PETS_ANNOTATIONS_URL, annotations_md5,
                                               PETS_ANNOTATIONS_MD5), **jobs}
    # Download everything before extracting, and extract the images last: once images/ exists the
    # next call returns at once, so it must only exist when the whole job has succeeded.
    archives = [download_file(job_url, dest / name, md5=job_md5, progress=progress)
                for name, (job_url, job_md5) in jobs.items()]
    for archive in archives:
        _extract_into(archive, dest)  # on failure the archive stays, to inspect or retry offline
        archive.unlink()
    if not download_complete(dest):
        raise ValueError(
            f"the archive from {jobs['images.tar.gz'][0]} did not contain images/<breed>_<n>.jpg under {dest}. "
            f"Expected the Oxford-IIIT Pet images.tar.gz; check PETS_URL / the url argument."
        )
    return dest


# --- command line -----------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    """``python -m engine.datasets {download,sample,where}``; returns the exit code."""
    parser = argparse.ArgumentParser(prog="python -m engine.datasets",
                                     description="Find or download the Oxford-IIIT Pet photos.")
    commands = parser.add_subparsers(dest="command", required=True)
    get = commands.add_parser("download", help="download the full Oxford-IIIT Pet dataset (~800 MB)")
    get.add_argument("--dest", help=f"target folder (default: {full_dataset_dir()})")
    get.add_argument("--url", help="images archive URL (default: $PETS_URL or the official URL)")
    get.add_argument("--no-annotations", action="store_true", help="skip the annotations archive")
    get.add_argument("--quiet", action="store_true", help="no progress bars")
    pick = commands.add_parser("sample", help="pick the lessons' 370-photo sample out of the full dataset "
                                              "(downloading it first when needed)")
    pick.add_argument("--dest", help=f"where the sample goes (default: {sample_dir()})")
    pick.add_argument("--source", help="a full download to pick from (default: the dataset in the cache, "
                                       "downloaded there first if it is missing)")
    pick.add_argument("--url", help="images archive URL for the download (default: $PETS_URL or the official URL)")
    pick.add_argument("--quiet", action="store_true", help="no progress bars")
    commands.add_parser("where", help="print the folder pets_path() finds, or how to get data")
    args = parser.parse_args(argv)
    try:
        if args.command == "where":
            print(pets_path())
            return 0
        if args.command == "sample":
            return _sample_command(args)
        folder = download_pets(args.dest, url=args.url, annotations=not args.no_annotations,
                               progress=not args.quiet)
    except (FileNotFoundError, FileExistsError, ConnectionError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ninterrupted: run the same command again to resume", file=sys.stderr)
        return 130
    print(f"The Oxford-IIIT Pet dataset is in {folder} (photos in {folder / 'images'}).")
    if args.dest is None:
        print("pets_path() finds it with no PETS_SAMPLE set: unset PETS_SAMPLE and call pets_path().")
    else:
        print(f"Use it with pets_path({str(folder)!r}), or download into the default cache so that "
              f"pets_path() finds it without PETS_SAMPLE.")
    return 0


def _sample_command(args: argparse.Namespace) -> int:
    from .data.pets import build_sample

    if args.source is not None:
        source = Path(args.source).expanduser()
    else:
        source = full_dataset_dir()
        if not download_complete(source):
            print(f"The full dataset is not in {source} yet: downloading it first (~800 MB).", flush=True)
            download_pets(source, url=args.url, progress=not args.quiet)
    dest = Path(args.dest).expanduser() if args.dest else sample_dir()
    build_sample(source, dest)
    print(f"The 370-photo sample is in {dest} (images/ + labels.csv).")
    if args.dest is None:
        print("The lessons, `python -m demo` and pets_sample() find it there with no PETS_SAMPLE set.")
    else:
        print(f"Point PETS_SAMPLE at it (export PETS_SAMPLE={dest}) or pass it as a path.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
