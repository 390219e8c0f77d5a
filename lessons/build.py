"""Run the lesson notebooks top to bottom and render them to HTML, so they can be read without Jupyter.

    python -m lessons build             # every notebook -> lessons/_build/<name>.html (+ index.html)
    python -m lessons build 03 05       # only the notebooks whose names start with 03 or 05
    python -m lessons build --dir DEST  # the copies in DEST (python -m lessons copy DEST) instead
    python -m lessons copy DEST         # copy the notebooks into DEST, to work in (see workspace.py)

From a clone the pages go to ``lessons/_build/``; from an installed package (whose ``lessons/``
sits in site-packages) to ``lessons_build/`` in the current folder, unless ``--out`` says otherwise.

Each notebook runs in a fresh Jupyter kernel, ``python3``: jupyter_client starts it with the
interpreter that runs this module (``sys.executable``), so the kernel sees the same packages. The
working directory is ``lessons/``, exactly as under ``jupyter lab lessons/``; the notebooks find the
repository root themselves (for ``import engine`` and ``demo/model``) and the photos through
``engine.data.locate.pets_sample()``: ``PETS_SAMPLE`` when it is set, else the sample in the cache,
picked out of the full download when that is all there is (``python -m engine.datasets sample``).

The committed notebooks are never written to: they stay without outputs, and the executed copies go
to ``lessons/_build/`` (ignored by git). The tests (``tests/test_lessons.py``) call ``execute``.
"""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path

from .workspace import notebook_files

__all__ = ["LESSONS_DIR", "BUILD_DIR", "KERNEL_NAME", "notebook_paths", "check_kernel", "execute", "render_html",
           "build", "main"]

LESSONS_DIR = Path(__file__).resolve().parent
IN_A_CLONE = (LESSONS_DIR.parent / "pyproject.toml").is_file() and (LESSONS_DIR.parent / "engine").is_dir()
BUILD_DIR = LESSONS_DIR / "_build" if IN_A_CLONE else Path("lessons_build")
KERNEL_NAME = "python3"
CELL_TIMEOUT = 300  # seconds per cell


def notebook_paths(selected: list[str] | tuple[str, ...] = (), folder: str | Path = LESSONS_DIR) -> list[Path]:
    """The lesson notebooks in ``folder`` (default: the package's own) in reading order (``00_...``,
    ``01_...``, ``03_...`` then its second part ``03b_...``); ``selected`` keeps the names that start with one
    of its strings (``"03"``: both parts of lesson 03; ``"03b"``: the second only)."""
    paths = notebook_files(folder)
    if not paths:
        raise ValueError(f"{folder} holds no lesson notebooks (00_start_here.ipynb ...): "
                         f"python -m lessons copy {folder} puts them there")
    if selected:
        paths = [p for p in paths if any(p.name.startswith(s) for s in selected)]
        if not paths:
            names = ", ".join(p.stem for p in notebook_paths(folder=folder))
            raise ValueError(f"no lesson notebook starts with {' or '.join(selected)}; the notebooks are: {names}")
    return paths


def check_kernel(kernel_name: str = KERNEL_NAME) -> None:
    """Fail with a fix when the kernel would not run this interpreter (a kernelspec from elsewhere)."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        spec = KernelSpecManager().get_kernel_spec(kernel_name)
    except NoSuchKernel:
        raise RuntimeError(f"no Jupyter kernel named {kernel_name!r}: install ipykernel in this environment "
                           f"({sys.executable} -m pip install ipykernel)") from None
    python = spec.argv[0]
    # jupyter_client replaces a bare "python"/"python3" with sys.executable when it starts the kernel.
    if python not in ("python", "python3", f"python{sys.version_info[0]}.{sys.version_info[1]}") \
            and Path(python).resolve() != Path(sys.executable).resolve():
        raise RuntimeError(f"the Jupyter kernel {kernel_name!r} ({spec.resource_dir}) runs {python}, not this "
                           f"interpreter ({sys.executable}); register this one with: "
                           f"{sys.executable} -m ipykernel install --sys-prefix")


def execute(path: str | Path, timeout: int = CELL_TIMEOUT, kernel_name: str = KERNEL_NAME, self_check: bool = True):
    """Run every cell of the notebook at ``path`` in a fresh kernel; return the executed notebook.

    With ``self_check`` the kernel runs with ``LESSONS_SELF_CHECK=1``: each exercise whose answer
    cell is still ``answer = ...`` grades its solution (which must pass) and a wrong answer (which
    must fail) instead (see ``lessons/exercises``).

    Raises ``nbclient.exceptions.CellExecutionError`` (with the cell's traceback) at the first cell
    that fails, a failed ``assert`` included; the notebook, with the outputs so far, is then in the
    exception's ``notebook`` attribute.
    """
    import os

    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    def keep_pager_output(cell, cell_index, execute_reply):
        # Jupyter shows `function??` in a pager beside the notebook, not as an output of the cell;
        # keep it as an output so that the HTML pages show the source too.
        for payload in execute_reply.get("content", {}).get("payload", []):
            if payload.get("source") == "page" and payload.get("data"):
                cell.outputs.append(nbformat.v4.new_output("display_data", data=payload["data"]))

    path = Path(path)
    nb = nbformat.read(path, as_version=4)
    def cell_timeout(cell):  # a cell can ask for longer: notebook 08's training at full scale on a GPU
        return cell.metadata.get("petbreeds", {}).get("timeout", timeout)

    client = NotebookClient(nb, timeout=timeout, timeout_func=cell_timeout, kernel_name=kernel_name,
                            on_cell_executed=keep_pager_output, resources={"metadata": {"path": str(path.parent)}})
    from .exercises import SELF_CHECK

    env = {**os.environ, SELF_CHECK: "1"} if self_check else {k: v for k, v in os.environ.items() if k != SELF_CHECK}
    try:
        client.execute(env=env)  # the kernel's environment; this process's stays as it is
    except CellExecutionError as err:
        err.notebook = nb
        raise
    return nb


def _html_links(nb):
    """Links between notebooks point at the rendered pages: ``(03_x.ipynb`` -> ``(03_x.html`` (in place)."""
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            cell.source = re.sub(r"\]\((\d\d[a-z]?_[\w-]+)\.ipynb", r"](\1.html", cell.source)
    return nb


def render_html(nb, dest: str | Path) -> Path:
    """Write an executed notebook as one self-contained HTML page (plots embedded)."""
    import copy

    from nbconvert import HTMLExporter

    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    body, _ = HTMLExporter(template_name="lab").from_notebook_node(_html_links(copy.deepcopy(nb)))
    dest.write_text(body, encoding="utf-8")
    return dest


def _write_index(pages: list[Path], out_dir: Path) -> Path:
    items = "\n".join(f'<li><a href="{p.name}">{p.stem}</a></li>' for p in pages)  # the names carry the numbers
    index = out_dir / "index.html"
    index.write_text(f"<!doctype html><meta charset=utf-8><title>Pet breeds: the lessons</title>\n"
                     f"<h1>Pet breeds: the lessons</h1>\n<ul>\n{items}\n</ul>\n", encoding="utf-8")
    return index


def build(selected: list[str] | tuple[str, ...] = (), out_dir: str | Path = BUILD_DIR,
          timeout: int = CELL_TIMEOUT, show=print, folder: str | Path = LESSONS_DIR) -> list[Path]:
    """Execute the (selected) notebooks and render each to ``out_dir/<name>.html``; return the pages.

    A notebook that fails is still rendered, up to and including the failing cell, and the
    ``CellExecutionError`` is raised after its page is written.
    """
    from engine.data.locate import pets_sample

    # Before any kernel starts: a clear FileNotFoundError when there are no photos, and from a full
    # download the sample is picked out once here, not by eight notebooks at the same time.
    photos = pets_sample(show=show)
    check_kernel()
    out_dir = Path(out_dir)
    paths = notebook_paths(selected, folder)
    show(f"Running {len(paths)} notebook(s) on the photos in {photos}")
    pages, start = [], time.perf_counter()
    for path in paths:
        t0 = time.perf_counter()
        dest = out_dir / f"{path.stem}.html"
        try:
            nb = execute(path, timeout=timeout)
        except Exception as err:
            if hasattr(err, "notebook"):
                render_html(err.notebook, dest)
                show(f"  {path.name}: FAILED after {time.perf_counter() - t0:.0f} s; what ran is in {dest}")
            raise
        pages.append(render_html(nb, dest))
        show(f"  {path.name}: {time.perf_counter() - t0:.0f} s -> {dest}")
    first = _write_index(pages, out_dir) if not selected else pages[0]
    show(f"Done in {time.perf_counter() - start:.0f} s. Open {first} in a browser.")
    return pages


def main(argv: list[str] | None = None) -> int:
    """``python -m lessons build [NAME ...]`` or ``python -m lessons copy DEST``; returns the exit code."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m lessons", description="Run the lesson notebooks, or copy "
                                     "them into a folder of your own.")
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help=f"execute the notebooks and render them to HTML in {BUILD_DIR}/")
    b.add_argument("names", nargs="*", help="only the notebooks whose names start with these (e.g. 03)")
    b.add_argument("--dir", default=str(LESSONS_DIR), help="the folder of notebooks to run (default: the "
                   "package's own; give your copy's folder to run your copies)")
    b.add_argument("--out", default=str(BUILD_DIR), help="where the HTML goes (default: %(default)s)")
    b.add_argument("--timeout", type=int, default=CELL_TIMEOUT, help="seconds per cell (default: %(default)s)")
    c = sub.add_parser("copy", help="copy the notebooks into DEST to work in; notebooks you have changed "
                       "there are kept unless --force")
    c.add_argument("dest", help="the folder to copy them into (created if needed)")
    c.add_argument("--force", action="store_true", help="also replace notebooks you have changed")
    c.add_argument("--source", default="", help="fill in SOURCE (where a hosted notebook installs petbreeds "
                   "from: your copy's git URL or a wheel) in every notebook")
    args = parser.parse_args(argv)
    if args.command == "copy":
        from .workspace import copy_lessons

        try:
            report = copy_lessons(args.dest, force=args.force, source=args.source)
        except (OSError, ValueError) as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:  # each copy is whole or absent; the next copy completes the rest
            print("\ninterrupted: run the same command again to copy the rest", file=sys.stderr)
            return 130
        print("\n".join(report.lines()))
        return 0

    from nbclient.exceptions import CellExecutionError

    try:
        build(args.names, args.out, args.timeout, folder=args.dir)
    except (FileNotFoundError, ValueError, RuntimeError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except CellExecutionError as err:  # the page with the failing cell and its traceback is written
        print(f"error: a cell failed with {err.ename}: {err.evalue}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # the kernel is shut down by nbclient on the way out; the notebooks are untouched
        print("\ninterrupted: the pages written so far are kept", file=sys.stderr)
        return 130
    return 0
