"""Deleting uploads and result files after ``--delete-after`` seconds, with a sweep nobody can stop.

Gradio has a sweep of its own, but it calls ``os.remove`` on every path it recorded and catches only
``FileNotFoundError``: a payload that names a folder inside the upload folder (any visitor can
name one) made its task die at the first ``IsADirectoryError``, silently, and nothing was ever
deleted again. So the demo switches Gradio's off and runs this one instead:

* it walks the files Gradio recorded (uploads, and the result files in its cache: ``outputs.py``) and
  removes those older than ``age`` that are *regular files*, inside the upload folder; anything
  else (a folder, a link, a device, a path outside) is only forgotten, never deleted;
* then it removes folders in the upload folder that have been empty for ``age`` (a download that
  never arrived leaves one);
* each failure is caught and logged, and the next file is tried;
* the loop catches everything, and ``ensure_running()`` (called on every request, see
  ``guard.py``) starts a new thread if the old one ever died.
"""

from __future__ import annotations

import logging
import os
import stat
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path

__all__ = ["Sweeper", "sweep"]

log = logging.getLogger(__name__)


def sweep(recorded: Iterable[set], folder: Path, age: float, keep: set[str] = frozenset(),
          now: float | None = None) -> int:
    """One pass; returns how many files it deleted. ``recorded``: Gradio's sets of file paths (the
    paths it drops from them are forgotten); ``keep``: paths never to delete (Gradio's examples)."""
    now = time.time() if now is None else now
    folder = Path(folder).resolve()
    deleted = 0
    for paths in recorded:
        for path in list(paths):
            if path in keep:
                continue
            try:
                info = os.lstat(path)
                if not stat.S_ISREG(info.st_mode) or not Path(path).resolve().is_relative_to(folder):
                    paths.discard(path)  # not ours to delete: forget it
                    continue
                if now - info.st_mtime > age:
                    os.remove(path)
                    paths.discard(path)
                    deleted += 1
            except FileNotFoundError:
                paths.discard(path)
            except Exception:  # one bad entry never stops the sweep
                log.warning("could not delete %s", path, exc_info=True)
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return deleted
    for entry in entries:
        try:
            if entry.is_dir(follow_symlinks=False) and now - entry.stat(follow_symlinks=False).st_mtime > age:
                os.rmdir(entry.path)  # only an empty folder goes
        except OSError:
            continue
    return deleted


class Sweeper:
    """``sweep`` every ``interval`` seconds on a daemon thread, restarted by ``ensure_running``."""

    def __init__(self, recorded: Callable[[], Iterable[set]], folder: Path, age: float, interval: float,
                 keep: Callable[[], set[str]] = frozenset):
        self.recorded, self.folder, self.age, self.interval, self.keep = recorded, folder, age, interval, keep
        self.passes = self.deleted = self.restarts = 0
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.deleted += sweep(self.recorded(), self.folder, self.age, set(self.keep()))
                self.passes += 1
            except Exception:
                log.exception("the sweep of old uploads failed; it runs again in %.0f s", self.interval)

    def ensure_running(self) -> None:
        """Start the thread, or a new one if it died; cheap when it is alive."""
        thread = self._thread
        if thread is not None and thread.is_alive() or self._stop.is_set():
            return
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            if self._thread is not None:
                self.restarts += 1
                log.warning("the sweep of old uploads had stopped: started again")
            self._thread = threading.Thread(target=self._loop, name="petbreeds-sweeper", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
