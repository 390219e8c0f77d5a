"""Live controls with bounded work: one computation per page at a time, and the newest request wins.

A slider that updates the page while it moves can send a request for every step. The page itself
sends one at a time (``trigger_mode="always_last"``), but a script, or a page on a slow link, can
send many. ``Latest.run`` keeps the work bounded on the server: while a page's computation runs,
a new request from the same page does no work, it only leaves its inputs behind (replacing any it
finds there) and returns at once with nothing to show (``SKIPPED``). When the running computation
ends, it runs again for the newest inputs left behind, if any, and answers with that: the page
ends up showing its last settings, computed once, and no request waits in line behind another.

A page is ``sessions.session_key``: the visitor's network address and the page's session id. The
server-wide bound stays the event's ``concurrency_limit``, and the front door (``guard.py``) bounds
how many events one address may have waiting.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

__all__ = ["SKIPPED", "Latest"]


class _Skipped:
    def __repr__(self) -> str:
        return "SKIPPED"


SKIPPED = _Skipped()  # what a request answers when a newer one (or the running one) will answer for it


class Latest:
    """Runs ``compute(*args)`` for one page at a time; newer requests replace the waiting ones."""

    def __init__(self, compute: Callable[..., Any]):
        self.compute = compute
        self._lock = threading.Lock()
        self._running: set[str] = set()
        self._newest: dict[str, tuple] = {}  # page -> the inputs of its newest request not yet computed

    def run(self, page: str, *args) -> Any:
        """``compute(*args)``, or ``SKIPPED`` when ``page`` has a computation running (which then
        computes these ``args`` too, unless newer ones come first, and answers with the newest)."""
        with self._lock:
            if page in self._running:
                self._newest[page] = args
                return SKIPPED
            self._running.add(page)
        try:
            while True:
                result = self.compute(*args)
                with self._lock:  # checked and released under one lock: no request is left behind unseen
                    args = self._newest.pop(page, None)
                    if args is None:
                        self._running.discard(page)
                        return result
        except BaseException:
            with self._lock:
                self._running.discard(page)
                self._newest.pop(page, None)
            raise

    def busy(self) -> int:
        """How many pages have a computation running now."""
        with self._lock:
            return len(self._running)
