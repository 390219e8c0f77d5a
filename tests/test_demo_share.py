"""A public link for a hosted notebook: ``python -m demo --share`` and ``demo.app.launch_in_notebook``.

A share link is refused without a login; with one, the demo warns, and when no link can be made it
says why in one line and stops (exit status 2). The demo runs as a real child process, as a student
starts it.

Nothing here reaches the internet. Gradio's share server is a fake on 127.0.0.1
(GRADIO_SHARE_SERVER_ADDRESS); the tunnel program Gradio runs (frpc, downloaded on first use into
HF_HOME) is a fake in a temporary HF_HOME; and where Gradio goes to the internet (the share service's
address, the frpc download), HTTPS_PROXY sends it to a fake proxy on 127.0.0.1 that hangs up.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path

import psutil
import pytest

from tests.support.server import ROOT, DemoServer, free_port

PUBLIC_URL = "http://petbreeds-test.share.invalid"  # what the fake share server hands out

FAKE_FRPC = '''#!{python}
"""A stand-in for Gradio's frpc: logs in to --server_addr and prints what frpc prints."""
import os, socket, sys, time

args = sys.argv[1:]
host, port = args[args.index("--server_addr") + 1].rsplit(":", 1)
local = args[args.index("-i") + 1] + ":" + args[args.index("-l") + 1]
stamp = time.strftime("%Y/%m/%d %H:%M:%S")
try:
    with socket.create_connection((host, int(port)), timeout=30) as s:
        s.sendall(f"login {{local}} {{os.getpid()}}\\n".encode())
        answer = s.makefile().readline().strip()
    reason = "EOF"
except OSError as err:
    answer, reason = "", f"dial tcp {{host}}:{{port}}: {{err}}"
if not answer:
    print(f"{{stamp}} [W] [service.go:133] login to server failed: {{reason}}", flush=True)
    sys.exit(1)
print(f"{{stamp}} [I] [control.go:181] [petbreeds] start proxy success: {{answer}}", flush=True)
while True:  # the tunnel stays open until the demo stops it
    time.sleep(60)
'''


class Listener:
    """A TCP server on 127.0.0.1, in a thread: keeps the first line of each connection in ``lines`` and
    sends back ``reply(line)`` (None: hangs up)."""

    def __init__(self, reply=lambda line: None):
        self.reply, self.lines = reply, []
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.address = f"127.0.0.1:{self.sock.getsockname()[1]}"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:  # closed
                return
            with conn, conn.makefile("rb") as f:
                line = f.readline().decode(errors="replace").strip()
                self.lines.append(line)
                answer = self.reply(line)
                if answer:
                    conn.sendall(answer.encode())

    def close(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes the accept()
        except OSError:
            pass
        self.sock.close()


class FakeShareServer(Listener):
    """Answers frpc's login with ``PUBLIC_URL`` (``accept``) or hangs up (refuses); either way it first
    calls the demo's local address, as a real share server forwards visitors there."""

    def __init__(self, accept: bool):
        self.accept, self.local_status, self.frpc_pids = accept, [], []
        super().__init__(self._login)

    def _login(self, line: str):
        _, local, pid = line.split()  # "login 127.0.0.1:7860 <frpc's pid>"
        self.frpc_pids.append(int(pid))
        self.local_status.append(answers(f"http://{local}/"))
        return PUBLIC_URL + "\n" if self.accept else None


def answers(url: str) -> int | str:
    """The HTTP status that ``url`` answers with, or why it does not (e.g. "ConnectionRefusedError")."""
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            return response.status
    except urllib.error.HTTPError as err:
        return err.code
    except urllib.error.URLError as err:
        return type(err.reason).__name__


@pytest.fixture
def offline_env(tmp_path):
    """The child's environment: its own caches, no login, and every internet request of Gradio sent to a
    fake proxy on 127.0.0.1 that hangs up (``offline_env.proxy.lines`` shows what was asked for)."""
    proxy = Listener()
    env = {k: v for k, v in os.environ.items()
           if k.lower() not in ("http_proxy", "https_proxy", "all_proxy", "no_proxy")
           and k not in ("PETBREEDS_AUTH", "GRADIO_SHARE_SERVER_ADDRESS")}
    env.update(PETBREEDS_HOME=str(tmp_path / "home"), HF_HOME=str(tmp_path / "hf"),
               GRADIO_TEMP_DIR=str(tmp_path / "gradio"), GRADIO_ANALYTICS_ENABLED="False", PYTHONUNBUFFERED="1",
               HTTPS_PROXY=f"http://{proxy.address}", https_proxy=f"http://{proxy.address}")
    yield env, proxy
    proxy.close()


def install_fake_frpc(hf_home: str | Path) -> Path:
    """Put the fake frpc where Gradio looks for the one it downloads: then it downloads nothing."""
    from gradio.tunneling import BINARY_FILENAME

    path = Path(hf_home) / "gradio" / "frpc" / BINARY_FILENAME
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(FAKE_FRPC.format(python=sys.executable))
    path.chmod(0o755)
    return path


def run_demo(args: list[str], env: dict[str, str], port: int | None = None, python_flags: tuple[str, ...] = ()):
    """``python -m demo --port PORT ARGS`` to its end (a free port by default): the ``CompletedProcess``."""
    return subprocess.run([sys.executable, *python_flags, "-m", "demo", "--port", str(port or free_port()), *args],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)


def test_share_without_a_login_is_refused_before_gradio_and_torch_load(offline_env):
    env, proxy = offline_env
    done = run_demo(["--share"], env, python_flags=("-X", "importtime"))
    imported = {line.rsplit("|", 1)[-1].strip().split(".")[0] for line in done.stderr.splitlines()
                if line.startswith("import time:")}
    said = [line for line in done.stderr.splitlines() if not line.startswith("import time:")]
    assert done.returncode == 2 and len(said) == 1, done.stderr[-3000:]
    assert said[0].startswith("error: --share needs --auth USER:PASSWORD (or PETBREEDS_AUTH=user:password): "
                              "anyone who has the public link could otherwise use the demo"), said
    assert "argparse" in imported and not {"gradio", "torch"} & imported  # -X importtime did list the imports
    assert done.stdout == "" and proxy.lines == []


def test_a_refused_tunnel_is_one_line_and_exit_2_after_serving_locally(offline_env):
    env, proxy = offline_env
    install_fake_frpc(env["HF_HOME"])
    share_server = FakeShareServer(accept=False)
    env["GRADIO_SHARE_SERVER_ADDRESS"] = share_server.address
    port = free_port()
    done = run_demo(["--share", "--auth", "teacher:s3cret"], env, port=port)
    share_server.close()
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 2, done.stdout + done.stderr
    warning, error = lines
    assert warning.startswith("warning: a share link is public: anyone who has it (and the login) can use the demo, "
                              "upload photos and start trainings, for as long as it runs")
    assert f"go through the share server at {share_server.address} (GRADIO_SHARE_SERVER_ADDRESS)" in warning
    assert error == (f"error: --share: no share link, so the demo stopped: the share server {share_server.address} "
                     "refused the tunnel (login to server failed: EOF): try again later, or use the demo without "
                     "a share link")
    assert "Traceback" not in done.stdout + done.stderr
    # the demo served on 127.0.0.1 (the share server called it there) and pointed the tunnel at that port
    assert f"* Running on local URL:  http://127.0.0.1:{port}/" in done.stdout
    assert share_server.lines[0].startswith(f"login 127.0.0.1:{port} ") and share_server.local_status == [200]
    assert proxy.lines == []  # the fake frpc was there: nothing was downloaded
    assert not psutil.pid_exists(share_server.frpc_pids[0])


@pytest.mark.parametrize("share_server", ["own", "gradio"])
def test_offline_no_share_link_is_one_line_with_the_fix_and_exit_2(offline_env, share_server):
    # What a student sees on a machine without internet: Gradio asks its share service for a server
    # ("gradio"), or, with GRADIO_SHARE_SERVER_ADDRESS set ("own"), downloads frpc first; both fail.
    env, proxy = offline_env
    if share_server == "own":
        env["GRADIO_SHARE_SERVER_ADDRESS"] = "127.0.0.1:9"  # never reached: frpc is missing
    done = run_demo(["--share", "--auth", "teacher:s3cret"], env)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 2 and lines[0].startswith("warning: "), done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr and "Running on local URL" in done.stdout
    frpc = Path(env["HF_HOME"]) / "gradio" / "frpc"
    if share_server == "own":
        assert lines[1].startswith("error: --share: no share link, so the demo stopped: cannot download Gradio's "
                                   "tunnel program (frpc) from https://cdn-media.huggingface.co/frpc-gradio-")
        assert (f"connect this machine to the internet, or download that file elsewhere and save it as {frpc}/"
                in lines[1])
        assert [line.split()[:2] for line in proxy.lines] == [["CONNECT", "cdn-media.huggingface.co:443"]]
    else:
        assert lines[1].startswith("error: --share: no share link, so the demo stopped: cannot reach Gradio's share "
                                   "service at https://api.gradio.app/v3/tunnel-request (")
        assert lines[1].endswith("a share link needs internet access: connect this machine, or use the demo "
                                 "without a share link")
        assert [line.split()[:2] for line in proxy.lines] == [["CONNECT", "api.gradio.app:443"]]
    assert not frpc.exists() or not any(frpc.iterdir())  # nothing half-downloaded left behind


def test_a_public_link_is_served_until_the_demo_is_stopped_and_then_closed(offline_env):
    env, proxy = offline_env
    install_fake_frpc(env["HF_HOME"])
    share_server = FakeShareServer(accept=True)
    env.update(GRADIO_SHARE_SERVER_ADDRESS=share_server.address, PETBREEDS_AUTH="teacher:s3cret")  # login from env
    with DemoServer(["--share"], env={k: None for k in os.environ} | env) as server:
        server.wait_for_output("* Running on public URL:")
        assert share_server.lines[0].startswith(f"login 127.0.0.1:{server.port} ")
        assert share_server.local_status == [200]
        (frpc,) = share_server.frpc_pids
        assert psutil.Process(frpc).status() != psutil.STATUS_ZOMBIE  # the tunnel is up
        server.process.terminate()  # what `kill` and DemoServer send: SIGTERM
        assert server.process.wait(timeout=60) == 128 + 15  # an orderly exit through the demo's handler
        said = server.output(last=None)
    share_server.close()
    assert "warning: a share link is public" in said and "Traceback" not in said
    assert f"* Running on public URL: https://{PUBLIC_URL.split('://')[1]}" in said  # Gradio's default: https
    assert not psutil.pid_exists(frpc), "the tunnel program outlived the demo"
    assert proxy.lines == []


# --- in a notebook cell: launch_in_notebook --------------------------------------------------------

NOTEBOOK_CELL = """
import json, sys
from demo.app import ShareLinkError, launch_in_notebook

try:
    running = launch_in_notebook(**json.loads(sys.argv[1]))
except ShareLinkError as err:
    print("REFUSED", err, flush=True)
    sys.exit(3)
print("RUNNING", json.dumps({"url": running.url, "share_url": running.share_url, "repr": repr(running)}), flush=True)
sys.stdin.readline()  # the test has called the page
running.close()
print("CLOSED", repr(running), flush=True)
sys.stdin.readline()  # alive until the test has looked: at exit, Gradio's atexit would stop the tunnel anyway
"""


def _said(child: subprocess.Popen, seen: list[str], *prefixes: str) -> str:
    """Read the child's output into ``seen`` up to the first line that starts with one of ``prefixes``."""
    for line in child.stdout:
        seen.append(line)
        if line.startswith(prefixes):
            return line.rstrip("\n")
    raise AssertionError(f"the child ended (code {child.wait()}) without saying {prefixes}:\n{''.join(seen)[-4000:]}")


@pytest.mark.parametrize("mode", ["local", "share", "share refused"])
def test_launch_in_notebook_returns_a_running_demo_that_close_stops(offline_env, mode):
    env, proxy = offline_env
    kwargs, share_server = {}, None
    if mode != "local":
        install_fake_frpc(env["HF_HOME"])
        share_server = FakeShareServer(accept=mode == "share")
        env["GRADIO_SHARE_SERVER_ADDRESS"] = share_server.address
        kwargs = {"share": True, "auth": "teacher:s3cret", "port": free_port()}
    child = subprocess.Popen([sys.executable, "-c", NOTEBOOK_CELL, json.dumps(kwargs)], cwd=ROOT, env=env,
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    seen = []
    try:
        line = _said(child, seen, "RUNNING", "REFUSED")
        if mode == "share refused":
            assert line == (f"REFUSED the share server {share_server.address} refused the tunnel (login to server "
                            "failed: EOF): try again later, or use the demo without a share link"), "".join(seen)
            assert share_server.local_status == [200]  # it was serving while the link was asked for...
            assert answers(f"http://127.0.0.1:{kwargs['port']}/") == "ConnectionRefusedError"  # ...and is closed
            assert child.wait(timeout=120) == 3
        else:
            assert line.startswith("RUNNING "), "".join(seen)
            running = json.loads(line.split(" ", 1)[1])
            url, share_url = running["url"], running["share_url"]
            assert url.startswith("http://127.0.0.1:") and answers(url) == 200  # returned, and it serves
            if mode == "share":
                assert share_url == "https://" + PUBLIC_URL.split("://")[1]
                assert "IFrame" in "".join(seen)  # the public page shown in the cell
                (frpc,) = share_server.frpc_pids
                assert psutil.Process(frpc).status() != psutil.STATUS_ZOMBIE  # the tunnel is up
                assert running["repr"] == (f"<petbreeds demo on {url}, public link {share_url} "
                                           "(running; .close() stops it)>")
            else:
                assert share_url is None
                assert running["repr"] == f"<petbreeds demo on {url} (running; .close() stops it)>"
            child.stdin.write("\n")  # close it
            child.stdin.flush()
            assert _said(child, seen, "CLOSED").endswith("(closed; .close() stops it)>")
            assert answers(url) == "ConnectionRefusedError"  # the port is free again
            if mode == "share":
                assert not psutil.pid_exists(frpc), "close() left the tunnel program running (or unreaped)"
            child.stdin.write("\n")  # let it end
            child.stdin.flush()
            assert child.wait(timeout=120) == 0
        said = "".join(seen) + child.stdout.read()
        assert "Traceback" not in said
        assert ("warning: a share link is public" in said) == (mode != "local")
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        if share_server is not None:
            share_server.close()
    assert proxy.lines == []


def test_launch_in_notebook_refuses_a_share_link_without_a_login(monkeypatch):
    from demo.app import launch_in_notebook

    monkeypatch.delenv("PETBREEDS_AUTH", raising=False)
    with pytest.raises(ValueError, match=r"share=True needs a login: pass auth=\('user', 'password'\)"):
        launch_in_notebook(share=True)
    with pytest.raises(ValueError, match="auth: expected USER:PASSWORD"):
        launch_in_notebook(auth="teacher", share=True)
    monkeypatch.setenv("PETBREEDS_AUTH", "teacher")
    with pytest.raises(ValueError, match="PETBREEDS_AUTH: expected USER:PASSWORD"):
        launch_in_notebook(share=True)
