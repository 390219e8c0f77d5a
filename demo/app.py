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
* uploads and result files are deleted an hour after they were written (``delete_cache``), and
  result files are complete before anyone can read them (``outputs.py``);
* it never shows tracebacks to visitors (``show_error=False``, and every handler turns its own
  errors into a message in the page), keeps no run history, renders in the browser (no
  server-side rendering), and needs no internet.
"""

from __future__ import annotations

import matplotlib
import numpy as np

# (demo/__init__.py, which always runs before this module, has set GRADIO_ANALYTICS_ENABLED=False.)
matplotlib.use("Agg")  # the server has no screen; figures are rendered to images for the page

import gradio as gr  # noqa: E402

from engine.serving.predictor import load_predictor  # noqa: E402

from .predict_tab import build_predict_tab  # noqa: E402
from .presize_lab import build_presize_lab  # noqa: E402
from .sessions import SessionModels, TrainingSlots  # noqa: E402
from .settings import DemoSettings, example_photos  # noqa: E402
from .softmax_lab import build_softmax_lab  # noqa: E402
from .train_tab import build_train_tab  # noqa: E402
from .uploads import upload_folder  # noqa: E402

__all__ = ["THEME", "QUEUE_SIZE", "build_demo", "launch", "demo"]

QUEUE_SIZE = 64  # requests waiting at once; trainings never take a place (see train_tab)

# System fonts only: the default theme would fetch its fonts from the internet.
THEME = gr.themes.Default(font=["system-ui", "sans-serif"], font_mono=["ui-monospace", "monospace"])


def build_demo(settings: DemoSettings) -> gr.Blocks:
    """The app for ``settings``: loads the model (once) and lays out the four tabs."""
    predictor = load_predictor(settings.model)
    predictor.predict_details(np.zeros((64, 64, 3), np.uint8))  # warm up, so the first visitor does not wait
    examples = example_photos(settings.train_data)
    allowed = (upload_folder(), *examples)  # the only files a visitor's payload may point at
    sessions = SessionModels(settings.session_models, settings.session_ttl)
    slots = TrainingSlots(settings.trainings, settings.training_queue)
    age = settings.delete_cache_after
    with gr.Blocks(title="petbreeds: which breed is my pet?",
                   delete_cache=(max(1, min(age, 300)), age) if age else None) as app:
        gr.Markdown("# petbreeds\nA cat and dog breed classifier, and labs that show how it works inside.")
        build_predict_tab(predictor, sessions, settings.max_file_size, examples, allowed)
        build_softmax_lab()
        build_presize_lab(settings.max_file_size, examples, allowed)
        build_train_tab(settings.train_data, sessions, slots)
    # Up to 4 predictions at once, labs 2 at a time (set per event); trainings are admitted by ``slots``.
    app.queue(default_concurrency_limit=2, max_size=QUEUE_SIZE)
    app.petbreeds_predictor, app.petbreeds_sessions, app.petbreeds_slots = predictor, sessions, slots
    return app


def launch(app: gr.Blocks, host: str = "127.0.0.1", port: int = 7860, max_file_size: int = 10 * 2**20,
           prevent_thread_lock: bool = False, auth: tuple[str, str] | None = None):
    """Start the server with the safe options described at the top of this module; with ``auth``
    visitors log in first."""
    print(f"petbreeds: the model answers on {app.petbreeds_predictor.runtime_report}", flush=True)
    _remove_old_compiled_models()
    return app.launch(server_name=host, server_port=port, max_file_size=max_file_size, show_error=False,
                      ssr_mode=False, run_history=False, share=False, enable_monitoring=False,
                      mcp_server=False, footer_links=["api"], theme=THEME, auth=auth,
                      auth_message="This petbreeds server asks for the login its operator gave you." if auth else None,
                      prevent_thread_lock=prevent_thread_lock)


def __getattr__(name: str):
    """``demo``: the app with the default settings, built the first time it is asked for (PEP 562)."""
    if name == "demo":
        globals()["demo"] = built = build_demo(DemoSettings.from_env())
        return built
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")



def _remove_old_compiled_models() -> None:
    """Earlier versions compiled the model into shared libraries under ``<cache>/compiled``; nothing
    loads them any more, so they go (a loaded library is code: it should not lie around unused)."""
    import shutil

    from engine.datasets import default_cache_dir

    old = default_cache_dir() / "compiled"
    if old.is_dir() and not old.is_symlink():
        shutil.rmtree(old, ignore_errors=True)
        print(f"petbreeds: removed {old} (compiled models of an earlier version, no longer used)", flush=True)


if __name__ == "__main__":  # python -m demo.app: the defaults (python -m demo takes options)
    settings = DemoSettings.from_env()
    launch(build_demo(settings), max_file_size=settings.max_file_size, auth=settings.auth)
