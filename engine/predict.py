"""Name the breed of every photo in some files or folders, from the command line.

    python -m engine.predict demo/model ~/Pictures/pets --csv breeds.csv

MODEL is an export folder (``engine.serving.export``; ``demo/model`` is one). Each following
argument is a photo or a folder, searched with its subfolders. One row per photo: the file, the
three likeliest breeds (``breed_1``: the id, ``Maine_Coon``; ``name_1``: as a person reads it,
"Maine Coon (cat)"; ``p_1``: its probability), the verdict the web demo shows for the same photo
(``Prediction.verdict``: breed, unsure, disagree, not_a_pet or too_small), what the ImageNet check sees
(``imagenet_1``, its top class) and ``not_a_pet`` (yes when the verdict refuses the photo; both
empty when the model has no ImageNet head). Files that cannot be read as images (a ``.mat`` file, a
truncated JPEG, a text file) are listed in a "skipped" section with the reason; they never stop the run.

How it is fast: worker threads decode and preprocess the next photos (OpenCV and PIL release
Python's lock while they work) while the network runs on the current batch; the network sees
batches of ``--batch`` photos, which onnxruntime runs faster per photo than one at a time.

With ``--csv``, rows are written as they come to ``OUT.partial``, renamed to ``OUT`` at the end;
Ctrl-C stops at once and keeps the ``.partial`` file with every row written so far.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .serving.prediction import Prediction

__all__ = ["photo_files", "predict_files", "main"]

TOP = 3
COLUMNS = (["file"] + [f"{what}_{i}" for i in range(1, TOP + 1) for what in ("breed", "name", "p")]
           + ["verdict", "imagenet_1", "not_a_pet", "skipped"])
# What the screen line adds to the breeds, by verdict ({seen}: ImageNet's top class)
_NOTES = {"breed": "", "unsure": "  (not sure)", "too_small": "  (too small to tell: a larger photo, please)",
          "disagree": "  (though ImageNet sees: {seen})",
          "not_a_pet": "  (not a cat or a dog? ImageNet sees: {seen})"}


def photo_files(inputs: Iterable[str | Path]) -> tuple[list[Path], list[tuple[Path, str]]]:
    """The files to look at, in a stable order (folders searched recursively, hidden files left
    out), and the inputs that do not exist as (path, reason)."""
    files, missing, seen = [], [], set()
    for given in inputs:
        path = Path(given).expanduser()
        if path.is_dir():
            found = sorted(p for p in path.rglob("*")
                           if p.is_file() and not any(part.startswith(".") for part in p.relative_to(path).parts))
        elif path.is_file():
            found = [path]
        else:
            missing.append((path, "no such file or folder"))
            continue
        for p in found:
            if p.resolve() not in seen:
                seen.add(p.resolve())
                files.append(p)
    return files, missing


def _prepare(predictor, path: Path, tta: bool):
    """((pixels, (width, height)), None) for a readable photo, else (None, the reason)."""
    from .data.files import format_of

    try:
        with open(path, "rb") as f:
            if format_of(f.read(16)) is None:  # from its first bytes: a video or an archive is never read whole
                return None, "not an image file"
        photo = predictor.load(path)
        return (predictor.pixels(photo, tta=tta), (photo.shape[1], photo.shape[0])), None
    except Exception as err:  # noqa: BLE001 - any unreadable file is skipped with its reason, never a crash
        reason = str(err).strip() or type(err).__name__
        return None, f"{reason.splitlines()[0][:200]}"


def predict_files(predictor, files: list[Path], tta: bool = False, batch: int = 16,
                  workers: int | None = None) -> Iterator[tuple[Path, Prediction | None, str | None]]:
    """Yield ``(file, prediction, None)`` for each photo (a ``Prediction``) or ``(file, None,
    reason)`` for one that could not be read, in the order of ``files``.

    Decoding runs ahead on ``workers`` threads (default: the number of cores), at most a few
    batches ahead, so memory stays bounded for any number of files."""
    from .serving.onnx import usable_cpus

    workers = workers or usable_cpus()
    ahead = max(2 * batch, 2 * workers)
    pool = ThreadPoolExecutor(workers, thread_name_prefix="petbreeds-decode")
    try:
        pending: deque = deque()
        queue = iter(files)

        def refill():
            while len(pending) < ahead:
                path = next(queue, None)
                if path is None:
                    return
                pending.append((path, pool.submit(_prepare, predictor, path, tta)))

        refill()
        while pending:
            group = []  # (path, (pixels, size)) of the next batch, skipped files reported as they come
            while pending and len(group) < batch:
                path, future = pending.popleft()
                prepared, reason = future.result()
                refill()
                if prepared is None:
                    if group:  # keep the output in file order: answer the photos before this file first
                        yield from _answer(predictor, group)
                        group = []
                    yield path, None, reason
                else:
                    group.append((path, prepared))
            if group:
                yield from _answer(predictor, group)
    finally:  # also on Ctrl-C or when the caller stops early: drop the decodes not started yet
        pool.shutdown(wait=True, cancel_futures=True)


def _answer(predictor, group):
    """One forward pass for a batch of (path, (pixels, size)): (path, prediction, None) for each."""
    predictions = predictor.predict_batch([pixels for _, (pixels, _) in group], [size for _, (_, size) in group])
    for (path, _), prediction in zip(group, predictions):
        yield path, prediction, None


def _row(path: Path, prediction: Prediction | None, reason: str | None) -> dict:
    from .data.breeds import display_name

    row = {"file": str(path), "skipped": reason or ""}
    if prediction is not None:
        for i, (breed, p) in enumerate(prediction.top(TOP), 1):
            row[f"breed_{i}"], row[f"name_{i}"], row[f"p_{i}"] = breed, display_name(breed), f"{p:.4f}"
        check = prediction.imagenet  # None when the model has no ImageNet classifier
        row["verdict"] = prediction.verdict  # the web demo's rule: the same answer for the same photo
        row["imagenet_1"] = "" if check is None else check.top[0][0]
        row["not_a_pet"] = "" if check is None else "yes" if row["verdict"] == "not_a_pet" else "no"
    return row


def _line(row: dict) -> str:
    top = " | ".join(f"{row[f'name_{i}']} {float(row[f'p_{i}']):.0%}" for i in range(1, TOP + 1)
                     if row.get(f"breed_{i}"))
    return f"{row['file']}: {top}{_NOTES[row['verdict']].format(seen=row['imagenet_1'])}"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m engine.predict", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", help="an export folder (safetensors + meta.json), e.g. demo/model")
    p.add_argument("photos", nargs="+", metavar="PHOTO_OR_FOLDER", help="photos, or folders of photos")
    p.add_argument("--csv", type=Path, metavar="OUT", help="write the rows to this CSV file")
    p.add_argument("--tta", action="store_true", help="average each photo with its mirror image (twice the work)")
    p.add_argument("--batch", type=int, default=16, help="photos per forward pass (default 16)")
    p.add_argument("--workers", type=int, default=None, help="decoding threads (default: one per core)")
    p.add_argument("--runtime", choices=("auto", "onnx", "openvino", "pytorch"), default="auto",
                   help="what runs the network (default auto: the fastest of onnxruntime and OpenVINO that passes "
                        "its check)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.batch < 1 or (args.workers is not None and args.workers < 1):
        print("--batch and --workers must be at least 1", file=sys.stderr)
        return 2
    files, missing = photo_files(args.photos)
    if not files:
        for path, why in missing:
            print(f"{path}: {why}", file=sys.stderr)
        print("nothing to predict: give photos, or folders with photos in them", file=sys.stderr)
        return 2
    if args.csv is not None and args.csv.is_dir():
        print(f"--csv {args.csv} is a folder: give a file name such as {args.csv / 'breeds.csv'}", file=sys.stderr)
        return 2

    from .progress import progress_bar
    from .serving.predictor import load_predictor

    try:
        predictor = load_predictor(args.model, runtime=args.runtime)
    except (OSError, ValueError) as err:  # missing, pickled, damaged, refused (see serving/exported.py)
        print(f"cannot load the model {args.model}: {err}", file=sys.stderr)
        return 2
    print(f"{predictor} ({predictor.runtime_report}); {len(files)} files", file=sys.stderr)

    partial = out = writer = None
    if args.csv is not None:
        args.csv.parent.mkdir(parents=True, exist_ok=True)
        partial = args.csv.with_name(args.csv.name + ".partial")
        out = open(partial, "w", newline="", encoding="utf-8")
        writer = csv.DictWriter(out, COLUMNS)
        writer.writeheader()
    skipped = [(path, why) for path, why in missing]
    done = 0
    bar = progress_bar(len(files), "predicting", unit="photo")
    try:
        for path, prediction, reason in predict_files(predictor, files, tta=args.tta, batch=args.batch,
                                                      workers=args.workers):
            row = _row(path, prediction, reason)
            if reason is not None:
                skipped.append((path, reason))
            elif writer is not None:
                writer.writerow(row)
            else:
                (bar.write if hasattr(bar, "write") else print)(_line(row))
            done += reason is None
            bar.update(1)
        if writer is not None:
            for path, why in skipped:  # the skipped section: at the end, the reason in the last column
                writer.writerow({"file": str(path), "skipped": why})
    except KeyboardInterrupt:
        kept = f"; the rows so far are in {partial}" if partial is not None else ""
        print(f"\ninterrupted after {done} of {len(files)} files{kept}", file=sys.stderr)
        return 130
    finally:  # whatever happens, the bar ends and the .partial file is closed with what it holds
        bar.close()
        if out is not None:
            out.close()
    if writer is not None:
        os.replace(partial, args.csv)
        print(f"{done} photos -> {args.csv}", file=sys.stderr)
    if skipped:
        print(f"\nskipped ({len(skipped)}):", file=sys.stderr)
        for path, why in skipped:
            print(f"  {path}: {why}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
