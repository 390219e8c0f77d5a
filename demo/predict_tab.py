"""Tab 1, "Which breed is my pet?": a photo in, the top 5 breeds out, and an honest "I don't know".

The breed model ends in a softmax over its 37 breeds, and a softmax always shares out 100%: shown a
car, it still names a breed, sometimes confidently. So every answer is checked with a second
opinion that *can* say "none of these": the original ImageNet classifier on the same features
(1000 kinds of things, 123 of them cats and dogs). ``judge`` turns the two into one of:

    too_small  the photo is too small to show a breed (``TOO_SMALL_BELOW`` pixels): say so, ask for a larger one
    breed      a breed, the chance it is a cat or a dog, and the time it took
    unsure     no breed gets ``UNSURE_BELOW`` of the probability: say so, with the two best guesses
    disagree   ImageNet sees no cat or dog, but the breed model is sure (``DISAGREE_FROM``): say both
    not_a_pet  ImageNet sees no cat or dog (under ``NOT_A_PET_BELOW`` on them, its top class none of
               them) and the breed model is not sure enough to outvote it: say what ImageNet sees

The engine's ``Prediction`` decides which (``Prediction.verdict``, with the thresholds beside it in
``engine/serving/prediction.py``; ``python -m engine.predict`` writes the same verdict) and carries
the pixels the model saw, which the page shows. ``judge`` only words it.

Uploads go through ``uploads.read_photo`` (our checks, then the engine's decoder); Gradio only
stores the file, it never decodes it (see ``build_predict_tab``).

Breeds are shown by their names (``display_name``: "British Shorthair (cat)"); ``Verdict`` keeps the
ids (``label``, ``probabilities``), as the exports and ``engine.predict`` do, and so does the API:
``/predict`` and ``/predict_example`` end with a hidden JSON output, ``api_answer``, which scripts read
instead of the page's names.

What an answer costs beyond the model (``bench/demo.py``'s ``answer_p50_ms``): two 224x224 JPEGs,
the plain square and the square with the map (both are sent, so that the "Show where the model
looked" box switches between them in the browser, with no round trip), written straight into
Gradio's cache (``outputs.py``); the overlay, in uint8 (``engine.cam.overlay``); and with flagging
on, a small copy of the photo (``flagging.py``).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import numpy as np

from engine.data.breeds import display_name, is_cat
from engine.serving.prediction import Prediction  # its "not a pet" rule is shared with engine.predict

from .checks import InputRefused, flag, with_types
from .examples import example_gallery, pick
from .flagging import build_flag_control, remembering
from .outputs import image_file
from .page import SHOW_VERDICT_JS
from .sessions import InFlight, session_key, visitor_key
from .uploads import NO_PHOTO, UploadRefused, read_photo

__all__ = ["Verdict", "judge", "predict_photo", "classify", "looked_file", "api_answer", "build_predict_tab"]

log = logging.getLogger(__name__)


@dataclass
class Verdict:
    """What the page shows for one photo. ``kind``: breed, unsure, disagree, not_a_pet, too_small, refused or no_photo
    (and busy, for ``api_answer``: no prediction, the visitor had too many photos on their way)."""

    kind: str
    message: str  # Markdown for the page
    label: str | None = None  # the breed model's top breed
    probabilities: dict[str, float] = field(default_factory=dict)  # every breed
    imagenet: list[tuple[str, float]] | None = None  # ImageNet's top classes
    pet_probability: float | None = None  # ImageNet's mass on cats and dogs
    cat_probability: float | None = None  # the breed model's mass on cat breeds
    milliseconds: float | None = None  # decode + preprocess + forward
    preview: np.ndarray | None = None  # the pixels the model looked at (``Prediction.pixels``)
    photo: np.ndarray | None = None  # the decoded upload, never shown (kept for "Wrong breed?": flagging.py)
    cam: np.ndarray | None = None  # where it looked for its top breed, 0..1 over ``preview`` (``Prediction.cam``)

    @property
    def top5(self) -> dict[str, float]:
        """The five likeliest breeds, by id (empty when the page should not show breeds)."""
        if self.kind not in ("breed", "unsure", "disagree"):
            return {}
        return dict(sorted(self.probabilities.items(), key=lambda kv: -kv[1])[:5])

    @property
    def top5_named(self) -> dict[str, float]:
        """``top5`` as the page shows it: "Keeshond (dog)" instead of ``keeshond``."""
        return {display_name(breed): p for breed, p in self.top5.items()}


def _pct(p: float) -> str:
    return f"{p:.0%}" if p >= 0.01 else "<1%"


def _a(noun: str) -> str:
    """The noun with its indefinite article: "a suitcase", "an Egyptian Mau (cat)"."""
    return f"{'an' if noun[:1].lower() in 'aeiou' else 'a'} {noun}"


def judge(prediction: Prediction, milliseconds: float | None = None, notes: list[str] = (),
          model_name: str = "the shipped model") -> Verdict:
    """Turn a ``Prediction`` into what the page says (a pure function)."""
    probs = prediction.probabilities
    ranked = prediction.top(2)
    (label, p), runner_up = ranked[0], ranked[1] if len(ranked) > 1 else (None, 0.0)
    name = display_name(label)
    cat_p = sum(q for breed, q in probs.items() if is_cat(breed))
    species, species_p = ("cat", cat_p) if cat_p >= 0.5 else ("dog", 1 - cat_p)
    check = prediction.imagenet
    imagenet, pet_p = (list(check.top), check.pet_probability) if check is not None else (None, None)
    common = dict(label=label, probabilities=dict(probs), imagenet=imagenet, pet_probability=pet_p,
                  cat_probability=cat_p, milliseconds=milliseconds, preview=prediction.pixels, cam=prediction.cam)
    why = (f"_Why the ImageNet check: softmax always shares 100% among the {len(probs)} breeds, so the breed "
           "model alone cannot answer \"none of these\"._")
    took = f"Took {milliseconds:.0f} ms with {model_name}." if milliseconds is not None else ""
    extra = "\n\n".join(notes)

    kind = prediction.verdict
    if kind == "too_small":  # whatever the models say: a guess, not an answer
        w, h = prediction.photo_size
        text = (f"### Too small to tell\nThis picture is only {w}x{h} pixels, too few to show a breed: the model "
                f"learnt from photos hundreds of pixels wide. Blown up to its {prediction.pixels.shape[1]}x"
                f"{prediction.pixels.shape[0]} input, this one gets a guess ({name}, {_pct(p)}), not an answer. "
                "Please send a larger photo.")
        return Verdict("too_small", "\n\n".join(s for s in (text, extra, took) if s), **common)
    if kind == "not_a_pet":
        seen = ", ".join(f"**{name}** ({_pct(q)})" for name, q in imagenet[:3])
        text = (f"### This does not look like a cat or a dog\n"
                f"The ImageNet classifier sees {seen}; all its cat and dog classes together get only "
                f"{_pct(pet_p)}. Forced to choose, the breed model would say {name}, at {_pct(p)}.")
        return Verdict("not_a_pet", "\n\n".join(s for s in (text, extra, why, took) if s), **common)
    if kind == "disagree":  # neither model overrules the other: the page says both
        seen = ", ".join(f"**{name}** ({_pct(q)})" for name, q in imagenet[:3])
        text = (f"### Looks like {_a(display_name(label))} at {_pct(p)}, though a general-purpose classifier "
                f"sees {_a(imagenet[0][0])}\nThe breed model is sure: {_pct(p)} on this breed. The ImageNet "
                f"classifier (1000 kinds of things) sees {seen}; all its cat and dog classes together get only "
                f"{_pct(pet_p)}. Perhaps the pet is small, half hidden or unusual in this photo; or it is not a "
                "pet at all, which the breed model cannot tell.")
        return Verdict("disagree", "\n\n".join(s for s in (text, extra, why, took) if s), **common)
    if kind == "unsure":
        then = f" (then {display_name(runner_up[0])}, {_pct(runner_up[1])})" if runner_up[0] else ""
        text = (f"### Not sure\nNo breed is likely: the best guess, **{name}**, gets only {_pct(p)}{then}. "
                f"Probably a {species} ({_pct(species_p)}).")
        return Verdict("unsure", "\n\n".join(s for s in (text, extra, why, took) if s), **common)
    text = f"### {name}\nA **{species}** ({_pct(species_p)} summed over the {species} breeds); this breed: {_pct(p)}."
    return Verdict("breed", "\n\n".join(s for s in (text, extra, took, why) if s), **common)


def predict_photo(photo, predictor, max_bytes: int = 10 * 2**20, model_name: str = "the shipped model",
                  allowed=None) -> Verdict:
    """One upload (a path, or Gradio's file dict) -> a ``Verdict``. Never raises for a bad file.

    Args:
        photo: the upload; None when there is none.
        predictor: an ``engine.serving.predictor.Predictor``.
        max_bytes: the upload limit (Gradio enforces it too; this also covers direct calls).
        allowed: where a visitor's file may be (see ``uploads.read_photo``); None checks nothing.
    """
    start = time.perf_counter()
    try:
        if photo is None or photo == "" or (isinstance(photo, dict) and not photo.get("path")):
            return Verdict("no_photo", NO_PHOTO)  # nothing uploaded yet, or the input was cleared
        image, info = read_photo(photo, predictor.load, max_bytes, allowed=allowed)
        decoded = time.perf_counter()
        prediction = predictor.predict(image)
    except UploadRefused as err:
        return Verdict("refused", f"### Cannot use this file\n{err}")
    except Exception:  # a bug, not a bad file: log it for the operator, tell the visitor plainly
        log.exception("prediction failed")
        return Verdict("refused", "### Something went wrong\nThe photo could not be classified. Please try "
                                  "again, or try another photo.")
    ms = (decoded - start + prediction.seconds) * 1000  # without the time spent waiting for another photo's pass
    verdict = judge(prediction, ms, info.notes, model_name)
    verdict.photo = image
    return verdict


def classify(photo, use_session_model: bool = False, session_model=None, *, predictor,
             max_bytes: int = 10 * 2**20, allowed=None,
             remember=None) -> tuple[dict[str, float] | None, str, np.ndarray | None]:
    """The handler tab 1 runs: ``(top 5 for gr.Label, by breed name, message, preview)``.

    ``session_model`` is the Predictor this visitor trained in tab 4 (None if none); it is used
    when ``use_session_model`` is ticked, else the shipped ``predictor``. ``remember(verdict, model_name)``,
    when given, is told every verdict (``flagging.Flags.remember``).
    """
    verdict, note = _verdict(photo, use_session_model, session_model, predictor, max_bytes, allowed, remember)
    return verdict.top5_named or None, verdict.message + note, verdict.preview


def _verdict(photo, use_session_model, session_model, predictor, max_bytes, allowed,
             remember=None) -> tuple[Verdict, str]:
    """``classify``'s verdict, and the note on which model answered; ``remember`` is told the verdict."""
    try:
        use_session_model = flag(use_session_model, "\"Use the model I trained\"")
    except InputRefused as err:
        return Verdict("refused", f"### Cannot do that\n{err}"), ""
    note = ""
    if use_session_model and session_model is not None:
        predictor, model_name = session_model, "your model from tab 4"
    else:
        model_name = "the shipped model"
        if use_session_model:
            note = ("\n\n_You have not trained a model in this session yet (tab 4, \"Train\"), so the shipped "
                    "model answered._")
    verdict = predict_photo(photo, predictor, max_bytes, model_name, allowed)
    if remember is not None:
        remember(verdict, model_name)
    return verdict, note


def looked_file(verdict: Verdict) -> str | None:
    """The preview with the map of where the model looked laid over it, as an image file (None
    without a preview or a map)."""
    if verdict.preview is None or verdict.cam is None:
        return None
    from engine.cam import overlay

    return image_file(overlay(verdict.preview, verdict.cam), name="where-it-looked")


def api_answer(verdict: Verdict) -> dict:
    """The answer by breed id, for scripts (the last output of ``/predict`` and ``/predict_example``):

        {"verdict": "breed", "label": "pug", "name": "Pug (dog)",
         "top5": [{"id": "pug", "name": "Pug (dog)", "probability": 0.93}, ...],
         "imagenet": [{"name": "pug", "probability": 0.88}, ...], "pet_probability": 0.99, "milliseconds": 11.2}

    ``verdict`` is ``Verdict.kind`` (breed, unsure, disagree, not_a_pet, too_small, refused, no_photo, or busy:
    this visitor had too many photos on their way). ``top5`` is the breed model's five likeliest,
    whatever the verdict (the page hides them for not_a_pet and too_small): the verdict says how to read them.
    Without a prediction, ``label`` and ``name`` are None and ``top5`` is empty."""
    ranked = sorted(verdict.probabilities.items(), key=lambda kv: -kv[1])[:5]
    return {"verdict": verdict.kind, "label": verdict.label,
            "name": None if verdict.label is None else display_name(verdict.label),
            "top5": [{"id": breed, "name": display_name(breed), "probability": round(float(p), 6)}
                     for breed, p in ranked],
            "imagenet": None if verdict.imagenet is None else
            [{"name": name, "probability": round(float(p), 6)} for name, p in verdict.imagenet],
            "pet_probability": None if verdict.pet_probability is None else round(float(verdict.pet_probability), 6),
            "milliseconds": None if verdict.milliseconds is None else round(verdict.milliseconds, 2)}


BUSY_VISITOR = "You already have photos on their way: wait for their answers, then send the next one."
PER_VISITOR = 2  # predictions of one visitor at once; the event runs 4, so another visitor always gets a place


def build_predict_tab(predictor, sessions, max_bytes: int, examples=(), allowed=None,
                      others_waiting=lambda visitor: False, flags=None) -> None:
    """Tab 1's components and events (call inside ``gr.Blocks``).

    Args:
        sessions: the ``sessions.SessionModels`` that hold the models visitors trained in tab 4.
        allowed: the folders and files a visitor's path may point into (``uploads.read_photo``).
        others_waiting: whether anyone but this visitor has events waiting in the queue. A visitor
            may use every place while nobody else waits; when someone does, at most ``PER_VISITOR``
            of theirs run, and the rest are answered at once, so the queue reaches the others fast.
        flags: a ``flagging.Flags`` to add the "Wrong breed?" control; None (the default): no control.
    """
    import gradio as gr

    in_flight = InFlight(PER_VISITOR)
    with gr.Tab("Which breed is my pet?", id="predict"):
        gr.Markdown(f"A photo of a cat or a dog (up to {max_bytes / 2**20:.0f} MB): upload it, take it with the "
                    f"camera or paste it. The model names its breed among the {len(predictor.vocab)} of the "
                    "Oxford-IIIT Pet dataset, and says so when it does not know.")
        # Two columns on a desktop, the photo and examples beside the answer; on a phone they stack,
        # and SHOW_VERDICT_JS scrolls the answer into view when it arrives.
        with gr.Row(equal_height=False):
            with gr.Column(min_width=320):
                # One input for all three sources; it shows the photo. preprocess=False (below) hands
                # our code the stored file untouched: gr.Image's own preprocessing would open and
                # convert it with PIL first. Whatever the source (a file, a camera shot, a pasted
                # picture, which the browser encodes as PNG or JPEG), it is an upload in Gradio's
                # folder and goes through the same checks and decoder (uploads.read_photo).
                photo = gr.Image(label="Your photo", sources=["upload", "webcam", "clipboard"], type="filepath",
                                 elem_id="photo-upload", height=300, alt_text="The photo you sent")
                use_own = gr.Checkbox(label="Use the model I trained in tab 4 (this session only)", value=False)
                gallery = example_gallery(examples, "Or click an example (unseen in training)",
                                          "predict-examples")
            with gr.Column(min_width=320, elem_id="answer"):  # room below for more about the answer
                message = gr.Markdown(NO_PHOTO, label="Answer", elem_id="verdict")
                top5 = gr.Label(num_top_classes=5, label="Top 5 breeds", elem_id="top5")
                seen = gr.Image(label="What the model looks at: the centre square", interactive=False,
                                type="filepath", format="jpeg", height=240, elem_id="seen",
                                buttons=["download", "fullscreen"], visible=False,
                                alt_text="The centre square of your photo, as the model saw it")
                # --- where the model looked (issue 23, point 4): the same square with the map laid
                # over it, shown instead of the plain one while the box is ticked (the default) ---
                looked = gr.Image(label="Where the model looked for its top breed (warm: the evidence)",
                                  interactive=False, type="filepath", format="jpeg", height=240, elem_id="looked",
                                  buttons=["download", "fullscreen"],
                                  alt_text="The centre square of your photo with a heat map over it: warm colours "
                                           "mark where the model found evidence for its top breed")
                show_map = gr.Checkbox(label="Show where the model looked", value=True, elem_id="show-map")
                # the answer by breed id, for scripts calling /predict (api_answer); the page does not show it
                answer = gr.JSON(label="The answer by breed id (for scripts)", visible=False)
                # only True shows the map: a script's string or number is not echoed back as a property
                show_map.change(lambda show: (gr.update(visible=show is not True), gr.update(visible=show is True)),
                                [show_map], [seen, looked], queue=False, api_visibility="private")
                if flags is not None:
                    build_flag_control(flags)

        def predict(photo, use_session_model, request: gr.Request):
            """Name the breed in a photo: the top 5 breeds (by name), a message, the square the model looked at
            (plain, and with the map of where it looked), and the answer by breed id (``api_answer``)."""
            visitor = visitor_key(request)
            if not in_flight.enter(visitor, strict=others_waiting(visitor)):
                return None, BUSY_VISITOR, None, None, api_answer(Verdict("busy", BUSY_VISITOR))
            try:
                mine = sessions.get(session_key(request))
                verdict, note = _verdict(photo, use_session_model, mine, predictor, max_bytes, allowed,
                                         remember=remembering(flags, request))
            finally:
                in_flight.leave(visitor)
            preview = None if verdict.preview is None else image_file(verdict.preview, name="what-it-saw")
            return (verdict.top5_named or None, verdict.message + note, preview, looked_file(verdict) or preview,
                    api_answer(verdict))

        common = dict(outputs=[top5, message, seen, looked, answer], preprocess=False, concurrency_limit=4,
                      concurrency_id="predict")
        photo.change(with_types(predict, request=gr.Request), [photo, use_own], api_name="predict", **common) \
            .then(None, js=SHOW_VERDICT_JS)
        if gallery is not None:
            def predict_example(use_session_model, evt: gr.SelectData, request: gr.Request):
                """Name the breed in the example photo that was clicked (by its position in the gallery)."""
                photo = pick(examples, evt)
                return predict(None if photo is None else str(photo), use_session_model, request)

            gallery.select(with_types(predict_example, evt=gr.SelectData, request=gr.Request), [use_own],
                           api_name="predict_example", **common).then(None, js=SHOW_VERDICT_JS)
