"""Run the demo in a child process, as a user starts it, for the tests and the benchmark.

    with DemoServer() as server:
        Client(server.url).predict(...)

The child runs the real command, ``python -m demo --port N`` on a free loopback port, so what the
tests check is what the README tells people to start. ``__enter__`` waits until the page answers
(and fails with the child's output if it dies first); ``__exit__`` stops it.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

__all__ = ["free_port", "DemoServer"]

ROOT = Path(__file__).resolve().parents[1]


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
    """

    def __init__(self, args: list[str] = (), start_timeout: float = 120.0, env: dict[str, str | None] | None = None):
        self.args, self.start_timeout, self.env = list(args), start_timeout, dict(env or {})
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> "DemoServer":
        self._log = tempfile.TemporaryFile()
        env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "PYTHONUNBUFFERED": "1", **self.env}
        env = {k: v for k, v in env.items() if v is not None}
        self.process = subprocess.Popen([sys.executable, "-m", "demo", "--port", str(self.port), *self.args],
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

    def output(self) -> str:
        """What the child printed so far (the last 4000 characters)."""
        self._log.seek(0)
        return self._log.read().decode(errors="replace")[-4000:]

    def __exit__(self, *exc) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
