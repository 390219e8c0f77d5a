"""The Gradio app: four tabs, one queue, launched on 127.0.0.1:7860 by ``python -m demo``.

As Gradio apps do, this module builds a module-level ``demo`` (with the default settings) and
launches it under ``if __name__ == "__main__"``; ``python -m demo`` (``demo/__main__.py``) adds
the command-line options. The model is loaded once, when the app is built.

The server is meant for a classroom: it binds to the loopback address unless told otherwise, caps
uploads (``max_file_size``), never shows tracebacks to visitors (``show_error=False``, and every
handler turns its own errors into a message in the page), keeps no run history, renders in the
browser (no server-side rendering), and needs no internet. The queue lets four predictions run at
once while a training (one at a time, in its own group) keeps going, so one visitor's training never
blocks another's photo.
"""

from __future__ import annotations

import threading

import matplotlib
import numpy as np

# (demo/__init__.py, which always runs before this module, has set GRADIO_ANALYTICS_ENABLED=False.)
matplotlib.use("Agg")  # the server has no screen; figures are rendered to images for the page

import gradio as gr  # noqa: E402

from engine.predict import load_predictor  # noqa: E402

from .predict_tab import build_predict_tab  # noqa: E402
from .presize_lab import build_presize_lab  # noqa: E402
from .settings import DemoSettings, example_photos  # noqa: E402
from .softmax_lab import build_softmax_lab  # noqa: E402
from .train_tab import build_train_tab  # noqa: E402

__all__ = ["DEFAULT_SETTINGS", "THEME", "build_demo", "compile_in_background", "launch", "demo"]

# System fonts only: the default theme would fetch its fonts from the internet.
THEME = gr.themes.Default(font=["system-ui", "sans-serif"], font_mono=["ui-monospace", "monospace"])


def build_demo(settings: DemoSettings) -> gr.Blocks:
    """The app for ``settings``: loads the model (once) and lays out the four tabs."""
    predictor = load_predictor(settings.model)
    predictor.predict_details(np.zeros((64, 64, 3), np.uint8))  # warm up, so the first visitor does not wait
    examples = example_photos(settings.train_data)
    with gr.Blocks(title="petbreeds: which breed is my pet?") as app:
        gr.Markdown("# petbreeds\nA cat and dog breed classifier, and labs that show how it works inside.")
        # The model a visitor trained in tab 4, for their session only; dropped an hour after last use.
        session_model = gr.State(None, time_to_live=3600)
        build_predict_tab(predictor, session_model, settings.max_file_size, examples)
        build_softmax_lab()
        build_presize_lab(settings.max_file_size, examples)
        build_train_tab(settings.train_data, session_model)
    # Up to 4 predictions at once, labs 2 at a time, training 1 (set per event); at most 64 waiting.
    app.queue(default_concurrency_limit=2, max_size=64)
    app.petbreeds_predictor = predictor  # for ``launch(compile_model=True)``
    return app


def compile_in_background(predictor) -> threading.Thread:
    """Compile the model (``Predictor.compile``) in a daemon thread, saying so on the console.

    The server answers from the start; single-photo predictions get about 1.5 times faster once the
    compiled model has been checked and switched in (half a minute or more the first time on a
    machine, in a child process; a moment when the cache has it)."""
    def run():
        print("petbreeds: preparing the compiled model in the background (the first time on this machine "
              "it takes half a minute or more; photos are answered meanwhile, a little slower)", flush=True)
        predictor.compile()
        print(f"petbreeds: {predictor.compile_report}", flush=True)

    thread = threading.Thread(target=run, name="petbreeds-compile", daemon=True)
    thread.start()
    return thread


def launch(app: gr.Blocks, host: str = "127.0.0.1", port: int = 7860, max_file_size: int = 10 * 2**20,
           prevent_thread_lock: bool = False, compile_model: bool = False):
    """Start the server with the safe options described at the top of this module; with
    ``compile_model`` the model is compiled in the background (``compile_in_background``)."""
    if compile_model:
        compile_in_background(app.petbreeds_predictor)
    return app.launch(server_name=host, server_port=port, max_file_size=max_file_size, show_error=False,
                      ssr_mode=False, run_history=False, share=False, enable_monitoring=False,
                      mcp_server=False, footer_links=["api"], theme=THEME,
                      prevent_thread_lock=prevent_thread_lock)


DEFAULT_SETTINGS = DemoSettings.from_env()
demo = build_demo(DEFAULT_SETTINGS)

if __name__ == "__main__":  # python -m demo.app: the defaults (python -m demo takes options)
    launch(demo, max_file_size=DEFAULT_SETTINGS.max_file_size)
