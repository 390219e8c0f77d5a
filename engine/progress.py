"""Progress bars that suit where the output goes: a live bar in a terminal or a notebook, a few
plain lines in a log file.

tqdm redraws its bar with a carriage return many times a second. In a terminal that is one line
that updates; in a log file (CI, ``nohup``, a redirected run) it is thousands of lines glued
together with ``\\r``. So ``progress_bar`` returns a tqdm bar (with its ETA) when someone watches
the output live, and otherwise a ``LineProgress`` that prints complete lines: nothing for a step
that is over within a few seconds, else about one line every tenth of the way (and at least one a
minute) and one at the end, each with the rate and the time left.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

__all__ = ["progress_bar", "LineProgress", "is_interactive"]


def _in_jupyter() -> bool:
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None and hasattr(ipython, "get_ipython") else None
    return type(shell).__name__ == "ZMQInteractiveShell"  # a notebook's kernel, not a terminal IPython


def is_interactive(stream: TextIO | None = None) -> bool:
    """True in a terminal or a Jupyter notebook: where a redrawn bar is seen as one bar."""
    if _in_jupyter():
        return True
    stream = stream if stream is not None else sys.stderr
    return bool(getattr(stream, "isatty", lambda: False)())


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 60}:{seconds % 60:02d}" if seconds >= 60 else f"{seconds} s"


class LineProgress:
    """A tqdm-like counter that prints a few complete lines instead of redrawing a bar."""

    def __init__(self, total: int | None, desc: str = "", unit: str = "it", stream: TextIO | None = None,
                 steps: int = 10, interval: float = 60.0, quiet_for: float = 5.0, disable: bool = False):
        self.total, self.desc, self.unit, self.disable = total, desc, unit, disable
        self.stream, self.steps, self.interval, self.quiet_for = stream, steps, interval, quiet_for
        self.n, self._start = 0, time.perf_counter()
        self._last_print, self._next_mark, self._closed, self.printed = self._start, 1, False, 0

    def _print(self, what: str) -> None:
        if self.disable:
            return
        stream = self.stream if self.stream is not None else sys.stderr
        print(f"{self.desc}: {what}", file=stream, flush=True)
        self.printed += 1

    def _line(self) -> str:
        elapsed = time.perf_counter() - self._start
        rate = self.n / elapsed if elapsed > 0 else 0.0
        done = f"{self.n}/{self.total} {self.unit}" if self.total else f"{self.n} {self.unit}"
        pct = f" ({self.n / self.total:.0%})" if self.total else ""
        left = ""
        if self.total and rate > 0 and self.n < self.total:
            left = f", about {_duration((self.total - self.n) / rate)} left"
        return f"{done}{pct} in {_duration(elapsed)}, {rate:.1f} {self.unit}/s{left}"

    def update(self, n: int = 1) -> None:
        self.n += n
        now = time.perf_counter()
        if now - self._start < self.quiet_for:  # short steps print nothing at all
            return
        due = self.total and self.n >= self._next_mark * self.total / self.steps
        if due or now - self._last_print >= self.interval or not self.printed:
            if self.total:
                while self._next_mark * self.total / self.steps <= self.n:
                    self._next_mark += 1
            if not self.total or self.n < self.total:  # the end gets its own line in close()
                self._print(self._line())
            self._last_print = now

    def set_postfix(self, **kwargs) -> None:  # tqdm's API: nothing to redraw here
        pass

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            if self.printed or time.perf_counter() - self._start >= self.quiet_for:
                self._print(f"done, {self._line()}")

    def __enter__(self) -> LineProgress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def progress_bar(total: int | None, desc: str, unit: str = "it", disable: bool = False, leave: bool = True,
                 **tqdm_kwargs):
    """A progress bar with an ETA: tqdm where it is watched live, ``LineProgress`` in a log."""
    if disable:
        return LineProgress(total, desc, unit, disable=True)
    if is_interactive():
        from tqdm.auto import tqdm

        return tqdm(total=total, desc=desc, unit=unit, leave=leave, dynamic_ncols=True, **tqdm_kwargs)
    return LineProgress(total, desc, unit)
