"""Compiled inference: a predictor's body turned into machine code for this CPU, built in a child process.

A trained body does the same arithmetic for every photo, so it can be compiled ahead of time.
``torch.export`` captures it as a graph, and AOTInductor, with *freezing* (the weights become
constants), writes a shared library where each convolution is fused with the activation after
it and the dynamic "same" padding is gone: about twice as fast as running the layers one by one
on a CPU. The result is a ``.pt2`` package kept in a cache, keyed by the weights, the torch
version and the CPU's instruction set, so it is built once per machine.

Why a child process: compiling traces Python code, and tracing temporarily patches
``torch.nn.Module`` for the whole process, which can break a prediction running in another
thread at the same moment (a web server keeps answering while it compiles). The child does the
tracing; the parent only loads the finished library.

    python -m engine.serving.compile WORK_DIR OUT.pt2     # what the child runs (WORK_DIR from ``compile_body``)
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

__all__ = ["COMPILE_VERSION", "compile_body", "compiled_cache_dir", "cache_key", "example_input", "build", "main"]

COMPILE_VERSION = 1  # bump when the way the package is built changes


def compiled_cache_dir() -> Path:
    """Where compiled packages are kept: ``<petbreeds cache>/compiled`` (see ``default_cache_dir``)."""
    from ..datasets import default_cache_dir

    return default_cache_dir() / "compiled"


def _cpu_features() -> str:
    """The CPU's model and instruction-set flags (Linux), else what ``platform`` knows: compiled code
    may use any instruction this CPU has, so a cache shared with another machine must not match."""
    import platform

    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        keep = [line for line in lines if line.split(":")[0].strip() in ("model name", "flags", "Features")]
        return "\n".join(dict.fromkeys(keep))  # one copy per distinct line, not one per core
    except OSError:
        return f"{platform.machine()} {platform.processor()}"


def _machine() -> dict:
    """What the compiled code depends on besides the weights."""
    return {"torch": torch.__version__, "python": sys.version.split()[0],
            "cpu": hashlib.sha256(_cpu_features().encode()).hexdigest()[:16]}


def cache_key(weights: bytes, spec: dict) -> str:
    """A name for the package: a hash of the weights, the spec (architecture, shape, dtype) and the machine."""
    h = hashlib.sha256(weights)
    h.update(json.dumps({"spec": spec, "machine": _machine(), "version": COMPILE_VERSION}, sort_keys=True).encode())
    return h.hexdigest()[:32]


def _body_like(spec: dict) -> nn.Module:
    """An untrained body with the structure of the prepared one (BatchNorm folded, dtype, layout)."""
    from ..models import create_model
    from .fold import fold_batchnorm

    body = create_model(spec["arch"], n_classes=2, pretrained=False).body.eval()
    fold_batchnorm(body)
    return body.to(dtype=getattr(torch, spec["dtype"]), memory_format=torch.channels_last)


def example_input(spec: dict) -> torch.Tensor:
    """One prepared photo as ``Predictor.predict_details`` makes it (normalized, the body's dtype,
    channels-last), with fixed random pixels: the input the body is compiled for and checked on."""
    with torch.inference_mode():
        x = torch.rand(1, 3, spec["size"], spec["size"], generator=torch.Generator().manual_seed(0))
        return ((x - 0.5) / 0.5).to(getattr(torch, spec["dtype"])).contiguous(memory_format=torch.channels_last)


def build(work_dir: str | Path, out: str | Path) -> Path:
    """In the child: rebuild the body from ``work_dir`` (spec.json + body.safetensors), export it and
    compile it with freezing into the package ``out`` (written atomically)."""
    from safetensors.torch import load_file
    from torch._inductor import config as inductor_config

    work_dir, out = Path(work_dir), Path(out)
    spec = json.loads((work_dir / "spec.json").read_text())
    body = _body_like(spec)
    body.load_state_dict(load_file(str(work_dir / "body.safetensors")))
    x = example_input(spec)
    tmp = out.with_name(f".{out.stem}.{os.getpid()}.tmp.pt2")  # the packager wants .pt2
    with torch.inference_mode(), inductor_config.patch(freezing=True):
        program = torch.export.export(body, (x,))
        torch._inductor.aoti_compile_and_package(program, package_path=str(tmp))
    os.replace(tmp, out)
    return out


def compile_body(body: nn.Module, spec: dict, cache_dir: str | Path | None = None,
                 timeout: float = 900) -> tuple[object, dict]:
    """The compiled ``body`` (a callable on one prepared photo) and facts about it.

    ``spec``: ``arch``, ``size`` and ``dtype`` (e.g. "bfloat16") of the prepared body, whose
    BatchNorms are folded. Builds the package in a child process unless the cache has it.
    Raises ``RuntimeError`` with the child's last output when building fails (e.g. no C++ compiler).
    Returns ``(runner, {"path", "from_cache", "seconds"})``.
    """
    from safetensors.torch import save

    start = time.perf_counter()
    cache = Path(cache_dir) if cache_dir is not None else compiled_cache_dir()
    weights = save({k: v.detach().cpu().contiguous() for k, v in body.state_dict().items()})
    path = cache / f"{spec['arch']}-{cache_key(weights, spec)}.pt2"
    if path.is_file():
        try:
            return torch._inductor.aoti_load_package(str(path)), {
                "path": path, "from_cache": True, "seconds": time.perf_counter() - start}
        except Exception:  # a damaged or foreign file: build it again
            path.unlink(missing_ok=True)
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="petbreeds-compile-") as work:
        (Path(work) / "spec.json").write_text(json.dumps(spec))
        (Path(work) / "body.safetensors").write_bytes(weights)
        env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}
        try:
            done = subprocess.run([sys.executable, "-m", "engine.serving.compile", work, str(path)], env=env,
                                  cwd=Path(__file__).resolve().parents[1], capture_output=True, text=True,
                                  timeout=timeout)
        except subprocess.TimeoutExpired as err:
            raise RuntimeError(f"compiling took longer than {timeout:.0f} s and was stopped") from err
    if done.returncode != 0 or not path.is_file():
        last = [line for line in (done.stderr or done.stdout).splitlines() if line.strip()][-3:]
        raise RuntimeError(f"the compiler process failed (exit code {done.returncode}): " + " | ".join(last)[-600:])
    return torch._inductor.aoti_load_package(str(path)), {
        "path": path, "from_cache": False, "seconds": time.perf_counter() - start}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m engine.serving.compile WORK_DIR OUT.pt2 (run by engine.serving.compile.compile_body)", file=sys.stderr)
        return 2
    build(*args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
