"""The server's front door: every request is checked before Gradio sees any of it.

Gradio turns every event into a public HTTP API and keeps some of what it is sent (each session's
last inputs, the files a payload names). So this ASGI middleware stands in front of the whole app
and bounds what one visitor can make the server do:

* **bodies**: at most ``body_limit`` bytes (64 KB) on every route but the upload, answered 413
  before the body is read further; the upload has the server's file-size limit;
* **file payloads**: every file an event's data names must be a regular file inside the upload
  folder (or one of the server's example photos); a folder, a link out, a device, a URL (never
  fetched) is refused with 422 before Gradio records it, copies it or downloads anything;
* **event numbers**: ``fn_index`` must name an event (a wrong one got an HTTP 500), and an event
  fired by a click on a thumbnail (``select``) must say which one (``event_data.index``): without
  it Gradio failed inside with a traceback in the log;
* **input types**: a file input (a photo) must hold file data, not a number, a list or a string
  (``input_types.py``): Gradio refused those too, but logged a traceback for each, 422 here;
* **quotas per visitor**: uploads (count and bytes per minute) and places in Gradio's queue (events
  waiting at once, those still on their way in counted too), 429 (the handlers add their own:
  photos running at once, one training). Each is checked and counted in one step, with nothing
  awaited between, so requests sent all at once cannot all pass one check;
* **logins**: after ``login_failures`` wrong passwords in a minute from one address, that
  address waits out the minute (429 with ``Retry-After``); Gradio compares passwords in constant
  time.

Visitors are told apart by their network address, never by the ``session_hash`` a client
chooses (a script can invent as many of those as it likes), and never by an ``X-Forwarded-For``
header (``demo/__init__.py`` tells uvicorn to trust none). Behind a proxy or a share tunnel all
visitors share the proxy's address: the quotas then hold for the whole room, which is the safe
side. The handlers use the same address (``visitor_of``) for their own per-visitor limits.
"""

from __future__ import annotations

import json
import math
import os
import stat
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Limits", "Guard", "visitor_of", "file_payload_problem", "RateWindow"]

JSON_ROUTES = ("/gradio_api/queue/join", "/gradio_api/call/", "/gradio_api/run/", "/gradio_api/api/")
QUEUING_ROUTES = ("/gradio_api/queue/join", "/gradio_api/call/")  # both put an event in Gradio's queue
UPLOAD_ROUTES = ("/gradio_api/upload", "/upload")
LOGIN_ROUTES = ("/login", "/login/")


@dataclass(frozen=True)
class Limits:
    """What one visitor may send; the defaults suit a classroom of about 30."""

    body_limit: int = 64 * 1024         # bytes of any request body but an upload's
    max_file_size: int = 10 * 2**20     # bytes of one upload request
    uploads_per_minute: int = 30
    upload_bytes_per_minute: int = 60 * 2**20
    queue_places: int = 8               # events of one visitor waiting in the queue at once
    login_failures: int = 5             # wrong passwords per minute, then a wait
    files_per_upload: int = 4           # files in one upload request (the page sends one)


def visitor_of(request_or_scope) -> str:
    """A visitor's key: the client's network address (from a ``gr.Request`` or an ASGI scope)."""
    if isinstance(request_or_scope, dict):
        client = request_or_scope.get("client")
        return client[0] if client else "unknown"
    client = getattr(request_or_scope, "client", None)
    return getattr(client, "host", None) or "unknown"


class RateWindow:
    """Events (with a weight) per key in a sliding window of ``seconds``: a visitor's recent use."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic, max_keys: int = 10_000):
        self.seconds, self.clock, self.max_keys = seconds, clock, max_keys
        self._events: dict[str, deque] = defaultdict(deque)
        self._lock = threading.Lock()

    def _trim(self, key: str, now: float) -> deque:
        q = self._events[key]
        while q and now - q[0][0] > self.seconds:
            q.popleft()
        return q

    def total(self, key: str) -> tuple[int, float]:
        """(events, summed weight) of ``key`` in the window."""
        with self._lock:
            q = self._trim(key, self.clock())
            return len(q), sum(w for _, w in q)

    def add(self, key: str, weight: float = 1.0) -> None:
        with self._lock:
            self._append(key, weight)

    def admit(self, key: str, max_events: int, weight: float = 1.0, max_weight: float = math.inf) -> bool:
        """Count one event of ``key`` if the window has room for it under both bounds; say whether it did.

        The check and the count are one step under the lock, so parallel requests cannot all see
        the same free place before any of them takes it."""
        with self._lock:
            q = self._trim(key, self.clock())
            if len(q) >= max_events or sum(w for _, w in q) + weight > max_weight:
                return False
            self._append(key, weight)
            return True

    def _append(self, key: str, weight: float) -> None:
        if len(self._events) > self.max_keys:  # forget idle visitors rather than grow without end
            now = self.clock()
            for k in [k for k, q in self._events.items() if not q or now - q[-1][0] > self.seconds]:
                del self._events[k]
        self._events[key].append((self.clock(), weight))

    def wait(self, key: str) -> int:
        """Seconds until the oldest event of ``key`` leaves the window (at least 1)."""
        with self._lock:
            q = self._trim(key, self.clock())
            return max(1, math.ceil(self.seconds - (self.clock() - q[0][0]))) if q else 1

    def clear(self, key: str) -> None:
        with self._lock:
            self._events.pop(key, None)


def _is_regular_file_inside(path: str, folders: Sequence[Path], files: Sequence[Path]) -> bool:
    if not isinstance(path, str) or not path or "\x00" in path or "://" in path:
        return False
    try:
        real = Path(path).resolve(strict=True)
        mode = os.stat(real).st_mode
    except (OSError, RuntimeError, ValueError):
        return False
    if not stat.S_ISREG(mode):
        return False
    return real in files or any(real.is_relative_to(folder) and real != folder for folder in folders)


def file_payload_problem(data, folders: Sequence[Path], files: Sequence[Path], depth: int = 0) -> str | None:
    """Why the event data names a file the server must not touch, or None. A file is any dict with a
    ``path`` or a ``url`` (Gradio's file data, with or without its ``meta`` marker)."""
    if depth > 20:
        return "the data is nested too deeply"
    if isinstance(data, dict):
        if "path" in data or "url" in data:
            path = data.get("path")  # Gradio reads the path; the url beside it is where a browser finds the file
            if (isinstance(path, str) and "://" in path) or (not path and isinstance(data.get("url"), str)):
                return ("a file in this request is a URL, not a photo uploaded to this server, which never fetches "
                        "URLs: send the photo itself (gradio_client's handle_file with a local path uploads it)")
            if not _is_regular_file_inside(data.get("path"), folders, files):
                return ("a file in this request is not a photo uploaded to this server (send the photo with the "
                        "upload first; the server never reads other files or fetches URLs)")
        values = data.values()
    elif isinstance(data, list):
        values = data
    else:
        return None
    for value in values:
        problem = file_payload_problem(value, folders, files, depth + 1)
        if problem:
            return problem
    return None


class Guard:
    """The ASGI middleware described at the top of this module.

    Args:
        app: the ASGI app behind it (Gradio's).
        limits: the bounds.
        allowed: returns ``(folders, files)`` a payload may name (the upload folder; the example photos).
        n_events: returns how many events the app has (for ``fn_index``); None skips that check.
        queued: returns how many events a visitor has waiting in the queue; None skips that check.
        selects: returns whether event ``fn_index`` is fired by a ``select`` (it needs ``event_data``).
        index_of: returns the ``fn_index`` of the event an API name names (``/gradio_api/call/NAME``), or None.
        browser_only: returns whether event ``fn_index`` runs only in the browser (JavaScript, no Python
            function): Gradio logs a traceback for each call to one, so such calls stop here.
        input_problem: returns why the input values do not fit event ``fn_index``'s inputs (a number for
            a photo: ``input_types.InputTypes``), or None; called as ``(index, data, route)``, ``route``
            "queue", "simple" (``/gradio_api/call/NAME``) or "named" (``/call/v2/NAME``, data by name).
        signed_in: returns whether Gradio will let a request (an ASGI scope) in: on a server with a login,
            the checks that describe the events (their names, their inputs) answer only visitors who
            signed in; a stranger gets Gradio's own 401.
    """

    def __init__(self, app, limits: Limits = Limits(), allowed: Callable[[], tuple] | None = None,
                 n_events: Callable[[], int] | None = None, queued: Callable[[str], int] | None = None,
                 selects: Callable[[int], bool] | None = None, index_of: Callable[[str], int | None] | None = None,
                 browser_only: Callable[[int], bool] | None = None,
                 input_problem: Callable[[int, object, str], str | None] | None = None,
                 signed_in: Callable[[dict], bool] | None = None, clock: Callable[[], float] = time.monotonic):
        self.app, self.limits, self.allowed, self.n_events, self.queued = app, limits, allowed, n_events, queued
        self.selects, self.index_of, self.browser_only = selects, index_of, browser_only
        self.input_problem, self.signed_in = input_problem, signed_in
        self.uploads = RateWindow(60, clock)
        self.logins = RateWindow(60, clock)
        self._joining: dict[str, int] = defaultdict(int)  # a visitor's events between the check and the queue

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            return await self.app(scope, receive, send)
        path, who = scope["path"], visitor_of(scope)
        if path in LOGIN_ROUTES:
            return await self._login(scope, receive, send, who)
        if path in UPLOAD_ROUTES:
            return await self._upload(scope, receive, send, who)
        body = await _read_body(scope, receive, self.limits.body_limit)
        if body is None:
            return await _refuse(send, 413, f"This request is larger than the {self.limits.body_limit // 1024} KB "
                                            "this server takes (photos go through the upload).")
        if path.startswith(JSON_ROUTES):
            problem = self._event_problem(body, path, self.signed_in is None or self.signed_in(scope))
            if problem:
                return await _refuse(send, 422, problem)
            if path.startswith(QUEUING_ROUTES) and self.queued is not None:
                # Requests still on their way into the queue count too, checked and counted with no await
                # between: else many sent at once all pass before the first one is in the queue.
                if self.queued(who) + self._joining[who] >= self.limits.queue_places:
                    return await _refuse(send, 429, f"You already have {self.limits.queue_places} requests waiting:"
                                                    " wait for their answers, then try again.", 2)
                self._joining[who] += 1
                try:
                    return await self.app(scope, _replay(body), send)
                finally:
                    self._joining[who] -= 1
                    if not self._joining[who]:
                        del self._joining[who]
        return await self.app(scope, _replay(body), send)

    def _event_problem(self, body: bytes, path: str = "/gradio_api/queue/join", inside: bool = True) -> str | None:
        try:
            payload = json.loads(body or b"{}")
        except (ValueError, RecursionError):
            return "This request is not valid JSON."
        if not isinstance(payload, dict):
            return "This request must be a JSON object."
        named = path.rstrip("/").rsplit("/", 1)[-1] if path.startswith(JSON_ROUTES[1:]) else None
        index = None
        if named is not None and self.index_of is not None and "fn_index" not in payload:
            index = self.index_of(named)  # /call/NAME, /call/v2/NAME, /run/NAME: the event by its API name
            if index is None and inside:  # Gradio answered 500, with a traceback in the log
                return f"This server has no event named {named[:40]!r} (the API page lists them)."
            if index is not None and self.selects is not None and self.selects(index):
                return "This event is a click on a thumbnail: call it through the queue with event_data."
        if "fn_index" in payload and self.n_events is not None:
            index = payload["fn_index"]
            if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < self.n_events():
                return f"fn_index must name one of this app's events (0 to {self.n_events() - 1})."
            if self.browser_only is not None and self.browser_only(index):
                return "This event runs in the browser only: there is nothing on the server to call."
            event_data = payload.get("event_data")
            if self.selects is not None and self.selects(index) and not (
                    isinstance(event_data, dict) and "index" in event_data):  # its value: the handler's to judge
                return "This event is a click on a thumbnail: event_data must say which one ({\"index\": n})."
        if self.allowed is not None:
            folders, files = self.allowed()
            try:  # the whole payload: /call/v2/ names its inputs instead of sending a "data" list
                problem = file_payload_problem(payload, folders, files)
            except RecursionError:
                problem = "the data is nested too deeply"
            if problem:
                return problem
        if index is not None and self.input_problem is not None and inside:  # the files are ours: now their types
            route = "named" if path.startswith("/gradio_api/call/v2/") else \
                "simple" if path.startswith("/gradio_api/call/") else "queue"
            return self.input_problem(index, payload if route == "named" else payload.get("data"), route)
        return None

    async def _upload(self, scope, receive, send, who):
        length = _content_length(scope)
        if length is None:
            return await _refuse(send, 411, "An upload must say its size (Content-Length).")
        if length > self.limits.max_file_size + 64 * 1024:  # the file plus its multipart wrapping
            return await _refuse(send, 413, f"This upload is larger than the {self.limits.max_file_size / 2**20:.0f} "
                                            "MB this server takes: upload a smaller photo.")
        if not self.uploads.admit(who, self.limits.uploads_per_minute, length, self.limits.upload_bytes_per_minute):
            return await _refuse(send, 429, "Too many uploads from your address in the last minute: wait a "
                                            "little, then upload again.", self.uploads.wait(who))
        return await self.app(scope, _capped(receive, length), _checked_upload(send, self.limits.files_per_upload))

    async def _login(self, scope, receive, send, who):
        # Counted in the same step as it is checked, before anything is awaited: reading the body used
        # to come between the check and the count, and twenty logins sent at once all passed the check.
        # A blocked address is refused before its body is read; a login too large to read still counts.
        if not self.logins.admit(who, self.limits.login_failures):
            wait = self.logins.wait(who)
            return await _refuse(send, 429, f"Too many wrong logins from your address: wait {wait} s, then try "
                                            "again.", wait)
        body = await _read_body(scope, receive, self.limits.body_limit)
        if body is None:
            return await _refuse(send, 413, "This login is too large.")
        status = {}

        async def watch(message):
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        await self.app(scope, _replay(body), watch)
        if status.get("code") == 200:
            self.logins.clear(who)


def _content_length(scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _read_body(scope, receive, limit: int) -> bytes | None:
    """The whole body, or None once it is over ``limit`` (the rest is not read)."""
    length = _content_length(scope)
    if length is not None and length > limit:
        return None
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes):
    sent = False

    async def receive():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return {"type": "http.disconnect"}

    return receive


def _capped(receive, limit: int):
    """The body as it comes, but never more than the ``limit`` bytes the client declared."""
    seen = 0

    async def capped():
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            body = message.get("body", b"")
            if seen + len(body) > limit:
                message = {"type": "http.request", "body": body[: max(limit - seen, 0)], "more_body": False}
            seen += len(message.get("body", b""))
        return message

    return capped


def _checked_upload(send, max_files: int):
    """An upload's answer, held back until it is whole: more than ``max_files`` files are deleted again
    and refused (422); otherwise the files are touched (Gradio reuses an earlier upload of the same
    photo, and the sweep must count its age from now) and the answer goes out as it was."""
    held: list[dict] = []

    async def checking(message):
        held.append(message)
        if message["type"] != "http.response.body" or message.get("more_body", False):
            return
        try:
            paths = json.loads(b"".join(m.get("body", b"") for m in held if m["type"] == "http.response.body"))
        except ValueError:
            paths = None
        if isinstance(paths, list) and all(isinstance(p, str) for p in paths):
            for path in paths:
                try:
                    os.remove(path) if len(paths) > max_files else os.utime(path)
                except OSError:
                    pass
            if len(paths) > max_files:
                return await _refuse(send, 422, f"Send one photo per upload (at most {max_files} files).")
        for m in held:
            await send(m)

    return checking


async def _refuse(send, status: int, detail: str, retry_after: int | None = None) -> None:
    body = json.dumps({"detail": detail}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if retry_after is not None:
        headers.append((b"retry-after", str(retry_after).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
