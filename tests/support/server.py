"""Run the demo in a child process, as a user starts it, for the tests and the benchmark (``bench/demo.py``).

    with DemoServer() as server:
        Client(server.url).predict(...)

The child runs the real command, ``python -m demo --port N`` on a free loopback port, so what the
tests check is what the README tells people to start. ``__enter__`` waits until the page answers
(and fails with the child's output if it dies first); ``__exit__`` stops it.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

__all__ = ["free_port", "DemoServer", "RawClient"]

ROOT = Path(__file__).resolve().parents[2]  # the checkout, two folders above tests/support/


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class DemoServer:
    """``python -m demo`` in a child process on a free port; ``url`` once started.

    Args:
        args: more command-line options for the demo (e.g. ``["--max-file-size", "1mb"]``).
        start_timeout: seconds to wait for the first answer.
        env: environment variables to set (a value of None removes the variable) for the child.
        program: what Python runs, before ``--port N`` and ``args`` (default ``["-m", "demo"]``;
            ``bench/demo.py`` also runs ``bench/noop_app.py`` this way).
    """

    def __init__(self, args: list[str] = (), start_timeout: float = 120.0, env: dict[str, str | None] | None = None,
                 program: list[str] = ("-m", "demo")):
        self.args, self.start_timeout, self.env = list(args), start_timeout, dict(env or {})
        self.program = list(program)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> DemoServer:
        self._log = tempfile.TemporaryFile()
        env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "PYTHONUNBUFFERED": "1", **self.env}
        env = {k: v for k, v in env.items() if v is not None}
        self.process = subprocess.Popen([sys.executable, *self.program, "--port", str(self.port), *self.args],
                                        cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the demo exited with code {self.process.returncode} before answering:\n"
                                   f"{self.output()}")
            try:
                with urllib.request.urlopen(self.url, timeout=2) as response:
                    if response.status == 200:
                        return self
            except OSError:  # not listening yet
                time.sleep(0.2)
        self.__exit__(None, None, None)
        raise TimeoutError(f"the demo did not answer on {self.url} within {self.start_timeout:.0f} s:\n{self.output()}")

    @property
    def pid(self) -> int:
        return self.process.pid

    def wait_for_output(self, *texts: str, timeout: float = 300.0) -> str:
        """Wait until the child has printed one of ``texts``; return that text (TimeoutError if not)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._log.seek(0)
            printed = self._log.read().decode(errors="replace")
            for text in texts:
                if text in printed:
                    return text
            time.sleep(0.5)
        raise TimeoutError(f"the demo did not print any of {texts} within {timeout:.0f} s:\n{self.output()}")

    def output(self, last: int | None = 4000) -> str:
        """What the child printed so far (the ``last`` characters; None: all of it)."""
        self._log.seek(0)
        text = self._log.read().decode(errors="replace")
        return text if last is None else text[-last:]

    def __exit__(self, *exc) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()


class RawClient:
    """Gradio's HTTP API called the way any script can call it: every event by its ``fn_index``,
    hidden ones too, with any JSON as its data. For the tests and the benchmark.

    Args:
        url: the server's address (``DemoServer.url``).
        session: the session id to send (each ``RawClient`` is one page; default: a fresh one).
        http: an ``httpx.Client`` to share (default: a new one).
        source: the local address to connect from, e.g. "127.0.0.7": the server tells visitors apart by
            their address, and every 127.x.y.z address reaches a server on 127.0.0.1 (Linux).
    """

    def __init__(self, url: str, session: str | None = None, http=None, source: str | None = None):
        import uuid

        import httpx

        self.url = url.rstrip("/") + "/"
        self.session = session or uuid.uuid4().hex[:12]
        transport = httpx.HTTPTransport(local_address=source) if source else None
        self.http = http or httpx.Client(timeout=300, transport=transport)
        self._config = None

    @property
    def config(self) -> dict:
        if self._config is None:
            response = self.http.get(self.url + "config")
            response.raise_for_status()
            self._config = response.json()
        return self._config

    def fn_index(self, api_name: str | None = None, first_input: str | None = None, trigger: str | None = None) -> int:
        """The ``fn_index`` of the event named ``api_name``, or of the (hidden) one whose first input
        has the label ``first_input`` and that fires on ``trigger`` (e.g. "select")."""
        labels = {c["id"]: c.get("props", {}).get("label") for c in self.config["components"]}
        for dep in self.config["dependencies"]:
            if api_name is not None and dep.get("api_name") == api_name:
                return dep["id"]
            if (first_input is not None and dep["inputs"] and labels.get(dep["inputs"][0]) == first_input
                    and (trigger is None or any(t[1] == trigger for t in dep["targets"]))):
                return dep["id"]
        raise KeyError(f"no event with api_name={api_name!r} / first input {first_input!r} / trigger {trigger!r}")

    def login(self, user: str, password: str) -> int:
        """Log in on a server started with ``--auth``; returns the HTTP status (200 when accepted)."""
        return self.http.post(self.url + "login", data={"username": user, "password": password}).status_code

    def upload(self, path: str | Path) -> dict:
        """Upload a file as the page does; returns the file data an event takes."""
        with open(path, "rb") as f:
            response = self.http.post(self.url + "gradio_api/upload", files={"files": (Path(path).name, f)})
        response.raise_for_status()
        return {"path": response.json()[0], "meta": {"_type": "gradio.FileData"}}

    def join(self, fn_index: int, data: list, event_data=None) -> str:
        """Put one event in the queue for this session, as a click does; returns its event id
        (``results`` reads what comes back). Raises for a refusal at the door (HTTP status)."""
        body = {"data": data, "fn_index": fn_index, "session_hash": self.session, "event_data": event_data}
        # json.dumps writes NaN and Infinity as JavaScript does: a script can send them, so tests do too
        joined = self.http.post(self.url + "gradio_api/queue/join", content=json.dumps(body).encode(),
                                headers={"Content-Type": "application/json"})
        if joined.status_code != 200:
            raise ConnectionRefusedError(f"HTTP {joined.status_code}: {joined.text[:300]}")
        return joined.json()["event_id"]

    def results(self, event_ids: list[str]) -> dict[str, tuple[list | None, object, list[dict]]]:
        """Read this session's one result stream (a page has one for all its events) until every
        event in ``event_ids`` has finished: event id -> ``(output data or None, error or None, messages)``."""
        pending, out = set(event_ids), {}
        messages: dict[str, list[dict]] = {e: [] for e in event_ids}
        with self.http.stream("GET", self.url + "gradio_api/queue/data", params={"session_hash": self.session}) as s:
            for line in s.iter_lines():
                if not line.startswith("data: "):
                    continue
                msg = json.loads(line[6:])
                event = msg.get("event_id")
                if event in messages:
                    messages[event].append(msg)
                if msg.get("msg") == "process_completed" and event in pending:
                    result = msg.get("output") or {}
                    out[event] = (result.get("data") if msg.get("success", True) else None), result.get("error")
                    pending.discard(event)
                    if not pending:
                        break
                if msg.get("msg") == "close_stream":
                    break
        return {e: (*out.get(e, (None, "the stream ended without a result")), messages[e]) for e in event_ids}

    def call(self, fn_index: int, data: list, event_data=None) -> tuple[list | None, object, list[dict]]:
        """Run one event: ``(output data or None, error or None, every message the stream sent)``."""
        try:
            event = self.join(fn_index, data, event_data)
        except ConnectionRefusedError as err:
            return None, str(err), []
        return self.results([event])[event]

    @staticmethod
    def values(messages: list[dict], index: int = 0) -> list:
        """The successive values of output ``index`` in an event's messages: a generator's updates
        arrive as diffs (``["replace", [], text]``, ``["append", [], more]``), the end as a value."""
        seen, current = [], None
        for msg in messages:
            data = (msg.get("output") or {}).get("data")
            if not data or len(data) <= index:
                continue
            value = data[index]
            if msg.get("msg") == "process_generating" and isinstance(value, list):
                for op in value:
                    if isinstance(op, list) and len(op) == 3 and op[1] == []:
                        current = op[2] if op[0] == "replace" else (current or "") + op[2] if op[0] == "append" \
                            else current
            else:
                current = value
            seen.append(current)
        return seen

    def fetch(self, file_data: dict | None) -> bytes:
        """Download a result file as a browser does; raises if it arrives incomplete."""
        response = self.http.get(file_data["url"])
        response.raise_for_status()
        declared = response.headers.get("content-length")
        if declared is not None and int(declared) != len(response.content):
            raise RuntimeError(f"{file_data['url']}: {len(response.content)} bytes of {declared}")
        return response.content

    def close(self) -> None:
        self.http.close()
