"""Benchmark: the default recipe on a dataset the size of the full Oxford-IIIT Pet download.

    python bench/scale.py [--keep DIR] [--photos 7390] [--skip-small]

The full download cannot be reached from our machines, so this builds a stand-in of the same size
and layout from the 370 sample photos ($PETS_SAMPLE): 7,390 files named like the real ones in
``images/`` (every sample photo re-encoded about 20 times, each copy flipped or not, cropped to
80-100% of each side at a random place and saved at a random JPEG quality, so no two files are
the same), among them the awkward files the real archive has (a GIF, a PNG and a CMYK JPEG named
.jpg, a truncated JPEG, a .mat file); ``annotations/`` holds the official list files with half of
each breed in trainval and half in test, and 41 photos in neither, as in the real split
(3,680 / 3,669).

Then it runs ``python -m engine.train --data <stand-in>`` in this process, end to end: listing and
checking the files, caching the body's features (each photo and its mirror image), starting the
head from the class averages, 32 head epochs, and the report on the test split. The same recipe
runs on the 370-photo sample beside it, so that the cost per photo can be compared: it should
not grow with the number of photos.

The stand-in is built in a temporary folder (about 250 MB) and deleted afterwards, unless ``--keep
DIR`` names a folder to build it in once and reuse. Building it is not timed. The last line is one
JSON object: ``n_photos``, ``cache_ips``, ``train_s``, ``total_s``, ``peak_rss_mb`` and the same for
the sample run, with ``per_photo_ratio`` (the stand-in's seconds per photo over the sample's).
"""

from __future__ import annotations

import argparse
import csv
import json
import multiprocessing
import random
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.data.locate import pets_sample  # noqa: E402
from engine.testing import AWKWARD_FILES, write_awkward_files, write_official_lists  # noqa: E402

N_UNLISTED = 41  # photos of the real images/ that are in neither official list


def _variant(job: tuple[str, str, int]) -> None:
    """Write one re-encoded, maybe flipped, cropped copy of a sample photo."""
    from PIL import Image, ImageOps

    src, dest, seed = job
    rng = random.Random(seed)
    with Image.open(src) as img:
        img = ImageOps.exif_transpose(img).convert("RGB")
        if rng.random() < 0.5:
            img = ImageOps.mirror(img)
        w, h = img.size
        cw, ch = round(w * rng.uniform(0.8, 1.0)), round(h * rng.uniform(0.8, 1.0))
        left, top = rng.randint(0, w - cw), rng.randint(0, h - ch)
        img.crop((left, top, left + cw, top + ch)).save(dest, quality=rng.randint(70, 95))


def build_stand_in(root: Path, sample: Path, n_photos: int = 7390) -> Path:
    """The full layout with ``n_photos`` .jpg files made from the sample's photos (see the docstring)."""
    marker = root / ".complete"
    if marker.is_file() and marker.read_text() == str(n_photos):
        return root
    shutil.rmtree(root, ignore_errors=True)
    (root / "images").mkdir(parents=True)
    with open(sample / "labels.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    awkward = write_awkward_files(root / "images")
    n_awkward = sum(name.endswith(".jpg") for name in awkward)
    jobs, number = [], {}
    for k in range(n_photos - n_awkward):
        row = rows[k % len(rows)]
        breed = row["breed"]
        number[breed] = number.get(breed, 1000) + 1  # beyond the real numbers: no clash with the awkward files
        jobs.append((str(sample / "images" / row["name"]), str(root / "images" / f"{breed}_{number[breed]}.jpg"), k))
    start = time.perf_counter()
    with multiprocessing.Pool() as pool:
        for i, _ in enumerate(pool.imap_unordered(_variant, jobs, chunksize=64), 1):
            if i % 1000 == 0:
                print(f"  stand-in: {i}/{len(jobs)} photos written ({time.perf_counter() - start:.0f} s)", flush=True)
    names = sorted(Path(dest).name for _, dest, _ in jobs) + [n for n, (_, listed) in AWKWARD_FILES.items() if listed]
    rng = random.Random(0)
    rng.shuffle(names)
    listed, by_breed = names[N_UNLISTED:], {}
    for name in sorted(listed):
        by_breed.setdefault(name.rsplit("_", 1)[0], []).append(name)
    trainval, test = [], []
    for breed_names in by_breed.values():  # half of each breed for training, half for testing
        half = (len(breed_names) + 1) // 2
        trainval += breed_names[:half]
        test += breed_names[half:]
    write_official_lists(root, trainval, test)
    marker.write_text(str(n_photos))
    return root


def peak_rss_mb() -> float:
    """The largest resident memory this process (and its finished children) reached, in MB."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children) / 1024  # Linux reports KB


def run_recipe(data: Path) -> dict:
    from engine.train import build_parser, train

    start = time.perf_counter()
    report = train(build_parser().parse_args(["--data", str(data)]))
    total_s = time.perf_counter() - start
    return {"n_photos": report["n_train"] + report["n_valid"], "n_train": report["n_train"],
            "n_test": report["n_valid"], "error": round(report["valid_error"], 4),
            "cache_ips": round(report["n_cached"] / report["cache_s"], 1), "cache_s": round(report["cache_s"], 1),
            "train_s": round(report["train_s"], 1), "total_s": round(total_s, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keep", type=Path, help="build the stand-in in this folder, or reuse it from there")
    parser.add_argument("--photos", type=int, default=7390, help="files in the stand-in's images/ (default 7390)")
    parser.add_argument("--skip-small", action="store_true", help="do not run the 370-photo sample beside it")
    args = parser.parse_args()
    sample = pets_sample()
    tmp = None
    if args.keep is None:
        tmp = Path(tempfile.mkdtemp(prefix="petbreeds-scale-"))
    root = args.keep or tmp / "oxford-iiit-pet"
    try:
        t0 = time.perf_counter()
        build_stand_in(root, sample, args.photos)
        print(f"stand-in of {args.photos} files in {root} ready in {time.perf_counter() - t0:.0f} s", flush=True)
        figures = {}
        if not args.skip_small:
            small = run_recipe(sample)
            print(f"sample: {small}", flush=True)
            figures.update({f"sample_{k}": v for k, v in small.items()})
        full = run_recipe(root)
        full["peak_rss_mb"] = round(peak_rss_mb())
        print(f"stand-in: {full}", flush=True)
        figures = {**full, **figures}
        if not args.skip_small:
            figures["per_photo_ratio"] = round((full["total_s"] / full["n_photos"])
                                               / (figures["sample_total_s"] / figures["sample_n_photos"]), 3)
        print(json.dumps(figures))
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
