"""An export folder read back for prediction, carefully, without unpickling anything.

What an export is, and how it is written, is ``export.py``. Reading is careful because an export
may come from anywhere: only regular files are read (a FIFO named ``meta.json`` would hang the
reader), none larger than a bound; the weights must have the SHA-256 that ``meta.json`` names, and
``meta.json`` must name a known architecture and sizes it can be served at (``check_sizes``). A
pickle, even under the weights' name, is refused before anything else.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import reprlib
import stat
from pathlib import Path

import torch

from ..data.preprocessing import Preprocessing

__all__ = ["FORMAT_VERSION", "read_export", "PickleRefused", "ExportRefused", "check_sizes", "read_regular_file",
           "MAX_FILE_BYTES", "MAX_META_BYTES", "GRAPH_NAME"]

FORMAT_VERSION = 2  # 2: the preprocessing as one object; 1 (still read): presize, size, normalization apart
WEIGHTS, META = "model.safetensors", "meta.json"  # WEIGHTS: the name before content-named weights
WEIGHTS_NAME = re.compile(r"^model(-[0-9a-f]{16})?\.safetensors$")  # all that meta.json may point at ...
GRAPH_NAME = re.compile(r"^model-[0-9a-f]{16}(\.int8)?\.onnx$")  # ... besides the graphs
REQUIRED_META = ("format_version", "arch", "vocab", "sha256")
MAX_META_BYTES = 1 << 20  # meta.json: the demo model's, with its ImageNet check, is 35 KB
MAX_FILE_BYTES = 1 << 30  # a weights file or a graph: resnet101's are under 200 MB
MAX_PRESIZE = 2048  # pixels: a photo presized to 8000 x 8000 takes gigabytes and many seconds
SIZE_PER_PRETRAINED = 4  # the final size: at most 4x the size the body was pretrained at (896 for 224)


class PickleRefused(ValueError):
    """The file is a pickle (e.g. from ``torch.save``): refused, because loading it could run code."""


class ExportRefused(ValueError):
    """An export that is not read: a file that is not a regular file or is too large, a meta.json nested
    too deeply, an unknown architecture, sizes that cannot be served."""


def _open_regular(path: Path):
    """``path`` opened for reading if it is a regular file; else ``ExportRefused``. A FIFO would
    block its reader forever and a device can be endless, so the file is opened without waiting
    and looked at before a byte is read."""
    f = os.fdopen(os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0)), "rb")
    if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
        f.close()
        raise ExportRefused(f"{path} is not a regular file (a pipe, a device or a socket): an export is a folder of "
                            "plain files; export the model again")
    return f


def read_regular_file(path: Path, max_bytes: int) -> bytes:
    """The bytes of ``path`` if it is a regular file of at most ``max_bytes``; else ``ExportRefused``."""
    with _open_regular(path) as f:
        size = os.fstat(f.fileno()).st_size
        if size > max_bytes:
            raise ExportRefused(f"{path} has {size:,} bytes, more than the {max_bytes:,} such a file may have in an "
                                "export; export the model again")
        return f.read(max_bytes)


def _refuse_pickles(path: Path) -> None:
    with _open_regular(path) as f:
        head = f.read(4)
    if head[:1] == b"\x80" or head[:2] == b"PK":
        raise PickleRefused(
            f"{path} is a pickle (torch.save/pickle format): petbreeds never loads pickles, because loading "
            "one can run arbitrary code. Export the model with export(learn, folder), which writes "
            f"{WEIGHTS} + {META}, and load that folder."
        )


def check_sizes(spec: Preprocessing, arch: str) -> None:
    """Refuse a presize above ``MAX_PRESIZE`` or a final size above ``SIZE_PER_PRETRAINED`` times the
    size ``arch`` was pretrained at: every photo would take seconds and gigabytes (ValueError)."""
    from ..models import get_arch

    limit = SIZE_PER_PRETRAINED * get_arch(arch).input_size
    if spec.size > limit:
        raise ValueError(f"the final size {spec.size} is too large for {arch}: at most {limit} pixels "
                         f"({SIZE_PER_PRETRAINED}x the {limit // SIZE_PER_PRETRAINED} it was pretrained at)")
    if spec.presize is not None and spec.presize > MAX_PRESIZE:
        raise ValueError(f"the presize {spec.presize} is too large: at most {MAX_PRESIZE} pixels")


def read_export(path: str | Path) -> tuple[dict, dict[str, torch.Tensor]]:
    """Read and check an export folder: ``(meta, state_dict)``. Raises a clear error otherwise."""
    from safetensors.torch import load

    path = Path(path)
    if path.is_file():
        _refuse_pickles(path)
        if path.name == META or WEIGHTS_NAME.match(path.name):
            path = path.parent
        else:
            raise ValueError(f"{path} is not an export: pass the folder that holds {META} and the model-*.safetensors "
                             "weights")
    if not path.is_dir():
        raise FileNotFoundError(f"no exported model at {path} (expected a folder with {META} and model-*.safetensors)")
    for candidate in path.iterdir():  # a pickle under our weights' name is refused before anything else
        if WEIGHTS_NAME.match(candidate.name) and candidate.is_file():
            _refuse_pickles(candidate)
    meta = _read_meta(path / META)
    name = meta.get("weights", WEIGHTS)
    weights = path / name
    if not weights.exists():
        raise FileNotFoundError(f"{path} is missing {name}, which {META} names: the export is incomplete; export "
                                "the model again")
    data = read_regular_file(weights, MAX_FILE_BYTES)  # read once: what is checked is what is loaded
    actual = hashlib.sha256(data).hexdigest()
    if actual != meta["sha256"]:
        raise ValueError(f"{weights} does not match {META} (SHA-256 {actual[:12]}... expected "
                         f"{str(meta['sha256'])[:12]}...): the files come from different exports; export again")
    try:
        state = load(data)
    except Exception as err:  # safetensors raises its own error types for damaged files
        raise ValueError(f"{weights} is not a readable safetensors file ({err}); export again") from err
    return meta, state


def _read_meta(file: Path) -> dict:
    """An export's meta.json, checked: what it names must exist, and the model it describes must be
    one that can be built and served (a known architecture, sizes in range)."""
    from ..models import ARCHS

    if not file.exists():
        raise FileNotFoundError(f"{file.parent} is missing {META}: the export is incomplete; export the model again")
    try:
        meta = json.loads(read_regular_file(file, MAX_META_BYTES))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{file} is not valid JSON ({err}); export the model again") from err
    except RecursionError:
        raise ExportRefused(f"{file} is nested too deeply (lists or objects inside each other hundreds of levels "
                            f"down) to be an export's {META}; export the model again") from None
    if not isinstance(meta, dict):
        raise ValueError(f"{file} does not hold a JSON object; export the model again")
    missing = [k for k in REQUIRED_META if k not in meta]
    if "preprocessing" not in meta and not {"normalization", "presize", "size"} <= set(meta):
        missing.append("preprocessing")
    if missing:
        raise ValueError(f"{file} lacks {missing}; export the model again")
    if not isinstance(meta["format_version"], int) or meta["format_version"] > FORMAT_VERSION:
        raise ValueError(f"{file.parent} was exported by a newer petbreeds (format "
                         f"{reprlib.repr(meta['format_version'])}); upgrade")
    arch = meta["arch"]
    if not isinstance(arch, str) or arch not in ARCHS:
        raise ExportRefused(f"{file} names the architecture {reprlib.repr(arch)}, which petbreeds does not know "
                            f"(known: {', '.join(ARCHS)}): the model cannot be built, nor its graph checked against "
                            "it; export the model again")
    vocab = meta["vocab"]
    if not isinstance(vocab, list) or not vocab or not all(isinstance(v, str) for v in vocab):
        raise ValueError(f"{file}: its vocab must be a list of breed names, got {reprlib.repr(vocab)}; export the "
                         "model again")
    if not isinstance(meta["sha256"], str):
        raise ValueError(f"{file}: its sha256 must be a hex string, got {reprlib.repr(meta['sha256'])}; export again")
    try:
        spec = Preprocessing.from_meta(meta)
    except (TypeError, ValueError, KeyError, AttributeError, RecursionError) as err:
        raise ValueError(f"{file}: its preprocessing cannot be read ({err}); export the model again") from None
    try:
        check_sizes(spec, arch)
    except ValueError as err:
        raise ExportRefused(f"{file}: {err}; this is not an export petbreeds wrote, export the model again") from None
    name = meta.get("weights", WEIGHTS)
    if not isinstance(name, str) or not WEIGHTS_NAME.match(name):  # never a path elsewhere on the disk
        raise ValueError(f"{file} names the weights {reprlib.repr(name)}, not a model-*.safetensors file beside "
                         "it; export the model again")
    return meta
