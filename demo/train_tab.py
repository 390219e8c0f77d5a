"""Tab 4, "Train": the lesson's recipe run live on the data the server operator chose.

1. the data: ``DataLoaders.from_path`` (a labels CSV, or a folder of photos named by breed);
2. a pretrained model with a new head (``vision_learner``), optionally in mixed precision;
3. the body's features of every photo, computed once (``frozen_phase.FrozenPhase``): while the body
   is frozen it is a fixed function, so the head can train on stored features, many times faster;
4. the LR finder on those features, with its three suggestions;
5. ``fine_tune``: the head alone for a few epochs, then (if asked) the whole model unfrozen, with
   discriminative learning rates (the earliest layers change least);
6. interpretation on the validation photos: confusion matrix and the most confused pairs;
7. export (safetensors + JSON) and load it back as a ``Predictor`` that tab 1 can use for this
   visitor's session only (kept in ``sessions.SessionModels``): the shipped model is never replaced.

Visitors choose numbers, never paths: the data is fixed by ``--train-data`` when the server starts,
and every number is checked against the page's ranges by the handler. Who may train is decided by
``sessions.TrainingSlots`` before any work starts.
"""

from __future__ import annotations

import dataclasses
import logging
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from engine.data.breeds import display_name
from engine.data.preprocessing import Preprocessing
from engine.learning.callbacks import Callback, Order
from engine.numerics import NonFiniteError
from engine.recipe import Recipe, TrainingResult, TrainingRun

from .checks import InputRefused, flag, number, whole_number, with_types
from .sessions import Refused, session_key, visitor_key
from .settings import TRAINING_DISABLED

__all__ = ["TrainResult", "ReportProgress", "DEMO_RECIPE", "lr_table", "visitor_recipe", "confusion_figure",
           "train_model", "build_train_tab"]

log = logging.getLogger(__name__)

DATA_UNREADABLE = ("The server's training data could not be read, so training cannot run. The operator should "
                   "check the --train-data option (the details are in the server's log).")


@dataclasses.dataclass
class TrainResult:
    """What the tab shows so far; ``train_model`` yields an updated copy as each step begins."""

    status: str = ""
    lr_plot: object = None  # matplotlib figures
    loss_plot: object = None
    sched_plot: object = None
    lr_rows: list = dataclasses.field(default_factory=list)  # per parameter group
    confusion_plot: object = None
    confused_rows: list = dataclasses.field(default_factory=list)  # (actual, predicted, count)
    predictor: object = None  # the session's model, once exported and loaded
    suggestions: dict = dataclasses.field(default_factory=dict)
    valid_error: float | None = None


class ReportProgress(Callback):
    """Report each training batch to ``report(fraction, description)`` (a Gradio progress bar).

    One instance follows several fits in turn (add it to each learner); each fit takes the next
    name from ``phases``.
    """

    order = Order.REPORT

    def __init__(self, report: Callable[[float, str], None], phases: list[str]):
        self.report, self.phases, self.phase = report, list(phases), "training"

    def before_fit(self, learn):
        if self.phases:
            self.phase = self.phases.pop(0)

    def after_batch(self, learn):
        if not learn.training:
            return
        n = len(learn.dl)
        done, total = learn.epoch * n + learn.iter + 1, max(learn.n_epochs * n, 1)
        self.report(min(done / total, 1.0), f"{self.phase}: epoch {learn.epoch + 1}/{learn.n_epochs}, "
                                            f"batch {learn.iter + 1}/{n}")


def lr_table(learn) -> list[list[str]]:
    """Per parameter group: its size and the peak learning rate it got in each phase (from the recorder)."""
    groups = learn.param_groups()
    names = [f"body group {i + 1} (earliest layers first)" if i == 0 else f"body group {i + 1}"
             for i in range(len(groups) - 1)] + ["head"]
    frozen = [lrs[-1] for lrs in learn.recorder.lrs if len(lrs) == 1]  # the frozen phase trains the head only
    unfrozen = [lrs for lrs in learn.recorder.lrs if len(lrs) == len(groups)]
    rows = []
    for i, (name, params) in enumerate(zip(names, groups)):
        peak_frozen = f"{max(frozen):.2e}" if frozen and i == len(groups) - 1 else "frozen"
        peak_unfrozen = f"{max(lrs[i] for lrs in unfrozen):.2e}" if unfrozen else "not run (0 epochs)"
        rows.append([name, f"{sum(p.numel() for p in params):,}", peak_frozen, peak_unfrozen])
    return rows


def _figure(fig):
    """Detach a pyplot figure from pyplot's registry (it would otherwise live until closed)."""
    import matplotlib.pyplot as plt

    plt.close(fig)
    return fig


# The Train tab's recipe: the chapter's path (the LR finder, then fine_tune from a random head) at
# the demo model's size, in a minute or so on two CPU cores. The visitor sets the epochs, the rate
# and mixed precision (``visitor_recipe``; the page starts from these values); everything else is
# the shared recipe's (engine/recipe.py).
DEMO_RECIPE = Recipe(preprocessing=Preprocessing(), head_init="random", find_lr=True, freeze_epochs=8, base_lr=2e-3)

TRAINING_FAILED = ("**Training failed** with an unexpected error (the details are in the server's log). "
                   "Try again, perhaps with a smaller learning rate or fewer epochs.")


def visitor_recipe(epochs: int, freeze_epochs: int, find_lr: bool, base_lr: float, mixed_precision: bool) -> Recipe:
    """``DEMO_RECIPE`` with the page's choices: the epochs of both phases, the LR finder's valley or
    ``base_lr``, and mixed precision (bfloat16 on the CPU, float16 on a GPU)."""
    return dataclasses.replace(DEMO_RECIPE, epochs=int(epochs), freeze_epochs=int(freeze_epochs),
                               find_lr=bool(find_lr), base_lr=float(base_lr), mixed_precision=bool(mixed_precision))


class DataUnreadable(Exception):
    """The operator's training data could not be read (the first step failed)."""


class Status:
    """The numbered lines of the tab's status: one per step, reported as each step begins."""

    def __init__(self, report: Callable[[float | None, str], None]):
        self.report, self.lines = report, []

    def show(self, shown: TrainResult, line: str | None = None) -> TrainResult:
        """Add ``line`` (when given), and return a copy of ``shown`` with the status as it is now."""
        if line is not None:
            self.lines.append(line)
            self.report(None, line)  # no fraction: steps without batches show their description alone
        shown.status = str(self)
        return dataclasses.replace(shown)

    def __str__(self) -> str:
        return "\n".join(f"{i + 1}. {s}" for i, s in enumerate(self.lines))


def _phases(recipe: Recipe) -> list[str]:
    """The names of the fits the progress bar follows, in order."""
    return (["LR finder"] * recipe.find_lr + ["head only (frozen body)"] * (recipe.freeze_epochs > 0) +
            ["whole model (unfrozen)"])


def _announcements(recipe: Recipe) -> dict[str, str]:
    """What the status says as each step (``TrainingRun.plan``'s names, then "export") begins."""
    return {
        "data": "Reading the training data...",
        "model": f"Loading the pretrained model ({recipe.arch}) and its new head...",
        "features": f"Computing the body's features once: every training photo x {recipe.views} views, every "
                    "validation photo and its mirror image (the body is frozen, so the head can train on these; "
                    "those without randomness are taken from the last training of the same photos)...",
        "lr_find": "LR finder: the learning rate grows each batch while the loss is recorded...",
        "fine_tune": f"fine_tune: {recipe.freeze_epochs} head-only epochs" +
                     (" on the cached features" if recipe.cache_features else "") +
                     (f", then {recipe.epochs} unfrozen epoch(s) of the whole model (the slow part)"
                      if recipe.epochs else "") + "...",
        "report": "Interpreting: every validation photo and its mirror image...",
        "export": "Exporting the model (safetensors + JSON) and loading it back...",
    }


def _steps(run: TrainingRun) -> Iterator[tuple[str, TrainingResult]]:
    """``run.steps()``, with an error in its first step (reading the data) raised as ``DataUnreadable``."""
    steps = run.steps()
    try:
        yield next(steps)
    except (OSError, ValueError) as err:
        raise DataUnreadable() from err
    yield from steps


def _show_step(name: str, result: TrainingResult, shown: TrainResult, status: Status) -> None:
    """Put on the page what step ``name`` made: its status line, a figure, a table."""
    from engine.learning.plots import plot_loss, plot_lr_find, plot_sched

    if name == "data":
        dls = result.dls
        status.lines[-1] = (f"Data: {len(dls.train.dataset)} training and {len(dls.valid.dataset)} validation "
                            f"photos, {len(dls.vocab)} breeds.")
    elif name == "lr_find":
        shown.suggestions = dict(result.lr_found.suggestions)
        shown.lr_plot = _figure(plot_lr_find(result.lr_found))
        sugg = ", ".join(f"{k} {v:.1e}" for k, v in shown.suggestions.items())
        status.lines[-1] = f"LR finder suggests {sugg}; using base LR {result.base_lr:.1e} (valley)."
    elif name == "fine_tune":
        status.lines[-1] += f" Done, at base LR {result.base_lr:.1e}."
        shown.loss_plot = _figure(plot_loss(result.learn.recorder))
        shown.sched_plot = _figure(plot_sched(result.learn.recorder))
        shown.lr_rows = lr_table(result.learn)
    elif name == "report":
        shown.valid_error = result.report["valid_error"]
        shown.confusion_plot = _figure(confusion_figure(result.interp))
        shown.confused_rows = [[display_name(actual), display_name(predicted), count]
                               for actual, predicted, count in result.interp.most_confused(min_val=1)[:10]]


# The confusion matrix fills the page's width (about 1,200 px at 1366x900): at most 12 inches at
# matplotlib's 100 dpi, so the picture is shown at its own size and a 9-point breed name is 12.5 px
# high on the screen (half-width at 7 points it was about 5 px).
CONFUSION_INCHES, CONFUSION_POINTS = 12.0, 9


def confusion_figure(interp):
    """The validation confusion matrix as the tab shows it: breeds by their names, readable at full width."""
    side = min(CONFUSION_INCHES, max(6.0, 0.33 * len(interp.vocab)))
    return interp.plot_confusion_matrix(figsize=(side, side), labels=[display_name(b) for b in interp.vocab],
                                        fontsize=CONFUSION_POINTS)


def _export_and_load(result: TrainingResult):
    """The trained model exported (float16) and loaded back as a ``Predictor``, all in memory."""
    from engine.serving.predictor import load_predictor

    with tempfile.TemporaryDirectory(prefix="petbreeds-session-") as folder:
        result.export(folder, half=True)
        return load_predictor(folder)  # all in memory now: the folder can go


def _done_line(result: TrainingResult) -> str:
    return (f"Done in {time.perf_counter() - result.start:.0f} s: validation error {result.report['valid_error']:.1%} "
            f"on {len(result.dls.valid.dataset)} photos (with test-time augmentation). Tick \"Use the model I "
            "trained\" in tab 1 to try it; it lasts for this browser session only.")


def train_model(data: str | Path | None, recipe: Recipe = DEMO_RECIPE,
                report: Callable[[float | None, str], None] | None = None) -> Iterator[TrainResult]:
    """Run ``recipe`` on ``data``, yielding a ``TrainResult`` as each step begins; the last holds the predictor.

    Args:
        data: the operator's labels CSV (images/ beside it) or image folder; None: training is off.
        recipe: the choices (``visitor_recipe``'s; the tests pass smaller sizes).
        report: called with (fraction done or None, description) during each step.
    """
    report = report or (lambda fraction, description: None)
    if data is None:
        yield TrainResult(status=TRAINING_DISABLED)
        return
    run = TrainingRun(data, recipe, progress=False, cbs=[ReportProgress(report, _phases(recipe))],
                      on_features=lambda fraction: report(fraction, "computing the body's features"))
    shown, status, announce = TrainResult(), Status(report), _announcements(recipe)
    try:
        yield status.show(shown, announce["data"])
        for (name, result), following in zip(_steps(run), run.plan()[1:] + ["export"]):
            _show_step(name, result, shown, status)
            yield status.show(shown, announce[following])
        shown.predictor = _export_and_load(result)
        status.lines.append(_done_line(result))
        report(1.0, "done")
        yield status.show(shown)
    except DataUnreadable:
        log.exception("could not read the training data %s", data)
        yield dataclasses.replace(shown, status=DATA_UNREADABLE)
    except NonFiniteError as err:  # its message names the step and suggests a smaller learning rate
        yield dataclasses.replace(shown, status=f"{status}\n\n**Training stopped:** {err}")
    except Exception:
        log.exception("training failed")
        yield dataclasses.replace(shown, status=f"{status}\n\n{TRAINING_FAILED}")


# The page's ranges, which the handler enforces too (an HTTP call can send anything).
EPOCHS, FREEZE_EPOCHS, BASE_LR = (0, 3), (1, 32), (1e-6, 1.0)


def build_train_tab(data: Path | None, sessions, slots) -> None:
    """Tab 4's components and events (call inside ``gr.Blocks``).

    Args:
        data: the operator's training data, or None (training off).
        sessions: the ``sessions.SessionModels`` where a finished model is kept for its session.
        slots: the server-wide ``sessions.TrainingSlots``: who may train now.
    """
    import gradio as gr

    with gr.Tab("Train", id="train"):
        if data is None:
            gr.Markdown(TRAINING_DISABLED, elem_id="train-status")
            return
        gr.Markdown("Fine-tune the pretrained model on the server's pet photos, watch the LR finder, the losses "
                    "and the confusion matrix, then try your model in tab 1 (for this session only). "
                    f"{slots.running} training runs at a time and {slots.waiting} can wait; when more visitors ask, "
                    "they are told how long to wait.")
        with gr.Row():  # min_width: on a phone the controls stack instead of squeezing their labels
            epochs = gr.Slider(*EPOCHS, value=DEMO_RECIPE.epochs, step=1, label="Unfrozen epochs",
                               info="0 by default: each runs the whole model over every training photo, slow "
                                    "on a CPU (the head-only phase on cached features is fast)", min_width=240)
            freeze_epochs = gr.Slider(*FREEZE_EPOCHS, value=DEMO_RECIPE.freeze_epochs, step=1,
                                      label="Head-only epochs (on cached features: fast)", min_width=240)
        with gr.Row():  # a checkbox keeps its own narrow width in a row: a column of its own lets them stack
            with gr.Column(min_width=240):
                use_suggestion = gr.Checkbox(value=DEMO_RECIPE.find_lr,
                                             label="Use the LR finder's 'valley' suggestion as base LR")
            with gr.Column(min_width=240):
                base_lr = gr.Number(value=DEMO_RECIPE.base_lr, label="Base LR (when not using the suggestion)",
                                    minimum=BASE_LR[0], maximum=BASE_LR[1])
            with gr.Column(min_width=240):
                mixed = gr.Checkbox(value=DEMO_RECIPE.mixed_precision, label="Mixed precision (bfloat16 on this CPU)")
        run = gr.Button("Find a learning rate, then train", variant="primary")
        status = gr.Markdown(elem_id="train-status")
        with gr.Row():
            lr_plot = gr.Plot(label="LR finder")
            loss_plot = gr.Plot(label="Losses")
        sched_plot = gr.Plot(label="Learning rate and momentum per step (one-cycle)")
        lr_rows = gr.Dataframe(headers=["parameter group", "parameters", "peak LR, head-only phase",
                                        "peak LR, unfrozen phase"], label="Learning rate per parameter group",
                               interactive=False)
        confusion = gr.Plot(label="Confusion matrix (validation)")  # the full width: its 37 names stay readable
        confused = gr.Dataframe(headers=["actual", "predicted", "count"], label="Most confused pairs",
                                interactive=False)
        outputs = [status, lr_plot, loss_plot, sched_plot, lr_rows, confusion, confused]

        def run_training(epochs, freeze_epochs, use_suggestion, base_lr, mixed, request: gr.Request,
                         progress=gr.Progress()):  # noqa: B008 (Gradio's way to ask for a progress bar)
            def only(text):  # a message, the rest of the page as it is
                return text, *[gr.skip()] * (len(outputs) - 1)

            try:
                epochs = whole_number(epochs, "The number of unfrozen epochs", *EPOCHS)
                freeze_epochs = whole_number(freeze_epochs, "The number of head-only epochs", *FREEZE_EPOCHS)
                use_suggestion = flag(use_suggestion, "\"Use the LR finder's suggestion\"")
                mixed = flag(mixed, "\"Mixed precision\"")
                base_lr = number(base_lr, "The base LR", *BASE_LR)
            except InputRefused as err:
                yield only(f"**Cannot train:** {err}")
                return
            session, visitor = session_key(request), visitor_key(request)
            try:
                ticket = slots.enter(visitor)  # one training per visitor (address), whatever session ids it sends
            except Refused as err:
                yield only(str(err))
                return
            try:
                if not ticket.start(block=False):
                    yield only(f"Waiting for the training before yours to finish (about {slots.minutes_left()} min); "
                               "yours starts right after it.")
                    ticket.start()
                recipe = visitor_recipe(epochs, freeze_epochs, use_suggestion, base_lr, mixed)
                for r in train_model(data, recipe,
                                     report=lambda fraction, description: progress(fraction, desc=description)):
                    if r.predictor is not None:
                        sessions.put(session, r.predictor)
                    yield (r.status, r.lr_plot, r.loss_plot, r.sched_plot, r.lr_rows, r.confusion_plot,
                           r.confused_rows)
            finally:
                ticket.release()

        # No concurrency limit and no place in the queue: every click is answered at once, by the
        # admission desk (``slots``), so trainings can never fill the queue that photos need.
        # preprocess=False: the handler checks the values as sent (see checks.py), wrong types included.
        run.click(with_types(run_training, request=gr.Request),
                  [epochs, freeze_epochs, use_suggestion, base_lr, mixed], outputs, preprocess=False,
                  concurrency_limit=None, concurrency_id="train", api_name="train")
