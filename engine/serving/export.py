"""Export a trained model safely, and load it back for prediction without unpickling anything.

``torch.save`` writes a pickle, and loading a pickle can run arbitrary code: a model file from the
internet is then a program. An export here is a folder with two plain files:

    model-<hash>.safetensors   the weights (tensors only: the format cannot hold code), named by
                               the first 16 hex digits of their SHA-256
    meta.json                  architecture, vocabulary, normalization, sizes, the weights' file
                               name and their full SHA-256

``meta.json`` is the commit point. The new weights go in under their own new name first, then
``meta.json`` is replaced in one atomic rename, and only then are the old weights deleted. So at
every moment the folder holds one complete export, the previous one or the new one: a crash or a
full disk half-way through exporting into a folder that held a model leaves that model loadable,
and the checksum in ``meta.json`` catches weights that do not belong to it. (Exports from before
this scheme name their weights plain ``model.safetensors``; they load as before.)
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import torch

from ..data.files import file_hash
from ..data.preprocessing import Preprocessing

__all__ = ["FORMAT_VERSION", "export", "read_export", "PickleRefused"]

FORMAT_VERSION = 2  # 2: the preprocessing as one object; 1 (still read): presize, size, normalization apart
WEIGHTS, META = "model.safetensors", "meta.json"  # WEIGHTS: the name before content-named weights
_WEIGHTS_NAME = re.compile(r"^model(-[0-9a-f]{16})?\.safetensors$")  # all that meta.json may point at
REQUIRED_META = ("format_version", "arch", "vocab", "sha256")


class PickleRefused(ValueError):
    """The file is a pickle (e.g. from ``torch.save``): refused, because loading it could run code."""


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

    model = learn.unwrapped
    dls = learn.dls
    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    state = {}
    for name, t in model.state_dict().items():
        t = t.detach().to("cpu").contiguous()
        state[name] = t.half() if half and t.is_floating_point() else t
    staged = folder / f".weights.{os.getpid()}.tmp"
    try:
        save_file(state, str(staged))
        digest = file_hash(staged)
        weights = f"model-{digest[:16]}.safetensors"
        os.chmod(staged, 0o644)  # readable by others, like any file a user writes
        os.replace(staged, folder / weights)  # a new name: the current export is untouched
    finally:
        staged.unlink(missing_ok=True)
    meta = {
        "format_version": FORMAT_VERSION,
        "arch": model.arch,
        "n_classes": model.n_classes,
        "vocab": list(dls.vocab),
        "preprocessing": dls.preprocessing.to_dict(),  # as it is: load_predictor reads it back
        "dtype": "float16" if half else "float32",
        "imagenet_classifier": model.imagenet_classifier is not None,
        "weights": weights,
        "sha256": digest,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        **(extra or {}),
    }
    try:
        _write_atomically(folder / META, lambda p: p.write_text(json.dumps(meta, indent=2) + "\n"))
    except BaseException:
        if _current_weights(folder) != weights:  # the old export stays; the new weights were never used
            (folder / weights).unlink(missing_ok=True)
        raise
    for old in folder.iterdir():  # the previous export's weights, now that meta.json no longer names them
        if old.name != weights and _WEIGHTS_NAME.match(old.name):
            old.unlink(missing_ok=True)
    return folder


def _current_weights(folder: Path) -> str | None:
    """The weights file that ``folder/meta.json`` names, or None."""
    try:
        return json.loads((folder / META).read_text()).get("weights", WEIGHTS)
    except (OSError, ValueError, AttributeError):
        return None


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
        if path.name == META or _WEIGHTS_NAME.match(path.name):
            path = path.parent
        else:
            raise ValueError(f"{path} is not an export: pass the folder that holds {META} and the model-*.safetensors "
                             "weights")
    if not path.is_dir():
        raise FileNotFoundError(f"no exported model at {path} (expected a folder with {META} and model-*.safetensors)")
    for candidate in path.iterdir():  # a pickle under our weights' name is refused before anything else
        if _WEIGHTS_NAME.match(candidate.name) and candidate.is_file():
            _refuse_pickles(candidate)
    if not (path / META).exists():
        raise FileNotFoundError(f"{path} is missing {META}: the export is incomplete; export the model again")
    try:
        meta = json.loads((path / META).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path / META} is not valid JSON ({err}); export the model again") from err
    if not isinstance(meta, dict):
        raise ValueError(f"{path / META} does not hold a JSON object; export the model again")
    missing = [k for k in REQUIRED_META if k not in meta]
    if "preprocessing" not in meta and not {"normalization", "presize", "size"} <= set(meta):
        missing.append("preprocessing")
    if missing:
        raise ValueError(f"{path / META} lacks {missing}; export the model again")
    try:
        Preprocessing.from_meta(meta)
    except (TypeError, ValueError, KeyError, AttributeError) as err:
        raise ValueError(f"{path / META}: its preprocessing cannot be read ({err}); export the model again") from None
    if not isinstance(meta["format_version"], int) or meta["format_version"] > FORMAT_VERSION:
        raise ValueError(f"{path} was exported by a newer petbreeds (format {meta['format_version']!r}); upgrade")
    name = meta.get("weights", WEIGHTS)
    if not isinstance(name, str) or not _WEIGHTS_NAME.match(name):  # never a path elsewhere on the disk
        raise ValueError(f"{path / META} names the weights {name!r}, not a model-*.safetensors file beside it; "
                         "export the model again")
    weights = path / name
    if not weights.is_file():
        raise FileNotFoundError(f"{path} is missing {name}, which {META} names: the export is incomplete; export "
                                "the model again")
    actual = file_hash(weights)
    if actual != meta["sha256"]:
        raise ValueError(f"{weights} does not match {META} (SHA-256 {actual[:12]}... expected "
                         f"{str(meta['sha256'])[:12]}...): the files come from different exports; export again")
    try:
        state = load_file(str(weights))
    except Exception as err:  # safetensors raises its own error types for damaged files
        raise ValueError(f"{weights} is not a readable safetensors file ({err}); export again") from err
    return meta, state
