"""The Gradio app: four tabs, one queue, launched on 127.0.0.1:7860 by ``python -m demo``.

As Gradio apps do, this module has a module-level ``demo`` (with the default settings) and
launches it under ``if __name__ == "__main__"``; it is built on first use, not at import, so that
``python -m demo --model X`` (``demo/__main__.py``, which adds the command-line options) never
touches the shipped model. The model is loaded once, when the app is built.

The server is meant for a classroom (the README's hardening notes list what it promises):
* it binds to the loopback address unless told otherwise, and can ask for a login (``auth``);
* every file a handler reads is an upload in Gradio's folder or one of the server's example
  photos (``uploads.may_read``), and every number is checked against the page's ranges
  (``checks.py``), for hidden events too;
* trainings never wait in the queue: at most one runs and one waits (``sessions.TrainingSlots``),
  anyone else is told how long to wait, so the queue (64 places) is always free for photos;
  the models visitors train are kept for their session only, at most 8 of them, for an hour;
* uploads and result files are deleted an hour after they were written, by a sweep of our own
  that no payload can stop (``sweeper.py``), and result files are complete before anyone can read
  them (``outputs.py``);
* every request passes a front door first (``guard.py``): bodies of at most 64 KB but for the
  upload, file payloads only for regular files in the upload folder, quotas per visitor (by
  address, not by the session id a client chooses), throttled logins; Gradio keeps the state of
  at most ``SESSIONS`` sessions;
* it never shows tracebacks to visitors (``show_error=False``, and every handler turns its own
  errors into a message in the page), keeps no run history, renders in the browser (no
  server-side rendering), and needs no internet.

A hosted notebook (Google Colab) is another machine: its 127.0.0.1 is not the student's. There the
demo runs in the cell (``launch_in_notebook()``) or behind a temporary public link from Gradio's share
service (``share=True``, ``python -m demo --share``). A public link is open to anyone who has it, so it
is refused without a login. The link is made here rather than by Gradio's own ``share=True``, which
reports a failure in several lines and carries on serving a local address nobody can reach: a
failure is one line that says why and what to do (``ShareLinkError``), and the server stops.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import os
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse, urlunparse

import matplotlib
import numpy as np

# (demo/__init__.py, which always runs before this module, has set GRADIO_ANALYTICS_ENABLED=False.)
matplotlib.use("Agg")  # the server has no screen; figures are rendered to images for the page

import gradio as gr

from engine.serving.predictor import load_predictor

from .api_page import use_shipped_example
from .flagging import Flags
from .guard import Guard, Limits, visitor_of
from .input_types import InputTypes
from .model_card import build_about_tab
from .page import PAGE_CSS, PAGE_JS
from .predict_tab import build_predict_tab
from .presize_lab import build_presize_lab
from .sessions import SessionModels, TrainingSlots, signed_in
from .settings import SHIPPED_MODEL, DemoSettings, default_train_data, example_photos, parse_auth, port_problem
from .softmax_lab import build_softmax_lab
from .sweeper import Sweeper
from .train_tab import build_train_tab
from .uploads import upload_folder

# `demo` is made on first use by the module's __getattr__, which linters cannot see
__all__ = ["QUEUE_SIZE", "THEME", "PortInUse", "RunningDemo", "ShareLinkError", "build_demo", "demo",  # noqa: F822
           "launch", "launch_in_notebook", "share_warning"]

QUEUE_SIZE = 64  # requests waiting at once; trainings never take a place (see train_tab)
AUTH_MESSAGE = "This petbreeds server asks for the login its operator gave you."
SESSIONS = 256  # sessions whose state Gradio keeps (its default, 10,000, costs ~100 KB each): a classroom

# System fonts only: the default theme would fetch its fonts from the internet.
THEME = gr.themes.Default(font=["system-ui", "sans-serif"], font_mono=["ui-monospace", "monospace"])


def build_demo(settings: DemoSettings) -> gr.Blocks:
    """The app for ``settings``: loads the model (once) and lays out the four tabs."""
    predictor = load_predictor(settings.model)
    predictor.predict(np.zeros((64, 64, 3), np.uint8))  # warm up, so the first visitor does not wait
    examples = example_photos(settings.train_data)
    allowed = (upload_folder(), *examples)  # the only files a visitor's payload may point at
    sessions = SessionModels(settings.session_models, settings.session_ttl)
    flags = Flags(settings.flag_dir, predictor.vocab, settings.flag_max) if settings.flag_dir else None
    slots = TrainingSlots(settings.trainings, settings.training_queue)
    age = settings.delete_cache_after
    built: dict[str, gr.Blocks] = {}  # the app, for handlers that look at its queue

    def others_waiting(who: str) -> bool:
        return any(visitor != who for visitor in _waiting(built["app"]))

    # Gradio's own sweep (delete_cache) stays off: one payload naming a folder stopped it for good.
    with gr.Blocks(title="petbreeds: which breed is my pet?") as app:
        gr.Markdown("# petbreeds\nA cat and dog breed classifier, and labs that show how it works inside.")
        with gr.Tabs(overflow_behavior="wrap"):  # on a phone every tab stays one tap away (no "..." menu)
            build_predict_tab(predictor, sessions, settings.max_file_size, examples, allowed, others_waiting, flags)
            build_softmax_lab()
            build_presize_lab(settings.max_file_size, examples, allowed)
            build_train_tab(settings.train_data, sessions, slots)
            build_about_tab(settings.model)
    # Up to 4 predictions at once, labs 2 at a time (set per event); trainings are admitted by ``slots``.
    app.queue(default_concurrency_limit=2, max_size=QUEUE_SIZE)
    use_shipped_example(app)  # "Use via API" sends demo/examples/pug_140.jpg, not a file on a public URL
    built["app"] = app
    app.petbreeds_limits = Limits(max_file_size=settings.max_file_size, uploads_per_minute=settings.uploads_per_minute,
                                  upload_bytes_per_minute=settings.uploads_per_minute * 2 * 2**20)
    app.petbreeds_predictor, app.petbreeds_sessions, app.petbreeds_slots = predictor, sessions, slots
    app.petbreeds_examples = tuple(Path(p).resolve() for p in examples)
    app.petbreeds_sweeper = Sweeper(lambda: list(app.temp_file_sets), upload_folder(), age,
                                    interval=max(1, min(age, 300)), keep=lambda: _kept(app)) if age else None
    return app


class PortInUse(OSError):
    """The server could not listen (the port taken by another demo, say); the message is one line that
    names the port and ``--port``."""

    def __init__(self, host: str, port: int | None):
        problem = port_problem(host, port) if port is not None else None
        where = f"port {port}" if port is not None else "every port from 7860 to 7959"
        super().__init__(problem or f"{where} is already in use on {host} (another demo?): stop that program, or "
                                    "choose another port with --port")


class ShareLinkError(RuntimeError):
    """No public link could be made (offline, no tunnel program, the share server said no); the
    message is one line: why, and what to do."""


def launch(app: gr.Blocks, host: str = "127.0.0.1", port: int | None = 7860, max_file_size: int = 10 * 2**20,
           prevent_thread_lock: bool = False, auth: tuple[str, str] | None = None, share: bool = False,
           inline: bool | None = None):
    """Start the server with the safe options described at the top of this module; with ``auth``
    visitors log in first. ``port`` None: the first free one from 7860 up.

    With ``share`` it also asks for a public link (``app.share_url``); if none can be made, the server
    is closed again and ``ShareLinkError`` says why. Callers check that ``auth`` is set first.
    """
    print(f"petbreeds: the model answers on {app.petbreeds_predictor.runtime_report}", flush=True)
    # Gradio's own share=True stays off (see the top of this module): the link is made below.
    if app.petbreeds_sweeper is not None:
        app.petbreeds_sweeper.ensure_running()
    # quiet: Gradio's own lines include advice nobody here can follow ("set share=True in launch()");
    # the address is said below instead.
    try:
        result = app.launch(server_name=host, server_port=port, max_file_size=max_file_size, show_error=False,
                            app_kwargs={"middleware": [_front_door(app, max_file_size)]},
                            state_session_capacity=SESSIONS,
                            ssr_mode=False, run_history=False, share=False, enable_monitoring=False,
                            mcp_server=False, footer_links=["api"], theme=THEME, css=PAGE_CSS, js=PAGE_JS,
                            auth=auth,
                            auth_message=AUTH_MESSAGE if auth else None,
                            prevent_thread_lock=True, quiet=True, inline=False if share else inline)
    except OSError as err:
        if str(err).startswith("Cannot find empty port"):  # Gradio's words; it suggests a variable of its own
            raise PortInUse(host, port) from None
        raise
    print(f"* Running on local URL:  {app.local_url}", flush=True)
    if not share:
        if not prevent_thread_lock and not getattr(sys, "ps1", sys.flags.interactive):  # as Gradio does
            app.block_thread()
        return result
    try:
        app.share_url, app.petbreeds_tunnel = _open_share_link(app)
    except ShareLinkError:
        app.close(verbose=False)
        raise
    app.share = True  # as with Gradio's share=True: the page asks search engines to stay away
    print(f"* Running on public URL: {app.share_url}", flush=True)
    if inline or (inline is None and gr.utils.ipython_check()):
        _show_in_cell(app.share_url, app.height)
    if not prevent_thread_lock:
        try:
            app.block_thread()
        finally:  # Ctrl-C, or SystemExit from python -m demo's SIGTERM handler
            _close_tunnel(app.petbreeds_tunnel)
    return app.server_app, app.local_url, app.share_url


def _kept(app: gr.Blocks) -> set[str]:
    """The files Gradio must keep (examples it cached at start), which the sweep leaves alone."""
    return set().union(*(getattr(block, "keep_in_cache", set()) for block in app.blocks.values()))


def _front_door(app: gr.Blocks, max_file_size: int):
    """The ``guard.Guard`` middleware for ``app``: its limits, the files a payload may name, its events."""
    from starlette.middleware import Middleware

    sweeper = app.petbreeds_sweeper

    def allowed():
        if sweeper is not None:
            sweeper.ensure_running()  # checked on every event: a dead sweep is started again
        return (upload_folder(),), app.petbreeds_examples

    limits = dataclasses.replace(getattr(app, "petbreeds_limits", Limits()), max_file_size=max_file_size)
    return Middleware(Guard, limits=limits, allowed=allowed,
                      n_events=lambda: len(app.fns), queued=lambda who: _waiting(app).count(who),
                      selects=lambda index: any(event == "select" for _, event in app.fns[index].targets),
                      index_of=lambda name: next((i for i, fn in app.fns.items() if fn.api_name == name), None),
                      browser_only=lambda index: app.fns[index].fn is None,
                      input_problem=InputTypes(app),
                      signed_in=lambda scope: signed_in(getattr(app, "server_app", None), scope))


def _waiting(app: gr.Blocks) -> list[str]:
    """The visitor of each event waiting in Gradio's queue (not yet running)."""
    lines = getattr(getattr(app, "_queue", None), "event_queue_per_concurrency_id", {})
    return [visitor_of(event.request) for line in list(lines.values()) for event in list(line.queue)]


class RunningDemo:
    """The demo ``launch_in_notebook`` started: ``url`` (this machine), ``share_url`` (the public link
    or None), ``app`` (the ``gr.Blocks``), and ``close()`` to stop the server and the link."""

    def __init__(self, app: gr.Blocks):
        self.app, self.url, self.share_url = app, app.local_url, app.share_url if app.share else None

    def close(self) -> None:
        """Stop the server, and the tunnel program behind the public link (``Blocks.close`` leaves it running)."""
        _close_tunnel(getattr(self.app, "petbreeds_tunnel", None))
        if getattr(self.app, "petbreeds_sweeper", None) is not None:
            self.app.petbreeds_sweeper.stop()
        self.app.close(verbose=False)

    def __repr__(self) -> str:
        shared = f", public link {self.share_url}" if self.share_url else ""
        state = "running" if self.app.is_running else "closed"
        return f"<petbreeds demo on {self.url}{shared} ({state}; .close() stops it)>"


def launch_in_notebook(auth: tuple[str, str] | str | None = None, share: bool = False, port: int | None = None,
                       model: str | Path | None = None) -> RunningDemo:
    """Start the demo from a notebook cell and return at once, the kernel free: the app shows in the cell.

    In Google Colab the cell shows it through Colab's own proxy; ``share=True`` adds a public link to
    open in another tab or on another device.

    Args:
        auth: a login, ``("user", "password")`` or ``"user:password"``; default ``$PETBREEDS_AUTH``, else none.
        share: also ask Gradio's share service for a temporary public link. Needs ``auth`` (anyone who
            has the link could use the demo) and internet access; ``ShareLinkError`` if no link can be
            made, and then nothing keeps running.
        port: the port on this machine; default the first free one from 7860 up.
        model: an exported model folder; default the shipped one (``demo/model``).

    Returns:
        A ``RunningDemo``: ``.url``, ``.share_url``, ``.app``, and ``.close()`` to stop it.
    """
    if isinstance(auth, str) or (auth is None and os.environ.get("PETBREEDS_AUTH")):
        text, name = (auth, "auth") if auth is not None else (os.environ["PETBREEDS_AUTH"], "PETBREEDS_AUTH")
        try:
            auth = parse_auth(text)
        except ValueError as err:
            raise ValueError(f"{name}: {err}") from None
    if share and auth is None:
        raise ValueError("share=True needs a login: pass auth=('user', 'password') (or set "
                         "PETBREEDS_AUTH=user:password). Anyone who has the public link could otherwise use the "
                         "demo, upload photos and start trainings.")
    if share:
        print(share_warning(), file=sys.stderr, flush=True)
    settings = DemoSettings(model=Path(model).expanduser().resolve() if model is not None else SHIPPED_MODEL,
                            train_data=default_train_data(), auth=auth)
    app = build_demo(settings)
    launch(app, "127.0.0.1", port, settings.max_file_size, prevent_thread_lock=True, auth=auth, share=share,
           inline=True)
    return RunningDemo(app)


def share_warning() -> str:
    """The one line said when a public link is asked for (on stderr, before the link is made)."""
    from gradio import networking

    share_server = networking.GRADIO_SHARE_SERVER_ADDRESS  # Gradio reads the variable once, at import
    via = (f"the share server at {share_server} (GRADIO_SHARE_SERVER_ADDRESS)" if share_server
           else "Gradio's share servers (gradio.live)")
    return (f"warning: a share link is public: anyone who has it (and the login) can use the demo, upload photos "
            f"and start trainings, for as long as it runs; the link and everything sent through it go through {via}.")


def __getattr__(name: str):
    """``demo``: the app with the default settings, built the first time it is asked for (PEP 562)."""
    if name == "demo":
        globals()["demo"] = built = build_demo(DemoSettings.from_env())
        return built
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _open_share_link(app: gr.Blocks):
    """Ask the share server for a public link to ``app``, which is serving already: ``(url, tunnel)``.
    The tunnel is a program (frpc) that Gradio downloads on first use and runs beside the server."""
    from gradio import networking, tunneling

    address = app.share_server_address or networking.GRADIO_SHARE_SERVER_ADDRESS
    first_new = len(tunneling.CURRENT_TUNNELS)  # Gradio appends each tunnel it starts there
    try:
        # Gradio prints frpc's whole log before it raises; the one line of ShareLinkError keeps its last word.
        with contextlib.redirect_stderr(io.StringIO()):
            url = networking.setup_tunnel(app.server_name, app.server_port, app.share_token,
                                          app.share_server_address, app.share_server_tls_certificate)
    except Exception as err:  # noqa: BLE001  (as in Gradio's share=True: whatever failed, there is no link)
        for tunnel in tunneling.CURRENT_TUNNELS[first_new:]:
            _close_tunnel(tunnel)
        raise ShareLinkError(_why_no_share_link(err, address)) from None
    tunnel = tunneling.CURRENT_TUNNELS[-1] if len(tunneling.CURRENT_TUNNELS) > first_new else None
    return urlunparse((app.share_server_protocol, *urlparse(url)[1:])), tunnel


def _why_no_share_link(err: Exception, address: str | None) -> str:
    """One line for what ``networking.setup_tunnel`` raised: what failed, and what to do."""
    from gradio import networking, tunneling
    from gradio.exceptions import ChecksumMismatchError, ShareCertificateWriteError

    server = f"the share server {address}" if address else "Gradio's share server"
    if address is None and str(err).startswith("Could not get share link"):
        return (f"cannot reach Gradio's share service at {networking.GRADIO_API_SERVER} "
                f"({_one_line(err.__cause__ or err)}); a share link needs internet access: connect this machine, "
                "or use the demo without a share link")
    if isinstance(err, ChecksumMismatchError):
        return f"the tunnel program {tunneling.BINARY_PATH} is damaged (checksum mismatch): delete it and try again"
    if isinstance(err, ShareCertificateWriteError):
        return (f"cannot write the share server's certificate to {Path(tunneling.CERTIFICATE_PATH).resolve()} "
                f"({_one_line(err)}): start the demo from a folder you can write to")
    if not Path(tunneling.BINARY_PATH).is_file():
        return (f"cannot download Gradio's tunnel program (frpc) from {tunneling.BINARY_URL} ({_one_line(err)}): "
                f"connect this machine to the internet, or download that file elsewhere and save it as "
                f"{tunneling.BINARY_PATH} (executable)")
    if str(err).startswith(tunneling.TUNNEL_ERROR_MESSAGE):
        log = [line.strip() for line in str(err).splitlines()[1:] if line.strip()]
        if not log:
            return (f"{server} did not answer within {tunneling.TUNNEL_TIMEOUT_SECONDS} s: check the internet "
                    "connection and try again")
        # frpc's last word, without its time stamp and source line: "login to server failed: EOF"
        said = re.sub(r"^\S+ \S+ \[\w\] \[[^]]*\] ", "", log[-1])
        return f"{server} refused the tunnel ({said}): try again later, or use the demo without a share link"
    return f"{server}: {_one_line(err)}"


def _one_line(err: BaseException) -> str:
    lines = str(err).strip().splitlines()
    return f"{type(err).__name__}: {lines[0]}" if lines else type(err).__name__


def _close_tunnel(tunnel) -> None:
    """Stop a tunnel program and wait for it, so that no stray process is left."""
    proc = getattr(tunnel, "proc", None)
    if proc is None:
        return
    with contextlib.redirect_stdout(io.StringIO()):  # Gradio says "Killing tunnel ..."
        tunnel.kill()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:  # deaf to SIGTERM
        proc.kill()
        proc.wait()


def _show_in_cell(url: str, height: int) -> None:
    """The page behind ``url`` in the notebook cell (Gradio shows its local address, which a hosted
    notebook's browser cannot reach)."""
    try:
        from IPython.display import IFrame, display
    except ImportError:  # not in a notebook
        return
    display(IFrame(url, width="100%", height=height))


if __name__ == "__main__":  # python -m demo.app: the defaults (python -m demo takes options)
    settings = DemoSettings.from_env()
    launch(build_demo(settings), max_file_size=settings.max_file_size, auth=settings.auth)
