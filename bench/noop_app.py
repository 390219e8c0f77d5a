"""A Gradio app of the same shape as the demo's predict event, that does nothing: Gradio's own ceiling.

    python bench/noop_app.py --port 7861 [--max-file-size 10mb]

``bench/demo.py`` starts it in a child process, as it starts the demo, and loads it with the same
clients, so ``vs_noop_gradio`` (the demo's requests/s over this app's) says how close the demo comes
to what Gradio itself can serve on the machine. "The same shape" here means:

* the same event as the demo's ``/predict``: a photo (``gr.Image``, upload, webcam and clipboard,
  ``type="filepath"``) and a checkbox in; a ``gr.Label``, a ``gr.Markdown``, two ``gr.Image`` outputs
  (the plain square, hidden, and the square with the map, ``format="jpeg"``) and a hidden ``gr.JSON``
  (the answer by breed id) out; ``preprocess=False``, ``concurrency_limit=4``, ``api_name="predict"``;
* the same queue (``default_concurrency_limit=2``, 64 places, no summaries of past events: see
  ``demo/__init__.py``) and the same ``launch`` options as ``demo/app.py`` (no server-side
  rendering, no run history, no monitoring, no MCP, 256 sessions, the upload limit);
* the handler answers at once: a fixed top 5 and message, and the uploaded photo itself back as
  both previews (Gradio still hashes each returned file and copies it into its cache if it is not
  there: the uploaded photo is already there). No decoding, no model, no encoding, no result files
  of its own, and none of the demo's front door (``guard.py``) or per-visitor limits: all of that
  is what the demo costs beyond Gradio, which is what the ratio measures.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"  # as demo/__init__.py: offline, no usage statistics
os.environ.setdefault("GRADIO_ANALYTICS_CACHE_FREQUENCY", str(2**62))  # as demo/__init__.py: no queue summaries

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's demo/, for its settings

TOP5 = {"Pug (dog)": 0.9, "Boxer (dog)": 0.04, "Beagle (dog)": 0.03, "Chihuahua (dog)": 0.02, "Havanese (dog)": 0.01}
MESSAGE = ("### Pug (dog)\nA **dog** (99% summed over the dog breeds); this breed: 90%.\n\n"
           "Took 0 ms with the no-op app (nothing was computed).")
ANSWER = {"label": "pug", "verdict": "breed", "top5": [{"id": "pug", "name": "Pug (dog)", "probability": 0.9}]}


def build_app():
    """The no-op app (see the module's docstring)."""
    import gradio as gr

    with gr.Blocks(title="no-op") as app:
        photo = gr.Image(label="Your photo", sources=["upload", "webcam", "clipboard"], type="filepath", height=300)
        use_own = gr.Checkbox(label="Use the model I trained", value=False)
        top5 = gr.Label(num_top_classes=5, label="Top 5 breeds")
        message = gr.Markdown("No photo yet")
        seen = gr.Image(label="seen", interactive=False, type="filepath", format="jpeg", visible=False)
        looked = gr.Image(label="looked", interactive=False, type="filepath", format="jpeg")
        answer = gr.JSON(visible=False)

        def predict(photo, use_session_model):
            path = photo.get("path") if isinstance(photo, dict) else photo
            return TOP5, MESSAGE, path, path, ANSWER

        photo.change(predict, [photo, use_own], [top5, message, seen, looked, answer], api_name="predict",
                     preprocess=False, concurrency_limit=4, concurrency_id="predict")
    app.queue(default_concurrency_limit=2, max_size=64)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--max-file-size", default="10mb")
    args = parser.parse_args()
    from demo.settings import parse_size

    build_app().launch(server_name="127.0.0.1", server_port=args.port, max_file_size=parse_size(args.max_file_size),
                       show_error=False, state_session_capacity=256, ssr_mode=False, run_history=False, share=False,
                       enable_monitoring=False, mcp_server=False, quiet=True)


if __name__ == "__main__":
    main()
