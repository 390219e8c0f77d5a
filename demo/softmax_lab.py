"""Tab 2, "Softmax & cross-entropy lab": move a few activations and watch the loss functions answer.

Every number on the page comes from ``engine.losses`` and ``engine.numerics``, the code the model
trains with, so what a student sees here is exactly what happens in training:

* softmax turns activations into probabilities that sum to 1, and *amplifies* differences (an
  activation 2 higher gets e^2, about 7.4 times the probability); dividing the activations by a
  temperature below 1 amplifies them more, above 1 evens them out;
* cross-entropy is log-softmax followed by NLL: minus the log-probability of the true class;
* sigmoid gives each class its own yes/no (multi-label): the probabilities need not sum to 1;
* the log domain: ``log(-2)`` has no answer (Python refuses, PyTorch returns nan) and ``exp`` of a
  huge logit overflows, which is why the engine computes ``log_softmax`` from the logits directly.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Sequence

import torch

from engine.losses import binary_cross_entropy_with_logits, cross_entropy, log_softmax, nll_loss, sigmoid, softmax
from engine.numerics import compare_softmax, log_of

from .checks import InputRefused, choice, clamped, number, with_types
from .sessions import session_key

__all__ = ["CLASSES", "DEFAULT_ACTIVATIONS", "softmax_numbers", "softmax_lab", "log_lab", "huge_logit_lab",
           "build_softmax_lab"]

log = logging.getLogger(__name__)

CLASSES = ("Abyssinian", "Bengal", "beagle", "boxer", "pug")
DEFAULT_ACTIVATIONS = (1.0, -0.5, 3.0, 0.5, 2.0)
HEADERS = ["class", "activation", "exp(activation)", "softmax", "softmax at T", "log_softmax", "sigmoid"]
ACTIVATION, TEMPERATURE = (-10.0, 10.0), (0.1, 5.0)  # the sliders' ranges, enforced by the handler too
OUT_OF_RANGE = "**Out of range:**"  # the note in front of the explanation when a typed number was moved


def softmax_numbers(activations: Sequence[float], true_class: int, temperature: float = 1.0) -> dict:
    """The engine's softmax, log_softmax, NLL, cross-entropy and sigmoid views of one row of activations.

    Args:
        activations: one activation (logit) per class.
        true_class: index of the correct class.
        temperature: softmax of ``activations / temperature`` is reported as ``softmax_t``.
    """
    if not temperature > 0:
        raise ValueError(f"temperature must be above 0, got {temperature}")
    x = torch.tensor([list(activations)], dtype=torch.float32)  # (1, n_classes): a batch of one
    if not 0 <= true_class < x.shape[1]:
        raise ValueError(f"true_class must be in [0, {x.shape[1] - 1}], got {true_class}")
    target = torch.tensor([true_class])
    one_hot = torch.zeros_like(x)
    one_hot[0, true_class] = 1.0
    log_probs = log_softmax(x)
    return {
        "exp": x.exp()[0].tolist(),
        "softmax": softmax(x)[0].tolist(),
        "softmax_t": softmax(x / temperature)[0].tolist(),
        "log_softmax": log_probs[0].tolist(),
        "nll": float(nll_loss(log_probs, target)),
        "cross_entropy": float(cross_entropy(x, target)),
        "sigmoid": sigmoid(x)[0].tolist(),
        "bce": float(binary_cross_entropy_with_logits(x, one_hot)),
    }


def _plot(numbers: dict, true_class: int, temperature: float):
    from matplotlib.figure import Figure  # not pyplot: figures made in server threads stay independent

    fig = Figure(figsize=(7, 3.2))
    ax = fig.subplots()
    xs = range(len(CLASSES))
    width = 0.27
    ax.bar([i - width for i in xs], numbers["softmax"], width, label="softmax")
    ax.bar(list(xs), numbers["softmax_t"], width, label=f"softmax at T={temperature:g}")
    ax.bar([i + width for i in xs], numbers["sigmoid"], width, label="sigmoid (each on its own)")
    ax.set_xticks(list(xs), [f"{c}\n(true)" if i == true_class else c for i, c in enumerate(CLASSES)])
    ax.set_ylim(0, 1)
    ax.set_ylabel("probability")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def _temperature_note(n: dict, temperature: float) -> str:
    if temperature == 1:
        return "Move the temperature: below 1 sharpens the probabilities, above 1 flattens them."
    change = "sharpens" if temperature < 1 else "flattens"
    return (f"Temperature T={temperature:g} {change} them: the largest share is {max(n['softmax_t']):.1%} instead "
            f"of {max(n['softmax']):.1%}, and they still sum to 1.")


def softmax_lab(true_class: str, temperature: float, *activations: float):
    """Tab 2's handler: ``(table rows, explanation, figure)`` for the activations of ``CLASSES``.

    A number past a slider's end (typed into its box: 50 where the slider stops at 10) is taken as
    that end (``ACTIVATION``, ``TEMPERATURE``), and the explanation starts with a note saying so.
    Anything else the page cannot send (not a number, NaN, a class not in ``CLASSES``) gets a
    message and no numbers."""
    try:
        if len(activations) != len(CLASSES) or any(a is None for a in activations):
            return [], f"Give one finite activation for each of the {len(CLASSES)} classes.", None
        try:  # a number typed past a slider's end is moved to that end, and the page says so
            checked = [clamped(a, f"The activation of {c}", *ACTIVATION) for a, c in zip(activations, CLASSES)]
            temperature, temperature_note = clamped(temperature, "The temperature", *TEMPERATURE)
            true_class = choice(true_class, "The true class", CLASSES)
        except InputRefused as err:
            return [], str(err), None
        activations = tuple(a for a, _ in checked)
        notes = [note for note in (*(n for _, n in checked), temperature_note) if note]
        k = CLASSES.index(true_class)
        n = softmax_numbers(activations, k, temperature)
        a, b = sorted(range(len(CLASSES)), key=lambda i: -activations[i])[:2]  # the two largest
        rows = [[c, a, e, p, pt, lp, s] for c, a, e, p, pt, lp, s in
                zip(CLASSES, activations, n["exp"], n["softmax"], n["softmax_t"], n["log_softmax"], n["sigmoid"])]
        rows = [[r[0], *(round(v, 4) for v in r[1:])] for r in rows]
        text = (
            f"**True class: {true_class}.** Softmax gives it {n['softmax'][k]:.1%}; log_softmax "
            f"{n['log_softmax'][k]:.4f}.\n\n"
            f"- **NLL** = minus the log-probability of the true class = **{n['nll']:.4f}**\n"
            f"- **cross-entropy** (engine `cross_entropy`, straight from the activations) = "
            f"**{n['cross_entropy']:.4f}**: the same number, because cross-entropy *is* log_softmax followed by NLL.\n"
            f"- **Softmax amplifies**: {CLASSES[a]}'s activation is {activations[a] - activations[b]:g} above "
            f"{CLASSES[b]}'s, so it gets e^{activations[a] - activations[b]:g} = "
            f"{n['softmax'][a] / n['softmax'][b]:.2f} times the probability. {_temperature_note(n, temperature)}\n"
            f"- **Sigmoid** (multi-label): each class gets its own yes/no, summing to {sum(n['sigmoid']):.3f}, "
            f"not 1; binary cross-entropy with only {true_class} labelled yes = **{n['bce']:.4f}**. A photo can "
            "then be *none* of the classes: every sigmoid can be low at once.")
        if notes:
            text = f"{OUT_OF_RANGE} " + " ".join(notes) + "\n\n" + text
        return rows, text, _plot(n, k, temperature)
    except Exception:
        log.exception("softmax lab failed")
        return [], "Something went wrong computing these numbers; change a value and try again.", None


class _Notes:
    """The last out-of-range note of each page (the newest ``capacity`` pages).

    A slider's box moves a typed 50 back to 10 when the visitor leaves it, and that sends 10 again:
    the note about the 50 stays on the page for as long as it shows the values the note moved to."""

    def __init__(self, capacity: int = 256):
        self.capacity, self._notes = capacity, OrderedDict()
        self._lock = threading.Lock()

    def keep(self, page: str, text: str, temperature, activations) -> str:
        """``text`` with the page's note in front when it still applies; remembers a new note."""
        try:
            shown = (clamped(temperature, "", *TEMPERATURE)[0], *(clamped(a, "", *ACTIVATION)[0] for a in activations))
        except InputRefused:
            shown = None
        with self._lock:
            if text.startswith(OUT_OF_RANGE):
                self._notes[page] = (shown, text[: text.index("\n\n") + 2])
                self._notes.move_to_end(page)
                while len(self._notes) > self.capacity:
                    self._notes.popitem(last=False)
                return text
            kept = self._notes.pop(page, None)
            if kept is not None and shown is not None and kept[0] == shown and text.startswith("**True class"):
                self._notes[page] = kept
                return kept[1] + text
            return text


def log_lab(x: float) -> str:
    """What ``math.log`` and ``torch.log`` do with ``x`` (try -2 and 0), as Markdown."""
    if x is None:
        return "Type a number."
    try:
        x = number(x, "x", -1e300, 1e300)
    except InputRefused as err:
        return str(err)
    out = log_of(x)
    return (f"- `math.log({x:g})` -> `{out['math.log']}`\n- `torch.log(torch.tensor({x:g}))` -> "
            f"`{out['torch.log']}`\n\nA nan or -inf does not stop anything by itself: it silently spreads into "
            "every number computed from it, so the engine never takes the log of a probability.")


def huge_logit_lab(big: float) -> str:
    """Naive ``exp(x) / exp(x).sum()`` against the engine's softmax on ``[big, big - 1, 0]``, as Markdown."""
    try:
        big = number(big, "The logit", -1e30, 1e30)  # float32 holds up to about 3e38
    except InputRefused:
        return "Type a finite number (between -1e30 and 1e30)."
    logits = torch.tensor([[float(big), float(big) - 1.0, 0.0]])
    r = compare_softmax(logits)

    def fmt(t):
        return "[" + ", ".join(f"{v:.4g}" for v in t[0].tolist()) + "]"

    return (f"Logits `[{big:g}, {big - 1:g}, 0]`:\n\n"
            f"| computed by | softmax | log_softmax | all finite? |\n|---|---|---|---|\n"
            f"| naive `exp(x) / exp(x).sum()` | {fmt(r['naive_softmax'])} | {fmt(r['naive_log_softmax'])} | "
            f"{'yes' if r['naive_finite'] else '**no**'} |\n"
            f"| engine (subtract the max; `x - logsumexp(x)`) | {fmt(r['engine_softmax'])} | "
            f"{fmt(r['engine_log_softmax'])} | {'yes' if r['engine_finite'] else '**no**'} |\n\n"
            "In float32 `exp` overflows to inf above about 88, and inf / inf is nan. Subtracting the largest "
            "logit first changes nothing mathematically and keeps every exp at most 1.")


def build_softmax_lab() -> None:
    """Tab 2's components and events (call inside ``gr.Blocks``)."""
    import gradio as gr

    rows, text, fig = softmax_lab("beagle", 1.0, *DEFAULT_ACTIVATIONS)  # the page opens with these
    with gr.Tab("Softmax & cross-entropy lab", id="softmax"):
        gr.Markdown("Move the activations the model gives five classes, pick the true class, and see what "
                    "softmax, log-softmax, NLL and cross-entropy make of them (all computed by the engine).")
        with gr.Row():
            with gr.Column(scale=1):
                sliders = [gr.Slider(*ACTIVATION, value=v, step=0.1, label=f"activation: {c}")
                           for c, v in zip(CLASSES, DEFAULT_ACTIVATIONS)]
                true_class = gr.Radio(list(CLASSES), value="beagle", label="True class")
                temperature = gr.Slider(*TEMPERATURE, value=1.0, step=0.1,
                                        label="Temperature T (softmax of activations / T)")
            with gr.Column(scale=2):
                plot = gr.Plot(fig, label="Probabilities")
                explanation = gr.Markdown(text)
        table = gr.Dataframe(rows, headers=HEADERS, label="Per class", interactive=False)
        inputs = [true_class, temperature, *sliders]
        notes = _Notes()

        def update(true_class, temperature, a, b, c, d, e, request: gr.Request):
            """The lab for these values; an out-of-range note stays while the page shows the values it moved to."""
            rows, text, fig = softmax_lab(true_class, temperature, a, b, c, d, e)
            return rows, notes.keep(session_key(request), text, temperature, (a, b, c, d, e)), fig

        # preprocess=False: the handler gets the values as sent and checks them itself (see checks.py),
        # so a wrong type gets a message too, not only a value out of the sliders' range
        gr.on([control.change for control in inputs], with_types(update, request=gr.Request), inputs,
              [table, explanation, plot], trigger_mode="always_last", show_progress="hidden", api_name=False,
              preprocess=False)
        gr.Markdown("### Why the engine works in the log domain")
        with gr.Row():
            with gr.Column():
                x = gr.Number(value=-2, label="x for log(x)")
                log_out = gr.Markdown(log_lab(-2))
                x.change(log_lab, x, log_out, api_name=False, preprocess=False)
            with gr.Column():
                big = gr.Number(value=1000, label="a huge logit")
                big_out = gr.Markdown(huge_logit_lab(1000))
                big.change(huge_logit_lab, big, big_out, api_name=False, preprocess=False)
