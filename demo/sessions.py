"""What the server keeps per visitor, bounded: the models visitors trained, and who may train now.

``SessionModels`` holds the model each browser session trained in tab 4, so that its visitor (and
no one else) can use it in tab 1. It keeps at most ``capacity`` of them (the least recently used
goes first) and drops any unused for ``ttl`` seconds, so a classroom that trains all afternoon
does not fill the server's memory.

``TrainingSlots`` is the admission desk for training, the one expensive thing a visitor can start:
at most ``running`` trainings run and ``waiting`` wait, server-wide, and a visitor (a network
address: session ids are the client's to invent) has at most one of them. Everyone else is told at
once that training is busy and for about how long, instead of
taking a place in the queue that photos need (see ``app.py``).
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

__all__ = ["SessionModels", "TrainingSlots", "Ticket", "Refused", "InFlight", "visitor_key", "session_key",
           "signed_in"]


def visitor_key(request) -> str:
    """Who a request comes from, for quotas: the client's network address (see ``guard.py``), never
    the session id, which a client can invent."""
    from .guard import visitor_of

    return visitor_of(request)


def session_key(request) -> str:
    """One browser session of one visitor: the address and the session id together, so that a
    session id copied from someone else, sent from another address, finds nothing."""
    return f"{visitor_key(request)} {getattr(request, 'session_hash', None) or ''}"


def signed_in(server_app, scope) -> bool:
    """Whether Gradio lets this request (an ASGI scope) in: no login on the server, or the cookie of a
    visitor who signed in. (A login by a custom ``auth_dependency`` is not judged here: False.)"""
    if server_app is None:
        return False
    if getattr(server_app, "auth", None) is None and getattr(server_app, "auth_dependency", None) is None:
        return True
    if getattr(server_app, "auth_dependency", None) is not None:
        return False
    from http.cookies import CookieError, SimpleCookie

    cookies = SimpleCookie()
    for name, value in scope.get("headers", []):
        if name == b"cookie":
            try:
                cookies.load(value.decode("latin-1"))
            except CookieError:
                return False
    cookie_id = server_app.cookie_id
    token = next((cookies[k].value for k in (f"access-token-{cookie_id}", f"access-token-unsecure-{cookie_id}")
                  if k in cookies), None)
    return token is not None and server_app.tokens.get(token) is not None


class InFlight:
    """How many requests each visitor has running; ``enter`` refuses one over ``limit`` when ``strict``."""

    def __init__(self, limit: int = 2):
        self.limit = limit
        self._counts: dict[str, int] = {}
        self._lock = threading.Lock()

    def enter(self, key: str, strict: bool = True) -> bool:
        """Count one more for ``key``; False (and nothing counted) if that is over the limit and ``strict``."""
        with self._lock:
            if strict and self._counts.get(key, 0) >= self.limit:
                return False
            self._counts[key] = self._counts.get(key, 0) + 1
            return True

    def leave(self, key: str) -> None:
        with self._lock:
            left = self._counts.get(key, 1) - 1
            if left > 0:
                self._counts[key] = left
            else:
                self._counts.pop(key, None)


class SessionModels:
    """session id -> the model trained in that session; an LRU of ``capacity`` entries with a TTL."""

    def __init__(self, capacity: int = 8, ttl: float = 3600.0, clock: Callable[[], float] = time.monotonic):
        if capacity < 1 or ttl <= 0:
            raise ValueError(f"SessionModels needs capacity >= 1 and ttl > 0, got {capacity} and {ttl}")
        self.capacity, self.ttl, self.clock = capacity, ttl, clock
        self._models: OrderedDict[str, tuple[float, object]] = OrderedDict()
        self._lock = threading.Lock()

    def _expire(self, now: float) -> None:
        for key in [k for k, (used, _) in self._models.items() if now - used > self.ttl]:
            del self._models[key]

    def put(self, session: str, model) -> None:
        with self._lock:
            now = self.clock()
            self._expire(now)
            self._models.pop(session, None)
            self._models[session] = (now, model)
            while len(self._models) > self.capacity:
                self._models.popitem(last=False)  # the least recently used

    def get(self, session: str | None):
        """The session's model (and it counts as used now), or None."""
        if not session:
            return None
        with self._lock:
            now = self.clock()
            self._expire(now)
            entry = self._models.pop(session, None)
            if entry is None:
                return None
            self._models[session] = (now, entry[1])
            return entry[1]

    def __len__(self) -> int:
        with self._lock:
            self._expire(self.clock())
            return len(self._models)


class Refused(Exception):
    """Training was not admitted; ``str(err)`` says why, for the visitor."""


class TrainingSlots:
    """At most ``running`` trainings at once and ``waiting`` more in line, one per session."""

    def __init__(self, running: int = 1, waiting: int = 1, expected_s: float = 60.0,
                 clock: Callable[[], float] = time.monotonic):
        if running < 1 or waiting < 0:
            raise ValueError(f"TrainingSlots needs running >= 1 and waiting >= 0, got {running} and {waiting}")
        self.running, self.waiting, self.clock = running, waiting, clock
        self.expected_s = expected_s  # how long a training takes: a guess, then the last one's time
        self._lock = threading.Lock()
        self._run = threading.Semaphore(running)
        self._admitted: dict[str, float | None] = {}  # session -> when it started running (None: waiting)

    def _minutes_left(self, now: float) -> int:
        started = sorted(t for t in self._admitted.values() if t is not None)
        ahead = sum(max(self.expected_s - (now - t), 0) for t in started)
        ahead += self.expected_s * sum(t is None for t in self._admitted.values())
        return max(1, math.ceil(ahead / max(self.running, 1) / 60))

    def enter(self, session: str) -> Ticket:
        """A place in line for ``session``; raises ``Refused`` when the session already has one, or
        every running and waiting place is taken. Call ``start`` on the ticket, and ``release`` at the end."""
        with self._lock:
            if session in self._admitted:
                state = "is running" if self._admitted[session] is not None else "is waiting to start"
                raise Refused(f"You already have a training that {state} (one per visitor): it goes on, and its "
                              "results show where you started it when it is done. Start another one after it.")
            if len(self._admitted) >= self.running + self.waiting:
                raise Refused(f"Training is busy: {self.running} running and {self.waiting} waiting, the most this "
                              f"server allows. Try again in about {self._minutes_left(self.clock())} min.")
            self._admitted[session] = None
        return Ticket(self, session)

    def minutes_left(self) -> int:
        """About how many minutes until a place frees up."""
        with self._lock:
            return self._minutes_left(self.clock())

    @property
    def busy(self) -> int:
        """How many trainings are running or waiting now."""
        with self._lock:
            return len(self._admitted)


class Ticket:
    """One admitted training: ``start()`` (waits for a running place), then ``release()``, always."""

    def __init__(self, slots: TrainingSlots, session: str):
        self.slots, self.session, self.started, self.released = slots, session, None, False

    def start(self, block: bool = True) -> bool:
        """Take a running place; without ``block``, only if one is free now. True once running."""
        if self.started is None and self.slots._run.acquire(blocking=block):
            with self.slots._lock:
                self.started = self.slots._admitted[self.session] = self.slots.clock()
        return self.started is not None

    def release(self) -> None:
        if self.released:
            return
        self.released = True
        with self.slots._lock:
            if self.started is not None:
                self.slots.expected_s = max(self.slots.clock() - self.started, 1.0)
            self.slots._admitted.pop(self.session, None)
        if self.started is not None:
            self.slots._run.release()
