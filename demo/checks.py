"""Every event is a public HTTP API: each handler checks its own inputs, whatever the page allows.

A slider in the page stops at its ends, but a script can call the same event over HTTP with any
JSON (``/gradio_api/call/...``, or ``/gradio_api/queue/join`` by ``fn_index``, hidden events
included), and events that skip Gradio's preprocessing skip its range checks too. So the
handlers take the page's ranges from here and refuse anything else, huge, negative, NaN or of the
wrong type, with a message for the visitor (``InputRefused``) before any work is done.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["InputRefused", "number", "clamped", "whole_number", "flag", "choice", "with_types"]


class InputRefused(ValueError):
    """An input outside what the page offers; ``str(err)`` is the message to show."""


def number(value, name: str, lo: float, hi: float) -> float:
    """``value`` as a float in ``[lo, hi]``, else ``InputRefused`` naming the input and the range."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InputRefused(f"{name} must be a number between {lo:g} and {hi:g}, not {type(value).__name__}.")
    try:
        value = float(value)
    except OverflowError:  # an int too large for a float: 10**400 is valid JSON
        raise InputRefused(f"{name} must be between {lo:g} and {hi:g}; got a number far too large.") from None
    if not math.isfinite(value) or not lo <= value <= hi:
        raise InputRefused(f"{name} must be between {lo:g} and {hi:g}; got {value:g}.")
    return value


def clamped(value, name: str, lo: float, hi: float) -> tuple[float, str | None]:
    """``value`` as a float moved into ``[lo, hi]``, and a note for the visitor when it had to move.

    For a number the visitor types into a slider's box (50 where the slider stops at 10): the page
    answers for the nearest allowed value instead of going blank. Anything that is not a finite
    number is still ``InputRefused``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InputRefused(f"{name} must be a number between {lo:g} and {hi:g}, not {type(value).__name__}.")
    try:
        value, said = float(value), None
    except OverflowError:  # an int too large for a float: 10**400 is valid JSON
        value, said = (math.inf if value > 0 else -math.inf), "a number far too large"
    if math.isnan(value):
        raise InputRefused(f"{name} must be between {lo:g} and {hi:g}; got nan.")
    if lo <= value <= hi:
        return value, None
    near = min(max(value, lo), hi)
    return near, f"{name} must be between {lo:g} and {hi:g}: {said or format(value, 'g')} was taken as {near:g}."


def whole_number(value, name: str, lo: int, hi: int) -> int:
    """``value`` as an int in ``[lo, hi]`` (a float with no fraction, like a slider's 6.0, is fine)."""
    value = number(value, name, lo, hi)
    if value != int(value):
        raise InputRefused(f"{name} must be a whole number between {lo} and {hi}; got {value:g}.")
    return int(value)


def flag(value, name: str) -> bool:
    """A checkbox: ``True`` or ``False`` only (``None``, as a missing value, counts as unticked)."""
    if value is None:
        return False
    if not isinstance(value, bool):
        raise InputRefused(f"{name} must be ticked or not (true or false), not {type(value).__name__}.")
    return value


def choice(value, name: str, options: Sequence[str]) -> str:
    """One of ``options`` exactly."""
    if not isinstance(value, str) or value not in options:
        raise InputRefused(f"{name} must be one of {', '.join(options)}.")
    return value


def with_types(fn, **types):
    """Tell Gradio the classes of ``fn``'s special arguments (``request=gr.Request``,
    ``evt=gr.SelectData``), which it fills in itself instead of taking them from the payload. With
    postponed annotations (``from __future__ import annotations``) it would find only strings that
    it cannot resolve for a function defined inside another one."""
    fn.__annotations__.update(types)
    return fn
