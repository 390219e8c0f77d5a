"""Export a trained model safely, and load it back for prediction without unpickling anything.

``torch.save`` writes a pickle, and loading a pickle can run arbitrary code: a model file from the
internet is then a program. An export here is a folder of plain files:

    model-<hash>.safetensors   the weights (tensors only: the format cannot hold code), named by
                               the first 16 hex digits of their SHA-256
    model-<hash>.onnx          the whole prediction as an ONNX graph for onnxruntime (``onnx.py``)
    model-<hash>.int8.onnx     with ``int8=True``: its 8-bit copy, kept only if it agrees with it
    meta.json                  architecture, vocabulary, preprocessing, the files' names and their
                               full SHA-256, how well the int8 copy agreed, and with ``int8=True``
                               how OpenVINO's bf16 agreed and how fast each runtime was
                               (``measure.py``)

``meta.json`` is the commit point. The new files go in under their own new names first, then
``meta.json`` is replaced in one atomic rename, and only then are the old files deleted. So at
every moment the folder holds one complete export, the previous one or the new one: a crash or a
full disk half-way through exporting into a folder that held a model leaves that model loadable,
and the checksum in ``meta.json`` catches weights that do not belong to it. (Exports from before
this scheme name their weights plain ``model.safetensors``; they load as before.)

Ctrl-C stops an export at any point before that rename and leaves the folder as it was. A
``KeyboardInterrupt`` is not always seen: Python raises it in whatever Python code runs next, and
when that code was called from C that drops errors (an object's ``__del__``, which only prints
"Exception ignored in ..."; numpy's ctypes check, which clears them) the exception is gone. So while
exporting, a press is also *remembered* (``remembering_ctrl_c``), and a remembered press stops the
export at the rename at the latest. A full disk, or any other failed write, is an ``ExportFailed``
naming the folder, again with the folder left as it was (a folder the export created is removed).

Reading an export back, carefully, is ``exported.py``.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import signal
import sys
import threading
import time
from pathlib import Path

from ..data.files import file_hash
from .exported import FORMAT_VERSION, GRAPH_NAME, MAX_META_BYTES, META, WEIGHTS, WEIGHTS_NAME, read_regular_file

__all__ = ["export", "ExportFailed", "InterruptedAfterExport", "remembering_ctrl_c", "INT8_AGREEMENT"]

INT8_AGREEMENT = 0.99  # the share of photos on which the int8 graph must name the float graph's breed


class ExportFailed(OSError):
    """An export could not be written (a full disk, no permission); the folder was left as it was."""


class InterruptedAfterExport(KeyboardInterrupt):
    """Ctrl-C came while ``meta.json`` was being replaced: the new export is complete."""


class _CtrlC:
    """A SIGINT handler that raises ``KeyboardInterrupt`` as Python's does, and remembers the press."""

    def __init__(self, previous):
        self.previous, self.pressed, self.held = previous, False, False

    def __call__(self, signum, frame):
        self.pressed = True
        if self.held:  # the commit point: the press is dealt with once meta.json is in place
            return
        if isinstance(self.previous, _CtrlC):
            self.previous(signum, frame)
        raise KeyboardInterrupt

    def check(self) -> None:
        """Raise ``KeyboardInterrupt`` if Ctrl-C was pressed, even if that exception was lost."""
        if self.pressed:
            raise KeyboardInterrupt


@contextlib.contextmanager
def remembering_ctrl_c():
    """Within the block, Ctrl-C raises ``KeyboardInterrupt`` as usual and is also remembered
    (``.pressed``, ``.check()``), and a ``KeyboardInterrupt`` that a finalizer could only report as
    "Exception ignored" is remembered instead of printed. Outside the main thread, or where Ctrl-C
    has another handler (or none), nothing changes and nothing is remembered."""
    previous = signal.getsignal(signal.SIGINT) if threading.current_thread() is threading.main_thread() else None
    if previous is not signal.default_int_handler and not isinstance(previous, _CtrlC):
        yield _CtrlC(None)
        return
    ctrl_c, hook = _CtrlC(previous), sys.unraisablehook

    def unraisable(info):
        if isinstance(info.exc_value, KeyboardInterrupt):
            ctrl_c.pressed = True
        else:
            hook(info)

    signal.signal(signal.SIGINT, ctrl_c)
    sys.unraisablehook = unraisable
    try:
        yield ctrl_c
    finally:
        sys.unraisablehook = hook
        signal.signal(signal.SIGINT, previous)


def _write_atomically(path: Path, write, before_replace=lambda: None) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        os.chmod(tmp, 0o644)  # readable by others, like any file a user writes
        before_replace()
        os.replace(tmp, path)  # atomic on the same filesystem
    finally:
        if tmp.exists():
            tmp.unlink()


def export(learn, path: str | Path, half: bool = False, extra: dict | None = None, onnx: bool = True,
           int8: bool = False) -> Path:
    """Write ``learn``'s model to the folder ``path`` (created if needed); return the folder.

    Args:
        half: store the weights as float16 (half the size; prediction upcasts them again).
        extra: more JSON-serializable facts to keep in meta.json (e.g. the validation error).
        onnx: also write the ONNX graph that ``load_predictor`` serves with onnxruntime (when the
            export fails, say without the ``onnx`` package, a warning says so and the folder holds
            the weights only).
        int8: also write an int8 copy of the graph, calibrated on training photos. It is kept only
            if it names the float graph's breed on at least 99% of the data's photos and its
            validation error is no worse; ``meta.json`` has the figures either way. The same photos
            measure OpenVINO's reduced precision and every runtime's speed (``measure.py``),
            which the predictor reads to choose its runtime.
    """
    from safetensors.torch import save_file

    model, dls = learn.unwrapped, learn.dls
    folder = Path(path)
    state = {}
    for name, t in model.state_dict().items():
        t = t.detach().to("cpu").contiguous()
        state[name] = t.half() if half and t.is_floating_point() else t
    had_export = (folder / META).exists()
    written: list[str] = []
    created: list[Path] = []
    with remembering_ctrl_c() as ctrl_c:
        def commit():  # the last moment to stop; from here on a press waits until meta.json is in place
            ctrl_c.check()
            ctrl_c.held = True

        try:
            created = _make_folder(folder)
            weights, digest = _stage(folder, ".safetensors", lambda p: save_file(state, str(p)))
            written.append(weights)
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
            }
            if onnx or int8:
                meta.update(_graphs(learn, folder, int8, written))
            meta.update(extra or {})
            _write_atomically(folder / META, lambda p: p.write_text(json.dumps(meta, indent=2) + "\n"), commit)
        except BaseException as err:  # Ctrl-C, a full disk ...: the folder goes back to what it was
            ctrl_c.held = False
            current = _current_files(folder)
            for name in written:  # the old export stays; the new files were never used
                if name not in current:
                    (folder / name).unlink(missing_ok=True)
            for made in created:  # deepest first; one that is not empty stays
                with contextlib.suppress(OSError):
                    made.rmdir()
            failed = _write_failure(err, folder, had_export)
            if failed is not None:
                raise failed from err
            raise
        for old in folder.iterdir():  # the previous export's files, now that meta.json no longer names them
            if old.name not in written and (WEIGHTS_NAME.match(old.name) or GRAPH_NAME.match(old.name)):
                old.unlink(missing_ok=True)
    if ctrl_c.pressed:  # it came while meta.json was being replaced: too late to stop, so say so now
        raise InterruptedAfterExport(f"Ctrl-C came as the export to {folder} was being completed; it is complete")
    return folder


def _make_folder(folder: Path) -> list[Path]:
    """``folder.mkdir(parents=True)``; the folders it created, deepest first."""
    missing, p = [], folder
    while not p.exists() and p != p.parent:
        missing.append(p)
        p = p.parent
    folder.mkdir(parents=True, exist_ok=True)
    return missing


def _write_failure(err: BaseException, folder: Path, had_export: bool) -> ExportFailed | None:
    """An ``ExportFailed`` that says in one line why writing ``folder`` failed, or None when ``err``
    is not a failed write (Ctrl-C, a bug). safetensors reports its own write errors as text."""
    from safetensors import SafetensorError

    if not isinstance(err, (OSError, SafetensorError)):
        return None
    text = (getattr(err, "strerror", None) or str(err) or type(err).__name__).splitlines()[0]
    full = getattr(err, "errno", None) in (errno.ENOSPC, errno.EDQUOT) or "os error 28" in text \
        or "No space left" in text
    where = f" (writing {err.filename})" if getattr(err, "filename", None) else ""
    kept = "the export already there is unchanged" if had_export else "nothing was left behind"
    if full:
        failed = ExportFailed(f"cannot export to {folder}: no space left on the device{where}; {kept}. Free some "
                              "space, or export to a folder on another disk")
    else:
        failed = ExportFailed(f"cannot export to {folder}: {text}{where}; {kept}. Check that the folder can be "
                              "written")
    failed.errno = errno.ENOSPC if full else getattr(err, "errno", None)
    return failed


def _stage(folder: Path, suffix: str, write) -> tuple[str, str]:
    """Write a file through ``write(path)`` and give it its content's name: ``(name, sha256)``."""
    staged = folder / f".staged.{os.getpid()}{suffix}.tmp"
    try:
        write(staged)
        digest = file_hash(staged)
        name = f"model-{digest[:16]}{suffix}"
        os.chmod(staged, 0o644)  # readable by others, like any file a user writes
        os.replace(staged, folder / name)  # a new name: the current export is untouched
        return name, digest
    finally:
        staged.unlink(missing_ok=True)


def _graphs(learn, folder: Path, int8: bool, written: list[str]) -> dict:
    """The ONNX graph (and its int8 copy) in ``folder``; their entries for meta.json."""
    import warnings

    from .onnx import export_onnx, reference_probabilities

    spec = learn.dls.preprocessing
    try:
        graph = export_onnx(learn.unwrapped, spec)
    except Exception as err:  # no onnx package, an operator the exporter lacks ...
        warnings.warn(f"the ONNX graph could not be exported ({type(err).__name__}: {err}); the export has the "
                      "weights only, and load_predictor builds the graph itself or uses PyTorch", RuntimeWarning,
                      stacklevel=3)
        return {}
    name, digest = _stage(folder, ".onnx", lambda p: p.write_bytes(graph))
    written.append(name)
    # What the PyTorch model answers on the check picture: load_predictor compares the graph with
    # it before using it, without building the PyTorch model (and importing timm) at every start.
    answer = reference_probabilities(learn.unwrapped, spec)
    reference = [p[0].round(7).tolist() for p in answer]
    out = {"onnx": {"file": name, "sha256": digest, "input": f"(n, {spec.size}, {spec.size}, 3) float32 pixels 0..255",
                    "check": {"breeds": reference[0], "imagenet": reference[1] if len(reference) > 1 else None}}}
    if int8:
        from .measure import runtime_figures

        out.update(_int8_copy(learn, graph, folder, written))
        quantized = (folder / out["int8"]["file"]).read_bytes() if "int8" in out else None
        train, valid = learn.dls.train.dataset, learn.dls.valid.dataset
        photos = [(p, y, False) for p, y in zip(train.items, train.labels)] + \
                 [(p, y, True) for p, y in zip(valid.items, valid.labels)]
        out.update(runtime_figures(graph, quantized, photos, spec, answer))
    return out


def _int8_copy(learn, graph: bytes, folder: Path, written: list[str]) -> dict:
    """Quantize ``graph`` on training photos, measure it against the float graph, keep it if it agrees."""
    import numpy as np

    from ..data.transforms import load_array
    from .onnx import OnnxRunner, check_input, probabilities, quantize_int8

    spec = learn.dls.preprocessing
    train, valid = learn.dls.train.dataset, learn.dls.valid.dataset

    def pixels(path):
        return spec.validation_pixels(load_array(path, min_size=spec.presize))[None]

    step = max(1, len(train.items) // 300)  # about 300 photos: every training photo of the sample
    quantized = quantize_int8(graph, (pixels(p) for p in train.items[::step]))
    f32, q8 = OnnxRunner(graph), OnnxRunner(quantized)
    agree, gap, wrong = 0, 0.0, {"float32": 0, "int8": 0}
    photos = [(p, y, False) for p, y in zip(train.items, train.labels)] + \
             [(p, y, True) for p, y in zip(valid.items, valid.labels)]
    for path, label, is_valid in photos:
        x = pixels(path)
        pa, pb = probabilities(f32.run(x)[0][0]), probabilities(q8.run(x)[0][0])
        agree += int(pa.argmax() == pb.argmax())
        gap = max(gap, float(np.abs(pa - pb).max()))
        if is_valid:
            wrong["float32"] += int(pa.argmax() != label)
            wrong["int8"] += int(pb.argmax() != label)
    check = check_input(spec.size)
    check_gap = max(float(np.abs(probabilities(u) - probabilities(v)).max())
                    for u, v in zip(f32.run(check)[:2], q8.run(check)[:2]) if u is not None and v is not None)
    figures = {"agreement": agree / len(photos), "photos": len(photos), "max_probability_gap": round(gap, 4),
               "valid_error_float32": wrong["float32"] / max(len(valid.items), 1),
               "valid_error_int8": wrong["int8"] / max(len(valid.items), 1)}
    if figures["agreement"] < INT8_AGREEMENT or wrong["int8"] > wrong["float32"]:
        return {"int8_rejected": figures}
    name, digest = _stage(folder, ".int8.onnx", lambda p: p.write_bytes(quantized))
    written.append(name)
    # the tolerance load_predictor allows against PyTorch: what was measured, with a little room
    return {"int8": {"file": name, "sha256": digest, **figures,
                     "tolerance": round(max(gap, check_gap) + 0.02, 4)}}


def _current_files(folder: Path) -> set[str]:
    """The files that ``folder/meta.json`` names now (weights and graphs)."""
    try:
        meta = json.loads(read_regular_file(folder / META, MAX_META_BYTES))
        return {meta.get("weights", WEIGHTS)} | {meta[k]["file"] for k in ("onnx", "int8") if k in meta}
    except (OSError, ValueError, AttributeError, KeyError, TypeError, RecursionError):
        return set()
