"""Export a trained model safely, and load it back for prediction without unpickling anything.

``torch.save`` writes a pickle, and loading a pickle can run arbitrary code: a model file from the
internet is then a program. An export here is a folder with two plain files:

    model.safetensors   the weights (tensors only: the format cannot hold code)
    meta.json           architecture, vocabulary, normalization, sizes, and the weights' SHA-256

Both are written to a temporary name and renamed into place (an atomic step), weights first and
``meta.json`` last, so a crash mid-export never leaves a folder that looks complete but is not;
and the checksum in ``meta.json`` catches weights that do not belong to it.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

import torch

__all__ = ["FORMAT_VERSION", "export", "read_export", "PickleRefused"]

FORMAT_VERSION = 1
WEIGHTS, META = "model.safetensors", "meta.json"
REQUIRED_META = ("format_version", "arch", "vocab", "normalization", "presize", "size", "sha256")


class PickleRefused(ValueError):
    """The file is a pickle (e.g. from ``torch.save``): refused, because loading it could run code."""


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _write_atomically(path: Path, write) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        os.chmod(tmp, 0o644)  # readable by others, like any file a user writes
        os.replace(tmp, path)  # atomic on the same filesystem
    finally:
        if tmp.exists():
            tmp.unlink()


def export(learn, path: str | Path, half: bool = False, extra: dict | None = None) -> Path:
    """Write ``learn``'s model to the folder ``path`` (created if needed); return the folder.

    Args:
        half: store the weights as float16 (half the size; prediction upcasts them again).
        extra: more JSON-serializable facts to keep in meta.json (e.g. the validation error).
    """
    from safetensors.torch import save_file

    model = getattr(learn.model, "module", learn.model)
    dls = learn.dls
    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    state = {}
    for name, t in model.state_dict().items():
        t = t.detach().to("cpu").contiguous()
        state[name] = t.half() if half and t.is_floating_point() else t
    _write_atomically(folder / WEIGHTS, lambda p: save_file(state, str(p)))
    presize = dls.train.dataset.presize
    meta = {
        "format_version": FORMAT_VERSION,
        "arch": model.arch,
        "n_classes": model.n_classes,
        "vocab": list(dls.vocab),
        "normalization": {"mean": list(dls.augment.mean), "std": list(dls.augment.std)},
        "presize": presize.size if presize is not None else None,
        "presize_method": presize.method if presize is not None else None,
        "size": dls.augment.size,
        "dtype": "float16" if half else "float32",
        "imagenet_classifier": model.imagenet_classifier is not None,
        "sha256": _sha256(folder / WEIGHTS),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        **(extra or {}),
    }
    _write_atomically(folder / META, lambda p: p.write_text(json.dumps(meta, indent=2) + "\n"))
    return folder


def _refuse_pickles(path: Path) -> None:
    with open(path, "rb") as f:
        head = f.read(4)
    if head[:1] == b"\x80" or head[:2] == b"PK":
        raise PickleRefused(
            f"{path} is a pickle (torch.save/pickle format): petbreeds never loads pickles, because loading "
            "one can run arbitrary code. Export the model with learn.export(folder), which writes "
            f"{WEIGHTS} + {META}, and load that folder."
        )


def read_export(path: str | Path) -> tuple[dict, dict[str, torch.Tensor]]:
    """Read and check an export folder: ``(meta, state_dict)``. Raises a clear error otherwise."""
    from safetensors.torch import load_file

    path = Path(path)
    if path.is_file():
        _refuse_pickles(path)
        if path.name in (WEIGHTS, META):
            path = path.parent
        else:
            raise ValueError(f"{path} is not an export: pass the folder that holds {WEIGHTS} and {META}")
    if not path.is_dir():
        raise FileNotFoundError(f"no exported model at {path} (expected a folder with {WEIGHTS} and {META})")
    for name in (META, WEIGHTS):
        if not (path / name).exists():
            raise FileNotFoundError(f"{path} is missing {name}: the export is incomplete; export the model again")
    _refuse_pickles(path / WEIGHTS)
    try:
        meta = json.loads((path / META).read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path / META} is not valid JSON ({err}); export the model again") from err
    missing = [k for k in REQUIRED_META if k not in meta]
    if missing:
        raise ValueError(f"{path / META} lacks {missing}; export the model again")
    if meta["format_version"] > FORMAT_VERSION:
        raise ValueError(f"{path} was exported by a newer petbreeds (format {meta['format_version']}); upgrade")
    actual = _sha256(path / WEIGHTS)
    if actual != meta["sha256"]:
        raise ValueError(f"{path / WEIGHTS} does not match {META} (SHA-256 {actual[:12]}... expected "
                         f"{meta['sha256'][:12]}...): the files come from different exports; export again")
    try:
        state = load_file(str(path / WEIGHTS))
    except Exception as err:  # safetensors raises its own error types for damaged files
        raise ValueError(f"{path / WEIGHTS} is not a readable safetensors file ({err}); export again") from err
    return meta, state
