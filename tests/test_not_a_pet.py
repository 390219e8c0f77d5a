"""The "not a pet" decision of the shipped model on real photographs (``Prediction.verdict``).

No photo of the 370-photo sample is refused; every real non-pet photograph we have offline
(scikit-image's, matplotlib's Grace Hopper: ``tests/support/non_pets.py``) is refused or "not
sure"; when the two models disagree the page says both; and the web demo and ``python -m
engine.predict`` give the same verdict for the same photo. ``bench/not_a_pet.py`` counts the same
groups, before and after, for the README.
"""

import ast
import csv
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from demo.predict_tab import judge, predict_photo
from demo.settings import SHIPPED_MODEL
from engine import predict as predict_cli
from engine.data.breeds import display_name
from engine.serving.prediction import DISAGREE_FROM, TOO_SMALL_BELOW, UNSURE_BELOW, ImagenetCheck, Prediction
from engine.serving.predictor import load_predictor
from tests.support.non_pets import SKIMAGE_NON_PETS, cat_photos, faces, non_pet_photos

REPO = Path(__file__).resolve().parents[1]

NON_PETS = [*SKIMAGE_NON_PETS, "stereo_motorcycle_left", "stereo_motorcycle_right", "grace_hopper (matplotlib)"]


@pytest.fixture(scope="module")
def shipped():
    return load_predictor(SHIPPED_MODEL)


@pytest.fixture(scope="module")
def non_pets():
    return non_pet_photos()


@pytest.fixture(scope="module")
def sample_verdicts(shipped, pets_sample):
    paths = sorted((pets_sample / "images").glob("*.jpg"))
    return {p.name: shipped.predict(p) for p in paths}


def test_no_sample_photo_is_refused(sample_verdicts):
    assert len(sample_verdicts) == 370
    refused = {name: p.imagenet.top[0] for name, p in sample_verdicts.items() if p.verdict == "not_a_pet"}
    assert refused == {}, f"pet photos refused as 'not a pet': {refused}"
    # the photos ImageNet alone would refuse (a shiba inu it takes for a dingo, a boxer behind a
    # tennis ball) are there, and answered with both opinions
    overruled = [name for name, p in sample_verdicts.items() if p.imagenet.not_a_pet]
    assert len(overruled) >= 2 and all(sample_verdicts[name].verdict == "disagree" for name in overruled)
    assert "boxer_157.jpg" in overruled


def test_the_cat_photos_of_scikit_image_are_not_refused(shipped):
    for name, photo in cat_photos().items():
        p = shipped.predict(photo)
        assert p.verdict == "breed" and p.imagenet.top_is_pet, (name, p.verdict, p.imagenet.top)


@pytest.mark.parametrize("name", NON_PETS)
def test_a_real_photo_that_is_not_a_pet_is_refused_or_unsure(shipped, non_pets, name):
    p = shipped.predict(non_pets[name])
    assert p.verdict in ("not_a_pet", "unsure"), (name, p.label, max(p.probabilities.values()), p.imagenet.top[:2])
    assert max(p.probabilities.values()) < DISAGREE_FROM  # the rule's margin: no non-pet is near it


def test_tiny_face_photos_are_refused_or_unsure(shipped):
    photos = faces()
    verdicts = {name: shipped.predict(face).verdict for name, face in photos.items()}
    assert len(verdicts) == 200
    named = {name: v for name, v in verdicts.items() if v not in ("not_a_pet", "unsure", "too_small")}
    assert named == {}
    # 25x25 pixels: too small to judge, whatever the runtime. (Blown up, 6 of them get a dog or cat breed
    # at 53-92% from the float32 model and from OpenVINO bf16; int8's rounding had hidden that.)
    assert set(verdicts.values()) == {"too_small"}


def test_a_photo_too_small_to_show_a_breed_gets_its_own_verdict():
    sure = dict(label="pug", probabilities={"pug": 0.97, "beagle": 0.03}, pixels=np.zeros((8, 8, 3), np.uint8),
                seconds=0.01, imagenet=ImagenetCheck((("pug", 0.9),), pet_probability=0.95, top_is_pet=True))
    assert Prediction(**sure, photo_size=(TOO_SMALL_BELOW - 1, 20)).verdict == "too_small"
    assert Prediction(**sure, photo_size=(TOO_SMALL_BELOW, 20)).verdict == "breed"  # the long side counts
    assert Prediction(**sure).verdict == "breed"  # size unknown (pixels given): judged on the probabilities
    v = judge(Prediction(**sure, photo_size=(25, 25)), 3.0)
    assert v.kind == "too_small" and v.message.startswith("### Too small to tell\nThis picture is only 25x25 pixels")
    assert "(Pug (dog), 97%)" in v.message and v.top5 == {}  # the guess is told, not shown as an answer


def _suitcase(top: float = 0.98) -> Prediction:
    """A Maine Coon in a suitcase: the breed model is sure, ImageNet sees luggage."""
    rest = (1 - top) / 2
    check = ImagenetCheck((("laptop", 0.41), ("suitcase", 0.2), ("Persian cat", 0.02)), pet_probability=0.04,
                          top_is_pet=False)
    return Prediction("Maine_Coon", {"Maine_Coon": top, "Persian": rest, "beagle": rest}, check,
                      np.zeros((8, 8, 3), np.uint8), 0.01)


def test_when_the_models_disagree_the_page_says_both():
    v = judge(_suitcase(0.98), 12.0)
    assert v.kind == "disagree"
    assert v.message.startswith("### Looks like a Maine Coon (cat) at 98%, though a general-purpose classifier "
                                "sees a laptop\n"), v.message
    assert "**laptop** (41%), **suitcase** (20%)" in v.message
    assert "cat and dog classes together get only 4%" in v.message
    assert list(v.top5) == ["Maine_Coon", "Persian", "beagle"]  # the breeds are shown, not hidden
    refused = judge(_suitcase(DISAGREE_FROM - 0.05))
    assert refused.kind == "not_a_pet" and refused.top5 == {} and "does not look like a cat or a dog" in refused.message
    assert judge(_suitcase(UNSURE_BELOW - 0.1)).kind == "not_a_pet"


def test_the_demo_and_the_cli_give_the_same_verdict(shipped, pets_sample, non_pets, tmp_path, capsys):
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("boxer_157.jpg", "shiba_inu_118.jpg", "Maine_Coon_136.jpg", "pug_112.jpg", "Bengal_16.jpg"):
        (photos / name).write_bytes((pets_sample / "images" / name).read_bytes())
    for name in ("coffee", "camera", "grass"):
        Image.fromarray(non_pets[name]).save(photos / f"{name}.png")
    Image.fromarray(faces()["lfw_subset[115]"]).save(photos / "face.png")  # 25x25: a Bengal at 92% when blown up
    table = tmp_path / "breeds.csv"
    assert predict_cli.main([str(SHIPPED_MODEL), str(photos), "--csv", str(table), "--batch", "3"]) == 0
    rows = {Path(r["file"]).name: r for r in csv.DictReader(open(table, newline=""))}
    assert len(rows) == 9
    on_page = {name: predict_photo(str(photos / name), shipped).kind for name in rows}
    assert {name: r["verdict"] for name, r in rows.items()} == on_page
    # every verdict is there: a pet, one ImageNet does not see (both said), not sure, not a pet
    assert on_page["boxer_157.jpg"] == "disagree" and on_page["pug_112.jpg"] == "breed"
    assert on_page["coffee.png"] == "not_a_pet" and on_page["grass.png"] == "unsure"
    assert on_page["face.png"] == "too_small" and rows["face.png"]["not_a_pet"] == "no"
    boxer = rows["boxer_157.jpg"]
    assert (boxer["breed_1"], boxer["name_1"], boxer["imagenet_1"], boxer["not_a_pet"]) == \
        ("boxer", "Boxer (dog)", "tennis ball", "no")
    assert rows["coffee.png"]["not_a_pet"] == "yes" and rows["coffee.png"]["name_1"] == display_name(
        rows["coffee.png"]["breed_1"])

    assert predict_cli.main([str(SHIPPED_MODEL), str(photos / "boxer_157.jpg"), str(photos / "coffee.png"),
                             str(photos / "face.png")]) == 0
    printed = capsys.readouterr().out
    assert "face.png: " in printed and "(too small to tell: a larger photo, please)" in printed
    assert "boxer_157.jpg: Boxer (dog) 100% | " in printed and "(though ImageNet sees: tennis ball)" in printed
    assert "(not a cat or a dog? ImageNet sees: espresso)" in printed


def test_scikit_image_is_for_the_tests_only():
    """It is a test dependency ([test] in pyproject.toml): the package never imports it."""
    importers = []
    for path in [*(REPO / "engine").rglob("*.py"), *(REPO / "demo").rglob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            importers += [str(path.relative_to(REPO)) for n in names if n.split(".")[0] == "skimage"]
    assert importers == []
    assert "scikit-image>=0.22" in (REPO / "pyproject.toml").read_text()
