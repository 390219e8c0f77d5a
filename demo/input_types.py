"""The types of an event's inputs, checked at the front door (``guard.Guard``) before Gradio sees them.

Gradio checks a file input's value (a photo, a file) against the component's data model (its
``FileData``, with the ``meta`` marker) before any handler runs; a script that sends a number, a
list or a string instead gets a bare error, and the server's log gets a pydantic traceback for every
such request. This module runs the same check, with the same data models, on the raw payload, so
the guard can refuse the request with one line (422) and the log stays clean.

The three ways in: ``/gradio_api/queue/join`` (and ``/run/NAME``) send every input in order,
``/gradio_api/call/NAME`` may leave out the inputs hidden from the API, and ``/call/v2/NAME`` names
them (mapped to their places as Gradio maps them, with the API page's parameter names).

Only the inputs whose component has a data model are checked (files and photos here); the other
values (numbers, ticks, choices) reach the handlers as sent, which check them (``checks.py``).
"""

from __future__ import annotations

__all__ = ["FILE_SHAPE", "input_problem", "InputTypes"]

FILE_SHAPE = ('a file uploaded to this server, {"path": "<the path the upload answered>", '
              '"meta": {"_type": "gradio.FileData"}}, or null')


KINDS = {dict: "an object", list: "a list", str: "a string", bool: "true or false", int: "a number", float: "a number"}


def _kind(value) -> str:
    """What a JSON value is, in words: "a number", "a list"..."""
    return "null" if value is None else KINDS.get(type(value), type(value).__name__)


def _is_file_model(model) -> bool:
    from gradio.data_classes import FileData, ImageData, ListFiles

    return isinstance(model, type) and issubclass(model, (FileData, ImageData, ListFiles))


def input_problem(block_fn, data, simple: bool = False) -> str | None:
    """Why ``data`` (an event's input values, a list in the inputs' order) does not fit the data
    models of event ``block_fn``'s inputs (a Gradio ``BlockFunction``), or None.

    ``simple``: the data came to ``/gradio_api/call/NAME``, which may leave out the inputs hidden
    from the API (Gradio puts null in their places)."""
    from pydantic import ValidationError

    if not isinstance(data, list):
        return f"This request's data must be a list of the event's {len(block_fn.inputs)} input values."
    shown = [block for block in block_fn.inputs if not getattr(block, "skip_api", False)]
    if simple and len(data) != len(block_fn.inputs) and len(data) == len(shown):
        values = iter(data)
        data = [None if getattr(block, "skip_api", False) else next(values) for block in block_fn.inputs]
    if len(data) < len(block_fn.inputs):
        return (f"This event takes {len(block_fn.inputs)} input values; the request sent {len(data)} "
                "(the API page lists them).")
    prop_inputs = set(getattr(block_fn, "component_prop_inputs", None) or ())
    for i, (block, value) in enumerate(zip(block_fn.inputs, data)):
        model = getattr(block, "data_model", None)
        if value is None or model is None or getattr(block, "stateful", False) or i in prop_inputs:
            continue
        try:
            model.model_validate(value, context={"validate_meta": True})
        except (ValidationError, ValueError, TypeError, AttributeError):  # {"meta": 5}: Gradio's own check fails
            name = getattr(block, "label", None) or type(block).__name__
            shape = FILE_SHAPE if _is_file_model(model) else f"what the page sends for a {type(block).__name__}"
            return f"Input {i + 1} of this event (\"{name}\") must be {shape}, not {_kind(value)}."
    return None


class InputTypes:
    """``input_problem`` for the events of one app (a ``gr.Blocks``), as ``guard.Guard`` calls it:
    ``(fn_index, data, route)``, ``route`` one of "queue", "simple" (``/call/NAME``), "named" (``/call/v2/NAME``)."""

    def __init__(self, app):
        self.app, self._parameters = app, None

    def named_values(self, block_fn, body) -> list | str:
        """The values of a ``/call/v2/NAME`` body (inputs by name) in the inputs' order, or why it has none."""
        from gradio_client.utils import construct_args

        if self._parameters is None:  # the events do not change once the app runs
            self._parameters = {name: info["parameters"]
                                for name, info in self.app.get_api_info()["named_endpoints"].items()}
        parameters = self._parameters.get(f"/{block_fn.api_name}")
        if parameters is None or not isinstance(body, dict):
            return "This event takes its inputs by name: send a JSON object (the API page lists them)."
        try:
            return construct_args(parameters, (), {k: v for k, v in body.items() if k != "oauth_token"})
        except (TypeError, ValueError) as err:
            return str(err).split(" Please click")[0] + " (the API page lists the inputs)."

    def __call__(self, index: int, data, route: str = "queue") -> str | None:
        block_fn = self.app.fns[index]
        if route == "named":
            data = self.named_values(block_fn, data)
            if isinstance(data, str):
                return data
        return input_problem(block_fn, data, simple=route != "queue")
