""""Wrong breed?": a visitor who knows the right breed flags a wrong answer, for the operator to review.

Off by default; ``python -m demo --flag-dir DIR`` switches it on. Each flag is two files in ``DIR``,
named by the server (a UTC time and a random id, never anything a visitor sends):

    20261205T064512Z-3f9c2a71b0d4.jpg    the photo, re-encoded as a JPEG of at most PHOTO_SIDE pixels
                                         a side and PHOTO_BYTES bytes
    20261205T064512Z-3f9c2a71b0d4.json   {"time", "photo", "answer": {"breed", "verdict", "model",
                                         "probabilities"}, "correction"}

Each is written under a temporary name and renamed into place, the JSON last: a JSON file means a
complete flag. No network address or session id is stored.

What a visitor can send is only the correction, and it must be one of the model's breed ids. The
photo is never named by the client: after each prediction the server keeps the photo it has
already checked and decoded (shrunk to ``PHOTO_SIDE`` and re-encoded, about 2 ms a photo; kept
in memory, for at most ``keep`` sessions and ``ttl`` seconds) with the answer, under the visitor's
session (``sessions.session_key``: the network address and the session id together, so an invented
or copied session id finds nothing). A flag uses that answer once. Flags are bounded:
``per_minute`` per visitor (network address), and ``max_flags`` in ``DIR`` in all; when ``DIR`` is
full the flag is refused with a message and no earlier flag is ever deleted.
"""

from __future__ import annotations

import io
import json
import logging
import os
import tempfile
import threading
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import partial
from pathlib import Path

import numpy as np

from engine.data.breeds import display_name

from .checks import InputRefused, with_types
from .guard import RateWindow
from .sessions import SessionModels, session_key, visitor_key

__all__ = ["Answer", "Flags", "FLAG_MAX", "PHOTO_SIDE", "PHOTO_BYTES", "shrink", "encode_photo", "remembering",
           "build_flag_control"]

FLAG_MAX = 1000  # flags in the folder, all visitors together
PHOTO_SIDE = 800  # pixels on the longer side of a stored photo
PHOTO_BYTES = 250_000  # bytes of a stored photo (a flag's JSON adds about 2 KB)
PER_MINUTE = 6  # flags one visitor may send a minute
log = logging.getLogger(__name__)
NO_ANSWER = ("There is no answer to report yet: get one first (upload a photo, take one or click an example), "
             "then choose the right breed.")


@dataclass(frozen=True)
class Answer:
    """One prediction a visitor may flag: the photo (JPEG bytes) and what the model said."""

    photo: bytes
    breed: str
    verdict: str
    model: str
    probabilities: dict[str, float]


def shrink(image: np.ndarray, max_side: int = PHOTO_SIDE) -> np.ndarray:
    """An (H, W, 3) uint8 photo with at most ``max_side`` pixels a side: averaged over whole blocks of
    pixels first (OpenCV's area resampling by a whole factor, fast), then bilinear by less than 2 (no
    aliasing to speak of). It runs for every prediction while flagging is on: PIL's ``thumbnail``
    (bicubic) took 10-25 ms on a 1000-2000 pixel photo, this takes about 1-2 ms."""
    import cv2

    image = np.ascontiguousarray(image, dtype=np.uint8)
    h, w = image.shape[:2]
    if max(h, w) <= max_side:
        return image
    scale = max_side / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))  # (width, height), as PIL's thumbnail rounds
    k = max(h, w) // max_side
    if k >= 2 and w // k >= size[0] and h // k >= size[1]:
        image = cv2.resize(image, (w // k, h // k), interpolation=cv2.INTER_AREA)
    return cv2.resize(image, size, interpolation=cv2.INTER_LINEAR) if image.shape[1::-1] != size else image


def encode_photo(image: np.ndarray, max_side: int = PHOTO_SIDE, max_bytes: int = PHOTO_BYTES) -> bytes:
    """An (H, W, 3) uint8 photo as a JPEG of at most ``max_side`` pixels a side and ``max_bytes`` bytes."""
    from PIL import Image

    picture = Image.fromarray(shrink(image, max_side))  # (H, W, 3) uint8: RGB
    quality = 85
    while True:
        out = io.BytesIO()
        picture.save(out, format="JPEG", quality=quality)
        if out.tell() <= max_bytes or max(picture.size) <= 64:
            return out.getvalue()
        if quality > 55:
            quality -= 15
        else:
            picture.thumbnail((int(max(picture.size) * 0.7),) * 2)


class Flags:
    """The flag folder and the answers visitors may flag (see the module's docstring).

    Args:
        folder: where flags are written (created if missing).
        vocab: the breed ids a correction may be.
        max_flags: flags the folder may hold in all; then new ones are refused.
        per_minute: flags one visitor (network address) may send a minute.
        keep, ttl: answers kept in memory (one per session, the least recently used goes first) and for how long.
    """

    def __init__(self, folder: str | Path, vocab, max_flags: int = FLAG_MAX, per_minute: int = PER_MINUTE,
                 max_side: int = PHOTO_SIDE, max_bytes: int = PHOTO_BYTES, keep: int = 128, ttl: float = 3600.0):
        if max_flags < 1 or per_minute < 1:
            raise ValueError(f"Flags needs max_flags >= 1 and per_minute >= 1, got {max_flags} and {per_minute}")
        self.folder = Path(folder).expanduser().resolve()
        self.folder.mkdir(parents=True, exist_ok=True)
        if not os.access(self.folder, os.W_OK):
            raise PermissionError(f"{self.folder}: cannot write flags there; choose a folder you can write to")
        self.vocab, self.max_flags, self.per_minute = list(vocab), max_flags, per_minute
        self.max_side, self.max_bytes = max_side, max_bytes
        self._answers = SessionModels(keep, ttl)  # session -> Answer (None once flagged)
        self._sent = RateWindow(60)
        self._lock = threading.Lock()

    def count(self) -> int:
        """The flags in the folder now (complete ones: their JSON file)."""
        return sum(1 for _ in self.folder.glob("*.json"))

    def remember(self, session: str, verdict, model: str = "the shipped model") -> None:
        """Keep ``verdict``'s photo and answer for ``session``; a verdict without a photo or a breed
        (a refused file, no photo) forgets the previous answer, so a flag never lands on an older photo."""
        photo = getattr(verdict, "photo", None)
        if photo is None or verdict.kind not in ("breed", "unsure", "not_a_pet") or not verdict.probabilities:
            self._answers.put(session, None)
            return
        answer = Answer(encode_photo(photo, self.max_side, self.max_bytes), verdict.label, verdict.kind, model,
                        {b: round(float(p), 6) for b, p in verdict.probabilities.items()})
        self._answers.put(session, answer)

    def flag(self, session: str, visitor: str, correction) -> str:
        """Store ``session``'s last answer with ``correction`` (a breed id); the message for the visitor.
        Raises ``InputRefused`` (its text for the visitor) when the flag cannot be taken."""
        if not isinstance(correction, str) or correction not in self.vocab:  # never echoed: it may be huge
            raise InputRefused("Choose the right breed from the list first.")
        with self._lock:
            if self._sent.total(visitor)[0] >= self.per_minute:
                raise InputRefused(f"You have sent {self.per_minute} reports in the last minute, the most this "
                                   f"server takes: wait {self._sent.wait(visitor)} s, then try again.")
            answer = self._answers.get(session)
            if answer is None:
                raise InputRefused(NO_ANSWER)
            if self.count() >= self.max_flags:
                raise InputRefused(f"This server has stored {self.max_flags} reports, the most it keeps, so it "
                                   "cannot take yours. Thank you all the same.")
            try:
                self._write(answer, correction)
            except OSError:  # a full disk, a folder removed: the operator's to fix, not the visitor's
                log.exception("could not write a flag to %s", self.folder)
                raise InputRefused("The server could not store your report just now: please try again later.") \
                    from None
            self._answers.put(session, None)  # one flag per answer
            self._sent.add(visitor)
        if correction == answer.breed:
            return (f"Noted: you confirm **{display_name(correction)}**, which is what the model said. Thank you. "
                    "(To report another answer, try another photo.)")
        return (f"Thank you: reported. The model said {display_name(answer.breed)}; you say "
                f"**{display_name(correction)}**. The photo, the answer and your choice are kept on this server for "
                "its operator, who may use them to improve the model.")

    def _write(self, answer: Answer, correction: str) -> str:
        """The two files of one flag, each written whole under a temporary name and renamed; its name."""
        now = datetime.now(timezone.utc)
        name = f"{now:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:12]}"
        record = {"time": now.strftime("%Y-%m-%dT%H:%M:%SZ"), "photo": f"{name}.jpg",
                  "answer": {"breed": answer.breed, "verdict": answer.verdict, "model": answer.model,
                             "probabilities": answer.probabilities},
                  "correction": correction}
        _write_atomically(self.folder / f"{name}.jpg", answer.photo)
        try:
            _write_atomically(self.folder / f"{name}.json", (json.dumps(record, indent=1) + "\n").encode())
        except OSError:
            (self.folder / f"{name}.jpg").unlink(missing_ok=True)  # no photo without its record
            raise
        return name


def _write_atomically(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def remembering(flags: Flags | None, request):
    """What ``predict_tab.classify`` calls with each verdict: ``flags.remember`` for this session, or None."""
    return None if flags is None else partial(flags.remember, session_key(request))


def build_flag_control(flags: Flags) -> None:
    """The "Wrong breed?" control (call inside the predict tab, only when flagging is on)."""
    import gradio as gr

    with gr.Accordion("Wrong breed?", open=False, elem_id="flag"):
        gr.Markdown("Know the right breed? Choose it and send it: the photo, the model's answer and your choice "
                    "are kept on this server for its operator (nothing about you is stored).")
        correction = gr.Dropdown(choices=[(display_name(b), b) for b in flags.vocab], value=None,
                                 label="The right breed", elem_id="flag-breed")
        send = gr.Button("Report the wrong answer", elem_id="flag-send")
        said = gr.Markdown("", elem_id="flag-said")

    def report(breed, request: gr.Request):
        """Report the last answer as wrong, with the right breed (one of the model's breed ids)."""
        try:
            return flags.flag(session_key(request), visitor_key(request), breed)
        except InputRefused as err:
            return f"**Not sent.** {err}"

    # preprocess=False: the handler, not the dropdown, judges what a script sends as the breed
    send.click(with_types(report, request=gr.Request), [correction], [said], preprocess=False,
               api_name="flag_wrong_breed", concurrency_limit=2, concurrency_id="flag")
