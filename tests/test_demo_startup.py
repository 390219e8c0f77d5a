"""Starting the demo and its "Use via API" page, through the real command (``python -m demo``).

* A busy port is one line naming the port and ``--port``, exit status 2, no traceback.
* ``--port`` and ``GRADIO_SERVER_PORT`` are both honoured; the flag wins.
* The log gives no advice a user cannot follow (Gradio's "set share=True in launch()").
* The API page's snippets send a shipped example photo, and a URL given as a photo is refused
  with a message and never fetched (a server of the test's own counts the requests).
"""

from __future__ import annotations

import http.server
import json
import os
import socket
import subprocess
import sys
import threading
import time
import types
import urllib.request

import gradio_client
import pytest

from demo.api_page import EXAMPLE, example_payload
from demo.settings import DEFAULT_PORT, choose_port, port_problem
from tests.support.server import ROOT, RawClient, free_port


def _demo(*args: str, env: dict | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", **(env or {})}
    return subprocess.run([sys.executable, "-m", "demo", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture
def busy_port():
    """A port on 127.0.0.1 that a listening socket holds for the test."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s.getsockname()[1]


# --- the port ------------------------------------------------------------------------------------------

def test_choose_port_takes_the_flag_then_the_variable_then_7860():
    assert choose_port(None, {}) == DEFAULT_PORT == 7860
    assert choose_port(None, {"GRADIO_SERVER_PORT": "7901"}) == 7901
    assert choose_port(7902, {"GRADIO_SERVER_PORT": "7901"}) == 7902  # the flag wins
    assert choose_port(None, {"GRADIO_SERVER_PORT": " "}) == 7860
    for flag, env, words in ((None, {"GRADIO_SERVER_PORT": "abc"}, "GRADIO_SERVER_PORT='abc': expected a port"),
                             (0, {}, "--port=0: expected a port number"), (70000, {}, "--port=70000")):
        with pytest.raises(ValueError, match=words):
            choose_port(flag, env)


def test_port_problem_names_a_busy_port(busy_port):
    problem = port_problem("127.0.0.1", busy_port)
    assert problem.startswith(f"port {busy_port} is already in use on 127.0.0.1") and "--port" in problem
    assert port_problem("127.0.0.1", free_port()) is None


def test_a_busy_port_is_one_line_and_exit_status_2(busy_port):
    started = time.monotonic()
    done = _demo("--port", str(busy_port))
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert lines == [f"error: port {busy_port} is already in use on 127.0.0.1 (another demo?): stop that program, "
                     f"or choose another port with --port {busy_port + 1}"], done.stderr
    assert "Traceback" not in done.stdout + done.stderr and "GRADIO_SERVER_PORT" not in done.stderr
    assert time.monotonic() - started < 30  # answered before the app (torch, the model) loads


def test_the_flag_wins_over_the_variable_and_a_bad_variable_is_one_line(busy_port):
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        flagged = other.getsockname()[1]
        done = _demo("--port", str(flagged), env={"GRADIO_SERVER_PORT": str(busy_port)})
    assert done.returncode == 2 and f"port {flagged} is already in use" in done.stderr  # the flag's port was tried
    done = _demo(env={"GRADIO_SERVER_PORT": str(busy_port)})
    assert done.returncode == 2 and f"port {busy_port} is already in use" in done.stderr  # the variable's
    done = _demo(env={"GRADIO_SERVER_PORT": "seventy"})
    assert done.returncode == 2 and done.stderr.strip().splitlines() == [
        "error: GRADIO_SERVER_PORT='seventy': expected a port number, 1 to 65535 (e.g. 7861)"]


def test_a_port_taken_while_the_model_loads_is_the_same_one_line(busy_port):
    from demo import app as app_module

    def launch(**kwargs):  # what Gradio raises when it cannot listen
        raise OSError(f"Cannot find empty port in range: {kwargs['server_port']}-{kwargs['server_port']}. You can "
                      "specify a different port by setting the GRADIO_SERVER_PORT environment variable")

    fake = types.SimpleNamespace(petbreeds_predictor=types.SimpleNamespace(runtime_report="test"),
                                 petbreeds_sweeper=None, launch=launch)
    with pytest.raises(app_module.PortInUse) as err:
        app_module.launch(fake, "127.0.0.1", busy_port)
    assert str(err.value) == port_problem("127.0.0.1", busy_port) and f"--port {busy_port + 1}" in str(err.value)
    with pytest.raises(app_module.PortInUse, match=r"^cannot listen on 192\.0\.2\.1:\d+ \(.*\): check --host$"):
        app_module.launch(fake, "192.0.2.1", free_port())  # an address this machine does not have (TEST-NET-1)
    assert port_problem("192.0.2.1", free_port(), only_busy=True) is None  # left to the server before it loads


# --- a server started by GRADIO_SERVER_PORT alone: its log, its API page, a URL as a photo --------------

@pytest.fixture(scope="module")
def server(tmp_path_factory):
    port = free_port()
    log = tmp_path_factory.mktemp("log") / "demo.log"
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "PYTHONUNBUFFERED": "1", "GRADIO_SERVER_PORT": str(port),
           "GRADIO_TEMP_DIR": str(tmp_path_factory.mktemp("gradio"))}
    with open(log, "wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "demo"], cwd=ROOT, env=env, stdout=out,
                                   stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            try:  # Gradio can answer a moment before it prints its URL: wait for both
                with urllib.request.urlopen(url, timeout=2):
                    if "* Running on local URL:" in log.read_text():
                        break
            except OSError:
                pass
            time.sleep(0.3)
        yield types.SimpleNamespace(url=url, port=port, log=log, process=process)
    finally:
        process.terminate()
        process.wait(15)


def test_the_variable_alone_sets_the_port_and_the_log_gives_no_advice_for_gradio_code(server):
    text = server.log.read_text()
    assert f"* Running on local URL:  http://127.0.0.1:{server.port}/" in text
    assert "share=True" not in text and "launch()" not in text, text


def test_the_api_page_sends_a_shipped_example_photo(server):
    with urllib.request.urlopen(server.url + "gradio_api/info", timeout=30) as response:
        info = json.load(response)
    photos = [p for endpoint in info["named_endpoints"].values() for p in endpoint["parameters"]
              if p["component"] in ("File", "Image")]
    assert photos, info["named_endpoints"].keys()
    assert all(p["example_input"] == example_payload() for p in photos), photos
    assert "http" not in json.dumps([p["example_input"] for p in photos])
    assert (ROOT / EXAMPLE).is_file() and EXAMPLE == "demo/examples/pug_140.jpg"
    # the snippet, run from the repository root as the page shows it, gets an answer
    example = next(p for p in info["named_endpoints"]["/predict"]["parameters"] if p["component"] in ("File", "Image"))
    cwd = os.getcwd()
    try:
        os.chdir(ROOT)
        client = gradio_client.Client(server.url, verbose=False)
        answer = client.predict(gradio_client.handle_file(example["example_input"]["url"]), False, api_name="/predict")
        top5, message = answer[0], answer[1]
    finally:
        os.chdir(cwd)
    assert top5["label"] == "Pug (dog)" and "ms with the shipped model" in message


def test_the_front_door_tells_a_url_from_a_file_the_server_handed_out(tmp_path):
    from demo.guard import file_payload_problem

    photo = tmp_path / "uploads" / "a.jpg"
    photo.parent.mkdir()
    photo.write_bytes(b"x")
    folders = (photo.parent.resolve(),)
    # what the page sends back: the file's path, and the address where its browser found it
    served = {"path": str(photo), "url": f"http://127.0.0.1:7860/gradio_api/file={photo}",
              "meta": {"_type": "gradio.FileData"}}
    assert file_payload_problem([served, False], folders, ()) is None
    for url in ({"path": "http://127.0.0.1:9/x.jpg", "url": "http://127.0.0.1:9/x.jpg"}, {"url": "https://e.x/a.jpg"},
                {"path": "", "url": "ftp://e.x/a.jpg"}, {"path": "file:///etc/passwd"}):
        problem = file_payload_problem([url, False], folders, ())
        assert "is a URL" in problem and "not a photo uploaded" in problem, url


class _Counting(http.server.BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self):  # noqa: N802  (the name http.server calls)
        _Counting.hits.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "image/jpeg")
        self.end_headers()
        self.wfile.write((ROOT / EXAMPLE).read_bytes())

    def log_message(self, *args):
        pass


def test_a_url_as_a_photo_is_refused_with_a_message_and_never_fetched(server):
    photo_server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Counting)
    threading.Thread(target=photo_server.serve_forever, daemon=True).start()
    target = f"http://127.0.0.1:{photo_server.server_address[1]}/x.jpg"
    raw = RawClient(server.url)
    predict = raw.fn_index("predict")
    try:
        for payload in ({"path": target, "url": target}, {"path": target, "url": target, "orig_name": "x.jpg",
                                                           "meta": {"_type": "gradio.FileData"}}, {"url": target}):
            answer = raw.http.post(server.url + "gradio_api/queue/join", json={
                "data": [payload, False], "fn_index": predict, "session_hash": raw.session, "event_data": None})
            assert answer.status_code == 422, answer.text
            assert "is a URL" in answer.text and "never fetches URLs" in answer.text and "handle_file" in answer.text
            answer = raw.http.post(server.url + "gradio_api/call/predict", json={"data": [payload, False]})
            assert answer.status_code == 422 and "is a URL" in answer.text, answer.text
        with pytest.raises(Exception):  # noqa: B017  (gradio_client sends the URL on as it is; the 422 stops it)
            gradio_client.Client(server.url, verbose=False).predict(gradio_client.handle_file(target), False,
                                                                    api_name="/predict")
        time.sleep(1)
        assert _Counting.hits == []  # the server never contacted the address it was given
        assert "Traceback" not in server.log.read_text()
    finally:
        raw.close()
        photo_server.shutdown()
