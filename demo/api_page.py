"""The "Use via API" page: its snippets send one of the demo's own example photos.

Gradio writes each snippet from the example its input components offer (``example_payload()``):
for a file or image input, a PDF or a bus photo on a public URL. Such a snippet fails offline, and
a URL is exactly what this server refuses to fetch (``guard.py``). So every photo input of a named
endpoint offers ``EXAMPLE`` instead, a photo shipped in ``demo/examples/``, named relative to the
repository root: the snippet reads ``handle_file('demo/examples/pug_140.jpg')``, and
``gradio_client`` uploads that file from the visitor's checkout.
"""

from __future__ import annotations

from pathlib import Path

from .settings import SHIPPED_EXAMPLES

__all__ = ["EXAMPLE", "example_payload", "use_shipped_example"]

EXAMPLE = f"{SHIPPED_EXAMPLES.parent.name}/{SHIPPED_EXAMPLES.name}/pug_140.jpg"  # from the repository root


def example_payload(example: str = EXAMPLE) -> dict:
    """Gradio's file data for ``example``, as ``gradio_client.handle_file`` makes it (the page's
    snippet writes ``handle_file(<its url>)``)."""
    return {"path": example, "url": example, "orig_name": Path(example).name, "meta": {"_type": "gradio.FileData"}}


def use_shipped_example(app, example: str = EXAMPLE) -> int:
    """Make every file or image input of ``app``'s API endpoints offer ``example``; returns how many.
    Call it after the layout is built, before the app is launched."""
    import gradio as gr

    changed = set()
    for fn in app.fns.values():
        if not fn.api_name:
            continue
        for component in fn.inputs:
            if isinstance(component, (gr.File, gr.Image)) and id(component) not in changed:
                # instance attributes: they shadow the component's own methods for this component only
                component.example_payload = lambda: example_payload(example)
                component.example_value = lambda: example
                changed.add(id(component))
    return len(changed)
