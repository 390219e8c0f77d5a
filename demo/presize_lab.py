"""Tab 3, "Presizing lab": one photo through presizing and through the naive order, measured.

Presizing (``engine.data.transforms.Presize`` + ``engine.data.augment.BatchAugment``) resizes once to a large
square on the CPU, then does every augmentation and the final resize to 224 in *one* interpolation.
The naive order resizes to 224 first, then rotates, then zooms: three interpolations, and black
corners where the rotation had no pixels. ``engine.data.quality.compare_presizing`` measures both: the
share of empty pixels, and the PSNR against a reference rendered from the full-size photo.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from engine.data.augment import BatchAugment
from engine.data.preprocessing import Preprocessing
from engine.data.quality import compare_presizing
from engine.data.transforms import MAX_PIXELS, Presize, load_array, pil_to_tensor

from .checks import InputRefused, number, whole_number, with_types
from .examples import example_gallery, pick
from .latest import SKIPPED, Latest
from .outputs import file_copy, image_file
from .sessions import session_key
from .uploads import NO_PHOTO, UploadRefused, read_photo

__all__ = ["augmented_crops", "presize_lab", "build_presize_lab"]

log = logging.getLogger(__name__)

PRESIZE, SIZE = Preprocessing.presize, Preprocessing.size  # the library's defaults, as training uses them
NO_SHARE = ["download", "fullscreen"]  # no "share" button: it would post to Hugging Face
REFERENCE_SIDE = 2000  # the reference needs detail beyond 460 pixels, not a 40-megapixel original


def _load_for_lab(path: Path) -> np.ndarray:
    """Decode (big JPEGs shrink while decoding, never below 1000 pixels a side) and cap the long side."""
    a = load_array(path, min_size=1000, max_pixels=MAX_PIXELS)
    if max(a.shape[:2]) > REFERENCE_SIDE:
        img = Image.fromarray(a)
        img.thumbnail((REFERENCE_SIDE, REFERENCE_SIDE), Image.Resampling.LANCZOS)
        a = np.asarray(img)
    return a


def augmented_crops(presized: np.ndarray, n: int = 6, seed: int = 0, size: int = SIZE) -> list[np.ndarray]:
    """``n`` random training views of one presized photo: flip, rotate, zoom, warp, crop, lighting, all
    in one ``grid_sample`` per view, as in training. Returns (size, size, 3) uint8 arrays."""
    aug = BatchAugment(Preprocessing(size=size))  # a fresh one per call: it reuses buffers between calls
    xb = pil_to_tensor(presized)[None].repeat(n, 1, 1, 1)  # (n, 3, H, W) uint8
    out = aug.decode(aug(xb, train=True, generator=torch.Generator().manual_seed(int(seed))))  # (n, 3, s, s)
    return list((out * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy())


# The page's ranges, which the handler enforces too (an HTTP call can send anything).
ROTATE, ZOOM, N_CROPS, SEEDS = (0, 45), (1.0, 2.0), (1, 12), (0, 2**31 - 1)
NO_LAB_PHOTO = "Upload a photo (JPEG, PNG, WebP or GIF), or click an example below."


def presize_lab(photo, rotate: float = 10.0, zoom: float = 1.1, n_crops: int = 6, seed: int = 0,
                max_bytes: int = 10 * 2**20, allowed=None):
    """Tab 3's handler: ``(presized, crops, naive, presizing result, report)`` for one upload.

    Args:
        photo: a file path or Gradio's file dict.
        rotate: degrees (0-45); zoom: 1-2, applied by both pipelines.
        n_crops: how many augmented training views to show (1-12); seed: their random draw.
        allowed: where a visitor's file may be (see ``uploads.read_photo``); None checks nothing.
    """
    empty = (None, [], None, None)
    try:
        rotate = number(rotate, "The rotation", *ROTATE)
        zoom = number(zoom, "The zoom", *ZOOM)
        n_crops = whole_number(n_crops, "The number of augmented views", *N_CROPS)
        seed = whole_number(seed, "The random seed", *SEEDS)
        image, _ = read_photo(photo, _load_for_lab, max_bytes, allowed=allowed)
        presized = Presize(PRESIZE, "crop")(image)  # the centre square, as validation takes it
        crops = augmented_crops(presized, n_crops, seed)
        r = compare_presizing(Image.fromarray(image), size=SIZE, presize=PRESIZE, rotate=rotate, zoom=zoom)
    except InputRefused as err:
        return *empty, f"### Cannot do that\n{err}"
    except UploadRefused as err:
        if str(err) == NO_PHOTO:  # the predict tab's words mention its webcam; this tab has none
            return *empty, f"### No photo yet\n{NO_LAB_PHOTO}"
        return *empty, f"### Cannot use this file\n{err}"
    except Exception:
        log.exception("presize lab failed")
        return *empty, "### Something went wrong\nThis photo could not be processed; try another one."
    naive, pre = r["naive"], r["presize"]
    report = (
        f"Both pipelines rotate by {float(rotate):g} degrees and zoom by {float(zoom):g}; the reference is the "
        "same geometry rendered from the full-size photo (supersampled).\n\n"
        "| pipeline | interpolations | empty pixels | PSNR against the reference |\n|---|---|---|---|\n"
        f"| naive: resize to {SIZE}, rotate, zoom | 3 | {naive['empty_fraction']:.1%} | {naive['psnr']:.1f} dB |\n"
        f"| presizing: {PRESIZE} on the CPU, then one warp | 2 | {pre['empty_fraction']:.1%} | "
        f"{pre['psnr']:.1f} dB |\n\n"
        "Higher PSNR is closer to the reference (every 6 dB halves the error). The naive corners are black "
        "because a rotated 224 image has no pixels there; presizing rotates inside the larger square.")
    return presized, crops, naive["image"], pre["image"], report


def build_presize_lab(max_bytes: int, examples=(), allowed=None) -> None:
    """Tab 3's components and events (call inside ``gr.Blocks``); ``allowed``: see ``uploads.read_photo``.

    The page updates live: a new photo, a click on an example, and every move of a control run the
    comparison again. A clicked example becomes the tab's photo (a copy in Gradio's cache, shown by
    name in the upload box), so the controls and "Compare" keep working on it. The work stays bounded:
    the page sends one request at a time and only its last (``trigger_mode="always_last"``), and the
    server computes one at a time per page, the newest inputs winning (``latest.Latest``).
    """
    import gradio as gr

    with gr.Tab("Presizing lab", id="presize"):
        gr.Markdown(f"Upload a photo (or pick an example) to see presizing at work: one large resize on the CPU "
                    f"({PRESIZE} pixels), then every augmentation and the final {SIZE} in a single interpolation. "
                    "The results follow the controls as you move them.")
        with gr.Row():
            with gr.Column(scale=1):
                photo = gr.File(label="Photo", file_types=["image"], type="filepath", elem_id="presize-upload")
                rotate = gr.Slider(*ROTATE, value=10, step=1, label="Rotation (degrees)", elem_id="presize-rotate")
                zoom = gr.Slider(*ZOOM, value=1.1, step=0.05, label="Zoom", elem_id="presize-zoom")
                n_crops = gr.Slider(*N_CROPS, value=6, step=1, label="Augmented training views",
                                    elem_id="presize-views")
                seed = gr.Number(value=0, precision=0, minimum=SEEDS[0], maximum=SEEDS[1],
                                 label="Random seed for the views")
                run = gr.Button("Compare", variant="primary", elem_id="presize-compare")
                gallery = example_gallery(examples, "Or click an example", "presize-examples")
            with gr.Column(scale=2):
                report = gr.Markdown(elem_id="presize-report")
                with gr.Row():
                    naive = gr.Image(label=f"Naive: resize to {SIZE}, then rotate, then zoom", interactive=False,
                                     buttons=NO_SHARE, elem_id="presize-naive")
                    presized_result = gr.Image(label="Presizing: the same rotation and zoom, one interpolation",
                                               interactive=False, buttons=NO_SHARE, elem_id="presize-presized")
                presized = gr.Image(label=f"Presized on the CPU: {PRESIZE}x{PRESIZE}", interactive=False,
                                    buttons=NO_SHARE)
                crops = gr.Gallery(label=f"Augmented {SIZE}x{SIZE} training views of the presized photo",
                                   columns=6, height=260, object_fit="contain", buttons=NO_SHARE)

        def compute(photo, rotate, zoom, n_crops, seed):
            presized, crops, naive, pre, report = presize_lab(photo, rotate, zoom, n_crops, seed, max_bytes=max_bytes,
                                                              allowed=allowed)
            files = [None if a is None else image_file(a) for a in (presized, naive, pre)]
            return files[0], [image_file(c) for c in crops], files[1], files[2], report

        latest = Latest(compute)
        outputs = [presized, crops, naive, presized_result, report]

        def compare(photo, rotate, zoom, n_crops, seed, request: gr.Request):
            """Presizing against the naive order on one photo: images, augmented views and measurements."""
            answer = latest.run(session_key(request), photo, rotate, zoom, n_crops, seed)
            return tuple(gr.skip() for _ in outputs) if answer is SKIPPED else answer

        inputs = [photo, rotate, zoom, n_crops, seed]
        common = dict(preprocess=False, api_name=False, concurrency_id="presize", concurrency_limit=2)
        live = dict(trigger_mode="always_last", show_progress="minimal")
        # a new upload, "Compare" and every control; not photo.change, which the example's copy fires too
        gr.on([run.click, photo.upload, rotate.change, zoom.change, n_crops.change, seed.change],
              with_types(compare, request=gr.Request), inputs, outputs, **common, **live)
        if gallery is not None:
            def compare_example(rotate, zoom, n_crops, seed, evt: gr.SelectData):
                """The example photo that was clicked (by its position in the gallery) becomes the tab's photo,
                and the comparison on it."""
                chosen = pick(examples, evt)
                shown = gr.skip() if chosen is None else file_copy(chosen)
                return shown, *compute(None if chosen is None else str(chosen), rotate, zoom, n_crops, seed)

            gallery.select(with_types(compare_example, evt=gr.SelectData), inputs[1:], [photo, *outputs], **common)
