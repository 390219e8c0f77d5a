"""Example photos as thumbnails to click: the click sends a position in the list, never a path.

Gradio's own ``gr.Examples`` shows a file input's examples as file names, and clicking one sends
the file back as an upload. A gallery shows the pictures themselves; its ``select`` event carries
the index of the clicked picture, which the server looks up in its own list (``pick``). Whatever
a client sends as that index (a string, a huge number, a negative one), only the server's example
photos can be read through it.
"""

from __future__ import annotations

from pathlib import Path

from engine.data.breeds import display_name

__all__ = ["caption", "example_gallery", "pick"]


def caption(path: Path) -> str:
    """``japanese_chin_109.jpg`` -> ``Japanese Chin (dog)``: the thumbnail's caption, and its name for
    screen readers (``page.PAGE_JS``)."""
    return display_name(Path(path).stem.rsplit("_", 1)[0])


def example_gallery(examples, label: str, elem_id: str):
    """Clickable thumbnails, 4 to a row (call inside ``gr.Blocks``); None when there are no examples.
    Its class ``example-gallery`` lets the columns shrink to a phone's width (``page.PAGE_CSS``)."""
    import gradio as gr

    if not examples:
        return None
    return gr.Gallery([(str(p), caption(p)) for p in examples], label=label, elem_id=elem_id, columns=4,
                      rows=2, height="auto", allow_preview=False, object_fit="cover", interactive=False, buttons=[],
                      elem_classes=["example-gallery"])


def pick(examples, event) -> Path | None:
    """The example photo a gallery ``select`` event points at, or None for anything else."""
    index = getattr(event, "index", None)
    if isinstance(index, (list, tuple)) and len(index) == 1:  # some components send [i]
        index = index[0]
    if type(index) is not int or not 0 <= index < len(examples):  # bool is an int subclass: refused too
        return None
    return Path(examples[index])
