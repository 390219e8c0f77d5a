"""Tests for the web demo's handlers (demo/*.py), called exactly as the page calls them, without a server.

The server itself is tested in test_demo_server.py (gradio_client) and test_demo_browser.py (a real
browser). Real photos come from the ``pets_sample`` fixture; every awkward file is generated here.
"""

from __future__ import annotations

import csv
import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

import demo  # noqa: F401, I001  (first: its process settings must precede torch's import; see demo/__init__.py)
from demo.examples import caption
from demo.predict_tab import classify, judge, predict_photo
from demo.presize_lab import presize_lab
from demo.settings import SHIPPED_EXAMPLES, SHIPPED_MODEL, TRAINING_DISABLED, example_photos, parse_size
from demo.softmax_lab import CLASSES, DEFAULT_ACTIVATIONS, huge_logit_lab, log_lab, softmax_lab, softmax_numbers
from demo.train_tab import DEMO_RECIPE, train_model, visitor_recipe
from engine.data.breeds import PET_BREEDS
from engine.data.pets import SAMPLE_TABLE
from engine.data.preprocessing import Preprocessing
from engine.data.quality import compare_presizing
from engine.losses import cross_entropy, log_softmax, softmax
from engine.serving.prediction import NOT_A_PET_BELOW, UNSURE_BELOW, ImagenetCheck, Prediction
from engine.testing import make_image, write_image, write_labels_csv, write_synthetic_pets

MB = 2**20


@pytest.fixture(scope="session")
def predictor():
    """The shipped model, loaded once as the app loads it."""
    from engine.serving.predictor import load_predictor

    return load_predictor(SHIPPED_MODEL)


@pytest.fixture(scope="session")
def validation_rows(pets_sample):
    with open(pets_sample / "labels.csv", newline="") as f:
        return [r for r in csv.DictReader(f) if r["is_valid"] == "1"]


def _good_image(tmp_path):
    """A plain generated photo: the handler must predict on it (not refuse it)."""
    return write_image(tmp_path / "good.jpg", "rgb", size=(320, 240), seed=5)


def _assert_predicted(message):
    assert "Took" in message and " ms with the shipped model" in message, message


# --- tab 1 on real photos ------------------------------------------------------------------------

def test_shipped_model_is_right_on_80_percent_of_validation_photos(predictor, pets_sample, validation_rows):
    assert len(validation_rows) == 74
    right = sum(predict_photo(pets_sample / "images" / r["name"], predictor).label == r["breed"]
                for r in validation_rows)
    accuracy = right / len(validation_rows)
    assert accuracy >= 0.80, f"top-1 accuracy {accuracy:.1%} ({right}/74) on the validation photos"


def test_classify_a_real_photo_as_the_page_shows_it(predictor, pets_sample):
    # Gradio hands the handler its file dict (preprocess=False): the same as a browser upload.
    top5, message, preview = classify({"path": str(pets_sample / "images" / "keeshond_119.jpg")},
                                      predictor=predictor)
    assert list(top5)[0] == "Keeshond (dog)" and len(top5) == 5  # names for people; the Verdict keeps ids
    assert top5["Keeshond (dog)"] > 0.9 and sum(top5.values()) <= 1.0 + 1e-6
    assert message.startswith("### Keeshond (dog)\nA **dog**")
    verdict = predict_photo(pets_sample / "images" / "keeshond_119.jpg", predictor)
    assert verdict.label == "keeshond" and list(verdict.top5)[0] == "keeshond" and "keeshond" in verdict.probabilities
    _assert_predicted(message)
    assert "softmax always shares 100% among the 37 breeds" in message
    assert preview.shape == (224, 224, 3) and preview.dtype == np.uint8
    # the pixels the model saw, as the prediction returns them (not a preview derived again)
    assert np.array_equal(preview, predictor.predict(pets_sample / "images" / "keeshond_119.jpg").pixels)


def _exif_rotated(img: Image.Image, path):
    """Store ``img`` turned 90 degrees with EXIF Orientation 6, as phones do."""
    stored = img.transpose(Image.Transpose.ROTATE_90)
    exif = stored.getexif()
    exif[0x0112] = 6
    stored.save(path, "JPEG", quality=92, exif=exif)


@pytest.mark.parametrize("variant", ["cmyk", "rgba", "palette_gif", "exif_rotated", "png"])
def test_real_photo_in_awkward_formats_keeps_its_breed(predictor, pets_sample, tmp_path, variant):
    img = Image.open(pets_sample / "images" / "keeshond_119.jpg").convert("RGB")
    path = tmp_path / f"keeshond.{variant}"
    if variant == "cmyk":
        img.convert("CMYK").save(path, "JPEG", quality=92)
    elif variant == "rgba":
        rgba = img.convert("RGBA")
        rgba.putalpha(255)
        rgba.save(path, "PNG")
    elif variant == "palette_gif":
        frames = [img.quantize(256), img.transpose(Image.Transpose.FLIP_TOP_BOTTOM).quantize(256)]
        frames[0].save(path, "GIF", save_all=True, append_images=frames[1:], duration=100)
    elif variant == "exif_rotated":
        _exif_rotated(img, path)
    else:
        img.save(path, "PNG")
    verdict = predict_photo(path, predictor)
    assert verdict.label == "keeshond" and verdict.kind == "breed", verdict.message
    if variant == "palette_gif":
        assert "animated GIF with 2 frames: the first frame was used" in verdict.message


# --- tab 1: every awkward upload gets a prediction or a clear message ---------------------------------

def _text(p):
    p.write_text("Dear visitor, this is not a photo.\n")


def _truncated(p):
    full = p.with_name("full.jpg")
    write_image(full, "rgb", size=(400, 300), seed=2)
    data = full.read_bytes()
    p.write_bytes(data[: len(data) // 2])


def _empty(p):
    p.write_bytes(b"")


def _svg(p):
    p.write_text('<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="200" height="200">'
                 '<circle cx="100" cy="100" r="80" fill="orange"/></svg>')


def _bomb(p):  # 196 megapixels in about 24 KB: PIL itself refuses the header
    Image.new("1", (14000, 14000)).save(p, "PNG", optimize=True)


def _big_but_under_pil_limit(p):  # 49 megapixels: our own limit (40) refuses it
    Image.new("L", (7000, 7000)).save(p, "PNG", optimize=True)


def _noise_1_4_mb(p):
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (700, 700, 3), dtype=np.uint8)).save(p, "PNG")


def _animated_gif(p):
    frames = [make_image("rgb", size=(120, 90), seed=s).quantize(64) for s in range(3)]
    frames[0].save(p, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)


def _very_wide(p):
    Image.new("L", (10000, 20), 128).save(p, "PNG")


REFUSED = [
    ("text.jpg", _text, "not an image the demo can read"),
    ("truncated.jpg", _truncated, "truncated or damaged"),
    ("empty.jpg", _empty, "The file is empty (0 bytes)"),
    ("drawing.svg", _svg, "SVG drawing"),
    ("bomb.png", _bomb, "has over 179 megapixels; the demo refuses images over 40 megapixels before decoding"),
    ("big.png", _big_but_under_pil_limit, "is 7000x7000 = 49 megapixels"),
]


@pytest.mark.parametrize("name,make,expected", REFUSED, ids=[r[0] for r in REFUSED])
def test_bad_files_get_a_clear_message(predictor, tmp_path, name, make, expected):
    path = tmp_path / name
    make(path)
    top5, message, preview = classify({"path": str(path)}, predictor=predictor)
    assert top5 is None and preview is None
    assert message.startswith("### Cannot use this file\n") and expected in message, message
    # the next visitor's good photo still works
    _assert_predicted(classify(str(_good_image(tmp_path)), predictor=predictor)[1])


def test_files_over_the_size_limit_are_refused(predictor, tmp_path):
    path = tmp_path / "noise.png"
    _noise_1_4_mb(path)
    _, message, _ = classify(str(path), predictor=predictor, max_bytes=1 * MB)
    assert "The file is 1.4 MB; this demo takes photos up to 1 MB" in message
    _assert_predicted(classify(str(path), predictor=predictor, max_bytes=10 * MB)[1])


@pytest.mark.parametrize("kind", ["rgb", "l", "p", "rgba", "cmyk", "i16", "exif_rotated", "tiny", "wide"])
def test_every_image_mode_gets_a_prediction(predictor, tmp_path, kind):
    path = write_image(tmp_path / f"{kind}.jpg", kind, size=(300, 200), seed=3)
    verdict = predict_photo(str(path), predictor)
    assert verdict.kind in ("breed", "unsure", "not_a_pet", "too_small"), verdict.message
    _assert_predicted(verdict.message)
    if kind == "tiny":  # a 1x1 picture shows nothing: its verdict says so, whatever the models answered
        assert verdict.kind == "too_small" and verdict.top5 == {}, verdict.message
        assert "### Too small to tell\nThis picture is only 1x1 pixels" in verdict.message
        return
    # Generated stripes and blobs are not pets: the ImageNet check must say so, not name a breed.
    assert verdict.kind == "not_a_pet", verdict.message
    assert "does not look like a cat or a dog" in verdict.message and verdict.top5 == {}
    if kind == "wide":
        assert "1000x20, very wide: the model only sees its centre square" in verdict.message


@pytest.mark.parametrize("name,make,expected", [
    ("anim.gif", _animated_gif, "animated GIF with 3 frames: the first frame was used"),
    ("wide.png", _very_wide, "10000x20, very wide"),
])
def test_odd_but_usable_images_get_a_prediction_and_a_note(predictor, tmp_path, name, make, expected):
    path = tmp_path / name
    make(path)
    top5, message, preview = classify(str(path), predictor=predictor)
    _assert_predicted(message)
    assert expected in message and preview.shape == (224, 224, 3)


def test_no_photo_yet(predictor):
    top5, message, preview = classify(None, predictor=predictor)
    assert top5 is None and preview is None and message.startswith("No photo yet")


def test_result_files_go_straight_into_gradios_cache_and_are_served_as_written(tmp_path, monkeypatch):
    import gradio as gr

    from demo.outputs import image_file

    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path))  # Gradio's cache, which is its upload folder
    y, x = np.mgrid[:224, :224]
    picture = np.stack([x, y, 255 - x], -1).astype(np.uint8)  # smooth, as JPEG wants
    first, second = image_file(picture, name="what-it-saw"), image_file(picture, name="what-it-saw")
    assert first != second and Path(first).name == "what-it-saw.jpg"  # never the same file for two answers
    assert Path(first).parent.parent == tmp_path.resolve()
    with Image.open(first) as seen:
        assert seen.size == (224, 224) and np.abs(np.asarray(seen).astype(int) - picture).mean() < 3
    served = gr.Image(type="filepath").move_resource_to_block_cache(first)
    assert served == first  # no second copy
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == ["what-it-saw.jpg"] * 2  # no temporary left


def test_the_queue_keeps_no_summary_of_past_events():
    # demo/__init__.py (imported above) switches off Gradio's per-event summary for its monitoring page
    import gradio as gr

    with gr.Blocks() as app:
        gr.Markdown("x")
    app.queue()
    queue = app._queue
    records = [{"time": i, "status": "success", "process_time": 0.01, "function": "predict", "session_hash": "s"}
               for i in range(50)]
    queue.events_recorded = 50
    assert queue.compute_analytics_summary(records) == {"functions": {}}  # not computed


def test_the_api_answer_keeps_the_ids():
    from demo.predict_tab import api_answer

    answer = api_answer(judge(_details(0.9, [("beagle", 0.7), ("basset", 0.1)], 0.95), 12.345))
    assert answer["verdict"] == "breed" and answer["label"] == "beagle" and answer["name"] == "Beagle (dog)"
    assert [t["id"] for t in answer["top5"]] == ["beagle", "pug", "Bengal"]
    assert answer["top5"][2] == {"id": "Bengal", "name": "Bengal (cat)", "probability": 0.05}
    assert answer["imagenet"][0] == {"name": "beagle", "probability": 0.7} and answer["milliseconds"] == 12.35
    refused = api_answer(predict_photo(None, predictor=None))
    assert refused["verdict"] == "no_photo" and refused["label"] is None and refused["top5"] == []


# --- tab 1: what the answer says, from the two models' outputs -------------------------------------

def _details(top: float, imagenet: list[tuple[str, float]], pet: float, breeds=("beagle", "pug", "Bengal")):
    from engine.models import PET_IMAGENET_CLASSES, imagenet_categories

    rest = (1 - top) / (len(breeds) - 1)
    pet_names = {imagenet_categories()[i] for i in PET_IMAGENET_CLASSES}
    check = ImagenetCheck(tuple(imagenet), pet, top_is_pet=imagenet[0][0] in pet_names)
    return Prediction(breeds[0], {b: top if i == 0 else rest for i, b in enumerate(breeds)}, check,
                      np.zeros((8, 8, 3), np.uint8), 0.01)


def test_judge_says_not_a_pet_and_names_what_imagenet_sees():
    v = judge(_details(0.91, [("envelope", 0.4), ("carton", 0.2)], pet=NOT_A_PET_BELOW / 2), 12.0)
    assert v.kind == "not_a_pet" and v.top5 == {}
    assert "does not look like a cat or a dog" in v.message and "**envelope** (40%)" in v.message
    assert "would say Beagle (dog), at 91%" in v.message
    assert 'softmax always shares 100% among the 3 breeds, so the breed model alone cannot answer "none' in v.message


def test_judge_trusts_a_pet_that_imagenet_calls_a_dog_breed():
    # little mass on pets overall, but ImageNet's top class is a dog: a pet (e.g. a boxer with a ball)
    v = judge(_details(0.97, [("boxer", 0.06), ("tennis ball", 0.05)], pet=NOT_A_PET_BELOW / 2))
    assert v.kind == "breed" and v.message.startswith("### Beagle (dog)\nA **dog**")


def test_judge_is_unsure_below_half():
    v = judge(_details(UNSURE_BELOW - 0.1, [("beagle", 0.8)], pet=0.9))
    assert v.kind == "unsure" and v.message.startswith("### Not sure\n")
    assert "**Beagle (dog)**, gets only 40% (then Pug (dog), 30%)" in v.message and len(v.top5) == 3
    assert set(v.top5) == {"beagle", "pug", "Bengal"} and set(v.top5_named) == {"Beagle (dog)", "Pug (dog)",
                                                                                 "Bengal (cat)"}


def test_example_captions_are_breed_names():
    assert caption(Path("japanese_chin_109.jpg")) == "Japanese Chin (dog)"
    assert [caption(p) for p in sorted(SHIPPED_EXAMPLES.glob("*.jpg"))][:2] == ["Bengal (cat)", "Birman (cat)"]


# --- tab 2 ------------------------------------------------------------------------------------------

def test_softmax_lab_numbers_are_the_engines():
    k = CLASSES.index("beagle")
    n = softmax_numbers(DEFAULT_ACTIVATIONS, k)
    x, y = torch.tensor([DEFAULT_ACTIVATIONS]), torch.tensor([k])
    assert n["cross_entropy"] == pytest.approx(float(cross_entropy(x, y)), abs=1e-6)
    assert n["cross_entropy"] == pytest.approx(float(F.cross_entropy(x, y)), abs=1e-6)
    assert n["nll"] == pytest.approx(-float(log_softmax(x)[0, k]), abs=1e-6) == pytest.approx(n["cross_entropy"])
    assert n["softmax"] == pytest.approx(softmax(x)[0].tolist())
    assert sum(n["softmax"]) == pytest.approx(1.0)
    assert sum(n["sigmoid"]) == pytest.approx(float(torch.sigmoid(x).sum()))
    assert sum(n["sigmoid"]) > 1.5  # independent yes/no per class: no reason to sum to 1
    y_hot = F.one_hot(y, len(CLASSES)).float()
    assert n["bce"] == pytest.approx(float(F.binary_cross_entropy_with_logits(x, y_hot)), abs=1e-6)


def test_temperature_sharpens_or_flattens_softmax():
    k = 0
    plain = softmax_numbers(DEFAULT_ACTIVATIONS, k, 1.0)
    assert plain["softmax_t"] == pytest.approx(plain["softmax"])
    sharp, flat = softmax_numbers(DEFAULT_ACTIVATIONS, k, 0.5), softmax_numbers(DEFAULT_ACTIVATIONS, k, 3.0)
    assert max(sharp["softmax_t"]) > max(plain["softmax"]) + 0.1 > max(flat["softmax_t"]) + 0.1
    assert sum(sharp["softmax_t"]) == pytest.approx(1.0) and sum(flat["softmax_t"]) == pytest.approx(1.0)


def test_softmax_lab_handler_shows_the_numbers():
    rows, text, fig = softmax_lab("pug", 0.5, *DEFAULT_ACTIVATIONS)
    n = softmax_numbers(DEFAULT_ACTIVATIONS, CLASSES.index("pug"), 0.5)
    assert [r[0] for r in rows] == list(CLASSES)
    assert [r[3] for r in rows] == pytest.approx(n["softmax"], abs=1e-4)
    assert [r[4] for r in rows] == pytest.approx(n["softmax_t"], abs=1e-4)
    assert f"**{n['cross_entropy']:.4f}**" in text and "True class: pug" in text
    assert fig is not None and len(fig.axes[0].patches) == 3 * len(CLASSES)
    assert softmax_lab("pug", 1.0, 1.0, None, 0, 0, 0)[1].startswith("Give one finite activation")


def test_log_domain_examples():
    text = log_lab(-2)
    assert "`math.log(-2)` -> `ValueError: math domain error`" in text and "-> `nan`" in text
    assert "-> `-inf`" in log_lab(0)
    table = huge_logit_lab(1000)
    naive, engine = [line for line in table.splitlines() if line.startswith("| naive") or line.startswith("| engine")]
    assert "nan" in naive and naive.endswith("**no** |")
    assert "nan" not in engine and engine.endswith("yes |") and "0.7311" in engine


# --- tab 3 ------------------------------------------------------------------------------------------

def test_presize_lab_measures_both_pipelines(tmp_path):
    photo = make_image("rgb", size=(250, 188), seed=3).resize((500, 375), Image.Resampling.BICUBIC)
    photo.save(tmp_path / "photo.png")
    presized, crops, naive, pre, report = presize_lab({"path": str(tmp_path / "photo.png")}, rotate=10, zoom=1.1,
                                                      n_crops=4, seed=1)
    assert presized.shape == (460, 460, 3) and naive.shape == pre.shape == (224, 224, 3)
    assert len(crops) == 4 and all(c.shape == (224, 224, 3) and c.dtype == np.uint8 for c in crops)
    assert not np.array_equal(crops[0], crops[1])  # each view has its own random augmentation
    expected = compare_presizing(photo, rotate=10, zoom=1.1)
    assert f"| {expected['naive']['empty_fraction']:.1%} | {expected['naive']['psnr']:.1f} dB |" in report
    assert f"| 0.0% | {expected['presize']['psnr']:.1f} dB |" in report
    assert expected["presize"]["psnr"] > expected["naive"]["psnr"]


def test_presize_lab_refuses_a_bomb(tmp_path):
    _bomb(tmp_path / "bomb.png")
    *images, report = presize_lab(str(tmp_path / "bomb.png"))
    assert images == [None, [], None, None] and "decompression bomb" in report


# --- tab 4 ------------------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def trained(tmp_path_factory):
    """Tab 4's training on 4 generated breeds x 6 photos (small images: seconds, not minutes)."""
    root = tmp_path_factory.mktemp("tiny_pets")
    breeds = [PET_BREEDS[i] for i in (0, 3, 14, 20)]
    paths = write_synthetic_pets(root / "images", breeds=breeds, n_per_breed=6, size=(96, 72), seed=1)
    csv_path = write_labels_csv(root, paths, valid_per_breed=2)
    reports = []
    small = dataclasses.replace(DEMO_RECIPE, epochs=1, freeze_epochs=6,
                                preprocessing=Preprocessing(presize=96, size=64))  # the tab's recipe, smaller
    updates = list(train_model(csv_path, small, report=lambda fraction, text: reports.append((fraction, text))))
    return updates, reports, breeds, paths


def test_training_tab_shows_its_steps_and_plots(trained):
    updates, reports, breeds, _ = trained
    final = updates[-1]
    assert "Done in" in final.status and "validation error" in final.status, final.status
    assert "Data: 16 training and 8 validation photos, 4 breeds." in final.status
    assert len(updates) >= 7  # one update per step, shown while training goes on
    assert updates[3].lr_plot is None and updates[4].lr_plot is not None  # the LR plot appears after step 4
    for fig in (final.lr_plot, final.loss_plot, final.sched_plot, final.confusion_plot):
        assert fig is not None and fig.axes
    assert set(final.suggestions) == {"minimum", "steep", "valley"}
    assert final.valid_error is not None and 0.0 <= final.valid_error <= 1.0
    # progress went through the LR finder, both fine_tune phases, and ended at 100%
    phases = {text.split(":")[0] for _, text in reports}
    assert {"LR finder", "head only (frozen body)", "whole model (unfrozen)"} <= phases
    assert reports[-1] == (1.0, "done")


def test_training_tab_per_group_learning_rates(trained):
    final = trained[0][-1]
    head, first = final.lr_rows[-1], final.lr_rows[0]
    assert head[0] == "head" and first[2] == "frozen"
    # the table shows 3 significant digits, so each rate read back from it is off by up to 0.5%
    rounding = 5e-3
    # fine_tune's unfrozen phase: slice(base_lr / 100, base_lr), the earliest layers change least
    assert float(head[3]) / float(first[3]) == pytest.approx(100, rel=2 * rounding)
    # its peak is base_lr / 2 (here the LR finder's valley), which one-cycle starts 5 times below (div=5)
    base = final.suggestions["valley"] / 2
    assert base / 5 * (1 - rounding) <= float(head[3]) <= base * (1 + rounding)


def test_classify_answers_with_the_model_it_is_given(trained, predictor):
    # (that each visitor gets only the model of their own session is tested on the real server)
    final, (_, _, breeds, paths) = trained[0][-1], trained
    session = final.predictor
    assert session.vocab == sorted(breeds) and predictor.vocab == list(PET_BREEDS)
    _, message, _ = classify(str(paths[0]), True, session, predictor=predictor)
    assert "with your model from tab 4" in message
    _, message, _ = classify(str(paths[0]), False, session, predictor=predictor)
    assert "with the shipped model" in message
    _, message, _ = classify(str(paths[0]), True, None, predictor=predictor)
    assert "You have not trained a model in this session yet" in message


def test_the_page_starts_from_the_demo_recipe():
    page = visitor_recipe(epochs=DEMO_RECIPE.epochs, freeze_epochs=DEMO_RECIPE.freeze_epochs,
                          find_lr=DEMO_RECIPE.find_lr, base_lr=DEMO_RECIPE.base_lr,
                          mixed_precision=DEMO_RECIPE.mixed_precision)
    assert page == DEMO_RECIPE
    chosen = visitor_recipe(2, 5, False, 1e-3, True)
    assert (chosen.epochs, chosen.freeze_epochs, chosen.find_lr, chosen.base_lr, chosen.mixed_precision) == \
        (2, 5, False, 1e-3, True)
    chosen_by_page = {"epochs", "freeze_epochs", "find_lr", "base_lr", "mixed_precision"}
    for field in dataclasses.fields(DEMO_RECIPE):  # the rest is the demo's recipe
        assert field.name in chosen_by_page or getattr(chosen, field.name) == getattr(DEMO_RECIPE, field.name)


def test_training_is_off_without_data():
    (update,) = list(train_model(None))
    assert update.status == TRAINING_DISABLED and "--train-data" in update.status and update.predictor is None
    assert "\n    python -m engine.datasets sample\n" in TRAINING_DISABLED  # the one command that switches it on


def test_training_on_unreadable_data_says_so_without_paths(tmp_path):
    bad = tmp_path / "secret-folder" / "labels.csv"
    bad.parent.mkdir()
    bad.write_text("name,breed,is_valid\n")
    updates = list(train_model(bad))
    assert "could not be read" in updates[-1].status and "secret-folder" not in updates[-1].status


# --- settings and the command line ------------------------------------------------------------------

def test_parse_size():
    assert parse_size("10mb") == 10 * MB and parse_size("500KB") == 500 * 1024 and parse_size(7) == 7
    with pytest.raises(ValueError, match="expected a number of bytes"):
        parse_size("ten megabytes")


def test_example_photos_come_from_the_data_else_from_demo_examples(pets_sample, tmp_path):
    photos = example_photos(pets_sample / "labels.csv")
    assert len(photos) == 8 and all(p.is_file() and p.parent == pets_sample / "images" for p in photos)
    assert [p.name[0].isupper() for p in photos] == [True] * 4 + [False] * 4  # 4 cats, then 4 dogs
    assert len({p.name.rsplit("_", 1)[0] for p in photos}) == 8  # one per breed
    with open(pets_sample / "labels.csv", newline="") as f:
        assert {p.name for p in photos} <= {r["name"] for r in csv.DictReader(f) if r["is_valid"] == "1"}
    shipped = example_photos(None)
    assert shipped == example_photos(tmp_path / "missing.csv") and len(shipped) == 8
    assert all(p.parent == SHIPPED_EXAMPLES for p in shipped) and shipped[0].name[0].isupper()


def test_the_shipped_examples_are_few_small_validation_photos_with_their_licence():
    photos = sorted(SHIPPED_EXAMPLES.glob("*"))
    jpegs = [p for p in photos if p.suffix == ".jpg"]
    assert [p.name for p in photos if p not in jpegs] == ["README.md"] and len(jpegs) <= 8
    readme = (SHIPPED_EXAMPLES / "README.md").read_text()
    assert "CC BY-SA 4.0" in readme and "Parkhi" in readme
    with open(SAMPLE_TABLE, newline="") as f:
        valid = {r["name"] for r in csv.DictReader(f) if r["is_valid"] == "1"}
    for p in jpegs:
        with Image.open(p) as img:
            assert max(img.size) <= 500 and p.stat().st_size <= 60_000 and p.name in valid and p.name in readme


def test_the_demo_finds_its_data_like_everything_else(full_pets_home, tmp_path, monkeypatch):
    from demo.settings import default_train_data

    monkeypatch.delenv("PETS_SAMPLE", raising=False)
    monkeypatch.setenv("PETBREEDS_HOME", str(tmp_path / "empty"))
    said = []
    assert default_train_data(show=said.append) is None and said == []  # no photos at all: off, quietly
    home = tmp_path / "home"
    home.mkdir()
    (home / "oxford-iiit-pet").symlink_to(full_pets_home / "oxford-iiit-pet")
    monkeypatch.setenv("PETBREEDS_HOME", str(home))
    table = default_train_data(show=said.append)  # only the full download: the sample is picked out of it
    assert table == home / "oxford-pets-sample" / "labels.csv" and table.is_file()
    assert example_photos(table)[0].parent == home / "oxford-pets-sample" / "images"
    monkeypatch.setenv("PETS_SAMPLE", str(tmp_path / "wrong"))
    said.clear()
    assert default_train_data(show=said.append) is None and "PETS_SAMPLE=" in said[0]  # said, not hidden


def test_command_line_refuses_bad_options(tmp_path, capsys):
    from demo.__main__ import main

    assert main(["--max-file-size", "ten"]) == 2
    assert main(["--train-data", str(tmp_path / "missing.csv")]) == 2
    assert "no such file or folder" in capsys.readouterr().err
    assert main(["--model", str(tmp_path / "nowhere")]) == 2
    assert "no exported model" in capsys.readouterr().err
    (tmp_path / "model.pt").write_bytes(b"\x80\x02pickle")
    assert main(["--model", str(tmp_path / "model.pt")]) == 2
    assert "never loads pickles" in capsys.readouterr().err
    for bad in (["--auth", "nopassword"], ["--auth", ":x"], ["--trainings", "0"], ["--delete-after", "-1"],
                ["--uploads-per-minute", "0"]):
        assert main(bad) == 2 and capsys.readouterr().err.startswith("error: "), bad


def test_a_broken_model_is_one_line_and_exit_2(tmp_path):
    import shutil
    import subprocess
    import sys

    broken = tmp_path / "broken"
    shutil.copytree(SHIPPED_MODEL, broken)
    (broken / "meta.json").write_text('{"format_version": 1, "arch": ')  # cut off mid-file
    done = subprocess.run([sys.executable, "-m", "demo", "--model", str(broken), "--port", "1"], capture_output=True,
                          text=True, timeout=120, cwd=SHIPPED_MODEL.parents[1])
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1, done.stderr
    assert lines[0].startswith(f"error: --model {broken}: {broken / 'meta.json'} is not valid JSON")


def test_another_model_never_touches_the_shipped_one(tmp_path, monkeypatch):
    import shutil

    import demo.__main__
    import demo.app
    import engine.serving.exported

    mine = tmp_path / "mine"
    shutil.copytree(SHIPPED_MODEL, mine)
    real = engine.serving.exported.read_export
    read = []

    def read_export(path):
        read.append(Path(path).resolve())
        if Path(path).resolve() == SHIPPED_MODEL.resolve():
            raise ValueError("the shipped model is broken")  # as if its meta.json were damaged
        return real(path)

    monkeypatch.setattr(engine.serving.exported, "read_export", read_export)
    monkeypatch.setattr("engine.serving.predictor.read_export", read_export)
    launched = []
    monkeypatch.setattr(demo.app.gr.Blocks, "launch", lambda self, **kw: launched.append(kw))
    assert demo.__main__.main(["--model", str(mine)]) == 0
    assert read == [mine.resolve()] and launched


def test_launch_options_and_the_warning_for_an_open_server(monkeypatch, capsys):
    import demo.__main__
    import demo.app

    launched = []
    monkeypatch.setattr(demo.app.gr.Blocks, "launch", lambda self, **kw: launched.append(kw))
    assert demo.__main__.main([]) == 0
    options = launched[-1]
    assert options["server_name"] == "127.0.0.1" and options["auth"] is None
    assert (options["ssr_mode"], options["run_history"], options["show_error"], options["share"]) == (False,) * 4
    assert "warning" not in capsys.readouterr().err
    assert demo.__main__.main(["--host", "0.0.0.0"]) == 0
    err = capsys.readouterr().err
    assert "warning: the demo listens on 0.0.0.0:7860 without a login" in err and "--auth USER:PASSWORD" in err
    assert demo.__main__.main(["--host", "0.0.0.0", "--auth", "teacher:pw"]) == 0
    assert launched[-1]["auth"] == ("teacher", "pw") and "warning" not in capsys.readouterr().err
    monkeypatch.setenv("PETBREEDS_AUTH", "room12:secret")
    assert demo.__main__.main(["--host", "192.168.1.5"]) == 0
    assert launched[-1]["auth"] == ("room12", "secret") and "warning" not in capsys.readouterr().err


def test_session_models_are_an_lru_with_a_time_to_live():
    from demo.sessions import SessionModels

    now = [0.0]
    store = SessionModels(capacity=3, ttl=100, clock=lambda: now[0])
    for name in "abcd":
        store.put(name, f"model {name}")
        now[0] += 1
    assert store.get("a") is None and len(store) == 3  # the least recently used went first
    assert store.get("b") == "model b"  # b is now the most recent
    store.put("e", "model e")
    assert store.get("c") is None and store.get("b") == "model b"
    now[0] += 101
    assert store.get("b") is None and len(store) == 0  # unused for longer than the ttl
    assert store.get(None) is None and store.get("") is None


def test_training_slots_admit_one_running_one_waiting_and_one_per_session():
    from demo.sessions import Refused, TrainingSlots

    now = [0.0]
    slots = TrainingSlots(running=1, waiting=1, expected_s=120, clock=lambda: now[0])
    first = slots.enter("a")
    assert first.start(block=False)
    second = slots.enter("b")
    assert not second.start(block=False)  # waits for the first
    with pytest.raises(Refused, match="You already have a training that is running"):
        slots.enter("a")
    with pytest.raises(Refused, match="You already have a training that is waiting to start"):
        slots.enter("b")
    with pytest.raises(Refused, match=r"Training is busy: 1 running and 1 waiting.*about 4 min"):
        slots.enter("c")  # 2 min left of the first, 2 for the second
    now[0] += 90
    first.release()
    assert slots.expected_s == 90 and second.start(block=False) and slots.busy == 1
    third = slots.enter("c")
    second.release()
    second.release()  # twice is harmless
    assert third.start(block=False)
    third.release()
    assert slots.busy == 0


def test_the_app_module_has_a_blocks_named_demo():
    import gradio as gr

    from demo.app import demo as page

    assert isinstance(page, gr.Blocks)
    titles = [b.label for b in page.blocks.values() if isinstance(b, gr.Tab)]
    assert titles == ["Which breed is my pet?", "Softmax & cross-entropy lab", "Presizing lab", "Train",
                      "About"]


def test_pixel_limits_keep_one_decode_small(tmp_path):
    # A JPEG is decoded at a fraction of its size straight from its data: 40 megapixels are fine. Other
    # formats are decoded whole, about 12 bytes a pixel: they may have 12 megapixels.
    from demo.uploads import UploadRefused, check_upload

    big = Image.new("RGB", (5600, 4300), (120, 90, 60))  # 24 megapixels
    big.save(tmp_path / "big.jpg", quality=70)
    big.save(tmp_path / "big.png")
    assert check_upload(tmp_path / "big.jpg", 50 * 2**20).format == "JPEG"
    with pytest.raises(UploadRefused, match=r"5600x4300 = 24 megapixels; the demo refuses PNG images \(JPEG photos "
                                            r"up to 40\) over 12 megapixels"):
        check_upload(tmp_path / "big.png", 50 * 2**20)
